#include "copy_lease.h"
#include "config.h"
#include "ledger.h"
#include "log.h"
#include "mf.h"
#include "mig_state.h"
#include "route_cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LEASE_TICK_MS 250

enum lease_status { LS_FREE = 0, LS_HELD, LS_UNREACHABLE, LS_LOST };

struct lease_slot {
	struct copy_lease *cl;
	char name[ACCOUNT_NAME_MAX + 1];
	enum lease_status status;
	int64_t renewed_ms; /* last successful renewal (wall clock) */
	char state_path[4096];  /* the copy's checkpoints */
	uint64_t stored_stamp;  /* of the file when last stored in the ledger */
};

struct copy_lease {
	char spec[MF_PATH_MAX];
	char owner[LEDGER_GATEWAY_MAX];
	unsigned int lease_ms;
	struct route_cache *routes;
	atomic_bool *stopping;
	pthread_mutex_t lock;
	pthread_cond_t changed;  /* a slot's status moved */
	pthread_t tid;
	bool quit;
	/* copy_lease_on_reaped: under lock */
	void (*on_reaped)(void *arg, const char *name);
	void *on_reaped_arg;
	unsigned int n;
	struct lease_slot s[];
};

/* Leases are compared across gateways: wall-clock milliseconds. */
static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tell_cache(struct copy_lease *cl, const char *name, enum account_state st)
{
	route_cache_update(cl->routes, name, st, (int64_t)time(NULL), route_cache_now_ms());
}

static void reaped(const char *name, const char *former, void *data)
{
	struct copy_lease *cl = data;

	tell_cache(cl, name, AS_SEEN);
	/* Called under the lock, so copy_lease_on_reaped(NULL) returns only
	 * once no call is running: the migrator may go right after. */
	pthread_mutex_lock(&cl->lock);
	mf_log_info("lease user=%s owner=%s: copy job given back, user served by the source "
		    "until %s", name, former, cl->on_reaped != NULL
		    ? "its copy resumes here (master user)" : "the next login");
	if (cl->on_reaped != NULL)
		cl->on_reaped(cl->on_reaped_arg, name);
	pthread_mutex_unlock(&cl->lock);
}

void copy_lease_on_reaped(struct copy_lease *cl, void (*fn)(void *arg, const char *name),
			  void *arg)
{
	pthread_mutex_lock(&cl->lock);
	cl->on_reaped = fn;
	cl->on_reaped_arg = arg;
	pthread_mutex_unlock(&cl->lock);
}

/* Size and times of the state file and its WAL: changes when a batch
 * commits. 0 when there is no file. */
static uint64_t file_stamp(const char *path)
{
	char wal[4096 + 8];
	struct stat a, b;
	uint64_t h = 0;

	if (stat(path, &a) != 0)
		return 0;
	snprintf(wal, sizeof(wal), "%s-wal", path);
	h = (uint64_t)a.st_size * 1000003u ^ (uint64_t)a.st_mtim.tv_nsec ^
	    (uint64_t)a.st_mtim.tv_sec << 20;
	if (stat(wal, &b) == 0)
		h = h * 31 + ((uint64_t)b.st_size * 1000003u ^ (uint64_t)b.st_mtim.tv_nsec ^
			      (uint64_t)b.st_mtim.tv_sec << 20);
	return h == 0 ? 1 : h;
}

/* With a renewal: the copy's checkpoints, when they moved, go to the
 * ledger, for whoever takes the job over should this gateway die. */
static void store_checkpoints(struct copy_lease *cl, struct ledger *l, struct lease_slot *s,
			      const char *name)
{
	char path[4096], err[256];
	uint64_t stamp;
	void *buf;
	size_t len;
	int rc;

	uint64_t stored;

	pthread_mutex_lock(&cl->lock);
	snprintf(path, sizeof(path), "%s", s->state_path);
	stored = s->stored_stamp;
	pthread_mutex_unlock(&cl->lock);
	stamp = file_stamp(path);
	if (path[0] == '\0' || stamp == 0 || stamp == stored)
		return;
	if (mig_state_snapshot(path, &buf, &len, err, sizeof(err)) != MF_OK) {
		mf_log_warn("lease user=%s: checkpoints not stored: %s", name, err);
		return;
	}
	rc = len > LEDGER_CHECKPOINT_MAX
		? mf_err(err, sizeof(err), "%zu bytes, more than the ledger takes", len)
		: ledger_job_checkpoint_put(l, name, cl->owner, buf, len, err, sizeof(err));
	free(buf);
	if (rc == MF_OK) {
		pthread_mutex_lock(&cl->lock);
		if (strcmp(s->name, name) == 0)
			s->stored_stamp = stamp;
		pthread_mutex_unlock(&cl->lock);
		mf_log_info("lease user=%s: checkpoints stored (%zu bytes)", name, len);
	} else if (rc == MF_ERROR)
		mf_log_warn("lease user=%s: checkpoints not stored: %s", name, err);
}

