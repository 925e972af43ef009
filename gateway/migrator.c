#include "migrator.h"
#include "copy_lease.h"
#include "daemon.h"
#include "ledger.h"
#include "log.h"
#include "mf.h"
#include "mig.h"
#include "mig_park.h"
#include "netaddr.h"
#include "secret_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#define MIG_PATH_MAX 4096

struct mig_thread {
	struct migrator *m;
	unsigned int slot;  /* in the cutover board, and stats' copy slots */
	struct stats_shard *stats; /* this thread's counters */
	pthread_t tid;
};

struct migrator {
	struct mf_daemon *d;
	/* Copied from the config at start: the threads never take d->lock. */
	char ledger_path[MF_PATH_MAX];
	char state_dir[MF_PATH_MAX];
	uint16_t src_port, dst_port;
	struct mf_addr dest4, dest6;
	/* Where a copy with no observed login (resumed, pushed) reads: the
	 * first [intercept] source. */
	struct mf_addr source;
	enum imap_security src_sec, dst_sec;
	bool src_pop3;                    /* a POP3-only source (mig_pop3.c) */
	/* POP3 UIDL continuity (mig_uidl.h): the gateway serves POP3, so at
	 * CUTOVER each side's POP3 service (port "" : none) is listed and the
	 * UIDL map kept in the ledger for the POP3 front end. */
	bool uidl_map;
	char src_pop3_port[8], dst_pop3_port[8];
	enum imap_security src_pop3_sec, dst_pop3_sec;
	char ca[MF_PATH_MAX];             /* "" : the system's store */
	char src_name[MF_DOMAIN_MAX + 1]; /* "" : verify the address */
	char dst_name[MF_DOMAIN_MAX + 1];
	char master[MF_MASTER_USER_MAX + 1]; /* "" : none */
	char *master_pass;                /* mlock'ed, wiped at stop */
	size_t master_pass_len;
	enum mf_migrate_strategy strategy;
	/* after-logout: events of accounts with sessions on the source. */
	struct mig_park park;
	/* Politeness toward the sources (mig_pace.h). */
	struct mig_pace pace;
	struct mig_slots slots;
	unsigned int busy_retries, busy_wait_max_s;
	pthread_mutex_t pause_lock;
	pthread_cond_t wake;  /* with pause_lock: a cancel ends a back-off wait */
	unsigned int timeout_ms, cutover_wait_ms;
	struct migrate_backoff backoff; /* FAILED copies again after (0: never) */
	unsigned int settle_ms;       /* after CUTOVER, with a shared ledger */
	atomic_bool cancel;           /* shutting down: copies stop at a checkpoint */
	unsigned int n, started;
	struct mig_thread t[];
};

/* <state_dir>/<account>.state with every byte but [a-z0-9@+_-] and a
 * non-leading '.' written %XX: an account name must not walk out of the
 * directory, nor two names share a file. */
static int state_path(const struct migrator *m, const char *account, char *out, size_t len)
{
	size_t o = (size_t)snprintf(out, len, "%s/", m->state_dir);

	for (size_t i = 0; account[i] != '\0'; i++) {
		unsigned char c = (unsigned char)account[i];
		bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '@' ||
			    c == '+' || c == '_' || c == '-' || (c == '.' && i > 0);

		if (o + 4 >= len)
			return MF_ERROR;
		o += (size_t)snprintf(out + o, len - o, keep ? "%c" : "%%%02X", c);
	}
	if (o + sizeof(".state") > len)
		return MF_ERROR;
	memcpy(out + o, ".state", sizeof(".state"));
	return MF_OK;
}

static int set_state(struct ledger *l, const char *name, enum account_state st,
		     const char *reason)
{
	char err[256];

	if (ledger_account_set_state(l, name, st, reason, (int64_t)time(NULL), NULL, err,
				     sizeof(err)) != MF_OK) {
		mf_log_warn("migrate user=%s state=%s not recorded: %s", name,
			    account_state_name(st), err);
		return MF_ERROR;
	}
	mf_log_info("migrate user=%s state=%s reason=\"%s\"", name, account_state_name(st),
		    reason);
	return MF_OK;
}

static const char *strategy_name(enum mf_migrate_strategy s)
{
	return s == MF_STRATEGY_IMMEDIATE ? "immediate" :
	       s == MF_STRATEGY_AFTER_LOGOUT ? "after-logout" : "live";
}

/* true when this gateway now holds the account's copy job (claimed in
 * the ledger, one gateway at a time: copy_lease.h) and it is COPYING.
 * *failures_r: the failures in a row before this attempt (account.h),
 * read just before the claim: the wait a FAILED account must have served
 * grows with them (a failure another gateway records in between costs at
 * most one doubling). */
