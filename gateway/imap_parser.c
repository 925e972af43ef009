/* imap_parser.c — resumable IMAP pre-auth command parser (see imap_parser.h). */
#include "imap_parser.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mf.h"

/* How a discarded line ends, so a {n+} announced on it is not mistaken for
 * resynchronisation: its literal bytes would follow and be read as commands. */
enum skip_tail {
	TAIL_NONE = 0, TAIL_NUM, TAIL_PLUS, TAIL_SYNC, TAIL_NONSYNC,
};

static const struct {
	const char *name;
	enum imap_cmd_kind kind;
} cmd_names[] = {
	{ "CAPABILITY", IMAP_CMD_CAPABILITY },
	{ "NOOP", IMAP_CMD_NOOP },
	{ "LOGOUT", IMAP_CMD_LOGOUT },
	{ "ID", IMAP_CMD_ID },
	{ "STARTTLS", IMAP_CMD_STARTTLS },
	{ "LOGIN", IMAP_CMD_LOGIN },
	{ "AUTHENTICATE", IMAP_CMD_AUTHENTICATE },
};

static const char *const err_text[] = {
	[IMAP_ERR_NONE] = "no error",
	[IMAP_ERR_LINE_TOO_LONG] = "line too long",
	[IMAP_ERR_LITERAL_TOO_BIG] = "literal too big",
	[IMAP_ERR_SYNTAX] = "syntax error",
	[IMAP_ERR_NUL] = "NUL byte in command",
	[IMAP_ERR_BAD_TAG] = "invalid tag",
	[IMAP_ERR_BAD_CRLF] = "CR not followed by LF",
	[IMAP_ERR_BAD_CHAR] = "invalid character",
	[IMAP_ERR_BAD_ESCAPE] = "invalid escape in quoted string",
	[IMAP_ERR_TOO_MANY_ARGS] = "too many arguments",
	[IMAP_ERR_TOO_DEEP] = "lists nested too deep",
	[IMAP_ERR_LITERAL_SKIPPED] = "non-synchronizing literal in a refused command",
	[IMAP_ERR_STATE] = "parser not between commands",
};

const char *imap_err_str(enum imap_err err)
{
	if ((size_t)err >= MF_ARRAY_LEN(err_text) || err_text[err] == NULL)
		return "unknown error";
	return err_text[err];
}

/* ATOM-CHAR plus "]" (astring) and "%" "*" (list-mailbox): printable ASCII
 * except SP ( ) { " \ */
static bool is_atom_char(uint8_t c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return c != '(' && c != ')' && c != '{' && c != '"' && c != '\\';
}

/* tag = 1*<any ASTRING-CHAR except "+">: no list-wildcards either. */
static bool is_tag_char(uint8_t c)
{
	return is_atom_char(c) && c != '+' && c != '*' && c != '%';
}

static bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

void imap_limits_get_default(struct imap_limits *lim_r)
{
	lim_r->max_line = IMAP_DEFAULT_MAX_LINE;
	lim_r->max_literal = IMAP_DEFAULT_MAX_LITERAL;
	lim_r->max_nonsync = IMAP_DEFAULT_MAX_NONSYNC;
	lim_r->max_args = IMAP_ARGS_MAX;
	lim_r->max_depth = 2;
	lim_r->utf8 = false;
}

static void command_reset(struct imap_parser *p)
{
	if (p->arena_len > p->arena_peak)
		p->arena_peak = p->arena_len;
	p->arena_len = 0;
	p->str_start = 0;
	p->line_len = 0;
	p->lit_total = 0;
	p->depth = 0;
	memset(&p->cmd, 0, sizeof(p->cmd));
	p->cmd.args = p->args;
}

