#include "session.h"
#include "account.h"
#include "addr_count.h"
#include "daemon.h"
#include "imap_front.h"
#include "pop3_front.h"
#include "smtp_front.h"
#include "stats.h"
#include "log.h"
#include "mf.h"
#include "netaddr.h"
#include "tls.h"
#include "tls_pump.h"
#include "upstream.h"
#include "uring_op.h"
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *const end_names[] = {
	[SE_EOF] = "eof",
	[SE_CLIENT_RESET] = "client-reset",
	[SE_SERVER_RESET] = "server-reset",
	[SE_CONNECT_FAILED] = "connect-failed",
	[SE_CONNECT_TIMEOUT] = "connect-timeout",
	[SE_IDLE_TIMEOUT] = "idle-timeout",
	[SE_SHUTDOWN] = "shutdown",
	[SE_LOCAL_ERROR] = "local-error",
	[SE_REFUSED] = "refused",
	[SE_PREAUTH_TIMEOUT] = "preauth-timeout",
	[SE_PROTOCOL] = "protocol-error",
	[SE_LOGOUT] = "logout",
	[SE_CUTOVER] = "cutover",
};

static uint16_t sockaddr_port(const union mf_sockaddr *a)
{
	return ntohs(a->sa.sa_family == AF_INET ? a->in.sin_port : a->in6.sin6_port);
}

/* "ECONNRESET" rather than prose: log lines are for grep and parsers. */
static const char *errno_name(int err)
{
	const char *name = strerrorname_np(err);

	return name ? name : "?";
}

