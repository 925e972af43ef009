/* front_io.c — shared plumbing of the pre-auth front ends; see front_io.h. */
#include "front_io.h"
#include "daemon.h"
#include "front_tls.h"
#include "ledger.h"
#include "route_cache.h"
#include "log.h"
#include "mf.h"
#include "netaddr.h"
#include "tls.h"
#include "upstream.h"
#include "uring_op.h"
#include "worker.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FRONT_SEND_MIN_MS 1000

static struct front_io *io_of(struct session *s)
{
	return s->front; /* struct front_io is the first member */
}

/* --- submissions ---------------------------------------------------------- */

static void set_ts(struct __kernel_timespec *ts, uint64_t ms)
{
	ts->tv_sec = (long long)(ms / 1000);
	ts->tv_nsec = (long long)(ms % 1000) * 1000000;
}

/* An op and its linked timeout, in one submission. */
static struct io_uring_sqe *sqe_pair(struct session *s)
{
	if (io_uring_sq_space_left(&s->w->ring) < 2)
		io_uring_submit(&s->w->ring);
	return worker_sqe(s->w);
}

static void link_timeout(struct session *s, struct io_uring_sqe *sqe, unsigned int kind,
			 struct __kernel_timespec *ts)
{
	io_uring_sqe_set_data64(sqe, uop_pack(&io_of(s)->ops[kind], UOP_FRONT));
	sqe->flags |= IOSQE_IO_LINK;
	s->inflight++;
	sqe = worker_sqe(s->w);
	io_uring_prep_link_timeout(sqe, ts, 0);
	io_uring_sqe_set_data64(sqe, uop_pack(s, UOP_SESSION_AUX));
	s->inflight++;
}

static uint64_t client_ms_left(struct session *s, uint64_t floor)
{
	struct front_io *io = io_of(s);
	uint64_t left = io->deadline_ms > s->w->now_ms ? io->deadline_ms - s->w->now_ms : 0;

	return left < floor ? floor : left;
}

void front_io_submit(struct session *s, unsigned int kind, void *buf, size_t len)
{
	struct front_io *io = io_of(s);
	struct io_uring_sqe *sqe = sqe_pair(s);
	struct __kernel_timespec *ts;

	switch (kind) {
	case FO_CRECV:
		io_uring_prep_recv(sqe, s->cfd, buf, len, 0);
		ts = &io->cts;
		set_ts(ts, client_ms_left(s, 1));
		break;
	case FO_CSEND:
		io_uring_prep_send(sqe, s->cfd, buf, len, MSG_NOSIGNAL);
		ts = &io->cts;
		set_ts(ts, client_ms_left(s, FRONT_SEND_MIN_MS));
		break;
	case FO_URECV:
		io_uring_prep_recv(sqe, s->ufd, buf, len, 0);
		/* A failed login takes the server seconds (Dovecot's auth
		 * failure delay): the pre-auth deadline bounds it, not the
		 * connect timeout. */
		ts = &s->connect_ts;
		set_ts(ts, client_ms_left(s, s->w->t.connect_timeout_ms));
		break;
	default:
		io_uring_prep_send(sqe, s->ufd, buf, len, MSG_NOSIGNAL);
		ts = &s->connect_ts;
		set_ts(ts, s->w->t.connect_timeout_ms);
		break;
	}
	link_timeout(s, sqe, kind, ts);
}

void front_io_client_recv(struct session *s)
{
	struct front_io *io = io_of(s);

	if (io->rpos > 0) {
		memmove(io->rbuf, io->rbuf + io->rpos, io->rlen - io->rpos);
		io->rlen -= io->rpos;
		io->rpos = 0;
	}
	if (io->rlen == sizeof(io->rbuf)) {
		/* The parser refuses a line before it fills the buffer. */
		session_abort(s, SE_PROTOCOL, 0, false);
		return;
	}
	if (s->tls[0] != NULL)
		front_tls_recv(s, 0, io->rbuf + io->rlen, sizeof(io->rbuf) - io->rlen);
	else
		front_io_submit(s, FO_CRECV, io->rbuf + io->rlen, sizeof(io->rbuf) - io->rlen);
}

