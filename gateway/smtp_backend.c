/* smtp_backend.c — the SMTP front end's conversation with the backend it
 * chose: connect, 220, EHLO/HELO with the client's name, XCLIENT when
 * configured and offered, then whatever the client's transaction needs
 * (a quiet RSET of a stale transaction, MAIL, RCPT), DATA and its content,
 * RSET, QUIT; on submission ports AUTH PLAIN. See smtp_front.h.
 *
 * Backend lines come from front_io's bounded line reader and are re-framed
 * (CRLF) through smtp_reply.h's parser, which checks the code of every line
 * of a reply; what the client is owed is relayed line by line with its
 * text unchanged. */
#include "smtp_state.h"
#include "log.h"
#include "mf.h"
#include "session.h"
#include "worker.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void send_ucmd(struct session *s, enum smtp_ustate st)
{
	struct smtp_front *f = s->front;

	f->ustate = (uint8_t)st;
	f->ucmd_off = 0;
	front_io_upstream_send(s, f->ucmd, f->ucmd_len);
}

void smtp_up_send(struct session *s, enum smtp_ustate st, const char *fmt, ...)
{
	struct smtp_front *f = s->front;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(f->ucmd, sizeof(f->ucmd), fmt, ap);
	va_end(ap);
	if (n <= 0 || (size_t)n >= sizeof(f->ucmd)) {
		smtp_up_fail(s, "command too long");
		return;
	}
	f->ucmd_len = (size_t)n;
	send_ucmd(s, st);
}

void smtp_up_drop(struct session *s)
{
	struct smtp_front *f = s->front;

	if (s->ufd >= 0) {
		close(s->ufd);
		s->ufd = -1;
	}
	f->ustate = UP_NONE;
	f->up_route = -1;
	f->up_mail = false;
	f->up_dirty = false;
	f->io.upos = f->io.ulen = 0;
}

static void wipe_auth(struct smtp_front *f)
{
	sasl_plain_wipe(&f->plain);
	explicit_bzero(f->luser, sizeof(f->luser));
	f->luser_len = 0;
	explicit_bzero(f->ucmd, sizeof(f->ucmd));
}

/* --- failures ------------------------------------------------------------- */

static void quit_done(struct session *s)
{
	front_io_reply(s, "221 2.0.0 Bye\r\n");
	front_io_close_after_reply(s, SE_LOGOUT);
	smtp_up_drop(s);
	smtp_run(s);
}

static void connect_route(struct session *s, enum account_route route);

void smtp_up_fail(struct session *s, const char *why)
{
	struct smtp_front *f = s->front;
	enum smtp_ustate st = (enum smtp_ustate)f->ustate;

	if (st == UP_QUIT_CLOSE) {
		quit_done(s);
		return;
	}
	if (st == UP_QUIT_SWITCH) {
		/* The old backend is done with either way. */
		connect_route(s, (enum account_route)f->next_route);
		return;
	}
	front_io_log_up_fail(s, why);
	smtp_up_drop(s);
	if (f->submission) {
		/* RFC 4954 §6: a temporary failure, never "bad password". */
		wipe_auth(f);
		front_io_reply(s, "454 4.7.0 Temporary authentication failure, try again later\r\n");
		s->phase = SP_PREAUTH;
		smtp_run(s);
		return;
	}
	/* The sender retries the whole transaction later: nothing was
	 * acknowledged that the backend did not take (RFC 5321 §3.8). */
	front_io_reply(s, "421 4.3.2 Service not available, closing transmission channel\r\n");
	front_io_close_after_reply(s, SE_SERVER_RESET);
	smtp_run(s);
}

/* --- connection ------------------------------------------------------------ */

static void connect_route(struct session *s, enum account_route route)
{
	struct smtp_front *f = s->front;

	smtp_up_drop(s);
	if (front_io_connect(s, route) == FRF_OK) {
		f->up_route = (int8_t)route;
		f->ustate = UP_GREETING;
		return;
	}
	smtp_up_fail(s, "no connection");
}

