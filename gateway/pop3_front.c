/* pop3_front.c — POP3 pre-auth front end; see pop3_front.h. The shape
 * follows imap_front.c: front_run() parses and answers, start_login()
 * routes and connects, up_line() drives the backend conversation,
 * handoff() passes leftovers on before relaying. */
#include "pop3_front.h"
#include "account.h"
#include "imap_backend.h"
#include "ledger.h"
#include "log.h"
#include "mf.h"
#include "netaddr.h"
#include "pop3_backend.h"
#include "pop3_parser.h"
#include "sasl.h"
#include "session.h"
#include "upstream.h"
#include "uring_op.h"
#include "worker.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FRONT_RBUF POP3_AUTH_LINE_MAX_DEFAULT /* the parser's buffer contract */
#define FRONT_OBUF 16384  /* queued replies (backend lines are <= 8 KiB) */
#define FRONT_UBUF 4096   /* backend bytes per RECV */
#define FRONT_SEND_MIN_MS 1000

static const char greeting[] = "+OK mailferry ready\r\n";
/* Only what this front end handles itself: no STLS yet, no PIPELINING
 * (RFC 2449 §6.6 allows leaving it out; commands are still answered in
 * order), no TOP/UIDL (transaction state belongs to the backend). */
static const char capa[] =
	"+OK Capability list follows\r\n"
	"USER\r\n"
	"SASL PLAIN\r\n"
	"RESP-CODES\r\n"
	"AUTH-RESP-CODE\r\n"
	".\r\n";

enum front_after { FA_RUN = 0, FA_CLOSE, FA_RELAY };
enum up_state { US_NONE = 0, US_GREETING, US_USER, US_PASS, US_HANDOFF };

struct pop3_front {
	struct front_op ops[FO_COUNT];
	struct pop3_parser parser;
	uint64_t deadline_ms;
	struct __kernel_timespec cts;   /* client op's linked timeout */
	unsigned int errors;
	uint8_t after;                  /* enum front_after, once obuf is sent */
	uint8_t close_why;              /* enum session_end for FA_CLOSE */
	uint8_t handoff_step;
	uint8_t ustate;                 /* enum up_state */
	bool auth_pending;              /* AUTH PLAIN waits for its line */
	bool timed_out;

	/* USER's name, kept until PASS; then the login in progress. The
	 * password lives only in pass and ucmd, both wiped when it is sent or
	 * the attempt ends. */
	char user[POP3_UP_FIELD_MAX + 1];
	size_t user_len;
	char pass[POP3_UP_FIELD_MAX + 1];
	size_t pass_len;
	struct sasl_plain plain;
	enum account_route route;
	union mf_sockaddr up_addr;
	char ucmd[POP3_UP_CMD_MAX];
	size_t ucmd_len, ucmd_off;

	size_t rpos, rlen;
	size_t ooff, olen;
	size_t upos, ulen;
	struct imap_line line;          /* backend line reader (protocol-neutral) */
	uint8_t rbuf[FRONT_RBUF];
	char obuf[FRONT_OBUF];
	uint8_t ubuf[FRONT_UBUF];
};

static void front_run(struct session *s);
static void pop3_front_free(struct session *s);

static struct pop3_front *front_of(struct session *s)
{
	return s->front;
}

/* --- io ----------------------------------------------------------------- */

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
	io_uring_sqe_set_data64(sqe, uop_pack(&front_of(s)->ops[kind], UOP_FRONT));
	sqe->flags |= IOSQE_IO_LINK;
	s->inflight++;
	sqe = worker_sqe(s->w);
	io_uring_prep_link_timeout(sqe, ts, 0);
	io_uring_sqe_set_data64(sqe, uop_pack(s, UOP_SESSION_AUX));
	s->inflight++;
}

static uint64_t client_ms_left(struct session *s, uint64_t floor)
{
	struct pop3_front *f = s->front;
	uint64_t left = f->deadline_ms > s->w->now_ms ? f->deadline_ms - s->w->now_ms : 0;

	return left < floor ? floor : left;
}

