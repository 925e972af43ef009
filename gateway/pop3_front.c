/* pop3_front.c — POP3 pre-auth front end; see pop3_front.h. The shape
 * follows imap_front.c: front_run() parses and answers, start_login()
 * routes and connects, up_line() drives the backend conversation; the
 * plumbing (buffers, ops, hand-off to the relay) is front_io.c's. */
#include "pop3_front.h"
#include "front_io.h"
#include "account.h"
#include "mf.h"
#include "pop3_backend.h"
#include "pop3_parser.h"
#include "pop3_txn.h"
#include "ledger.h"
#include "log.h"
#include "sasl.h"
#include "session.h"
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


/* Only what this front end handles itself: STLS while it can be offered,
 * no PIPELINING (RFC 2449 §6.6 allows leaving it out; commands are still
 * answered in order), no TOP/UIDL (transaction state belongs to the
 * backend). */
static const char capa_head[] =
	"+OK Capability list follows\r\n"
	"RESP-CODES\r\n"
	"AUTH-RESP-CODE\r\n";

enum up_state { US_NONE = 0, US_GREETING, US_STLS, US_USER, US_PASS };

struct pop3_front {
	struct front_io io;             /* first: s->front points at both */
	struct pop3_parser parser;
	uint8_t ustate;                 /* enum up_state */
	uint8_t auth_pending;           /* enum auth_wait */

	/* USER's name, kept until PASS; then the login in progress. The
	 * password lives only in pass and ucmd, both wiped when it is sent or
	 * the attempt ends. */
	uint32_t src_caps;              /* the source's banner caps (banner.h) */
	char user[POP3_UP_FIELD_MAX + 1];
	size_t user_len;
	char pass[POP3_UP_FIELD_MAX + 1];
	size_t pass_len;
	struct sasl_plain plain;
	char luser[SASL_FIELD_MAX + 1]; /* AUTH LOGIN's name until its password */
	size_t luser_len;
	char ucmd[POP3_UP_CMD_MAX];
	size_t ucmd_len, ucmd_off;
	struct pop3_txn *txn;           /* after login, when UIDLs are rewritten */
};

struct pop3_txn *pop3_front_txn(struct session *s)
{
	return ((struct pop3_front *)s->front)->txn;
}

/* The parser's buffer contract: auth_line_max is the whole receive buffer. */
_Static_assert(FRONT_IO_RBUF == POP3_AUTH_LINE_MAX_DEFAULT, "POP3 receive buffer");

static void front_run(struct session *s);

/* The source offers no USER or SASL before TLS (its CAPA said so), and
 * neither do we. */
static bool login_disabled(const struct session *s)
{
	const struct pop3_front *f = s->front;

	return (f->src_caps & BC_CAPS_SEEN) && !(f->src_caps & BC_PLAIN_LOGIN) &&
	       s->tls[0] == NULL;
}

static void err_reply(struct session *s, const char *text);

/* USER, PASS and AUTH while login_disabled(). */
static bool refuse_plaintext(struct session *s, struct pop3_cmd *c)
{
	if (!login_disabled(s))
		return false;
	pop3_cmd_wipe(c);
	err_reply(s, "[AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.");
	return true;
}

/* One -ERR answer that counts as a protocol error; beyond
 * preauth_max_errors the answer says so and the session closes. A POP3
 * client reads one status line per command, so there is no second line. */
static void err_reply(struct session *s, const char *text)
{
	struct pop3_front *f = s->front;

	if (++f->io.errors > s->w->t.preauth_max_errors) {
		front_io_reply(s, "-ERR Too many invalid commands\r\n");
		front_io_close_after_reply(s, SE_PROTOCOL);
		return;
	}
	front_io_reply(s, "-ERR %s\r\n", text);
}

