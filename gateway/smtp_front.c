/* smtp_front.c — the SMTP front end's client side: greeting, commands,
 * routing of recipients and logins, message content; see smtp_front.h.
 * AUTH is smtp_auth.c's, the backend conversation smtp_backend.c's, the
 * plumbing front_io.c's. */
#include "smtp_front.h"
#include "smtp_state.h"
#include "account.h"
#include "log.h"
#include "mf.h"
#include "netaddr.h"
#include "session.h"
#include "stats.h"
#include "worker.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The parser's buffer contract: a command line fits the receive buffer,
 * and an AUTH line may fill it (auth_line_max is set to its size). */
_Static_assert(FRONT_IO_RBUF >= SMTP_LINE_MAX_DEFAULT, "SMTP receive buffer");

/* "[198.18.11.2]" or "[IPv6:2001:db8::2]": the name we answer as (the
 * source's address; mirroring its banner comes later). */
static void host_literal(const union mf_sockaddr *a, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "";

	if (a->sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &a->in6.sin6_addr, ip, sizeof(ip));
		snprintf(out, len, "[IPv6:%s]", ip);
	} else {
		inet_ntop(AF_INET, &a->in.sin_addr, ip, sizeof(ip));
		snprintf(out, len, "[%s]", ip);
	}
}

void smtp_txn_reset(struct smtp_front *f)
{
	f->mail_len = 0;
	f->rcpt_len = 0;
	f->rcpts_ok = f->rcpts_refused = 0;
	f->txn_route = -1;
	f->bdat = f->xlate = false;
	if (f->up_mail) {
		/* The backend still holds this transaction. */
		f->up_dirty = true;
		f->up_mail = false;
	}
}

void smtp_log_txn(struct session *s, unsigned int code, uint64_t size)
{
	struct smtp_front *f = s->front;
	char client[MF_ADDRSTRLEN];

	f->txns++;
	if (code >= 200 && code < 300)
		f->txns_ok++;
	if (f->txn_route >= 0)
		s->route = f->txn_route;
	stats_smtp_txn(s->w->stats, stats_backend_of_route(f->txn_route), code >= 200 && code < 300,
		       f->rcpts_ok, f->rcpts_refused);
	mf_sockaddr_format(&s->client.sa, client, sizeof(client));
	mf_log_info("smtp txn client=%s route=%s rcpts=%u refused=%u size=%llu reply=%u",
		    client,
		    f->txn_route >= 0 ? account_route_name((enum account_route)f->txn_route) : "-",
		    f->rcpts_ok, f->rcpts_refused, (unsigned long long)size, code);
}

void smtp_err_reply(struct session *s, const char *line)
{
	struct smtp_front *f = s->front;

	if (++f->io.errors > s->w->t.preauth_max_errors) {
		front_io_reply(s, "421 4.7.0 Too many errors, closing connection\r\n");
		front_io_close_after_reply(s, SE_PROTOCOL);
		return;
	}
	front_io_reply(s, "%s\r\n", line);
}

void smtp_wipe_creds(struct smtp_front *f)
{
	sasl_plain_wipe(&f->plain);
	explicit_bzero(f->luser, sizeof(f->luser));
	f->luser_len = 0;
}

/* --- EHLO, MAIL, RCPT, DATA ------------------------------------------------- */

static void helo(struct session *s, const struct smtp_cmd *c, bool esmtp)
{
	struct smtp_front *f = s->front;
	char name[INET6_ADDRSTRLEN + 8];

	if (c->arg_len == 0 || c->arg_len >= sizeof(f->helo)) {
		smtp_err_reply(s, "501 5.5.4 Syntax: EHLO hostname");
		return;
	}
	memcpy(f->helo, c->arg, c->arg_len);
	f->helo[c->arg_len] = '\0';
	f->esmtp = esmtp;
	smtp_txn_reset(f);
	host_literal(&s->orig_dst, name, sizeof(name));
	if (!esmtp) {
		front_io_reply(s, "250 %s\r\n", name);
		return;
	}
	/* CHUNKING only where this front end carries BDAT itself (MTA ports):
	 * a submission session is relayed after AUTH. */
	front_io_reply(s, "250-%s\r\n250-PIPELINING\r\n%s%s250-8BITMIME\r\n"
		       "250 ENHANCEDSTATUSCODES\r\n",
		       name, front_io_can_starttls(s) ? "250-STARTTLS\r\n" : "",
		       f->submission ? "250-AUTH PLAIN LOGIN\r\n" : "250-CHUNKING\r\n");
}

