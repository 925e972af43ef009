/* Unit tests: gateway/pop3_parser.c — every case fed whole, one byte at a
 * time and in random splits, through a caller that owns a bounded buffer
 * exactly like a session does. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mf.h"
#include "pop3_parser.h"

#define MAX_RESULTS 64
#define FIELD_MAX 300

/* One non-AGAIN result, copied out of the buffer so runs can be compared. */
struct result {
	int rc;
	enum pop3_cmd_type type;
	enum pop3_parse_error error;
	bool resync;
	size_t raw_len;
	size_t arg_len, arg2_len, name_len;
	char arg[FIELD_MAX], arg2[FIELD_MAX], name[FIELD_MAX];
};

struct run {
	struct result res[MAX_RESULTS];
	size_t n;
	size_t peak; /* most bytes the caller kept for the parser */
};

static void copy_field(char *dst, const uint8_t *src, size_t len)
{
	size_t n = len < FIELD_MAX - 1 ? len : FIELD_MAX - 1;

	if (src != NULL)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

/* chunk: 0 = as much as the buffer takes, 1 = one byte at a time, larger
 * values = random sizes 1..chunk from seed. The buffer holds cap bytes, as
 * a session's read buffer would. */
static void run_pop3(const char *in, size_t in_len, size_t chunk,
		     unsigned int seed, bool auth_after_plus, struct run *r)
{
	struct pop3_parser p;
	size_t cap = POP3_AUTH_LINE_MAX_DEFAULT, plen = 0, pos = 0;
	uint8_t *buf = malloc(cap);

	assert_non_null(buf);
	memset(r, 0, sizeof(*r));
	pop3_parser_init(&p);
	for (;;) {
		size_t room = cap - plen, take = in_len - pos;
		bool fed_nothing;

		if (chunk == 1)
			take = take < 1 ? take : 1;
		else if (chunk > 1) {
			size_t want = 1 + (size_t)rand_r(&seed) % chunk;

			take = take < want ? take : want;
		}
		take = take < room ? take : room;
		memcpy(buf + plen, in + pos, take);
		plen += take;
		pos += take;
		fed_nothing = take == 0;
		for (;;) {
			struct pop3_cmd cmd;
			size_t used;
			int rc = pop3_parser_feed(&p, buf, plen, &used, &cmd);

			assert_true(used <= plen);
			if (rc != MF_AGAIN) {
				struct result *x;

				assert_true(used >= 1);
				assert_true(r->n < MAX_RESULTS);
				x = &r->res[r->n++];
				x->rc = rc;
				x->type = cmd.type;
				x->error = cmd.error;
				x->resync = cmd.resync;
				x->raw_len = cmd.raw_len;
				x->arg_len = cmd.arg_len;
				x->arg2_len = cmd.arg2_len;
				x->name_len = cmd.name_len;
				copy_field(x->arg, cmd.arg, cmd.arg_len);
				copy_field(x->arg2, cmd.arg2, cmd.arg2_len);
				copy_field(x->name, cmd.name, cmd.name_len);
				/* Tests of AUTH continuations: a "+" answer
				 * precedes each line after an AUTH. */
				if (auth_after_plus && rc == MF_OK &&
				    (cmd.type == POP3_CMD_AUTH ||
				     cmd.type == POP3_CMD_AUTH_DATA))
					pop3_parser_expect_auth_data(&p);
			}
			memmove(buf, buf + used, plen - used);
			plen -= used;
			if (rc == MF_AGAIN)
				break;
		}
		/* The parser promised to decide before the buffer fills. */
		assert_true(plen < cap);
		if (plen > r->peak)
			r->peak = plen;
		if (fed_nothing && pos == in_len)
			break;
	}
	free(buf);
}

static void assert_same_runs(const struct run *a, const struct run *b)
{
	size_t i;

	assert_int_equal(a->n, b->n);
	for (i = 0; i < a->n; i++) {
		const struct result *x = &a->res[i], *y = &b->res[i];

		assert_int_equal(x->rc, y->rc);
		assert_int_equal(x->type, y->type);
		assert_int_equal(x->error, y->error);
		assert_int_equal(x->resync, y->resync);
		assert_int_equal(x->raw_len, y->raw_len);
		assert_int_equal(x->arg_len, y->arg_len);
		assert_int_equal(x->arg2_len, y->arg2_len);
		assert_int_equal(x->name_len, y->name_len);
		assert_memory_equal(x->arg, y->arg, FIELD_MAX);
		assert_memory_equal(x->arg2, y->arg2, FIELD_MAX);
		assert_memory_equal(x->name, y->name, FIELD_MAX);
	}
}

/* Runs in every split and checks they agree; returns the whole-feed run. */
static struct run *parse_all(const char *in, size_t in_len, bool auth)
{
	static struct run whole, other;
	static const size_t chunks[] = { 1, 2, 3, 7, 64 };
	size_t c;
	unsigned int seed;

	run_pop3(in, in_len, 0, 0, auth, &whole);
	for (c = 0; c < MF_ARRAY_LEN(chunks); c++)
		for (seed = 1; seed <= (chunks[c] == 1 ? 1u : 8u); seed++) {
			run_pop3(in, in_len, chunks[c], seed, auth, &other);
			assert_same_runs(&whole, &other);
		}
	return &whole;
}

#define PARSE(s) parse_all((s), sizeof(s) - 1, false)

static void test_session(void **state)
{
	struct run *r = PARSE("CAPA\r\nstls\r\nUSER alice@example.org\r\n"
			      "PASS  my secret \r\nNOOP\r\nQUIT\r\n");

	(void)state;
	assert_int_equal(r->n, 6);
	assert_int_equal(r->res[0].type, POP3_CMD_CAPA);
	assert_int_equal(r->res[0].raw_len, 6);
	assert_int_equal(r->res[1].type, POP3_CMD_STLS);
	assert_string_equal(r->res[1].name, "stls");
	assert_int_equal(r->res[2].type, POP3_CMD_USER);
	assert_string_equal(r->res[2].arg, "alice@example.org");
	assert_int_equal(r->res[3].type, POP3_CMD_PASS);
	/* RFC 1939 §7: the password is the rest of the line, as sent. */
	assert_string_equal(r->res[3].arg, " my secret ");
	assert_int_equal(r->res[4].type, POP3_CMD_NOOP);
	assert_int_equal(r->res[5].type, POP3_CMD_QUIT);
	for (size_t i = 0; i < r->n; i++)
		assert_int_equal(r->res[i].rc, MF_OK);
}

static void test_auth(void **state)
{
	struct run *r;

	(void)state;
	r = PARSE("AUTH\r\nAUTH PLAIN\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"
		  "AUTH PLAIN =\r\nAUTH PLAIN a b\r\nAPOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n"
		  "APOP mrose\r\n");
	assert_int_equal(r->n, 7);
	assert_int_equal(r->res[0].type, POP3_CMD_AUTH);
	assert_int_equal(r->res[0].arg_len, 0);
	assert_string_equal(r->res[1].arg, "PLAIN");
	assert_int_equal(r->res[1].arg2_len, 0);
	assert_string_equal(r->res[2].arg2, "AGFsaWNlAHNlY3JldA==");
	assert_string_equal(r->res[3].arg2, "=");
	assert_int_equal(r->res[4].rc, MF_ERROR);
	assert_int_equal(r->res[4].error, POP3_PERR_SYNTAX);
	assert_int_equal(r->res[4].type, POP3_CMD_AUTH);
	assert_true(r->res[4].resync);
	assert_int_equal(r->res[5].type, POP3_CMD_APOP);
	assert_string_equal(r->res[5].arg, "mrose");
	assert_int_equal(r->res[5].arg2_len, 32);
	assert_int_equal(r->res[6].rc, MF_ERROR);

	/* Continuation lines: long ones allowed, "*" cancels, then commands. */
	{
		static char in[6000];
		size_t n;

		n = (size_t)snprintf(in, sizeof(in), "AUTH LOGIN\r\n");
		memset(in + n, 'Q', 5000);
		n += 5000;
		n += (size_t)snprintf(in + n, sizeof(in) - n, "\r\n*\r\nQUIT\r\n");
		r = parse_all(in, n, true);
	}
	assert_int_equal(r->n, 4);
	assert_int_equal(r->res[0].type, POP3_CMD_AUTH);
	assert_int_equal(r->res[1].type, POP3_CMD_AUTH_DATA);
	assert_int_equal(r->res[1].arg_len, 5000);
	assert_int_equal(r->res[2].type, POP3_CMD_AUTH_CANCEL);
	/* The continuation mode lasts one line: after "*" a command. */
	assert_int_equal(r->res[3].type, POP3_CMD_QUIT);
}

static void test_syntax(void **state)
{
	struct run *r = PARSE("USER\r\nUSER \r\nPASS\r\nCAPA x\r\nQUIT  \r\n"
			      "\r\nXTND foo\r\nretr 1\r\n");

	(void)state;
	assert_int_equal(r->n, 8);
	assert_int_equal(r->res[0].error, POP3_PERR_SYNTAX);
	assert_int_equal(r->res[0].type, POP3_CMD_USER);
	assert_int_equal(r->res[1].error, POP3_PERR_SYNTAX);
	assert_int_equal(r->res[2].error, POP3_PERR_SYNTAX);
	assert_int_equal(r->res[3].error, POP3_PERR_SYNTAX);
	assert_int_equal(r->res[4].rc, MF_OK); /* trailing blanks tolerated */
	assert_int_equal(r->res[5].error, POP3_PERR_EMPTY);
	assert_true(r->res[5].resync);
	assert_int_equal(r->res[6].type, POP3_CMD_UNKNOWN);
	assert_string_equal(r->res[6].name, "XTND");
	assert_int_equal(r->res[7].type, POP3_CMD_UNKNOWN);
	assert_string_equal(r->res[7].name, "retr");
}

static void test_line_ends(void **state)
{
	static const char in[] = "CAPA\nUSER a\rb\r\nNOOP\r\r\nQU\0T\r\nQUIT\r\n";
	struct run *r = parse_all(in, sizeof(in) - 1, false);

	(void)state;
	assert_int_equal(r->n, 5);
	assert_int_equal(r->res[0].rc, MF_OK); /* bare LF accepted */
	assert_int_equal(r->res[0].type, POP3_CMD_CAPA);
	assert_int_equal(r->res[0].raw_len, 5);
	assert_int_equal(r->res[1].error, POP3_PERR_BARE_CR);
	assert_true(r->res[1].resync);
	assert_int_equal(r->res[2].error, POP3_PERR_BARE_CR);
	assert_int_equal(r->res[3].error, POP3_PERR_NUL);
	assert_false(r->res[3].resync);
	assert_int_equal(r->res[4].type, POP3_CMD_QUIT);
}

static void test_strict_lf(void **state)
{
	struct pop3_parser p;
	struct pop3_cmd cmd;
	size_t used;
	const uint8_t in[] = "CAPA\nQUIT\r\n";

	(void)state;
	pop3_parser_init(&p);
	p.allow_bare_lf = false;
	assert_int_equal(pop3_parser_feed(&p, in, sizeof(in) - 1, &used, &cmd),
			 MF_ERROR);
	assert_int_equal(cmd.error, POP3_PERR_BARE_LF);
	assert_int_equal(used, 5);
	assert_int_equal(pop3_parser_feed(&p, in + 5, sizeof(in) - 6, &used, &cmd),
			 MF_OK);
	assert_int_equal(cmd.type, POP3_CMD_QUIT);
}

static void test_limits(void **state)
{
	static char in[(1 << 20) + 100];
	struct run *r;
	size_t n;

	(void)state;
	/* 253 octets + CRLF = 255 is the RFC 2449 maximum; one more fails. */
	memcpy(in, "USER ", 5);
	memset(in + 5, 'u', 248);
	memcpy(in + 253, "\r\n", 2);
	r = parse_all(in, 255, false);
	assert_int_equal(r->n, 1);
	assert_int_equal(r->res[0].rc, MF_OK);
	assert_int_equal(r->res[0].arg_len, 248);
	memset(in + 5, 'u', 249);
	memcpy(in + 254, "\r\n", 2);
	r = parse_all(in, 256, false);
	assert_int_equal(r->n, 1);
	assert_int_equal(r->res[0].error, POP3_PERR_LINE_TOO_LONG);

	/* A 1 MiB line: refused after 255 bytes, the rest skipped, and
	 * the caller never holds more than a line's worth. */
	memset(in, 'A', 1 << 20);
	n = 1 << 20;
	memcpy(in + n, "\r\nQUIT\r\n", 8);
	n += 8;
	r = parse_all(in, n, false);
	assert_int_equal(r->n, 2);
	assert_int_equal(r->res[0].rc, MF_ERROR);
	assert_int_equal(r->res[0].error, POP3_PERR_LINE_TOO_LONG);
	assert_false(r->res[0].resync);
	assert_int_equal(r->res[1].type, POP3_CMD_QUIT);
	assert_true(r->peak < POP3_LINE_MAX_DEFAULT);
}

static void test_used_and_wipe(void **state)
{
	struct pop3_parser p;
	struct pop3_cmd cmd;
	uint8_t buf[] = "PASS hunter2\r\nQUIT\r\n";
	size_t used, len = sizeof(buf) - 1;

	(void)state;
	pop3_parser_init(&p);
	/* Incomplete: nothing consumed, all examined. */
	assert_int_equal(pop3_parser_feed(&p, buf, 8, &used, &cmd), MF_AGAIN);
	assert_int_equal(used, 0);
	assert_int_equal(pop3_parser_feed(&p, buf, len, &used, &cmd), MF_OK);
	assert_int_equal(used, 14);
	assert_int_equal(cmd.type, POP3_CMD_PASS);
	assert_ptr_equal(cmd.arg, buf + 5);
	pop3_cmd_wipe(&cmd);
	assert_null(cmd.arg);
	for (size_t i = 0; i < 12; i++)
		assert_int_equal(buf[i], 0);
	assert_memory_equal(buf + 12, "\r\nQUIT", 6);
	assert_int_equal(pop3_parser_feed(&p, buf + used, len - used, &used, &cmd),
			 MF_OK);
	assert_int_equal(cmd.type, POP3_CMD_QUIT);
	assert_string_equal(pop3_cmd_type_str(POP3_CMD_STLS), "STLS");
	assert_string_equal(pop3_parse_error_str(POP3_PERR_NUL),
			    "NUL byte in line");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_session),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_line_ends),
		cmocka_unit_test(test_strict_lf),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_used_and_wipe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