static void wipe_creds(struct pop3_front *f)
{
	sasl_plain_wipe(&f->plain);
	explicit_bzero(f->luser, sizeof(f->luser));
	f->luser_len = 0;
	explicit_bzero(f->pass, sizeof(f->pass));
	explicit_bzero(f->ucmd, sizeof(f->ucmd));
	f->pass_len = 0;
	f->ucmd_len = f->ucmd_off = 0;
}

/* --- login: route and upstream --------------------------------------------- */

static void back_to_preauth(struct session *s)
{
	struct pop3_front *f = s->front;

	wipe_creds(f);
	f->user_len = 0;
	f->ustate = US_NONE;
	front_io_back_to_preauth(s);
}

static void up_fail(struct session *s, const char *why)
{
	front_io_log_up_fail(s, why);
	front_io_reply(s, "-ERR [SYS/TEMP] Server unavailable, try again later\r\n");
	back_to_preauth(s);
}

static bool route_connect(struct session *s, const char *name);

/* Copies the credentials into the front end (the caller wipes its own
 * copies), routes the account and starts the connect. Returns true when
 * the upstream leg was started (stop reading the client). */
static bool start_login(struct session *s, const char *user, size_t user_len,
			const char *pass, size_t pass_len)
{
	struct pop3_front *f = s->front;
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
	if (route_connect(s, name))
		return true;
fail:
	wipe_creds(f);
	f->user_len = 0;
	return false;
}

/* Routes the login in progress (f->user, f->pass) by the account's state
 * and starts the connect: true; false with the refusal queued (the caller
 * wipes the credentials). */
static bool route_connect(struct session *s, const char *name)
{
	struct pop3_front *f = s->front;

	switch (front_io_route_connect(s, name)) {
	case FRF_OK:
		f->ustate = US_NONE;
		return true;
	case FRF_LEDGER:
		front_io_reply(s,
			       "-ERR [SYS/TEMP] Account database unavailable, try again later\r\n");
		break;
	case FRF_MIGRATING:
		front_io_reply(s, "-ERR [IN-USE] account is being migrated, try again shortly\r\n");
		break;
	case FRF_NO_DEST:
	case FRF_SOCKET:
		front_io_reply(s, "-ERR [SYS/TEMP] Server unavailable, try again later\r\n");
		break;
	}
	return false;
}

/* The wait of a held login is over (front_io_hold()). */
static void resume(struct session *s)
{
	char name[ACCOUNT_NAME_MAX + 1];

	/* front_io_route_connect() replaces s->user. */
	snprintf(name, sizeof(name), "%s", s->user);
	if (!route_connect(s, name))
		back_to_preauth(s);
}

static void pop3_front_on_connect(struct session *s, int res)
{
	struct pop3_front *f = s->front;

	if (front_io_on_connect(s, res) != MF_OK)
		return;
	f->ustate = US_GREETING;
	front_io_upstream_recv(s);
}

/* A login the destination accepted, for an account whose messages were
 * copied from a POP3 source's mailbox: when the copy recorded their
 * source UIDLs, the session stays here to answer UIDL with them
 * (pop3_txn.h). Returns true when it took the session (the answer is
 * queued, or the refusal); false: relay as usual. */
static bool stay_for_uidls(struct session *s, const char *line)
{
	struct pop3_front *f = s->front;
	struct ledger *l = worker_ledger(s->w);
	struct uidl_pair *v = NULL;
	size_t n = 0;
	char err[256];

	if (f->io.route != AR_DESTINATION || l == NULL || s->user == NULL)
		return false;
	if (ledger_uidl_map_get(l, s->user, &v, &n, err, sizeof(err)) != MF_OK) {
		/* The destination's own UIDLs would make the client fetch
		 * every message again: better a "try again". */
		mf_log_warn("pop3 user=%s: UIDL map: %s", s->user, err);
		up_fail(s, "UIDL map unavailable");
		return true;
	}
	if (n == 0) {
		free(v);
		return false;
	}
	if (pop3_txn_start(s, line, v, n, &f->txn) != MF_OK) {
		up_fail(s, "out of memory");
		return true;
	}
	front_io_login_stay(s);
	return true;
}

