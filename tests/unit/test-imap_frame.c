/* Unit tests: gateway/imap_frame.c — response boundaries of an IMAP
 * server's stream, literals (binary and empty ones too) skipped by length
 * whatever they contain, input fed whole, byte by byte and split at every
 * point, hostile lengths and splices outside a literal. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "imap_frame.h"

static void feed_str(struct imap_frame *f, const char *s, size_t n)
{
	imap_frame_feed(f, (const uint8_t *)s, n);
}

/* Feeds s byte by byte; returns the offsets after which the stream was at
 * a boundary, as a string of '|' (boundary) and '.' (not). */
static void boundaries(const char *s, size_t n, char *out)
{
	struct imap_frame f;

	imap_frame_init(&f);
	for (size_t i = 0; i < n; i++) {
		feed_str(&f, s + i, 1);
		out[i] = imap_frame_at_boundary(&f) ? '|' : '.';
	}
	out[n] = '\0';
}

/* The pieces' concatenation must be at a boundary exactly after each
 * piece (the last one too unless open_end) and nowhere else. */
static void expect_pieces(const char *const *pieces, size_t n_pieces, bool open_end)
{
	char s[512], want[512], got[512];
	size_t n = 0;

	for (size_t i = 0; i < n_pieces; i++) {
		size_t k = strlen(pieces[i]);

		assert_true(n + k < sizeof(s));
		memcpy(s + n, pieces[i], k);
		memset(want + n, '.', k);
		n += k;
		if (i + 1 < n_pieces || !open_end)
			want[n - 1] = '|';
	}
	want[n] = '\0';
	boundaries(s, n, got);
	assert_string_equal(got, want);
}

#define PIECES(open, ...) \
	expect_pieces((const char *const[]){ __VA_ARGS__ }, \
		      sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(char *), open)

static void test_lines(void **state)
{
	(void)state;
	PIECES(false, "* OK ready\r\n", "a OK done\r\n");
	/* A bare LF ends a line too; a CR alone does not. */
	PIECES(false, "* 1\n", "* 2\r\r\n");
	PIECES(true, "* 1\r\n", "* 2\r");
}

static void test_literal_hides_lines(void **state)
{
	(void)state;
	/* The literal holds what looks like a BYE line: not a boundary. */
	PIECES(false, "* 1 FETCH (BODY[] {9}\r\n* BYE x\n)\r\n", "a OK\r\n");
	/* Stopped inside the literal. */
	PIECES(true, "* 1 FETCH (BODY[] {9}\r\n* BYE\r\n");
}

static void test_literal_forms(void **state)
{
	(void)state;
	/* Binary literal8, a bare LF after the brace, an empty literal. */
	PIECES(false, "* 1 FETCH (BINARY[] ~{2}\r\n\n\n)\r\n");
	PIECES(false, "* 1 FETCH (X {1}\n\n)\r\n");
	PIECES(false, "* 1 FETCH (X {0}\r\n)\r\n");
	/* Not literals: text after the brace, no digits, a letter inside, a
	 * sign, a byte between brace and CRLF, "}\r\r\n". */
	PIECES(false, "* OK {5} x\r\n", "* OK {}\r\n", "* OK {1a}\r\n", "* OK {5+}\r\n",
	       "* OK {5}x\r\n", "* OK {5}\r\r\n", "* OK }{\r\n");
	/* Two literals on one line, then the line ends. */
	PIECES(false, "* 1 FETCH (A {1}\r\n\n B {2}\r\n\r\n)\r\n", "b OK\r\n");
}

static void test_literal_left(void **state)
{
	struct imap_frame f;

	(void)state;
	imap_frame_init(&f);
	assert_int_equal(imap_frame_literal_left(&f), 0);
	feed_str(&f, "* 3 FETCH (BODY[] {1000}\r\n", 26);
	assert_int_equal(f.st, IF_LITERAL);
	assert_int_equal(imap_frame_literal_left(&f), 1000);
	feed_str(&f, "0123456789", 10);
	assert_int_equal(imap_frame_literal_left(&f), 990);
	imap_frame_skip(&f, 989);
	assert_int_equal(imap_frame_literal_left(&f), 1);
	imap_frame_skip(&f, 1);
	assert_int_equal(f.st, IF_LINE);
	assert_false(imap_frame_at_boundary(&f));
	feed_str(&f, ")\r\n", 3);
	assert_true(imap_frame_at_boundary(&f));
	imap_frame_skip(&f, 0);
	assert_true(imap_frame_at_boundary(&f));
}

