/* smtp_parser.c — SMTP command lines, parsed in place. */
#include "smtp_parser.h"

#include <string.h>
#include <strings.h>

#include "mf.h"

enum smtp_args {
	SA_NONE = 0, /* DATA, RSET, QUIT, STARTTLS */
	SA_OPT,      /* NOOP, HELP: optional free text */
	SA_REST,     /* VRFY, EXPN: required free text */
	SA_DOMAIN,   /* EHLO, HELO: exactly one token */
	SA_MAIL,
	SA_RCPT,
	SA_AUTH,
	SA_BDAT,
};

struct smtp_verb {
	const char *name;
	enum smtp_cmd_type type;
	enum smtp_args args;
};

static const struct smtp_verb smtp_verbs[] = {
	{ "EHLO", SMTP_CMD_EHLO, SA_DOMAIN },
	{ "HELO", SMTP_CMD_HELO, SA_DOMAIN },
	{ "MAIL", SMTP_CMD_MAIL, SA_MAIL },
	{ "RCPT", SMTP_CMD_RCPT, SA_RCPT },
	{ "DATA", SMTP_CMD_DATA, SA_NONE },
	{ "BDAT", SMTP_CMD_BDAT, SA_BDAT },
	{ "RSET", SMTP_CMD_RSET, SA_NONE },
	{ "NOOP", SMTP_CMD_NOOP, SA_OPT },
	{ "QUIT", SMTP_CMD_QUIT, SA_NONE },
	{ "STARTTLS", SMTP_CMD_STARTTLS, SA_NONE },
	{ "AUTH", SMTP_CMD_AUTH, SA_AUTH },
	{ "VRFY", SMTP_CMD_VRFY, SA_REST },
	{ "EXPN", SMTP_CMD_EXPN, SA_REST },
	{ "HELP", SMTP_CMD_HELP, SA_OPT },
};

void smtp_parser_init(struct smtp_parser *p)
{
	memset(p, 0, sizeof(*p));
	p->line_max = SMTP_LINE_MAX_DEFAULT;
	p->auth_line_max = SMTP_AUTH_LINE_MAX_DEFAULT;
	p->allow_bare_lf = false;
}

void smtp_parser_expect_auth_data(struct smtp_parser *p)
{
	p->auth_data = true;
}

static int smtp_fail(struct smtp_cmd *cmd, enum smtp_parse_error e)
{
	cmd->error = e;
	cmd->resync = e != SMTP_PERR_LINE_TOO_LONG && e != SMTP_PERR_NUL;
	return MF_ERROR;
}