static void login_ok(struct session *s, const char *line)
{
	struct pop3_front *f = s->front;

	/* The source said +OK: only now may the password start a copy. */
	front_io_login_creds(s, f->user, f->user_len, f->pass, f->pass_len);
	if (front_io_hold(s))
		return; /* the client hears nothing until the wait ends */
	wipe_creds(f);
	if (stay_for_uidls(s, line))
		return;
	front_io_reply(s, "%s\r\n", line);
	front_io_login_done(s);
}

/* The backend refused USER or PASS: its line reaches the client unchanged
 * (the source's exact text, RFC 3206 codes included). */
static void login_err(struct session *s, const char *line)
{
	struct pop3_front *f = s->front;

	front_io_reply(s, "%s\r\n", line);
	front_io_login_rejected(s);
	if (++f->io.errors > s->w->t.preauth_max_errors)
		front_io_close_after_reply(s, SE_PROTOCOL);
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
	front_io_upstream_send(s, f->ucmd, f->ucmd_len);
}

/* One backend line. Returns false when it was handled by leaving the
 * upstream phase or by sending (stop reading lines). */
static bool up_line(struct session *s)
{
	struct pop3_front *f = s->front;
	enum pop3_status st;

	if (pop3_status_parse(f->io.line.buf, f->io.line.len, &st) != MF_OK) {
		up_fail(s, "garbage from server");
		return false;
	}
	switch (f->ustate) {
	case US_GREETING:
		if (st != POP3_ST_OK) {
			up_fail(s, "bad greeting");
			return false;
		}
		if (front_io_backend_tls(s) == MF_BACKEND_TLS_STARTTLS && s->tls[1] == NULL) {
			static const char cmd[] = "STLS\r\n";

			memcpy(f->ucmd, cmd, sizeof(cmd) - 1);
			f->ucmd_len = sizeof(cmd) - 1;
			f->ucmd_off = 0;
			f->ustate = US_STLS;
			front_io_upstream_send(s, f->ucmd, f->ucmd_len);
			return false;
		}
		f->ustate = US_USER;
		send_ucmd(s, "USER", f->user, f->user_len);
		return false;
	case US_STLS:
		if (st != POP3_ST_OK) {
			up_fail(s, "server refused STLS");
			return false;
		}
		if (front_io_upstream_starttls(s) != MF_OK)
			return false;
		f->ustate = US_USER;
		send_ucmd(s, "USER", f->user, f->user_len);
		return false;
	case US_USER:
		if (st != POP3_ST_OK) {
			login_err(s, f->io.line.buf);
			return false;
		}
		f->ustate = US_PASS;
		send_ucmd(s, "PASS", f->pass, f->pass_len);
		return false;
	case US_PASS:
		if (st == POP3_ST_OK)
			login_ok(s, f->io.line.buf);
		else
			login_err(s, f->io.line.buf);
		return false;
	default:
		up_fail(s, "unexpected state");
		return false;
	}
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
		front_io_reply(s, "-ERR [AUTH] Authorization identity not supported\r\n");
		sasl_plain_wipe(&f->plain);
		return false;
	}
	f->user_len = 0; /* AUTH replaces an earlier USER */
	return start_login(s, f->plain.authcid, f->plain.authcid_len,
			   f->plain.passwd, f->plain.passwd_len);
}

/* Sends an AUTH challenge and expects its one-line answer. */
static void auth_challenge(struct session *s, enum auth_wait wait, const char *challenge)
{
	struct pop3_front *f = s->front;

	pop3_parser_expect_auth_data(&f->parser);
	f->auth_pending = wait;
	front_io_reply(s, "+ %s\r\n", challenge);
}

/* AUTH LOGIN's user name in base64 (initial response or the answer to
 * "Username:"): kept in luser, then "Password:" is asked. */
