#include "worker.h"
#include "banner.h"
#include "daemon.h"
#include "front.h"
#include "ledger.h"
#include "listener.h"
#include "log.h"
#include "mf.h"
#include "relay.h"
#include "session.h"
#include "stats.h"
#include "tls.h"
#include "tls_pump.h"
#include "uring_op.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define RING_ENTRIES 4096
/* Small-exchange buffers per worker: 256 x 16 KiB. A burst beyond them
 * falls back to splice, so this bounds memory, not concurrency. */
#define RECV_BUFS 256
#define RECV_BUF_SIZE 16384
#define TICK_MS 500

static uint64_t clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct io_uring_sqe *worker_sqe(struct worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

	while (sqe == NULL) {
		io_uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
	}
	return sqe;
}

/* --- least-recently-active list, for the idle sweep -------------------- */

void worker_lru_remove(struct worker *w, struct session *s)
{
	if (s->lru_prev == NULL && w->lru_head != s)
		return; /* not linked */
	if (s->lru_prev)
		s->lru_prev->lru_next = s->lru_next;
	else
		w->lru_head = s->lru_next;
	if (s->lru_next)
		s->lru_next->lru_prev = s->lru_prev;
	else
		w->lru_tail = s->lru_prev;
	s->lru_prev = s->lru_next = NULL;
}

void worker_lru_touch(struct worker *w, struct session *s)
{
	s->last_ms = w->now_ms;
	if (w->lru_tail == s)
		return;
	worker_lru_remove(w, s);
	s->lru_prev = w->lru_tail;
	if (w->lru_tail)
		w->lru_tail->lru_next = s;
	else
		w->lru_head = s;
	w->lru_tail = s;
}

struct ledger *worker_ledger(struct worker *w)
{
	char err[256];

	/* The change feed cannot reach a shared ledger either: do not make
	 * this event loop wait on a connect (up to connect_timeout) per
	 * lookup; the feed says when it is back. */
	if (atomic_load(&w->d->routes.ledger_down))
		return NULL;
	if (w->ledger != NULL || w->now_ms < w->ledger_retry_ms)
		return w->ledger;
	if (ledger_open(w->t.ledger_path, &w->ledger, err, sizeof(err)) != MF_OK) {
		mf_log_err("worker=%u ledger: %s", w->id, err);
		w->ledger = NULL;
		w->ledger_retry_ms = w->now_ms + 1000;
	}
	return w->ledger;
}

/* --- pipes ---------------------------------------------------------------- */

int worker_pipe_get(struct worker *w, struct relay_dir *rd, struct mf_pipe **p_r)
{
	int rc = MF_AGAIN;

	/* Behind others already waiting: first come, first served. */
	if (w->pipe_wait_head == NULL)
		rc = pipe_pool_get(&w->pipes, p_r);
	/* Out of descriptors while other pipes are busy: one comes back
	 * soon, so wait for it rather than fail the session. */
	if (rc == MF_ERROR && (errno == EMFILE || errno == ENFILE) &&
	    w->pipes.n_total > w->pipes.n_free)
		rc = MF_AGAIN;
	if (rc != MF_AGAIN)
		return rc;
	rd->wait_next = NULL;
	rd->waiting = true;
	if (w->pipe_wait_tail)
		w->pipe_wait_tail->wait_next = rd;
	else
		w->pipe_wait_head = rd;
	w->pipe_wait_tail = rd;
	return MF_AGAIN;
}

void worker_pipe_unwait(struct worker *w, struct relay_dir *rd)
{
	struct relay_dir **pp = &w->pipe_wait_head, *prev = NULL;

	while (*pp && *pp != rd) {
		prev = *pp;
		pp = &(*pp)->wait_next;
	}
	if (*pp == NULL)
		return;
	*pp = rd->wait_next;
	if (w->pipe_wait_tail == rd)
		w->pipe_wait_tail = prev;
	rd->waiting = false;
	rd->wait_next = NULL;
}

