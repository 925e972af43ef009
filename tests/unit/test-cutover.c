/* Unit tests: gateway/cutover.c — a posted name reaches every worker once
 * per generation, the wait returns when all acknowledged and times out
 * when one does not, freed slots disappear from the snapshot. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "cutover.h"

static char names[CUTOVER_SLOTS_MAX][ACCOUNT_NAME_MAX + 1];

static void test_post_poll_ack_wait(void **state)
{
	struct cutover_board b;
	unsigned int n, gen, g0, g1;

	(void)state;
	cutover_init(&b, 2);
	/* Nothing posted yet: nothing to do. */
	assert_int_equal(cutover_poll(&b, 0, names, &n), 0);
	assert_int_equal(n, 0);

	gen = cutover_begin(&b, 3, "ann@lab.test");
	assert_int_not_equal(gen, 0);
	g0 = cutover_poll(&b, 0, names, &n);
	assert_int_equal(g0, gen);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "ann@lab.test");
	cutover_ack(&b, 0, g0);
	/* Acknowledged: the same generation is not handed out again. */
	assert_int_equal(cutover_poll(&b, 0, names, &n), 0);
	/* Worker 1 has not acknowledged: the wait runs out. */
	assert_false(cutover_wait(&b, gen, 50));
	g1 = cutover_poll(&b, 1, names, &n);
	assert_int_equal(g1, gen);
	cutover_ack(&b, 1, g1);
	assert_true(cutover_wait(&b, gen, 50));

	/* A second account while the first is still in cutover. */
	gen = cutover_begin(&b, 0, "bob@lab.test");
	assert_int_equal(cutover_poll(&b, 1, names, &n), gen);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "bob@lab.test");
	assert_string_equal(names[1], "ann@lab.test");
	cutover_end(&b, 3);
	assert_int_equal(cutover_poll(&b, 0, names, &n), gen);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "bob@lab.test");
	/* Out of range workers and slots are ignored, not written. */
	assert_int_equal(cutover_poll(&b, 7, names, &n), 0);
	cutover_ack(&b, 7, gen);
	cutover_begin(&b, CUTOVER_SLOTS_MAX, "x");
	cutover_destroy(&b);
}

struct acker {
	struct cutover_board *b;
	unsigned int worker;
};

static void *ack_main(void *arg)
{
	struct acker *a = arg;
	char mine[CUTOVER_SLOTS_MAX][ACCOUNT_NAME_MAX + 1];
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	unsigned int n, gen;

	nanosleep(&ts, NULL);
	gen = cutover_poll(a->b, a->worker, mine, &n);
	cutover_ack(a->b, a->worker, gen);
	return NULL;
}

static void test_wait_woken_by_ack(void **state)
{
	struct cutover_board b;
	struct acker a = { .b = &b, .worker = 0 };
	pthread_t t;
	unsigned int gen;

	(void)state;
	cutover_init(&b, 1);
	gen = cutover_begin(&b, 0, "ann@lab.test");
	assert_int_equal(pthread_create(&t, NULL, ack_main, &a), 0);
	assert_true(cutover_wait(&b, gen, 5000));
	pthread_join(t, NULL);
	cutover_destroy(&b);
}

/* Two cutovers posted before the workers look (a copy here and a CUTOVER
 * heard from another gateway): acknowledging the later generation, whose
 * snapshot held both names, ends both waits. */
static void test_later_ack_covers_earlier(void **state)
{
	struct cutover_board b;
	unsigned int n, g_copy, g_feed, g;

	(void)state;
	cutover_init(&b, 1);
	g_copy = cutover_begin(&b, 0, "ann@lab.test");
	g_feed = cutover_begin(&b, CUTOVER_SLOT_FEED, "bob@lab.test");
	g = cutover_poll(&b, 0, names, &n);
	assert_int_equal(g, g_feed);
	assert_int_equal(n, 2);
	cutover_ack(&b, 0, g);
	assert_true(cutover_wait(&b, g_copy, 50));
	assert_true(cutover_wait(&b, g_feed, 50));
	/* a generation not yet acknowledged still waits */
	g = cutover_begin(&b, 0, "ann@lab.test");
	assert_false(cutover_wait(&b, g, 50));
	cutover_destroy(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_post_poll_ack_wait),
		cmocka_unit_test(test_later_ack_covers_earlier),
		cmocka_unit_test(test_wait_woken_by_ack),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
