/* account.c — account states, routing, user-name normalisation. */
#include "account.h"
#include "mf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const state_names[ACCOUNT_STATE_COUNT] = {
	[AS_UNSEEN] = "UNSEEN",     [AS_SEEN] = "SEEN",
	[AS_COPYING] = "COPYING",   [AS_CUTOVER] = "CUTOVER",
	[AS_MIGRATED] = "MIGRATED", [AS_FAILED] = "FAILED",
	[AS_PINNED] = "PINNED",     [AS_FORCE] = "FORCE",
	[AS_ROLLBACK] = "ROLLBACK",
};

const char *account_state_name(enum account_state s)
{
	if ((unsigned int)s >= ACCOUNT_STATE_COUNT)
		return "?";
	return state_names[s];
}

int account_state_parse(const char *text, enum account_state *s_r)
{
	for (unsigned int i = 0; i < ACCOUNT_STATE_COUNT; i++) {
		if (strcasecmp(text, state_names[i]) == 0) {
			*s_r = (enum account_state)i;
			return MF_OK;
		}
	}
	return MF_ERROR;
}

enum account_route account_state_route(enum account_state s)
{
	switch (s) {
	case AS_CUTOVER:
		return AR_UNAVAILABLE;
	case AS_MIGRATED:
		return AR_DESTINATION;
	case AS_UNSEEN:
	case AS_SEEN:
	case AS_COPYING:
	case AS_FAILED:
	case AS_PINNED:
	case AS_FORCE:    /* served by the source until the copy flips it */
	case AS_ROLLBACK:
		return AR_SOURCE;
	}
	return AR_SOURCE;
}

const char *account_route_name(enum account_route r)
{
	switch (r) {
	case AR_SOURCE:
		return "source";
	case AR_DESTINATION:
		return "destination";
	case AR_UNAVAILABLE:
		return "unavailable";
	}
	return "?";
}

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Bytes that never belong in a login name: they would let one account
 * hide behind another in logs, the CLI's columns or a protocol line. */
static bool bad_byte(unsigned char c)
{
	return c <= 0x20 || c == 0x7f;
}

int account_name_normalise(const char *in, size_t inlen,
			   const char *default_domain, bool equivalence,
			   char *out, size_t outlen, char *err, size_t errlen)
{
	size_t at = inlen, n_at = 0, need, dlen = 0;

	if (out == NULL || outlen == 0)
		return mf_err(err, errlen, "no room for the account name");
	out[0] = '\0';
	if (in == NULL || inlen == 0)
		return mf_err(err, errlen, "empty account name");
	if (inlen > ACCOUNT_NAME_MAX)
		return mf_err(err, errlen, "account name longer than %d bytes",
			      ACCOUNT_NAME_MAX);
	for (size_t i = 0; i < inlen; i++) {
		unsigned char c = (unsigned char)in[i];

		if (bad_byte(c))
			return mf_err(err, errlen, "account name has a space, NUL or "
				      "control character at byte %zu", i);
		if (c == '@') {
			at = i;
			n_at++;
		}
	}
	if (n_at > 1)
		return mf_err(err, errlen, "account name has more than one '@'");
	if (at == 0)
		return mf_err(err, errlen, "account name has an empty local part");
	if (n_at == 1 && at == inlen - 1)
		return mf_err(err, errlen, "account name has an empty domain");

	need = inlen;
	if (n_at == 0 && equivalence && default_domain != NULL &&
	    default_domain[0] != '\0') {
		dlen = strlen(default_domain);
		for (size_t i = 0; i < dlen; i++)
			if (bad_byte((unsigned char)default_domain[i]) ||
			    default_domain[i] == '@')
				return mf_err(err, errlen, "bad default domain");
		need += 1 + dlen;
	}
	if (need > ACCOUNT_NAME_MAX)
		return mf_err(err, errlen, "account name longer than %d bytes "
			      "with the default domain", ACCOUNT_NAME_MAX);
	if (need >= outlen)
		return mf_err(err, errlen, "no room for the account name");

	for (size_t i = 0; i < inlen; i++)
		out[i] = lower(in[i]);
	if (dlen > 0) {
		out[inlen] = '@';
		for (size_t i = 0; i < dlen; i++)
			out[inlen + 1 + i] = lower(default_domain[i]);
	}
	out[need] = '\0';
	return MF_OK;
}

bool account_name_is_normal(const char *name)
{
	char norm[ACCOUNT_NAME_MAX + 1];
	size_t len;

	if (name == NULL)
		return false;
	len = strnlen(name, ACCOUNT_NAME_MAX + 1);
	if (account_name_normalise(name, len, NULL, false, norm, sizeof(norm),
				   NULL, 0) != MF_OK)
		return false;
	return strcmp(norm, name) == 0;
}

unsigned int migrate_retry_delay(const struct migrate_backoff *b, unsigned int failures)
{
	uint64_t d = b->first_s;

	if (b->first_s == 0)
		return 0;
	for (unsigned int i = 1; i < failures && d < b->max_s; i++)
		d *= 2;
	return d > b->max_s ? b->max_s : (unsigned int)d;
}

#define ATTEMPT_MARK " (attempt "

void migrate_failed_reason(char *out, size_t len, const char *why, unsigned int failures,
			   unsigned int delay_s)
{
	char tail[80];
	size_t tl, wl = strlen(why);

	if (len == 0)
		return;
	if (delay_s > 0)
		snprintf(tail, sizeof(tail), ATTEMPT_MARK "%u, next in %u s)", failures, delay_s);
	else
		snprintf(tail, sizeof(tail), ATTEMPT_MARK "%u, no automatic retry)", failures);
	tl = strlen(tail);
	if (tl + 1 > len) {
		out[0] = '\0';
		return;
	}
	if (wl > len - 1 - tl)
		wl = len - 1 - tl;
	memcpy(out, why, wl);
	memcpy(out + wl, tail, tl + 1);
}

unsigned int migrate_failures(const char *reason)
{
	const char *p = NULL, *q = reason;
	unsigned long n;
	char *end;

	while ((q = strstr(q, ATTEMPT_MARK)) != NULL)
		p = q++;
	if (p == NULL)
		return 1;
	p += strlen(ATTEMPT_MARK);
	if (*p < '1' || *p > '9')
		return 1;
	n = strtoul(p, &end, 10);
	if (*end != ',' || n > 1000000)
		return 1;
	return (unsigned int)n;
}

bool migrate_retry_due(const struct migrate_backoff *b, unsigned int failures,
		       int64_t failed_at, int64_t now)
{
	unsigned int d = migrate_retry_delay(b, failures);

	return d != 0 && now >= failed_at && now - failed_at >= (int64_t)d;
}
