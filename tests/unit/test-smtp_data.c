/* Unit tests: gateway/smtp_data.c — the end-of-DATA scanner, fed whole and
 * one byte at a time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mf.h"
#include "smtp_data.h"

/* Feeds s one byte at a time. Returns the first non-AGAIN result (or
 * MF_AGAIN) and the total consumed up to it in *at_r. */
static int bytewise(struct smtp_data_scan *d, const char *s, size_t len, size_t *at_r)
{
	for (size_t i = 0; i < len; i++) {
		size_t used = 99;
		int rc = smtp_data_scan(d, (const uint8_t *)s + i, 1, &used);

		assert_int_equal(used, 1);
		if (rc != MF_AGAIN) {
			*at_r = i + 1;
			return rc;
		}
	}
	*at_r = len;
	return MF_AGAIN;
}

/* Same result whole and byte by byte. */
static int scan(const char *s, size_t *at_r)
{
	struct smtp_data_scan a, b;
	size_t used = 0, at = 0;
	int rc1, rc2;

	smtp_data_init(&a);
	smtp_data_init(&b);
	rc1 = smtp_data_scan(&a, (const uint8_t *)s, strlen(s), &used);
	rc2 = bytewise(&b, s, strlen(s), &at);
	assert_int_equal(rc1, rc2);
	assert_int_equal(used, at);
	assert_int_equal(a.octets, used);
	assert_int_equal(a.ambiguous, b.ambiguous);
	*at_r = used;
	return rc1;
}

static void test_end(void **state)
{
	size_t at;

	(void)state;
	assert_int_equal(scan("Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n", &at), MF_OK);
	assert_int_equal(at, strlen("Subject: x\r\n\r\nbody\r\n.\r\n"));
	/* an empty message: the first line is the end */
	assert_int_equal(scan(".\r\nRSET\r\n", &at), MF_OK);
	assert_int_equal(at, 3);
	assert_int_equal(scan("a\r\n\r\n.\r\n", &at), MF_OK);
	assert_int_equal(at, 8);
	/* split across buffers: nothing is missed */
	assert_int_equal(scan("line\r\n", &at), MF_AGAIN);
	assert_int_equal(at, 6);
}

static void test_not_end(void **state)
{
	size_t at;

	(void)state;
	/* dot-stuffed lines are content, passed on as they are */
	assert_int_equal(scan("..\r\n..x\r\n. \r\n.x\r\n", &at), MF_AGAIN);
	assert_int_equal(scan("a.\r\nb\r.\r\n", &at), MF_AGAIN);
	assert_int_equal(scan("a\r\n.\rx\r\n", &at), MF_AGAIN);
	assert_int_equal(scan("\r\r\n\r\r.\r\r\n", &at), MF_AGAIN);
	/* bare LF in ordinary lines is content, too */
	assert_int_equal(scan("a\nb\n\nc\r\n", &at), MF_AGAIN);
	assert_int_equal(scan("", &at), MF_AGAIN);
}

static void test_ambiguous(void **state)
{
	static const char *const cases[] = {
		"a\n.\r\nMAIL FROM:<x>\r\n", "a\r\n.\nMAIL", "a\n.\nMAIL", ".\n", "x\n.\r\n",
	};
	size_t at;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(scan(cases[i], &at), MF_ERROR);
	assert_int_equal(scan("a\n.\r\n", &at), MF_ERROR);
	assert_int_equal(at, 5);
}

/* After an ambiguous end the scan finds the real one and stays flagged. */
static void test_resume(void **state)
{
	static const char in[] = "a\n.\nMAIL FROM:<evil>\r\n.\r\nQUIT\r\n";
	struct smtp_data_scan d;
	size_t used, off = 0;

	(void)state;
	smtp_data_init(&d);
	assert_int_equal(smtp_data_scan(&d, (const uint8_t *)in, sizeof(in) - 1, &used), MF_ERROR);
	assert_true(d.ambiguous);
	off += used;
	assert_int_equal(smtp_data_scan(&d, (const uint8_t *)in + off, sizeof(in) - 1 - off, &used),
			 MF_OK);
	off += used;
	assert_int_equal(off, strlen("a\n.\nMAIL FROM:<evil>\r\n.\r\n"));
	assert_true(d.ambiguous);
	assert_int_equal(d.octets, off);
	smtp_data_init(&d);
	assert_false(d.ambiguous);
	/* "\n.\r\n" ends its line with CRLF: ".\r\n" right after is the end */
	assert_int_equal(smtp_data_scan(&d, (const uint8_t *)"a\n.\r\n.\r\n", 8, &used), MF_ERROR);
	assert_int_equal(used, 5);
	assert_int_equal(smtp_data_scan(&d, (const uint8_t *)".\r\n", 3, &used), MF_OK);
	assert_int_equal(d.octets, 8);
}