void front_io_flush(struct session *s)
{
	struct front_io *io = io_of(s);

	if (s->tls[0] != NULL)
		front_tls_send(s, 0, (const uint8_t *)io->obuf + io->ooff, io->olen - io->ooff);
	else
		front_io_submit(s, FO_CSEND, io->obuf + io->ooff, io->olen - io->ooff);
}

void front_io_upstream_recv(struct session *s)
{
	struct front_io *io = io_of(s);

	io->upos = io->ulen = 0;
	if (s->tls[1] != NULL)
		front_tls_recv(s, 1, io->ubuf, sizeof(io->ubuf));
	else
		front_io_submit(s, FO_URECV, io->ubuf, sizeof(io->ubuf));
}

void front_io_upstream_send(struct session *s, const void *buf, size_t len)
{
	if (s->tls[1] != NULL)
		front_tls_send(s, 1, buf, len);
	else
		front_io_submit(s, FO_USEND, (void *)buf, len);
}

bool front_io_can_starttls(const struct session *s)
{
	return s->tls[0] == NULL && tls_ctxs_can_serve(s->w->tls);
}

void front_io_starttls(struct session *s)
{
	struct front_io *io = io_of(s);

	io->rpos = io->rlen = 0;
	io->after = FA_STARTTLS;
}

int front_io_upstream_starttls(struct session *s)
{
	struct front_io *io = io_of(s);

	io->upos = io->ulen;
	if (front_tls_start(s, 1) != MF_OK) {
		io->iops->up_fail(s, "TLS setup failed");
		return MF_ERROR;
	}
	return MF_OK;
}

const struct banner *front_io_banner(const struct session *s, enum banner_proto proto)
{
	union mf_sockaddr a = s->source;

	if (s->implicit_tls) {
		if (a.sa.sa_family == AF_INET)
			a.in.sin_port = htons(s->fops->plain_port);
		else
			a.in6.sin6_port = htons(s->fops->plain_port);
	}
	return banner_find(s->w->banners, &a, proto);
}

enum mf_backend_tls front_io_backend_tls(const struct session *s)
{
	return (enum mf_backend_tls)s->w->t.backend_tls;
}

/* --- replies -------------------------------------------------------------- */

void front_io_reply(struct session *s, const char *fmt, ...)
{
	struct front_io *io = io_of(s);
	size_t room = sizeof(io->obuf) - io->olen;
	va_list ap;
	int n;

	if (room < 3)
		return;
	va_start(ap, fmt);
	n = vsnprintf(io->obuf + io->olen, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= room) {
		n = (int)room - 1;
		io->obuf[io->olen + (size_t)n - 2] = '\r';
		io->obuf[io->olen + (size_t)n - 1] = '\n';
	}
	io->olen += (size_t)n;
}

void front_io_close_after_reply(struct session *s, enum session_end why)
{
	struct front_io *io = io_of(s);

	io->after = FA_CLOSE;
	io->close_why = (uint8_t)why;
}

bool front_io_wait(struct session *s)
{
	struct front_io *io = io_of(s);

	if (io->olen > io->ooff) {
		if (io->after != FA_CLOSE && io->after != FA_STARTTLS)
			io->after = FA_RUN;
		front_io_flush(s);
		return true;
	}
	if (io->after == FA_CLOSE) {
		session_abort(s, (enum session_end)io->close_why, 0, false);
		return true;
	}
	if (io->after == FA_STARTTLS)
		return true; /* the answer is on its way; the handshake follows */
	if (io->rpos == io->rlen) {
		front_io_client_recv(s);
		return true;
	}
	return false;
}

/* --- login: route and upstream --------------------------------------------- */

/* A FAILED account's failures in a row, from its reason (account.h): the
 * wait before its next copy. The route cache keeps no reasons, so this is
 * one more ledger read, for FAILED accounts only; when it cannot be made,
 * 1 (the shortest wait): the migrator's claim reads the ledger again and
 * has the last word. */
