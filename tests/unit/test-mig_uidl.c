/* Unit tests: migrate/mig_uidl_match.c — tying POP3 listings to copied
 * messages by position and by content, and the UIDL pairs that follow,
 * with hostile listings: counts that differ, sizes that differ, sizes
 * shared by several messages, reordered listings, duplicate bytes,
 * duplicate UIDLs, a message a server ended with an added CRLF. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mf.h"
#include "mig_uidl.h"

/* A copied message whose bytes are "content id" of size: the SHA-256 is
 * faked as id repeated (the matcher only compares). */
static struct uidl_copied copied(uint64_t size, uint8_t id, const char *src_uidl)
{
	struct uidl_copied c = { .size = size, .src_uidl = src_uidl };

	memset(c.sha256, id, sizeof(c.sha256));
	return c;
}

/* A listed message; hashed when id is not 0 (RETR gave size bytes of
 * content id). */
static struct uidl_msg listed(uint32_t n, const char *uidl, uint64_t size, uint8_t id)
{
	struct uidl_msg m = { .n = n, .size = size };

	snprintf(m.uidl, sizeof(m.uidl), "%s", uidl);
	if (id != 0) {
		m.hashed = true;
		m.rsize = size;
		memset(m.sha256, id, sizeof(m.sha256));
	}
	return m;
}

static const size_t ident[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 };

static void test_zip(void **state)
{
	struct uidl_copied c[3] = { copied(10, 1, NULL), copied(20, 2, NULL), copied(10, 3, NULL) };
	struct uidl_msg v[4] = { listed(1, "a", 10, 0), listed(2, "b", 20, 0),
				 listed(3, "c", 10, 0), listed(4, "d", 10, 0) };
	size_t out[4] = { 77, 77, 77, 77 };
	const size_t rev[3] = { 2, 1, 0 };

	(void)state;
	assert_true(uidl_match_zip(v, 3, c, ident, 3, out));
	assert_int_equal(out[0], 0);
	assert_int_equal(out[1], 1);
	assert_int_equal(out[2], 2);
	/* by another order: sizes 10 20 10 still line up */
	assert_true(uidl_match_zip(v, 3, c, rev, 3, out));
	assert_int_equal(out[0], 2);
	assert_int_equal(out[2], 0);
	/* one more listed than copied (a message that arrived since): no zip */
	out[0] = 77;
	assert_false(uidl_match_zip(v, 4, c, ident, 3, out));
	assert_int_equal(out[0], 77);
	/* one fewer (deleted): no zip, even though every size present lines up */
	assert_false(uidl_match_zip(v, 2, c, ident, 3, out));
	/* a size that differs */
	v[1].size = 21;
	assert_false(uidl_match_zip(v, 3, c, ident, 3, out));
	/* empty both sides */
	assert_true(uidl_match_zip(v, 0, c, ident, 0, out));
}

static void test_plausible(void **state)
{
	const uint64_t sizes[] = { 5, 10, 300 };
	struct uidl_msg m = listed(1, "a", 10, 0);

	(void)state;
	assert_true(uidl_size_plausible(&m, sizes, 3));
	m.size = 12; /* 10 + an added CRLF */
	assert_true(uidl_size_plausible(&m, sizes, 3));
	m.size = 11;
	assert_false(uidl_size_plausible(&m, sizes, 3));
	m.size = 1;
	assert_false(uidl_size_plausible(&m, sizes, 3));
	m.size = 0;
	assert_false(uidl_size_plausible(&m, sizes, 3));
	assert_false(uidl_size_plausible(&m, sizes, 0));
}

/* Reordered, sizes shared, bytes duplicated, one unknown, one unhashed. */
static void test_bytes(void **state)
{
	struct uidl_copied c[5] = { copied(10, 1, NULL), copied(10, 2, NULL), copied(20, 3, NULL),
				    copied(10, 1, NULL), copied(30, 4, NULL) };
	struct uidl_msg v[6] = {
		listed(1, "x", 20, 3), /* c2 */
		listed(2, "y", 10, 1), /* c0 (first of the two with bytes 1) */
		listed(3, "z", 10, 2), /* c1: same size as c0, other bytes */
		listed(4, "w", 10, 1), /* c3 */
		listed(5, "q", 10, 1), /* a third copy: none left */
		listed(6, "u", 30, 0), /* not hashed: none */
	};
	size_t out[6];

	(void)state;
	assert_int_equal(uidl_match_bytes(v, 6, c, ident, 5, out), MF_OK);
	assert_int_equal(out[0], 2);
	assert_int_equal(out[1], 0);
	assert_int_equal(out[2], 1);
	assert_int_equal(out[3], 3);
	assert_int_equal(out[4], UIDL_NONE);
	assert_int_equal(out[5], UIDL_NONE);
	/* a size equal but bytes not: none (never a guess by size) */
	v[0] = listed(1, "x", 20, 9);
	assert_int_equal(uidl_match_bytes(v, 1, c, ident, 5, out), MF_OK);
	assert_int_equal(out[0], UIDL_NONE);
	/* duplicates follow ord: with c3 first, bytes 1 go to c3 then c0 */
	{
		const size_t ord[5] = { 3, 2, 1, 0, 4 };

		v[0] = listed(1, "a", 10, 1);
		v[1] = listed(2, "b", 10, 1);
		assert_int_equal(uidl_match_bytes(v, 2, c, ord, 5, out), MF_OK);
		assert_int_equal(out[0], 3);
		assert_int_equal(out[1], 0);
	}
	/* nothing copied */
	assert_int_equal(uidl_match_bytes(v, 2, c, ident, 0, out), MF_OK);
	assert_int_equal(out[0], UIDL_NONE);
}

