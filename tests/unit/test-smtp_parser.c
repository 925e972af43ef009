/* Unit tests: gateway/smtp_parser.c — every case fed whole, one byte at a
 * time and in random splits, through a caller with a bounded buffer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mf.h"
#include "smtp_parser.h"

#define MAX_RESULTS 64
#define FIELD_MAX 600

struct result {
	int rc;
	enum smtp_cmd_type type;
	enum smtp_parse_error error;
	bool resync;
	size_t raw_len, line_len;
	char raw[FIELD_MAX], arg[FIELD_MAX], arg2[FIELD_MAX], name[FIELD_MAX];
	char addr[FIELD_MAX], local[FIELD_MAX], domain[FIELD_MAX];
	bool null_path, postmaster, quoted_local;
	unsigned int n_params;
	char key0[FIELD_MAX], value0[FIELD_MAX], key1[FIELD_MAX];
	bool value0_set;
	bool has_size, smtputf8, bdat_last;
	uint64_t size, bdat_size;
	enum smtp_body body;
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

static void record(struct result *x, int rc, const struct smtp_cmd *c)
{
	memset(x, 0, sizeof(*x));
	x->rc = rc;
	x->type = c->type;
	x->error = c->error;
	x->resync = c->resync;
	x->raw_len = c->raw_len;
	x->line_len = c->line_len;
	copy_field(x->raw, c->raw, c->raw_len);
	copy_field(x->arg, c->arg, c->arg_len);
	copy_field(x->arg2, c->arg2, c->arg2_len);
	copy_field(x->name, c->name, c->name_len);
	copy_field(x->addr, c->path.addr, c->path.addr_len);
	copy_field(x->local, c->path.local, c->path.local_len);
	copy_field(x->domain, c->path.domain, c->path.domain_len);
	x->null_path = c->path.null_path;
	x->postmaster = c->path.postmaster;
	x->quoted_local = c->path.quoted_local;
	x->n_params = c->n_params;
	if (c->n_params > 0) {
		copy_field(x->key0, c->params[0].key, c->params[0].key_len);
		copy_field(x->value0, c->params[0].value, c->params[0].value_len);
		x->value0_set = c->params[0].value != NULL;
	}
	if (c->n_params > 1)
		copy_field(x->key1, c->params[1].key, c->params[1].key_len);
	x->has_size = c->has_size;
	x->size = c->size;
	x->body = c->body;
	x->smtputf8 = c->smtputf8;
	x->bdat_size = c->bdat_size;
	x->bdat_last = c->bdat_last;
}

/* chunk: 0 = as much as the buffer takes, 1 = one byte at a time, larger
 * values = random sizes 1..chunk from seed. */
static void run_smtp(const char *in, size_t in_len, size_t chunk,
		     unsigned int seed, bool bare_lf, struct run *r)
{
	struct smtp_parser p;
	size_t cap = SMTP_AUTH_LINE_MAX_DEFAULT, plen = 0, pos = 0;
	uint8_t *buf = malloc(cap);

	assert_non_null(buf);
	memset(r, 0, sizeof(*r));
	smtp_parser_init(&p);
	p.allow_bare_lf = bare_lf;
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
			struct smtp_cmd cmd;
			size_t used;
			int rc = smtp_parser_feed(&p, buf, plen, &used, &cmd);

			assert_true(used <= plen);
			if (rc != MF_AGAIN) {
				assert_true(used >= 1);
				assert_true(r->n < MAX_RESULTS);
				if (cmd.raw != NULL) {
					/* raw is what gets relayed: it must be
					 * exactly the bytes consumed last. */
					assert_ptr_equal(cmd.raw + cmd.raw_len,
							 buf + used);
				}
				record(&r->res[r->n++], rc, &cmd);
				if (rc == MF_OK && cmd.type == SMTP_CMD_AUTH &&
				    cmd.arg2 == NULL)
					smtp_parser_expect_auth_data(&p);
			}
			memmove(buf, buf + used, plen - used);
			plen -= used;
			if (rc == MF_AGAIN)
				break;
		}
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
	for (i = 0; i < a->n; i++)
		assert_memory_equal(&a->res[i], &b->res[i], sizeof(a->res[i]));
}

static struct run *parse_all_lf(const char *in, size_t in_len, bool bare_lf)
{
	static struct run whole, other;
	static const size_t chunks[] = { 1, 2, 3, 7, 64 };
	size_t c;
	unsigned int seed;