/* Every split point of a message gives the same end. */
static void test_splits(void **state)
{
	static const char in[] = "From: a\r\n\r\n..dot\r\n.\r\r\n\r\n.\r\nNOOP\r\n";
	const size_t end = sizeof(in) - 1 - strlen("NOOP\r\n");

	(void)state;
	for (size_t cut = 0; cut <= sizeof(in) - 1; cut++) {
		struct smtp_data_scan d;
		size_t used, total = 0;
		int rc;

		smtp_data_init(&d);
		rc = smtp_data_scan(&d, (const uint8_t *)in, cut, &used);
		total = used;
		if (rc == MF_AGAIN) {
			rc = smtp_data_scan(&d, (const uint8_t *)in + cut, sizeof(in) - 1 - cut, &used);
			total += used;
		}
		assert_int_equal(rc, MF_OK);
		assert_int_equal(total, end);
	}
}

/* Stuffs s whole and byte by byte: same output; returns it with the end. */
static size_t stuff(const char *s, size_t len, uint8_t *out)
{
	struct smtp_stuff a, b;
	uint8_t one[4 * 64];
	size_t n, m = 0;

	assert_true(len <= 64);
	smtp_stuff_init(&a);
	smtp_stuff_init(&b);
	n = smtp_stuff(&a, (const uint8_t *)s, len, out);
	for (size_t i = 0; i < len; i++)
		m += smtp_stuff(&b, (const uint8_t *)s + i, 1, one + m);
	assert_int_equal(n, m);
	assert_memory_equal(out, one, n);
	assert_string_equal(smtp_stuff_end(&a), smtp_stuff_end(&b));
	memcpy(out + n, smtp_stuff_end(&a), strlen(smtp_stuff_end(&a)));
	return n + strlen(smtp_stuff_end(&a));
}

static void test_stuff(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "", ".\r\n" },
		{ ".", "..\r\n.\r\n" },
		{ "a\r\n.b\r\n", "a\r\n..b\r\n.\r\n" },
		{ "a\n.\nb", "a\n..\nb\r\n.\r\n" },
		{ "x.\r\n..\r\n", "x.\r\n...\r\n.\r\n" },
		{ "a\r", "a\r\r\n.\r\n" },
		{ "a\n", "a\n\r\n.\r\n" },
	};
	uint8_t out[4 * 64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = stuff(cases[i].in, strlen(cases[i].in), out);

		assert_int_equal(n, strlen(cases[i].out));
		assert_memory_equal(out, cases[i].out, n);
	}
}

/* Whatever the content, the stuffed DATA ends exactly at its end marker
 * and nowhere ambiguously. */
static void test_stuff_then_scan(void **state)
{
	static const char *const in[] = {
		".\r\n", "\r\n.\r\n", "a\n.\nb\n.\r\n", "\n.\n", ".\n.\r\n.", "\r\n.\r",
	};
	uint8_t out[4 * 64];

	(void)state;
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		struct smtp_data_scan d;
		size_t n = stuff(in[i], strlen(in[i]), out), used;

		smtp_data_init(&d);
		assert_int_equal(smtp_data_scan(&d, out, n, &used), MF_OK);
		assert_int_equal(used, n);
		assert_false(d.ambiguous);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_end),
		cmocka_unit_test(test_not_end),
		cmocka_unit_test(test_ambiguous),
		cmocka_unit_test(test_resume),
		cmocka_unit_test(test_splits),
		cmocka_unit_test(test_stuff),
		cmocka_unit_test(test_stuff_then_scan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
