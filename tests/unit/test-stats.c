/* Unit tests: gateway/stats.c — shards sum, session gauges move between
 * backends, login counts and latency histogram, copy progress counted
 * once, histogram invariants, and writers racing a reader. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mf.h"
#include "stats.h"

static void test_init_refuses_zero(void **state)
{
	struct stats st;

	(void)state;
	assert_int_equal(stats_init(&st, 0, 0), MF_ERROR);
	assert_int_equal(stats_init(&st, 3, 2), MF_OK);
	assert_non_null(stats_shard(&st, 2));
	assert_null(stats_shard(&st, 3));
	assert_int_equal((uintptr_t)stats_shard(&st, 1) % 64, 0);
	stats_destroy(&st);
}

static void test_sessions_across_shards(void **state)
{
	struct stats st;
	struct stats_snapshot s;
	struct stats_shard *a, *b;

	(void)state;
	assert_int_equal(stats_init(&st, 2, 0), MF_OK);
	a = stats_shard(&st, 0);
	b = stats_shard(&st, 1);
	stats_session_open(a, STATS_P_IMAP);
	stats_session_open(a, STATS_P_IMAP);
	stats_session_open(b, STATS_P_IMAP);
	stats_session_open(b, STATS_P_POP3);
	stats_session_relay(a, STATS_P_IMAP, STATS_B_NONE, STATS_B_SOURCE);
	stats_session_relay(b, STATS_P_IMAP, STATS_B_NONE, STATS_B_DESTINATION);
	stats_session_close(a, STATS_P_IMAP, STATS_B_NONE);
	stats_snapshot(&st, &s, NULL);
	assert_int_equal(s.sessions_total[STATS_P_IMAP], 3);
	assert_int_equal(s.sessions_total[STATS_P_POP3], 1);
	assert_int_equal(s.sessions_open[STATS_P_IMAP][STATS_B_NONE], 0);
	assert_int_equal(s.sessions_open[STATS_P_IMAP][STATS_B_SOURCE], 1);
	assert_int_equal(s.sessions_open[STATS_P_IMAP][STATS_B_DESTINATION], 1);
	assert_int_equal(s.sessions_open[STATS_P_POP3][STATS_B_NONE], 1);
	assert_int_equal(s.sessions_relayed[STATS_P_IMAP][STATS_B_SOURCE], 1);
	assert_int_equal(s.sessions_relayed[STATS_P_IMAP][STATS_B_DESTINATION], 1);
	stats_session_close(a, STATS_P_IMAP, STATS_B_SOURCE);
	stats_session_close(b, STATS_P_IMAP, STATS_B_DESTINATION);
	stats_session_close(b, STATS_P_POP3, STATS_B_NONE);
	stats_snapshot(&st, &s, NULL);
	for (unsigned int p = 0; p < STATS_PROTO_COUNT; p++)
		for (unsigned int be = 0; be < STATS_BACKEND_COUNT; be++)
			assert_int_equal(s.sessions_open[p][be], 0);
	assert_int_equal(s.sessions_total[STATS_P_IMAP], 3);
	stats_destroy(&st);
}

static void test_logins_and_latency(void **state)
{
	struct stats st;
	struct stats_snapshot s;
	struct stats_shard *a;
	const struct stats_hist_snap *h;

	(void)state;
	assert_int_equal(stats_init(&st, 1, 0), MF_OK);
	a = stats_shard(&st, 0);
	stats_login(a, STATS_P_IMAP, STATS_B_SOURCE, STATS_L_OK, 1000);    /* le 0.001 exactly */
	stats_login(a, STATS_P_IMAP, STATS_B_SOURCE, STATS_L_OK, 1001);    /* le 0.0025 */
	stats_login(a, STATS_P_IMAP, STATS_B_SOURCE, STATS_L_FAIL, 30000000); /* +Inf */
	stats_login(a, STATS_P_IMAP, STATS_B_NONE, STATS_L_REFUSED, 5);    /* no latency */
	stats_snapshot(&st, &s, NULL);
	assert_int_equal(s.logins[STATS_P_IMAP][STATS_B_SOURCE][STATS_L_OK], 2);
	assert_int_equal(s.logins[STATS_P_IMAP][STATS_B_SOURCE][STATS_L_FAIL], 1);
	assert_int_equal(s.logins[STATS_P_IMAP][STATS_B_NONE][STATS_L_REFUSED], 1);
	h = &s.login_latency[STATS_P_IMAP];
	assert_int_equal(h->bucket[0], 1);
	assert_int_equal(h->bucket[1], 2);
	assert_int_equal(h->bucket[stats_login_latency_spec.n - 1], 2);
	assert_int_equal(h->bucket[stats_login_latency_spec.n], 3);
	assert_int_equal(h->count, 3);
	assert_int_equal(h->sum_us, 1000 + 1001 + 30000000);
	assert_int_equal(s.login_latency[STATS_P_POP3].count, 0);
	stats_destroy(&st);
}