	run_smtp(in, in_len, 0, 0, bare_lf, &whole);
	for (c = 0; c < MF_ARRAY_LEN(chunks); c++)
		for (seed = 1; seed <= (chunks[c] == 1 ? 1u : 8u); seed++) {
			run_smtp(in, in_len, chunks[c], seed, bare_lf, &other);
			assert_same_runs(&whole, &other);
		}
	return &whole;
}

#define PARSE(s) parse_all_lf((s), sizeof(s) - 1, false)

static void test_pipelined_session(void **state)
{
	struct run *r = PARSE(
		"EHLO client.example.org\r\n"
		"MAIL FROM:<alice@example.org> SIZE=1024 BODY=8BITMIME SMTPUTF8\r\n"
		"RCPT TO:<bob@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.net\r\n"
		"rcpt to: <\"carol smith\"@[198.18.11.3]>\r\n"
		"DATA\r\nRSET\r\nNOOP hello\r\nHELP\r\nVRFY bob\r\nEXPN list\r\n"
		"STARTTLS\r\nQUIT\r\n");

	(void)state;
	assert_int_equal(r->n, 12);
	for (size_t i = 0; i < r->n; i++)
		assert_int_equal(r->res[i].rc, MF_OK);
	assert_int_equal(r->res[0].type, SMTP_CMD_EHLO);
	assert_string_equal(r->res[0].arg, "client.example.org");
	assert_string_equal(r->res[0].raw, "EHLO client.example.org\r\n");
	assert_int_equal(r->res[0].line_len, 23);

	assert_int_equal(r->res[1].type, SMTP_CMD_MAIL);
	assert_string_equal(r->res[1].addr, "alice@example.org");
	assert_string_equal(r->res[1].local, "alice");
	assert_string_equal(r->res[1].domain, "example.org");
	assert_int_equal(r->res[1].n_params, 3);
	assert_string_equal(r->res[1].key0, "SIZE");
	assert_string_equal(r->res[1].value0, "1024");
	assert_true(r->res[1].has_size);
	assert_int_equal(r->res[1].size, 1024);
	assert_int_equal(r->res[1].body, SMTP_BODY_8BITMIME);
	assert_true(r->res[1].smtputf8);

	assert_int_equal(r->res[2].type, SMTP_CMD_RCPT);
	assert_string_equal(r->res[2].addr, "bob@example.net");
	assert_int_equal(r->res[2].n_params, 2);
	assert_string_equal(r->res[2].key1, "ORCPT");

	assert_int_equal(r->res[3].type, SMTP_CMD_RCPT);
	assert_true(r->res[3].quoted_local);
	assert_string_equal(r->res[3].local, "\"carol smith\"");
	assert_string_equal(r->res[3].domain, "[198.18.11.3]");

	assert_int_equal(r->res[4].type, SMTP_CMD_DATA);
	assert_int_equal(r->res[5].type, SMTP_CMD_RSET);
	assert_int_equal(r->res[6].type, SMTP_CMD_NOOP);
	assert_string_equal(r->res[6].arg, "hello");
	assert_int_equal(r->res[7].type, SMTP_CMD_HELP);
	assert_int_equal(r->res[8].type, SMTP_CMD_VRFY);
	assert_string_equal(r->res[8].arg, "bob");
	assert_int_equal(r->res[9].type, SMTP_CMD_EXPN);
	assert_int_equal(r->res[10].type, SMTP_CMD_STARTTLS);
	assert_int_equal(r->res[11].type, SMTP_CMD_QUIT);
}

