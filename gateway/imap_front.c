#include "imap_front.h"
#include "front_io.h"
#include "account.h"
#include "imap_backend.h"
#include "imap_parser.h"
#include "mf.h"
#include "netaddr.h"
#include "sasl.h"
#include "session.h"
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FRONT_TAG_MAX 64  /* client tags we keep across a login */
#define OUR_TAG "mf1"

#define OUR_STARTTLS_TAG "mf0"
#define OUR_ID_TAG "mf2"

#define CAPS_MAX 128

enum up_state { US_NONE = 0, US_GREETING, US_STARTTLS, US_ID, US_CONT, US_REPLY };

struct imap_front {
	struct front_io io;             /* first: s->front points at both */
	struct imap_parser parser;
	uint8_t ustate;                 /* enum up_state */
	uint8_t auth_pending;           /* enum auth_wait */
	bool up_literal_plus;           /* the backend's greeting offered LITERAL+ */
	bool id_sent;                   /* forward_client_address's ID is done */
	uint32_t src_caps;              /* the source's banner caps (banner.h) */
	char idcmd[2 * MF_ADDRSTRLEN + 160];
	const char *cmd;                /* STARTTLS or ID being sent */
	size_t cmd_len, cmd_off;

	/* login in progress: credentials point into the parser's arena, into
	 * plain or into luser/lpass (AUTH=LOGIN); all are wiped when the
	 * attempt ends */
	char ctag[FRONT_TAG_MAX + 1];
	const char *user, *pass;
	size_t user_len, pass_len;
	struct sasl_plain plain;
	char luser[SASL_FIELD_MAX + 1], lpass[SASL_FIELD_MAX + 1];
	size_t luser_len, lpass_len;
	struct imap_login_cmd login;
	unsigned int seg;
	size_t seg_off;
};

static void front_run(struct session *s);

/* A BAD answer; errors beyond preauth_max_errors end the session. */
static void bad(struct session *s, const char *tag, const char *text)
{
	struct imap_front *f = s->front;

	front_io_reply(s, "%s BAD %s\r\n", tag, text);
	if (++f->io.errors > s->w->t.preauth_max_errors) {
		front_io_reply(s, "* BYE Too many invalid commands\r\n");
		front_io_close_after_reply(s, SE_PROTOCOL);
	}
}

static void wipe_creds(struct imap_front *f)
{
	imap_parser_wipe(&f->parser);
	sasl_plain_wipe(&f->plain);
	explicit_bzero(f->luser, sizeof(f->luser));
	explicit_bzero(f->lpass, sizeof(f->lpass));
	f->luser_len = f->lpass_len = 0;
	explicit_bzero(&f->login, sizeof(f->login));
	f->user = f->pass = NULL;
	f->user_len = f->pass_len = 0;
}

/* --- login: route and upstream --------------------------------------------- */

static void back_to_preauth(struct session *s)
{
	struct imap_front *f = s->front;

	wipe_creds(f);
	f->ustate = US_NONE;
	front_io_back_to_preauth(s);
}

static void up_fail(struct session *s, const char *why)
{
	struct imap_front *f = s->front;

	front_io_log_up_fail(s, why);
	front_io_reply(s, "%s NO [UNAVAILABLE] Server unavailable, try again later\r\n", f->ctag);
	back_to_preauth(s);
}

static bool route_connect(struct session *s, const char *name);

/* Returns true when the upstream leg was started (stop reading the client). */
static bool start_login(struct session *s, const char *tag, size_t tag_len,
			const char *user, size_t user_len, const char *pass, size_t pass_len)
{
	struct imap_front *f = s->front;
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
		front_io_reply(s,
			       "%s NO [AUTHENTICATIONFAILED] Authentication failed.\r\n", f->ctag);
		f->io.errors++;
		goto fail;
	}
	f->user = user;
	f->user_len = user_len;
	f->pass = pass;
	f->pass_len = pass_len;
	if (route_connect(s, name))
		return true;
fail:
	wipe_creds(f);
	return false;
}