void worker_pipe_put(struct worker *w, struct mf_pipe *p, bool empty)
{
	pipe_pool_put(&w->pipes, p, empty);
	while (w->pipe_wait_head != NULL) {
		struct relay_dir *rd = w->pipe_wait_head;
		struct mf_pipe *np;

		if (pipe_pool_get(&w->pipes, &np) != MF_OK)
			return;
		worker_pipe_unwait(w, rd);
		relay_pipe_ready(session_of_dir(rd), rd->idx, np);
	}
}

/* --- accept, tick, wake ----------------------------------------------- */

static void arm_accept(struct worker *w, struct listener_slot *l)
{
	struct io_uring_sqe *sqe;

	if (l->fd < 0 || w->draining)
		return;
	sqe = worker_sqe(w);
	io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, uop_pack(l, UOP_ACCEPT));
	l->armed = true;
}

static void arm_tick(struct worker *w)
{
	struct io_uring_sqe *sqe = worker_sqe(w);

	w->tick_ts.tv_sec = TICK_MS / 1000;
	w->tick_ts.tv_nsec = (TICK_MS % 1000) * 1000000LL;
	io_uring_prep_timeout(sqe, &w->tick_ts, 0, 0);
	io_uring_sqe_set_data64(sqe, uop_pack(w, UOP_TICK));
}

static void arm_wake(struct worker *w)
{
	struct io_uring_sqe *sqe = worker_sqe(w);

	io_uring_prep_read(sqe, w->wake_fd, &w->wake_buf, sizeof(w->wake_buf), 0);
	io_uring_sqe_set_data64(sqe, uop_pack(w, UOP_WAKE));
}

static void load_tunables(struct worker *w)
{
	struct mf_daemon *d = w->d;

	pthread_mutex_lock(&d->lock);
	w->t.connect_timeout_ms = d->cfg.connect_timeout_ms;
	w->t.idle_timeout_ms = d->cfg.idle_timeout_ms;
	w->t.drain_timeout_ms = d->cfg.drain_timeout_ms;
	w->t.max_sessions = d->cfg.max_sessions;
	w->t.upstream_source = (int)d->cfg.upstream_source;
	w->t.listen_port = d->cfg.listen_port;
	w->t.n_moved = 0;
	for (unsigned int i = 0; i < d->cfg.n_sources; i++)
		if (d->cfg.intercept == MF_INTERCEPT_LISTEN && d->cfg.moved[i].family != 0) {
			w->t.moved_from[w->t.n_moved] = d->cfg.sources[i];
			w->t.moved_to[w->t.n_moved++] = d->cfg.moved[i];
		}
	memcpy(w->t.imap_ports, d->cfg.imap_ports, sizeof(w->t.imap_ports));
	w->t.n_imap_ports = d->cfg.n_imap_ports;
	memcpy(w->t.pop3_ports, d->cfg.pop3_ports, sizeof(w->t.pop3_ports));
	w->t.n_pop3_ports = d->cfg.n_pop3_ports;
	memcpy(w->t.smtp_ports, d->cfg.smtp_ports, sizeof(w->t.smtp_ports));
	w->t.n_smtp_ports = d->cfg.n_smtp_ports;
	memcpy(w->t.submission_ports, d->cfg.submission_ports, sizeof(w->t.submission_ports));
	w->t.n_submission_ports = d->cfg.n_submission_ports;
	w->t.smtp_xclient = d->cfg.smtp_xclient;
	w->t.preauth_timeout_ms = d->cfg.preauth_timeout_ms;
	w->t.preauth_max_errors = d->cfg.preauth_max_errors;
	w->t.preauth_per_client = d->cfg.preauth_per_client;
	w->t.forward_client_address = d->cfg.forward_client_address;
	w->t.max_sessions_per_client = d->cfg.max_sessions_per_client;
	w->t.dest4 = d->cfg.dest4;
	w->t.dest6 = d->cfg.dest6;
	memcpy(w->t.default_domain, d->cfg.ledger_default_domain, sizeof(w->t.default_domain));
	w->t.domain_equivalence = d->cfg.ledger_domain_equivalence;
	memcpy(w->t.imaps_ports, d->cfg.imaps_ports, sizeof(w->t.imaps_ports));
	w->t.n_imaps_ports = d->cfg.n_imaps_ports;
	memcpy(w->t.pop3s_ports, d->cfg.pop3s_ports, sizeof(w->t.pop3s_ports));
	w->t.n_pop3s_ports = d->cfg.n_pop3s_ports;
	memcpy(w->t.smtps_ports, d->cfg.smtps_ports, sizeof(w->t.smtps_ports));
	w->t.n_smtps_ports = d->cfg.n_smtps_ports;
	w->t.backend_tls = (int)d->cfg.backend_tls;
	if (w->tls != d->tls) {
		/* Sessions hold their own references to the old contexts. */
		tls_ctxs_unref(w->tls);
		w->tls = d->tls;
		tls_ctxs_ref(w->tls);
	}
	if (w->banners != d->banners) {
		banner_set_unref(w->banners);
		w->banners = d->banners;
		banner_set_ref(w->banners);
	}
	memcpy(w->t.ledger_path, d->cfg.ledger_path, sizeof(w->t.ledger_path));
	snprintf(w->t.gateway_id, sizeof(w->t.gateway_id), "%s", d->cfg.gateway_id);
	w->pipes.max_total = d->cfg.max_pipes;
	w->pipes.pipe_size = d->cfg.pipe_size;
	w->cfg_gen = d->cfg_gen;
	pthread_mutex_unlock(&d->lock);
}