static void test_paths(void **state)
{
	struct run *r = PARSE(
		"MAIL FROM:<>\r\n"
		"RCPT TO:<@relay1.example,@relay2.example:joe@example.com>\r\n"
		"RCPT TO:<Postmaster>\r\n"
		"RCPT TO:<>\r\n"
		"MAIL FROM:alice@example.org\r\n"
		"MAIL FROM:<alice@example.org\r\n"
		"MAIL FROM:<a..b@example.org>\r\n"
		"MAIL FROM:<.a@example.org>\r\n"
		"MAIL FROM:<a@-example.org>\r\n"
		"MAIL FROM:<a@example.org.>\r\n"
		"MAIL FROM:<a b@example.org>\r\n"
		"MAIL FROM:<\"a\\\"b\"@example.org>\r\n"
		"MAIL FROM:<\"unterminated@example.org>\r\n"
		"MAIL TO:<a@example.org>\r\n"
		"RCPT TO:<j\xc3\xb6rg@b\xc3\xbc"
		"cher.example>\r\n"
		"MAIL FROM:<a@example.org>x\r\n");

	(void)state;
	assert_int_equal(r->n, 16);
	assert_int_equal(r->res[0].rc, MF_OK);
	assert_true(r->res[0].null_path);
	assert_int_equal(r->res[1].rc, MF_OK);
	assert_string_equal(r->res[1].addr, "joe@example.com"); /* route stripped */
	assert_int_equal(r->res[2].rc, MF_OK);
	assert_true(r->res[2].postmaster);
	assert_int_equal(r->res[3].error, SMTP_PERR_PATH_SYNTAX); /* RCPT <> */
	assert_int_equal(r->res[4].error, SMTP_PERR_PATH_SYNTAX); /* no <> */
	assert_int_equal(r->res[5].error, SMTP_PERR_PATH_SYNTAX);
	assert_int_equal(r->res[6].error, SMTP_PERR_PATH_SYNTAX);
	assert_int_equal(r->res[7].error, SMTP_PERR_PATH_SYNTAX);
	assert_int_equal(r->res[8].error, SMTP_PERR_PATH_SYNTAX);
	assert_int_equal(r->res[9].error, SMTP_PERR_PATH_SYNTAX);
	assert_int_equal(r->res[10].error, SMTP_PERR_PATH_SYNTAX);
	assert_int_equal(r->res[11].rc, MF_OK);
	assert_string_equal(r->res[11].local, "\"a\\\"b\"");
	assert_int_equal(r->res[12].error, SMTP_PERR_PATH_SYNTAX);
	assert_int_equal(r->res[13].error, SMTP_PERR_SYNTAX);
	assert_int_equal(r->res[13].type, SMTP_CMD_MAIL);
	assert_int_equal(r->res[14].rc, MF_OK); /* SMTPUTF8 addresses */
	assert_int_equal(r->res[15].error, SMTP_PERR_PARAM_SYNTAX);
	for (size_t i = 3; i < r->n; i++)
		if (r->res[i].rc == MF_ERROR)
			assert_true(r->res[i].resync);
}

static void test_path_limits(void **state)
{
	static char in[2000];
	struct run *r;
	size_t n;

	(void)state;
	/* 64-octet local part is fine, 65 is not. */
	n = (size_t)snprintf(in, sizeof(in), "RCPT TO:<%.*s@x.example>\r\n"
			     "RCPT TO:<%.*s@x.example>\r\n", 64,
			     "llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll",
			     65,
			     "llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll");
	r = parse_all_lf(in, n, false);
	assert_int_equal(r->n, 2);
	assert_int_equal(r->res[0].rc, MF_OK);
	assert_int_equal(r->res[1].error, SMTP_PERR_LOCAL_TOO_LONG);

	/* <a@d> with d of 254 octets: 258 > 256 octets of path. */
	n = (size_t)snprintf(in, sizeof(in), "RCPT TO:<a@");
	for (int i = 0; i < 127; i++)
		n += (size_t)snprintf(in + n, sizeof(in) - n, i ? ".d" : "dd");
	n += (size_t)snprintf(in + n, sizeof(in) - n, "d>\r\n");
	r = parse_all_lf(in, n, false);
	assert_int_equal(r->n, 1);
	assert_int_equal(r->res[0].error, SMTP_PERR_PATH_TOO_LONG);
}