/* A server that added a CRLF the copied bytes lacked: matched by the
 * trimmed hash, but never before an exact match of other bytes. */
static void test_bytes_trimmed(void **state)
{
	struct uidl_copied c[2] = { copied(10, 1, NULL), copied(12, 2, NULL) };
	struct uidl_msg v[2] = { listed(1, "a", 12, 0), listed(2, "b", 12, 2) };
	size_t out[2];

	(void)state;
	v[0].hashed = true;
	v[0].rsize = 12;
	memset(v[0].sha256, 7, 32);       /* whole: unknown bytes */
	v[0].trim = true;
	memset(v[0].sha256_trim, 1, 32);  /* less the CRLF: c0's */
	assert_int_equal(uidl_match_bytes(v, 2, c, ident, 2, out), MF_OK);
	assert_int_equal(out[0], 0);
	assert_int_equal(out[1], 1);
	/* without the trim mark the trimmed hash means nothing */
	v[0].trim = false;
	assert_int_equal(uidl_match_bytes(v, 2, c, ident, 2, out), MF_OK);
	assert_int_equal(out[0], UIDL_NONE);
}

static void test_pairs(void **state)
{
	struct uidl_copied c[3] = { copied(10, 1, NULL), copied(20, 2, NULL), copied(30, 3, NULL) };
	struct uidl_msg src[3] = { listed(1, "S1", 10, 0), listed(2, "S2", 20, 0),
				   listed(3, "S3", 30, 0) };
	/* the destination lists them reordered, plus one of its own */
	struct uidl_msg dst[4] = { listed(1, "D3", 30, 0), listed(2, "new", 5, 0),
				   listed(3, "D1", 10, 0), listed(4, "D2", 20, 0) };
	const size_t sout[3] = { 0, 1, 2 }, dout[4] = { 2, UIDL_NONE, 0, 1 };
	struct uidl_pair *v = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(uidl_pairs_make(src, sout, 3, dst, dout, 4, c, 3, &v, &n), MF_OK);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].dst, "D3");
	assert_string_equal(v[0].src, "S3");
	assert_string_equal(v[1].dst, "D1");
	assert_string_equal(v[1].src, "S1");
	assert_string_equal(v[2].dst, "D2");
	assert_string_equal(v[2].src, "S2");
	free(v);

	/* a source message not tied (deleted, or unknown bytes): no pair */
	{
		const size_t s2[3] = { 0, UIDL_NONE, 2 };

		assert_int_equal(uidl_pairs_make(src, s2, 3, dst, dout, 4, c, 3, &v, &n), MF_OK);
		assert_int_equal(n, 2);
		assert_string_equal(v[0].src, "S3");
		assert_string_equal(v[1].src, "S1");
		free(v);
	}
	/* a copied message tied twice on one side (a broken match): no pair */
	{
		const size_t d2[4] = { 2, 2, 0, 1 };

		assert_int_equal(uidl_pairs_make(src, sout, 3, dst, d2, 4, c, 3, &v, &n), MF_OK);
		assert_int_equal(n, 2);
		assert_string_equal(v[0].dst, "D1");
		assert_string_equal(v[1].dst, "D2");
		free(v);
	}
	/* a UIDL listed twice (a broken server): neither gets a pair */
	snprintf(dst[3].uidl, sizeof(dst[3].uidl), "D1");
	assert_int_equal(uidl_pairs_make(src, sout, 3, dst, dout, 4, c, 3, &v, &n), MF_OK);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].dst, "D3");
	free(v);
	snprintf(dst[3].uidl, sizeof(dst[3].uidl), "D2");
	snprintf(src[0].uidl, sizeof(src[0].uidl), "S3");
	assert_int_equal(uidl_pairs_make(src, sout, 3, dst, dout, 4, c, 3, &v, &n), MF_OK);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].src, "S2");
	free(v);
	/* nothing listed on the destination: no pairs, NULL */
	v = (struct uidl_pair *)1;
	assert_int_equal(uidl_pairs_make(src, sout, 3, dst, dout, 0, c, 3, &v, &n), MF_OK);
	assert_null(v);
	assert_int_equal(n, 0);
}