int imap_parser_init(struct imap_parser *p, const struct imap_limits *lim)
{
	memset(p, 0, sizeof(*p));
	if (lim == NULL)
		imap_limits_get_default(&p->lim);
	else
		p->lim = *lim;
	if (p->lim.max_line < 16 || p->lim.max_line > (1u << 24) ||
	    p->lim.max_literal > (1u << 24) ||
	    p->lim.max_nonsync > p->lim.max_literal ||
	    p->lim.max_args == 0 || p->lim.max_args > IMAP_ARGS_MAX ||
	    p->lim.max_depth == 0 || p->lim.max_depth > IMAP_DEPTH_MAX)
		return MF_ERROR;
	/* Every stored token ends with a NUL that replaces a delimiter byte
	 * already counted in max_line; the slack only guards that proof. */
	p->arena_size = p->lim.max_line + p->lim.max_literal + p->lim.max_args + 4;
	p->arena = malloc(p->arena_size);
	if (p->arena == NULL)
		return MF_ERROR;
	p->state = IMAP_S_START;
	command_reset(p);
	return MF_OK;
}

/* Only the part ever written is wiped: clearing the whole arena would make
 * all of it resident in every session that logs in. */
void imap_parser_wipe(struct imap_parser *p)
{
	if (p->arena_len > p->arena_peak)
		p->arena_peak = p->arena_len;
	if (p->arena != NULL)
		explicit_bzero(p->arena, p->arena_peak);
	p->arena_peak = 0;
}

void imap_parser_free(struct imap_parser *p)
{
	imap_parser_wipe(p);
	free(p->arena);
	p->arena = NULL;
	p->state = IMAP_S_CLOSED;
	p->closed_err = IMAP_ERR_STATE;
}

bool imap_parser_continuation_due(const struct imap_parser *p)
{
	return p->cont_due;
}

int imap_parser_expect_sasl_line(struct imap_parser *p)
{
	if (p->state != IMAP_S_START)
		return MF_ERROR;
	command_reset(p);
	p->done = false;
	p->state = IMAP_S_SASL;
	return MF_OK;
}

static int close_fatal(struct imap_parser *p, enum imap_err err)
{
	p->state = IMAP_S_CLOSED;
	p->closed_err = err;
	p->cmd.err = err;
	p->cmd.must_close = true;
	return MF_ERROR;
}

/* One byte of a line being discarded. */
static int skip_byte(struct imap_parser *p, uint8_t c)
{
	if (c == '\n') {
		if (p->skip_tail == TAIL_NONSYNC)
			return close_fatal(p, IMAP_ERR_LITERAL_SKIPPED);
		p->state = IMAP_S_START;
		p->line_len = 0;
		return MF_AGAIN;
	}
	if (c == '\r')
		return MF_AGAIN;
	if (c == '{' || (is_digit(c) && p->skip_tail == TAIL_NUM))
		p->skip_tail = TAIL_NUM;
	else if (c == '+' && p->skip_tail == TAIL_NUM)
		p->skip_tail = TAIL_PLUS;
	else if (c == '}' && p->skip_tail == TAIL_NUM)
		p->skip_tail = TAIL_SYNC;
	else if (c == '}' && p->skip_tail == TAIL_PLUS)
		p->skip_tail = TAIL_NONSYNC;
	else
		p->skip_tail = TAIL_NONE;
	return MF_AGAIN;
}

/* A recoverable error at byte c (already consumed): report it, then drop
 * the rest of the literal being read, if any, and of the line. */
static int fail(struct imap_parser *p, enum imap_err err, uint8_t c)
{
	int rc;

	p->cmd.err = err;
	p->cmd.must_close = false;
	p->utf8_left = 0;
	if (p->state == IMAP_S_LIT_DATA) {
		p->skip_tail = TAIL_NONE;
		p->state = p->lit_left > 0 ? IMAP_S_SKIP_LIT : IMAP_S_SKIP_LINE;
		return MF_ERROR;
	}
	switch (p->state) {
	case IMAP_S_LIT_OPEN:
	case IMAP_S_LIT_NUM:
		p->skip_tail = TAIL_NUM;
		break;
	case IMAP_S_LIT_PLUS:
		p->skip_tail = TAIL_PLUS;
		break;
	case IMAP_S_LIT_CLOSE:
	case IMAP_S_LIT_CR:
		p->skip_tail = p->lit_nonsync ? TAIL_NONSYNC : TAIL_SYNC;
		break;
	default:
		p->skip_tail = TAIL_NONE;
		break;
	}
	p->state = IMAP_S_SKIP_LINE;
	rc = skip_byte(p, c);
	if (rc == MF_ERROR) /* the refused line itself ends in {n+} */
		p->cmd.err = p->closed_err = err;
	return MF_ERROR;
}