static unsigned int failures_of(struct session *s, const char *name)
{
	struct ledger *l = worker_ledger(s->w);
	struct account a;
	char err[256];

	if (l == NULL || ledger_account_get(l, name, &a, err, sizeof(err)) != MF_OK)
		return 1;
	return migrate_failures(a.reason);
}

int front_io_route(struct session *s, const char *name, enum account_route *route_r)
{
	enum account_state st;
	int64_t changed;
	char err[256];
	bool stale;

	if (route_cache_lookup(&s->w->d->routes, worker_ledger(s->w), name, route_cache_now_ms(),
			       &st, &changed, &stale, err, sizeof(err)) != MF_OK) {
		/* A state that could have changed: no guess. */
		mf_log_warn("ledger user=%s: %s", name, err);
		return MF_ERROR;
	}
	if (stale)
		/* The ledger cannot answer, but this state changes only by an
		 * admin's act: keep routing by it. */
		mf_log_info("ledger user=%s: unreachable: routed by the cached state %s", name,
			    account_state_name(st));
	io_of(s)->acct_state = st;
	io_of(s)->acct_changed = changed;
	io_of(s)->acct_failures = st == AS_FAILED ? failures_of(s, name) : 0;
	*route_r = account_state_route(st);
	return MF_OK;
}

/* The backend's port: the client's own, unless backend_tls asks the
 * backend to speak otherwise than the client did (993 → 143 for a
 * plaintext backend, 143 → 993 for an implicit-TLS one). */
static void backend_port(struct session *s, union mf_sockaddr *a)
{
	enum mf_backend_tls bt = front_io_backend_tls(s);
	uint16_t port = 0;

	if (bt == MF_BACKEND_TLS_IMPLICIT && !s->implicit_tls)
		port = s->fops->tls_port;
	else if (bt != MF_BACKEND_TLS_IMPLICIT && s->implicit_tls)
		port = s->fops->plain_port;
	if (port == 0)
		return;
	if (a->sa.sa_family == AF_INET)
		a->in.sin_port = htons(port);
	else
		a->in6.sin6_port = htons(port);
}

static uint64_t clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* The login in progress got its verdict: counted once (stats.h). */
static void login_verdict(struct session *s, enum stats_login r)
{
	struct front_io *io = io_of(s);
	enum stats_backend b = r == STATS_L_REFUSED && io->route == AR_UNAVAILABLE
				       ? STATS_B_NONE : stats_backend_of_route((int)io->route);

	if (!io->login_pending)
		return;
	io->login_pending = false;
	stats_login(s->w->stats, (enum stats_proto)s->st_proto, b, r,
		    clock_us() - io->login_t0_us);
}

void front_io_login_rejected(struct session *s)
{
	login_verdict(s, STATS_L_FAIL);
}

enum front_route_fail front_io_route_connect(struct session *s, const char *name)
{
	struct front_io *io = io_of(s);
	enum account_route route;
	enum front_route_fail rc;

	io->login_pending = true;
	io->login_t0_us = clock_us();
	free(s->user);
	s->user = strdup(name);
	if (front_io_route(s, name, &route) != MF_OK) {
		io->route = AR_UNAVAILABLE; /* no backend: counted under "none" */
		rc = FRF_LEDGER;
	} else {
		rc = front_io_connect(s, route);
	}
	if (rc != FRF_OK)
		login_verdict(s, STATS_L_REFUSED);
	return rc;
}

enum front_route_fail front_io_connect(struct session *s, enum account_route route)
{
	struct front_io *io = io_of(s);
	const char *who = s->user ? s->user : "-";
	enum mf_upstream_source src;
	const struct mf_addr *dst;
	struct io_uring_sqe *sqe;

