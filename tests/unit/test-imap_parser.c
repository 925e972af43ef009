/* Unit tests: gateway/imap_parser.c — every case is fed whole, one byte at a
 * time and in random splits, and the three transcripts must be identical. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap_parser.h"
#include "mf.h"
#include "sasl.h"

#define MAX_EVENTS 16
#define STR_MAX 64

enum ev_type { EV_CMD = 0, EV_ERR, EV_CONT };

struct ev_arg {
	enum imap_arg_type type;
	char str[STR_MAX];
	size_t len;
	unsigned int items, span;
	bool nonsync;
};

/* One thing the parser said, with its strings copied out. */
struct ev {
	enum ev_type type;
	size_t end; /* offset in the input just after the event's byte */
	enum imap_cmd_kind kind;
	char tag[STR_MAX], name[STR_MAX], line[STR_MAX];
	size_t line_len;
	unsigned int n_args;
	struct ev_arg args[IMAP_ARGS_MAX];
	enum imap_err err;
	bool must_close;
};

struct run {
	struct ev ev[MAX_EVENTS];
	unsigned int n;
	size_t consumed;
	size_t max_arena;
};

enum split { SPLIT_WHOLE = 0, SPLIT_BYTE, SPLIT_RANDOM };

static void copy_str(char *dst, const char *src, size_t len)
{
	if (src == NULL) {
		dst[0] = '\0';
		return;
	}
	if (len >= STR_MAX)
		len = STR_MAX - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static void record(struct run *r, enum ev_type type, size_t end,
		   const struct imap_cmd *cmd)
{
	struct ev *e;
	unsigned int i;

	assert_true(r->n < MAX_EVENTS);
	e = &r->ev[r->n++];
	memset(e, 0, sizeof(*e));
	e->type = type;
	e->end = end;
	if (cmd == NULL)
		return;
	e->kind = cmd->kind;
	copy_str(e->tag, cmd->tag, cmd->tag_len);
	copy_str(e->name, cmd->name, cmd->name_len);
	copy_str(e->line, cmd->line, cmd->line_len);
	e->line_len = cmd->line_len;
	e->err = cmd->err;
	e->must_close = cmd->must_close;
	if (type != EV_CMD)
		return;
	e->n_args = cmd->n_args;
	for (i = 0; i < cmd->n_args; i++) {
		const struct imap_arg *a = &cmd->args[i];

		assert_non_null(a->str);
		assert_int_equal(strlen(a->str), a->len); /* safe C string */
		e->args[i].type = a->type;
		copy_str(e->args[i].str, a->str, a->len);
		e->args[i].len = a->len;
		e->args[i].items = a->items;
		e->args[i].span = a->span;
		e->args[i].nonsync = a->nonsync;
	}
}

/* Feeds in[0..len) in the given split; arms a SASL line after every
 * AUTHENTICATE without initial response and after each SASL line while
 * sasl_more lines are wanted (AUTHENTICATE LOGIN asks two). */
static void run_split(const struct imap_limits *lim, const uint8_t *in,
		      size_t len, enum split split, unsigned int sasl_lines,
		      struct run *r)
{
	struct imap_parser p;
	struct imap_cmd cmd;
	size_t pos = 0, chunk_end, used;
	unsigned int sasl_left = 0;
	int rc;

	memset(r, 0, sizeof(*r));
	assert_int_equal(imap_parser_init(&p, lim), MF_OK);
	while (pos < len) {
		if (split == SPLIT_WHOLE)
			chunk_end = len;
		else if (split == SPLIT_BYTE)
			chunk_end = pos + 1;
		else
			chunk_end = pos + 1 + (size_t)(rand() % 17);
		if (chunk_end > len)
			chunk_end = len;
		while (pos < chunk_end) {
			rc = imap_parser_feed(&p, in + pos, chunk_end - pos, &used, &cmd);
			assert_true(used <= chunk_end - pos);
			if (p.arena_len > r->max_arena)
				r->max_arena = p.arena_len;
			assert_true(p.line_len <= lim->max_line + 1);
			pos += used;
			if (rc == MF_AGAIN && imap_parser_continuation_due(&p)) {
				assert_true(used > 0);
				record(r, EV_CONT, pos, NULL);
				continue;
			}
			if (rc == MF_AGAIN) {
				assert_int_equal(pos, chunk_end);
				break;
			}
			if (rc == MF_ERROR && used == 0) { /* closed */
				assert_true(cmd.must_close);
				goto out;
			}
			assert_true(used > 0);
			record(r, rc == MF_OK ? EV_CMD : EV_ERR, pos, &cmd);
			if (rc == MF_ERROR && cmd.must_close)
				goto out;
			if (rc == MF_OK && cmd.kind == IMAP_CMD_AUTHENTICATE &&
			    cmd.n_args == 1)
				sasl_left = sasl_lines;
			if (rc == MF_OK && sasl_left > 0 &&
			    (cmd.kind == IMAP_CMD_AUTHENTICATE ||
			     (cmd.kind == IMAP_CMD_SASL_LINE &&
			      strcmp(cmd.line, "*") != 0))) {
				sasl_left--;
				assert_int_equal(imap_parser_expect_sasl_line(&p), MF_OK);
			}
		}
	}
out:
	r->consumed = pos;
	imap_parser_free(&p);
}

static void assert_same_run(const struct run *a, const struct run *b)
{
	unsigned int i, j;

	assert_int_equal(a->n, b->n);
	assert_int_equal(a->consumed, b->consumed);
	for (i = 0; i < a->n; i++) {
		const struct ev *x = &a->ev[i], *y = &b->ev[i];

		assert_int_equal(x->type, y->type);
		assert_int_equal(x->end, y->end);
		assert_int_equal(x->kind, y->kind);
		assert_string_equal(x->tag, y->tag);
		assert_string_equal(x->name, y->name);
		assert_string_equal(x->line, y->line);
		assert_int_equal(x->err, y->err);
		assert_int_equal(x->must_close, y->must_close);
		assert_int_equal(x->n_args, y->n_args);
		for (j = 0; j < x->n_args; j++) {
			assert_int_equal(x->args[j].type, y->args[j].type);
			assert_string_equal(x->args[j].str, y->args[j].str);
			assert_int_equal(x->args[j].len, y->args[j].len);
			assert_int_equal(x->args[j].span, y->args[j].span);
		}
	}
}

/* The result of feeding whole, checked equal to byte-at-a-time and to five
 * random splittings. */
static struct run *parse_lim(const struct imap_limits *lim, const void *in,
			     size_t len, unsigned int sasl_lines)
{
	static struct run whole, other;
	int i;

	run_split(lim, in, len, SPLIT_WHOLE, sasl_lines, &whole);
	run_split(lim, in, len, SPLIT_BYTE, sasl_lines, &other);
	assert_same_run(&whole, &other);
	for (i = 0; i < 5; i++) {
		run_split(lim, in, len, SPLIT_RANDOM, sasl_lines, &other);
		assert_same_run(&whole, &other);
	}
	assert_true(whole.max_arena <= lim->max_line + lim->max_literal);
	return &whole;
}

static struct run *parse_n(const void *in, size_t len, unsigned int sasl_lines)
{
	struct imap_limits lim;

	imap_limits_get_default(&lim);
	return parse_lim(&lim, in, len, sasl_lines);
}

static struct run *parse(const char *in)
{
	return parse_n(in, strlen(in), 1);
}

/* for inputs holding NUL bytes */
#define PARSE_BIN(lit) parse_n(lit, sizeof(lit) - 1, 1)

static void assert_cmd(const struct ev *e, const char *tag,
		       enum imap_cmd_kind kind, unsigned int n_args)
{
	assert_int_equal(e->type, EV_CMD);
	assert_string_equal(e->tag, tag);
	assert_int_equal(e->kind, kind);
	assert_int_equal(e->n_args, n_args);
}

static void assert_arg(const struct ev *e, unsigned int i,
		       enum imap_arg_type type, const char *str)
{
	assert_int_equal(e->args[i].type, type);
	assert_string_equal(e->args[i].str, str);
}

static void assert_err(const struct ev *e, enum imap_err err, bool must_close)
{
	assert_int_equal(e->type, EV_ERR);
	assert_int_equal(e->err, err);
	assert_int_equal(e->must_close, must_close);
}

static void test_login_atoms(void **state)
{
	struct run *r;

	(void)state;
	r = parse("a1 LOGIN user@example.org s3cr*t]\r\n");
	assert_int_equal(r->n, 1);
	assert_cmd(&r->ev[0], "a1", IMAP_CMD_LOGIN, 2);
	assert_string_equal(r->ev[0].name, "LOGIN");
	assert_arg(&r->ev[0], 0, IMAP_ARG_ATOM, "user@example.org");
	assert_arg(&r->ev[0], 1, IMAP_ARG_ATOM, "s3cr*t]");
	assert_int_equal(r->consumed, strlen("a1 LOGIN user@example.org s3cr*t]\r\n"));
}

static void test_login_quoted_lowercase(void **state)
{
	struct run *r;

	(void)state;
	r = parse("x.1 login \"us\\\"er\" \"p\\\\ss wd\"\r\n");
	assert_int_equal(r->n, 1);
	assert_cmd(&r->ev[0], "x.1", IMAP_CMD_LOGIN, 2);
	assert_string_equal(r->ev[0].name, "LOGIN");
	assert_arg(&r->ev[0], 0, IMAP_ARG_QUOTED, "us\"er");
	assert_arg(&r->ev[0], 1, IMAP_ARG_QUOTED, "p\\ss wd");
	r = parse("a LoGiN \"\" nil\r\n"); /* empty quoted, NIL as astring */
	assert_cmd(&r->ev[0], "a", IMAP_CMD_LOGIN, 2);
	assert_arg(&r->ev[0], 0, IMAP_ARG_QUOTED, "");
	assert_arg(&r->ev[0], 1, IMAP_ARG_NIL, "nil");
}

static void test_login_literal_sync(void **state)
{
	static const char in[] = "a3 LOGIN {4}\r\nuser {6}\r\nsecret\r\n";
	struct run *r;

	(void)state;
	r = parse(in);
	assert_int_equal(r->n, 3);
	assert_int_equal(r->ev[0].type, EV_CONT);
	assert_int_equal(r->ev[0].end, strlen("a3 LOGIN {4}\r\n"));
	assert_int_equal(r->ev[1].type, EV_CONT);
	assert_int_equal(r->ev[1].end, strlen("a3 LOGIN {4}\r\nuser {6}\r\n"));
	assert_cmd(&r->ev[2], "a3", IMAP_CMD_LOGIN, 2);
	assert_arg(&r->ev[2], 0, IMAP_ARG_LITERAL, "user");
	assert_arg(&r->ev[2], 1, IMAP_ARG_LITERAL, "secret");
	assert_false(r->ev[2].args[0].nonsync);
	assert_int_equal(r->ev[2].end, strlen(in));
	/* {0} still needs the continuation; literal data may hold anything
	 * but NUL, CRLF and quotes included */
	r = parse("a LOGIN {0}\r\n {5}\r\n\"\r\n)(\r\n");
	assert_int_equal(r->n, 3);
	assert_cmd(&r->ev[2], "a", IMAP_CMD_LOGIN, 2);
	assert_arg(&r->ev[2], 0, IMAP_ARG_LITERAL, "");
	assert_arg(&r->ev[2], 1, IMAP_ARG_LITERAL, "\"\r\n)(");
}

static void test_login_literal_nonsync(void **state)
{
	struct run *r;

	(void)state;
	r = parse("a4 LOGIN {4+}\r\nuser {6+}\r\nsecret\r\n");
	assert_int_equal(r->n, 1);
	assert_cmd(&r->ev[0], "a4", IMAP_CMD_LOGIN, 2);
	assert_arg(&r->ev[0], 0, IMAP_ARG_LITERAL, "user");
	assert_arg(&r->ev[0], 1, IMAP_ARG_LITERAL, "secret");
	assert_true(r->ev[0].args[1].nonsync);
	/* mixed: only the synchronizing one asks for "+" */
	r = parse("a LOGIN {4+}\r\nuser {2}\r\npw\r\n");
	assert_int_equal(r->n, 2);
	assert_int_equal(r->ev[0].type, EV_CONT);
	assert_cmd(&r->ev[1], "a", IMAP_CMD_LOGIN, 2);
}

static void check_plain(const char *b64, const char *user, const char *pass)
{
	uint8_t buf[300];
	size_t n;
	struct sasl_plain pl;

	assert_int_equal(sasl_b64_decode(b64, strlen(b64), buf, sizeof(buf), &n), MF_OK);
	assert_int_equal(sasl_plain_parse(buf, n, &pl), MF_OK);
	assert_string_equal(pl.authcid, user);
	assert_string_equal(pl.passwd, pass);
	sasl_plain_wipe(&pl);
	explicit_bzero(buf, sizeof(buf));
}

static void test_authenticate_plain(void **state)
{
	struct run *r;

	(void)state;
	/* SASL-IR */
	r = parse("a5 AUTHENTICATE PLAIN AHVzZXIAcGFzcw==\r\n");
	assert_int_equal(r->n, 1);
	assert_cmd(&r->ev[0], "a5", IMAP_CMD_AUTHENTICATE, 2);
	assert_arg(&r->ev[0], 0, IMAP_ARG_ATOM, "PLAIN");
	check_plain(r->ev[0].args[1].str, "user", "pass");
	/* without: the next line is the raw response */
	r = parse("a6 authenticate plain\r\nAHVzZXIAcGFzcw==\r\nb NOOP\r\n");
	assert_int_equal(r->n, 3);
	assert_cmd(&r->ev[0], "a6", IMAP_CMD_AUTHENTICATE, 1);
	assert_int_equal(r->ev[1].type, EV_CMD);
	assert_int_equal(r->ev[1].kind, IMAP_CMD_SASL_LINE);
	assert_string_equal(r->ev[1].line, "AHVzZXIAcGFzcw==");
	check_plain(r->ev[1].line, "user", "pass");
	assert_cmd(&r->ev[2], "b", IMAP_CMD_NOOP, 0);
	/* an empty response line is a line too (bare LF accepted) */
	r = parse("a AUTHENTICATE PLAIN\n\n");
	assert_int_equal(r->n, 2);
	assert_int_equal(r->ev[1].kind, IMAP_CMD_SASL_LINE);
	assert_int_equal(r->ev[1].line_len, 0);
}

static void test_authenticate_cancel_and_login(void **state)
{
	struct run *r;

	(void)state;
	r = parse("a7 AUTHENTICATE PLAIN\r\n*\r\nb NOOP\r\n");
	assert_int_equal(r->n, 3);
	assert_int_equal(r->ev[1].kind, IMAP_CMD_SASL_LINE);
	assert_string_equal(r->ev[1].line, "*");
	assert_cmd(&r->ev[2], "b", IMAP_CMD_NOOP, 0);
	/* AUTH=LOGIN: two response lines; "a b" is no command here */
	r = parse_n("a8 AUTHENTICATE LOGIN\r\ndXNlcg==\r\na b\r\n", 38, 2);
	assert_int_equal(r->n, 3);
	assert_string_equal(r->ev[1].line, "dXNlcg==");
	assert_int_equal(r->ev[2].kind, IMAP_CMD_SASL_LINE);
	assert_string_equal(r->ev[2].line, "a b");
}

static void test_sasl_line_bounds(void **state)
{
	char *in;
	struct run *r;
	struct imap_parser p;

	(void)state;
	in = malloc(20000);
	assert_non_null(in);
	strcpy(in, "a AUTHENTICATE PLAIN\r\n");
	memset(in + 22, 'A', 10000);
	strcpy(in + 10022, "\r\nb NOOP\r\n");
	r = parse(in);
	assert_int_equal(r->n, 3);
	assert_err(&r->ev[1], IMAP_ERR_LINE_TOO_LONG, false);
	assert_cmd(&r->ev[2], "b", IMAP_CMD_NOOP, 0);
	free(in);
	r = PARSE_BIN("a AUTHENTICATE PLAIN\r\nab\0c\r\nb NOOP\r\n");
	assert_int_equal(r->n, 3);
	assert_err(&r->ev[1], IMAP_ERR_NUL, false);
	/* only between commands */
	assert_int_equal(imap_parser_init(&p, NULL), MF_OK);
	{
		struct imap_cmd cmd;
		size_t used;

		assert_int_equal(imap_parser_feed(&p, (const uint8_t *)"a NO", 4,
						  &used, &cmd), MF_AGAIN);
		assert_int_equal(imap_parser_expect_sasl_line(&p), MF_ERROR);
	}
	imap_parser_free(&p);
}

static void test_id(void **state)
{
	struct run *r;

	(void)state;
	r = parse("a8 ID (\"name\" \"x\" \"version\" \"1\")\r\n");
	assert_int_equal(r->n, 1);
	assert_cmd(&r->ev[0], "a8", IMAP_CMD_ID, 5);
	assert_int_equal(r->ev[0].args[0].type, IMAP_ARG_LIST);
	assert_int_equal(r->ev[0].args[0].items, 4);
	assert_int_equal(r->ev[0].args[0].span, 4);
	assert_arg(&r->ev[0], 1, IMAP_ARG_QUOTED, "name");
	assert_arg(&r->ev[0], 4, IMAP_ARG_QUOTED, "1");
	r = parse("a9 ID NIL\r\n");
	assert_cmd(&r->ev[0], "a9", IMAP_CMD_ID, 1);
	assert_arg(&r->ev[0], 0, IMAP_ARG_NIL, "NIL");
	r = parse("a ID ()\r\n");
	assert_cmd(&r->ev[0], "a", IMAP_CMD_ID, 1);
	assert_int_equal(r->ev[0].args[0].items, 0);
	/* nested within the default depth 2, with a literal and NIL inside */
	r = parse("a X (a (b {1+}\r\nc) NIL) d\r\n");
	assert_cmd(&r->ev[0], "a", IMAP_CMD_UNKNOWN, 7);
	assert_string_equal(r->ev[0].name, "X");
	assert_int_equal(r->ev[0].args[0].items, 3);
	assert_int_equal(r->ev[0].args[0].span, 5);
	assert_int_equal(r->ev[0].args[2].items, 2);
	assert_arg(&r->ev[0], 4, IMAP_ARG_LITERAL, "c");
	assert_arg(&r->ev[0], 5, IMAP_ARG_NIL, "NIL");
	assert_arg(&r->ev[0], 6, IMAP_ARG_ATOM, "d");
}

static void test_simple_and_unknown(void **state)
{
	struct run *r;

	(void)state;
	r = parse("1 capability\r\n2 Noop\r\n3 LOGOUT\r\n4 starttls\r\n"
		  "5 select INBOX\r\n6 FETCH 1:* (FLAGS BODY[])\r\n7 NOOP \r\n");
	assert_int_equal(r->n, 7);
	assert_cmd(&r->ev[0], "1", IMAP_CMD_CAPABILITY, 0);
	assert_cmd(&r->ev[1], "2", IMAP_CMD_NOOP, 0);
	assert_cmd(&r->ev[2], "3", IMAP_CMD_LOGOUT, 0);
	assert_cmd(&r->ev[3], "4", IMAP_CMD_STARTTLS, 0);
	assert_cmd(&r->ev[4], "5", IMAP_CMD_UNKNOWN, 1);
	assert_string_equal(r->ev[4].name, "SELECT");
	assert_cmd(&r->ev[5], "6", IMAP_CMD_UNKNOWN, 4);
	assert_string_equal(r->ev[5].name, "FETCH");
	assert_cmd(&r->ev[6], "7", IMAP_CMD_NOOP, 0); /* trailing SP */
}

static void test_pipelined(void **state)
{
	static const char in[] = "a CAPABILITY\r\nb NOOP\r\nc LOGOUT\r\n";
	struct imap_parser p;
	struct imap_cmd cmd;
	size_t used;
	struct run *r;

	(void)state;
	assert_int_equal(imap_parser_init(&p, NULL), MF_OK);
	assert_int_equal(imap_parser_feed(&p, (const uint8_t *)in, strlen(in),
					  &used, &cmd), MF_OK);
	assert_int_equal(used, 14); /* one command, the rest stays */
	assert_int_equal(cmd.kind, IMAP_CMD_CAPABILITY);
	assert_int_equal(imap_parser_feed(&p, (const uint8_t *)in + 14,
					  strlen(in) - 14, &used, &cmd), MF_OK);
	assert_int_equal(used, 8);
	imap_parser_free(&p);
	r = parse("\r\n\na CAPABILITY\r\nb NOOP\r\nc LOGOUT\r\n"); /* empty lines skipped */
	assert_int_equal(r->n, 3);
	assert_int_equal(r->ev[0].end, 17);
	assert_int_equal(r->ev[1].end, 25);
	assert_cmd(&r->ev[2], "c", IMAP_CMD_LOGOUT, 0);
}

static void test_huge_line(void **state)
{
	size_t n = 1 << 20, pre = strlen("a LOGIN ");
	char *in = malloc(n + 32);
	struct run *r;

	(void)state;
	assert_non_null(in);
	memcpy(in, "a LOGIN ", pre);
	memset(in + pre, 'x', n);
	memcpy(in + pre + n, "\r\nb NOOP\r\n", 10);
	r = parse_n(in, pre + n + 10, 1);
	assert_int_equal(r->n, 2);
	assert_err(&r->ev[0], IMAP_ERR_LINE_TOO_LONG, false);
	assert_string_equal(r->ev[0].tag, "a"); /* for "a BAD" */
	assert_int_equal(r->ev[0].end, IMAP_DEFAULT_MAX_LINE + 1); /* not 1 MiB */
	assert_cmd(&r->ev[1], "b", IMAP_CMD_NOOP, 0);
	assert_true(r->max_arena <= IMAP_DEFAULT_MAX_LINE);
	free(in);
}

static void test_huge_literals(void **state)
{
	struct imap_limits lim;
	struct run *r;
	struct imap_parser p;
	struct imap_cmd cmd;
	size_t used;

	(void)state;
	r = parse("a LOGIN {4294967295}\r\nb NOOP\r\n");
	assert_int_equal(r->n, 2);
	assert_err(&r->ev[0], IMAP_ERR_LITERAL_TOO_BIG, false);
	assert_cmd(&r->ev[1], "b", IMAP_CMD_NOOP, 0);
	r = parse("a LOGIN {99999999999999999999}\r\nb NOOP\r\n");
	assert_int_equal(r->n, 2);
	assert_err(&r->ev[0], IMAP_ERR_LITERAL_TOO_BIG, false);
	/* {n+}: its bytes follow whatever we say, the session must close */
	r = parse("a LOGIN {4294967295+}\r\nxxxx");
	assert_int_equal(r->n, 1);
	assert_err(&r->ev[0], IMAP_ERR_LITERAL_TOO_BIG, true);
	assert_int_equal(r->ev[0].end, strlen("a LOGIN {4294967295+}"));
	/* LITERAL- by default: {n+} up to 4096 only */
	r = parse("a X {4097+}\r\n");
	assert_err(&r->ev[0], IMAP_ERR_LITERAL_TOO_BIG, true);
	r = parse("a X {4096+}\r\n");
	assert_int_equal(r->n, 0);
	/* LITERAL+: just at and just over the limit, the total of two */
	imap_limits_get_default(&lim);
	lim.max_nonsync = lim.max_literal;
	assert_int_equal(imap_parser_init(&p, &lim), MF_OK);
	assert_int_equal(imap_parser_feed(&p, (const uint8_t *)"a X {65536+}\r\n", 14,
					  &used, &cmd), MF_AGAIN);
	imap_parser_free(&p);
	r = parse("a X {65537}\r\n");
	assert_err(&r->ev[0], IMAP_ERR_LITERAL_TOO_BIG, false);
	r = parse_lim(&lim, "a X {65537+}\r\n", 14, 1);
	assert_err(&r->ev[0], IMAP_ERR_LITERAL_TOO_BIG, true);
	{
		static char in[70000];
		size_t k;

		k = (size_t)sprintf(in, "a X {60000+}\r\n");
		memset(in + k, 'y', 60000);
		k += 60000;
		k += (size_t)sprintf(in + k, " {6000}\r\nb NOOP\r\n");
		r = parse_lim(&lim, in, k, 1);
		assert_int_equal(r->n, 2);
		assert_err(&r->ev[0], IMAP_ERR_LITERAL_TOO_BIG, false);
		assert_cmd(&r->ev[1], "b", IMAP_CMD_NOOP, 0);
		assert_int_equal(parse_lim(&lim, in, 60014, 1)->n, 0);
	}
	lim.max_nonsync = lim.max_literal + 1;
	assert_int_equal(imap_parser_init(&p, &lim), MF_ERROR);
	/* closed: every later call refuses without consuming */
	assert_int_equal(imap_parser_init(&p, NULL), MF_OK);
	assert_int_equal(imap_parser_feed(&p, (const uint8_t *)"a X {9999999+}\r\n", 16,
					  &used, &cmd), MF_ERROR);
	assert_true(cmd.must_close);
	assert_int_equal(imap_parser_feed(&p, (const uint8_t *)"b NOOP\r\n", 8,
					  &used, &cmd), MF_ERROR);
	assert_int_equal(used, 0);
	assert_int_equal(cmd.err, IMAP_ERR_LITERAL_TOO_BIG);
	imap_parser_free(&p);
}

static void test_nul(void **state)
{
	struct run *r;

	(void)state;
	r = PARSE_BIN("a LOGIN us\0er pass\r\nb NOOP\r\n");
	assert_int_equal(r->n, 2);
	assert_err(&r->ev[0], IMAP_ERR_NUL, false);
	assert_cmd(&r->ev[1], "b", IMAP_CMD_NOOP, 0);
	/* in a literal: the rest of the literal is skipped, not parsed */
	r = PARSE_BIN("a LOGIN {5+}\r\na\0\r\nb pass\r\nc NOOP\r\n");
	assert_int_equal(r->n, 2);
	assert_err(&r->ev[0], IMAP_ERR_NUL, false);
	assert_cmd(&r->ev[1], "c", IMAP_CMD_NOOP, 0);
	r = PARSE_BIN("\0a NOOP\r\nb NOOP\r\n");
	assert_int_equal(r->n, 2);
	assert_err(&r->ev[0], IMAP_ERR_NUL, false);
}

static void test_unbalanced(void **state)
{
	struct run *r;

	(void)state;
	r = parse("a LOGIN \"user pass\r\nb NOOP\r\n");
	assert_int_equal(r->n, 2);
	assert_err(&r->ev[0], IMAP_ERR_SYNTAX, false);
	assert_int_equal(r->ev[0].end, strlen("a LOGIN \"user pass\r")); /* at CR */
	assert_cmd(&r->ev[1], "b", IMAP_CMD_NOOP, 0);
	r = parse("a ID (\"a\" \"b\"\r\nb ID \"a\")\r\nc ID ())\r\nd X a\"b\r\n");
	assert_int_equal(r->n, 4);
	assert_err(&r->ev[0], IMAP_ERR_SYNTAX, false);
	assert_err(&r->ev[1], IMAP_ERR_SYNTAX, false);
	assert_err(&r->ev[2], IMAP_ERR_SYNTAX, false);
	assert_err(&r->ev[3], IMAP_ERR_SYNTAX, false);
	r = parse("a LOGIN \"a\\b\" c\r\na LOGIN a  b\r\na LOGIN {x}\r\na LOGIN ~{1}\r\n");
	assert_int_equal(r->n, 4);
	assert_err(&r->ev[0], IMAP_ERR_BAD_ESCAPE, false);
	assert_err(&r->ev[1], IMAP_ERR_SYNTAX, false);
	assert_err(&r->ev[2], IMAP_ERR_SYNTAX, false);
	assert_err(&r->ev[3], IMAP_ERR_SYNTAX, false);
}

static void test_bad_tags(void **state)
{
	struct run *r;

	(void)state;
	r = parse("* LOGIN a b\r\n+ NOOP\r\n NOOP\r\na{ NOOP\r\n"
		  "a\r\n(a NOOP\r\na% NOOP\r\n\"a\" NOOP\r\nok] NOOP\r\n");
	assert_int_equal(r->n, 9);
	assert_err(&r->ev[0], IMAP_ERR_BAD_TAG, false);
	assert_string_equal(r->ev[0].tag, "");
	assert_err(&r->ev[1], IMAP_ERR_BAD_TAG, false);
	assert_err(&r->ev[2], IMAP_ERR_BAD_TAG, false);
	assert_err(&r->ev[3], IMAP_ERR_BAD_TAG, false);
	assert_err(&r->ev[4], IMAP_ERR_SYNTAX, false); /* a tag, no command */
	assert_string_equal(r->ev[4].tag, "a");
	assert_err(&r->ev[5], IMAP_ERR_BAD_TAG, false);
	assert_err(&r->ev[6], IMAP_ERR_BAD_TAG, false);
	assert_err(&r->ev[7], IMAP_ERR_BAD_TAG, false);
	assert_cmd(&r->ev[8], "ok]", IMAP_CMD_NOOP, 0);
	r = parse("a \r\n");
	assert_err(&r->ev[0], IMAP_ERR_BAD_CHAR, false);
	assert_string_equal(r->ev[0].tag, "a");
}

static void test_line_ends(void **state)
{
	struct run *r;

	(void)state;
	/* CR without LF: the rest of that line is dropped */
	r = parse("a NOOP\rb NOOP\r\nc NOOP\r\n");
	assert_int_equal(r->n, 2);
	assert_err(&r->ev[0], IMAP_ERR_BAD_CRLF, false);
	assert_int_equal(r->ev[0].end, 8);
	assert_cmd(&r->ev[1], "c", IMAP_CMD_NOOP, 0);
	r = parse("\rx\r\na NOOP\r\n");
	assert_err(&r->ev[0], IMAP_ERR_BAD_CRLF, false);
	assert_cmd(&r->ev[1], "a", IMAP_CMD_NOOP, 0);
	r = parse("a LOGIN {1}\rx\r\n");
	assert_err(&r->ev[0], IMAP_ERR_BAD_CRLF, false);
	/* bare LF is accepted everywhere, literal announcements included */
	r = parse("a NOOP\nb LOGIN {1}\nx \"y\"\n");
	assert_int_equal(r->n, 3);
	assert_cmd(&r->ev[0], "a", IMAP_CMD_NOOP, 0);
	assert_int_equal(r->ev[1].type, EV_CONT);
	assert_cmd(&r->ev[2], "b", IMAP_CMD_LOGIN, 2);
	assert_arg(&r->ev[2], 0, IMAP_ARG_LITERAL, "x");
}

static void test_limits(void **state)
{
	char in[400];
	size_t k;
	unsigned int i;
	struct run *r;
	struct imap_limits lim;

	(void)state;
	r = parse("a ID (((x)))\r\nb NOOP\r\n");
	assert_int_equal(r->n, 2);
	assert_err(&r->ev[0], IMAP_ERR_TOO_DEEP, false);
	assert_cmd(&r->ev[1], "b", IMAP_CMD_NOOP, 0);
	k = (size_t)sprintf(in, "a X");
	for (i = 0; i < IMAP_ARGS_MAX + 1; i++)
		k += (size_t)sprintf(in + k, " a");
	k += (size_t)sprintf(in + k, "\r\nb NOOP\r\n");
	r = parse_n(in, k, 1);
	assert_int_equal(r->n, 2);
	assert_err(&r->ev[0], IMAP_ERR_TOO_MANY_ARGS, false);
	/* small limits, set at init */
	imap_limits_get_default(&lim);
	lim.max_line = 20;
	lim.max_literal = 3;
	lim.max_nonsync = 3;
	lim.max_args = 2;
	lim.max_depth = 1;
	r = parse_lim(&lim, "a LOGIN abc def\r\n", 17, 1);
	assert_cmd(&r->ev[0], "a", IMAP_CMD_LOGIN, 2);
	r = parse_lim(&lim, "a LOGIN abc defghij\r\nb NOOP\r\n", 29, 1);
	assert_err(&r->ev[0], IMAP_ERR_LINE_TOO_LONG, false);
	assert_int_equal(r->ev[0].end, 21);
	assert_cmd(&r->ev[1], "b", IMAP_CMD_NOOP, 0);
	r = parse_lim(&lim, "a LOGIN {2+}\r\nab {2+}\r\ncd\r\n", 27, 1);
	assert_err(&r->ev[0], IMAP_ERR_LITERAL_TOO_BIG, true);
	r = parse_lim(&lim, "a X a b c\r\n", 11, 1);
	assert_err(&r->ev[0], IMAP_ERR_TOO_MANY_ARGS, false);
	lim.max_args = 0;
	{
		struct imap_parser p;

		assert_int_equal(imap_parser_init(&p, &lim), MF_ERROR);
	}
}

static void test_skipped_nonsync_literal(void **state)
{
	struct run *r;

	(void)state;
	/* a refused line announcing {n+}: its bytes would be read as commands */
	r = parse("a LOGIN \"x\x01\" {5+}\r\nhello\r\n");
	assert_int_equal(r->n, 2);
	assert_err(&r->ev[0], IMAP_ERR_BAD_CHAR, false);
	assert_err(&r->ev[1], IMAP_ERR_LITERAL_SKIPPED, true);
	/* a refused {n} is fine: the client waits for "+" that never comes */
	r = parse("a LOGIN \"x\x01\" {5}\r\nb NOOP\r\n");
	assert_int_equal(r->n, 2);
	assert_cmd(&r->ev[1], "b", IMAP_CMD_NOOP, 0);
}

static void test_8bit(void **state)
{
	static const char in[] = "a LOGIN \"j\xc3\xa9r\xc3\xb4me\" \"\xf0\x9f\x94\x91\"\r\n";
	struct imap_limits lim;
	struct run *r;

	(void)state;
	r = parse(in);
	assert_err(&r->ev[0], IMAP_ERR_BAD_CHAR, false);
	imap_limits_get_default(&lim);
	lim.utf8 = true;
	r = parse_lim(&lim, in, strlen(in), 1);
	assert_cmd(&r->ev[0], "a", IMAP_CMD_LOGIN, 2);
	assert_arg(&r->ev[0], 0, IMAP_ARG_QUOTED, "j\xc3\xa9r\xc3\xb4me");
	/* overlong, surrogate, truncated, 8-bit atom: refused even so */
	{
		static const char bad[] = "a X \"\xc0\xaf\"\r\nb X \"\xed\xa0\x80\"\r\n"
					  "c X \"\xc3\"\r\nd X \xc3\xa9\r\ne \xc3\xa9\r\n";

		r = parse_lim(&lim, bad, sizeof(bad) - 1, 1);
	}
	assert_int_equal(r->n, 5);
	assert_err(&r->ev[0], IMAP_ERR_BAD_CHAR, false);
	assert_err(&r->ev[1], IMAP_ERR_BAD_CHAR, false);
	assert_err(&r->ev[2], IMAP_ERR_BAD_CHAR, false);
	assert_err(&r->ev[3], IMAP_ERR_BAD_CHAR, false);
	assert_err(&r->ev[4], IMAP_ERR_BAD_CHAR, false);
	/* literals carry 8-bit bytes as they are */
	r = parse("a LOGIN {2+}\r\n\xff\x80 x\r\n");
	assert_cmd(&r->ev[0], "a", IMAP_CMD_LOGIN, 2);
	assert_arg(&r->ev[0], 0, IMAP_ARG_LITERAL, "\xff\x80");
}

static void test_wipe(void **state)
{
	struct imap_parser p;
	struct imap_cmd cmd;
	size_t used, i, written;
	static const char in[] = "a LOGIN user hunter2\r\n";

	(void)state;
	assert_int_equal(imap_parser_init(&p, NULL), MF_OK);
	assert_int_equal(imap_parser_feed(&p, (const uint8_t *)in, strlen(in),
					  &used, &cmd), MF_OK);
	assert_string_equal(cmd.args[1].str, "hunter2");
	/* The arguments are the last thing written, up to the password's NUL. */
	written = (size_t)((const uint8_t *)cmd.args[1].str - p.arena) + 8;
	imap_parser_wipe(&p);
	/* Everything the command put in the arena is gone (the rest of it
	 * was never written: wiping it would only make it resident). */
	for (i = 0; i < written; i++)
		assert_int_equal(p.arena[i], 0);
	assert_string_equal(imap_err_str(IMAP_ERR_NUL), "NUL byte in command");
	assert_string_equal(imap_err_str((enum imap_err)999), "unknown error");
	imap_parser_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_login_atoms),
		cmocka_unit_test(test_login_quoted_lowercase),
		cmocka_unit_test(test_login_literal_sync),
		cmocka_unit_test(test_login_literal_nonsync),
		cmocka_unit_test(test_authenticate_plain),
		cmocka_unit_test(test_authenticate_cancel_and_login),
		cmocka_unit_test(test_sasl_line_bounds),
		cmocka_unit_test(test_id),
		cmocka_unit_test(test_simple_and_unknown),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_huge_line),
		cmocka_unit_test(test_huge_literals),
		cmocka_unit_test(test_nul),
		cmocka_unit_test(test_unbalanced),
		cmocka_unit_test(test_bad_tags),
		cmocka_unit_test(test_line_ends),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_skipped_nonsync_literal),
		cmocka_unit_test(test_8bit),
		cmocka_unit_test(test_wipe),
	};

	srand(3);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