static void test_copy_progress_counted_once(void **state)
{
	struct stats st;
	struct stats_snapshot s;
	struct stats_copy copies[2];
	struct stats_shard *m;

	(void)state;
	assert_int_equal(stats_init(&st, 2, 2), MF_OK);
	m = stats_shard(&st, 1);
	stats_copy_begin(&st, 1, m, "alice@example.org", 1000);
	stats_copy_phase(&st, 1, "bulk");
	stats_copy_progress(&st, 1, m, 10, 1000, 50, 1, 3);
	stats_copy_progress(&st, 1, m, 30, 3000, 50, 2, 3);
	stats_snapshot(&st, &s, copies);
	assert_int_equal(s.n_copies, 1);
	assert_string_equal(copies[0].account, "alice@example.org");
	assert_string_equal(copies[0].phase, "bulk");
	assert_int_equal(copies[0].messages, 30);
	assert_int_equal(copies[0].planned, 50);
	assert_int_equal(s.copy_messages, 30);
	assert_int_equal(s.copy_bytes, 3000);
	/* The run's totals exceed its last report: only the rest is added. */
	stats_copy_run_end(&st, 1, m, 50, 5000);
	stats_copy_run_end(&st, 1, m, 50, 5000);
	/* A second run (the delta) starts from zero again. */
	stats_copy_phase(&st, 1, "delta");
	stats_copy_progress(&st, 1, m, 2, 200, 2, 1, 3);
	stats_copy_run_end(&st, 1, m, 2, 200);
	stats_snapshot(&st, &s, copies);
	assert_int_equal(s.copy_messages, 52);
	assert_int_equal(s.copy_bytes, 5200);
	assert_string_equal(copies[0].phase, "delta");
	stats_copy_end(&st, 1, m, STATS_C_MIGRATED, 2500000);
	stats_snapshot(&st, &s, copies);
	assert_int_equal(s.n_copies, 0);
	assert_int_equal(s.copies_started, 1);
	assert_int_equal(s.copies_done[STATS_C_MIGRATED], 1);
	assert_int_equal(s.copies_done[STATS_C_FAILED], 0);
	assert_int_equal(s.copy_duration.count, 1);
	assert_int_equal(s.copy_duration.bucket[0], 0); /* 2.5 s > 1 s */
	assert_int_equal(s.copy_duration.bucket[1], 1); /* <= 2.5 s */
	/* The cutover window, apart: 0.3 s is in (0.25, 0.5]. */
	stats_cutover_done(m, 300000);
	stats_snapshot(&st, &s, NULL);
	assert_int_equal(s.cutover_duration.count, 1);
	assert_int_equal(s.cutover_duration.sum_us, 300000);
	assert_int_equal(s.cutover_duration.bucket[1], 0); /* <= 0.25 s */
	assert_int_equal(s.cutover_duration.bucket[2], 1); /* <= 0.5 s */
	assert_int_equal(s.copy_duration.count, 1);
	/* An interrupted copy is counted, its duration is not. */
	stats_copy_begin(&st, 1, m, "carol", 2);
	stats_copy_end(&st, 1, m, STATS_C_INTERRUPTED, 7000000);
	stats_snapshot(&st, &s, NULL);
	assert_int_equal(s.copies_done[STATS_C_INTERRUPTED], 1);
	assert_int_equal(s.copy_duration.count, 1);
	/* Out-of-range slots count but track nothing. */
	stats_copy_begin(&st, 7, m, "bob", 1);
	stats_copy_end(&st, 7, m, STATS_C_FAILED, 1);
	stats_snapshot(&st, &s, NULL);
	assert_int_equal(s.copies_started, 3);
	assert_int_equal(s.copies_done[STATS_C_FAILED], 1);
	stats_destroy(&st);
}