static void set_linger0(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (fd >= 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

static void log_end(struct session *s)
{
	char client[MF_ADDRSTRLEN], dst[MF_ADDRSTRLEN], up[MF_ADDRSTRLEN] = "-";
	union mf_sockaddr local;
	socklen_t len = sizeof(local);
	char err[48] = "";
	char user[ACCOUNT_NAME_MAX + 40] = "";
	char extra[128] = "";

	mf_sockaddr_format(&s->client.sa, client, sizeof(client));
	mf_sockaddr_format(&s->orig_dst.sa, dst, sizeof(dst));
	if (s->ufd >= 0 && getsockname(s->ufd, &local.sa, &len) == 0 &&
	    (local.sa.sa_family == AF_INET || local.sa.sa_family == AF_INET6) &&
	    sockaddr_port(&local) != 0)
		mf_sockaddr_format(&local.sa, up, sizeof(up));
	if (s->end_errno != 0)
		snprintf(err, sizeof(err), " err=%s", errno_name(s->end_errno));
	if (s->user != NULL)
		snprintf(user, sizeof(user), " user=%s route=%s", s->user,
			 s->route >= 0 ? account_route_name((enum account_route)s->route) : "-");
	if (s->front != NULL && s->fops->log_fields != NULL)
		s->fops->log_fields(s, extra, sizeof(extra));
	mf_log_info("conn client=%s dst=%s up=%s c2s=%llu s2c=%llu ms=%llu end=%s%s%s%s",
		    client, dst, up, (unsigned long long)s->dir[0].bytes,
		    (unsigned long long)s->dir[1].bytes,
		    (unsigned long long)(s->w->now_ms - s->start_ms),
		    end_names[s->end], err, user, extra);
}

/* The session leaves the pre-auth count of its client address (once). */
static void preauth_release(struct session *s)
{
	if (!s->preauth_counted)
		return;
	s->preauth_counted = false;
	addr_count_dec(&s->w->preauth, &s->client.sa);
}

/* The daemon-wide count of sessions per client address (the SYN gate
 * holds new flows beyond max_sessions_per_client; this is the backstop for
 * SYNs that passed before the count rose). MF_AGAIN at the limit. */
static int client_take(struct session *s)
{
	struct mf_daemon *d = s->w->d;
	unsigned int limit = s->w->t.max_sessions_per_client;
	int rc;

	if (limit == 0)
		return MF_OK;
	pthread_mutex_lock(&d->conn_lock);
	rc = addr_count_inc(&d->conns, &s->client.sa, limit);
	pthread_mutex_unlock(&d->conn_lock);
	if (rc == MF_OK)
		s->client_counted = true;
	return rc == MF_AGAIN ? MF_AGAIN : MF_OK;
}

static void client_give(struct session *s)
{
	struct mf_daemon *d = s->w->d;

	if (!s->client_counted)
		return;
	s->client_counted = false;
	pthread_mutex_lock(&d->conn_lock);
	addr_count_dec(&d->conns, &s->client.sa);
	pthread_mutex_unlock(&d->conn_lock);
}

void session_stats_flush(struct session *s)
{
	for (unsigned int i = 0; i < 2; i++) {
		uint64_t b = s->dir[i].bytes;

		if (b > s->st_bytes[i]) {
			stats_add(&s->w->stats->bytes[s->st_proto][i], b - s->st_bytes[i]);
			s->st_bytes[i] = b;
		}
	}
}

static void session_free(struct session *s)
{
	struct worker *w = s->w;

	session_stats_flush(s);
	stats_session_close(w->stats, (enum stats_proto)s->st_proto,
			    (enum stats_backend)s->st_backend);
	preauth_release(s);
	client_give(s);
	if (s->acct_counted)
		acct_sessions_leave(&w->d->acct_sessions, s->user);
	relay_release(s, 0);
	relay_release(s, 1);
	log_end(s);
	if (s->fops != NULL)
		s->fops->free(s);
	tls_pump_free(s);
	tls_conn_free(s->tls[0]);
	tls_conn_free(s->tls[1]);
	free(s->user);
	if (s->ufd >= 0)
		close(s->ufd);
	close(s->cfd);
	w->n_sessions--;
	if (w->draining && w->n_sessions == 0)
		w->exit_loop = true;
	free(s);
}

void session_put(struct session *s)
{
	s->inflight--;
	if (s->phase == SP_CLOSING && s->inflight == 0)
		session_free(s);
}

static void cancel_fd(struct session *s, int fd)
{
	struct io_uring_sqe *sqe;

	if (fd < 0)
		return;
	sqe = worker_sqe(s->w);
	io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, uop_pack(s, UOP_SESSION_AUX));
	s->inflight++;
}

static void enter_closing(struct session *s, enum session_end why, int err)
{
	s->phase = SP_CLOSING;
	s->end = (uint8_t)why;
	s->end_errno = err;
	worker_lru_remove(s->w, s);
	preauth_release(s);
}

void session_abort(struct session *s, enum session_end why, int err, bool reset)
{
	if (s->phase == SP_CLOSING)
		return;
	enter_closing(s, why, err);
	if (reset) {
		set_linger0(s->cfd);
		set_linger0(s->ufd);
	}
	for (unsigned int i = 0; i < 2; i++)
		if (s->dir[i].waiting)
			worker_pipe_unwait(s->w, &s->dir[i]);
	if (s->inflight == 0) {
		session_free(s);
		return;
	}
	cancel_fd(s, s->cfd);
	cancel_fd(s, s->ufd);
}

void session_cutover(struct session *s)
{
	const char *line = s->fops != NULL ? s->fops->cutover_line : NULL;
	bool said = false;

	if (s->phase == SP_CLOSING)
		return;
	if (line != NULL && s->phase == SP_RELAY && s->frame_on &&
	    imap_frame_at_boundary(&s->frame))
		said = s->pump != NULL ? tls_pump_say(s, line, strlen(line))
				       : relay_say(s, line, strlen(line));
	mf_log_info("%s user=%s cutover: session closed%s", s->fops != NULL ? s->fops->name : "-",
		    s->user != NULL ? s->user : "-",
		    said ? " after the cutover line"
			 : line != NULL ? " (no response boundary: no cutover line)" : "");
	session_abort(s, SE_CUTOVER, 0, false);
}

void session_dir_done(struct session *s)
{
	if (s->dir[0].state == RS_DONE && s->dir[1].state == RS_DONE)
		enter_closing(s, SE_EOF, 0);
}

void session_on_connect(struct session *s, int res)
{
	if (s->phase == SP_CLOSING)
		return;
	if (s->front != NULL) {
		s->fops->on_connect(s, res);
		return;
	}
	if (res < 0) {
		if (res == -ECANCELED)
			session_abort(s, SE_CONNECT_TIMEOUT, ETIMEDOUT, true);
		else
			session_abort(s, SE_CONNECT_FAILED, -res, true);
		return;
	}
	if (upstream_connected(s->ufd) != MF_OK) {
		session_abort(s, SE_LOCAL_ERROR, errno, true);
		return;
	}
	session_relay(s);
}

void session_relay(struct session *s)
{
	/* A front end relays where it routed the login; a protocol-blind
	 * session where the client was going: the source. */
	enum stats_backend to = s->fops != NULL ? stats_backend_of_route(s->route)
						: STATS_B_SOURCE;

	stats_session_relay(s->w->stats, (enum stats_proto)s->st_proto,
			    (enum stats_backend)s->st_backend, to);
	s->st_backend = (uint8_t)to;
	s->phase = SP_RELAY;
	preauth_release(s);
	worker_lru_touch(s->w, s);
	if (s->tls[0] != NULL || s->tls[1] != NULL) {
		/* Bytes must pass through OpenSSL on at least one side: no
		 * splice, a user-space pump (no kTLS here to hand it over). */
		if (tls_pump_start(s) != MF_OK)
			session_abort(s, SE_LOCAL_ERROR, ENOMEM, true);
		return;
	}
	relay_start(s, 0);
	relay_start(s, 1);
}

/* Logs and closes a connection that never became a session. */
static void refuse(int fd, const union mf_sockaddr *client,
		   const char *why, int err)
{
	char c[MF_ADDRSTRLEN] = "?";

	if (client != NULL)
		mf_sockaddr_format(&client->sa, c, sizeof(c));
	mf_log_warn("refused client=%s reason=%s%s%s", c, why, err ? " err=" : "",
		    err ? errno_name(err) : "");
	set_linger0(fd);
	close(fd);
}

/* Refuses a front-end connection with the protocol's "try later" line.
 * The socket is fresh and its send buffer empty, so one non-blocking send
 * either takes the whole line or the client gets the close alone. An
 * orderly close (no RST) lets the line reach the client first. */
static void refuse_busy(int fd, const union mf_sockaddr *client,
			const struct front_ops *fops, const char *why)
{
	char c[MF_ADDRSTRLEN] = "?";

	mf_sockaddr_format(&client->sa, c, sizeof(c));
	mf_log_warn("refused client=%s reason=%s", c, why);
	(void)send(fd, fops->busy_line, strlen(fops->busy_line), MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

static bool port_in(const uint16_t *ports, unsigned int n, uint16_t port)
{
	for (unsigned int i = 0; i < n; i++)
		if (ports[i] == port)
			return true;
	return false;
}

/* The front end serving this original destination port, or NULL: relay
 * protocol-blind. Implicit-TLS ports need a certificate to offer. */
static const struct front_ops *front_of_port(const struct worker *w, uint16_t port,
					     bool *implicit_tls_r)
{
	*implicit_tls_r = false;
	if (port_in(w->t.imap_ports, w->t.n_imap_ports, port))
		return &imap_front_ops;
	if (port_in(w->t.pop3_ports, w->t.n_pop3_ports, port))
		return &pop3_front_ops;
	if (port_in(w->t.smtp_ports, w->t.n_smtp_ports, port))
		return &smtp_front_ops;
	if (port_in(w->t.submission_ports, w->t.n_submission_ports, port))
		return &submission_front_ops;
	if (!tls_ctxs_can_serve(w->tls))
		return NULL;
	*implicit_tls_r = true;
	if (port_in(w->t.imaps_ports, w->t.n_imaps_ports, port))
		return &imap_front_ops;
	if (port_in(w->t.pop3s_ports, w->t.n_pop3s_ports, port))
		return &pop3_front_ops;
	if (port_in(w->t.smtps_ports, w->t.n_smtps_ports, port))
		return &submission_front_ops;
	return NULL;
}

static enum stats_proto proto_of(const struct front_ops *fops)
{
	if (fops == &imap_front_ops)
		return STATS_P_IMAP;
	if (fops == &pop3_front_ops)
		return STATS_P_POP3;
	if (fops == &smtp_front_ops)
		return STATS_P_SMTP;
	if (fops == &submission_front_ops)
		return STATS_P_SUBMISSION;
	return STATS_P_OTHER;
}

static struct session *session_new(struct worker *w, int fd, int ufd,
				   const union mf_sockaddr *client,
				   const union mf_sockaddr *dst,
				   const struct front_ops *fops)
{
	struct session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->w = w;
	s->cfd = fd;
	s->ufd = ufd;
	s->client = *client;
	s->orig_dst = *dst;
	s->source = *dst;
	worker_real_source(w, &s->source);
	s->route = -1;
	relay_init(&s->dir[0], 0);
	relay_init(&s->dir[1], 1);
	s->start_ms = w->now_ms;
	if (client_take(s) != MF_OK) {
		free(s);
		errno = EUSERS;
		return NULL;
	}
	w->n_sessions++;
	worker_lru_touch(w, s);
	s->fops = fops;
	s->st_proto = (uint8_t)proto_of(fops);
	s->st_backend = STATS_B_NONE;
	stats_session_open(w->stats, (enum stats_proto)s->st_proto);
	return s;
}

/* A front-end session: no upstream leg until the login is routed. */
static void start_front(struct worker *w, int fd, const union mf_sockaddr *client,
			const union mf_sockaddr *dst, const struct front_ops *fops,
			bool implicit_tls)
{
	struct session *s;
	bool counted = false;

	/* Many pre-auth sessions from one address are a flood, not users:
	 * each holds a front-end allocation until its pre-auth deadline. */
	if (w->t.preauth_per_client != 0) {
		int rc = addr_count_inc(&w->preauth, &client->sa, w->t.preauth_per_client);

		if (rc == MF_AGAIN) {
			refuse_busy(fd, client, fops, "preauth-per-client");
			return;
		}
		if (rc != MF_OK) {
			refuse(fd, client, "memory", errno);
			return;
		}
		counted = true;
	}
	s = session_new(w, fd, -1, client, dst, fops);
	if (s == NULL)
		goto fail_count;
	s->preauth_counted = counted;
	s->implicit_tls = implicit_tls;
	if (fops->start(s) != MF_OK)
		goto fail_session;
	return;

fail_session:
	stats_session_close(w->stats, (enum stats_proto)s->st_proto, STATS_B_NONE);
	worker_lru_remove(w, s);
	w->n_sessions--;
	client_give(s);
	free(s);
	errno = ENOMEM;
fail_count:
	if (counted)
		addr_count_dec(&w->preauth, &client->sa);
	if (errno == EUSERS)
		refuse(fd, client, "sessions-per-client", 0);
	else
		refuse(fd, client, "memory", ENOMEM);
}

void session_start(struct worker *w, int fd)
{
	union mf_sockaddr client, dst;
	socklen_t clen = sizeof(client), dlen = sizeof(dst);
	struct io_uring_sqe *sqe;
	const struct front_ops *fops;
	struct session *s;
	bool implicit_tls;
	int ufd;

	if (getpeername(fd, &client.sa, &clen) < 0 ||
	    getsockname(fd, &dst.sa, &dlen) < 0) {
		refuse(fd, NULL, "getsockname", errno);
		return;
	}
	if (w->draining) {
		refuse(fd, &client, "draining", 0);
		return;
	}
	if (w->n_sessions >= w->t.max_sessions) {
		refuse(fd, &client, "max-sessions", 0);
		return;
	}
	/* A connection to the listener's own port was not diverted by the
	 * rules: relaying it would connect the gateway to itself. */
	if (w->t.n_moved == 0 && sockaddr_port(&dst) == w->t.listen_port) {
		refuse(fd, &client, "not-diverted", 0);
		return;
	}
	if (relay_socket_tune(fd) != MF_OK) {
		refuse(fd, &client, "setsockopt", errno);
		return;
	}
	fops = front_of_port(w, sockaddr_port(&dst), &implicit_tls);
	if (fops != NULL) {
		start_front(w, fd, &client, &dst, fops, implicit_tls);
		return;
	}
	ufd = upstream_socket(&client.sa, &dst.sa, (enum mf_upstream_source)w->t.upstream_source);
	if (ufd < 0) {
		refuse(fd, &client, "upstream-socket", errno);
		return;
	}
	s = session_new(w, fd, ufd, &client, &dst, NULL);
	if (s == NULL) {
		int e = errno;

		close(ufd);
		if (e == EUSERS)
			refuse(fd, &client, "sessions-per-client", 0);
		else
			refuse(fd, &client, "memory", ENOMEM);
		return;
	}
	s->phase = SP_CONNECT;

	s->connect_ts.tv_sec = w->t.connect_timeout_ms / 1000;
	s->connect_ts.tv_nsec = (long long)(w->t.connect_timeout_ms % 1000) * 1000000;
	/* Connect and its timeout must reach the kernel in one submission
	 * or the link is lost. */
	if (io_uring_sq_space_left(&w->ring) < 2)
		io_uring_submit(&w->ring);
	sqe = worker_sqe(w);
	io_uring_prep_connect(sqe, ufd, &s->source.sa,
			      dst.sa.sa_family == AF_INET ? sizeof(struct sockaddr_in)
							  : sizeof(struct sockaddr_in6));
	io_uring_sqe_set_data64(sqe, uop_pack(s, UOP_CONNECT));
	sqe->flags |= IOSQE_IO_LINK;
	s->inflight++;
	sqe = worker_sqe(w);
	io_uring_prep_link_timeout(sqe, &s->connect_ts, 0);
	io_uring_sqe_set_data64(sqe, uop_pack(s, UOP_SESSION_AUX));
	s->inflight++;
}
