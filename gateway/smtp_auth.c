/* smtp_auth.c — AUTH PLAIN and AUTH LOGIN on submission ports: decode the
 * client's credentials (sasl.h), route the account by its ledger state and
 * start the backend conversation that replays them (smtp_backend.c). See
 * smtp_front.h. Credentials live in struct smtp_front's plain/luser only,
 * wiped once AUTH PLAIN is sent upstream or the attempt ends. */
#include "smtp_state.h"
#include "account.h"
#include "mf.h"
#include "session.h"
#include "worker.h"

#include <string.h>
#include <strings.h>

static bool start_login(struct session *s, const char *user, size_t user_len, const char *pass,
			size_t pass_len)
{
	struct smtp_front *f = s->front;
	char name[ACCOUNT_NAME_MAX + 1], err[128];

	if (user_len == 0 || user_len > SASL_FIELD_MAX || pass_len == 0 ||
	    pass_len > SASL_FIELD_MAX ||
	    account_name_normalise(user, user_len, s->w->t.default_domain,
				   s->w->t.domain_equivalence, name, sizeof(name), err,
				   sizeof(err)) != MF_OK) {
		smtp_err_reply(s, "535 5.7.8 Error: authentication failed");
		goto fail;
	}
	/* f->plain carries the credentials until AUTH PLAIN is sent. */
	if (user != f->plain.authcid) {
		memmove(f->plain.authcid, user, user_len);
		f->plain.authcid[user_len] = '\0';
		f->plain.authcid_len = user_len;
	}
	if (pass != f->plain.passwd) {
		memmove(f->plain.passwd, pass, pass_len);
		f->plain.passwd[pass_len] = '\0';
		f->plain.passwd_len = pass_len;
	}
	switch (front_io_route_connect(s, name)) {
	case FRF_OK:
		f->up_route = s->route;
		f->ustate = UP_GREETING;
		return true;
	case FRF_LEDGER:
		front_io_reply(s, "454 4.7.0 Temporary authentication failure "
			       "(account database unavailable)\r\n");
		break;
	case FRF_MIGRATING:
		/* RFC 4954 §6: 454 is the temporary authentication failure a
		 * client retries; 451 4.2.0 is not among AUTH's replies. */
		front_io_reply(s, "454 4.7.0 Account is being migrated, try again later\r\n");
		break;
	case FRF_NO_DEST:
	case FRF_SOCKET:
		front_io_reply(s, "454 4.7.0 Temporary authentication failure, try again later\r\n");
		break;
	}
fail:
	smtp_wipe_creds(f);
	return false;
}

static bool auth_plain(struct session *s, const uint8_t *b64, size_t b64_len)
{
	struct smtp_front *f = s->front;
	uint8_t msg[3 * (SASL_FIELD_MAX + 1)];
	size_t n = 0;
	int rc;

	rc = sasl_b64_decode((const char *)b64, b64_len, msg, sizeof(msg), &n);
	if (rc == MF_OK)
		rc = sasl_plain_parse(msg, n, &f->plain);
	explicit_bzero(msg, sizeof(msg));
	if (rc != MF_OK) {
		smtp_err_reply(s, "501 5.5.2 Cannot decode response");
		return false;
	}
	if (f->plain.authzid_len > 0 && strcmp(f->plain.authzid, f->plain.authcid) != 0) {
		smtp_wipe_creds(f);
		smtp_err_reply(s, "535 5.7.8 Error: authorization identity not supported");
		return false;
	}
	return start_login(s, f->plain.authcid, f->plain.authcid_len, f->plain.passwd,
			   f->plain.passwd_len);
}

static void auth_challenge(struct session *s, enum auth_wait wait, const char *challenge)
{
	struct smtp_front *f = s->front;

	smtp_parser_expect_auth_data(&f->parser);
	f->auth_pending = (uint8_t)wait;
	front_io_reply(s, "334 %s\r\n", challenge);
}

static void auth_login_user(struct session *s, const uint8_t *b64, size_t b64_len)
{
	struct smtp_front *f = s->front;

	if (sasl_login_decode((const char *)b64, b64_len, f->luser, &f->luser_len) != MF_OK) {
		smtp_err_reply(s, "501 5.5.2 Cannot decode response");
		return;
	}
	auth_challenge(s, AW_LOGIN_PASS, sasl_login_prompt(SASL_LOGIN_PASS));
}

static bool auth_login_pass(struct session *s, const uint8_t *b64, size_t b64_len)
{
	struct smtp_front *f = s->front;
	char pass[SASL_FIELD_MAX + 1];
	size_t pass_len = 0;
	bool started;

	if (sasl_login_decode((const char *)b64, b64_len, pass, &pass_len) != MF_OK) {
		smtp_wipe_creds(f);
		smtp_err_reply(s, "501 5.5.2 Cannot decode response");
		return false;
	}
	sasl_plain_wipe(&f->plain);
	started = start_login(s, f->luser, f->luser_len, pass, pass_len);
	explicit_bzero(pass, sizeof(pass));
	explicit_bzero(f->luser, sizeof(f->luser));
	f->luser_len = 0;
	return started;
}

static bool is_mech(const struct smtp_cmd *c, const char *mech)
{
	return c->arg_len == strlen(mech) && strncasecmp((const char *)c->arg, mech, c->arg_len) == 0;
}

bool smtp_auth(struct session *s, struct smtp_cmd *c)
{
	struct smtp_front *f = s->front;
	bool started = false;

	if (c->type == SMTP_CMD_AUTH_DATA || c->type == SMTP_CMD_AUTH_CANCEL) {
		enum auth_wait wait = (enum auth_wait)f->auth_pending;

		f->auth_pending = AW_NONE;
		if (c->type == SMTP_CMD_AUTH_CANCEL) {
			smtp_wipe_creds(f);
			smtp_err_reply(s, "501 5.7.0 Authentication aborted");
		} else if (wait == AW_LOGIN_USER) {
			auth_login_user(s, c->arg, c->arg_len);
		} else if (wait == AW_LOGIN_PASS) {
			started = auth_login_pass(s, c->arg, c->arg_len);
		} else {
			started = auth_plain(s, c->arg, c->arg_len);
		}
		smtp_cmd_wipe(c);
		return started;
	}
	if (!f->submission) {
		smtp_cmd_wipe(c);
		smtp_err_reply(s, "503 5.5.1 Error: authentication not enabled");
		return false;
	}
	if (!f->esmtp) {
		smtp_cmd_wipe(c);
		smtp_err_reply(s, "503 5.5.1 Error: send EHLO first");
		return false;
	}
	if (is_mech(c, "PLAIN")) {
		if (c->arg2 == NULL)
			auth_challenge(s, AW_PLAIN, "");
		else if (c->arg2_len == 1 && c->arg2[0] == '=')
			started = auth_plain(s, (const uint8_t *)"", 0);
		else
			started = auth_plain(s, c->arg2, c->arg2_len);
	} else if (is_mech(c, "LOGIN")) {
		if (c->arg2 == NULL)
			auth_challenge(s, AW_LOGIN_USER, sasl_login_prompt(SASL_LOGIN_USER));
		else
			auth_login_user(s, c->arg2, c->arg2_len);
	} else {
		smtp_err_reply(s, "504 5.5.4 Unrecognized authentication type");
	}
	smtp_cmd_wipe(c);
	return started;
}