/* Unconsumed bytes (an unfinished line) move to the front of rbuf and the
 * RECV appends: the parser resumes where it stopped looking. */
static void c_recv(struct session *s)
{
	struct pop3_front *f = s->front;
	struct io_uring_sqe *sqe;

	if (f->rpos > 0) {
		memmove(f->rbuf, f->rbuf + f->rpos, f->rlen - f->rpos);
		f->rlen -= f->rpos;
		f->rpos = 0;
	}
	if (f->rlen == sizeof(f->rbuf)) {
		/* The parser refuses a line before it fills the buffer. */
		session_abort(s, SE_PROTOCOL, 0, false);
		return;
	}
	sqe = sqe_pair(s);
	io_uring_prep_recv(sqe, s->cfd, f->rbuf + f->rlen, sizeof(f->rbuf) - f->rlen, 0);
	set_ts(&f->cts, client_ms_left(s, 1));
	link_timeout(s, sqe, FO_CRECV, &f->cts);
}

static void c_flush(struct session *s)
{
	struct pop3_front *f = s->front;
	struct io_uring_sqe *sqe = sqe_pair(s);

	io_uring_prep_send(sqe, s->cfd, f->obuf + f->ooff, f->olen - f->ooff, MSG_NOSIGNAL);
	set_ts(&f->cts, client_ms_left(s, FRONT_SEND_MIN_MS));
	link_timeout(s, sqe, FO_CSEND, &f->cts);
}

static void u_recv(struct session *s)
{
	struct pop3_front *f = s->front;
	struct io_uring_sqe *sqe = sqe_pair(s);

	f->upos = f->ulen = 0;
	io_uring_prep_recv(sqe, s->ufd, f->ubuf, sizeof(f->ubuf), 0);
	/* A failed PASS takes the server seconds (Dovecot's auth failure
	 * delay): the pre-auth deadline bounds it, not the connect timeout. */
	set_ts(&s->connect_ts, client_ms_left(s, s->w->t.connect_timeout_ms));
	link_timeout(s, sqe, FO_URECV, &s->connect_ts);
}

static void u_send(struct session *s, const void *buf, size_t len)
{
	struct io_uring_sqe *sqe = sqe_pair(s);

	io_uring_prep_send(sqe, s->ufd, buf, len, MSG_NOSIGNAL);
	set_ts(&s->connect_ts, s->w->t.connect_timeout_ms);
	link_timeout(s, sqe, FO_USEND, &s->connect_ts);
}

/* --- replies -------------------------------------------------------------- */