static int put(struct imap_parser *p, uint8_t c, uint8_t orig)
{
	if (p->arena_len >= p->arena_size)
		return fail(p, IMAP_ERR_LINE_TOO_LONG, orig);
	p->arena[p->arena_len++] = c;
	return MF_AGAIN;
}

/* Terminates the token started at str_start; returns its start. */
static const char *token_end(struct imap_parser *p, size_t *len_r)
{
	/* Cannot overflow: the NUL takes the place of a counted delimiter. */
	if (p->arena_len < p->arena_size)
		p->arena[p->arena_len++] = '\0';
	*len_r = p->arena_len - p->str_start - 1;
	return (const char *)p->arena + p->str_start;
}

static struct imap_arg *arg_new(struct imap_parser *p, enum imap_arg_type type)
{
	struct imap_arg *a;

	if (p->cmd.n_args >= p->lim.max_args)
		return NULL;
	a = &p->args[p->cmd.n_args++];
	memset(a, 0, sizeof(*a));
	a->type = type;
	a->str = "";
	if (p->depth > 0)
		p->args[p->stack[p->depth - 1]].items++;
	p->str_start = p->arena_len;
	return a;
}

static void arg_end(struct imap_parser *p)
{
	struct imap_arg *a = &p->args[p->cmd.n_args - 1];

	a->str = token_end(p, &a->len);
	if (a->type == IMAP_ARG_ATOM && a->len == 3 && strcasecmp(a->str, "NIL") == 0)
		a->type = IMAP_ARG_NIL;
	p->state = IMAP_S_AFTER_ARG;
}

static void list_close(struct imap_parser *p)
{
	unsigned int idx = p->stack[--p->depth];

	p->args[idx].span = p->cmd.n_args - idx - 1;
	p->state = IMAP_S_AFTER_ARG;
}

static void name_end(struct imap_parser *p)
{
	size_t i;

	p->cmd.name = token_end(p, &p->cmd.name_len);
	p->cmd.kind = IMAP_CMD_UNKNOWN;
	for (i = 0; i < MF_ARRAY_LEN(cmd_names); i++)
		if (strcmp(p->cmd.name, cmd_names[i].name) == 0)
			p->cmd.kind = cmd_names[i].kind;
}

static int line_end(struct imap_parser *p, uint8_t c)
{
	if (c == '\r') {
		p->state = IMAP_S_END_CR;
		return MF_AGAIN;
	}
	p->state = IMAP_S_START;
	return MF_OK;
}

/* The first byte of a UTF-8 sequence inside a quoted string (RFC 3629
 * table: no overlongs, no surrogates, nothing above U+10FFFF). */
static bool utf8_start(struct imap_parser *p, uint8_t c)
{
	p->utf8_lo = 0x80;
	p->utf8_hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf) {
		p->utf8_left = 1;
	} else if (c >= 0xe0 && c <= 0xef) {
		p->utf8_left = 2;
		if (c == 0xe0)
			p->utf8_lo = 0xa0;
		else if (c == 0xed)
			p->utf8_hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		p->utf8_left = 3;
		if (c == 0xf0)
			p->utf8_lo = 0x90;
		else if (c == 0xf4)
			p->utf8_hi = 0x8f;
	} else {
		return false;
	}
	return true;
}

static enum imap_err bad_char_err(uint8_t c)
{
	return (c < 0x20 || c >= 0x7f) ? IMAP_ERR_BAD_CHAR : IMAP_ERR_SYNTAX;
}