static bool claim(struct mig_thread *t, struct ledger *l, const struct login_event *e,
		  const char *path, unsigned int *failures_r)
{
	struct migrator *m = t->m;
	enum account_state st = AS_UNSEEN;
	char client[MF_ADDRSTRLEN], reason[LEDGER_REASON_MAX];

	struct account a;
	char err[256];

	*failures_r = 0;
	if (ledger_account_get(l, e->account, &a, err, sizeof(err)) == MF_OK &&
	    a.state == AS_FAILED)
		*failures_r = migrate_failures(a.reason);
	if (e->client.ss_family == AF_UNSPEC && e->released) {
		snprintf(reason, sizeof(reason), "bulk copy (strategy %s) pushed by the admin "
			 "as master user %.100s", strategy_name(m->strategy), m->master);
	} else if (e->client.ss_family == AF_UNSPEC) {
		snprintf(reason, sizeof(reason), "bulk copy (strategy %s) resumed without a "
			 "login as master user %.100s", strategy_name(m->strategy), m->master);
	} else {
		mf_sockaddr_format((const struct sockaddr *)&e->client, client, sizeof(client));
		snprintf(reason, sizeof(reason), "bulk copy (strategy %s) after a login from %s",
			 strategy_name(m->strategy), client);
	}
	return copy_lease_claim(m->d->lease, l, t->slot, e->account, path,
				migrate_retry_delay(&m->backoff, *failures_r ? *failures_r : 1),
				reason, &st) == MF_OK;
}

/* The run's row in the ledger's copy history (accounts show); a ledger
 * error costs the history line, never the copy. */
static int64_t run_begin(struct ledger *l, const char *name)
{
	int64_t id = 0;
	char err[256];

	if (ledger_copy_run_begin(l, name, (int64_t)time(NULL), &id, err, sizeof(err)) != MF_OK)
		mf_log_warn("migrate user=%s: copy run not recorded: %s", name, err);
	return id;
}

static void run_end(struct ledger *l, const char *name, int64_t id, enum copy_result r,
		    uint64_t messages, uint64_t bytes, const char *error)
{
	char err[256];

	if (id != 0 && ledger_copy_run_end(l, id, (int64_t)time(NULL), r, messages, bytes, error,
					   err, sizeof(err)) != MF_OK)
		mf_log_warn("migrate user=%s: end of copy run not recorded: %s", name, err);
}

static enum imap_security security(enum mf_backend_tls t)
{
	return t == MF_BACKEND_TLS_STARTTLS ? IMAP_SEC_STARTTLS :
	       t == MF_BACKEND_TLS_IMPLICIT ? IMAP_SEC_TLS : IMAP_SEC_PLAIN;
}

static const char *sec_name(enum imap_security s)
{
	return s == IMAP_SEC_STARTTLS ? "starttls" : s == IMAP_SEC_TLS ? "implicit" : "none";
}

/* The observed login's credentials on both sides, or (none observed:
 * a copy resumed or pushed) the master user on behalf of the account. */
static int endpoints(struct migrator *m, const struct login_event *e,
		     struct mig_opts *o, char *err, size_t errlen)
{
	const struct sockaddr *src = (const struct sockaddr *)&e->source;
	const struct mf_addr *dst = src->sa_family == AF_INET ? &m->dest4 : &m->dest6;

	if (dst->family == 0)
		return mf_err(err, errlen, "no [intercept] destination for the source's family");
	o->src.url.sec = m->src_sec;
	o->src.url.pop3 = m->src_pop3;
	o->dst.url.sec = m->dst_sec;
	mf_sockaddr_format_ip(src, o->src.url.host, sizeof(o->src.url.host));
	mf_addr_format(dst, o->dst.url.host, sizeof(o->dst.url.host));
	snprintf(o->src.url.port, sizeof(o->src.url.port), "%u", m->src_port);
	snprintf(o->dst.url.port, sizeof(o->dst.url.port), "%u", m->dst_port);
	o->src.tls_name = m->src_name[0] != '\0' ? m->src_name : NULL;
	o->dst.tls_name = m->dst_name[0] != '\0' ? m->dst_name : NULL;
	o->ca_file = m->ca[0] != '\0' ? m->ca : NULL;
	o->src.user = o->dst.user = e->login;
	/* One state file per account, whichever login form reached it (a
	 * user's "bob", the master's "bob" for "bob@dom"). */
	o->pair_account = e->account;
	if (e->pass_len > 0) {
		o->src.pass = o->dst.pass = e->pass;
		o->src.pass_len = o->dst.pass_len = e->pass_len;
	} else if (m->master_pass != NULL) {
		o->src.master = o->dst.master = m->master;
		o->src.pass = o->dst.pass = m->master_pass;
		o->src.pass_len = o->dst.pass_len = m->master_pass_len;
	} else {
		return mf_err(err, errlen, "no password observed and no [migrate] master_user");
	}
	o->timeout_ms = (int)m->timeout_ms;
	o->verify_sample_pct = m->d->cfg.migrate_verify_sample;
	o->max_inflight_bytes = m->d->cfg.migrate_max_inflight_bytes;
	o->batch_max = m->d->cfg.migrate_batch;
	o->pace = &m->pace;
	o->uidl_src.pop3 = o->uidl_dst.pop3 = true;
	snprintf(o->uidl_src.host, sizeof(o->uidl_src.host), "%s", o->src.url.host);
	snprintf(o->uidl_dst.host, sizeof(o->uidl_dst.host), "%s", o->dst.url.host);
	snprintf(o->uidl_src.port, sizeof(o->uidl_src.port), "%s", m->src_pop3_port);
	snprintf(o->uidl_dst.port, sizeof(o->uidl_dst.port), "%s", m->dst_pop3_port);
	o->uidl_src.sec = m->src_pop3_sec;
	o->uidl_dst.sec = m->dst_pop3_sec;
	return MF_OK;
}