static void close_listeners(struct worker *w)
{
	for (unsigned int i = 0; i < w->n_listeners; i++) {
		struct listener_slot *l = &w->listeners[i];
		struct io_uring_sqe *sqe;

		if (l->fd < 0)
			continue;
		/* shutdown() takes the socket out of LISTEN at once, so the
		 * kernel stops handing it new flows (they then go straight to
		 * the source, fail-open); the ring's multishot accept holds its
		 * own reference to the file, so closing our fd alone would
		 * leave the listener alive until the accept is cancelled. */
		(void)shutdown(l->fd, SHUT_RDWR);
		if (l->armed) {
			sqe = worker_sqe(w);
			io_uring_prep_cancel64(sqe, uop_pack(l, UOP_ACCEPT), 0);
			io_uring_sqe_set_data64(sqe, uop_pack(w, UOP_WORKER_AUX));
		}
		close(l->fd);
		l->fd = -1;
	}
}

static void start_drain(struct worker *w)
{
	if (w->draining)
		return;
	w->draining = true;
	w->drain_deadline_ms = w->now_ms + w->t.drain_timeout_ms;
	close_listeners(w);
	mf_log_info("worker=%u draining sessions=%u", w->id, w->n_sessions);
	if (w->n_sessions == 0)
		w->exit_loop = true;
}

/* Closes this worker's sessions of the accounts in cutover that are
 * still relayed to the source: their mailbox is about to be flipped, and
 * a client left on the source would read and write where nobody looks. */
static void cutover_sessions(struct worker *w)
{
	char names[CUTOVER_SLOTS_MAX][ACCOUNT_NAME_MAX + 1];
	unsigned int n, gen;
	struct session *s, *next;

	gen = cutover_poll(&w->d->cutover, w->id, names, &n);
	if (gen == 0)
		return;
	for (s = w->lru_head; s != NULL && n > 0; s = next) {
		next = s->lru_next;
		if (s->user == NULL || s->route != AR_SOURCE || s->phase == SP_CLOSING)
			continue;
		for (unsigned int i = 0; i < n; i++)
			if (strcmp(s->user, names[i]) == 0) {
				session_cutover(s);
				break;
			}
	}
	cutover_ack(&w->d->cutover, w->id, gen);
}

static void on_wake(struct worker *w, int res)
{
	if (res < 0 && res != -EINTR && res != -EAGAIN) {
		w->fatal_errno = -res;
		w->exit_loop = true;
		return;
	}
	if (w->cfg_gen != w->d->cfg_gen)
		load_tunables(w);
	if (atomic_load(&w->d->stopping))
		start_drain(w);
	cutover_sessions(w);
	arm_wake(w);
}

