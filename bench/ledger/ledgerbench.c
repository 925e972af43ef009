/* ledgerbench.c — routing decisions per second on a ledger: the lookup the
 * front ends make for every login (route_cache_lookup: the daemon's routing
 * cache, then ledger_account_get on a miss, and the state's route), on a
 * SQLite file or a PostgreSQL database, one handle per thread as the
 * workers hold them, with the cache off (every decision reads the ledger)
 * and on (the daemon's default size and TTL). Also the cost of a state
 * flip (a synced transaction), and on PostgreSQL how long a flip takes to
 * reach another gateway's cache: a second handle LISTENs as the daemon's
 * change feed does (state_watch.c: ledger_changes_wait -> route_cache_update)
 * and the time from the start of the flip to the state in that cache is
 * taken for each of FLIPS flips.
 *
 *   ledgerbench SPEC ACCOUNTS SECONDS THREADS   (prints one JSON line)
 *
 * Built against build/libmailferry.a by bench/ledger/run.sh. Bounded by
 * SECONDS; the accounts are created first (ann0@example.org, ...). */
#include "account.h"
#include "ledger.h"
#include "mf.h"
#include "route_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define FLIPS 200

struct job {
	const char *spec;
	unsigned int accounts;
	double seconds;
	struct route_cache *cache;
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
			enum account_state st;
			int64_t changed;
			bool stale;

			rc = route_cache_lookup(j->cache, l, name, route_cache_now_ms(), &st,
						&changed, &stale, err, sizeof(err));
			if (rc == MF_ERROR) {
				fprintf(stderr, "ledgerbench: %s\n", err);
				j->failed = 1;
				ledger_close(l);
				return NULL;
			}
			(void)a;
			(void)account_state_route(st);
			j->lookups++;
		}
	}
	ledger_close(l);
	return NULL;
}

/* Lookups per second over threads handles; cache_size 0: the cache off
 * (the daemon's cache_size = 0), else on with the daemon's default TTL. */
static double run_lookups(const char *spec, unsigned int accounts, double seconds,
			  unsigned int threads, unsigned int cache_size)
{
	struct route_cache cache;
	struct job *jobs = calloc(threads, sizeof(*jobs));
	pthread_t *th = calloc(threads, sizeof(*th));
	uint64_t total = 0;
	double t0, rate = -1;
	unsigned int started = 0;
	int failed = 0;

	/* trusted as the daemon trusts it: on a shared ledger (its change feed
	 * listening), never on SQLite (there it only keeps final states) */
	if (jobs == NULL || th == NULL ||
	    route_cache_init(&cache, cache_size, 2000, ledger_spec_is_shared(spec)) != MF_OK)
		goto out_free;
	t0 = now_s();
	for (; started < threads; started++) {
		jobs[started] = (struct job){ .spec = spec, .accounts = accounts,
					      .seconds = seconds, .cache = &cache };
		if (pthread_create(&th[started], NULL, lookups, &jobs[started]) != 0)
			break;
	}
	for (unsigned int i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		failed |= jobs[i].failed;
		total += jobs[i].lookups;
	}
	if (started == threads && !failed)
		rate = (double)total / (now_s() - t0);
	route_cache_destroy(&cache);
out_free:
	free(jobs);
	free(th);
	return rate;
}

/* The other gateway's change feed: a listening handle and its cache. */
struct feed {
	const char *spec;
	struct route_cache *cache;
	atomic_bool stop, ready;
	atomic_int failed;
};

static void heard(const char *name, enum account_state st, void *data)
{
	struct feed *f = data;

	route_cache_update(f->cache, name, st, 0, route_cache_now_ms());
}