	io->route = route;
	s->route = (int8_t)io->route;
	io->up_addr = s->source;
	if (io->route == AR_UNAVAILABLE)
		return FRF_MIGRATING;
	if (io->route == AR_DESTINATION) {
		dst = s->orig_dst.sa.sa_family == AF_INET ? &s->w->t.dest4 : &s->w->t.dest6;
		if (dst->family == 0) {
			mf_log_warn("%s login user=%s: no destination address of this family",
				    s->fops->name, who);
			return FRF_NO_DEST;
		}
		if (dst->family == AF_INET)
			io->up_addr.in.sin_addr = dst->u.v4;
		else
			io->up_addr.in6.sin6_addr = dst->u.v6;
	}
	src = (enum mf_upstream_source)s->w->t.upstream_source;
	/* A later connect of the same session from the client's own port
	 * could meet the 4-tuple of an earlier one still in TIME_WAIT
	 * (EADDRNOTAVAIL): keep the client's address, let the kernel pick
	 * the port. */
	if (src == MF_UPSTREAM_CLIENT && io->connects > 0)
		src = MF_UPSTREAM_CLIENT_IP;
	if (io->connects < UINT8_MAX)
		io->connects++;
	backend_port(s, &io->up_addr);
	s->ufd = upstream_socket(&s->client.sa, &io->up_addr.sa, src);
	if (s->ufd < 0) {
		mf_log_warn("%s login user=%s: upstream socket: %s", s->fops->name, who,
			    strerror(errno));
		return FRF_SOCKET;
	}
	s->phase = SP_UPSTREAM;
	sqe = sqe_pair(s);
	io_uring_prep_connect(sqe, s->ufd, &io->up_addr.sa,
			      io->up_addr.sa.sa_family == AF_INET ? sizeof(struct sockaddr_in)
								  : sizeof(struct sockaddr_in6));
	io_uring_sqe_set_data64(sqe, uop_pack(s, UOP_CONNECT));
	sqe->flags |= IOSQE_IO_LINK;
	s->inflight++;
	set_ts(&s->connect_ts, s->w->t.connect_timeout_ms);
	sqe = worker_sqe(s->w);
	io_uring_prep_link_timeout(sqe, &s->connect_ts, 0);
	io_uring_sqe_set_data64(sqe, uop_pack(s, UOP_SESSION_AUX));
	s->inflight++;
	return FRF_OK;
}

int front_io_on_connect(struct session *s, int res)
{
	struct front_io *io = io_of(s);

	if (res < 0) {
		io->iops->up_fail(s, res == -ECANCELED ? "connect timeout" : strerrorname_np(-res));
		return MF_ERROR;
	}
	if (upstream_connected(s->ufd) != MF_OK) {
		io->iops->up_fail(s, "setsockopt");
		return MF_ERROR;
	}
	imap_line_init(&io->line);
	/* Only a protocol with an implicit-TLS port of its own (not SMTP on
	 * 25) speaks TLS first to a backend. */
	if (front_io_backend_tls(s) == MF_BACKEND_TLS_IMPLICIT && s->fops->tls_port != 0 &&
	    front_tls_start(s, 1) != MF_OK) {
		io->iops->up_fail(s, "TLS setup failed");
		return MF_ERROR;
	}
	return MF_OK;
}

void front_io_upstream_process(struct session *s)
{
	struct front_io *io = io_of(s);

	for (;;) {
		size_t used;
		int rc;

		if (io->iops->up_bytes != NULL && io->iops->up_bytes(s))
			return;
		if (io->upos == io->ulen) {
			front_io_upstream_recv(s);
			return;
		}
		rc = imap_line_feed(&io->line, io->ubuf + io->upos, io->ulen - io->upos, &used);
		io->upos += used;
		if (rc == MF_AGAIN)
			continue;
		if (rc == MF_ERROR) {
			io->iops->up_fail(s, "overlong line from server");
			return;
		}
		if (!io->iops->up_line(s))
			return;
	}
}

void front_io_log_up_fail(struct session *s, const char *why)
{
	char dst[MF_ADDRSTRLEN];

	mf_sockaddr_format(&io_of(s)->up_addr.sa, dst, sizeof(dst));
	mf_log_warn("%s login user=%s up=%s failed: %s", s->fops->name,
		    s->user ? s->user : "-", dst, why);
	login_verdict(s, STATS_L_REFUSED);
}

void front_io_upstream_close(struct session *s)
{
	if (s->ufd >= 0) {
		close(s->ufd);
		s->ufd = -1;
	}
	tls_conn_free(s->tls[1]);
	s->tls[1] = NULL;
	front_tls_leg_free(s, 1);
}