static void on_tick(struct worker *w)
{
	struct session *s = w->lru_head;

	for (struct session *f = w->lru_head; f != NULL; f = f->lru_next)
		session_stats_flush(f);
	/* Idle sweep: the list is oldest first; stop at the first fresh one. */
	while (s != NULL && w->now_ms - s->last_ms >= w->t.idle_timeout_ms) {
		struct session *next = s->lru_next;

		session_abort(s, SE_IDLE_TIMEOUT, 0, false);
		s = next;
	}
	pipe_pool_trim(&w->pipes);
	if (w->accept_paused) {
		w->accept_paused = false;
		for (unsigned int i = 0; i < w->n_listeners; i++)
			if (!w->listeners[i].armed)
				arm_accept(w, &w->listeners[i]);
	}
	if (w->draining && w->now_ms >= w->drain_deadline_ms) {
		while (w->lru_head != NULL)
			session_abort(w->lru_head, SE_SHUTDOWN, 0, true);
	}
	arm_tick(w);
}

static void on_accept(struct worker *w, struct listener_slot *l, struct io_uring_cqe *cqe)
{
	if (!(cqe->flags & IORING_CQE_F_MORE))
		l->armed = false;
	if (cqe->res >= 0) {
		session_start(w, cqe->res);
	} else if (cqe->res == -EMFILE || cqe->res == -ENFILE) {
		/* Out of descriptors: leave the backlog queued and try again
		 * at the next tick, when sessions may have ended, instead of
		 * spinning on the same error. */
		if (!w->accept_paused)
			mf_log_warn("worker=%u accept paused: %s", w->id, strerror(-cqe->res));
		w->accept_paused = true;
		return;
	} else if (cqe->res != -ECANCELED && l->fd >= 0) {
		mf_log_warn("worker=%u accept: %s", w->id, strerror(-cqe->res));
	}
	if (!l->armed && l->fd >= 0)
		arm_accept(w, l);
}

static void dispatch(struct worker *w, struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	unsigned int op = uop_op(ud);
	void *ptr = uop_ptr(ud);

	if (op <= UOP_RELAY_LAST) {
		struct relay_dir *rd = ptr;
		struct session *s = session_of_dir(rd);

		relay_on_cqe(s, rd->idx, op, cqe->res, cqe->flags);
		session_put(s);
		return;
	}
	switch (op) {
	case UOP_ACCEPT:
		on_accept(w, ptr, cqe);
		break;
	case UOP_FRONT: {
		struct front_op *fo = ptr;
		struct session *s = fo->s;

		s->fops->on_cqe(fo, cqe->res);
		session_put(s);
		break;
	}
	case UOP_TLS: {
		struct tls_pump_op *po = ptr;
		struct session *s = po->s;

		tls_pump_on_cqe(po, cqe->res);
		session_put(s);
		break;
	}
	case UOP_CONNECT:
		session_on_connect(ptr, cqe->res);
		session_put(ptr);
		break;
	case UOP_SESSION_AUX:
		session_put(ptr);
		break;
	case UOP_TICK:
		on_tick(w);
		break;
	case UOP_WAKE:
		on_wake(w, cqe->res);
		break;
	case UOP_WORKER_AUX:
		break;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	/* A single-issuer ring belongs to the task that enables it. */
	if (w->ring_disabled) {
		/* liburing 2.3 has no io_uring_enable_rings() wrapper. */
		long rc = syscall(__NR_io_uring_register, w->ring.ring_fd,
				  IORING_REGISTER_ENABLE_RINGS, NULL, 0);

		if (rc < 0) {
			w->fatal_errno = errno;
			w->exit_loop = true;
		}
	}
	if (!w->exit_loop) {
		int e = 0;

		if (buf_ring_setup(&w->bufs, &w->ring, RECV_BUFS, RECV_BUF_SIZE, &e) != MF_OK)
			mf_log_warn("worker=%u no provided buffers (%s): splice only",
				    w->id, strerror(-e));
	}
	w->now_ms = clock_ms();
	for (unsigned int i = 0; i < w->n_listeners; i++)
		arm_accept(w, &w->listeners[i]);
	arm_tick(w);
	arm_wake(w);
	if (atomic_load(&w->d->stopping))
		start_drain(w);
	while (!w->exit_loop) {
		struct io_uring_cqe *cqe;
		unsigned int head, n = 0;
		int rc = io_uring_submit_and_wait(&w->ring, 1);

		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
			w->fatal_errno = -rc;
			break;
		}
		w->now_ms = clock_ms();
		io_uring_for_each_cqe(&w->ring, head, cqe) {
			dispatch(w, cqe);
			n++;
		}
		io_uring_cq_advance(&w->ring, n);
		/* Before the next submit: the logins' replies go out after the
		 * ledger has them, as with one write per login. */
		worker_flush_logins(w);
	}
	worker_flush_logins(w);
	ledger_close(w->ledger);
	w->ledger = NULL;
	if (w->fatal_errno != 0) {
		mf_log_err("worker=%u stopped: %s", w->id, strerror(w->fatal_errno));
		/* A worker cannot carry on alone: have the main thread stop all. */
		kill(getpid(), SIGTERM);
	}
	return NULL;
}