static void test_skip_outside_literal_loses(void **state)
{
	struct imap_frame f;

	(void)state;
	imap_frame_init(&f);
	imap_frame_skip(&f, 1);
	assert_true(imap_frame_lost(&f));
	/* Lost for good, whatever comes. */
	feed_str(&f, "\r\na OK\r\n", 8);
	assert_true(imap_frame_lost(&f));
	assert_false(imap_frame_at_boundary(&f));
	assert_int_equal(imap_frame_literal_left(&f), 0);

	/* More than the literal holds. */
	imap_frame_init(&f);
	feed_str(&f, "* 1 FETCH (X {4}\r\n", 18);
	imap_frame_skip(&f, 5);
	assert_true(imap_frame_lost(&f));
}

static void test_hostile_lengths(void **state)
{
	struct imap_frame f;
	char big[64];

	(void)state;
	/* Far past the bound (and past 64 bits): lost, no overflow. */
	imap_frame_init(&f);
	feed_str(&f, "* OK {99999999999999999999999999}\r\n", 35);
	assert_true(imap_frame_lost(&f));
	/* Exactly the bound is a literal; one more is lost. */
	imap_frame_init(&f);
	snprintf(big, sizeof(big), "* X {%llu}\r\n",
		 (unsigned long long)IMAP_FRAME_LITERAL_MAX);
	feed_str(&f, big, strlen(big));
	assert_int_equal(imap_frame_literal_left(&f), IMAP_FRAME_LITERAL_MAX);
	imap_frame_init(&f);
	snprintf(big, sizeof(big), "* X {%llu}\r\n",
		 (unsigned long long)IMAP_FRAME_LITERAL_MAX + 1);
	feed_str(&f, big, strlen(big));
	assert_true(imap_frame_lost(&f));
	/* Leading zeros do not count against the bound. */
	imap_frame_init(&f);
	feed_str(&f, "* X {0000000000000000000000003}\r\nabc\r\n", 38);
	assert_true(imap_frame_at_boundary(&f));
	/* A brace that never closes: the line just goes on. */
	imap_frame_init(&f);
	for (int i = 0; i < 10000; i++)
		feed_str(&f, "{", 1);
	feed_str(&f, "\r\n", 2);
	assert_true(imap_frame_at_boundary(&f));
}

/* Whole, byte by byte and split at every point: one same end state. */
static void test_split_everywhere(void **state)
{
	static const char s[] =
		"* 2 EXISTS\r\n* 1 FETCH (UID 7 BODY[] {12}\r\nline\r\n{3}\r\nxy"
		" FLAGS (\\Seen))\r\n* 2 FETCH (BINARY[1] ~{3}\r\n\0\r\n)\r\n"
		"+ idling\r\n* OK {x}\r\na1 OK FETCH done\r\n* 3 FETCH (X {5}\r\n12";
	size_t n = sizeof(s) - 1;
	struct imap_frame whole, f;

	(void)state;
	imap_frame_init(&whole);
	feed_str(&whole, s, n);
	assert_int_equal(whole.st, IF_LITERAL);
	assert_int_equal(whole.lit_left, 3);
	for (size_t cut = 0; cut <= n; cut++) {
		imap_frame_init(&f);
		feed_str(&f, s, cut);
		feed_str(&f, s + cut, n - cut);
		assert_int_equal(f.st, whole.st);
		assert_int_equal(f.lit_left, whole.lit_left);
	}
	imap_frame_init(&f);
	for (size_t i = 0; i < n; i++)
		feed_str(&f, s + i, 1);
	assert_int_equal(f.st, whole.st);
	assert_int_equal(f.lit_left, whole.lit_left);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_literal_hides_lines),
		cmocka_unit_test(test_literal_forms),
		cmocka_unit_test(test_literal_left),
		cmocka_unit_test(test_skip_outside_literal_loses),
		cmocka_unit_test(test_hostile_lengths),
		cmocka_unit_test(test_split_everywhere),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
