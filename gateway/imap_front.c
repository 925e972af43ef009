#include "imap_front.h"
#include "account.h"
#include "imap_backend.h"
#include "imap_parser.h"
#include "ledger.h"
#include "log.h"
#include "mf.h"
#include "netaddr.h"
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

#define FRONT_RBUF 8192   /* client bytes per RECV */
#define FRONT_OBUF 16384  /* queued replies (backend lines are <= 8 KiB) */
#define FRONT_UBUF 4096   /* backend bytes per RECV */
#define FRONT_TAG_MAX 64  /* client tags we keep across a login */
#define FRONT_SEND_MIN_MS 1000
#define OUR_TAG "mf1"

static const char greeting[] =
	"* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN] mailferry ready\r\n";
static const char capability[] =
	"* CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN\r\n";

enum front_after { FA_RUN = 0, FA_CLOSE, FA_RELAY };
enum up_state { US_NONE = 0, US_GREETING, US_CONT, US_REPLY, US_HANDOFF };

struct imap_front {
	struct front_op ops[FO_COUNT];
	struct imap_parser parser;
	uint64_t deadline_ms;
	struct __kernel_timespec cts;   /* client op's linked timeout */
	unsigned int errors;
	uint8_t after;                  /* enum front_after, once obuf is sent */
	uint8_t close_why;              /* enum session_end for FA_CLOSE */
	uint8_t handoff_step;
	uint8_t ustate;                 /* enum up_state */
	bool auth_pending;              /* AUTHENTICATE PLAIN waits for its line */
	bool timed_out;

	/* login in progress: credentials point into the parser's arena or
	 * into plain; both are wiped when the attempt ends */
	char ctag[FRONT_TAG_MAX + 1];
	const char *user, *pass;
	size_t user_len, pass_len;
	struct sasl_plain plain;
	enum account_route route;
	union mf_sockaddr up_addr;
	struct imap_login_cmd login;
	unsigned int seg;
	size_t seg_off;

	size_t rpos, rlen;
	size_t ooff, olen;
	size_t upos, ulen;
	struct imap_line line;
	uint8_t rbuf[FRONT_RBUF];
	char obuf[FRONT_OBUF];
	uint8_t ubuf[FRONT_UBUF];
};

static void front_run(struct session *s);

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
	io_uring_sqe_set_data64(sqe, uop_pack(&((struct imap_front *)s->front)->ops[kind], UOP_FRONT));
	sqe->flags |= IOSQE_IO_LINK;
	s->inflight++;
	sqe = worker_sqe(s->w);
	io_uring_prep_link_timeout(sqe, ts, 0);
	io_uring_sqe_set_data64(sqe, uop_pack(s, UOP_SESSION_AUX));
	s->inflight++;
}

static uint64_t client_ms_left(struct session *s, uint64_t floor)
{
	struct imap_front *f = s->front;
	uint64_t left = f->deadline_ms > s->w->now_ms ? f->deadline_ms - s->w->now_ms : 0;

	return left < floor ? floor : left;
}

static void c_recv(struct session *s)
{
	struct imap_front *f = s->front;
	struct io_uring_sqe *sqe = sqe_pair(s);

	f->rpos = f->rlen = 0;
	io_uring_prep_recv(sqe, s->cfd, f->rbuf, sizeof(f->rbuf), 0);
	set_ts(&f->cts, client_ms_left(s, 1));
	link_timeout(s, sqe, FO_CRECV, &f->cts);
}

static void c_flush(struct session *s)
{
	struct imap_front *f = s->front;
	struct io_uring_sqe *sqe = sqe_pair(s);

	io_uring_prep_send(sqe, s->cfd, f->obuf + f->ooff, f->olen - f->ooff, MSG_NOSIGNAL);
	set_ts(&f->cts, client_ms_left(s, FRONT_SEND_MIN_MS));
	link_timeout(s, sqe, FO_CSEND, &f->cts);
}