/* A hash seed the clients cannot guess. */
static uint64_t preauth_seed(const struct worker *w)
{
	uint64_t seed;
	struct timespec ts;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
		return seed;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)w;
}

void worker_real_source(const struct worker *w, union mf_sockaddr *sa)
{
	for (unsigned int i = 0; i < w->t.n_moved; i++) {
		const struct mf_addr *from = &w->t.moved_from[i], *to = &w->t.moved_to[i];

		if (sa->sa.sa_family == AF_INET && from->family == AF_INET &&
		    sa->in.sin_addr.s_addr == from->u.v4.s_addr) {
			sa->in.sin_addr = to->u.v4;
			return;
		}
		if (sa->sa.sa_family == AF_INET6 && from->family == AF_INET6 &&
		    memcmp(&sa->in6.sin6_addr, &from->u.v6, sizeof(from->u.v6)) == 0) {
			sa->in6.sin6_addr = to->u.v6;
			return;
		}
	}
}

/* tproxy: the transparent listeners on listen_port; listen: an ordinary
 * one on every source address and mail port (the box owns them now). */
static int open_listeners(struct worker *w, const struct mf_config *cfg, char *err,
			  size_t errlen)
{
	bool listen = cfg->intercept == MF_INTERCEPT_LISTEN;
	unsigned int n = listen ? cfg->n_sources * cfg->n_ports : 2;

	w->listeners = calloc(n, sizeof(*w->listeners));
	if (w->listeners == NULL)
		return mf_err(err, errlen, "out of memory");
	w->n_listeners = n;
	for (unsigned int i = 0; i < n; i++) {
		w->listeners[i].w = w;
		w->listeners[i].fd = -1;
	}
	for (unsigned int i = 0; i < n; i++) {
		const struct mf_addr *a;
		uint16_t port;

		if (listen) {
			a = &cfg->sources[i / cfg->n_ports];
			port = cfg->ports[i % cfg->n_ports];
		} else {
			a = i == 0 ? &cfg->listen4 : &cfg->listen6;
			port = cfg->listen_port;
			if (a->family == 0)
				continue;
		}
		w->listeners[i].fd = listener_open(a, port, !listen, err, errlen);
		if (w->listeners[i].fd < 0)
			goto fail;
	}
	return MF_OK;
fail:
	for (unsigned int i = 0; i < n; i++)
		if (w->listeners[i].fd >= 0)
			close(w->listeners[i].fd);
	free(w->listeners);
	w->listeners = NULL;
	w->n_listeners = 0;
	return MF_ERROR;
}

