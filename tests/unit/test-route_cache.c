/* test-route_cache.c — the routing cache: trusted for its TTL while live,
 * a change heard of wins over an older read, nothing non-final is used
 * while the ledger cannot answer, the table stays bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ledger.h"
#include "mf.h"
#include "route_cache.h"

static void test_fresh_then_stale(void **state)
{
	struct route_cache c;
	enum account_state st;
	int64_t ch;
	uint64_t seq;

	(void)state;
	assert_int_equal(route_cache_init(&c, 16, 1000, true), MF_OK);
	assert_int_equal(route_cache_get(&c, "ann@x", 100, &st, &ch, &seq), RC_MISS);
	route_cache_put(&c, "ann@x", AS_SEEN, 7, 100, seq);
	assert_int_equal(route_cache_get(&c, "ann@x", 1099, &st, &ch, &seq), RC_FRESH);
	assert_int_equal(st, AS_SEEN);
	assert_int_equal(ch, 7);
	assert_int_equal(route_cache_get(&c, "ann@x", 1100, &st, &ch, &seq), RC_STALE);
	route_cache_destroy(&c);
}

/* A read that began before a change was heard must not overwrite it. */
static void test_change_beats_older_read(void **state)
{
	struct route_cache c;
	enum account_state st;
	int64_t ch;
	uint64_t seq;

	(void)state;
	assert_int_equal(route_cache_init(&c, 16, 60000, true), MF_OK);
	route_cache_get(&c, "ann@x", 10, &st, &ch, &seq);      /* reader starts */
	route_cache_update(&c, "ann@x", AS_MIGRATED, 5, 11);   /* NOTIFY arrives */
	route_cache_put(&c, "ann@x", AS_CUTOVER, 4, 12, seq);  /* the older read */
	assert_int_equal(route_cache_get(&c, "ann@x", 13, &st, &ch, &seq), RC_FRESH);
	assert_int_equal(st, AS_MIGRATED);
	route_cache_destroy(&c);
}

/* Feed down, ledger down: final states route, others do not; back up:
 * everything is read again. */
static void test_unreachable(void **state)
{
	struct route_cache c;
	enum account_state st;
	int64_t ch;
	uint64_t seq;
	char err[128];
	bool stale;

	(void)state;
	assert_int_equal(route_cache_init(&c, 16, 60000, false), MF_OK);
	/* not live yet: nothing is trusted */
	route_cache_get(&c, "mig@x", 1, &st, &ch, &seq);
	route_cache_put(&c, "mig@x", AS_MIGRATED, 1, 1, seq);
	assert_int_equal(route_cache_get(&c, "mig@x", 2, &st, &ch, &seq), RC_STALE);
	route_cache_set_live(&c, true);
	assert_int_equal(route_cache_get(&c, "mig@x", 2, &st, &ch, &seq), RC_MISS);
	route_cache_update(&c, "mig@x", AS_MIGRATED, 1, 2);
	route_cache_update(&c, "pin@x", AS_PINNED, 1, 2);
	route_cache_update(&c, "cop@x", AS_COPYING, 1, 2);
	assert_int_equal(route_cache_lookup(&c, NULL, "cop@x", 3, &st, &ch, &stale, err,
					    sizeof(err)), MF_OK);
	assert_int_equal(st, AS_COPYING);
	route_cache_set_live(&c, false);
	assert_int_equal(route_cache_lookup(&c, NULL, "mig@x", 4, &st, &ch, &stale, err,
					    sizeof(err)), MF_OK);
	assert_true(stale);
	assert_int_equal(st, AS_MIGRATED);
	assert_int_equal(route_cache_lookup(&c, NULL, "pin@x", 4, &st, &ch, &stale, err,
					    sizeof(err)), MF_OK);
	assert_int_equal(st, AS_PINNED);
	assert_int_equal(route_cache_lookup(&c, NULL, "cop@x", 4, &st, &ch, &stale, err,
					    sizeof(err)), MF_ERROR);
	assert_int_equal(route_cache_lookup(&c, NULL, "new@x", 4, &st, &ch, &stale, err,
					    sizeof(err)), MF_ERROR);
	route_cache_set_live(&c, true);
	assert_int_equal(route_cache_get(&c, "mig@x", 5, &st, &ch, &seq), RC_MISS);
	route_cache_destroy(&c);
}

static void test_bounded_and_off(void **state)
{
	struct route_cache c;
	enum account_state st;
	int64_t ch;
	uint64_t seq;
	char name[32];
	size_t used = 0;

	(void)state;
	assert_int_equal(route_cache_init(&c, 8, 60000, true), MF_OK);
	for (unsigned int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "u%u@x", i);
		route_cache_update(&c, name, AS_SEEN, 0, i);
	}
	for (size_t i = 0; i < (size_t)c.n_sets * ROUTE_CACHE_WAYS; i++)
		used += c.e[i].name != NULL;
	assert_true(used <= 8);
	/* the newest survives its set's replacement */
	assert_int_equal(route_cache_get(&c, "u999@x", 1000, &st, &ch, &seq), RC_FRESH);
	route_cache_destroy(&c);

	assert_int_equal(route_cache_init(&c, 0, 60000, true), MF_OK);
	route_cache_update(&c, "ann@x", AS_MIGRATED, 0, 1);
	assert_int_equal(route_cache_get(&c, "ann@x", 1, &st, &ch, &seq), RC_MISS);
	route_cache_destroy(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fresh_then_stale),
		cmocka_unit_test(test_change_beats_older_read),
		cmocka_unit_test(test_unreachable),
		cmocka_unit_test(test_bounded_and_off),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