void smtp_on_connect(struct session *s, int res)
{
	struct smtp_front *f = s->front;

	if (front_io_on_connect(s, res) != MF_OK)
		return;
	f->io.upos = f->io.ulen = 0;
	smtp_reply_parser_init(&f->rp);
	memset(&f->ehlo, 0, sizeof(f->ehlo));
	f->xclient_done = false;
	f->ustate = UP_GREETING;
	front_io_upstream_recv(s);
}

static void up_next(struct session *s);

void smtp_up_rcpt(struct session *s, enum account_route route)
{
	struct smtp_front *f = s->front;

	if (s->ufd < 0 || f->ustate != UP_IDLE) {
		connect_route(s, route);
		return;
	}
	if (f->up_route != (int8_t)route) {
		/* Another backend's transaction: say goodbye to this one. */
		f->next_route = (int8_t)route;
		smtp_up_send(s, UP_QUIT_SWITCH, "QUIT\r\n");
		return;
	}
	up_next(s);
}

/* The backend is ready after its EHLO (or a quiet RSET, or MAIL). */
static void up_next(struct session *s)
{
	struct smtp_front *f = s->front;
	uint8_t msg[2 * (SASL_FIELD_MAX + 1)];
	char b64[sizeof(f->ucmd)];
	size_t n = 0, b64_len;
	int rc;

	if (!f->submission) {
		if (f->up_dirty)
			smtp_up_send(s, UP_RSET_QUIET, "RSET\r\n");
		else if (!f->up_mail)
			smtp_up_send(s, UP_MAIL, "%.*s", (int)f->mail_len, f->mail_cmd);
		else
			smtp_up_send(s, UP_RCPT, "%.*s", (int)f->rcpt_len, f->rcpt_cmd);
		return;
	}
	/* AUTH PLAIN with an initial response: "" NUL authcid NUL passwd. */
	msg[n++] = 0;
	memcpy(msg + n, f->plain.authcid, f->plain.authcid_len);
	n += f->plain.authcid_len;
	msg[n++] = 0;
	memcpy(msg + n, f->plain.passwd, f->plain.passwd_len);
	n += f->plain.passwd_len;
	rc = sasl_b64_encode(msg, n, b64, sizeof(b64) - 16, &b64_len);
	explicit_bzero(msg, sizeof(msg));
	if (rc == MF_OK)
		smtp_up_send(s, UP_AUTH, "AUTH PLAIN %s\r\n", b64);
	explicit_bzero(b64, sizeof(b64));
	if (rc != MF_OK)
		smtp_up_fail(s, "credentials not replayable");
}

static void send_ehlo(struct session *s)
{
	struct smtp_front *f = s->front;

	memset(&f->ehlo, 0, sizeof(f->ehlo));
	smtp_up_send(s, UP_EHLO, "%s %s\r\n", f->esmtp ? "EHLO" : "HELO", f->helo);
}

/* XCLIENT ADDR= (and NAME= when offered): the client's address as Postfix
 * spells it. */
static void send_xclient(struct session *s)
{
	struct smtp_front *f = s->front;
	char ip[INET6_ADDRSTRLEN] = "";
	bool v6 = s->client.sa.sa_family == AF_INET6;

	if (v6)
		inet_ntop(AF_INET6, &s->client.in6.sin6_addr, ip, sizeof(ip));
	else
		inet_ntop(AF_INET, &s->client.in.sin_addr, ip, sizeof(ip));
	smtp_up_send(s, UP_XCLIENT, "XCLIENT ADDR=%s%s%s\r\n", v6 ? "IPV6:" : "", ip,
		     (f->ehlo.xclient & SMTP_XCLIENT_NAME) ? " NAME=[UNAVAILABLE]" : "");
}

/* --- replies ---------------------------------------------------------------- */