static void auth_login_user(struct session *s, const uint8_t *b64, size_t b64_len)
{
	struct pop3_front *f = s->front;

	if (sasl_login_decode((const char *)b64, b64_len, f->luser, &f->luser_len) != MF_OK) {
		err_reply(s, "Invalid SASL LOGIN response");
		return;
	}
	auth_challenge(s, AW_LOGIN_PASS, sasl_login_prompt(SASL_LOGIN_PASS));
}

/* AUTH LOGIN's password in base64, the line after "Password:". */
static bool auth_login_pass(struct session *s, const uint8_t *b64, size_t b64_len)
{
	struct pop3_front *f = s->front;
	char pass[SASL_FIELD_MAX + 1];
	size_t pass_len = 0;
	bool started;

	if (sasl_login_decode((const char *)b64, b64_len, pass, &pass_len) != MF_OK) {
		wipe_creds(f);
		err_reply(s, "Invalid SASL LOGIN response");
		return false;
	}
	f->user_len = 0; /* AUTH replaces an earlier USER */
	/* start_login() copies both; luser is wiped with the rest. */
	started = start_login(s, f->luser, f->luser_len, pass, pass_len);
	explicit_bzero(pass, sizeof(pass));
	explicit_bzero(f->luser, sizeof(f->luser));
	f->luser_len = 0;
	return started;
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
	case POP3_CMD_AUTH_DATA: {
		enum auth_wait wait = f->auth_pending;

		f->auth_pending = AW_NONE;
		started = false;
		if (wait == AW_LOGIN_USER)
			auth_login_user(s, c->arg, c->arg_len);
		else if (wait == AW_LOGIN_PASS)
			started = auth_login_pass(s, c->arg, c->arg_len);
		else
			started = auth_plain(s, c->arg, c->arg_len);
		pop3_cmd_wipe(c);
		return started;
	}
	case POP3_CMD_AUTH_CANCEL:
		f->auth_pending = AW_NONE;
		wipe_creds(f);
		err_reply(s, "Authentication cancelled");
		return false;
	case POP3_CMD_CAPA:
		front_io_reply(s, "%s%s%s.\r\n", capa_head,
			       login_disabled(s) ? "" : "USER\r\nSASL PLAIN LOGIN\r\n",
			       front_io_can_starttls(s) ? "STLS\r\n" : "");
		return false;
	case POP3_CMD_STLS:
		if (!front_io_can_starttls(s)) {
			err_reply(s, s->tls[0] ? "Command not permitted when TLS active"
					       : "STLS not available");
			return false;
		}
		front_io_reply(s, "+OK Begin TLS negotiation\r\n");
		front_io_starttls(s);
		return false;
	case POP3_CMD_USER:
		if (refuse_plaintext(s, c))
			return false;
		if (c->arg_len > POP3_UP_FIELD_MAX) {
			err_reply(s, "User name too long");
			return false;
		}
		memcpy(f->user, c->arg, c->arg_len);
		f->user[c->arg_len] = '\0';
		f->user_len = c->arg_len;
		front_io_reply(s, "+OK\r\n");
		return false;
	case POP3_CMD_PASS:
		if (refuse_plaintext(s, c))
			return false;
		if (f->user_len == 0) {
			pop3_cmd_wipe(c);
			err_reply(s, "No username given");
			return false;
		}
		started = start_login(s, f->user, f->user_len, (const char *)c->arg, c->arg_len);
		pop3_cmd_wipe(c);
		return started;
	case POP3_CMD_AUTH:
		if (refuse_plaintext(s, c))
			return false;
		if (c->arg_len == 0) {
			front_io_reply(s, "+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n");
			return false;
		}
		if (is_mech(c, "LOGIN")) {
			if (c->arg2 != NULL) {
				/* "=" (empty) decodes to no name and is refused */
				if (c->arg2_len == 1 && c->arg2[0] == '=')
					auth_login_user(s, (const uint8_t *)"", 0);
				else
					auth_login_user(s, c->arg2, c->arg2_len);
				pop3_cmd_wipe(c);
				return false;
			}
			auth_challenge(s, AW_LOGIN_USER, sasl_login_prompt(SASL_LOGIN_USER));
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
		auth_challenge(s, AW_PLAIN, "");
		return false;
	case POP3_CMD_APOP:
		err_reply(s, "APOP not supported");
		return false;
	case POP3_CMD_QUIT:
		front_io_reply(s, "+OK Logging out\r\n");
		front_io_close_after_reply(s, SE_LOGOUT);
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

	f->auth_pending = AW_NONE;
	explicit_bzero(f->luser, sizeof(f->luser));
	f->luser_len = 0;
	/* A malformed line may still hold a password (a PASS with a bare CR,
	 * an AUTH response with a NUL): it was consumed, wipe it. */
	if (c->line != NULL)
		pop3_cmd_wipe(c);
	if (!resync) {
		front_io_reply(s, "-ERR %s\r\n", pop3_parse_error_str(e));
		front_io_close_after_reply(s, SE_PROTOCOL);
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

		if (front_io_wait(s))
			return;
		rc = pop3_parser_feed(&f->parser, f->io.rbuf + f->io.rpos, f->io.rlen - f->io.rpos,
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

/* A login USEND sent n bytes of ucmd. */
static void up_sent(struct session *s, size_t n)
{
	struct pop3_front *f = s->front;

	f->ucmd_off += n;
	if (f->ucmd_off < f->ucmd_len) {
		front_io_upstream_send(s, f->ucmd + f->ucmd_off, f->ucmd_len - f->ucmd_off);
		return;
	}
	if (f->ustate == US_PASS) {
		/* PASS is on its way: the password is no longer needed here,
		 * unless the source's +OK is to start a copy with it (then
		 * login_ok/login_err wipe it). The command goes either way. */
		if (front_io_creds_wanted(s)) {
			explicit_bzero(f->ucmd, sizeof(f->ucmd));
			f->ucmd_len = f->ucmd_off = 0;
		} else {
			wipe_creds(f);
		}
	}
	front_io_upstream_process(s);
}

/* --- life cycle ----------------------------------------------------------- */

static const struct front_io_ops pop3_io_ops = {
	.run = front_run,
	.up_line = up_line,
	.up_fail = up_fail,
	.up_sent = up_sent,
	.timeout_reply = "-ERR Disconnected for inactivity\r\n",
	.resume = resume,
};

static int pop3_front_start(struct session *s)
{
	struct pop3_front *f = calloc(1, sizeof(*f));
	const struct banner *b = front_io_banner(s, BP_POP3);
	char greeting[BANNER_TEXT_MAX + 16];
	int n;

	if (f == NULL)
		return MF_ERROR;
	f->src_caps = b ? b->caps : 0;
	n = snprintf(greeting, sizeof(greeting), "+OK %s\r\n",
		     b && b->text[0] ? b->text : "mailferry ready");
	pop3_parser_init(&f->parser);
	f->parser.auth_line_max = sizeof(f->io.rbuf);
	if (front_io_start(s, &f->io, &pop3_io_ops, greeting, (size_t)n) != MF_OK) {
		front_io_wipe(&f->io);
		free(f);
		errno = ENOMEM;
		return MF_ERROR;
	}
	return MF_OK;
}

static void pop3_front_free(struct session *s)
{
	struct pop3_front *f = s->front;

	if (f == NULL)
		return;
	wipe_creds(f);
	explicit_bzero(f->user, sizeof(f->user));
	pop3_txn_free(f->txn);
	front_io_wipe(&f->io);
	free(f);
	s->front = NULL;
}

const struct front_ops pop3_front_ops = {
	.name = "pop3",
	.plain_port = 110,
	.tls_port = 995,
	.busy_line = "-ERR [SYS/TEMP] Too many connections from your address\r\n",
	.start = pop3_front_start,
	.on_cqe = front_io_on_cqe,
	.on_connect = pop3_front_on_connect,
	.free = pop3_front_free,
};
