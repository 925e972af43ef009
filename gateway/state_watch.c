#include "state_watch.h"
#include "daemon.h"
#include "ledger.h"
#include "log.h"
#include "mf.h"
#include "route_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WATCH_WAIT_MS 200
#define WATCH_BACKOFF_MIN_MS 100
#define WATCH_BACKOFF_MAX_MS 5000

struct state_watch {
	struct mf_daemon *d;
	char spec[MF_PATH_MAX];
	unsigned int cutover_wait_ms;
	atomic_bool quit;
	pthread_t tid;
};

static void heard(const char *name, enum account_state st, void *data)
{
	struct state_watch *w = data;
	struct mf_daemon *d = w->d;

	route_cache_update(&d->routes, name, st, (int64_t)time(NULL), route_cache_now_ms());
	if (st != AS_CUTOVER)
		return;
	/* Sessions this gateway routed to the source before it heard: the
	 * delta must not race with them. */
	if (d->n_workers > 0) {
		unsigned int gen = cutover_begin(&d->cutover, CUTOVER_SLOT_FEED, name);

		daemon_wake_workers(d);
		if (!cutover_wait(&d->cutover, gen, w->cutover_wait_ms))
			mf_log_warn("watch user=%s: not every worker closed its sessions in time",
				    name);
		cutover_end(&d->cutover, CUTOVER_SLOT_FEED);
	}
	mf_log_info("watch user=%s state=CUTOVER: source sessions closed", name);
}

static void pause_ms(struct state_watch *w, unsigned int ms)
{
	for (unsigned int t = 0; t < ms && !atomic_load(&w->quit); t += 50) {
		struct timespec ts = { 0, 50 * 1000000L };

		nanosleep(&ts, NULL);
	}
}

static void *watch_main(void *arg)
{
	struct state_watch *w = arg;
	struct ledger *l = NULL;
	unsigned int backoff = WATCH_BACKOFF_MIN_MS;
	bool said_down = false;
	char err[256];

	while (!atomic_load(&w->quit)) {
		if (l == NULL) {
			if (ledger_open(w->spec, &l, err, sizeof(err)) != MF_OK ||
			    ledger_changes_listen(l, err, sizeof(err)) != MF_OK) {
				ledger_close(l);
				l = NULL;
				atomic_store(&w->d->routes.ledger_down, true);
				if (!said_down)
					mf_log_warn("watch: ledger changes not heard: %s", err);
				said_down = true;
				pause_ms(w, backoff);
				backoff = backoff * 2 > WATCH_BACKOFF_MAX_MS ? WATCH_BACKOFF_MAX_MS
									     : backoff * 2;
				continue;
			}
			atomic_store(&w->d->routes.ledger_down, false);
			route_cache_set_live(&w->d->routes, true);
			mf_log_info("watch: listening for ledger changes");
			said_down = false;
			backoff = WATCH_BACKOFF_MIN_MS;
		}
		if (ledger_changes_wait(l, WATCH_WAIT_MS, heard, w, err, sizeof(err)) != MF_OK) {
			route_cache_set_live(&w->d->routes, false);
			mf_log_warn("watch: %s: routing only final states from the cache", err);
			said_down = true;
			ledger_close(l);
			l = NULL;
		}
	}
	ledger_close(l);
	return NULL;
}

int state_watch_start(struct mf_daemon *d, struct state_watch **w_r, char *err, size_t errlen)
{
	struct state_watch *w;
	int rc;

	*w_r = NULL;
	if (!ledger_spec_is_shared(d->cfg.ledger_path))
		return MF_OK;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return mf_err(err, errlen, "out of memory");
	w->d = d;
	snprintf(w->spec, sizeof(w->spec), "%s", d->cfg.ledger_path);
	w->cutover_wait_ms = d->cfg.migrate_cutover_wait_ms;
	if ((rc = pthread_create(&w->tid, NULL, watch_main, w)) != 0) {
		free(w);
		return mf_err(err, errlen, "watch thread: %s", strerror(rc));
	}
	*w_r = w;
	return MF_OK;
}

void state_watch_stop(struct state_watch *w)
{
	if (w == NULL)
		return;
	atomic_store(&w->quit, true);
	pthread_join(w->tid, NULL);
	free(w);
}
