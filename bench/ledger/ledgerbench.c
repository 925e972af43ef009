/* ledgerbench.c — routing decisions per second on a ledger: the lookup the
 * front ends make for every login (ledger_account_get + the state's route),
 * on a SQLite file or a PostgreSQL database, one handle per thread as the
 * workers hold them. Also the cost of a state flip (a synced transaction).
 *
 *   ledgerbench SPEC ACCOUNTS SECONDS THREADS   (prints one JSON line)
 *
 * Built against build/libmailferry.a by bench/ledger/run.sh. Bounded by
 * SECONDS; the accounts are created first (ann0@example.org, ...). */
#include "account.h"
#include "ledger.h"
#include "mf.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct job {
	const char *spec;
	unsigned int accounts;
	double seconds;
	uint64_t lookups;
	int failed;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *lookups(void *arg)
{
	struct job *j = arg;
	struct ledger *l;
	char err[256], name[64];
	unsigned int seed = (unsigned int)(uintptr_t)arg;
	double end;

	if (ledger_open(j->spec, &l, err, sizeof(err)) != MF_OK) {
		fprintf(stderr, "ledgerbench: %s\n", err);
		j->failed = 1;
		return NULL;
	}
	end = now_s() + j->seconds;
	while (now_s() < end) {
		for (int k = 0; k < 256; k++) {
			struct account a;
			int rc;

			snprintf(name, sizeof(name), "ann%u@example.org", rand_r(&seed) % j->accounts);
			rc = ledger_account_get(l, name, &a, err, sizeof(err));
			if (rc == MF_ERROR) {
				fprintf(stderr, "ledgerbench: %s\n", err);
				j->failed = 1;
				ledger_close(l);
				return NULL;
			}
			(void)account_state_route(rc == LEDGER_ABSENT ? AS_UNSEEN : a.state);
			j->lookups++;
		}
	}
	ledger_close(l);
	return NULL;
}

int main(int argc, char **argv)
{
	struct ledger *l;
	struct job *jobs;
	pthread_t *th;
	char err[256], name[64];
	unsigned int accounts, threads, flips = 200;
	double seconds, t0, flip_s;
	uint64_t total = 0;

	if (argc != 5) {
		fprintf(stderr, "usage: ledgerbench SPEC ACCOUNTS SECONDS THREADS\n");
		return 2;
	}
	accounts = (unsigned int)strtoul(argv[2], NULL, 10);
	seconds = strtod(argv[3], NULL);
	threads = (unsigned int)strtoul(argv[4], NULL, 10);
	if (accounts == 0 || threads == 0 || threads > 64 || seconds <= 0 || seconds > 120) {
		fprintf(stderr, "ledgerbench: bad arguments\n");
		return 2;
	}
	if (ledger_open(argv[1], &l, err, sizeof(err)) != MF_OK) {
		fprintf(stderr, "ledgerbench: %s\n", err);
		return 1;
	}
	/* the accounts, in batches of logins (one transaction each) */
	for (unsigned int i = 0; i < accounts; i += 64) {
		struct ledger_login v[64];
		size_t n = 0;

		for (unsigned int k = i; k < accounts && n < 64; k++, n++) {
			snprintf(v[n].name, sizeof(v[n].name), "ann%u@example.org", k);
			snprintf(v[n].client, sizeof(v[n].client), "198.18.1.2");
			v[n].at = 1;
		}
		if (ledger_logins_observed(l, v, n, err, sizeof(err)) != MF_OK) {
			fprintf(stderr, "ledgerbench: %s\n", err);
			return 1;
		}
	}
	/* state flips: each a synced transaction with its history entry */
	t0 = now_s();
	for (unsigned int i = 0; i < flips; i++) {
		snprintf(name, sizeof(name), "ann%u@example.org", i % accounts);
		if (ledger_account_set_state(l, name, i % 2 ? AS_SEEN : AS_MIGRATED, "bench",
					     (int64_t)i, NULL, err, sizeof(err)) != MF_OK) {
			fprintf(stderr, "ledgerbench: %s\n", err);
			return 1;
		}
	}
	flip_s = (now_s() - t0) / flips;
	ledger_close(l);

	jobs = calloc(threads, sizeof(*jobs));
	th = calloc(threads, sizeof(*th));
	if (jobs == NULL || th == NULL)
		return 1;
	t0 = now_s();
	for (unsigned int i = 0; i < threads; i++) {
		jobs[i] = (struct job){ .spec = argv[1], .accounts = accounts, .seconds = seconds };
		if (pthread_create(&th[i], NULL, lookups, &jobs[i]) != 0)
			return 1;
	}
	for (unsigned int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		if (jobs[i].failed)
			return 1;
		total += jobs[i].lookups;
	}
	printf("{\"lookups_per_s\": %.0f, \"flip_ms\": %.3f, \"threads\": %u, \"accounts\": %u}\n",
	       (double)total / (now_s() - t0), flip_s * 1000.0, threads, accounts);
	free(jobs);
	free(th);
	return 0;
}