/* Routes the login in progress (f->ctag, f->user, f->pass) by the
 * account's state and starts the connect: true; false with the refusal
 * queued (the caller wipes the credentials). */
static bool route_connect(struct session *s, const char *name)
{
	struct imap_front *f = s->front;

	f->id_sent = false;
	switch (front_io_route_connect(s, name)) {
	case FRF_OK:
		f->ustate = US_NONE;
		return true;
	case FRF_LEDGER:
		front_io_reply(s,
			       "%s NO [UNAVAILABLE] Account database unavailable, try again later\r\n",
			       f->ctag);
		break;
	case FRF_MIGRATING:
		front_io_reply(s,
			       "%s NO [UNAVAILABLE] account is being migrated, try again shortly\r\n",
			       f->ctag);
		break;
	case FRF_NO_DEST:
	case FRF_SOCKET:
		front_io_reply(s,
			       "%s NO [UNAVAILABLE] Server unavailable, try again later\r\n", f->ctag);
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

void imap_front_on_connect(struct session *s, int res)
{
	struct imap_front *f = s->front;

	if (front_io_on_connect(s, res) != MF_OK)
		return;
	f->ustate = US_GREETING;
	front_io_upstream_recv(s);
}

/* The source refuses logins before TLS, and so do we. */
static bool login_disabled(const struct session *s)
{
	const struct imap_front *f = s->front;

	return (f->src_caps & BC_LOGINDISABLED) && s->tls[0] == NULL;
}

/* What this front end handles itself, adjusted to the source: IMAP4rev2
 * and LOGINDISABLED when the source says so, STARTTLS while it can be
 * offered. The backend's own list reaches the client with the login's OK. */
static const char *caps(const struct session *s, char *buf)
{
	const struct imap_front *f = s->front;

	snprintf(buf, CAPS_MAX, "IMAP4rev1%s SASL-IR LITERAL+ ID%s%s",
		 f->src_caps & BC_IMAP4REV2 ? " IMAP4rev2" : "",
		 front_io_can_starttls(s) && !(s->implicit_tls && s->tls[0] == NULL) ? " STARTTLS" : "",
		 login_disabled(s) ? " LOGINDISABLED" : " AUTH=PLAIN AUTH=LOGIN");
	return buf;
}

/* The greeting and the login replay once the backend leg is ready
 * (after STARTTLS when backend_tls asks for it). */
static void send_segment(struct session *s);

/* A command of ours (not the login) to the backend. */
static void send_cmd(struct session *s, enum up_state next, const char *cmd, size_t len)
{
	struct imap_front *f = s->front;

	f->ustate = next;
	f->cmd = cmd;
	f->cmd_len = len;
	f->cmd_off = 0;
	front_io_upstream_send(s, cmd, len);
}

/* RFC 2971 ID with the address the client connected from and to, as
 * Dovecot (and others) read it from a trusted proxy. */
static void send_id(struct session *s)
{
	struct imap_front *f = s->front;
	char client[MF_ADDRSTRLEN], dst[MF_ADDRSTRLEN];
	int n;

	mf_sockaddr_format_ip(&s->client.sa, client, sizeof(client));
	mf_sockaddr_format_ip(&s->orig_dst.sa, dst, sizeof(dst));
	n = snprintf(f->idcmd, sizeof(f->idcmd),
		     OUR_ID_TAG " ID (\"x-originating-ip\" \"%s\" \"x-originating-port\" \"%u\" "
		     "\"x-connected-ip\" \"%s\" \"x-connected-port\" \"%u\")\r\n",
		     client, mf_sockaddr_port(&s->client.sa), dst, mf_sockaddr_port(&s->orig_dst.sa));
	f->id_sent = true;
	send_cmd(s, US_ID, f->idcmd, (size_t)n);
}

static bool start_replay(struct session *s)
{
	struct imap_front *f = s->front;

	if (s->w->t.forward_client_address && !f->id_sent) {
		send_id(s);
		return false;
	}

	if (imap_login_build(OUR_TAG, f->user, f->user_len, f->pass, f->pass_len,
			     f->up_literal_plus, &f->login) != MF_OK) {
		up_fail(s, "credentials too long");
		return false;
	}
	f->seg = 0;
	f->seg_off = 0;
	f->ustate = f->login.n_seg > 1 ? US_CONT : US_REPLY;
	send_segment(s);
	return false;
}

static void send_segment(struct session *s)
{
	struct imap_front *f = s->front;
	size_t start = f->seg ? f->login.seg_end[f->seg - 1] : 0;

	front_io_upstream_send(s, f->login.buf + start + f->seg_off,
			       f->login.seg_end[f->seg] - start - f->seg_off);
}

static void login_ok(struct session *s, const char *text)
{
	struct imap_front *f = s->front;

	/* The source said OK: only now may the password start a copy. */
	front_io_login_creds(s, f->user, f->user_len, f->pass, f->pass_len);
	if (front_io_hold(s))
		return; /* the client hears nothing until the wait ends */
	wipe_creds(f);
	front_io_reply(s, "%s OK %s\r\n", f->ctag, text);
	front_io_login_done(s);
}

static void login_no(struct session *s, const char *text)
{
	struct imap_front *f = s->front;

	front_io_reply(s, "%s NO %s\r\n", f->ctag, text);
	front_io_login_rejected(s);
	f->io.errors++;
	if (f->io.errors > s->w->t.preauth_max_errors) {
		front_io_reply(s, "* BYE Too many invalid commands\r\n");
		front_io_close_after_reply(s, SE_PROTOCOL);
	}
	back_to_preauth(s);
}

/* One backend line. Returns false when it was handled by leaving the
 * upstream phase or by sending (stop reading lines). */
static bool up_line(struct session *s)
{
	struct imap_front *f = s->front;
	struct imap_resp r;

	if (imap_resp_parse(f->io.line.buf, f->io.line.len, &r) != MF_OK) {
		up_fail(s, "garbage from server");
		return false;
	}
	switch (f->ustate) {
	case US_GREETING:
		if (r.kind != IMAP_RESP_UNTAGGED || r.status != IMAP_ST_OK) {
			up_fail(s, "bad greeting");
			return false;
		}
		f->up_literal_plus = imap_resp_text_has_cap(r.text, "LITERAL+");
		if (front_io_backend_tls(s) == MF_BACKEND_TLS_STARTTLS && s->tls[1] == NULL) {
			static const char cmd[] = OUR_STARTTLS_TAG " STARTTLS\r\n";

			send_cmd(s, US_STARTTLS, cmd, sizeof(cmd) - 1);
			return false;
		}
		return start_replay(s);
	case US_STARTTLS:
		if (r.kind == IMAP_RESP_UNTAGGED)
			return true;
		if (r.kind != IMAP_RESP_TAGGED || r.tag_len != strlen(OUR_STARTTLS_TAG) ||
		    memcmp(r.tag, OUR_STARTTLS_TAG, r.tag_len) != 0 || r.status != IMAP_ST_OK) {
			up_fail(s, "server refused STARTTLS");
			return false;
		}
		if (front_io_upstream_starttls(s) != MF_OK)
			return false;
		return start_replay(s);
	case US_ID:
		/* Whatever the answer (a backend may refuse ID), the login
		 * follows; only a foreign tag is wrong. */
		if (r.kind == IMAP_RESP_UNTAGGED)
			return true;
		if (r.kind != IMAP_RESP_TAGGED || r.tag_len != strlen(OUR_ID_TAG) ||
		    memcmp(r.tag, OUR_ID_TAG, r.tag_len) != 0) {
			up_fail(s, "unexpected answer to ID");
			return false;
		}
		return start_replay(s);
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
		front_io_reply(s,
			       "%.*s NO [AUTHORIZATIONFAILED] Authorization identity not supported\r\n",
			       (int)tag_len, tag);
		sasl_plain_wipe(&f->plain);
		return false;
	}
	return start_login(s, tag, tag_len, f->plain.authcid, f->plain.authcid_len,
			   f->plain.passwd, f->plain.passwd_len);
}

/* Asks for the next AUTHENTICATE line under tag (kept in ctag). */
static void auth_challenge(struct session *s, const char *tag, size_t tag_len,
			   enum auth_wait wait, const char *challenge)
{
	struct imap_front *f = s->front;

	if (tag != f->ctag) {
		if (tag_len > FRONT_TAG_MAX) {
			bad(s, tag, "Tag too long");
			wipe_creds(f);
			return;
		}
		memcpy(f->ctag, tag, tag_len);
		f->ctag[tag_len] = '\0';
	}
	if (imap_parser_expect_sasl_line(&f->parser) != MF_OK) {
		bad(s, f->ctag, "Internal error");
		wipe_creds(f);
		return;
	}
	f->auth_pending = wait;
	front_io_reply(s, "+ %s\r\n", challenge);
}

/* AUTH=LOGIN's user name in base64 (SASL-IR or the answer to "Username:"):
 * kept in luser, then "Password:" is asked. */
static void auth_login_user(struct session *s, const char *tag, size_t tag_len,
			    const char *b64, size_t b64_len)
{
	struct imap_front *f = s->front;
	char t[FRONT_TAG_MAX + 1];
	int rc;

	/* The tag may live in the parser's arena, which is wiped below. */
	if (tag_len > FRONT_TAG_MAX) {
		bad(s, tag, "Tag too long");
		imap_parser_wipe(&f->parser);
		return;
	}
	memcpy(t, tag, tag_len);
	t[tag_len] = '\0';
	rc = sasl_login_decode(b64, b64_len, f->luser, &f->luser_len);
	imap_parser_wipe(&f->parser);
	if (rc != MF_OK) {
		bad(s, t, "Invalid SASL LOGIN response");
		return;
	}
	auth_challenge(s, t, tag_len, AW_LOGIN_PASS, sasl_login_prompt(SASL_LOGIN_PASS));
}

/* AUTH=LOGIN's password in base64, the line after "Password:". */
static bool auth_login_pass(struct session *s, const char *b64, size_t b64_len)
{
	struct imap_front *f = s->front;
	char t[FRONT_TAG_MAX + 1];
	int rc;

	/* start_login() copies the tag into ctag: not from itself. */
	snprintf(t, sizeof(t), "%s", f->ctag);
	rc = sasl_login_decode(b64, b64_len, f->lpass, &f->lpass_len);
	imap_parser_wipe(&f->parser);
	if (rc != MF_OK) {
		bad(s, t, "Invalid SASL LOGIN response");
		wipe_creds(f);
		return false;
	}
	return start_login(s, t, strlen(t), f->luser, f->luser_len, f->lpass, f->lpass_len);
}

/* LOGIN and AUTHENTICATE while the source's LOGINDISABLED applies. */
static bool refuse_plaintext(struct session *s, const struct imap_cmd *c)
{
	struct imap_front *f = s->front;

	if (!login_disabled(s))
		return false;
	front_io_reply(s, "%.*s NO [PRIVACYREQUIRED] Plaintext authentication disallowed "
		       "on non-secure (SSL/TLS) connections.\r\n", (int)c->tag_len, c->tag);
	imap_parser_wipe(&f->parser);
	return true;
}

/* Returns true when the command started the upstream leg. */
static bool command(struct session *s, const struct imap_cmd *c)
{
	struct imap_front *f = s->front;
	const char *tag = c->tag;
	int tl = (int)c->tag_len;

	if (c->kind == IMAP_CMD_SASL_LINE) {
		enum auth_wait wait = f->auth_pending;

		f->auth_pending = AW_NONE;
		if (c->line_len == 1 && c->line[0] == '*') {
			wipe_creds(f);
			bad(s, f->ctag, "Authentication cancelled");
			return false;
		}
		switch (wait) {
		case AW_LOGIN_USER:
			auth_login_user(s, f->ctag, strlen(f->ctag), c->line, c->line_len);
			return false;
		case AW_LOGIN_PASS:
			return auth_login_pass(s, c->line, c->line_len);
		default:
			return auth_plain(s, f->ctag, strlen(f->ctag), c->line, c->line_len);
		}
	}
	switch (c->kind) {
	case IMAP_CMD_CAPABILITY: {
		char cb[CAPS_MAX];

		front_io_reply(s, "* CAPABILITY %s\r\n%.*s OK Capability completed.\r\n",
			       caps(s, cb), tl, tag);
		return false;
	}
	case IMAP_CMD_NOOP:
		front_io_reply(s, "%.*s OK NOOP completed.\r\n", tl, tag);
		return false;
	case IMAP_CMD_LOGOUT:
		front_io_reply(s, "* BYE Logging out\r\n%.*s OK Logout completed.\r\n", tl, tag);
		front_io_close_after_reply(s, SE_LOGOUT);
		return false;
	case IMAP_CMD_ID:
		front_io_reply(s, "* ID NIL\r\n%.*s OK ID completed.\r\n", tl, tag);
		return false;
	case IMAP_CMD_STARTTLS:
		if (!front_io_can_starttls(s)) {
			bad(s, tag, s->tls[0] ? "TLS is already active" : "STARTTLS is not available");
			return false;
		}
		front_io_reply(s, "%.*s OK Begin TLS negotiation now.\r\n", tl, tag);
		front_io_starttls(s);
		return false;
	case IMAP_CMD_LOGIN:
		if (refuse_plaintext(s, c))
			return false;
		if (c->n_args != 2 || !is_string(&c->args[0]) || !is_string(&c->args[1])) {
			bad(s, tag, "LOGIN needs a user name and a password");
			imap_parser_wipe(&f->parser);
			return false;
		}
		return start_login(s, tag, c->tag_len, c->args[0].str, c->args[0].len,
				   c->args[1].str, c->args[1].len);
	case IMAP_CMD_AUTHENTICATE:
		if (refuse_plaintext(s, c))
			return false;
		if (c->n_args < 1 || c->n_args > 2 || c->args[0].type != IMAP_ARG_ATOM ||
		    (c->n_args == 2 && c->args[1].type != IMAP_ARG_ATOM)) {
			bad(s, tag, "AUTHENTICATE needs a mechanism");
			imap_parser_wipe(&f->parser);
			return false;
		}
		if (strcasecmp(c->args[0].str, "LOGIN") == 0) {
			if (c->n_args == 2) {
				/* SASL-IR: the user name; "=" (empty) is refused */
				if (strcmp(c->args[1].str, "=") == 0)
					auth_login_user(s, tag, c->tag_len, "", 0);
				else
					auth_login_user(s, tag, c->tag_len, c->args[1].str,
							c->args[1].len);
				return false;
			}
			auth_challenge(s, tag, c->tag_len, AW_LOGIN_USER,
				       sasl_login_prompt(SASL_LOGIN_USER));
			return false;
		}
		if (strcasecmp(c->args[0].str, "PLAIN") != 0) {
			front_io_reply(s,
				       "%.*s NO Unsupported authentication mechanism\r\n", tl, tag);
			f->io.errors++;
			imap_parser_wipe(&f->parser);
			return false;
		}
		if (c->n_args == 2) {
			if (strcmp(c->args[1].str, "=") == 0)
				return auth_plain(s, tag, c->tag_len, "", 0);
			return auth_plain(s, tag, c->tag_len, c->args[1].str, c->args[1].len);
		}
		auth_challenge(s, tag, c->tag_len, AW_PLAIN, "");
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

	if (f->auth_pending != AW_NONE) {
		f->auth_pending = AW_NONE;
		wipe_creds(f);
		snprintf(tag, sizeof(tag), "%s", f->ctag);
	} else if (c->tag != NULL && c->tag_len <= FRONT_TAG_MAX) {
		memcpy(tag, c->tag, c->tag_len);
		tag[c->tag_len] = '\0';
	}
	if (c->must_close) {
		front_io_reply(s, "* BYE %s\r\n", imap_err_str(c->err));
		front_io_close_after_reply(s, SE_PROTOCOL);
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

		if (front_io_wait(s))
			return;
		rc = imap_parser_feed(&f->parser, f->io.rbuf + f->io.rpos, f->io.rlen - f->io.rpos,
				      &used, &c);
		f->io.rpos += used;
		if (rc == MF_AGAIN) {
			if (imap_parser_continuation_due(&f->parser))
				front_io_reply(s, "+ OK\r\n");
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

/* A login USEND sent n bytes of the current segment. */
static void up_sent(struct session *s, size_t n)
{
	struct imap_front *f = s->front;

	if (f->ustate == US_STARTTLS || f->ustate == US_ID) {
		f->cmd_off += n;
		if (f->cmd_off < f->cmd_len)
			front_io_upstream_send(s, f->cmd + f->cmd_off, f->cmd_len - f->cmd_off);
		else
			front_io_upstream_process(s);
		return;
	}
	f->seg_off += n;
	if (f->seg_off < f->login.seg_end[f->seg] - (f->seg ? f->login.seg_end[f->seg - 1] : 0)) {
		send_segment(s);
		return;
	}
	if (f->ustate == US_REPLY && f->seg + 1 == f->login.n_seg) {
		/* The whole command is on its way: the password is no longer
		 * needed here, unless the source's OK is to start a copy with
		 * it (then login_ok/login_no wipe it). The replayed command
		 * goes either way. */
		if (front_io_creds_wanted(s))
			explicit_bzero(&f->login, sizeof(f->login));
		else
			wipe_creds(f);
	}
	f->seg_off = 0;
	front_io_upstream_process(s);
}

/* --- life cycle ----------------------------------------------------------- */

static const struct front_io_ops imap_io_ops = {
	.run = front_run,
	.up_line = up_line,
	.up_fail = up_fail,
	.up_sent = up_sent,
	.timeout_reply = "* BYE Pre-authentication timeout\r\n",
	.resume = resume,
};

int imap_front_start(struct session *s)
{
	struct imap_front *f = calloc(1, sizeof(*f));
	struct imap_limits lim;
	const struct banner *b;
	char greeting[CAPS_MAX + BANNER_TEXT_MAX + 32], cb[CAPS_MAX];
	int n;

	if (f == NULL)
		return MF_ERROR;
	imap_limits_get_default(&lim);
	lim.max_nonsync = lim.max_literal; /* LITERAL+ is advertised */
	if (imap_parser_init(&f->parser, &lim) != MF_OK) {
		free(f);
		errno = ENOMEM;
		return MF_ERROR;
	}
	b = front_io_banner(s, BP_IMAP);
	f->src_caps = b ? b->caps : 0;
	s->front = f; /* caps() reads it; front_io_start() sets it for good */
	n = snprintf(greeting, sizeof(greeting), "* OK [CAPABILITY %s] %s\r\n", caps(s, cb),
		     b && b->text[0] ? b->text : "mailferry ready");
	if (front_io_start(s, &f->io, &imap_io_ops, greeting, (size_t)n) != MF_OK) {
		front_io_wipe(&f->io);
		imap_parser_free(&f->parser);
		free(f);
		errno = ENOMEM;
		return MF_ERROR;
	}
	return MF_OK;
}

void imap_front_free(struct session *s)
{
	struct imap_front *f = s->front;

	if (f == NULL)
		return;
	wipe_creds(f);
	imap_parser_free(&f->parser);
	front_io_wipe(&f->io);
	free(f);
	s->front = NULL;
}

const struct front_ops imap_front_ops = {
	.name = "imap",
	.plain_port = 143,
	.tls_port = 993,
	.busy_line = "* BYE [UNAVAILABLE] Too many connections from your address\r\n",
	.cutover_line = "* BYE [UNAVAILABLE] Your mailbox is moving to a new server, log in again\r\n",
	.start = imap_front_start,
	.on_cqe = front_io_on_cqe,
	.on_connect = imap_front_on_connect,
	.free = imap_front_free,
};