/* A POP3 source: its side is the copied messages' own UIDLs. */
static void test_pairs_pop3_source(void **state)
{
	struct uidl_copied c[3] = { copied(10, 1, "old-1"), copied(20, 2, "old \x01" "bad"),
				    copied(30, 3, "old-3") };
	struct uidl_msg dst[3] = { listed(1, "n1", 10, 0), listed(2, "n2", 20, 0),
				   listed(3, "n3", 30, 0) };
	const size_t dout[3] = { 0, 1, 2 };
	struct uidl_pair *v = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(uidl_pairs_make(NULL, NULL, 0, dst, dout, 3, c, 3, &v, &n), MF_OK);
	assert_int_equal(n, 2); /* an invalid UIDL in the state gives no pair */
	assert_string_equal(v[0].dst, "n1");
	assert_string_equal(v[0].src, "old-1");
	assert_string_equal(v[1].dst, "n3");
	assert_string_equal(v[1].src, "old-3");
	free(v);
}

/* The whole decision on hostile listings: a message deleted on the
 * source shifts positions where sizes are all equal — a zip would pair
 * every later message wrongly; it is refused, and content decides. */
static void test_shifted_equal_sizes(void **state)
{
	struct uidl_copied c[4] = { copied(10, 1, NULL), copied(10, 2, NULL), copied(10, 3, NULL),
				    copied(10, 4, NULL) };
	/* the source lost c1 after the copy; RETR hashed every message */
	struct uidl_msg src[3] = { listed(1, "A", 10, 1), listed(2, "C", 10, 3),
				   listed(3, "D", 10, 4) };
	struct uidl_msg dst[4] = { listed(1, "d1", 10, 1), listed(2, "d2", 10, 2),
				   listed(3, "d3", 10, 3), listed(4, "d4", 10, 4) };
	size_t sout[3], dout[4];
	struct uidl_pair *v = NULL;
	size_t n = 0;

	(void)state;
	assert_false(uidl_match_zip(src, 3, c, ident, 4, sout));
	assert_int_equal(uidl_match_bytes(src, 3, c, ident, 4, sout), MF_OK);
	assert_true(uidl_match_zip(dst, 4, c, ident, 4, dout));
	assert_int_equal(uidl_pairs_make(src, sout, 3, dst, dout, 4, c, 4, &v, &n), MF_OK);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].dst, "d1");
	assert_string_equal(v[0].src, "A");
	assert_string_equal(v[1].dst, "d3");
	assert_string_equal(v[1].src, "C");
	assert_string_equal(v[2].dst, "d4");
	assert_string_equal(v[2].src, "D");
	free(v);
}

/* Many messages, all the same size and two bytes each: content ties
 * them in n log n (this would crawl if it were quadratic). */
static void test_many(void **state)
{
	enum { N = 50000 };
	struct uidl_copied *c = calloc(N, sizeof(*c));
	struct uidl_msg *v = calloc(N, sizeof(*v));
	size_t *ord = calloc(N, sizeof(*ord)), *out = calloc(N, sizeof(*out));

	(void)state;
	assert_true(c != NULL && v != NULL && ord != NULL && out != NULL);
	for (size_t k = 0; k < N; k++) {
		c[k].size = 100;
		c[k].sha256[0] = (uint8_t)(k >> 8);
		c[k].sha256[1] = (uint8_t)k;
		c[k].sha256[2] = (uint8_t)(k >> 16);
		ord[k] = k;
		v[N - 1 - k].hashed = true;
		v[N - 1 - k].rsize = 100;
		memcpy(v[N - 1 - k].sha256, c[k].sha256, 32);
	}
	assert_int_equal(uidl_match_bytes(v, N, c, ord, N, out), MF_OK);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(out[i], N - 1 - i);
	free(out);
	free(ord);
	free(v);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zip),
		cmocka_unit_test(test_plausible),
		cmocka_unit_test(test_bytes),
		cmocka_unit_test(test_bytes_trimmed),
		cmocka_unit_test(test_pairs),
		cmocka_unit_test(test_pairs_pop3_source),
		cmocka_unit_test(test_shifted_equal_sizes),
		cmocka_unit_test(test_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
