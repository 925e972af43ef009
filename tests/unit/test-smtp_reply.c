/* Unit tests: gateway/smtp_reply.c — replies fed whole, one byte at a time
 * and in random splits; the EHLO helper on real servers' replies. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mf.h"
#include "smtp_reply.h"

#define MAX_RESULTS 128
#define FIELD_MAX 200

struct result {
	int rc;
	enum smtp_reply_error error;
	unsigned int code, index;
	bool last, has_enhanced;
	unsigned int enh_class, enh_subject, enh_detail;
	size_t raw_len;
	char text[FIELD_MAX], msg[FIELD_MAX];
};

struct run {
	struct result res[MAX_RESULTS];
	size_t n;
	size_t peak;
	struct smtp_ehlo ehlo; /* every line of the run given to the helper */
	int ehlo_rc;
};

static void copy_field(char *dst, const uint8_t *src, size_t len)
{
	size_t n = len < FIELD_MAX - 1 ? len : FIELD_MAX - 1;

	if (src != NULL)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

static void run_reply(const char *in, size_t in_len, size_t chunk,
		      unsigned int seed, struct run *r)
{
	struct smtp_reply_parser p;
	size_t cap = SMTP_REPLY_LINE_MAX_DEFAULT, plen = 0, pos = 0;
	uint8_t *buf = malloc(cap);
	bool failed = false;

	assert_non_null(buf);
	memset(r, 0, sizeof(*r));
	smtp_reply_parser_init(&p);
	while (!failed) {
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
			struct smtp_reply_line l;
			enum smtp_reply_error e;
			size_t used;
			int rc = smtp_reply_feed(&p, buf, plen, &used, &l, &e);
			struct result *x;

			assert_true(used <= plen);
			if (rc == MF_AGAIN) {
				assert_int_equal(used, 0);
				break;
			}
			assert_true(r->n < MAX_RESULTS);
			x = &r->res[r->n++];
			memset(x, 0, sizeof(*x));
			x->rc = rc;
			x->error = e;
			if (rc == MF_ERROR) {
				/* Final: asking again gives the same answer. */
				assert_int_equal(smtp_reply_feed(&p, buf, plen,
								 &used, &l, &e),
						 MF_ERROR);
				assert_int_equal(e, x->error);
				failed = true;
				break;
			}
			assert_int_equal(e, SMTP_RERR_NONE);
			assert_true(used >= 1);
			assert_ptr_equal(l.raw, buf);
			assert_int_equal(l.raw_len, used);
			x->code = l.code;
			x->index = l.index;
			x->last = l.last;
			x->has_enhanced = l.has_enhanced;
			x->enh_class = l.enh_class;
			x->enh_subject = l.enh_subject;
			x->enh_detail = l.enh_detail;
			x->raw_len = l.raw_len;
			copy_field(x->text, l.text, l.text_len);
			copy_field(x->msg, l.msg, l.msg_len);
			if (r->ehlo_rc == MF_OK)
				r->ehlo_rc = smtp_ehlo_add_line(&r->ehlo, &l);
			memmove(buf, buf + used, plen - used);
			plen -= used;
		}
		if (failed)
			break;
		assert_true(plen < cap);
		if (plen > r->peak)
			r->peak = plen;
		if (fed_nothing && pos == in_len)
			break;
	}
	free(buf);
}

static struct run *parse_all(const char *in, size_t in_len)
{
	static struct run whole, other;
	static const size_t chunks[] = { 1, 2, 3, 7, 64 };
	size_t c;
	unsigned int seed;

	run_reply(in, in_len, 0, 0, &whole);
	for (c = 0; c < MF_ARRAY_LEN(chunks); c++)
		for (seed = 1; seed <= (chunks[c] == 1 ? 1u : 8u); seed++) {
			run_reply(in, in_len, chunks[c], seed, &other);
			/* Everything but peak, which depends on the split. */
			assert_int_equal(whole.n, other.n);
			assert_memory_equal(whole.res, other.res,
					    sizeof(whole.res));
			assert_memory_equal(&whole.ehlo, &other.ehlo,
					    sizeof(whole.ehlo));
			assert_int_equal(whole.ehlo_rc, other.ehlo_rc);
		}
	return &whole;
}

