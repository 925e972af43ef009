/* heartbeat.c — see heartbeat.h. */
#include "heartbeat.h"
#include "daemon.h"
#include "ledger.h"
#include "log.h"
#include "mf.h"
#include "stats.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct heartbeat {
	struct mf_daemon *d;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
	struct ledger *l;
	bool failing;          /* the last beat failed (logged once) */
	struct gateway_beat b; /* id, started, pid fixed at start */
	char spec[MF_PATH_MAX];
};

static void beat(struct heartbeat *hb, bool stopped)
{
	struct stats_snapshot snap;
	uint64_t done;
	char err[512];

	stats_snapshot(&hb->d->stats, &snap, NULL);
	hb->b.last_beat = (int64_t)time(NULL);
	hb->b.stopped = stopped ? hb->b.last_beat : 0;
	hb->b.sessions = 0;
	for (unsigned int p = 0; p < STATS_PROTO_COUNT; p++)
		for (unsigned int k = 0; k < STATS_BACKEND_COUNT; k++)
			hb->b.sessions += snap.sessions_open[p][k];
	done = 0;
	for (unsigned int r = 0; r < STATS_COPY_RESULT_COUNT; r++)
		done += snap.copies_done[r];
	hb->b.copies = snap.copies_started > done ? snap.copies_started - done : 0;
	if (hb->l == NULL && ledger_open(hb->spec, &hb->l, err, sizeof(err)) != MF_OK) {
		hb->l = NULL;
		goto failed;
	}
	if (ledger_gateway_beat(hb->l, &hb->b, err, sizeof(err)) != MF_OK) {
		/* A fresh handle next time: the connection may be the problem. */
		ledger_close(hb->l);
		hb->l = NULL;
		goto failed;
	}
	if (hb->failing)
		mf_log_info("heartbeat gateway=%s recorded again", hb->b.id);
	hb->failing = false;
	return;
failed:
	if (!hb->failing)
		mf_log_warn("heartbeat gateway=%s not recorded: %s", hb->b.id, err);
	hb->failing = true;
}

static void *hb_main(void *arg)
{
	struct heartbeat *hb = arg;

	pthread_mutex_lock(&hb->lock);
	while (!hb->stop) {
		struct timespec until;

		pthread_mutex_unlock(&hb->lock);
		beat(hb, false);
		pthread_mutex_lock(&hb->lock);
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += HEARTBEAT_MS / 1000;
		until.tv_nsec += (long)(HEARTBEAT_MS % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		while (!hb->stop &&
		       pthread_cond_timedwait(&hb->wake, &hb->lock, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&hb->lock);
	beat(hb, true);
	return NULL;
}

int heartbeat_start(struct mf_daemon *d, struct heartbeat **hb_r, char *err, size_t errlen)
{
	struct heartbeat *hb = calloc(1, sizeof(*hb));
	pthread_condattr_t ca;
	int rc;

	*hb_r = NULL;
	if (hb == NULL)
		return mf_err(err, errlen, "heartbeat: out of memory");
	hb->d = d;
	snprintf(hb->spec, sizeof(hb->spec), "%s", d->cfg.ledger_path);
	snprintf(hb->b.id, sizeof(hb->b.id), "%s", d->cfg.gateway_id);
	hb->b.started = (int64_t)time(NULL);
	hb->b.pid = (int64_t)getpid();
	pthread_mutex_init(&hb->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&hb->wake, &ca);
	pthread_condattr_destroy(&ca);
	rc = pthread_create(&hb->thread, NULL, hb_main, hb);
	if (rc != 0) {
		pthread_cond_destroy(&hb->wake);
		pthread_mutex_destroy(&hb->lock);
		free(hb);
		return mf_err(err, errlen, "heartbeat: thread: %s", strerror(rc));
	}
	*hb_r = hb;
	return MF_OK;
}

void heartbeat_stop(struct heartbeat *hb)
{
	if (hb == NULL)
		return;
	pthread_mutex_lock(&hb->lock);
	hb->stop = true;
	pthread_cond_signal(&hb->wake);
	pthread_mutex_unlock(&hb->lock);
	pthread_join(hb->thread, NULL);
	if (hb->l != NULL)
		ledger_close(hb->l);
	pthread_cond_destroy(&hb->wake);
	pthread_mutex_destroy(&hb->lock);
	free(hb);
}
