/* Unit tests: migrate/pop3_resp.c — status lines and multi-line bodies
 * fed whole and one byte at a time (with two bytes of output room) giving
 * the same result; dot-unstuffing (".." lines, ".\r" inside a line, the
 * bare-LF end), the input after the end left alone; hostile input: lines
 * past the bound, NUL, CR without LF, not +OK/-ERR, a body past body_max;
 * random bytes fed both ways agree; UIDL and LIST listing lines. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mf.h"
#include "pop3_resp.h"

#define S(x) (const uint8_t *)(x), sizeof(x) - 1

/* Status from data fed in pieces of step bytes (0: all at once). */
static int status(const uint8_t *data, size_t len, size_t step, struct pop3_resp *p,
		  size_t *consumed_r)
{
	size_t off = 0, used;
	int rc = MF_AGAIN;

	pop3_resp_init(p, 0);
	while (off < len) {
		size_t n = step == 0 || len - off < step ? len - off : step;

		rc = pop3_resp_status(p, data + off, n, &used);
		assert_true(used <= n);
		off += used;
		if (rc != MF_AGAIN)
			break;
		assert_int_equal(used, n);
	}
	*consumed_r = off;
	return rc;
}

static void expect_status(const char *text, int want_rc, bool ok, const char *line)
{
	for (size_t step = 0; step <= 1; step++) {
		struct pop3_resp p;
		size_t used;
		int rc = status((const uint8_t *)text, strlen(text), step, &p, &used);

		assert_int_equal(rc, want_rc);
		if (rc == MF_OK) {
			assert_int_equal(p.ok, ok);
			assert_string_equal(p.line, line);
		}
	}
}

static void test_status(void **state)
{
	char big[700];
	struct pop3_resp p;
	size_t used;

	(void)state;
	expect_status("+OK Dovecot ready.\r\n", MF_OK, true, "+OK Dovecot ready.");
	expect_status("-ERR [IN-USE] locked\r\n", MF_OK, false, "-ERR [IN-USE] locked");
	expect_status("+OK\r\n", MF_OK, true, "+OK");
	expect_status("+OK bare lf\n", MF_OK, true, "+OK bare lf");
	expect_status("+OK no end", MF_AGAIN, false, "");
	expect_status("+OKAY\r\n", MF_ERROR, false, "");
	expect_status("* OK imap\r\n", MF_ERROR, false, "");
	expect_status("+OK a\rb\r\n", MF_ERROR, false, "");
	assert_int_equal(status(S("+OK a\0b\r\n"), 1, &p, &used), MF_ERROR);
	assert_string_equal(p.err, "NUL in a status line");
	/* RFC 2449: 512 octets with the CRLF fit, 513 do not. */
	memset(big, 'x', sizeof(big));
	memcpy(big, "+OK ", 4);
	memcpy(big + 510, "\r\n", 2);
	assert_int_equal(status((uint8_t *)big, 512, 1, &p, &used), MF_OK);
	assert_int_equal(strlen(p.line), 510);
	memset(big, 'x', sizeof(big));
	memcpy(big, "+OK ", 4);
	memcpy(big + 511, "\r\n", 2);
	assert_int_equal(status((uint8_t *)big, 513, 1, &p, &used), MF_ERROR);
	assert_string_equal(p.err, "status line too long");
	assert_true(used <= 512);
	/* Two lines in one buffer: the first is returned, the rest left. */
	assert_int_equal(status(S("+OK one\r\n-ERR two\r\n"), 0, &p, &used), MF_OK);
	assert_int_equal(used, 9);
	assert_string_equal(pop3_resp_text(&p), "one");
	assert_int_equal(pop3_resp_status(&p, S("-ERR two\r\n"), &used), MF_OK);
	assert_false(p.ok);
	assert_string_equal(pop3_resp_text(&p), "two");
}

