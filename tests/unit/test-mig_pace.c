/* Unit tests: migrate/mig_pace.c — the message and byte buckets on a fake
 * clock (a burst of one second passes, the rest waits its share, idle
 * time refills no more than the burst), no limits means no wait; the
 * per-source slots: the limit holds per host, other hosts pass, a
 * release wakes a waiter, stop fails waiters. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <unistd.h>

#include "mig_pace.h"

static double fake_t;
static double slept_total;

static double fake_now(void)
{
	return fake_t;
}

static void fake_sleep(double s)
{
	slept_total += s;
	fake_t += s;
}

#define NEAR(a, b) assert_true(fabs((a) - (b)) < 1e-6)

static void test_buckets(void **state)
{
	struct mig_pace p;

	(void)state;
	fake_t = 100;
	slept_total = 0;
	mig_pace_init(&p, 10, 0, fake_now, fake_sleep);
	for (int i = 0; i < 10; i++)
		NEAR(mig_pace_take(&p, 1, 1000000), 0); /* the burst; bytes unlimited */
	NEAR(mig_pace_take(&p, 1, 0), 0.1);
	for (int i = 0; i < 19; i++)
		mig_pace_take(&p, 1, 0);
	NEAR(slept_total, 2.0); /* 30 messages at 10/s after a burst of 10 */
	fake_t += 1000;           /* idle: refills one burst only */
	slept_total = 0;
	for (int i = 0; i < 11; i++)
		mig_pace_take(&p, 1, 0);
	NEAR(slept_total, 0.1);
	mig_pace_destroy(&p);

	fake_t = 0;
	slept_total = 0;
	mig_pace_init(&p, 0, 1 << 20, fake_now, fake_sleep); /* 1 MiB/s */
	mig_pace_take(&p, 5, 1 << 20); /* the burst */
	mig_pace_take(&p, 5, 3 << 20);
	NEAR(slept_total, 3.0);
	mig_pace_destroy(&p);

	mig_pace_init(&p, 0, 0, fake_now, fake_sleep);
	slept_total = 0;
	NEAR(mig_pace_take(&p, 1000000, UINT64_C(1) << 40), 0);
	NEAR(slept_total, 0);
	mig_pace_destroy(&p);
}

static struct mig_slots slots;
static int got;

static void *taker(void *arg)
{
	got = mig_slots_acquire(&slots, arg) ? 1 : -1;
	return NULL;
}

static void test_slots(void **state)
{
	pthread_t t;

	(void)state;
	mig_slots_init(&slots, 2);
	assert_true(mig_slots_acquire(&slots, "198.18.11.2"));
	assert_true(mig_slots_acquire(&slots, "198.18.11.2"));
	assert_true(mig_slots_acquire(&slots, "198.18.11.9")); /* another source */
	got = 0;
	assert_int_equal(pthread_create(&t, NULL, taker, "198.18.11.2"), 0);
	usleep(50000);
	assert_int_equal(got, 0); /* the third copy from .2 waits */
	mig_slots_release(&slots, "198.18.11.2");
	pthread_join(t, NULL);
	assert_int_equal(got, 1);
	got = 0;
	assert_int_equal(pthread_create(&t, NULL, taker, "198.18.11.2"), 0);
	usleep(50000);
	assert_int_equal(got, 0);
	mig_slots_stop(&slots);
	pthread_join(t, NULL);
	assert_int_equal(got, -1);
	mig_slots_destroy(&slots);

	mig_slots_init(&slots, 0); /* no limit */
	for (int i = 0; i < 100; i++)
		assert_true(mig_slots_acquire(&slots, "x"));
	mig_slots_destroy(&slots);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buckets),
		cmocka_unit_test(test_slots),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