void front_io_back_to_preauth(struct session *s)
{
	front_io_upstream_close(s);
	s->phase = SP_PREAUTH;
	io_of(s)->iops->run(s);
}

/* --- relay hand-off ------------------------------------------------------- */

static void handoff(struct session *s)
{
	struct front_io *io = io_of(s);

	if (io->handoff_step == 0) {
		io->handoff_step = 1;
		/* A session relayed to the source may be ended by a cutover:
		 * its server's responses are followed from the boundary after
		 * the login's answer, the bytes behind it included. */
		if (s->fops->cutover_line != NULL && io->route == AR_SOURCE) {
			s->frame_on = true;
			imap_frame_init(&s->frame);
			imap_frame_feed(&s->frame, io->ubuf + io->upos, io->ulen - io->upos);
		}
		/* Backend bytes after its answer to the login go to the client
		 * first. */
		if (io->ulen > io->upos) {
			memcpy(io->obuf, io->ubuf + io->upos, io->ulen - io->upos);
			io->olen = io->ulen - io->upos;
			io->upos = io->ulen;
			s->dir[1].bytes += io->olen;
			io->after = FA_RELAY;
			front_io_flush(s);
			return;
		}
	}
	if (io->handoff_step == 1) {
		io->handoff_step = 2;
		/* Commands the client pipelined after its login. */
		if (io->rlen > io->rpos) {
			io->handoff_send = true;
			front_io_upstream_send(s, io->rbuf + io->rpos, io->rlen - io->rpos);
			return;
		}
	}
	s->fops->free(s);
	session_relay(s);
}

/* after-logout waits for an account's sessions on the source to end:
 * each one counts itself from before its event is queued (so the copy
 * cannot start between the source's OK and the relay) until it ends. */
static void count_session(struct session *s)
{
	struct mf_daemon *d = s->w->d;

	if (!d->migrate || d->migrate_strategy != MF_STRATEGY_AFTER_LOGOUT ||
	    s->acct_counted || s->user == NULL || io_of(s)->route != AR_SOURCE)
		return;
	if (acct_sessions_enter(&d->acct_sessions, s->user) == MF_OK)
		s->acct_counted = true;
	else
		mf_log_warn("migrate user=%s: session not counted (out of memory)", s->user);
}

void front_io_login_done(struct session *s)
{
	struct front_io *io = io_of(s);
	char client[MF_ADDRSTRLEN];

	login_verdict(s, STATS_L_OK);
	if (io->route == AR_SOURCE) {
		mf_sockaddr_format(&s->client.sa, client, sizeof(client));
		worker_login_observed(s->w, s->user, client);
		count_session(s);
	}
	io->after = FA_RELAY;
	io->handoff_step = 0;
	front_io_flush(s);
}

void front_io_login_stay(struct session *s)
{
	struct front_io *io = io_of(s);

	login_verdict(s, STATS_L_OK);
	io->after = FA_RUN;
	front_io_flush(s);
}

bool front_io_creds_wanted(struct session *s)
{
	const struct front_io *io = io_of(s);

	return s->w->d->migrate && s->user != NULL && io->route == AR_SOURCE &&
	       (io->acct_state == AS_UNSEEN || io->acct_state == AS_SEEN ||
		(io->acct_state == AS_FAILED &&
		 migrate_retry_due(&(struct migrate_backoff){ s->w->d->migrate_retry_after_s,
							      s->w->d->migrate_retry_max_s },
				   io->acct_failures, io->acct_changed, (int64_t)time(NULL))));
}

