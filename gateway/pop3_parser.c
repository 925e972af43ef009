/* pop3_parser.c — POP3 pre-auth command lines, parsed in place. */
#include "pop3_parser.h"

#include <string.h>
#include <strings.h>

#include "mf.h"

enum pop3_args {
	PA_NONE = 0, /* CAPA, STLS, NOOP, QUIT: trailing blanks tolerated */
	PA_REST,     /* USER, PASS: everything after the one SP, as sent */
	PA_AUTH,     /* [mechanism [initial-response]] */
	PA_TWO,      /* APOP name digest */
};

struct pop3_keyword {
	const char *name;
	enum pop3_cmd_type type;
	enum pop3_args args;
};

static const struct pop3_keyword pop3_keywords[] = {
	{ "CAPA", POP3_CMD_CAPA, PA_NONE },
	{ "STLS", POP3_CMD_STLS, PA_NONE },
	{ "USER", POP3_CMD_USER, PA_REST },
	{ "PASS", POP3_CMD_PASS, PA_REST },
	{ "AUTH", POP3_CMD_AUTH, PA_AUTH },
	{ "APOP", POP3_CMD_APOP, PA_TWO },
	{ "NOOP", POP3_CMD_NOOP, PA_NONE },
	{ "QUIT", POP3_CMD_QUIT, PA_NONE },
};

void pop3_parser_init(struct pop3_parser *p)
{
	memset(p, 0, sizeof(*p));
	p->line_max = POP3_LINE_MAX_DEFAULT;
	p->auth_line_max = POP3_AUTH_LINE_MAX_DEFAULT;
	p->allow_bare_lf = true;
}

void pop3_parser_expect_auth_data(struct pop3_parser *p)
{
	p->auth_data = true;
}

static int pop3_fail(struct pop3_cmd *cmd, enum pop3_parse_error e)
{
	cmd->error = e;
	cmd->resync = e != POP3_PERR_LINE_TOO_LONG && e != POP3_PERR_NUL;
	return MF_ERROR;
}

static bool pop3_is_blank(uint8_t c)
{
	return c == ' ' || c == '\t';
}

/* Splits [s, s+n) at the first SP: the token and what follows the SP. */
static size_t pop3_token_len(const uint8_t *s, size_t n)
{
	const uint8_t *sp = memchr(s, ' ', n);

	return sp ? (size_t)(sp - s) : n;
}

static int pop3_parse_args(const struct pop3_keyword *kw, const uint8_t *a,
			   size_t n, bool has_sp, struct pop3_cmd *cmd)
{
	size_t t;

	switch (kw->args) {
	case PA_NONE:
		while (n > 0 && pop3_is_blank(a[n - 1]))
			n--;
		return n == 0 ? MF_OK : pop3_fail(cmd, POP3_PERR_SYNTAX);
	case PA_REST:
		/* RFC 1939 §7: a password may contain spaces; keep it as sent. */
		if (!has_sp || n == 0)
			return pop3_fail(cmd, POP3_PERR_SYNTAX);
		cmd->arg = a;
		cmd->arg_len = n;
		return MF_OK;
	case PA_AUTH:
		while (n > 0 && pop3_is_blank(a[n - 1]))
			n--;
		if (n == 0) /* bare AUTH lists mechanisms (RFC 1734 habit) */
			return MF_OK;
		t = pop3_token_len(a, n);
		if (t == 0)
			return pop3_fail(cmd, POP3_PERR_SYNTAX);
		cmd->arg = a;
		cmd->arg_len = t;
		if (t == n)
			return MF_OK;
		cmd->arg2 = a + t + 1;
		cmd->arg2_len = n - t - 1;
		if (cmd->arg2_len == 0 ||
		    memchr(cmd->arg2, ' ', cmd->arg2_len) != NULL)
			return pop3_fail(cmd, POP3_PERR_SYNTAX);
		return MF_OK;
	case PA_TWO:
		t = pop3_token_len(a, n);
		if (!has_sp || t == 0 || t == n)
			return pop3_fail(cmd, POP3_PERR_SYNTAX);
		cmd->arg = a;
		cmd->arg_len = t;
		cmd->arg2 = a + t + 1;
		cmd->arg2_len = n - t - 1;
		if (cmd->arg2_len == 0 ||
		    memchr(cmd->arg2, ' ', cmd->arg2_len) != NULL)
			return pop3_fail(cmd, POP3_PERR_SYNTAX);
		return MF_OK;
	}
	return pop3_fail(cmd, POP3_PERR_SYNTAX);
}