static void mail(struct session *s, const struct smtp_cmd *c)
{
	struct smtp_front *f = s->front;

	if (f->helo[0] == '\0') {
		smtp_err_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	if (f->submission) {
		smtp_err_reply(s, "530 5.7.0 Authentication required");
		return;
	}
	if (f->mail_len != 0) {
		smtp_err_reply(s, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	if (c->raw_len > sizeof(f->mail_cmd)) {
		smtp_err_reply(s, "500 5.5.4 Error: command too long");
		return;
	}
	/* Replayed verbatim, parameters included, once a backend is chosen. */
	memcpy(f->mail_cmd, c->raw, c->raw_len);
	f->mail_len = c->raw_len;
	front_io_reply(s, "250 2.1.0 Ok\r\n");
}

/* The account a recipient belongs to, as the ledger names it; false when
 * the address is nothing a login could be (quoted local part, address
 * literal that does not normalise): the source decides about those. */
static bool rcpt_account(struct session *s, const struct smtp_path *p, char *name, size_t len)
{
	char addr[SMTP_LOCAL_MAX + SMTP_DOMAIN_MAX + 2], err[128];
	int n;

	if (p->postmaster)
		n = snprintf(addr, sizeof(addr), "postmaster");
	else if (p->quoted_local || p->local_len > SMTP_LOCAL_MAX || p->domain_len > SMTP_DOMAIN_MAX)
		return false;
	else
		n = snprintf(addr, sizeof(addr), "%.*s@%.*s", (int)p->local_len,
			     (const char *)p->local, (int)p->domain_len, (const char *)p->domain);
	if (n <= 0 || (size_t)n >= sizeof(addr))
		return false;
	return account_name_normalise(addr, (size_t)n, s->w->t.default_domain,
				      s->w->t.domain_equivalence, name, len, err,
				      sizeof(err)) == MF_OK;
}

/* Returns true when the backend conversation was started. */
static bool rcpt(struct session *s, const struct smtp_cmd *c)
{
	struct smtp_front *f = s->front;
	char name[ACCOUNT_NAME_MAX + 1];
	enum account_route route = AR_SOURCE;

	if (f->mail_len == 0) {
		smtp_err_reply(s, "503 5.5.1 Error: need MAIL command");
		return false;
	}
	if (c->raw_len > sizeof(f->rcpt_cmd)) {
		smtp_err_reply(s, "500 5.5.4 Error: command too long");
		return false;
	}
	if (rcpt_account(s, &c->path, name, sizeof(name)) &&
	    front_io_route(s, name, &route) != MF_OK) {
		f->rcpts_refused++;
		f->refused_total++;
		front_io_reply(s, "451 4.3.0 Account database unavailable, try again later\r\n");
		return false;
	}
	if (route == AR_UNAVAILABLE) {
		f->rcpts_refused++;
		f->refused_total++;
		front_io_reply(s, "451 4.2.0 Mailbox is being migrated, try again later\r\n");
		return false;
	}
	if (f->txn_route >= 0 && f->txn_route != (int8_t)route) {
		/* DESIGN.md: the first backend's recipients only; the sender
		 * retries this one in a transaction of its own. */
		f->rcpts_refused++;
		f->refused_total++;
		front_io_reply(s, "451 4.3.0 Recipient on another server, "
			       "retry it in a separate transaction\r\n");
		return false;
	}
	f->txn_route = (int8_t)route;
	memcpy(f->rcpt_cmd, c->raw, c->raw_len);
	f->rcpt_len = c->raw_len;
	smtp_up_rcpt(s, route);
	return true;
}

static bool data(struct session *s)
{
	struct smtp_front *f = s->front;

	if (f->mail_len == 0) {
		smtp_err_reply(s, "503 5.5.1 Error: need MAIL command");
		return false;
	}
	if (f->rcpts_ok == 0 || s->ufd < 0) {
		smtp_err_reply(s, "554 5.5.1 Error: no valid recipients");
		return false;
	}
	smtp_up_send(s, UP_DATA, "DATA\r\n");
	return true;
}

static bool rset(struct session *s)
{
	struct smtp_front *f = s->front;
	bool forward = s->ufd >= 0 && f->ustate == UP_IDLE && f->up_mail;

	smtp_txn_reset(f);
	if (!forward) {
		front_io_reply(s, "250 2.0.0 Ok\r\n");
		return false;
	}
	f->up_dirty = false;
	smtp_up_send(s, UP_RSET, "RSET\r\n");
	return true;
}

static bool quit(struct session *s)
{
	struct smtp_front *f = s->front;

	if (s->ufd >= 0 && f->ustate == UP_IDLE) {
		smtp_up_send(s, UP_QUIT_CLOSE, "QUIT\r\n");
		return true;
	}
	front_io_reply(s, "221 2.0.0 Bye\r\n");
	front_io_close_after_reply(s, SE_LOGOUT);
	return false;
}

/* RFC 3207: answer 220, drop what the client pipelined in plaintext
 * (front_io_starttls), handshake, and forget the EHLO and any transaction
 * (§4.2): the client starts over with EHLO. Only between transactions and
 * before a backend is chosen, so nothing said in plaintext carries over. */
static void smtp_starttls(struct session *s)
{
	struct smtp_front *f = s->front;

	if (!front_io_can_starttls(s)) {
		smtp_err_reply(s, s->tls[0] != NULL ? "503 5.5.1 Error: TLS already active"
						    : "454 4.7.0 TLS not available");
		return;
	}
	if (f->mail_len > 0 || s->ufd >= 0) {
		smtp_err_reply(s, "503 5.5.1 Error: STARTTLS only before the first MAIL");
		return;
	}
	front_io_reply(s, "220 2.0.0 Ready to start TLS\r\n");
	front_io_starttls(s);
	f->helo[0] = '\0';
	f->esmtp = false;
	smtp_txn_reset(f);
}

/* --- dispatch ---------------------------------------------------------------- */

/* Returns true when the command started the backend conversation (the
 * client is answered when it completes). */
static bool command(struct session *s, struct smtp_cmd *c)
{
	struct smtp_front *f = s->front;

	if (f->bdat) {
		/* RFC 3030 §2: a BDAT transaction takes only more BDATs. */
		if (c->type == SMTP_CMD_MAIL || c->type == SMTP_CMD_RCPT ||
		    c->type == SMTP_CMD_DATA) {
			smtp_err_reply(s, "503 5.5.1 Error: BDAT transaction in progress");
			return false;
		}
		/* A backend inside DATA (smtp_bdat.c) is aborted by dropping it. */
		if (f->xlate && (c->type == SMTP_CMD_RSET || c->type == SMTP_CMD_QUIT ||
				 c->type == SMTP_CMD_EHLO || c->type == SMTP_CMD_HELO))
			smtp_up_drop(s);
	}
	switch (c->type) {
	case SMTP_CMD_EHLO:
	case SMTP_CMD_HELO:
		helo(s, c, c->type == SMTP_CMD_EHLO);
		return false;
	case SMTP_CMD_MAIL:
		mail(s, c);
		return false;
	case SMTP_CMD_RCPT:
		return rcpt(s, c);
	case SMTP_CMD_DATA:
		return data(s);
	case SMTP_CMD_BDAT:
		return smtp_bdat(s, c);
	case SMTP_CMD_RSET:
		return rset(s);
	case SMTP_CMD_NOOP:
		front_io_reply(s, "250 2.0.0 Ok\r\n");
		return false;
	case SMTP_CMD_QUIT:
		return quit(s);
	case SMTP_CMD_STARTTLS:
		smtp_starttls(s);
		return false;
	case SMTP_CMD_AUTH:
	case SMTP_CMD_AUTH_DATA:
	case SMTP_CMD_AUTH_CANCEL:
		return smtp_auth(s, c);
	case SMTP_CMD_VRFY:
		front_io_reply(s, "252 2.0.0 Cannot VRFY user, but will accept message "
			       "and attempt delivery\r\n");
		return false;
	case SMTP_CMD_EXPN:
		smtp_err_reply(s, "502 5.5.1 Error: command not implemented");
		return false;
	case SMTP_CMD_HELP:
		front_io_reply(s, "214 2.0.0 See RFC 5321\r\n");
		return false;
	default:
		smtp_err_reply(s, "500 5.5.2 Error: command not recognized");
		return false;
	}
}

static void parse_error(struct session *s, struct smtp_cmd *c)
{
	struct smtp_front *f = s->front;
	enum smtp_parse_error e = c->error;
	bool resync = c->resync;
	const char *why = smtp_parse_error_str(e);
	char line[160];

	f->auth_pending = AW_NONE;
	smtp_wipe_creds(f);
	/* A malformed line may still hold a secret: it was consumed, wipe
	 * (this zeroes *c too). */
	if (c->raw != NULL)
		smtp_cmd_wipe(c);
	if (e == SMTP_PERR_LINE_TOO_LONG) {
		front_io_reply(s, "500 5.5.6 Error: line too long\r\n");
		front_io_close_after_reply(s, SE_PROTOCOL);
		return;
	}
	if (!resync) {
		front_io_reply(s, "500 5.5.2 Error: %s\r\n", why);
		front_io_close_after_reply(s, SE_PROTOCOL);
		return;
	}
	switch (e) {
	case SMTP_PERR_PATH_SYNTAX:
	case SMTP_PERR_PATH_TOO_LONG:
	case SMTP_PERR_LOCAL_TOO_LONG:
		snprintf(line, sizeof(line), "501 5.1.3 Error: %s", why);
		break;
	case SMTP_PERR_SYNTAX:
	case SMTP_PERR_PARAM_SYNTAX:
	case SMTP_PERR_PARAM_VALUE:
	case SMTP_PERR_TOO_MANY_PARAMS:
	case SMTP_PERR_BDAT_SIZE:
		snprintf(line, sizeof(line), "501 5.5.4 Error: %s", why);
		break;
	default:
		snprintf(line, sizeof(line), "500 5.5.2 Error: %s", why);
		break;
	}
	smtp_err_reply(s, line);
}

/* Message content in rbuf (CS_DATA, CS_DISCARD, CS_SKIP, CS_CHUNK). Returns true
 * when a send to the backend was started. */
static bool content(struct session *s)
{
	struct smtp_front *f = s->front;
	const uint8_t *p = f->io.rbuf + f->io.rpos;
	size_t len = f->io.rlen - f->io.rpos, used = 0;
	char client[MF_ADDRSTRLEN];
	int rc;

	if (f->cstate == CS_CHUNK)
		return smtp_chunk(s);
	if (f->cstate == CS_SKIP) {
		used = len < f->skip_left ? len : (size_t)f->skip_left;
		f->io.rpos += used;
		f->skip_left -= used;
		if (f->skip_left == 0)
			f->cstate = CS_CMD;
		return false;
	}
	rc = smtp_data_scan(&f->data, p, len, &used);
	if (f->cstate == CS_DISCARD) {
		f->io.rpos += used;
		if (rc == MF_OK) {
			f->cstate = CS_CMD;
			front_io_reply(s, "550 5.6.0 Message refused: bare LF next to a \".\" line "
				       "(ambiguous end of data)\r\n");
			smtp_log_txn(s, 550, f->data.octets);
			smtp_txn_reset(f);
		}
		return false;
	}
	if (rc == MF_ERROR) {
		/* The backend got part of the message, never the ambiguous
		 * end: dropping the connection drops the message there. */
		mf_sockaddr_format(&s->client.sa, client, sizeof(client));
		mf_log_warn("smtp client=%s: ambiguous end of data, message refused", client);
		smtp_up_drop(s);
		f->io.rpos += used;
		f->cstate = CS_DISCARD;
		return false;
	}
	f->data_end = f->io.rpos + used;
	f->data_last = rc == MF_OK;
	if (f->data_last)
		f->cstate = CS_CMD;
	smtp_up_content(s);
	return true;
}

void smtp_run(struct session *s)
{
	struct smtp_front *f = s->front;

	for (;;) {
		struct smtp_cmd c;
		size_t used = 0;
		int rc;

		/* The backend has the word (a reply or a send in flight). */
		if (f->ustate != UP_NONE && f->ustate != UP_IDLE &&
		    !(f->ustate == UP_CONTENT && f->cstate == CS_DATA) &&
		    !(f->ustate == UP_CHUNK && f->cstate == CS_CHUNK))
			return;
		/* An MTA session lives in this front end: the pre-auth timeout
		 * bounds each command and each block of content instead. */
		if (!f->submission)
			f->io.deadline_ms = s->w->now_ms + s->w->t.preauth_timeout_ms;
		if (front_io_wait(s))
			return;
		if (f->cstate != CS_CMD) {
			if (content(s))
				return;
			continue;
		}
		rc = smtp_parser_feed(&f->parser, f->io.rbuf + f->io.rpos, f->io.rlen - f->io.rpos,
				      &used, &c);
		f->io.rpos += used;
		if (rc == MF_AGAIN) {
			front_io_client_recv(s);
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

/* --- life cycle ---------------------------------------------------------------- */

static const struct front_io_ops smtp_io_ops = {
	.run = smtp_run,
	.up_line = smtp_up_line,
	.up_fail = smtp_up_fail,
	.up_sent = smtp_up_sent,
	.timeout_reply = "421 4.4.2 Error: timeout exceeded\r\n",
};

static int start(struct session *s, bool submission)
{
	struct smtp_front *f = calloc(1, sizeof(*f));
	char name[INET6_ADDRSTRLEN + 8], greeting[128];
	int n;

	if (f == NULL)
		return MF_ERROR;
	smtp_parser_init(&f->parser);
	f->parser.auth_line_max = sizeof(f->io.rbuf);
	smtp_reply_parser_init(&f->rp);
	f->submission = submission;
	f->up_route = f->txn_route = f->next_route = -1;
	host_literal(&s->orig_dst, name, sizeof(name));
	n = snprintf(greeting, sizeof(greeting), "220 %s ESMTP mailferry\r\n", name);
	if (front_io_start(s, &f->io, &smtp_io_ops, greeting, (size_t)n) != MF_OK) {
		front_io_wipe(&f->io);
		free(f);
		errno = ENOMEM;
		return MF_ERROR;
	}
	return MF_OK;
}

static int smtp_start(struct session *s)
{
	return start(s, false);
}

static int submission_start(struct session *s)
{
	return start(s, true);
}

/* MTA sessions: transactions, delivered ones, recipients taken and
 * refused, and the route of the last transaction. */
static void smtp_log_fields(struct session *s, char *buf, size_t len)
{
	struct smtp_front *f = s->front;
	bool route = s->user == NULL && s->route >= 0;

	if (f->submission) {
		buf[0] = '\0';
		return;
	}
	snprintf(buf, len, " txns=%u delivered=%u rcpts=%u refused=%u%s%s", f->txns,
		 f->txns_ok, f->rcpts_total, f->refused_total, route ? " route=" : "",
		 route ? account_route_name((enum account_route)s->route) : "");
}

static void smtp_free(struct session *s)
{
	struct smtp_front *f = s->front;

	if (f == NULL)
		return;
	smtp_wipe_creds(f);
	explicit_bzero(f->ucmd, sizeof(f->ucmd));
	front_io_wipe(&f->io);
	free(f);
	s->front = NULL;
}

const struct front_ops smtp_front_ops = {
	.name = "smtp",
	.busy_line = "421 4.7.0 Too many connections from your address, try again later\r\n",
	.start = smtp_start,
	.on_cqe = front_io_on_cqe,
	.on_connect = smtp_on_connect,
	.log_fields = smtp_log_fields,
	.free = smtp_free,
};

/* A client on 465 reaches the backend's 587 unless backend_tls = implicit. */
const struct front_ops submission_front_ops = {
	.name = "submission",
	.plain_port = 587,
	.tls_port = 465,
	.busy_line = "421 4.7.0 Too many connections from your address, try again later\r\n",
	.start = submission_start,
	.on_cqe = front_io_on_cqe,
	.on_connect = smtp_on_connect,
	.log_fields = smtp_log_fields,
	.free = smtp_free,
};