static int arg_start_byte(struct imap_parser *p, uint8_t c)
{
	struct imap_arg *a;

	switch (c) {
	case '(':
		if (p->depth >= p->lim.max_depth)
			return fail(p, IMAP_ERR_TOO_DEEP, c);
		if (arg_new(p, IMAP_ARG_LIST) == NULL)
			return fail(p, IMAP_ERR_TOO_MANY_ARGS, c);
		p->stack[p->depth++] = p->cmd.n_args - 1;
		return MF_AGAIN;
	case ')':
		if (p->depth == 0 || p->args[p->stack[p->depth - 1]].items != 0)
			return fail(p, IMAP_ERR_SYNTAX, c);
		list_close(p);
		return MF_AGAIN;
	case '"':
		if (arg_new(p, IMAP_ARG_QUOTED) == NULL)
			return fail(p, IMAP_ERR_TOO_MANY_ARGS, c);
		p->state = IMAP_S_QUOTED;
		return MF_AGAIN;
	case '{':
		if (arg_new(p, IMAP_ARG_LITERAL) == NULL)
			return fail(p, IMAP_ERR_TOO_MANY_ARGS, c);
		p->lit_len = 0;
		p->lit_nonsync = false;
		p->state = IMAP_S_LIT_OPEN;
		return MF_AGAIN;
	case '\r':
	case '\n':
		/* "a NOOP \r\n": a trailing SP is tolerated, an open list not */
		if (p->depth > 0)
			return fail(p, IMAP_ERR_SYNTAX, c);
		return line_end(p, c);
	default:
		break;
	}
	if (!is_atom_char(c))
		return fail(p, bad_char_err(c), c);
	a = arg_new(p, IMAP_ARG_ATOM);
	if (a == NULL)
		return fail(p, IMAP_ERR_TOO_MANY_ARGS, c);
	p->state = IMAP_S_ATOM;
	return put(p, c, c);
}

static int after_arg_byte(struct imap_parser *p, uint8_t c)
{
	switch (c) {
	case ' ':
		p->state = IMAP_S_ARG_START;
		return MF_AGAIN;
	case ')':
		if (p->depth == 0)
			return fail(p, IMAP_ERR_SYNTAX, c);
		list_close(p);
		return MF_AGAIN;
	case '\r':
	case '\n':
		if (p->depth > 0)
			return fail(p, IMAP_ERR_SYNTAX, c);
		return line_end(p, c);
	default:
		return fail(p, bad_char_err(c), c);
	}
}

static int quoted_byte(struct imap_parser *p, uint8_t c)
{
	if (p->utf8_left > 0) {
		if (c < p->utf8_lo || c > p->utf8_hi)
			return fail(p, IMAP_ERR_BAD_CHAR, c);
		p->utf8_left--;
		p->utf8_lo = 0x80;
		p->utf8_hi = 0xbf;
		return put(p, c, c);
	}
	switch (c) {
	case '"':
		arg_end(p);
		return MF_AGAIN;
	case '\\':
		p->state = IMAP_S_QUOTED_ESC;
		return MF_AGAIN;
	case '\r':
	case '\n':
		return fail(p, IMAP_ERR_SYNTAX, c); /* unterminated */
	default:
		break;
	}
	if (c < 0x20 || c == 0x7f)
		return fail(p, IMAP_ERR_BAD_CHAR, c);
	if (c >= 0x80 && (!p->lim.utf8 || !utf8_start(p, c)))
		return fail(p, IMAP_ERR_BAD_CHAR, c);
	return put(p, c, c);
}

/* {n} or {n+} and its line end: the literal's data comes next. */
static int literal_announced(struct imap_parser *p)
{
	p->lit_left = (size_t)p->lit_len;
	p->lit_total += p->lit_left;
	p->args[p->cmd.n_args - 1].nonsync = p->lit_nonsync;
	if (!p->lit_nonsync)
		p->cont_due = true;
	if (p->lit_left == 0)
		arg_end(p);
	else
		p->state = IMAP_S_LIT_DATA;
	return MF_AGAIN;
}