static void *feed_main(void *arg)
{
	struct feed *f = arg;
	struct ledger *l;
	char err[256];

	if (ledger_open(f->spec, &l, err, sizeof(err)) != MF_OK ||
	    ledger_changes_listen(l, err, sizeof(err)) != MF_OK) {
		fprintf(stderr, "ledgerbench: feed: %s\n", err);
		atomic_store(&f->failed, 1);
		atomic_store(&f->ready, true);
		return NULL;
	}
	atomic_store(&f->ready, true);
	while (!atomic_load(&f->stop))
		if (ledger_changes_wait(l, 50, heard, f, err, sizeof(err)) != MF_OK) {
			fprintf(stderr, "ledgerbench: feed: %s\n", err);
			atomic_store(&f->failed, 1);
			break;
		}
	ledger_close(l);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* FLIPS flips on one handle; each until the other cache has it. Prints
 * p50/p99/max of start-of-flip -> seen, and p50 of commit -> seen. */
static int propagation(const char *spec, unsigned int accounts)
{
	struct route_cache cache;
	struct feed f = { .spec = spec, .cache = &cache };
	double total[FLIPS], after[FLIPS];
	struct ledger *l;
	pthread_t th;
	char err[256], name[64];
	int rc = MF_ERROR;

	if (route_cache_init(&cache, 65536, 3600000, true) != MF_OK)
		return MF_ERROR;
	if (ledger_open(spec, &l, err, sizeof(err)) != MF_OK) {
		fprintf(stderr, "ledgerbench: %s\n", err);
		goto out_cache;
	}
	if (pthread_create(&th, NULL, feed_main, &f) != 0)
		goto out_ledger;
	while (!atomic_load(&f.ready))
		;
	for (unsigned int i = 0; i < FLIPS && !atomic_load(&f.failed); i++) {
		enum account_state want = i % 2 ? AS_SEEN : AS_MIGRATED, st;
		double t0, t1, deadline;
		int64_t ch;
		uint64_t seq;

		snprintf(name, sizeof(name), "ann%u@example.org", i % accounts);
		t0 = now_s();
		if (ledger_account_set_state(l, name, want, "bench", (int64_t)i, NULL, err,
					     sizeof(err)) != MF_OK) {
			fprintf(stderr, "ledgerbench: %s\n", err);
			goto out_thread;
		}
		t1 = now_s();
		deadline = t1 + 5;
		while (route_cache_get(&cache, name, route_cache_now_ms(), &st, &ch, &seq) !=
			       RC_FRESH || st != want) {
			struct timespec ts = { 0, 20000 }; /* leave the cores to the feed */

			if (now_s() > deadline) {
				fprintf(stderr, "ledgerbench: flip %u never heard\n", i);
				goto out_thread;
			}
			nanosleep(&ts, NULL);
		}
		total[i] = (now_s() - t0) * 1000.0;
		after[i] = (now_s() - t1) * 1000.0;
	}
	if (!atomic_load(&f.failed)) {
		qsort(total, FLIPS, sizeof(total[0]), cmp_double);
		qsort(after, FLIPS, sizeof(after[0]), cmp_double);
		printf(", \"propagation_flips\": %d, \"propagation_p50_ms\": %.3f, "
		       "\"propagation_p99_ms\": %.3f, \"propagation_max_ms\": %.3f, "
		       "\"commit_to_cache_p50_ms\": %.3f", FLIPS, total[FLIPS / 2],
		       total[FLIPS * 99 / 100], total[FLIPS - 1], after[FLIPS / 2]);
		rc = MF_OK;
	}
out_thread:
	atomic_store(&f.stop, true);
	pthread_join(th, NULL);
out_ledger:
	ledger_close(l);
out_cache:
	route_cache_destroy(&cache);
	return rc;
}

int main(int argc, char **argv)
{
	struct ledger *l;
	char err[256], name[64];
	unsigned int accounts, threads, flips = 200;
	double seconds, t0, flip_s, cache_off, cache_on;

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
			snprintf(v[n].gateway, sizeof(v[n].gateway), "bench");
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

	cache_off = run_lookups(argv[1], accounts, seconds, threads, 0);
	cache_on = run_lookups(argv[1], accounts, seconds, threads, 65536);
	if (cache_off < 0 || cache_on < 0)
		return 1;
	printf("{\"lookups_per_s_cache_off\": %.0f, \"lookups_per_s_cache_on\": %.0f, "
	       "\"flip_ms\": %.3f, \"threads\": %u, \"accounts\": %u",
	       cache_off, cache_on, flip_s * 1000.0, threads, accounts);
	if (ledger_spec_is_shared(argv[1]) && propagation(argv[1], accounts) != MF_OK)
		return 1;
	printf("}\n");
	return 0;
}
