/* Unit tests: gateway/uidl_map.c — UIDL answers rewritten with the
 * source's UIDLs, new messages' UIDLs kept unless they collide with a
 * source UIDL, hostile lines and hostile ledger rows. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mf.h"
#include "uidl_map.h"

static void pairs(struct uidl_map *m, const char *const *kv, size_t n)
{
	struct uidl_pair *v = calloc(n ? n : 1, sizeof(*v));

	assert_non_null(v);
	for (size_t i = 0; i < n; i++) {
		snprintf(v[i].dst, sizeof(v[i].dst), "%s", kv[2 * i]);
		snprintf(v[i].src, sizeof(v[i].src), "%s", kv[2 * i + 1]);
	}
	assert_int_equal(uidl_map_init(m, v, n), MF_OK);
}

static const char *rw(const struct uidl_map *m, const char *line, bool status)
{
	static char out[UIDL_LINE_MAX];
	size_t n = 0;

	if (uidl_map_rewrite_line(m, line, strlen(line), status, out, &n) != MF_OK)
		return NULL;
	assert_int_equal(n, strlen(out));
	return out;
}

static void test_rewrite(void **state)
{
	static const char *const kv[] = {
		"00000001aaaa", "000000070000beef",
		"00000002aaaa", "000000090000beef",
		"00000003aaaa", "src-only-c",
	};
	struct uidl_map m;

	(void)state;
	pairs(&m, kv, 3);
	assert_string_equal(rw(&m, "1 00000001aaaa", false), "1 000000070000beef");
	assert_string_equal(rw(&m, "2 00000002aaaa", false), "2 000000090000beef");
	assert_string_equal(rw(&m, "+OK 3 00000003aaaa", true), "+OK 3 src-only-c");
	assert_string_equal(rw(&m, "+ok  3  00000003aaaa ", true), "+OK 3 src-only-c");
	/* A new message: its own UIDL. */
	assert_string_equal(rw(&m, "4 00000004aaaa", false), "4 00000004aaaa");
	/* A new message whose UIDL is a copied one's source UIDL: renamed,
	 * the same way every time, to no UIDL of the map. */
	{
		char a[UIDL_LINE_MAX];

		snprintf(a, sizeof(a), "%s", rw(&m, "5 000000090000beef", false));
		assert_memory_equal(a, "5 mf-", 5);
		assert_int_equal(strlen(a), 2 + 43);
		assert_string_equal(rw(&m, "5 000000090000beef", false), a);
		assert_string_not_equal(rw(&m, "5 000000070000beef", false), a);
	}
	uidl_map_free(&m);
}

static void test_hostile_lines(void **state)
{
	static const char *const kv[] = { "d1", "s1" };
	char big[200];
	struct uidl_map m;
	size_t n;
	char out[UIDL_LINE_MAX];

	(void)state;
	pairs(&m, kv, 1);
	/* Not a UIDL line: as it is. */
	assert_string_equal(rw(&m, "-ERR no such message", true), "-ERR no such message");
	assert_string_equal(rw(&m, "+OK", true), "+OK");
	assert_string_equal(rw(&m, "x d1", false), "x d1");
	assert_string_equal(rw(&m, "1", false), "1");
	assert_string_equal(rw(&m, "1 d1 extra", false), "1 d1 extra");
	assert_string_equal(rw(&m, "", false), "");
	assert_string_equal(rw(&m, "12345678901 d1", false), "12345678901 d1");
	/* A UIDL of 71 characters is none: as it is. */
	memset(big, 'u', 71);
	memcpy(big, "1 ", 2);
	big[73] = '\0';
	memset(big + 2, 'u', 71);
	assert_string_equal(rw(&m, big, false), big);
	/* Too long to copy: MF_ERROR, the caller sends the original. */
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(uidl_map_rewrite_line(&m, big, strlen(big), false, out, &n), MF_ERROR);
	/* Control characters in the UIDL: no UIDL. */
	assert_string_equal(rw(&m, "1 d\x01", false), "1 d\x01");
	uidl_map_free(&m);
}

static void test_hostile_rows(void **state)
{
	struct uidl_map m;
	struct uidl_pair *v = calloc(4, sizeof(*v));

	(void)state;
	assert_non_null(v);
	strcpy(v[0].dst, "good");
	strcpy(v[0].src, "old");
	strcpy(v[1].dst, "bad dst"); /* a space: dropped */
	strcpy(v[1].src, "x");
	memset(v[2].dst, 'a', sizeof(v[2].dst)); /* unterminated: cut, kept */
	strcpy(v[2].src, "long");
	strcpy(v[3].dst, "good"); /* a second pair for one dst: dropped */
	strcpy(v[3].src, "other");
	assert_int_equal(uidl_map_init(&m, v, 4), MF_OK);
	assert_int_equal(m.n, 2);
	assert_string_equal(rw(&m, "1 good", false), "1 old");
	uidl_map_free(&m);
	/* Empty. */
	v = calloc(1, sizeof(*v));
	assert_int_equal(uidl_map_init(&m, v, 0), MF_OK);
	assert_int_equal(m.n, 0);
	assert_string_equal(rw(&m, "1 good", false), "1 good");
	uidl_map_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rewrite),
		cmocka_unit_test(test_hostile_lines),
		cmocka_unit_test(test_hostile_rows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