static int literal_byte(struct imap_parser *p, uint8_t c)
{
	switch (p->state) {
	case IMAP_S_LIT_OPEN:
		if (!is_digit(c))
			return fail(p, IMAP_ERR_SYNTAX, c);
		p->lit_len = c - '0';
		p->state = IMAP_S_LIT_NUM;
		return MF_AGAIN;
	case IMAP_S_LIT_NUM:
		if (is_digit(c)) {
			/* saturate: {99999999999999999999} must not wrap */
			p->lit_len = p->lit_len * 10 + (c - '0');
			if (p->lit_len > p->lim.max_literal)
				p->lit_len = (uint64_t)p->lim.max_literal + 1;
			return MF_AGAIN;
		}
		if (c == '+') {
			p->lit_nonsync = true;
			p->state = IMAP_S_LIT_PLUS;
			return MF_AGAIN;
		}
		if (c != '}')
			return fail(p, IMAP_ERR_SYNTAX, c);
		break;
	case IMAP_S_LIT_PLUS:
		if (c != '}')
			return fail(p, IMAP_ERR_SYNTAX, c);
		break;
	case IMAP_S_LIT_CLOSE:
		if (c == '\r') {
			p->state = IMAP_S_LIT_CR;
			return MF_AGAIN;
		}
		if (c == '\n')
			return literal_announced(p);
		return fail(p, IMAP_ERR_SYNTAX, c);
	case IMAP_S_LIT_CR:
		if (c != '\n')
			return fail(p, IMAP_ERR_BAD_CRLF, c);
		return literal_announced(p);
	default:
		return fail(p, IMAP_ERR_STATE, c);
	}
	/* at "}": a refused {n} leaves the client waiting for our "+", so
	 * the session goes on; a refused {n+} is followed by its bytes */
	if (p->lit_nonsync && p->lit_len > p->lim.max_nonsync)
		return close_fatal(p, IMAP_ERR_LITERAL_TOO_BIG);
	if (p->lit_len > p->lim.max_literal - p->lit_total) {
		if (p->lit_nonsync)
			return close_fatal(p, IMAP_ERR_LITERAL_TOO_BIG);
		return fail(p, IMAP_ERR_LITERAL_TOO_BIG, c);
	}
	p->state = IMAP_S_LIT_CLOSE;
	return MF_AGAIN;
}