int worker_init(struct worker *w, struct mf_daemon *d, unsigned int id,
		char *err, size_t errlen)
{
	struct io_uring_params params;
	int rc;

	memset(w, 0, sizeof(*w));
	w->d = d;
	w->id = id;
	w->stats = stats_shard(&d->stats, id);
	if (w->stats == NULL)
		return mf_err(err, errlen, "no counters for worker %u", id);
	w->wake_fd = -1;
	addr_count_init(&w->preauth, preauth_seed(w));
	pipe_pool_init(&w->pipes, d->cfg.max_pipes, d->cfg.pipe_size);
	load_tunables(w);

	memset(&params, 0, sizeof(params));
	params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL |
		       IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER |
		       IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED;
	params.cq_entries = RING_ENTRIES * 4;
	rc = io_uring_queue_init_params(RING_ENTRIES, &w->ring, &params);
	w->ring_disabled = rc == 0;
	if (rc == -EINVAL) {
		/* Older kernel: no single-issuer / deferred task work. */
		memset(&params, 0, sizeof(params));
		params.flags = IORING_SETUP_CQSIZE;
		params.cq_entries = RING_ENTRIES * 4;
		rc = io_uring_queue_init_params(RING_ENTRIES, &w->ring, &params);
	}
	if (rc < 0)
		return mf_err(err, errlen, "io_uring_queue_init: %s", strerror(-rc));
	w->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (w->wake_fd < 0) {
		mf_err(err, errlen, "eventfd: %s", strerror(errno));
		goto fail_ring;
	}
	if (open_listeners(w, &d->cfg, err, errlen) != MF_OK) {
		close(w->wake_fd);
		goto fail_ring;
	}
	return MF_OK;

fail_ring:
	io_uring_queue_exit(&w->ring);
	return MF_ERROR;
}

int worker_start(struct worker *w)
{
	int rc = pthread_create(&w->thread, NULL, worker_main, w);

	if (rc != 0) {
		errno = rc;
		return MF_ERROR;
	}
	return MF_OK;
}

void worker_join(struct worker *w)
{
	pthread_join(w->thread, NULL);
}

#define WORKER_LOGIN_BATCH 64

void worker_login_observed(struct worker *w, const char *user, const char *client)
{
	struct ledger_login *e;

	if (w->logins == NULL) {
		w->logins = calloc(WORKER_LOGIN_BATCH, sizeof(*w->logins));
		if (w->logins == NULL) {
			mf_log_warn("ledger user=%s login not recorded: out of memory", user);
			return;
		}
	}
	if (w->n_logins == WORKER_LOGIN_BATCH)
		worker_flush_logins(w);
	e = &w->logins[w->n_logins++];
	snprintf(e->name, sizeof(e->name), "%s", user);
	snprintf(e->client, sizeof(e->client), "%s", client);
	snprintf(e->gateway, sizeof(e->gateway), "%s", w->t.gateway_id);
	e->at = (int64_t)time(NULL);
}

void worker_flush_logins(struct worker *w)
{
	struct ledger *l;
	char err[256];

	if (w->n_logins == 0)
		return;
	l = worker_ledger(w);
	if (l == NULL || ledger_logins_observed(l, w->logins, w->n_logins, err,
						sizeof(err)) != MF_OK)
		mf_log_warn("ledger: %u logins not recorded: %s", w->n_logins,
			    l == NULL ? "no ledger" : err);
	w->n_logins = 0;
}

void worker_destroy(struct worker *w)
{
	free(w->logins);
	w->logins = NULL;
	for (unsigned int i = 0; i < w->n_listeners; i++)
		if (w->listeners[i].fd >= 0)
			close(w->listeners[i].fd);
	free(w->listeners);
	w->listeners = NULL;
	w->n_listeners = 0;
	io_uring_queue_exit(&w->ring);
	buf_ring_destroy(&w->bufs);
	pipe_pool_destroy(&w->pipes);
	addr_count_destroy(&w->preauth);
	tls_ctxs_unref(w->tls);
	w->tls = NULL;
	banner_set_unref(w->banners);
	w->banners = NULL;
	close(w->wake_fd);
}