static void u_recv(struct session *s)
{
	struct imap_front *f = s->front;
	struct io_uring_sqe *sqe = sqe_pair(s);

	f->upos = f->ulen = 0;
	io_uring_prep_recv(sqe, s->ufd, f->ubuf, sizeof(f->ubuf), 0);
	/* A failed login takes the server seconds (Dovecot's auth failure
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
	struct imap_front *f = s->front;
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
	struct imap_front *f = s->front;

	f->after = FA_CLOSE;
	f->close_why = (uint8_t)why;
}

/* A BAD answer; errors beyond preauth_max_errors end the session. */
static void bad(struct session *s, const char *tag, const char *text)
{
	struct imap_front *f = s->front;

	reply(s, "%s BAD %s\r\n", tag, text);
	if (++f->errors > s->w->t.preauth_max_errors) {
		reply(s, "* BYE Too many invalid commands\r\n");
		close_after_reply(s, SE_PROTOCOL);
	}
}

static void wipe_creds(struct imap_front *f)
{
	imap_parser_wipe(&f->parser);
	sasl_plain_wipe(&f->plain);
	explicit_bzero(&f->login, sizeof(f->login));
	f->user = f->pass = NULL;
	f->user_len = f->pass_len = 0;
}

/* --- login: route and upstream --------------------------------------------- */

static void set_user(struct session *s, const char *name)
{
	free(s->user);
	s->user = strdup(name);
}

static void back_to_preauth(struct session *s)
{
	struct imap_front *f = s->front;

	wipe_creds(f);
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
	struct imap_front *f = s->front;
	char dst[MF_ADDRSTRLEN];

	mf_sockaddr_format(&f->up_addr.sa, dst, sizeof(dst));
	mf_log_warn("imap login user=%s up=%s failed: %s", s->user ? s->user : "-", dst, why);
	reply(s, "%s NO [UNAVAILABLE] Server unavailable, try again later\r\n", f->ctag);
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

/* Returns true when the upstream leg was started (stop reading the client). */
static bool start_login(struct session *s, const char *tag, size_t tag_len,
			const char *user, size_t user_len, const char *pass, size_t pass_len)
{
	struct imap_front *f = s->front;
	const struct mf_addr *dst;
	struct io_uring_sqe *sqe;
	char name[ACCOUNT_NAME_MAX + 1], err[128];

	if (tag_len > FRONT_TAG_MAX) {
		bad(s, tag, "Tag too long");
		goto fail;
	}
	memcpy(f->ctag, tag, tag_len);
	f->ctag[tag_len] = '\0';
	if (account_name_normalise(user, user_len, s->w->t.default_domain,
				   s->w->t.domain_equivalence, name, sizeof(name),
				   err, sizeof(err)) != MF_OK) {
		reply(s, "%s NO [AUTHENTICATIONFAILED] Authentication failed.\r\n", f->ctag);
		f->errors++;
		goto fail;
	}
	set_user(s, name);
	if (ledger_route(s, name, &f->route) != MF_OK) {
		reply(s, "%s NO [UNAVAILABLE] Account database unavailable, try again later\r\n",
		      f->ctag);
		goto fail;
	}
	s->route = (int8_t)f->route;
	f->up_addr = s->orig_dst;
	if (f->route == AR_UNAVAILABLE) {
		reply(s, "%s NO [UNAVAILABLE] account is being migrated, try again shortly\r\n",
		      f->ctag);
		goto fail;
	}
	if (f->route == AR_DESTINATION) {
		dst = s->orig_dst.sa.sa_family == AF_INET ? &s->w->t.dest4 : &s->w->t.dest6;
		if (dst->family == 0) {
			mf_log_warn("imap login user=%s: no destination address of this family",
				    name);
			reply(s, "%s NO [UNAVAILABLE] Server unavailable, try again later\r\n",
			      f->ctag);
			goto fail;
		}
		if (dst->family == AF_INET)
			f->up_addr.in.sin_addr = dst->u.v4;
		else
			f->up_addr.in6.sin6_addr = dst->u.v6;
	}
	f->user = user;
	f->user_len = user_len;
	f->pass = pass;
	f->pass_len = pass_len;
	s->ufd = upstream_socket(&s->client.sa, &f->up_addr.sa,
				 (enum mf_upstream_source)s->w->t.upstream_source);
	if (s->ufd < 0) {
		mf_log_warn("imap login user=%s: upstream socket: %s", name, strerror(errno));
		reply(s, "%s NO [UNAVAILABLE] Server unavailable, try again later\r\n", f->ctag);
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
	return false;
}

void imap_front_on_connect(struct session *s, int res)
{
	struct imap_front *f = s->front;

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

static void send_segment(struct session *s)
{
	struct imap_front *f = s->front;
	size_t start = f->seg ? f->login.seg_end[f->seg - 1] : 0;

	u_send(s, f->login.buf + start + f->seg_off,
	       f->login.seg_end[f->seg] - start - f->seg_off);
}

static void login_ok(struct session *s, const char *text)
{
	struct imap_front *f = s->front;
	struct ledger *l;
	char client[MF_ADDRSTRLEN], err[256];

	wipe_creds(f);
	reply(s, "%s OK %s\r\n", f->ctag, text);
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

static void login_no(struct session *s, const char *text)
{
	struct imap_front *f = s->front;

	reply(s, "%s NO %s\r\n", f->ctag, text);
	f->errors++;
	if (f->errors > s->w->t.preauth_max_errors) {
		reply(s, "* BYE Too many invalid commands\r\n");
		close_after_reply(s, SE_PROTOCOL);
	}
	back_to_preauth(s);
}

/* One backend line. Returns false when it was handled by leaving the
 * upstream phase or by sending (stop reading lines). */
static bool up_line(struct session *s)
{
	struct imap_front *f = s->front;
	struct imap_resp r;

	if (imap_resp_parse(f->line.buf, f->line.len, &r) != MF_OK) {
		up_fail(s, "garbage from server");
		return false;
	}
	switch (f->ustate) {
	case US_GREETING:
		if (r.kind != IMAP_RESP_UNTAGGED || r.status != IMAP_ST_OK) {
			up_fail(s, "bad greeting");
			return false;
		}
		if (imap_login_build(OUR_TAG, f->user, f->user_len, f->pass, f->pass_len,
				     imap_resp_text_has_cap(r.text, "LITERAL+"),
				     &f->login) != MF_OK) {
			up_fail(s, "credentials too long");
			return false;
		}
		f->seg = 0;
		f->seg_off = 0;
		f->ustate = f->login.n_seg > 1 ? US_CONT : US_REPLY;
		send_segment(s);
		return false;
	case US_CONT:
	case US_REPLY:
		if (r.kind == IMAP_RESP_UNTAGGED) {
			if (r.status == IMAP_ST_BYE) {
				up_fail(s, "BYE from server");
				return false;
			}
			return true;
		}
		if (r.kind == IMAP_RESP_CONTINUE) {
			if (f->ustate != US_CONT) {
				up_fail(s, "unexpected continuation");
				return false;
			}
			f->seg++;
			f->seg_off = 0;
			if (f->seg + 1 == f->login.n_seg)
				f->ustate = US_REPLY;
			send_segment(s);
			return false;
		}
		if (r.tag_len != strlen(OUR_TAG) || memcmp(r.tag, OUR_TAG, r.tag_len) != 0) {
			up_fail(s, "reply with a foreign tag");
			return false;
		}
		if (r.status == IMAP_ST_OK)
			login_ok(s, r.text);
		else
			login_no(s, r.text);
		return false;
	default:
		up_fail(s, "unexpected state");
		return false;
	}
}

static void up_process(struct session *s)
{
	struct imap_front *f = s->front;

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
	struct imap_front *f = s->front;

	if (f->handoff_step == 0) {
		f->handoff_step = 1;
		/* Backend bytes after its tagged OK go to the client first. */
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
	imap_front_free(s);
	session_relay(s);
}

/* --- commands ------------------------------------------------------------- */

static bool is_string(const struct imap_arg *a)
{
	return a->type == IMAP_ARG_ATOM || a->type == IMAP_ARG_QUOTED ||
	       a->type == IMAP_ARG_LITERAL || a->type == IMAP_ARG_NIL;
}

/* PLAIN response in base64 (SASL-IR or the line after "+ "). */
static bool auth_plain(struct session *s, const char *tag, size_t tag_len,
		       const char *b64, size_t b64_len)
{
	struct imap_front *f = s->front;
	uint8_t msg[3 * (SASL_FIELD_MAX + 1)];
	char t[FRONT_TAG_MAX + 1];
	size_t n = 0;
	int rc;

	/* The tag may live in the parser's arena, which is wiped below. */
	if (tag_len > FRONT_TAG_MAX) {
		bad(s, tag, "Tag too long");
		imap_parser_wipe(&f->parser);
		return false;
	}
	memcpy(t, tag, tag_len);
	t[tag_len] = '\0';
	tag = t;
	rc = sasl_b64_decode(b64, b64_len, msg, sizeof(msg), &n);
	if (rc == MF_OK)
		rc = sasl_plain_parse(msg, n, &f->plain);
	explicit_bzero(msg, sizeof(msg));
	imap_parser_wipe(&f->parser);
	if (rc != MF_OK) {
		bad(s, tag, "Invalid SASL PLAIN response");
		return false;
	}
	if (f->plain.authzid_len > 0 && strcmp(f->plain.authzid, f->plain.authcid) != 0) {
		reply(s, "%.*s NO [AUTHORIZATIONFAILED] Authorization identity not supported\r\n",
		      (int)tag_len, tag);
		sasl_plain_wipe(&f->plain);
		return false;
	}
	return start_login(s, tag, tag_len, f->plain.authcid, f->plain.authcid_len,
			   f->plain.passwd, f->plain.passwd_len);
}

/* Returns true when the command started the upstream leg. */
static bool command(struct session *s, const struct imap_cmd *c)
{
	struct imap_front *f = s->front;
	const char *tag = c->tag;
	int tl = (int)c->tag_len;

	if (c->kind == IMAP_CMD_SASL_LINE) {
		f->auth_pending = false;
		if (c->line_len == 1 && c->line[0] == '*') {
			bad(s, f->ctag, "Authentication cancelled");
			return false;
		}
		return auth_plain(s, f->ctag, strlen(f->ctag), c->line, c->line_len);
	}
	switch (c->kind) {
	case IMAP_CMD_CAPABILITY:
		reply(s, "%s%.*s OK Capability completed.\r\n", capability, tl, tag);
		return false;
	case IMAP_CMD_NOOP:
		reply(s, "%.*s OK NOOP completed.\r\n", tl, tag);
		return false;
	case IMAP_CMD_LOGOUT:
		reply(s, "* BYE Logging out\r\n%.*s OK Logout completed.\r\n", tl, tag);
		close_after_reply(s, SE_LOGOUT);
		return false;
	case IMAP_CMD_ID:
		reply(s, "* ID NIL\r\n%.*s OK ID completed.\r\n", tl, tag);
		return false;
	case IMAP_CMD_STARTTLS:
		bad(s, tag, "STARTTLS is not available");
		return false;
	case IMAP_CMD_LOGIN:
		if (c->n_args != 2 || !is_string(&c->args[0]) || !is_string(&c->args[1])) {
			bad(s, tag, "LOGIN needs a user name and a password");
			imap_parser_wipe(&f->parser);
			return false;
		}
		return start_login(s, tag, c->tag_len, c->args[0].str, c->args[0].len,
				   c->args[1].str, c->args[1].len);
	case IMAP_CMD_AUTHENTICATE:
		if (c->n_args < 1 || c->n_args > 2 || c->args[0].type != IMAP_ARG_ATOM ||
		    (c->n_args == 2 && c->args[1].type != IMAP_ARG_ATOM)) {
			bad(s, tag, "AUTHENTICATE needs a mechanism");
			imap_parser_wipe(&f->parser);
			return false;
		}
		if (strcasecmp(c->args[0].str, "PLAIN") != 0) {
			reply(s, "%.*s NO Unsupported authentication mechanism\r\n", tl, tag);
			f->errors++;
			imap_parser_wipe(&f->parser);
			return false;
		}
		if (c->n_args == 2) {
			if (strcmp(c->args[1].str, "=") == 0)
				return auth_plain(s, tag, c->tag_len, "", 0);
			return auth_plain(s, tag, c->tag_len, c->args[1].str, c->args[1].len);
		}
		if (c->tag_len > FRONT_TAG_MAX) {
			bad(s, tag, "Tag too long");
			return false;
		}
		memcpy(f->ctag, tag, c->tag_len);
		f->ctag[c->tag_len] = '\0';
		if (imap_parser_expect_sasl_line(&f->parser) != MF_OK) {
			bad(s, tag, "Internal error");
			return false;
		}
		f->auth_pending = true;
		reply(s, "+ \r\n");
		return false;
	default:
		bad(s, tag, "Command not allowed before login");
		return false;
	}
}

static void parse_error(struct session *s, const struct imap_cmd *c)
{
	struct imap_front *f = s->front;
	char tag[FRONT_TAG_MAX + 1] = "*";

	if (f->auth_pending) {
		f->auth_pending = false;
		snprintf(tag, sizeof(tag), "%s", f->ctag);
	} else if (c->tag != NULL && c->tag_len <= FRONT_TAG_MAX) {
		memcpy(tag, c->tag, c->tag_len);
		tag[c->tag_len] = '\0';
	}
	if (c->must_close) {
		reply(s, "* BYE %s\r\n", imap_err_str(c->err));
		close_after_reply(s, SE_PROTOCOL);
		return;
	}
	if (c->err == IMAP_ERR_LITERAL_TOO_BIG)
		bad(s, tag, "[TOOBIG] Literal too big");
	else
		bad(s, tag, imap_err_str(c->err));
}

static void front_run(struct session *s)
{
	struct imap_front *f = s->front;

	for (;;) {
		struct imap_cmd c;
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
		rc = imap_parser_feed(&f->parser, f->rbuf + f->rpos, f->rlen - f->rpos, &used, &c);
		f->rpos += used;
		if (rc == MF_AGAIN) {
			if (imap_parser_continuation_due(&f->parser))
				reply(s, "+ OK\r\n");
			continue;
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
	struct imap_front *f = s->front;

	if (kind == FO_CRECV) {
		if (res > 0) {
			f->rpos = 0;
			f->rlen = (size_t)res;
			worker_lru_touch(s->w, s);
			front_run(s);
		} else if (res == 0) {
			session_abort(s, SE_EOF, 0, false);
		} else if (res == -ECANCELED && !f->timed_out) {
			f->timed_out = true;
			reply(s, "* BYE Pre-authentication timeout\r\n");
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
	struct imap_front *f = s->front;

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
	f->seg_off += (size_t)res;
	if (f->seg_off < f->login.seg_end[f->seg] - (f->seg ? f->login.seg_end[f->seg - 1] : 0)) {
		send_segment(s);
		return;
	}
	if (f->ustate == US_REPLY && f->seg + 1 == f->login.n_seg)
		/* The whole command is on its way: the password is no longer
		 * needed here. */
		wipe_creds(f);
	f->seg_off = 0;
	up_process(s);
}

void imap_front_on_cqe(struct front_op *op, int res)
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

int imap_front_start(struct session *s)
{
	struct imap_front *f = calloc(1, sizeof(*f));
	struct imap_limits lim;

	if (f == NULL)
		return MF_ERROR;
	imap_limits_get_default(&lim);
	lim.max_nonsync = lim.max_literal; /* LITERAL+ is advertised */
	if (imap_parser_init(&f->parser, &lim) != MF_OK) {
		free(f);
		errno = ENOMEM;
		return MF_ERROR;
	}
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

void imap_front_free(struct session *s)
{
	struct imap_front *f = s->front;

	if (f == NULL)
		return;
	wipe_creds(f);
	imap_parser_free(&f->parser);
	explicit_bzero(f->rbuf, sizeof(f->rbuf));
	explicit_bzero(f->ubuf, sizeof(f->ubuf));
	free(f);
	s->front = NULL;
}

const struct front_ops imap_front_ops = {
	.name = "imap",
	.start = imap_front_start,
	.on_cqe = imap_front_on_cqe,
	.on_connect = imap_front_on_connect,
	.free = imap_front_free,
};