/* A body fed in step-byte pieces with outcap bytes of output room. */
static int body(const uint8_t *data, size_t len, size_t step, size_t outcap, uint64_t max,
		uint8_t *out, size_t *out_len_r, size_t *consumed_r, char *err)
{
	struct pop3_resp p;
	size_t off = 0, olen = 0;
	uint8_t chunk[64];
	int rc = MF_AGAIN;

	pop3_resp_init(&p, max);
	p.state = 0; /* as after a status line */
	for (unsigned int guard = 0; guard < 100000; guard++) {
		size_t n = step == 0 || len - off < step ? len - off : step, used, got;

		rc = pop3_resp_body(&p, data + off, n, &used, chunk,
				    outcap < sizeof(chunk) ? outcap : sizeof(chunk), &got);
		assert_true(used <= n && got <= outcap);
		memcpy(out + olen, chunk, got);
		olen += got;
		off += used;
		if (rc != MF_AGAIN || (off == len && used == 0 && got == 0))
			break;
	}
	*out_len_r = olen;
	*consumed_r = off;
	strcpy(err, p.err);
	return rc;
}

static void expect_body(const char *in, size_t in_len, int want_rc, const char *want,
			size_t want_len, size_t want_used)
{
	static const size_t steps[] = { 0, 1, 2, 3 }, caps[] = { 2, 3, 64 };

	for (size_t a = 0; a < 4; a++)
		for (size_t b = 0; b < 3; b++) {
			uint8_t out[4096];
			size_t olen, used;
			char err[96];
			int rc = body((const uint8_t *)in, in_len, steps[a], caps[b], 0, out, &olen,
				      &used, err);

			if (rc != want_rc || olen != want_len || memcmp(out, want, olen) != 0 ||
			    (want_rc == MF_OK && used != want_used))
				fail_msg("step %zu cap %zu: rc %d used %zu out '%.*s'", steps[a],
					 caps[b], rc, used, (int)olen, out);
		}
}

#define B(x) x, sizeof(x) - 1

static void test_body(void **state)
{
	uint8_t out[256];
	size_t olen, used;
	char err[96];

	(void)state;
	expect_body(B("Subject: a\r\n\r\nline\r\n.\r\n"), MF_OK, B("Subject: a\r\n\r\nline\r\n"),
		    23);
	/* Stuffed dots lose one dot; the end line is consumed, nothing after. */
	expect_body(B("..one\r\n...two\r\n.\r\n+OK next"), MF_OK, B(".one\r\n..two\r\n"), 18);
	expect_body(B(".\r\n"), MF_OK, B(""), 3);
	expect_body(B(".\n"), MF_OK, B(""), 2);
	/* A bare LF ends a line too; "." then LF ends the body. */
	expect_body(B("a\n.\nrest"), MF_OK, B("a\n"), 4);
	/* ".\r" not followed by LF: a stuffed line starting with CR. */
	expect_body(B(".\rx\r\n.\r\n"), MF_OK, B("\rx\r\n"), 8);
	expect_body(B(".\r\r\n.\r\n"), MF_OK, B("\r\r\n"), 7);
	/* A dot inside a line is data; CR CR LF stays. */
	expect_body(B("a.b\r\r\n. \r\n.\r\n"), MF_OK, B("a.b\r\r\n \r\n"), 13);
	/* NUL and 8-bit bytes are data. */
	expect_body(B("\0\xff\x80\r\n.\r\n"), MF_OK, B("\0\xff\x80\r\n"), 8);
	/* Unterminated: everything out, more wanted. */
	expect_body(B("abc\r\n.."), MF_AGAIN, B("abc\r\n."), 0); /* a stuffed "." */
	/* body_max, counted after unstuffing. */
	assert_int_equal(body((const uint8_t *)"0123456789\r\n.\r\n", 15, 1, 2, 12, out, &olen,
			      &used, err), MF_OK);
	assert_int_equal(body((const uint8_t *)"0123456789\r\n.\r\n", 15, 1, 2, 11, out, &olen,
			      &used, err), MF_ERROR);
	assert_string_equal(err, "body larger than allowed");
	/* Output room below two bytes is a caller's bug, refused. */
	{
		struct pop3_resp p;
		size_t got;

		pop3_resp_init(&p, 0);
		assert_int_equal(pop3_resp_body(&p, S("x"), &used, out, 1, &got), MF_ERROR);
	}
}