/* Every byte of a command outside literal data. */
static int line_byte(struct imap_parser *p, uint8_t c)
{
	switch (p->state) {
	case IMAP_S_START:
		if (c == '\n') { /* empty lines between commands are ignored */
			p->line_len = 0;
			return MF_AGAIN;
		}
		if (c == '\r') {
			p->state = IMAP_S_START_CR;
			return MF_AGAIN;
		}
		if (!is_tag_char(c))
			return fail(p, IMAP_ERR_BAD_TAG, c);
		p->str_start = p->arena_len;
		p->state = IMAP_S_TAG;
		return put(p, c, c);
	case IMAP_S_START_CR:
		if (c != '\n')
			return fail(p, IMAP_ERR_BAD_CRLF, c);
		p->line_len = 0;
		p->state = IMAP_S_START;
		return MF_AGAIN;
	case IMAP_S_TAG:
		if (is_tag_char(c))
			return put(p, c, c);
		if (c != ' ' && c != '\r' && c != '\n')
			return fail(p, IMAP_ERR_BAD_TAG, c);
		p->cmd.tag = token_end(p, &p->cmd.tag_len);
		if (c != ' ')
			return fail(p, IMAP_ERR_SYNTAX, c); /* no command */
		p->state = IMAP_S_NAME_START;
		return MF_AGAIN;
	case IMAP_S_NAME_START:
	case IMAP_S_NAME:
		if (is_atom_char(c)) {
			if (p->state == IMAP_S_NAME_START)
				p->str_start = p->arena_len;
			p->state = IMAP_S_NAME;
			return put(p, c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c, c);
		}
		if (p->state == IMAP_S_NAME_START ||
		    (c != ' ' && c != '\r' && c != '\n'))
			return fail(p, bad_char_err(c), c);
		name_end(p);
		if (c == ' ') {
			p->state = IMAP_S_ARG_START;
			return MF_AGAIN;
		}
		return line_end(p, c);
	case IMAP_S_ARG_START:
		return arg_start_byte(p, c);
	case IMAP_S_AFTER_ARG:
		return after_arg_byte(p, c);
	case IMAP_S_ATOM:
		if (is_atom_char(c))
			return put(p, c, c);
		arg_end(p);
		return after_arg_byte(p, c);
	case IMAP_S_QUOTED:
		return quoted_byte(p, c);
	case IMAP_S_QUOTED_ESC:
		if (c != '"' && c != '\\')
			return fail(p, IMAP_ERR_BAD_ESCAPE, c);
		p->state = IMAP_S_QUOTED;
		return put(p, c, c);
	case IMAP_S_LIT_OPEN:
	case IMAP_S_LIT_NUM:
	case IMAP_S_LIT_PLUS:
	case IMAP_S_LIT_CLOSE:
	case IMAP_S_LIT_CR:
		return literal_byte(p, c);
	case IMAP_S_END_CR:
		if (c != '\n')
			return fail(p, IMAP_ERR_BAD_CRLF, c);
		p->state = IMAP_S_START;
		return MF_OK;
	case IMAP_S_SASL:
		if (c == '\r') {
			p->state = IMAP_S_SASL_CR;
			return MF_AGAIN;
		}
		if (c != '\n')
			return put(p, c, c);
		break;
	case IMAP_S_SASL_CR:
		if (c != '\n')
			return fail(p, IMAP_ERR_BAD_CRLF, c);
		break;
	default:
		return fail(p, IMAP_ERR_STATE, c);
	}
	/* the end of a SASL response line */
	p->cmd.kind = IMAP_CMD_SASL_LINE;
	p->cmd.line = token_end(p, &p->cmd.line_len);
	p->state = IMAP_S_START;
	return MF_OK;
}

static int step(struct imap_parser *p, uint8_t c)
{
	switch (p->state) {
	case IMAP_S_SKIP_LINE:
		return skip_byte(p, c);
	case IMAP_S_SKIP_LIT:
		if (--p->lit_left == 0) {
			p->state = IMAP_S_SKIP_LINE;
			p->skip_tail = TAIL_NONE;
		}
		return MF_AGAIN;
	case IMAP_S_LIT_DATA:
		p->lit_left--;
		if (c == '\0')
			return fail(p, IMAP_ERR_NUL, c);
		if (put(p, c, c) == MF_ERROR)
			return MF_ERROR;
		if (p->lit_left == 0)
			arg_end(p);
		return MF_AGAIN;
	case IMAP_S_CLOSED:
		return MF_ERROR;
	default:
		break;
	}
	if (p->line_len >= p->lim.max_line) {
		p->line_len++;
		return fail(p, IMAP_ERR_LINE_TOO_LONG, c);
	}
	p->line_len++;
	if (c == '\0')
		return fail(p, IMAP_ERR_NUL, c);
	return line_byte(p, c);
}

int imap_parser_feed(struct imap_parser *p, const uint8_t *buf, size_t len,
		     size_t *used_r, struct imap_cmd *cmd_r)
{
	size_t i;
	int rc;

	*used_r = 0;
	if (p->state == IMAP_S_CLOSED) {
		memset(cmd_r, 0, sizeof(*cmd_r));
		cmd_r->err = p->closed_err;
		cmd_r->must_close = true;
		return MF_ERROR;
	}
	p->cont_due = false;
	if (p->done) {
		command_reset(p);
		p->done = false;
	}
	for (i = 0; i < len; i++) {
		rc = step(p, buf[i]);
		if (rc != MF_AGAIN) {
			p->cmd.n_args = rc == MF_OK ? p->cmd.n_args : 0;
			*cmd_r = p->cmd;
			*used_r = i + 1;
			p->done = true;
			return rc;
		}
		if (p->cont_due) {
			*used_r = i + 1;
			return MF_AGAIN;
		}
	}
	*used_r = len;
	return MF_AGAIN;
}