/* Where a side's POP3 service is, for the UIDL map: where the gateway's
 * POP3 front end sends clients (the original port, on either server),
 * with the TLS the copy uses toward that side: implicit TLS on the first
 * POP3S port, else the first POP3 port (STLS when the copy uses
 * STARTTLS), else whichever the gateway serves. */
static void pop3_service(const struct mf_config *cfg, enum imap_security sec, char *port,
			 size_t len, enum imap_security *sec_r)
{
	bool tls = sec == IMAP_SEC_TLS;

	port[0] = '\0';
	*sec_r = sec;
	if (cfg->n_pop3s_ports > 0 && (tls || cfg->n_pop3_ports == 0)) {
		snprintf(port, len, "%u", cfg->pop3s_ports[0]);
		*sec_r = IMAP_SEC_TLS;
	} else if (cfg->n_pop3_ports > 0) {
		snprintf(port, len, "%u", cfg->pop3_ports[0]);
		*sec_r = tls ? IMAP_SEC_STARTTLS : sec;
	}
}

struct uidl_store {
	struct ledger *l;
	const char *account;
};

/* mig_opts.uidl_store: the map goes to the ledger, where the POP3 front
 * end reads it once the account is MIGRATED. */
static int uidl_store(void *arg, const struct uidl_pair *v, size_t n, const char *note,
		      char *err, size_t errlen)
{
	const struct uidl_store *u = arg;

	if (ledger_uidl_map_put(u->l, u->account, v, n, err, errlen) != MF_OK)
		return MF_ERROR;
	if (note[0] != '\0')
		mf_log_info("migrate user=%s uidl_map=%zu note=\"%s\"", u->account, n, note);
	else
		mf_log_info("migrate user=%s uidl_map=%zu", u->account, n);
	return MF_OK;
}

/* Sleeps ms unless the migrator stops first: false then. */
static bool pause_ms(struct migrator *m, unsigned int ms)
{
	struct timespec until;
	bool go;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&m->pause_lock);
	while (!atomic_load(&m->cancel) &&
	       pthread_cond_timedwait(&m->wake, &m->pause_lock, &until) != ETIMEDOUT)
		;
	go = !atomic_load(&m->cancel);
	pthread_mutex_unlock(&m->pause_lock);
	return go;
}

/* mig_run() within the politeness limits: at most source_connections
 * copies read one source at once, and a copy the source shed (BYE,
 * [LIMIT], [UNAVAILABLE], [INUSE], a dropped connection) is resumed from
 * its checkpoints after 1, 2, 4... s (at most busy_wait_max), up to
 * busy_retries times: the source's load decides the pace, not ours. */
static int run_polite(struct migrator *m, const char *name, const struct mig_opts *o,
		      struct mig_report *rep, char *err, size_t errlen)
{
	unsigned int wait_ms = 1000, tries = 0;
	int rc;

	for (;;) {
		if (!mig_slots_acquire(&m->slots, o->src.url.host))
			return mf_err(err, errlen, "stopping");
		rc = mig_run(o, rep, err, errlen);
		mig_slots_release(&m->slots, o->src.url.host);
		if (rc == MF_OK || !rep->source_busy || tries >= m->busy_retries)
			return rc;
		tries++;
		mf_log_warn("migrate user=%s source busy (%s): backing off %u ms, try %u of %u",
			    name, err, wait_ms, tries, m->busy_retries);
		if (!pause_ms(m, wait_ms))
			return MF_ERROR;
		wait_ms = wait_ms * 2 > m->busy_wait_max_s * 1000 ? m->busy_wait_max_s * 1000
								   : wait_ms * 2;
	}
}

/* Closes the account's source sessions in every io_uring worker. */
static void cutover_kick(struct mig_thread *t, const char *name)
{
	struct mf_daemon *d = t->m->d;
	unsigned int gen = cutover_begin(&d->cutover, t->slot, name);

	daemon_wake_workers(d);
	if (!cutover_wait(&d->cutover, gen, t->m->cutover_wait_ms))
		mf_log_warn("migrate user=%s: not every worker closed its sessions within %u ms",
			    name, t->m->cutover_wait_ms);
}

static void on_progress(void *arg, const struct mig_progress *p)
{
	struct mig_thread *t = arg;

	stats_copy_progress(&t->m->d->stats, t->slot, t->stats, p->messages, p->bytes,
			    p->planned, p->folder_index, p->folder_count);
}

/* One copy pass (run_polite: retried while the source sheds it), its
 * progress and totals counted (stats.h). */