void front_io_login_creds(struct session *s, const char *login, size_t login_len,
			  const char *pass, size_t pass_len)
{
	struct mf_daemon *d = s->w->d;
	socklen_t len;
	int rc;

	if (!front_io_creds_wanted(s))
		return;
	if (login == NULL || pass == NULL) {
		/* A front end wiped them before the answer: a bug, not a user's. */
		mf_log_warn("migrate user=%s login observed: credentials already wiped", s->user);
		return;
	}
	len = s->client.sa.sa_family == AF_INET ? sizeof(s->client.in) : sizeof(s->client.in6);
	count_session(s);
	rc = login_queue_push(&d->logins, s->user, login, login_len, pass, pass_len,
			      &s->client.sa, len, &s->source.sa, len, (int64_t)time(NULL), false);
	io_of(s)->copy_queued = rc == MF_OK;
	if (rc == MF_OK)
		mf_log_info("migrate user=%s login observed: copy queued", s->user);
	else
		mf_log_warn("migrate user=%s login observed: not queued (%s)", s->user,
			    rc == MF_AGAIN ? "queue full" : "credentials too long");
}

/* --- completions ---------------------------------------------------------- */

static void on_client(struct session *s, unsigned int kind, int res)
{
	struct front_io *io = io_of(s);

	if (kind == FO_CRECV) {
		if (res > 0) {
			io->rlen += (size_t)res;
			worker_lru_touch(s->w, s);
			io->iops->run(s);
		} else if (res == 0) {
			session_abort(s, SE_EOF, 0, false);
		} else if (res == -ECANCELED && !io->timed_out) {
			io->timed_out = true;
			front_io_reply(s, "%s", io->iops->timeout_reply);
			front_io_close_after_reply(s, SE_PREAUTH_TIMEOUT);
			front_io_flush(s);
		} else {
			session_abort(s, res == -ECANCELED ? SE_PREAUTH_TIMEOUT : SE_CLIENT_RESET,
				      -res, true);
		}
		return;
	}
	if (res <= 0) {
		session_abort(s, res == -ECANCELED ? SE_PREAUTH_TIMEOUT : SE_CLIENT_RESET,
			      res == 0 ? EPIPE : -res, true);
		return;
	}
	io->ooff += (size_t)res;
	if (io->ooff < io->olen) {
		front_io_flush(s);
		return;
	}
	io->ooff = io->olen = 0;
	if (io->after == FA_CLOSE) {
		session_abort(s, (enum session_end)io->close_why, 0, false);
	} else if (io->after == FA_RELAY) {
		handoff(s);
	} else if (io->after == FA_STARTTLS) {
		io->after = FA_RUN;
		if (front_tls_start(s, 0) != MF_OK) {
			session_abort(s, SE_LOCAL_ERROR, ENOMEM, true);
			return;
		}
		front_io_client_recv(s);
	} else {
		io->iops->run(s);
	}
}

static void on_upstream(struct session *s, unsigned int kind, int res)
{
	struct front_io *io = io_of(s);

	if (io->handoff_send) {
		if (res <= 0) {
			session_abort(s, SE_SERVER_RESET, res == 0 ? EPIPE : -res, true);
			return;
		}
		io->rpos += (size_t)res;
		s->dir[0].bytes += (uint64_t)res;
		if (io->rpos < io->rlen)
			front_io_upstream_send(s, io->rbuf + io->rpos, io->rlen - io->rpos);
		else
			handoff(s);
		return;
	}
	if (kind == FO_URECV) {
		if (res <= 0) {
			io->iops->up_fail(s, res == 0 ? "server closed" :
					  res == -ECANCELED ? "server timeout" :
					  strerrorname_np(-res));
			return;
		}
		io->upos = 0;
		io->ulen = (size_t)res;
		front_io_upstream_process(s);
		return;
	}
	if (res <= 0) {
		io->iops->up_fail(s, res == -ECANCELED ? "server timeout" : "send failed");
		return;
	}
	io->iops->up_sent(s, (size_t)res);
}

void front_io_deliver(struct session *s, unsigned int kind, int res)
{
	if (kind == FO_CRECV || kind == FO_CSEND)
		on_client(s, kind, res);
	else
		on_upstream(s, kind, res);
}

/* --- strategy immediate: the login waits for its copy ----------------------- */

#define FRONT_HOLD_TICK_MS 250