static bool smtp_is_alnum(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/* RFC 5322 atext, plus UTF-8 octets for SMTPUTF8 (RFC 6531 §3.3). */
static bool smtp_is_atext(uint8_t c)
{
	return smtp_is_alnum(c) || c >= 0x80 ||
	       (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static size_t smtp_token_len(const uint8_t *s, size_t n)
{
	const uint8_t *sp = memchr(s, ' ', n);

	return sp ? (size_t)(sp - s) : n;
}

/* Local-part = Dot-string / Quoted-string (RFC 5321 §4.1.2). */
static int smtp_parse_local(const uint8_t *s, size_t n, size_t *i,
			    struct smtp_path *path, struct smtp_cmd *cmd)
{
	size_t j = *i;

	if (j < n && s[j] == '"') {
		path->quoted_local = true;
		for (j++; j < n && s[j] != '"'; j++) {
			if (s[j] == '\\') {
				j++;
				if (j >= n || s[j] < 32 || s[j] > 126)
					return smtp_fail(cmd, SMTP_PERR_PATH_SYNTAX);
			} else if (s[j] < 32 || s[j] == 127) {
				return smtp_fail(cmd, SMTP_PERR_PATH_SYNTAX);
			}
		}
		if (j >= n)
			return smtp_fail(cmd, SMTP_PERR_PATH_SYNTAX);
		j++;
	} else {
		bool atom_empty = true;

		for (; j < n; j++) {
			if (s[j] == '.') {
				if (atom_empty)
					return smtp_fail(cmd, SMTP_PERR_PATH_SYNTAX);
				atom_empty = true;
			} else if (smtp_is_atext(s[j])) {
				atom_empty = false;
			} else {
				break;
			}
		}
		if (atom_empty)
			return smtp_fail(cmd, SMTP_PERR_PATH_SYNTAX);
	}
	path->local = s + *i;
	path->local_len = j - *i;
	if (path->local_len > SMTP_LOCAL_MAX)
		return smtp_fail(cmd, SMTP_PERR_LOCAL_TOO_LONG);
	*i = j;
	return MF_OK;
}

/* Domain (sub-domains, UTF-8 U-labels allowed) or address literal. */
static int smtp_parse_domain(const uint8_t *s, size_t n, size_t *i,
			     struct smtp_path *path, struct smtp_cmd *cmd)
{
	size_t j = *i;

	if (j < n && s[j] == '[') {
		for (j++; j < n && s[j] != ']'; j++)
			if (s[j] < 33 || s[j] > 126 || s[j] == '[' || s[j] == '\\')
				return smtp_fail(cmd, SMTP_PERR_PATH_SYNTAX);
		if (j >= n || j == *i + 1)
			return smtp_fail(cmd, SMTP_PERR_PATH_SYNTAX);
		j++;
	} else {
		size_t label = 0;
		uint8_t last = 0;

		for (; j < n; j++) {
			uint8_t c = s[j];

			if (c == '.') {
				if (label == 0 || last == '-')
					return smtp_fail(cmd, SMTP_PERR_PATH_SYNTAX);
				label = 0;
			} else if (smtp_is_alnum(c) || c >= 0x80 ||
				   (c == '-' && label > 0)) {
				label++;
			} else {
				break;
			}
			last = c;
		}
		if (label == 0 || last == '-')
			return smtp_fail(cmd, SMTP_PERR_PATH_SYNTAX);
	}
	path->domain = s + *i;
	path->domain_len = j - *i;
	if (path->domain_len > SMTP_DOMAIN_MAX)
		return smtp_fail(cmd, SMTP_PERR_PATH_TOO_LONG);
	*i = j;
	return MF_OK;
}

/* Path = "<" [ A-d-l ":" ] Mailbox ">", or "<>" where allowed. */
static int smtp_parse_path(const uint8_t *s, size_t n, size_t *i, bool rcpt,
			   struct smtp_path *path, struct smtp_cmd *cmd)
{
	size_t j = *i, start = *i, addr;

	if (j >= n || s[j] != '<')
		return smtp_fail(cmd, SMTP_PERR_PATH_SYNTAX);
	j++;
	if (j < n && s[j] == '>') {
		if (rcpt)
			return smtp_fail(cmd, SMTP_PERR_PATH_SYNTAX);
		path->null_path = true;
		*i = j + 1;
		return MF_OK;
	}
	if (j < n && s[j] == '@') {
		/* RFC 5321 §4.1.1.3: source routes MUST be accepted and
		 * SHOULD be ignored; the backend never sees the difference
		 * because the raw line is what we relay. */
		for (; j < n && s[j] != ':'; j++)
			if (s[j] != '@' && s[j] != ',' && s[j] != '.' &&
			    s[j] != '-' && s[j] != '[' && s[j] != ']' &&
			    !smtp_is_alnum(s[j]) && s[j] < 0x80)
				return smtp_fail(cmd, SMTP_PERR_PATH_SYNTAX);
		if (j >= n)
			return smtp_fail(cmd, SMTP_PERR_PATH_SYNTAX);
		j++;
	}
	addr = j;
	if (smtp_parse_local(s, n, &j, path, cmd) != MF_OK)
		return MF_ERROR;
	if (j < n && s[j] == '>' && rcpt && !path->quoted_local &&
	    path->local_len == 10 &&
	    strncasecmp((const char *)path->local, "postmaster", 10) == 0) {
		path->postmaster = true;
	} else {
		if (j >= n || s[j] != '@')
			return smtp_fail(cmd, SMTP_PERR_PATH_SYNTAX);
		j++;
		if (smtp_parse_domain(s, n, &j, path, cmd) != MF_OK)
			return MF_ERROR;
	}
	if (j >= n || s[j] != '>')
		return smtp_fail(cmd, SMTP_PERR_PATH_SYNTAX);
	j++;
	if (j - start > SMTP_PATH_MAX)
		return smtp_fail(cmd, SMTP_PERR_PATH_TOO_LONG);
	path->addr = s + addr;
	path->addr_len = j - 1 - addr;
	*i = j;
	return MF_OK;
}

static bool smtp_parse_u64(const uint8_t *s, size_t n, uint64_t *v_r)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++) {
		unsigned int d;

		if (s[i] < '0' || s[i] > '9')
			return false;
		d = s[i] - '0';
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*v_r = v;
	return true;
}

static bool smtp_key_is(const struct smtp_param *pa, const char *name)
{
	return pa->key_len == strlen(name) &&
	       strncasecmp((const char *)pa->key, name, pa->key_len) == 0;
}

/* The MAIL parameters that decide what a backend must support. */
static int smtp_apply_mail_param(const struct smtp_param *pa,
				 struct smtp_cmd *cmd)
{
	if (smtp_key_is(pa, "SIZE")) {
		if (cmd->has_size || pa->value == NULL ||
		    !smtp_parse_u64(pa->value, pa->value_len, &cmd->size))
			return smtp_fail(cmd, SMTP_PERR_PARAM_VALUE);
		cmd->has_size = true;
	} else if (smtp_key_is(pa, "BODY")) {
		static const char *const bodies[] = {
			[SMTP_BODY_7BIT] = "7BIT",
			[SMTP_BODY_8BITMIME] = "8BITMIME",
			[SMTP_BODY_BINARYMIME] = "BINARYMIME",
		};
		unsigned int b;

		if (cmd->body != SMTP_BODY_NONE || pa->value == NULL)
			return smtp_fail(cmd, SMTP_PERR_PARAM_VALUE);
		for (b = SMTP_BODY_7BIT; b < MF_ARRAY_LEN(bodies); b++)
			if (pa->value_len == strlen(bodies[b]) &&
			    strncasecmp((const char *)pa->value, bodies[b],
					pa->value_len) == 0)
				cmd->body = (enum smtp_body)b;
		if (cmd->body == SMTP_BODY_NONE)
			return smtp_fail(cmd, SMTP_PERR_PARAM_VALUE);
	} else if (smtp_key_is(pa, "SMTPUTF8")) {
		if (cmd->smtputf8 || pa->value != NULL)
			return smtp_fail(cmd, SMTP_PERR_PARAM_VALUE);
		cmd->smtputf8 = true;
	}
	return MF_OK;
}

/* Mail-parameters = esmtp-param *(SP esmtp-param), after the path. */
static int smtp_parse_params(const uint8_t *s, size_t n, size_t i, bool mail,
			     struct smtp_cmd *cmd)
{
	while (i < n) {
		struct smtp_param *pa;
		size_t k;

		if (s[i] != ' ')
			return smtp_fail(cmd, SMTP_PERR_PARAM_SYNTAX);
		while (i < n && s[i] == ' ')
			i++;
		if (i == n)
			break;
		if (cmd->n_params == SMTP_MAX_PARAMS)
			return smtp_fail(cmd, SMTP_PERR_TOO_MANY_PARAMS);
		pa = &cmd->params[cmd->n_params];
		pa->key = s + i;
		for (k = i; k < n && (smtp_is_alnum(s[k]) ||
				      (s[k] == '-' && k > i)); k++)
			;
		pa->key_len = k - i;
		if (pa->key_len == 0)
			return smtp_fail(cmd, SMTP_PERR_PARAM_SYNTAX);
		i = k;
		if (i < n && s[i] == '=') {
			pa->value = s + ++i;
			for (k = i; k < n && s[k] != ' '; k++)
				if (s[k] < 33 || s[k] == '=' || s[k] == 127)
					return smtp_fail(cmd, SMTP_PERR_PARAM_SYNTAX);
			pa->value_len = k - i;
			if (pa->value_len == 0)
				return smtp_fail(cmd, SMTP_PERR_PARAM_SYNTAX);
			i = k;
		}
		if (i < n && s[i] != ' ')
			return smtp_fail(cmd, SMTP_PERR_PARAM_SYNTAX);
		cmd->n_params++;
		if (mail && smtp_apply_mail_param(pa, cmd) != MF_OK)
			return MF_ERROR;
	}
	return MF_OK;
}

/* MAIL FROM:<path> [params] / RCPT TO:<path> [params]. A blank after the
 * colon is tolerated: common clients send it and Postfix accepts it. */
static int smtp_parse_envelope(const uint8_t *a, size_t n, bool rcpt,
			       struct smtp_cmd *cmd)
{
	const char *kw = rcpt ? "TO:" : "FROM:";
	size_t kl = strlen(kw), i;

	if (n < kl || strncasecmp((const char *)a, kw, kl) != 0)
		return smtp_fail(cmd, SMTP_PERR_SYNTAX);
	for (i = kl; i < n && a[i] == ' '; i++)
		;
	if (smtp_parse_path(a, n, &i, rcpt, &cmd->path, cmd) != MF_OK)
		return MF_ERROR;
	return smtp_parse_params(a, n, i, !rcpt, cmd);
}

static int smtp_parse_bdat(const uint8_t *a, size_t n, struct smtp_cmd *cmd)
{
	size_t t = smtp_token_len(a, n);

	if (!smtp_parse_u64(a, t, &cmd->bdat_size))
		return smtp_fail(cmd, SMTP_PERR_BDAT_SIZE);
	if (t == n)
		return MF_OK;
	a += t + 1;
	n -= t + 1;
	if (n != 4 || strncasecmp((const char *)a, "LAST", 4) != 0)
		return smtp_fail(cmd, SMTP_PERR_SYNTAX);
	cmd->bdat_last = true;
	return MF_OK;
}

static int smtp_parse_args(const struct smtp_verb *v, const uint8_t *a,
			   size_t n, struct smtp_cmd *cmd)
{
	size_t t;

	switch (v->args) {
	case SA_NONE:
		return n == 0 ? MF_OK : smtp_fail(cmd, SMTP_PERR_SYNTAX);
	case SA_OPT:
	case SA_REST:
		if (n == 0 && v->args == SA_REST)
			return smtp_fail(cmd, SMTP_PERR_SYNTAX);
		cmd->arg = n > 0 ? a : NULL;
		cmd->arg_len = n;
		return MF_OK;
	case SA_DOMAIN:
		if (n == 0 || smtp_token_len(a, n) != n)
			return smtp_fail(cmd, SMTP_PERR_SYNTAX);
		cmd->arg = a;
		cmd->arg_len = n;
		return MF_OK;
	case SA_MAIL:
	case SA_RCPT:
		return smtp_parse_envelope(a, n, v->args == SA_RCPT, cmd);
	case SA_AUTH:
		t = smtp_token_len(a, n);
		if (t == 0)
			return smtp_fail(cmd, SMTP_PERR_SYNTAX);
		cmd->arg = a;
		cmd->arg_len = t;
		if (t == n)
			return MF_OK;
		cmd->arg2 = a + t + 1;
		cmd->arg2_len = n - t - 1;
		if (cmd->arg2_len == 0 ||
		    smtp_token_len(cmd->arg2, cmd->arg2_len) != cmd->arg2_len)
			return smtp_fail(cmd, SMTP_PERR_SYNTAX);
		return MF_OK;
	case SA_BDAT:
		return smtp_parse_bdat(a, n, cmd);
	}
	return smtp_fail(cmd, SMTP_PERR_SYNTAX);
}

static int smtp_parse_line(bool auth_data, const uint8_t *s, size_t n,
			   struct smtp_cmd *cmd)
{
	size_t vlen, i;

	if (auth_data) {
		cmd->arg = s;
		cmd->arg_len = n;
		cmd->type = n == 1 && s[0] == '*' ? SMTP_CMD_AUTH_CANCEL
						  : SMTP_CMD_AUTH_DATA;
		return MF_OK;
	}
	/* Trailing blanks carry no meaning in any SMTP command. */
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n == 0)
		return smtp_fail(cmd, SMTP_PERR_EMPTY);
	vlen = smtp_token_len(s, n);
	cmd->name = s;
	cmd->name_len = vlen;
	for (i = 0; i < MF_ARRAY_LEN(smtp_verbs); i++) {
		const struct smtp_verb *v = &smtp_verbs[i];
		size_t a = vlen;

		if (strlen(v->name) != vlen ||
		    strncasecmp(v->name, (const char *)s, vlen) != 0)
			continue;
		cmd->type = v->type;
		while (a < n && s[a] == ' ')
			a++;
		return smtp_parse_args(v, s + a, n - a, cmd);
	}
	cmd->type = SMTP_CMD_UNKNOWN;
	return MF_OK;
}

int smtp_parser_feed(struct smtp_parser *p, const uint8_t *buf, size_t len,
		     size_t *used_r, struct smtp_cmd *cmd_r)
{
	static const enum smtp_parse_error errs[] = {
		[LINE_TOO_LONG] = SMTP_PERR_LINE_TOO_LONG, [LINE_NUL] = SMTP_PERR_NUL,
		[LINE_BARE_CR] = SMTP_PERR_BARE_CR, [LINE_BARE_LF] = SMTP_PERR_BARE_LF,
	};
	struct line_take t;
	bool auth_data = p->auth_data;
	int rc;

	memset(cmd_r, 0, sizeof(*cmd_r));
	rc = line_scan_take(&p->scan, buf, len, auth_data ? p->auth_line_max : p->line_max,
			    p->allow_bare_lf, used_r, &t);
	if (rc == MF_AGAIN)
		return MF_AGAIN;
	p->auth_data = false;
	cmd_r->raw = t.line;
	cmd_r->raw_len = t.raw_len;
	cmd_r->line_len = t.len;
	if (rc != MF_OK)
		return smtp_fail(cmd_r, errs[t.verdict]);
	return smtp_parse_line(auth_data, t.line, t.len, cmd_r);
}

void smtp_cmd_wipe(struct smtp_cmd *cmd)
{
	/* const only because the parser never writes; the bytes are the
	 * session's writable receive buffer. */
	if (cmd->raw != NULL && cmd->line_len > 0)
		explicit_bzero((void *)(uintptr_t)cmd->raw, cmd->line_len);
	explicit_bzero(cmd, sizeof(*cmd));
}

const char *smtp_cmd_type_str(enum smtp_cmd_type t)
{
	static const char *const names[] = {
		[SMTP_CMD_UNKNOWN] = "unknown",   [SMTP_CMD_EHLO] = "EHLO",
		[SMTP_CMD_HELO] = "HELO",         [SMTP_CMD_MAIL] = "MAIL",
		[SMTP_CMD_RCPT] = "RCPT",         [SMTP_CMD_DATA] = "DATA",
		[SMTP_CMD_BDAT] = "BDAT",         [SMTP_CMD_RSET] = "RSET",
		[SMTP_CMD_NOOP] = "NOOP",         [SMTP_CMD_QUIT] = "QUIT",
		[SMTP_CMD_STARTTLS] = "STARTTLS", [SMTP_CMD_AUTH] = "AUTH",
		[SMTP_CMD_VRFY] = "VRFY",         [SMTP_CMD_EXPN] = "EXPN",
		[SMTP_CMD_HELP] = "HELP",         [SMTP_CMD_AUTH_DATA] = "AUTH data",
		[SMTP_CMD_AUTH_CANCEL] = "AUTH cancel",
	};

	return (unsigned int)t < MF_ARRAY_LEN(names) ? names[t] : "?";
}

const char *smtp_parse_error_str(enum smtp_parse_error e)
{
	static const char *const names[] = {
		[SMTP_PERR_NONE] = "no error",
		[SMTP_PERR_LINE_TOO_LONG] = "line too long",
		[SMTP_PERR_NUL] = "NUL byte in line",
		[SMTP_PERR_BARE_CR] = "CR not followed by LF",
		[SMTP_PERR_BARE_LF] = "line ended by bare LF",
		[SMTP_PERR_EMPTY] = "empty line",
		[SMTP_PERR_SYNTAX] = "bad arguments",
		[SMTP_PERR_PATH_SYNTAX] = "bad address syntax",
		[SMTP_PERR_PATH_TOO_LONG] = "address too long",
		[SMTP_PERR_LOCAL_TOO_LONG] = "local part too long",
		[SMTP_PERR_PARAM_SYNTAX] = "bad parameter syntax",
		[SMTP_PERR_PARAM_VALUE] = "bad parameter value",
		[SMTP_PERR_TOO_MANY_PARAMS] = "too many parameters",
		[SMTP_PERR_BDAT_SIZE] = "bad BDAT size",
	};

	return (unsigned int)e < MF_ARRAY_LEN(names) ? names[e] : "?";
}