static int run_counted(struct mig_thread *t, const char *name, const char *phase,
		       const struct mig_opts *o, struct mig_report *rep, char *err, size_t errlen)
{
	int rc;

	stats_copy_phase(&t->m->d->stats, t->slot, phase);
	memset(rep, 0, sizeof(*rep));
	rc = run_polite(t->m, name, o, rep, err, errlen);
	stats_copy_run_end(&t->m->d->stats, t->slot, t->stats, rep->copied, rep->bytes);
	return rc;
}

static uint64_t clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* The account's copy lock: an flock on "<state file>.lock", held while a
 * copy runs. It tells a daemon starting beside a running one (a restart
 * hand-over) which COPYING accounts are a live predecessor's and which a
 * crash left behind; the kernel lets go of it when a process dies. -1
 * when another process holds it (errno EWOULDBLOCK) or on error. */
static int copy_lock(const char *state_path)
{
	char path[MIG_PATH_MAX + 8];
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s.lock", state_path) >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* A state change of the copy this thread holds: only while it holds it. */
static int job_state(struct mig_thread *t, struct ledger *l, const char *name,
		     enum account_state st, const char *reason, bool release)
{
	return copy_lease_set_state(t->m->d->lease, l, t->slot, name, st, reason, release);
}

/* Several gateways: the others hear of CUTOVER by NOTIFY and close their
 * own source sessions; give them that long before the delta reads. */
static void cutover_settle(struct migrator *m)
{
	struct timespec ts = { m->settle_ms / 1000, (long)(m->settle_ms % 1000) * 1000000L };

	if (m->settle_ms > 0)
		nanosleep(&ts, NULL);
}

static void migrate_account(struct mig_thread *t, struct ledger *l, const struct login_event *e)
{
	struct migrator *m = t->m;
	struct mig_opts o = { 0 };
	struct mig_report rep = { 0 };
	char path[MIG_PATH_MAX], err[512], reason[LEDGER_REASON_MAX];
	const char *phase = "bulk copy";
	uint64_t t0 = clock_us(), t_cut = 0, messages = 0, bytes = 0;
	int64_t run = 0;    /* the copy run's row; 0 until it is recorded */
	unsigned int failures = 0;
	int lock = -1, rc;

	bool cut = false;
	struct uidl_store us = { .l = l, .account = e->account };

	if (state_path(m, e->account, path, sizeof(path)) != MF_OK) {
		mf_log_warn("migrate user=%s: no copy: state file name too long", e->account);
		return;
	}
	if (!claim(t, l, e, path, &failures))
		return;
	stats_copy_begin(&m->d->stats, t->slot, t->stats, e->account, (int64_t)time(NULL));
	o.progress = on_progress;
	o.progress_arg = t;
	if (endpoints(m, e, &o, err, sizeof(err)) != MF_OK)
		goto failed;
	lock = copy_lock(path);
	if (lock < 0 && errno == EWOULDBLOCK) {
		/* A predecessor's copy (same gateway id) is ending right now: it
		 * sets the state, under the job it still holds with our id. */
		job_state(t, l, e->account, AS_SEEN, "another mailferryd holds the copy lock",
			  false);
		copy_lease_drop(m->d->lease, t->slot);
		stats_copy_end(&m->d->stats, t->slot, t->stats, STATS_C_INTERRUPTED,
			       clock_us() - t0);
		return;
	}
	if (lock < 0) {
		mf_err(err, sizeof(err), "copy lock: %s", strerror(errno));
		goto failed;
	}
	run = run_begin(l, e->account);
	o.state_path = path;
	o.cancel = &m->cancel;
	/* Paused while the ledger is unreachable, stopped if the job is lost. */
	o.proceed = copy_lease_proceed;
	o.proceed_arg = copy_lease_slot(m->d->lease, t->slot);
	/* The bulk copy: the user keeps working on the source meanwhile. Its
	 * bytes are read back and hashed now, so the delta's verification
	 * (the user waiting) hashes only what the delta copies. */
	o.preverify = true;
	rc = run_counted(t, e->account, "bulk", &o, &rep, err, sizeof(err));
	o.preverify = false;
	messages += rep.copied;
	bytes += rep.bytes;
	if (rc != MF_OK)
		goto failed;
	/* The admin's pause holds the flip too: nobody is closed, refused or
	 * moved while paused (the delta grows meanwhile). A copy the admin
	 * asked for by name (migrate USER, retry) goes on regardless. */
	if (!e->released && login_queue_paused(&m->d->logins)) {
		stats_copy_phase(&m->d->stats, t->slot, "paused");
		mf_log_info("migrate user=%s: bulk copy done, cutover waits for resume", e->account);
		if (!login_queue_wait_unpaused(&m->d->logins)) {
			migrator_cancel(m); /* only a stop ends the wait */
			mf_err(err, sizeof(err), "%s", MIG_CANCELLED);
			goto failed;
		}
	}
	snprintf(reason, sizeof(reason), "bulk copy done (%llu messages, %llu read back and "
		 "verified): closing sessions, delta", (unsigned long long)rep.copied,
		 (unsigned long long)rep.preverified);
	if (job_state(t, l, e->account, AS_CUTOVER, reason, false) != MF_OK) {
		mf_err(err, sizeof(err), "ledger refused CUTOVER");
		goto failed;
	}
	cut = true;
	t_cut = clock_us();
	/* New logins are refused from here (the ledger says CUTOVER); the
	 * sessions already on the source go now, so nothing changes there
	 * after the delta. */
	cutover_kick(t, e->account);
	cutover_settle(m);
	phase = "delta";
	o.verify = true;
	o.verify_skip_verified = true;
	/* What the user deleted on a POP3 source since the bulk copy goes
	 * from the destination too; and POP3 clients keep their UIDLs. */
	o.sync_deletes = true;
	if (m->uidl_map) {
		o.uidl_store = uidl_store;
		o.uidl_store_arg = &us;
	}
	rc = run_counted(t, e->account, "delta", &o, &rep, err, sizeof(err));
	messages += rep.copied;
	bytes += rep.bytes;
	if (rc != MF_OK)
		goto failed;
	t_cut = clock_us() - t_cut;
	snprintf(reason, sizeof(reason),
		 "copied and verified (%llu messages in the delta, %llu expunged as on the "
		 "source, %llu verified, %llu by SHA-256); refused for %.3f s at the cutover",
		 (unsigned long long)rep.copied, (unsigned long long)rep.expunged,
		 (unsigned long long)rep.verified, (unsigned long long)rep.verified_hashed,
		 (double)t_cut / 1e6);
	/* The lock goes first: until the state changes, nobody claims the
	 * account, so no one ever finds it locked after our last word. */
	close(lock);
	job_state(t, l, e->account, AS_MIGRATED, reason, true);
	cutover_end(&m->d->cutover, t->slot);
	run_end(l, e->account, run, COPY_MIGRATED, messages, bytes, NULL);
	stats_cutover_done(t->stats, t_cut);
	stats_copy_end(&m->d->stats, t->slot, t->stats, STATS_C_MIGRATED, clock_us() - t0);
	return;
failed:
	if (cut)
		cutover_end(&m->d->cutover, t->slot);
	if (lock >= 0)
		close(lock);
	/* A message the destination would not take is named, never skipped:
	 * the copy stopped at it (mig.h). */
	if (rep.refused_known)
		mf_log_warn("migrate user=%s refused folder=\"%s\" uid=%u size=%llu code=%s",
			    e->account, rep.refused_folder, rep.refused_uid,
			    (unsigned long long)rep.refused_size,
			    rep.refused_code[0] != '\0' ? rep.refused_code : "-");
	if (!copy_lease_held(m->d->lease, t->slot)) {
		/* Lost to another gateway, or stopping while the ledger is away:
		 * the account is not ours to change. */
		mf_log_warn("migrate user=%s: %s stopped (%s); the copy job is no longer held",
			    e->account, phase, err);
		copy_lease_drop(m->d->lease, t->slot);
		run_end(l, e->account, run, COPY_INTERRUPTED, messages, bytes, err);
		stats_copy_end(&m->d->stats, t->slot, t->stats, STATS_C_INTERRUPTED,
			       clock_us() - t0);
	} else if (atomic_load(&m->cancel) && strcmp(err, MIG_CANCELLED) == 0) {
		/* Not a failure: the checkpoints hold everything copied. */
		snprintf(reason, sizeof(reason), "%s interrupted by a shutdown: resumes at the "
			 "next login", phase);
		job_state(t, l, e->account, AS_SEEN, reason, true);
		run_end(l, e->account, run, COPY_INTERRUPTED, messages, bytes, reason);
		stats_copy_end(&m->d->stats, t->slot, t->stats, STATS_C_INTERRUPTED,
			       clock_us() - t0);
	} else {
		char why[LEDGER_REASON_MAX];

		/* The attempt and the wait before the next one are in the
		 * reason, where the next claim (and the front ends) read them. */
		failures++;
		snprintf(why, sizeof(why), "%s: %.200s", phase, err);
		migrate_failed_reason(reason, sizeof(reason), why, failures,
				      migrate_retry_delay(&m->backoff, failures));
		job_state(t, l, e->account, AS_FAILED, reason, true);
		run_end(l, e->account, run, COPY_FAILED, messages, bytes, reason);
		stats_copy_end(&m->d->stats, t->slot, t->stats, STATS_C_FAILED, clock_us() - t0);
	}
}

static bool logged_out(void *arg, const char *account)
{
	struct migrator *m = arg;

	return acct_sessions_count(&m->d->acct_sessions, account) == 0;
}

/* The next account to copy. after-logout: an event whose account still
 * has sessions relayed to the source is parked, and parked ones are
 * looked at again every 250 ms and whenever an event was parked: the
 * copy of an account starts once its last session has ended. A stop is
 * seen within 250 ms. */
static int next_event(struct migrator *m, struct login_event *e)
{
	if (m->strategy != MF_STRATEGY_AFTER_LOGOUT)
		return login_queue_pop(&m->d->logins, e);
	for (;;) {
		int rc = login_queue_pop_timed(&m->d->logins, e, 250);

		if (rc == MF_ERROR)
			return MF_ERROR;
		if (rc == MF_OK) {
			char name[ACCOUNT_NAME_MAX + 1];
			unsigned int n = acct_sessions_count(&m->d->acct_sessions, e->account);

			if (n == 0)
				return MF_OK;
			snprintf(name, sizeof(name), "%s", e->account);
			if (mig_park_put(&m->park, e) == MF_OK)
				mf_log_info("migrate user=%s after-logout: waits for its %u session%s "
					    "to end", name, n, n == 1 ? "" : "s");
			else
				mf_log_warn("migrate user=%s after-logout: no room to wait (%u "
					    "waiting): waits for its next login", name,
					    mig_park_len(&m->park));
		}
		if (mig_park_take(&m->park, logged_out, m, e)) {
			mf_log_info("migrate user=%s after-logout: last session ended, copying",
				    e->account);
			return MF_OK;
		}
	}
}

static void *mig_main(void *arg)
{
	struct mig_thread *t = arg;
	struct migrator *m = t->m;
	struct login_event *e = login_event_alloc();
	struct ledger *l = NULL;
	char err[256];

	if (e == NULL) {
		mf_log_err("migrate worker=%u: out of memory", t->slot);
		return NULL;
	}
	while (next_event(m, e) == MF_OK) {
		if (l == NULL && ledger_open(m->ledger_path, &l, err, sizeof(err)) != MF_OK) {
			mf_log_warn("migrate user=%s: no copy, ledger: %s", e->account, err);
			l = NULL;
		} else {
			migrate_account(t, l, e);
		}
		/* The copy is over, whatever its outcome: the password goes. */
		login_event_wipe(e);
	}
	login_event_free(e);
	if (l != NULL)
		ledger_close(l);
	return NULL;
}

struct stale {
	char (*names)[ACCOUNT_NAME_MAX + 1];
	size_t n, cap;
};

static int collect(const struct account *a, void *data)
{
	struct stale *s = data;

	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		void *p = realloc(s->names, cap * sizeof(*s->names));

		if (p == NULL)
			return MF_ERROR;
		s->names = p;
		s->cap = cap;
	}
	snprintf(s->names[s->n++], sizeof(s->names[0]), "%s", a->name);
	return MF_OK;
}