#define PARSE(s) parse_all((s), sizeof(s) - 1)

static void test_replies(void **state)
{
	struct run *r = PARSE("220 mx.example ESMTP Postfix\r\n"
			      "250 2.1.0 Ok\r\n"
			      "550-5.1.1 <x@example.org>: Recipient address rejected:\r\n"
			      "550 5.1.1 User unknown in virtual mailbox table\r\n"
			      "354\r\n"
			      "451 4.3.0\r\n"
			      "250 1.2.3 not enhanced: wrong class\r\n"
			      "221 2.0.0Bye\n");

	(void)state;
	assert_int_equal(r->n, 8);
	assert_int_equal(r->res[0].code, 220);
	assert_true(r->res[0].last);
	assert_false(r->res[0].has_enhanced);
	assert_string_equal(r->res[0].text, "mx.example ESMTP Postfix");
	assert_int_equal(r->res[1].code, 250);
	assert_true(r->res[1].has_enhanced);
	assert_int_equal(r->res[1].enh_class, 2);
	assert_int_equal(r->res[1].enh_subject, 1);
	assert_int_equal(r->res[1].enh_detail, 0);
	assert_string_equal(r->res[1].msg, "Ok");
	assert_false(r->res[2].last);
	assert_int_equal(r->res[2].index, 0);
	assert_int_equal(r->res[3].index, 1);
	assert_true(r->res[3].last);
	assert_string_equal(r->res[3].msg,
			    "User unknown in virtual mailbox table");
	assert_int_equal(r->res[4].code, 354);
	assert_true(r->res[4].last);
	assert_int_equal(r->res[4].index, 0);
	assert_string_equal(r->res[4].text, "");
	assert_true(r->res[5].has_enhanced);
	assert_string_equal(r->res[5].msg, "");
	assert_false(r->res[6].has_enhanced);
	assert_false(r->res[7].has_enhanced); /* "2.0.0Bye" is text */
	assert_int_equal(r->res[7].raw_len, 13); /* bare LF accepted */
}

static void test_errors(void **state)
{
	static char in[200 * 12];
	struct run *r;
	size_t n = 0;

	(void)state;
	r = PARSE("250-first\r\n251 second\r\n250 never\r\n");
	assert_int_equal(r->n, 2);
	assert_int_equal(r->res[1].rc, MF_ERROR);
	assert_int_equal(r->res[1].error, SMTP_RERR_CODE_MISMATCH);

	r = PARSE("25\r\n");
	assert_int_equal(r->res[0].error, SMTP_RERR_SYNTAX);
	r = PARSE("250x\r\n");
	assert_int_equal(r->res[0].error, SMTP_RERR_SYNTAX);
	r = PARSE("650 no\r\n");
	assert_int_equal(r->res[0].error, SMTP_RERR_SYNTAX);
	r = PARSE("260 no\r\n");
	assert_int_equal(r->res[0].error, SMTP_RERR_SYNTAX);
	r = PARSE("\r\n");
	assert_int_equal(r->res[0].error, SMTP_RERR_SYNTAX);
	r = PARSE("250 a\rb\r\n");
	assert_int_equal(r->res[0].error, SMTP_RERR_BARE_CR);
	{
		static const char nul[] = "250 a\0b\r\n";

		r = parse_all(nul, sizeof(nul) - 1);
		assert_int_equal(r->res[0].error, SMTP_RERR_NUL);
	}

	/* 100 lines are fine, the 101st is one too many. */
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(in + n, sizeof(in) - n, "250-line %d\r\n", i);
	memcpy(in + n, "250 end\r\n", 9);
	r = parse_all(in, n + 9);
	assert_int_equal(r->n, 101);
	assert_int_equal(r->res[99].rc, MF_OK);
	assert_int_equal(r->res[100].error, SMTP_RERR_TOO_MANY_LINES);
	memcpy(in + n - 13, "250 end\r\n", 9);
	r = parse_all(in, n - 4);
	assert_int_equal(r->n, 100);
	assert_true(r->res[99].last);
}