static void test_params(void **state)
{
	struct run *r = PARSE(
		"MAIL FROM:<a@b.example> SIZE=99999999999999999999\r\n"
		"MAIL FROM:<a@b.example> SIZE=12x\r\n"
		"MAIL FROM:<a@b.example> SIZE\r\n"
		"MAIL FROM:<a@b.example> SIZE=1 SIZE=2\r\n"
		"MAIL FROM:<a@b.example> BODY=9BIT\r\n"
		"MAIL FROM:<a@b.example> SMTPUTF8=yes\r\n"
		"MAIL FROM:<a@b.example> =x\r\n"
		"MAIL FROM:<a@b.example> X=\r\n"
		"MAIL FROM:<a@b.example> A B C D E F G H I J K L M N O P Q\r\n"
		"MAIL FROM:<a@b.example> SIZE=18446744073709551615 AUTH=<>   \r\n"
		"MAIL FROM:<a@b.example>  X-FOO  \r\n");

	(void)state;
	assert_int_equal(r->n, 11);
	assert_int_equal(r->res[0].error, SMTP_PERR_PARAM_VALUE);
	assert_int_equal(r->res[1].error, SMTP_PERR_PARAM_VALUE);
	assert_int_equal(r->res[2].error, SMTP_PERR_PARAM_VALUE);
	assert_int_equal(r->res[3].error, SMTP_PERR_PARAM_VALUE);
	assert_int_equal(r->res[4].error, SMTP_PERR_PARAM_VALUE);
	assert_int_equal(r->res[5].error, SMTP_PERR_PARAM_VALUE);
	assert_int_equal(r->res[6].error, SMTP_PERR_PARAM_SYNTAX);
	assert_int_equal(r->res[7].error, SMTP_PERR_PARAM_SYNTAX);
	assert_int_equal(r->res[8].error, SMTP_PERR_TOO_MANY_PARAMS);
	assert_int_equal(r->res[9].rc, MF_OK);
	assert_int_equal(r->res[9].size, UINT64_MAX);
	assert_int_equal(r->res[9].n_params, 2);
	assert_int_equal(r->res[10].rc, MF_OK);
	assert_string_equal(r->res[10].key0, "X-FOO");
	assert_false(r->res[10].value0_set);
}

static void test_bdat_auth_misc(void **state)
{
	struct run *r = PARSE(
		"BDAT 0 LAST\r\nbdat 18446744073709551615\r\n"
		"BDAT 99999999999999999999\r\nBDAT 18446744073709551616\r\n"
		"BDAT\r\nBDAT 12 FIRST\r\nBDAT -1\r\n"
		"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nAUTH LOGIN\r\n"
		"dXNlcg==\r\n*\r\nAUTH\r\n"
		"EHLO\r\nHELO a b\r\nDATA now\r\nVRFY\r\nXCLIENT ADDR=1.2.3.4\r\n"
		"\r\n  \r\n");

	(void)state;
	assert_int_equal(r->n, 19);
	assert_int_equal(r->res[0].rc, MF_OK);
	assert_int_equal(r->res[0].type, SMTP_CMD_BDAT);
	assert_int_equal(r->res[0].bdat_size, 0);
	assert_true(r->res[0].bdat_last);
	assert_int_equal(r->res[1].rc, MF_OK);
	assert_int_equal(r->res[1].bdat_size, UINT64_MAX);
	assert_false(r->res[1].bdat_last);
	assert_int_equal(r->res[2].error, SMTP_PERR_BDAT_SIZE);
	assert_int_equal(r->res[3].error, SMTP_PERR_BDAT_SIZE);
	assert_int_equal(r->res[4].error, SMTP_PERR_BDAT_SIZE);
	assert_int_equal(r->res[5].error, SMTP_PERR_SYNTAX);
	assert_int_equal(r->res[6].error, SMTP_PERR_BDAT_SIZE);
	assert_int_equal(r->res[7].type, SMTP_CMD_AUTH);
	assert_string_equal(r->res[7].arg, "PLAIN");
	assert_string_equal(r->res[7].arg2, "AGFsaWNlAHNlY3JldA==");
	assert_int_equal(r->res[8].type, SMTP_CMD_AUTH);
	assert_int_equal(r->res[9].type, SMTP_CMD_AUTH_DATA);
	assert_string_equal(r->res[9].arg, "dXNlcg==");
	assert_int_equal(r->res[10].type, SMTP_CMD_UNKNOWN); /* one line only */
	assert_int_equal(r->res[11].error, SMTP_PERR_SYNTAX);
	assert_int_equal(r->res[12].error, SMTP_PERR_SYNTAX);
	assert_int_equal(r->res[13].error, SMTP_PERR_SYNTAX);
	assert_int_equal(r->res[14].error, SMTP_PERR_SYNTAX);
	assert_int_equal(r->res[15].error, SMTP_PERR_SYNTAX);
	/* XCLIENT is what we send, never what we accept. */
	assert_int_equal(r->res[16].type, SMTP_CMD_UNKNOWN);
	assert_string_equal(r->res[16].name, "XCLIENT");
	assert_int_equal(r->res[17].error, SMTP_PERR_EMPTY);
	assert_int_equal(r->res[18].error, SMTP_PERR_EMPTY);
}