struct racer {
	struct stats *st;
	unsigned int shard;
	unsigned int rounds;
};

static void *race_writer(void *arg)
{
	struct racer *r = arg;
	struct stats_shard *sh = stats_shard(r->st, r->shard);

	for (unsigned int i = 0; i < r->rounds; i++) {
		stats_session_open(sh, STATS_P_SMTP);
		stats_login(sh, STATS_P_SMTP, STATS_B_SOURCE, STATS_L_OK, (uint64_t)(i % 20000) * 100);
		stats_session_close(sh, STATS_P_SMTP, STATS_B_NONE);
	}
	return NULL;
}

/* Readers racing writers see monotonic counters and consistent
 * histograms; once the writers are done the sums are exact. */
static void test_race(void **state)
{
	enum { WRITERS = 3, ROUNDS = 200000 };
	struct stats st;
	struct stats_snapshot s;
	struct racer r[WRITERS];
	pthread_t t[WRITERS];
	uint64_t last_total = 0, last_count = 0;

	(void)state;
	assert_int_equal(stats_init(&st, WRITERS, 0), MF_OK);
	for (unsigned int i = 0; i < WRITERS; i++) {
		r[i] = (struct racer){ &st, i, ROUNDS };
		assert_int_equal(pthread_create(&t[i], NULL, race_writer, &r[i]), 0);
	}
	for (unsigned int k = 0; k < 2000; k++) {
		const struct stats_hist_snap *h;

		stats_snapshot(&st, &s, NULL);
		h = &s.login_latency[STATS_P_SMTP];
		assert_true(s.sessions_total[STATS_P_SMTP] >= last_total);
		assert_true(h->count >= last_count);
		for (unsigned int b = 1; b <= stats_login_latency_spec.n; b++)
			assert_true(h->bucket[b] >= h->bucket[b - 1]);
		assert_int_equal(h->count, h->bucket[stats_login_latency_spec.n]);
		assert_true(s.sessions_open[STATS_P_SMTP][STATS_B_NONE] <= WRITERS);
		last_total = s.sessions_total[STATS_P_SMTP];
		last_count = h->count;
	}
	for (unsigned int i = 0; i < WRITERS; i++)
		pthread_join(t[i], NULL);
	stats_snapshot(&st, &s, NULL);
	assert_int_equal(s.sessions_total[STATS_P_SMTP], WRITERS * ROUNDS);
	assert_int_equal(s.sessions_open[STATS_P_SMTP][STATS_B_NONE], 0);
	assert_int_equal(s.logins[STATS_P_SMTP][STATS_B_SOURCE][STATS_L_OK], WRITERS * ROUNDS);
	assert_int_equal(s.login_latency[STATS_P_SMTP].count, WRITERS * ROUNDS);
	stats_destroy(&st);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(stats_proto_name(STATS_P_SUBMISSION), "submission");
	assert_string_equal(stats_proto_name((enum stats_proto)99), "?");
	assert_string_equal(stats_backend_name(STATS_B_DESTINATION), "destination");
	assert_string_equal(stats_login_name(STATS_L_REFUSED), "refused");
	assert_string_equal(stats_copy_result_name(STATS_C_FAILED), "failed");
	assert_string_equal(stats_copy_result_name(STATS_C_INTERRUPTED), "interrupted");
	assert_string_equal(stats_dir_name(1), "server_to_client");
	assert_string_equal(stats_dir_name(2), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_refuses_zero),
		cmocka_unit_test(test_sessions_across_shards),
		cmocka_unit_test(test_logins_and_latency),
		cmocka_unit_test(test_copy_progress_counted_once),
		cmocka_unit_test(test_race),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