static void test_random_agree(void **state)
{
	uint8_t in[600], a[2000], b[2000];
	unsigned int seed = 7;

	(void)state;
	for (int round = 0; round < 3000; round++) {
		size_t n = (size_t)(rand_r(&seed) % sizeof(in)), la, lb, ua, ub;
		char ea[96], eb[96];
		struct pop3_resp p, q;
		int ra, rb;

		for (size_t i = 0; i < n; i++) {
			/* Mostly the bytes that matter. */
			static const uint8_t pick[] = { '.', '\r', '\n', 'a', '+', 'O', 'K', ' ', 0 };
			unsigned int r = (unsigned int)rand_r(&seed);

			in[i] = r % 4 ? pick[r % sizeof(pick)] : (uint8_t)(r >> 8);
		}
		ra = body(in, n, 0, 64, 300, a, &la, &ua, ea);
		rb = body(in, n, 1, 2, 300, b, &lb, &ub, eb);
		assert_int_equal(ra, rb);
		if (ra != MF_ERROR) {
			assert_int_equal(la, lb);
			assert_memory_equal(a, b, la);
		}
		if (ra == MF_OK)
			assert_int_equal(ua, ub);
		ra = status(in, n, 0, &p, &ua);
		rb = status(in, n, 1, &q, &ub);
		assert_int_equal(ra, rb);
		assert_int_equal(ua, ub);
		if (ra == MF_OK) {
			assert_string_equal(p.line, q.line);
			assert_int_equal(p.ok, q.ok);
		}
	}
}

static void test_listing_lines(void **state)
{
	char uidl[POP3_UIDL_MAX + 1], long_uidl[100];
	uint32_t n;
	uint64_t size;

	(void)state;
	assert_int_equal(pop3_uidl_line(B("1 000000017a1b2c3d"), &n, uidl), MF_OK);
	assert_int_equal(n, 1);
	assert_string_equal(uidl, "000000017a1b2c3d");
	assert_int_equal(pop3_uidl_line(B("4294967295 ~!"), &n, uidl), MF_OK);
	assert_int_equal(n, 4294967295U);
	assert_int_equal(pop3_uidl_line(B("4294967296 x"), &n, uidl), MF_ERROR);
	assert_int_equal(pop3_uidl_line(B("0 x"), &n, uidl), MF_ERROR);
	assert_int_equal(pop3_uidl_line(B("1 "), &n, uidl), MF_ERROR);
	assert_int_equal(pop3_uidl_line(B("1 a b"), &n, uidl), MF_ERROR);
	assert_int_equal(pop3_uidl_line(B("1 a\x7f"), &n, uidl), MF_ERROR);
	assert_int_equal(pop3_uidl_line(B("x1 a"), &n, uidl), MF_ERROR);
	assert_int_equal(pop3_uidl_line(B("1"), &n, uidl), MF_ERROR);
	memset(long_uidl, 'u', sizeof(long_uidl));
	memcpy(long_uidl, "2 ", 2);
	assert_int_equal(pop3_uidl_line(long_uidl, 72, &n, uidl), MF_OK);
	assert_int_equal(strlen(uidl), 70);
	assert_int_equal(pop3_uidl_line(long_uidl, 73, &n, uidl), MF_ERROR);
	assert_int_equal(pop3_list_line(B("3 120"), &n, &size), MF_OK);
	assert_true(n == 3 && size == 120);
	assert_int_equal(pop3_list_line(B("3 120 extra"), &n, &size), MF_OK);
	assert_int_equal(pop3_list_line(B("3 -1"), &n, &size), MF_ERROR);
	assert_int_equal(pop3_list_line(B("3 99999999999999999999999"), &n, &size), MF_ERROR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_body),
		cmocka_unit_test(test_random_agree),
		cmocka_unit_test(test_listing_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