/* One keeper round: renew what is due, reap when we have been in touch
 * with the ledger for a whole lease. */
static void keep(struct copy_lease *cl, struct ledger **l, int64_t *healthy_since,
		 int64_t *next_renew, int64_t *next_reap)
{
	int64_t now = wall_ms();
	char err[256];
	bool ok = true;

	if (*l == NULL && ledger_open(cl->spec, l, err, sizeof(err)) != MF_OK) {
		*l = NULL;
		*healthy_since = 0;
		return;
	}
	if (now >= *next_renew) {
		for (unsigned int i = 0; i < cl->n; i++) {
			struct lease_slot *s = &cl->s[i];
			char name[ACCOUNT_NAME_MAX + 1];
			int rc;

			pthread_mutex_lock(&cl->lock);
			snprintf(name, sizeof(name), "%s", s->name);
			rc = s->status == LS_HELD || s->status == LS_UNREACHABLE;
			pthread_mutex_unlock(&cl->lock);
			if (!rc)
				continue;
			rc = ledger_job_renew(*l, name, cl->owner, now, cl->lease_ms, err,
					      sizeof(err));
			pthread_mutex_lock(&cl->lock);
			if (strcmp(s->name, name) == 0 && s->status != LS_FREE) {
				enum lease_status was = s->status;

				s->status = rc == MF_OK ? LS_HELD
					  : rc == LEDGER_NOT_OWNER ? LS_LOST : LS_UNREACHABLE;
				if (rc == MF_OK)
					s->renewed_ms = now;
				if (s->status != was) {
					if (s->status == LS_LOST)
						mf_log_warn("lease user=%s: taken by another gateway, "
							    "the copy stops", name);
					else if (s->status == LS_UNREACHABLE)
						mf_log_warn("lease user=%s: not renewed (%s): copy "
							    "paused", name, err);
					else
						mf_log_info("lease user=%s: renewed, copy resumes",
							    name);
					pthread_cond_broadcast(&cl->changed);
				}
			}
			pthread_mutex_unlock(&cl->lock);
			if (rc == MF_ERROR)
				ok = false;
			else if (rc == MF_OK)
				store_checkpoints(cl, *l, s, name);
		}
		*next_renew = ok ? now + cl->lease_ms / 3 : now + LEASE_TICK_MS;
	}
	if (ok && *healthy_since == 0) {
		/* no lease to renew proves nothing: ask something cheap */
		int v;

		ok = ledger_schema_version(*l, &v, err, sizeof(err)) == MF_OK;
		if (ok)
			*healthy_since = now;
	}
	if (!ok) {
		*healthy_since = 0;
		return;
	}
	/* In touch for a lease plus an owner's longest reconnect pause: a live
	 * owner cut off with us has renewed by then. */
	if (now >= *next_reap &&
	    now - *healthy_since >= (int64_t)cl->lease_ms + LEDGER_RECONNECT_MAX_MS) {
		if (ledger_jobs_reap(*l, now, NULL, reaped, cl, err, sizeof(err)) != MF_OK) {
			mf_log_warn("lease: cannot give back expired copy jobs: %s", err);
			*healthy_since = 0;
		}
		*next_reap = now + cl->lease_ms / 2;
	}
}

