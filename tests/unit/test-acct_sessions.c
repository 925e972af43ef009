/* Unit tests: gateway/acct_sessions.c — counts per name, entries gone at
 * zero (one bucket: every name collides), names that differ only at the
 * end, leave of an unknown name ignored, threads entering and leaving
 * concurrently end at zero. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>

#include "acct_sessions.h"
#include "mf.h"

static void test_counts(void **state)
{
	struct acct_sessions as;

	(void)state;
	assert_int_equal(acct_sessions_init(&as, 1), MF_OK);
	assert_int_equal(acct_sessions_count(&as, "bob"), 0);
	assert_int_equal(acct_sessions_enter(&as, "bob"), MF_OK);
	assert_int_equal(acct_sessions_enter(&as, "bob"), MF_OK);
	assert_int_equal(acct_sessions_enter(&as, "bo"), MF_OK);
	assert_int_equal(acct_sessions_enter(&as, "bobby"), MF_OK);
	assert_int_equal(acct_sessions_count(&as, "bob"), 2);
	assert_int_equal(acct_sessions_count(&as, "bo"), 1);
	assert_int_equal(as.n_accounts, 3);
	acct_sessions_leave(&as, "alice");
	acct_sessions_leave(&as, "bob");
	assert_int_equal(acct_sessions_count(&as, "bob"), 1);
	acct_sessions_leave(&as, "bob");
	assert_int_equal(acct_sessions_count(&as, "bob"), 0);
	assert_int_equal(as.n_accounts, 2);
	acct_sessions_leave(&as, "bob"); /* not counted any more: ignored */
	assert_int_equal(acct_sessions_count(&as, "bobby"), 1);
	acct_sessions_leave(&as, "bo");
	acct_sessions_leave(&as, "bobby");
	assert_int_equal(as.n_accounts, 0);
	assert_null(as.buckets[0]);
	acct_sessions_destroy(&as);
}

static struct acct_sessions shared;

static void *churn(void *arg)
{
	char name[32];

	snprintf(name, sizeof(name), "user%u", (unsigned int)(uintptr_t)arg % 3);
	for (int i = 0; i < 20000; i++) {
		if (acct_sessions_enter(&shared, name) != MF_OK)
			return (void *)1;
		acct_sessions_leave(&shared, name);
	}
	return NULL;
}

static void test_threads(void **state)
{
	pthread_t t[4];
	void *rv;

	(void)state;
	assert_int_equal(acct_sessions_init(&shared, 7), MF_OK);
	assert_int_equal(acct_sessions_enter(&shared, "user1"), MF_OK);
	for (uintptr_t i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, churn, (void *)i), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], &rv), 0);
		assert_null(rv);
	}
	assert_int_equal(acct_sessions_count(&shared, "user1"), 1);
	assert_int_equal(acct_sessions_count(&shared, "user0"), 0);
	assert_int_equal(shared.n_accounts, 1);
	acct_sessions_destroy(&shared);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