/* The login the master user acts for: the account name, less
 * "@[ledger] default_domain" when it ends so (that domain is added to
 * logins made without one, so the servers know the bare name). */
static size_t master_login_len(const struct migrator *m, const char *name)
{
	const char *dom = m->d->cfg.ledger_default_domain;
	size_t n = strlen(name), d = strlen(dom);

	if (d > 0 && n > d + 1 && name[n - d - 1] == '@' && strcasecmp(name + n - d, dom) == 0)
		return n - d - 1;
	return n;
}

/* Queues a copy of name as the master user (no password: endpoints()
 * then logs in as the master), from the first [intercept] source.
 * released: the admin asked for it (migrate USER --master). MF_OK,
 * MF_AGAIN when the queue is full or stopped, MF_ERROR when there is no
 * master user or no source. */
static int queue_master(struct migrator *m, const char *name, bool released)
{
	struct sockaddr_storage none = { .ss_family = AF_UNSPEC }, src = { 0 };
	socklen_t len;

	if (m->master_pass == NULL || m->source.family == 0)
		return MF_ERROR;
	if (m->source.family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&src;

		in->sin_family = AF_INET;
		in->sin_addr = m->source.u.v4;
		len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&src;

		in6->sin6_family = AF_INET6;
		in6->sin6_addr = m->source.u.v6;
		len = sizeof(*in6);
	}
	return login_queue_push(&m->d->logins, name, name, master_login_len(m, name), "", 0,
				(struct sockaddr *)&none, len, (struct sockaddr *)&src, len,
				(int64_t)time(NULL), released);
}