static void *keeper_main(void *arg)
{
	struct copy_lease *cl = arg;
	struct ledger *l = NULL;
	int64_t healthy_since = 0, next_renew = 0, next_reap = 0;

	pthread_mutex_lock(&cl->lock);
	while (!cl->quit) {
		struct timespec until;

		pthread_mutex_unlock(&cl->lock);
		keep(cl, &l, &healthy_since, &next_renew, &next_reap);
		pthread_mutex_lock(&cl->lock);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += LEASE_TICK_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		if (!cl->quit)
			pthread_cond_timedwait(&cl->changed, &cl->lock, &until);
	}
	pthread_mutex_unlock(&cl->lock);
	ledger_close(l);
	return NULL;
}

int copy_lease_start(const struct copy_lease_cfg *cfg, struct copy_lease **cl_r, char *err,
		     size_t errlen)
{
	struct copy_lease *cl = calloc(1, sizeof(*cl) + cfg->n_slots * sizeof(cl->s[0]));
	int rc;

	*cl_r = NULL;
	if (cl == NULL)
		return mf_err(err, errlen, "out of memory");
	snprintf(cl->spec, sizeof(cl->spec), "%s", cfg->ledger_spec);
	snprintf(cl->owner, sizeof(cl->owner), "%s", cfg->owner);
	cl->lease_ms = cfg->lease_ms;
	cl->routes = cfg->routes;
	cl->stopping = cfg->stopping;
	cl->n = cfg->n_slots;
	for (unsigned int i = 0; i < cl->n; i++)
		cl->s[i].cl = cl;
	pthread_mutex_init(&cl->lock, NULL);
	pthread_cond_init(&cl->changed, NULL);
	/* Jobs this id held before a crash are not reaped here: a daemon
	 * starting beside a running one (a restart hand-over) shares its id,
	 * and their copies may still run. They end by lease expiry, or sooner
	 * when the migrator puts a crashed copy of a single gateway back to
	 * SEEN (then our own id's lease is no obstacle to a claim). */
	if ((rc = pthread_create(&cl->tid, NULL, keeper_main, cl)) != 0) {
		mf_err(err, errlen, "lease thread: %s", strerror(rc));
		goto fail;
	}
	mf_log_info("lease owner=%s lease_ms=%u", cl->owner, cl->lease_ms);
	*cl_r = cl;
	return MF_OK;
fail:
	pthread_cond_destroy(&cl->changed);
	pthread_mutex_destroy(&cl->lock);
	free(cl);
	return MF_ERROR;
}

void copy_lease_stop(struct copy_lease *cl)
{
	if (cl == NULL)
		return;
	pthread_mutex_lock(&cl->lock);
	cl->quit = true;
	pthread_cond_broadcast(&cl->changed);
	pthread_mutex_unlock(&cl->lock);
	pthread_join(cl->tid, NULL);
	pthread_cond_destroy(&cl->changed);
	pthread_mutex_destroy(&cl->lock);
	free(cl);
}

/* Checkpoints another gateway stored with the job replace ours (ours, if
 * any, are older: the job was theirs since); our own stored ones only
 * stand in for a lost file. */
static void restore_checkpoints(struct copy_lease *cl, struct ledger *l, const char *name,
				const char *path)
{
	char from[LEDGER_GATEWAY_MAX], err[256];
	void *buf;
	size_t len;
	int rc;

	rc = ledger_job_checkpoint_get(l, name, &buf, &len, from, err, sizeof(err));
	if (rc == MF_ERROR)
		mf_log_warn("migrate user=%s: stored checkpoints not read (%s): the copy "
			    "reconciles by content", name, err);
	if (rc != MF_OK)
		return;
	if (strcmp(from, cl->owner) != 0 || access(path, F_OK) != 0) {
		if (mig_state_restore(path, buf, len, err, sizeof(err)) == MF_OK)
			mf_log_info("migrate user=%s: checkpoints of gateway %s restored (%zu "
				    "bytes)", name, from, len);
		else
			mf_log_warn("migrate user=%s: checkpoints of gateway %s not restored (%s): "
				    "the copy reconciles by content", name, from, err);
	}
	free(buf);
}