/* io.line (CR stripped) as a reply line of smtp_reply.h, with CRLF. */
static int reframe(struct smtp_front *f, struct smtp_reply_line *l)
{
	enum smtp_reply_error e;
	size_t n = f->io.line.len, used = 0;

	if (n + 2 > sizeof(f->rline))
		return MF_ERROR;
	memcpy(f->rline, f->io.line.buf, n);
	f->rline[n] = '\r';
	f->rline[n + 1] = '\n';
	if (smtp_reply_feed(&f->rp, f->rline, n + 2, &used, l, &e) != MF_OK || used != n + 2)
		return MF_ERROR;
	return MF_OK;
}

static void relay_line(struct session *s, const struct smtp_reply_line *l)
{
	front_io_reply(s, "%.*s", (int)l->raw_len, (const char *)l->raw);
}

/* A reply for the client is complete: back to its commands. */
static void to_client(struct session *s)
{
	struct smtp_front *f = s->front;

	f->ustate = UP_IDLE;
	smtp_run(s);
}

static bool ok2(const struct smtp_reply_line *l)
{
	return l->code >= 200 && l->code < 300;
}

/* Submission: the backend's answer to AUTH PLAIN, relayed line by line. */
static void auth_done(struct session *s, const struct smtp_reply_line *l)
{
	struct smtp_front *f = s->front;

	/* The source said 235: only now may the password start a copy. */
	if (l->code == 235)
		front_io_login_creds(s, f->plain.authcid, f->plain.authcid_len,
				     f->plain.passwd, f->plain.passwd_len);
	wipe_auth(f);
	if (l->code == 235) {
		f->ustate = UP_IDLE;
		front_io_login_done(s);
		return;
	}
	/* Wrong password or refused: the client has the backend's words. */
	front_io_login_rejected(s);
	smtp_up_drop(s);
	s->phase = SP_PREAUTH;
	if (++f->io.errors > s->w->t.preauth_max_errors)
		front_io_close_after_reply(s, SE_PROTOCOL);
	smtp_run(s);
}