static void hold_tick(struct session *s)
{
	struct front_io *io = io_of(s);
	struct io_uring_sqe *sqe = worker_sqe(s->w);

	set_ts(&io->hts, FRONT_HOLD_TICK_MS);
	io_uring_prep_timeout(sqe, &io->hts, 0, 0);
	io_uring_sqe_set_data64(sqe, uop_pack(&io->ops[FO_HOLD], UOP_FRONT));
	s->inflight++;
}

bool front_io_hold(struct session *s)
{
	struct front_io *io = io_of(s);
	struct mf_daemon *d = s->w->d;

	if (!io->copy_queued || io->held || io->iops->resume == NULL ||
	    d->migrate_strategy != MF_STRATEGY_IMMEDIATE)
		return false;
	io->held = true;
	io->copy_queued = false;
	/* The source's session is of no use now: the login is answered by
	 * whichever server holds the mailbox when the wait ends. */
	front_io_upstream_close(s);
	/* Routed nowhere while it waits: the cutover of its own account
	 * (cutover.h) must not close it. */
	s->route = -1;
	io->hold_start_ms = s->w->now_ms;
	io->hold_until_ms = s->w->now_ms + d->migrate_immediate_wait_ms;
	/* The pre-auth deadline must not end the wait: it restarts after. */
	io->deadline_ms = io->hold_until_ms + s->w->t.preauth_timeout_ms;
	mf_log_info("migrate user=%s immediate: login held until the copy ends (%u ms at most)",
		    s->user, d->migrate_immediate_wait_ms);
	hold_tick(s);
	return true;
}

static void on_hold(struct session *s)
{
	struct front_io *io = io_of(s);
	enum account_route route = AR_SOURCE;
	bool over = s->w->now_ms >= io->hold_until_ms || atomic_load(&s->w->d->stopping);

	/* A ledger that cannot answer ends the wait too: resume() answers
	 * "try again" then. */
	if (front_io_route(s, s->user, &route) != MF_OK || route == AR_DESTINATION ||
	    io->acct_state == AS_FAILED || io->acct_state == AS_PINNED)
		over = true;
	if (!over) {
		hold_tick(s);
		return;
	}
	mf_log_info("migrate user=%s immediate: login waited %llu ms, account %s", s->user,
		    (unsigned long long)(s->w->now_ms - io->hold_start_ms),
		    account_state_name(io->acct_state));
	io->deadline_ms = s->w->now_ms + s->w->t.preauth_timeout_ms;
	io->iops->resume(s);
}

void front_io_on_cqe(struct front_op *op, int res)
{
	struct session *s = op->s;
	unsigned int leg = op->kind == FO_CRECV || op->kind == FO_CSEND ? 0 : 1;

	if (s->phase == SP_CLOSING || s->front == NULL)
		return;
	if (op->kind == FO_HOLD) {
		on_hold(s);
		return;
	}
	if (s->tls[leg] != NULL)
		front_tls_on_raw(s, leg, res);
	else
		front_io_deliver(s, op->kind, res);
}

/* --- life cycle ----------------------------------------------------------- */

int front_io_start(struct session *s, struct front_io *io, const struct front_io_ops *iops,
		   const char *greeting, size_t greeting_len)
{
	for (unsigned int i = 0; i < FO_COUNT; i++) {
		io->ops[i].s = s;
		io->ops[i].kind = i;
	}
	io->iops = iops;
	io->deadline_ms = s->w->now_ms + s->w->t.preauth_timeout_ms;
	s->front = io;
	s->phase = SP_PREAUTH;
	memcpy(io->obuf, greeting, greeting_len);
	io->olen = greeting_len;
	io->after = FA_RUN;
	if (s->implicit_tls && front_tls_start(s, 0) != MF_OK) {
		s->front = NULL;
		return MF_ERROR;
	}
	front_io_flush(s);
	return MF_OK;
}

void front_io_wipe(struct front_io *io)
{
	explicit_bzero(io->rbuf, sizeof(io->rbuf));
	explicit_bzero(io->ubuf, sizeof(io->ubuf));
	/* The stages held ciphertext only, but the memory is freed here. */
	for (unsigned int i = 0; i < 2; i++) {
		free(io->tls[i].stage);
		io->tls[i] = (struct front_leg_tls){ 0 };
	}
}