static int pop3_parse_line(bool auth_data, const uint8_t *s, size_t n,
			   struct pop3_cmd *cmd)
{
	size_t klen, i;

	if (auth_data) {
		cmd->arg = s;
		cmd->arg_len = n;
		cmd->type = n == 1 && s[0] == '*' ? POP3_CMD_AUTH_CANCEL
						  : POP3_CMD_AUTH_DATA;
		return MF_OK;
	}
	if (n == 0)
		return pop3_fail(cmd, POP3_PERR_EMPTY);
	klen = pop3_token_len(s, n);
	cmd->name = s;
	cmd->name_len = klen;
	for (i = 0; i < MF_ARRAY_LEN(pop3_keywords); i++) {
		const struct pop3_keyword *kw = &pop3_keywords[i];

		if (strlen(kw->name) != klen ||
		    strncasecmp(kw->name, (const char *)s, klen) != 0)
			continue;
		cmd->type = kw->type;
		if (klen == n)
			return pop3_parse_args(kw, s + n, 0, false, cmd);
		return pop3_parse_args(kw, s + klen + 1, n - klen - 1, true, cmd);
	}
	cmd->type = POP3_CMD_UNKNOWN;
	return MF_OK;
}

int pop3_parser_feed(struct pop3_parser *p, const uint8_t *buf, size_t len,
		     size_t *used_r, struct pop3_cmd *cmd_r)
{
	static const enum pop3_parse_error errs[] = {
		[LINE_TOO_LONG] = POP3_PERR_LINE_TOO_LONG, [LINE_NUL] = POP3_PERR_NUL,
		[LINE_BARE_CR] = POP3_PERR_BARE_CR, [LINE_BARE_LF] = POP3_PERR_BARE_LF,
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
	cmd_r->line = t.line;
	cmd_r->line_len = t.len;
	cmd_r->raw_len = t.raw_len;
	if (rc != MF_OK)
		return pop3_fail(cmd_r, errs[t.verdict]);
	return pop3_parse_line(auth_data, t.line, t.len, cmd_r);
}

void pop3_cmd_wipe(struct pop3_cmd *cmd)
{
	/* The parser hands out const pointers because it never writes; the
	 * bytes are the session's writable receive buffer. */
	if (cmd->line != NULL && cmd->line_len > 0)
		explicit_bzero((void *)(uintptr_t)cmd->line, cmd->line_len);
	explicit_bzero(cmd, sizeof(*cmd));
}

const char *pop3_cmd_type_str(enum pop3_cmd_type t)
{
	static const char *const names[] = {
		[POP3_CMD_UNKNOWN] = "unknown", [POP3_CMD_CAPA] = "CAPA",
		[POP3_CMD_STLS] = "STLS",       [POP3_CMD_USER] = "USER",
		[POP3_CMD_PASS] = "PASS",       [POP3_CMD_AUTH] = "AUTH",
		[POP3_CMD_APOP] = "APOP",       [POP3_CMD_NOOP] = "NOOP",
		[POP3_CMD_QUIT] = "QUIT",       [POP3_CMD_AUTH_DATA] = "AUTH data",
		[POP3_CMD_AUTH_CANCEL] = "AUTH cancel",
	};

	return (unsigned int)t < MF_ARRAY_LEN(names) ? names[t] : "?";
}

const char *pop3_parse_error_str(enum pop3_parse_error e)
{
	static const char *const names[] = {
		[POP3_PERR_NONE] = "no error",
		[POP3_PERR_LINE_TOO_LONG] = "line too long",
		[POP3_PERR_NUL] = "NUL byte in line",
		[POP3_PERR_BARE_CR] = "CR not followed by LF",
		[POP3_PERR_BARE_LF] = "line ended by bare LF",
		[POP3_PERR_EMPTY] = "empty line",
		[POP3_PERR_SYNTAX] = "bad arguments",
	};

	return (unsigned int)e < MF_ARRAY_LEN(names) ? names[e] : "?";
}