/* Queues a reply; one that does not fit is cut to fit, keeping CRLF. */
static void reply(struct session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void reply(struct session *s, const char *fmt, ...)
{
	struct pop3_front *f = s->front;
	size_t room = sizeof(f->obuf) - f->olen;
	va_list ap;
	int n;

	if (room < 3)
		return;
	va_start(ap, fmt);
	n = vsnprintf(f->obuf + f->olen, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= room) {
		n = (int)room - 1;
		f->obuf[f->olen + (size_t)n - 2] = '\r';
		f->obuf[f->olen + (size_t)n - 1] = '\n';
	}
	f->olen += (size_t)n;
}

static void close_after_reply(struct session *s, enum session_end why)
{
	struct pop3_front *f = s->front;

	f->after = FA_CLOSE;
	f->close_why = (uint8_t)why;
}

/* One -ERR answer that counts as a protocol error; beyond
 * preauth_max_errors the answer says so and the session closes. A POP3
 * client reads one status line per command, so there is no second line. */
static void err_reply(struct session *s, const char *text)
{
	struct pop3_front *f = s->front;

	if (++f->errors > s->w->t.preauth_max_errors) {
		reply(s, "-ERR Too many invalid commands\r\n");
		close_after_reply(s, SE_PROTOCOL);
		return;
	}
	reply(s, "-ERR %s\r\n", text);
}

static void wipe_creds(struct pop3_front *f)
{
	sasl_plain_wipe(&f->plain);
	explicit_bzero(f->pass, sizeof(f->pass));
	explicit_bzero(f->ucmd, sizeof(f->ucmd));
	f->pass_len = 0;
	f->ucmd_len = f->ucmd_off = 0;
}

/* --- login: route and upstream --------------------------------------------- */

static void set_user(struct session *s, const char *name)
{
	free(s->user);
	s->user = strdup(name);
}

static void back_to_preauth(struct session *s)
{
	struct pop3_front *f = s->front;

	wipe_creds(f);
	f->user_len = 0;
	if (s->ufd >= 0) {
		close(s->ufd);
		s->ufd = -1;
	}
	f->ustate = US_NONE;
	s->phase = SP_PREAUTH;
	front_run(s);
}

static void up_fail(struct session *s, const char *why)
{
	struct pop3_front *f = s->front;
	char dst[MF_ADDRSTRLEN];

	mf_sockaddr_format(&f->up_addr.sa, dst, sizeof(dst));
	mf_log_warn("pop3 login user=%s up=%s failed: %s", s->user ? s->user : "-", dst, why);
	reply(s, "-ERR [SYS/TEMP] Server unavailable, try again later\r\n");
	back_to_preauth(s);
}

static int ledger_route(struct session *s, const char *name, enum account_route *route_r)
{
	struct ledger *l = worker_ledger(s->w);
	struct account a;
	char err[256];
	int rc;

	if (l == NULL)
		return MF_ERROR;
	rc = ledger_account_get(l, name, &a, err, sizeof(err));
	if (rc == MF_ERROR) {
		mf_log_warn("ledger user=%s: %s", name, err);
		return MF_ERROR;
	}
	*route_r = account_state_route(rc == LEDGER_ABSENT ? AS_UNSEEN : a.state);
	return MF_OK;
}

/* Copies the credentials into the front end (the caller wipes its own
 * copies), routes the account and starts the connect. Returns true when
 * the upstream leg was started (stop reading the client). */
static bool start_login(struct session *s, const char *user, size_t user_len,
			const char *pass, size_t pass_len)
{
	struct pop3_front *f = s->front;
	const struct mf_addr *dst;
	struct io_uring_sqe *sqe;
	char name[ACCOUNT_NAME_MAX + 1], err[128];

	if (user_len == 0 || user_len > POP3_UP_FIELD_MAX || pass_len == 0 ||
	    pass_len > POP3_UP_FIELD_MAX || memchr(pass, '\r', pass_len) != NULL ||
	    memchr(pass, '\n', pass_len) != NULL || memchr(pass, '\0', pass_len) != NULL ||
	    account_name_normalise(user, user_len, s->w->t.default_domain,
				   s->w->t.domain_equivalence, name, sizeof(name),
				   err, sizeof(err)) != MF_OK) {
		/* Nothing a USER/PASS replay could carry. */
		err_reply(s, "[AUTH] Authentication failed.");
		goto fail;
	}
	if (user != f->user) {
		memcpy(f->user, user, user_len);
		f->user[user_len] = '\0';
		f->user_len = user_len;
	}
	memcpy(f->pass, pass, pass_len);
	f->pass[pass_len] = '\0';
	f->pass_len = pass_len;
	sasl_plain_wipe(&f->plain);
	set_user(s, name);
	if (ledger_route(s, name, &f->route) != MF_OK) {
		reply(s, "-ERR [SYS/TEMP] Account database unavailable, try again later\r\n");
		goto fail;
	}
	s->route = (int8_t)f->route;
	f->up_addr = s->orig_dst;
	if (f->route == AR_UNAVAILABLE) {
		reply(s, "-ERR [IN-USE] account is being migrated, try again shortly\r\n");
		goto fail;
	}
	if (f->route == AR_DESTINATION) {
		dst = s->orig_dst.sa.sa_family == AF_INET ? &s->w->t.dest4 : &s->w->t.dest6;
		if (dst->family == 0) {
			mf_log_warn("pop3 login user=%s: no destination address of this family",
				    name);
			reply(s, "-ERR [SYS/TEMP] Server unavailable, try again later\r\n");
			goto fail;
		}
		if (dst->family == AF_INET)
			f->up_addr.in.sin_addr = dst->u.v4;
		else
			f->up_addr.in6.sin6_addr = dst->u.v6;
	}
	s->ufd = upstream_socket(&s->client.sa, &f->up_addr.sa,
				 (enum mf_upstream_source)s->w->t.upstream_source);
	if (s->ufd < 0) {
		mf_log_warn("pop3 login user=%s: upstream socket: %s", name, strerror(errno));
		reply(s, "-ERR [SYS/TEMP] Server unavailable, try again later\r\n");
		goto fail;
	}
	s->phase = SP_UPSTREAM;
	f->ustate = US_NONE;
	sqe = sqe_pair(s);
	io_uring_prep_connect(sqe, s->ufd, &f->up_addr.sa,
			      f->up_addr.sa.sa_family == AF_INET ? sizeof(struct sockaddr_in)
								 : sizeof(struct sockaddr_in6));
	io_uring_sqe_set_data64(sqe, uop_pack(s, UOP_CONNECT));
	sqe->flags |= IOSQE_IO_LINK;
	s->inflight++;
	set_ts(&s->connect_ts, s->w->t.connect_timeout_ms);
	sqe = worker_sqe(s->w);
	io_uring_prep_link_timeout(sqe, &s->connect_ts, 0);
	io_uring_sqe_set_data64(sqe, uop_pack(s, UOP_SESSION_AUX));
	s->inflight++;
	return true;
fail:
	wipe_creds(f);
	f->user_len = 0;
	return false;
}

static void pop3_front_on_connect(struct session *s, int res)
{
	struct pop3_front *f = s->front;

	if (res < 0) {
		up_fail(s, res == -ECANCELED ? "connect timeout" : strerrorname_np(-res));
		return;
	}
	if (upstream_connected(s->ufd) != MF_OK) {
		up_fail(s, "setsockopt");
		return;
	}
	f->ustate = US_GREETING;
	imap_line_init(&f->line);
	u_recv(s);
}

static void login_ok(struct session *s, const char *line)
{
	struct pop3_front *f = s->front;
	struct ledger *l;
	char client[MF_ADDRSTRLEN], err[256];

	wipe_creds(f);
	reply(s, "%s\r\n", line);
	if (f->route == AR_SOURCE && (l = worker_ledger(s->w)) != NULL) {
		mf_sockaddr_format(&s->client.sa, client, sizeof(client));
		if (ledger_login_observed(l, s->user, client, (int64_t)time(NULL), NULL,
					  err, sizeof(err)) != MF_OK)
			mf_log_warn("ledger user=%s login not recorded: %s", s->user, err);
	}
	f->after = FA_RELAY;
	f->handoff_step = 0;
	c_flush(s);
}

/* The backend refused USER or PASS: its line reaches the client unchanged
 * (the source's exact text, RFC 3206 codes included). */
static void login_err(struct session *s, const char *line)
{
	struct pop3_front *f = s->front;

	reply(s, "%s\r\n", line);
	if (++f->errors > s->w->t.preauth_max_errors)
		close_after_reply(s, SE_PROTOCOL);
	back_to_preauth(s);
}

static void send_ucmd(struct session *s, const char *verb, const char *value, size_t len)
{
	struct pop3_front *f = s->front;

	if (pop3_up_cmd_build(verb, value, len, f->ucmd, &f->ucmd_len) != MF_OK) {
		up_fail(s, "credentials not replayable");
		return;
	}
	f->ucmd_off = 0;
	u_send(s, f->ucmd, f->ucmd_len);
}

/* One backend line. Returns false when it was handled by leaving the
 * upstream phase or by sending (stop reading lines). */
static bool up_line(struct session *s)
{
	struct pop3_front *f = s->front;
	enum pop3_status st;

	if (pop3_status_parse(f->line.buf, f->line.len, &st) != MF_OK) {
		up_fail(s, "garbage from server");
		return false;
	}
	switch (f->ustate) {
	case US_GREETING:
		if (st != POP3_ST_OK) {
			up_fail(s, "bad greeting");
			return false;
		}
		f->ustate = US_USER;
		send_ucmd(s, "USER", f->user, f->user_len);
		return false;
	case US_USER:
		if (st != POP3_ST_OK) {
			login_err(s, f->line.buf);
			return false;
		}
		f->ustate = US_PASS;
		send_ucmd(s, "PASS", f->pass, f->pass_len);
		return false;
	case US_PASS:
		if (st == POP3_ST_OK)
			login_ok(s, f->line.buf);
		else
			login_err(s, f->line.buf);
		return false;
	default:
		up_fail(s, "unexpected state");
		return false;
	}
}

static void up_process(struct session *s)
{
	struct pop3_front *f = s->front;

	for (;;) {
		size_t used;
		int rc;

		if (f->upos == f->ulen) {
			u_recv(s);
			return;
		}
		rc = imap_line_feed(&f->line, f->ubuf + f->upos, f->ulen - f->upos, &used);
		f->upos += used;
		if (rc == MF_AGAIN)
			continue;
		if (rc == MF_ERROR) {
			up_fail(s, "overlong line from server");
			return;
		}
		if (!up_line(s))
			return;
	}
}

/* --- relay hand-off ------------------------------------------------------- */

static void handoff(struct session *s)
{
	struct pop3_front *f = s->front;

	if (f->handoff_step == 0) {
		f->handoff_step = 1;
		/* Backend bytes after its +OK go to the client first. */
		if (f->ulen > f->upos) {
			memcpy(f->obuf, f->ubuf + f->upos, f->ulen - f->upos);
			f->olen = f->ulen - f->upos;
			f->upos = f->ulen;
			s->dir[1].bytes += f->olen;
			f->after = FA_RELAY;
			c_flush(s);
			return;
		}
	}
	if (f->handoff_step == 1) {
		f->handoff_step = 2;
		/* Commands the client pipelined after its login. */
		if (f->rlen > f->rpos) {
			f->ustate = US_HANDOFF;
			u_send(s, f->rbuf + f->rpos, f->rlen - f->rpos);
			return;
		}
	}
	pop3_front_free(s);
	session_relay(s);
}

/* --- commands ------------------------------------------------------------- */

/* A base64 PLAIN response (initial or after "+ "). */
static bool auth_plain(struct session *s, const uint8_t *b64, size_t b64_len)
{
	struct pop3_front *f = s->front;
	uint8_t msg[3 * (SASL_FIELD_MAX + 1)];
	size_t n = 0;
	int rc;

	rc = sasl_b64_decode((const char *)b64, b64_len, msg, sizeof(msg), &n);
	if (rc == MF_OK)
		rc = sasl_plain_parse(msg, n, &f->plain);
	explicit_bzero(msg, sizeof(msg));
	if (rc != MF_OK) {
		err_reply(s, "Invalid SASL PLAIN response");
		return false;
	}
	if (f->plain.authzid_len > 0 && strcmp(f->plain.authzid, f->plain.authcid) != 0) {
		reply(s, "-ERR [AUTH] Authorization identity not supported\r\n");
		sasl_plain_wipe(&f->plain);
		return false;
	}
	f->user_len = 0; /* AUTH replaces an earlier USER */
	return start_login(s, f->plain.authcid, f->plain.authcid_len,
			   f->plain.passwd, f->plain.passwd_len);
}

static bool is_mech(const struct pop3_cmd *c, const char *mech)
{
	return c->arg_len == strlen(mech) && strncasecmp((const char *)c->arg, mech, c->arg_len) == 0;
}

/* Returns true when the command started the upstream leg. Secrets in the
 * receive buffer are wiped before this returns. */
static bool command(struct session *s, struct pop3_cmd *c)
{
	struct pop3_front *f = s->front;
	bool started;

	switch (c->type) {
	case POP3_CMD_AUTH_DATA:
		f->auth_pending = false;
		started = auth_plain(s, c->arg, c->arg_len);
		pop3_cmd_wipe(c);
		return started;
	case POP3_CMD_AUTH_CANCEL:
		f->auth_pending = false;
		err_reply(s, "Authentication cancelled");
		return false;
	case POP3_CMD_CAPA:
		reply(s, "%s", capa);
		return false;
	case POP3_CMD_STLS:
		err_reply(s, "STLS not available");
		return false;
	case POP3_CMD_USER:
		if (c->arg_len > POP3_UP_FIELD_MAX) {
			err_reply(s, "User name too long");
			return false;
		}
		memcpy(f->user, c->arg, c->arg_len);
		f->user[c->arg_len] = '\0';
		f->user_len = c->arg_len;
		reply(s, "+OK\r\n");
		return false;
	case POP3_CMD_PASS:
		if (f->user_len == 0) {
			pop3_cmd_wipe(c);
			err_reply(s, "No username given");
			return false;
		}
		started = start_login(s, f->user, f->user_len, (const char *)c->arg, c->arg_len);
		pop3_cmd_wipe(c);
		return started;
	case POP3_CMD_AUTH:
		if (c->arg_len == 0) {
			reply(s, "+OK\r\nPLAIN\r\n.\r\n");
			return false;
		}
		if (!is_mech(c, "PLAIN")) {
			pop3_cmd_wipe(c);
			err_reply(s, "Unsupported authentication mechanism");
			return false;
		}
		if (c->arg2 != NULL) {
			if (c->arg2_len == 1 && c->arg2[0] == '=')
				started = auth_plain(s, (const uint8_t *)"", 0);
			else
				started = auth_plain(s, c->arg2, c->arg2_len);
			pop3_cmd_wipe(c);
			return started;
		}
		pop3_parser_expect_auth_data(&f->parser);
		f->auth_pending = true;
		reply(s, "+ \r\n");
		return false;
	case POP3_CMD_APOP:
		err_reply(s, "APOP not supported");
		return false;
	case POP3_CMD_QUIT:
		reply(s, "+OK Logging out\r\n");
		close_after_reply(s, SE_LOGOUT);
		return false;
	default:
		err_reply(s, "Unknown command");
		return false;
	}
}

static void parse_error(struct session *s, struct pop3_cmd *c)
{
	struct pop3_front *f = s->front;

	enum pop3_parse_error e = c->error;
	bool resync = c->resync;

	f->auth_pending = false;
	/* A malformed line may still hold a password (a PASS with a bare CR,
	 * an AUTH response with a NUL): it was consumed, wipe it. */
	if (c->line != NULL)
		pop3_cmd_wipe(c);
	if (!resync) {
		reply(s, "-ERR %s\r\n", pop3_parse_error_str(e));
		close_after_reply(s, SE_PROTOCOL);
		return;
	}
	err_reply(s, pop3_parse_error_str(e));
}

static void front_run(struct session *s)
{
	struct pop3_front *f = s->front;

	for (;;) {
		struct pop3_cmd c;
		size_t used = 0;
		int rc;

		if (f->olen > f->ooff) {
			if (f->after != FA_CLOSE)
				f->after = FA_RUN;
			c_flush(s);
			return;
		}
		if (f->after == FA_CLOSE) {
			session_abort(s, (enum session_end)f->close_why, 0, false);
			return;
		}
		if (f->rpos == f->rlen) {
			c_recv(s);
			return;
		}
		rc = pop3_parser_feed(&f->parser, f->rbuf + f->rpos, f->rlen - f->rpos, &used, &c);
		f->rpos += used;
		if (rc == MF_AGAIN) {
			c_recv(s);
			return;
		}
		if (rc == MF_ERROR) {
			parse_error(s, &c);
			continue;
		}
		if (command(s, &c))
			return;
	}
}

/* --- completions ---------------------------------------------------------- */

static void on_client(struct session *s, unsigned int kind, int res)
{
	struct pop3_front *f = s->front;

	if (kind == FO_CRECV) {
		if (res > 0) {
			f->rlen += (size_t)res;
			worker_lru_touch(s->w, s);
			front_run(s);
		} else if (res == 0) {
			session_abort(s, SE_EOF, 0, false);
		} else if (res == -ECANCELED && !f->timed_out) {
			f->timed_out = true;
			reply(s, "-ERR Disconnected for inactivity\r\n");
			close_after_reply(s, SE_PREAUTH_TIMEOUT);
			c_flush(s);
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
	f->ooff += (size_t)res;
	if (f->ooff < f->olen) {
		c_flush(s);
		return;
	}
	f->ooff = f->olen = 0;
	if (f->after == FA_CLOSE)
		session_abort(s, (enum session_end)f->close_why, 0, false);
	else if (f->after == FA_RELAY)
		handoff(s);
	else
		front_run(s);
}

static void on_upstream(struct session *s, unsigned int kind, int res)
{
	struct pop3_front *f = s->front;

	if (f->ustate == US_HANDOFF) {
		if (res <= 0) {
			session_abort(s, SE_SERVER_RESET, res == 0 ? EPIPE : -res, true);
			return;
		}
		f->rpos += (size_t)res;
		s->dir[0].bytes += (uint64_t)res;
		if (f->rpos < f->rlen)
			u_send(s, f->rbuf + f->rpos, f->rlen - f->rpos);
		else
			handoff(s);
		return;
	}
	if (kind == FO_URECV) {
		if (res <= 0) {
			up_fail(s, res == 0 ? "server closed" :
				   res == -ECANCELED ? "server timeout" : strerrorname_np(-res));
			return;
		}
		f->upos = 0;
		f->ulen = (size_t)res;
		up_process(s);
		return;
	}
	if (res <= 0) {
		up_fail(s, res == -ECANCELED ? "server timeout" : "send failed");
		return;
	}
	f->ucmd_off += (size_t)res;
	if (f->ucmd_off < f->ucmd_len) {
		u_send(s, f->ucmd + f->ucmd_off, f->ucmd_len - f->ucmd_off);
		return;
	}
	if (f->ustate == US_PASS)
		/* PASS is on its way: the password is no longer needed here. */
		wipe_creds(f);
	up_process(s);
}

static void pop3_front_on_cqe(struct front_op *op, int res)
{
	struct session *s = op->s;

	if (s->phase == SP_CLOSING || s->front == NULL)
		return;
	if (op->kind == FO_CRECV || op->kind == FO_CSEND)
		on_client(s, op->kind, res);
	else
		on_upstream(s, op->kind, res);
}

/* --- life cycle ----------------------------------------------------------- */

static int pop3_front_start(struct session *s)
{
	struct pop3_front *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return MF_ERROR;
	pop3_parser_init(&f->parser);
	f->parser.auth_line_max = sizeof(f->rbuf);
	for (unsigned int i = 0; i < FO_COUNT; i++) {
		f->ops[i].s = s;
		f->ops[i].kind = i;
	}
	f->deadline_ms = s->w->now_ms + s->w->t.preauth_timeout_ms;
	s->front = f;
	s->phase = SP_PREAUTH;
	memcpy(f->obuf, greeting, sizeof(greeting) - 1);
	f->olen = sizeof(greeting) - 1;
	f->after = FA_RUN;
	c_flush(s);
	return MF_OK;
}

static void pop3_front_free(struct session *s)
{
	struct pop3_front *f = s->front;

	if (f == NULL)
		return;
	wipe_creds(f);
	explicit_bzero(f->user, sizeof(f->user));
	explicit_bzero(f->rbuf, sizeof(f->rbuf));
	explicit_bzero(f->ubuf, sizeof(f->ubuf));
	free(f);
	s->front = NULL;
}

const struct front_ops pop3_front_ops = {
	.name = "pop3",
	.start = pop3_front_start,
	.on_cqe = pop3_front_on_cqe,
	.on_connect = pop3_front_on_connect,
	.free = pop3_front_free,
};