static void test_long_line(void **state)
{
	static char in[(1 << 20) + 10];
	struct run *r;

	(void)state;
	memcpy(in, "250 ", 4);
	memset(in + 4, 'x', 1 << 20);
	memcpy(in + 4 + (1 << 20), "\r\n", 2);
	r = parse_all(in, (1 << 20) + 6);
	assert_int_equal(r->n, 1);
	assert_int_equal(r->res[0].error, SMTP_RERR_LINE_TOO_LONG);
	assert_true(r->peak < SMTP_REPLY_LINE_MAX_DEFAULT);

	/* 998 + CRLF is the limit. */
	memset(in + 4, 'x', 994);
	memcpy(in + 998, "\r\n", 2);
	r = parse_all(in, 1000);
	assert_int_equal(r->res[0].rc, MF_OK);
	memset(in + 4, 'x', 995);
	memcpy(in + 999, "\r\n", 2);
	r = parse_all(in, 1001);
	assert_int_equal(r->res[0].error, SMTP_RERR_LINE_TOO_LONG);
}

static void test_ehlo_postfix(void **state)
{
	struct run *r = PARSE("250-old.example\r\n"
			      "250-PIPELINING\r\n"
			      "250-SIZE 10240000\r\n"
			      "250-VRFY\r\n"
			      "250-ETRN\r\n"
			      "250-STARTTLS\r\n"
			      "250-AUTH PLAIN LOGIN\r\n"
			      "250-AUTH=PLAIN LOGIN\r\n"
			      "250-XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT\r\n"
			      "250-ENHANCEDSTATUSCODES\r\n"
			      "250-8BITMIME\r\n"
			      "250-DSN\r\n"
			      "250-SMTPUTF8\r\n"
			      "250 CHUNKING\r\n");
	const struct smtp_ehlo *e = &r->ehlo;

	(void)state;
	assert_int_equal(r->n, 14);
	assert_int_equal(r->ehlo_rc, MF_OK);
	assert_true(e->pipelining);
	assert_true(e->has_size);
	assert_int_equal(e->size, 10240000);
	assert_true(e->starttls);
	assert_true(e->has_auth);
	assert_int_equal(e->auth, SMTP_AUTH_PLAIN | SMTP_AUTH_LOGIN);
	assert_true(e->has_xclient);
	assert_int_equal(e->xclient,
			 SMTP_XCLIENT_NAME | SMTP_XCLIENT_ADDR | SMTP_XCLIENT_PROTO |
			 SMTP_XCLIENT_HELO | SMTP_XCLIENT_PORT | SMTP_XCLIENT_LOGIN |
			 SMTP_XCLIENT_DESTADDR | SMTP_XCLIENT_DESTPORT |
			 SMTP_XCLIENT_OTHER);
	assert_true(e->enhancedstatuscodes);
	assert_true(e->eightbitmime);
	assert_true(e->dsn);
	assert_true(e->smtputf8);
	assert_true(e->chunking);
	assert_false(e->binarymime);
	assert_int_equal(e->n_unknown, 2); /* VRFY, ETRN */
}

static void test_ehlo_odd(void **state)
{
	struct run *r;

	(void)state;
	r = PARSE("250-mx\r\n250-SIZE\r\n250-auth cram-md5 SCRAM-SHA-256\r\n"
		  "250 size 99999999999999999999999\r\n");
	assert_int_equal(r->ehlo_rc, MF_OK);
	assert_true(r->ehlo.has_size);
	assert_int_equal(r->ehlo.size, 0); /* unreadable: no limit known */
	assert_int_equal(r->ehlo.auth, SMTP_AUTH_CRAM_MD5 | SMTP_AUTH_OTHER);
	assert_false(r->ehlo.pipelining);

	r = PARSE("502 5.5.2 Error: command not recognized\r\n");
	assert_int_equal(r->ehlo_rc, MF_ERROR);
	assert_string_equal(smtp_reply_error_str(SMTP_RERR_CODE_MISMATCH),
			    "reply lines with different codes");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_ehlo_postfix),
		cmocka_unit_test(test_ehlo_odd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