bool smtp_up_line(struct session *s)
{
	struct smtp_front *f = s->front;
	struct smtp_reply_line l;

	if (reframe(f, &l) != MF_OK) {
		smtp_up_fail(s, "garbage from server");
		return false;
	}
	switch ((enum smtp_ustate)f->ustate) {
	case UP_GREETING:
		if (!l.last)
			return true;
		if (l.code != 220) {
			smtp_up_fail(s, "refused greeting");
			return false;
		}
		send_ehlo(s);
		return false;
	case UP_EHLO:
		if (l.code == 250)
			(void)smtp_ehlo_add_line(&f->ehlo, &l);
		if (!l.last)
			return true;
		if (l.code != 250) {
			smtp_up_fail(s, "EHLO refused");
			return false;
		}
		if (front_io_backend_tls(s) == MF_BACKEND_TLS_STARTTLS && s->tls[1] == NULL) {
			smtp_up_send(s, UP_STARTTLS, "STARTTLS\r\n");
			return false;
		}
		if (s->w->t.smtp_xclient && !f->xclient_done && f->ehlo.has_xclient &&
		    (f->ehlo.xclient & SMTP_XCLIENT_ADDR))
			send_xclient(s);
		else
			up_next(s);
		return false;
	case UP_STARTTLS:
		if (!l.last)
			return true;
		if (l.code != 220) {
			smtp_up_fail(s, "STARTTLS refused");
			return false;
		}
		/* RFC 3207 §4.2: what the server said before TLS is forgotten. */
		if (front_io_upstream_starttls(s) != MF_OK)
			return false;
		send_ehlo(s);
		return false;
	case UP_XCLIENT:
		if (!l.last)
			return true;
		if (l.code != 220) {
			smtp_up_fail(s, "XCLIENT refused");
			return false;
		}
		/* Postfix starts a new session: EHLO again. */
		f->xclient_done = true;
		send_ehlo(s);
		return false;
	case UP_RSET_QUIET:
		if (!l.last)
			return true;
		if (!ok2(&l)) {
			smtp_up_fail(s, "RSET refused");
			return false;
		}
		f->up_dirty = false;
		up_next(s);
		return false;
	case UP_MAIL:
		if (ok2(&l)) {
			if (!l.last)
				return true;
			f->up_mail = true;
			up_next(s);
			return false;
		}
		/* The backend refused the sender: its words answer the RCPT. */
		relay_line(s, &l);
		if (!l.last)
			return true;
		f->rcpts_refused++;
		f->refused_total++;
		if (f->rcpts_ok == 0)
			f->txn_route = -1;
		to_client(s);
		return false;
	case UP_RCPT:
		relay_line(s, &l);
		if (!l.last)
			return true;
		if (ok2(&l)) {
			f->rcpts_ok++;
			f->rcpts_total++;
		} else {
			f->rcpts_refused++;
			f->refused_total++;
			/* Nothing accepted yet: another backend may still take
			 * the transaction. */
			if (f->rcpts_ok == 0)
				f->txn_route = -1;
		}
		to_client(s);
		return false;
	case UP_DATA:
		relay_line(s, &l);
		if (!l.last)
			return true;
		if (l.code == 354) {
			smtp_data_init(&f->data);
			f->cstate = CS_DATA;
			f->ustate = UP_CONTENT;
			smtp_run(s);
			return false;
		}
		to_client(s);
		return false;
	case UP_DATA_END:
		relay_line(s, &l);
		if (!l.last)
			return true;
		/* Delivered or refused, the backend's transaction is over. */
		f->up_mail = false;
		smtp_log_txn(s, l.code, f->data.octets);
		smtp_txn_reset(f);
		to_client(s);
		return false;
	case UP_RSET:
		relay_line(s, &l);
		if (!l.last)
			return true;
		f->up_mail = false;
		f->up_dirty = false;
		to_client(s);
		return false;
	case UP_BDAT_DATA:
	case UP_BDAT_REPLY:
		return smtp_bdat_line(s, &l);
	case UP_AUTH:
		relay_line(s, &l);
		if (!l.last)
			return true;
		auth_done(s, &l);
		return false;
	case UP_QUIT_SWITCH:
		if (!l.last)
			return true;
		connect_route(s, (enum account_route)f->next_route);
		return false;
	case UP_QUIT_CLOSE:
		if (!l.last)
			return true;
		quit_done(s);
		return false;
	default:
		smtp_up_fail(s, "unexpected reply");
		return false;
	}
}

/* --- sends ------------------------------------------------------------------ */

void smtp_up_content(struct session *s)
{
	struct smtp_front *f = s->front;

	front_io_upstream_send(s, f->io.rbuf + f->io.rpos, f->data_end - f->io.rpos);
}

void smtp_up_sent(struct session *s, size_t n)
{
	struct smtp_front *f = s->front;

	if (f->ustate == UP_CHUNK) {
		smtp_bdat_sent(s, n);
		return;
	}
	if (f->ustate == UP_CONTENT) {
		f->io.rpos += n;
		s->dir[0].bytes += n;
		if (f->io.rpos < f->data_end) {
			smtp_up_content(s);
		} else if (f->data_last) {
			f->ustate = UP_DATA_END;
			front_io_upstream_process(s);
		} else {
			smtp_run(s);
		}
		return;
	}
	f->ucmd_off += n;
	if (f->ucmd_off < f->ucmd_len) {
		front_io_upstream_send(s, f->ucmd + f->ucmd_off, f->ucmd_len - f->ucmd_off);
		return;
	}
	if (f->ustate == UP_BDAT_HDR) {
		smtp_bdat_sent(s, 0);
		return;
	}
	if (f->ustate == UP_AUTH) {
		/* AUTH is on its way: the password is no longer needed here,
		 * unless the source's 235 is to start a copy with it (then
		 * auth_done wipes it). The command goes either way. */
		if (front_io_creds_wanted(s))
			explicit_bzero(f->ucmd, sizeof(f->ucmd));
		else
			wipe_auth(f);
	}
	front_io_upstream_process(s);
}