/* With a master user, a copy cut short need not wait for the user's next
 * login: it is queued now. */
static void resume(struct migrator *m, const char *name)
{
	int rc = queue_master(m, name, false);

	if (rc == MF_OK)
		mf_log_info("migrate user=%s copy resumed with master user %s: copy queued", name,
			    m->master);
	else if (rc == MF_AGAIN)
		mf_log_warn("migrate user=%s not resumed (queue full): waits for a login", name);
}

/* copy_lease_on_reaped: a dead gateway's copy job given back. */
static void resume_reaped(void *arg, const char *name)
{
	resume(arg, name);
}

int migrator_push(struct migrator *m, const char *name, char *err, size_t errlen)
{
	int rc;

	if (m->master_pass == NULL)
		return mf_err(err, errlen, "no master user is configured ([migrate] master_user "
			      "and master_password_file)");
	if (m->source.family == 0)
		return mf_err(err, errlen, "no [intercept] source to copy from");
	rc = queue_master(m, name, true);
	if (rc == MF_AGAIN)
		return mf_err(err, errlen, "the copy queue is full (%u waiting): try again later",
			      login_queue_len(&m->d->logins));
	if (rc != MF_OK)
		return mf_err(err, errlen, "account name too long");
	mf_log_info("migrate user=%s pushed by the admin: copy queued as master user %s", name,
		    m->master);
	return MF_OK;
}