static void test_auth_cancel(void **state)
{
	struct run *r = PARSE("AUTH LOGIN\r\n*\r\nQUIT\r\n");

	(void)state;
	assert_int_equal(r->n, 3);
	assert_int_equal(r->res[1].type, SMTP_CMD_AUTH_CANCEL);
	assert_int_equal(r->res[2].type, SMTP_CMD_QUIT);
}

static void test_line_ends(void **state)
{
	static const char in[] = "NOOP\nRSET\r\nNOOP a\rb\r\nQU\0T\r\nNOOP\r\r\nQUIT\r\n";
	struct run *r = parse_all_lf(in, sizeof(in) - 1, false);

	(void)state;
	assert_int_equal(r->n, 6);
	/* Bare LF: consumed, reported, resync possible. */
	assert_int_equal(r->res[0].error, SMTP_PERR_BARE_LF);
	assert_true(r->res[0].resync);
	assert_int_equal(r->res[0].raw_len, 5);
	assert_int_equal(r->res[1].type, SMTP_CMD_RSET);
	assert_int_equal(r->res[2].error, SMTP_PERR_BARE_CR);
	assert_int_equal(r->res[3].error, SMTP_PERR_NUL);
	assert_false(r->res[3].resync);
	assert_int_equal(r->res[4].error, SMTP_PERR_BARE_CR);
	assert_int_equal(r->res[5].type, SMTP_CMD_QUIT);

	r = parse_all_lf(in, sizeof(in) - 1, true);
	assert_int_equal(r->res[0].rc, MF_OK);
	assert_int_equal(r->res[0].type, SMTP_CMD_NOOP);
	assert_int_equal(r->res[0].line_len, 4);
}

static void test_limits(void **state)
{
	static char in[(1 << 20) + 100];
	struct run *r;
	size_t n;

	(void)state;
	/* 510 octets + CRLF = 512 is fine; 511 + CRLF is not. */
	memcpy(in, "NOOP ", 5);
	memset(in + 5, 'n', 505);
	memcpy(in + 510, "\r\n", 2);
	r = parse_all_lf(in, 512, false);
	assert_int_equal(r->n, 1);
	assert_int_equal(r->res[0].rc, MF_OK);
	memset(in + 5, 'n', 506);
	memcpy(in + 511, "\r\n", 2);
	r = parse_all_lf(in, 513, false);
	assert_int_equal(r->n, 1);
	assert_int_equal(r->res[0].error, SMTP_PERR_LINE_TOO_LONG);
	assert_false(r->res[0].resync);

	memset(in, 'M', 1 << 20);
	n = 1 << 20;
	memcpy(in + n, "\r\nQUIT\r\n", 8);
	n += 8;
	r = parse_all_lf(in, n, false);
	assert_int_equal(r->n, 2);
	assert_int_equal(r->res[0].error, SMTP_PERR_LINE_TOO_LONG);
	assert_int_equal(r->res[1].type, SMTP_CMD_QUIT);
	assert_true(r->peak < SMTP_LINE_MAX_DEFAULT);
}

static void test_wipe_and_names(void **state)
{
	struct smtp_parser p;
	struct smtp_cmd cmd;
	uint8_t buf[] = "AUTH PLAIN c2VjcmV0\r\n";
	size_t used;

	(void)state;
	smtp_parser_init(&p);
	assert_int_equal(smtp_parser_feed(&p, buf, sizeof(buf) - 1, &used, &cmd),
			 MF_OK);
	assert_int_equal(used, sizeof(buf) - 1);
	smtp_cmd_wipe(&cmd);
	for (size_t i = 0; i < 19; i++)
		assert_int_equal(buf[i], 0);
	assert_null(cmd.raw);
	assert_string_equal(smtp_cmd_type_str(SMTP_CMD_BDAT), "BDAT");
	assert_string_equal(smtp_parse_error_str(SMTP_PERR_BDAT_SIZE),
			    "bad BDAT size");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipelined_session),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_path_limits),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_bdat_auth_misc),
		cmocka_unit_test(test_auth_cancel),
		cmocka_unit_test(test_line_ends),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_wipe_and_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