int copy_lease_claim(struct copy_lease *cl, struct ledger *l, unsigned int slot,
		     const char *name, const char *state_path, unsigned int retry_after_s,
		     const char *reason, enum account_state *state_r)
{
	char holder[LEDGER_GATEWAY_MAX] = "", err[256];
	int64_t now = wall_ms();
	int rc;

	if (slot >= cl->n)
		return MF_ERROR;
	rc = ledger_job_claim(l, name, cl->owner, now, cl->lease_ms, retry_after_s, reason,
			      state_r, holder, err, sizeof(err));
	if (rc == MF_ERROR) {
		mf_log_warn("migrate user=%s: no copy, ledger: %s", name, err);
		return MF_ERROR;
	}
	if (rc == LEDGER_NOT_OWNER) {
		mf_log_info("migrate user=%s state=%s: no copy%s%s", name,
			    account_state_name(*state_r), holder[0] ? ", job held by " : "",
			    holder);
		return rc;
	}
	restore_checkpoints(cl, l, name, state_path);
	pthread_mutex_lock(&cl->lock);
	snprintf(cl->s[slot].name, sizeof(cl->s[slot].name), "%s", name);
	snprintf(cl->s[slot].state_path, sizeof(cl->s[slot].state_path), "%s", state_path);
	cl->s[slot].stored_stamp = file_stamp(state_path);
	cl->s[slot].status = LS_HELD;
	cl->s[slot].renewed_ms = now;
	pthread_mutex_unlock(&cl->lock);
	tell_cache(cl, name, AS_COPYING);
	mf_log_info("migrate user=%s state=COPYING owner=%s reason=\"%s\"", name, cl->owner,
		    reason);
	return MF_OK;
}

void *copy_lease_slot(struct copy_lease *cl, unsigned int slot)
{
	return slot < cl->n ? &cl->s[slot] : NULL;
}

/* Waits while the ledger is unreachable; true to go on. */
static bool wait_usable(struct lease_slot *s)
{
	struct copy_lease *cl = s->cl;
	bool go;

	pthread_mutex_lock(&cl->lock);
	while (s->status == LS_UNREACHABLE && !cl->quit && !atomic_load(cl->stopping)) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&cl->changed, &cl->lock, &until);
	}
	go = s->status == LS_HELD;
	pthread_mutex_unlock(&cl->lock);
	return go;
}

bool copy_lease_proceed(void *slot_arg)
{
	return wait_usable(slot_arg);
}

bool copy_lease_held(struct copy_lease *cl, unsigned int slot)
{
	bool held;

	pthread_mutex_lock(&cl->lock);
	held = slot < cl->n && cl->s[slot].status == LS_HELD;
	pthread_mutex_unlock(&cl->lock);
	return held;
}

void copy_lease_drop(struct copy_lease *cl, unsigned int slot)
{
	pthread_mutex_lock(&cl->lock);
	if (slot < cl->n) {
		cl->s[slot].status = LS_FREE;
		cl->s[slot].name[0] = '\0';
	}
	pthread_mutex_unlock(&cl->lock);
}

int copy_lease_set_state(struct copy_lease *cl, struct ledger *l, unsigned int slot,
			 const char *name, enum account_state st, const char *reason,
			 bool release)
{
	char err[256];
	int rc;

	for (;;) {
		rc = ledger_job_set_state(l, name, cl->owner, st, reason, (int64_t)time(NULL),
					  release, err, sizeof(err));
		if (rc != MF_ERROR || atomic_load(cl->stopping))
			break;
		/* Unreachable: the flip waits (paused like the copy) and is
		 * retried; an owner that lost the job meanwhile gets NOT_OWNER. */
		mf_log_warn("migrate user=%s state=%s not recorded yet: %s", name,
			    account_state_name(st), err);
		{
			struct timespec ts = { 0, 500 * 1000000L };

			nanosleep(&ts, NULL);
		}
	}
	if (rc == MF_OK) {
		tell_cache(cl, name, st);
		mf_log_info("migrate user=%s state=%s reason=\"%s\"", name, account_state_name(st),
			    reason);
	} else if (rc == LEDGER_NOT_OWNER) {
		mf_log_warn("migrate user=%s state=%s not recorded: the copy job is no longer "
			    "this gateway's", name, account_state_name(st));
	} else {
		mf_log_warn("migrate user=%s state=%s not recorded: %s", name,
			    account_state_name(st), err);
	}
	if (release || rc == LEDGER_NOT_OWNER)
		copy_lease_drop(cl, slot);
	return rc;
}