/* A copy cut short by a crash: back to SEEN (served by the source; the
 * next login, or at once the master user, resumes from the checkpoints).
 * A CUTOVER left behind would refuse the user's logins forever. A copy
 * whose lock another process holds is a predecessor's that still runs
 * (restart hand-over): left to it; it ends in MIGRATED, FAILED or
 * (stopped) SEEN by itself. */
static int reset_stale(struct migrator *m, char *err, size_t errlen)
{
	static const enum account_state stuck[] = { AS_COPYING, AS_CUTOVER };
	struct stale s = { 0 };
	struct ledger *l;
	int rc = MF_OK;

	if (ledger_open(m->ledger_path, &l, err, errlen) != MF_OK)
		return MF_ERROR;
	for (size_t i = 0; i < sizeof(stuck) / sizeof(stuck[0]) && rc == MF_OK; i++) {
		s.n = 0;
		rc = ledger_account_list(l, (int)stuck[i], collect, &s, err, errlen);
		for (size_t j = 0; j < s.n && rc == MF_OK; j++) {
			char path[MIG_PATH_MAX];
			int lock = -1;

			if (state_path(m, s.names[j], path, sizeof(path)) == MF_OK) {
				lock = copy_lock(path);
				if (lock < 0 && errno == EWOULDBLOCK) {
					mf_log_info("migrate user=%s: copy still running in "
						    "another mailferryd", s.names[j]);
					continue;
				}
			}
			rc = set_state(l, s.names[j], AS_SEEN, m->master_pass != NULL
				       ? "copy interrupted by a restart: resumes now (master user)"
				       : "copy interrupted by a restart: resumes at the next login");
			if (rc == MF_OK)
				rc = ledger_copy_runs_interrupt(l, s.names[j], (int64_t)time(NULL),
								NULL, err, errlen);
			if (lock >= 0)
				close(lock);
			if (rc == MF_OK)
				resume(m, s.names[j]);
		}
	}
	free(s.names);
	ledger_close(l);
	return rc;
}

static void master_wipe(struct migrator *m)
{
	if (m->master_pass == NULL)
		return;
	explicit_bzero(m->master_pass, LOGIN_EVENT_PASS_MAX + 1);
	munlock(m->master_pass, LOGIN_EVENT_PASS_MAX + 1);
	free(m->master_pass);
	m->master_pass = NULL;
}

/* The master password, read once (the file readable by the user the daemon
 * runs as by now), held in locked memory until the stop. */
static int master_load(struct migrator *m, const char *path, char *err, size_t errlen)
{
	m->master_pass = calloc(1, LOGIN_EVENT_PASS_MAX + 1);
	if (m->master_pass == NULL)
		return mf_err(err, errlen, "out of memory");
	/* Best effort, as for the login events: RLIMIT_MEMLOCK may refuse. */
	(void)mlock(m->master_pass, LOGIN_EVENT_PASS_MAX + 1);
	if (mf_secret_file_read(path, m->master_pass, LOGIN_EVENT_PASS_MAX + 1,
				&m->master_pass_len, err, errlen) != MF_OK) {
		char why[300];

		snprintf(why, sizeof(why), "%s", err);
		master_wipe(m);
		return mf_err(err, errlen, "[migrate] master_password_file %s", why);
	}
	return MF_OK;
}

static void migrator_free(struct migrator *m)
{
	if (m->pace.slept > 0)
		mf_log_info("migrate paced: %.1f s slept for the rate limits", m->pace.slept);
	pthread_mutex_destroy(&m->pause_lock);
	pthread_cond_destroy(&m->wake);
	mig_slots_destroy(&m->slots);
	mig_pace_destroy(&m->pace);
	mig_park_destroy(&m->park);
	master_wipe(m);
	free(m);
}

