/* Unit tests: gateway/pop3_txn_parse.c — which answers are listings, and
 * where a listing ends, fed whole and one byte at a time, with hostile
 * bodies (dot-stuffing, bare CR/LF, terminators split across reads). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "pop3_txn_parse.h"

static struct pop3_txn_cmd cls(const char *line)
{
	struct pop3_txn_cmd c;

	pop3_txn_classify((const uint8_t *)line, strlen(line), &c);
	return c;
}

static void test_classify(void **state)
{
	(void)state;
	assert_int_equal(cls("UIDL").verb, PTV_UIDL);
	assert_true(cls("UIDL").listing);
	assert_true(cls("uidl").listing);
	assert_int_equal(cls("UIDL 3").verb, PTV_UIDL);
	assert_false(cls("UIDL 3").listing);
	assert_true(cls("UIDL ").listing); /* a trailing space is no argument */
	assert_true(cls("LIST").listing);
	assert_false(cls("LIST 1").listing);
	assert_true(cls("RETR 1").listing);
	assert_true(cls("top 1 0").listing);
	assert_true(cls("CAPA").listing);
	assert_int_equal(cls("QUIT").verb, PTV_QUIT);
	assert_false(cls("QUIT").listing);
	assert_int_equal(cls("DELE 1").verb, PTV_OTHER);
	assert_false(cls("STAT").listing);
	assert_int_equal(cls("UIDLX").verb, PTV_OTHER);
	assert_int_equal(cls("").verb, PTV_OTHER);
	assert_int_equal(cls("RETRIEVE 1").verb, PTV_OTHER);
}

/* The listing's length in in (from just after the status line), fed in
 * one piece and byte by byte: both must agree. */
static size_t scan_len(const char *in, size_t len, bool *done_r)
{
	struct pop3_listing_scan a, b;
	size_t whole, bytes = 0;
	bool done = false, done1 = false;

	pop3_listing_scan_init(&a);
	whole = pop3_listing_scan(&a, (const uint8_t *)in, len, &done);
	pop3_listing_scan_init(&b);
	for (size_t i = 0; i < len && !done1; i++)
		bytes += pop3_listing_scan(&b, (const uint8_t *)in + i, 1, &done1);
	assert_int_equal(whole, bytes);
	assert_int_equal(done, done1);
	*done_r = done;
	return whole;
}

#define S(x) x, sizeof(x) - 1

static void test_scan(void **state)
{
	bool done;

	(void)state;
	assert_int_equal(scan_len(S(".\r\n"), &done), 3);
	assert_true(done);
	assert_int_equal(scan_len(S("1 a\r\n2 b\r\n.\r\n+OK next"), &done), 13);
	assert_true(done);
	/* Byte-stuffed lines are data. */
	assert_int_equal(scan_len(S("..\r\n..x\r\n.\r\n"), &done), 12);
	assert_true(done);
	/* A dot inside a line, a line "x." */
	assert_int_equal(scan_len(S("a.\r\nx .\r\n"), &done), 9);
	assert_false(done);
	/* A dot not at a line start after a bare CR is data. */
	assert_int_equal(scan_len(S("a\r.\r\n"), &done), 5);
	assert_false(done);
	/* A bare LF ends a line; ".\n" ends the listing. */
	assert_int_equal(scan_len(S("a\n.\n"), &done), 4);
	assert_true(done);
	/* ".\r" then something else: data. */
	assert_int_equal(scan_len(S(".\rx\r\n.\r\n"), &done), 8);
	assert_true(done);
	/* Binary and NUL bytes are data. */
	assert_int_equal(scan_len("\0\xff.\r\n", 5, &done), 5);
	assert_false(done);
	assert_int_equal(scan_len(S(""), &done), 0);
	assert_false(done);
}

static void test_scan_resumes(void **state)
{
	static const char body[] = "Subject: x\r\n\r\n..leading\r\n.\r";
	struct pop3_listing_scan sc;
	bool done;

	(void)state;
	pop3_listing_scan_init(&sc);
	assert_int_equal(pop3_listing_scan(&sc, (const uint8_t *)body, sizeof(body) - 1, &done),
			 sizeof(body) - 1);
	assert_false(done);
	assert_int_equal(pop3_listing_scan(&sc, (const uint8_t *)"\nEXTRA", 6, &done), 1);
	assert_true(done);
	/* Done stays done. */
	assert_int_equal(pop3_listing_scan(&sc, (const uint8_t *)"x", 1, &done), 0);
	assert_true(done);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_scan),
		cmocka_unit_test(test_scan_resumes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