int migrator_start(struct mf_daemon *d, struct migrator **m_r, char *err, size_t errlen)
{
	unsigned int n = d->cfg.migrate_workers;
	struct migrator *m;

	if (n == 0 || n > CUTOVER_SLOTS_MAX)
		return mf_err(err, errlen, "[migrate] workers must be 1..%u", CUTOVER_SLOTS_MAX);
	if (stats_shard(&d->stats, d->n_workers + n - 1) == NULL || d->stats.n_copy_slots < n)
		return mf_err(err, errlen, "no counters for %u copy threads", n);
	m = calloc(1, sizeof(*m) + n * sizeof(m->t[0]));
	if (m == NULL)
		return mf_err(err, errlen, "out of memory");
	m->d = d;
	m->n = n;
	snprintf(m->ledger_path, sizeof(m->ledger_path), "%s", d->cfg.ledger_path);
	snprintf(m->state_dir, sizeof(m->state_dir), "%s", d->cfg.migrate_state_dir);
	m->src_port = d->cfg.migrate_source_port;
	m->dst_port = d->cfg.migrate_destination_port;
	m->dest4 = d->cfg.dest4;
	m->dest6 = d->cfg.dest6;
	m->timeout_ms = d->cfg.migrate_timeout_ms;
	m->cutover_wait_ms = d->cfg.migrate_cutover_wait_ms;
	m->backoff.first_s = d->cfg.migrate_retry_after_s;
	m->backoff.max_s = d->cfg.migrate_retry_max_s;
	m->settle_ms = ledger_spec_is_shared(m->ledger_path) ? d->cfg.cutover_settle_ms : 0;
	atomic_init(&m->cancel, false);
	m->strategy = d->cfg.migrate_strategy;
	m->busy_retries = d->cfg.migrate_busy_retries;
	m->busy_wait_max_s = d->cfg.migrate_busy_wait_max_s;
	mig_pace_init(&m->pace, d->cfg.migrate_max_messages_per_s,
		      (double)d->cfg.migrate_max_bytes_per_s, NULL, NULL);
	mig_slots_init(&m->slots, d->cfg.migrate_source_connections);
	pthread_cond_init(&m->wake, NULL);
	pthread_mutex_init(&m->pause_lock, NULL);
	if (d->cfg.n_sources > 0)
		m->source = d->cfg.sources[0];
	m->src_sec = security(d->cfg.migrate_source_tls);
	m->src_pop3 = d->cfg.migrate_source_pop3;
	m->dst_sec = security(d->cfg.migrate_destination_tls);
	m->uidl_map = d->cfg.n_pop3_ports + d->cfg.n_pop3s_ports > 0;
	pop3_service(&d->cfg, m->src_sec, m->src_pop3_port, sizeof(m->src_pop3_port),
		     &m->src_pop3_sec);
	pop3_service(&d->cfg, m->dst_sec, m->dst_pop3_port, sizeof(m->dst_pop3_port),
		     &m->dst_pop3_sec);
	snprintf(m->ca, sizeof(m->ca), "%s", d->cfg.migrate_tls_ca);
	snprintf(m->src_name, sizeof(m->src_name), "%s", d->cfg.migrate_source_name);
	snprintf(m->dst_name, sizeof(m->dst_name), "%s", d->cfg.migrate_destination_name);
	snprintf(m->master, sizeof(m->master), "%s", d->cfg.migrate_master_user);
	if (m->master[0] != '\0' &&
	    master_load(m, d->cfg.migrate_master_password_file, err, errlen) != MF_OK)
		goto fail;
	if (mig_park_init(&m->park, d->cfg.migrate_queue, err, errlen) != MF_OK)
		goto fail;
	/* The state files hold folder names and UIDs: owner only. */
	if (mkdir(m->state_dir, 0700) != 0 && errno != EEXIST) {
		mf_err(err, errlen, "[migrate] state_dir %s: %s", m->state_dir, strerror(errno));
		goto fail;
	}
	/* One gateway: every copy left behind is ours (the copy locks tell a
	 * running predecessor's). Several: a COPYING account may be another
	 * gateway's live copy; ours left by a crash are given back when their
	 * lease runs out (copy_lease.h). */
	if (!ledger_spec_is_shared(m->ledger_path) && reset_stale(m, err, errlen) != MF_OK)
		goto fail;
	for (; m->started < n; m->started++) {
		m->t[m->started].m = m;
		m->t[m->started].slot = m->started;
		m->t[m->started].stats = stats_shard(&d->stats, d->n_workers + m->started);
		if (pthread_create(&m->t[m->started].tid, NULL, mig_main, &m->t[m->started]) != 0) {
			mf_err(err, errlen, "thread: %s", strerror(errno));
			migrator_stop(m);
			return MF_ERROR;
		}
	}
	/* With a master user, a copy a dead gateway left (its lease given
	 * back by our keeper) resumes here at once, not at the next login. */
	if (m->master_pass != NULL && d->lease != NULL)
		copy_lease_on_reaped(d->lease, resume_reaped, m);
	mf_log_info("migrate workers=%u strategy=%s state_dir=%s source=%s source_tls=%s "
		    "destination_tls=%s master=%s uidl_map=%s batch=%u max_inflight_bytes=%lu", n,
		    strategy_name(m->strategy), m->state_dir, m->src_pop3 ? "pop3" : "imap",
		    sec_name(m->src_sec), sec_name(m->dst_sec),
		    m->master[0] != '\0' ? m->master : "none", m->uidl_map ? "yes" : "no",
		    d->cfg.migrate_batch, d->cfg.migrate_max_inflight_bytes);
	*m_r = m;
	return MF_OK;
fail:
	migrator_free(m);
	return MF_ERROR;
}

void migrator_cancel(struct migrator *m)
{
	if (m == NULL)
		return;
	atomic_store(&m->cancel, true);
	/* Copies waiting for a source slot or backing off stop waiting. */
	mig_slots_stop(&m->slots);
	pthread_mutex_lock(&m->pause_lock);
	pthread_cond_broadcast(&m->wake);
	pthread_mutex_unlock(&m->pause_lock);
}

void migrator_stop(struct migrator *m)
{
	if (m == NULL)
		return;
	if (m->d->lease != NULL)
		copy_lease_on_reaped(m->d->lease, NULL, NULL);
	migrator_cancel(m);
	login_queue_stop(&m->d->logins);
	for (unsigned int i = 0; i < m->started; i++)
		pthread_join(m->t[i].tid, NULL);
	migrator_free(m);
}
