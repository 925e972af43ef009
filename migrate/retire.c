#include "retire.h"
#include "mf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *retire_kind_name(enum retire_kind k)
{
	static const char *const names[RETIRE_KIND_COUNT] = {
		[RETIRE_NEVER_SEEN] = "never_seen", [RETIRE_NOT_MIGRATED] = "not_migrated",
		[RETIRE_FAILED] = "failed", [RETIRE_PINNED] = "pinned",
	};

	return (unsigned int)k < RETIRE_KIND_COUNT ? names[k] : "?";
}

static enum retire_kind kind_of(enum account_state s)
{
	switch (s) {
	case AS_UNSEEN:
		return RETIRE_NEVER_SEEN;
	case AS_FAILED:
		return RETIRE_FAILED;
	case AS_PINNED:
		return RETIRE_PINNED;
	default:
		return RETIRE_NOT_MIGRATED;
	}
}

struct collect {
	struct retire_report *r;
	size_t cap;
	int64_t since;
	size_t flow_cap;
};

static int on_account(const struct account *a, void *data)
{
	struct collect *c = data;
	struct retire_report *r = c->r;

	r->total++;
	if (a->state == AS_MIGRATED) {
		r->migrated++;
		return MF_OK;
	}
	if (r->n_accounts == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;
		struct account *na = realloc(r->accounts, cap * sizeof(*na));
		enum retire_kind *nk;

		if (na == NULL)
			return MF_ERROR;
		r->accounts = na;
		nk = realloc(r->kinds, cap * sizeof(*nk));
		if (nk == NULL)
			return MF_ERROR;
		r->kinds = nk;
		c->cap = cap;
	}
	r->accounts[r->n_accounts] = *a;
	r->kinds[r->n_accounts] = kind_of(a->state);
	r->n[kind_of(a->state)]++;
	r->n_accounts++;
	return MF_OK;
}

static int on_flow(const struct flow_count *f, void *data)
{
	struct collect *c = data;
	struct retire_report *r = c->r;

	if (f->observed + f->direct == 0 || f->last_seen < c->since)
		return MF_OK;
	if (r->n_flows == c->flow_cap) {
		size_t cap = c->flow_cap ? 2 * c->flow_cap : 16;
		struct flow_count *nf = realloc(r->flows, cap * sizeof(*nf));

		if (nf == NULL)
			return MF_ERROR;
		r->flows = nf;
		c->flow_cap = cap;
	}
	r->flows[r->n_flows++] = *f;
	r->direct_flows += f->observed + f->direct;
	return MF_OK;
}

/* Kind first (never seen, not migrated, failed, pinned), then name: the
 * ledger lists by name, and placing each kind's accounts in their order
 * keeps it (one pass, whatever the number of accounts). */
static int sort_by_kind(struct retire_report *r)
{
	struct account *a;
	size_t start[RETIRE_KIND_COUNT], at = 0;

	if (r->n_accounts == 0)
		return MF_OK;
	a = malloc(r->n_accounts * sizeof(*a));
	if (a == NULL)
		return MF_ERROR;
	for (unsigned int k = 0; k < RETIRE_KIND_COUNT; k++) {
		start[k] = at;
		at += (size_t)r->n[k];
	}
	for (size_t i = 0; i < r->n_accounts; i++)
		a[start[r->kinds[i]]++] = r->accounts[i];
	at = 0;
	for (unsigned int k = 0; k < RETIRE_KIND_COUNT; k++)
		for (uint64_t i = 0; i < r->n[k]; i++)
			r->kinds[at++] = (enum retire_kind)k;
	free(r->accounts);
	r->accounts = a;
	return MF_OK;
}

static void verdict(struct retire_report *r)
{
	long days = (long)(r->window_s / 86400);
	char window[32];

	if (r->window_s % 86400 == 0)
		snprintf(window, sizeof(window), "%ld day%s", days, days == 1 ? "" : "s");
	else
		snprintf(window, sizeof(window), "%lld s", (long long)r->window_s);
	r->safe = r->total > 0 && r->n_accounts == 0 && r->n_flows == 0;
	if (r->total == 0) {
		snprintf(r->verdict, sizeof(r->verdict),
			 "NOT SAFE to retire the source: the ledger knows no accounts "
			 "(import the list of accounts first: mailferry accounts import)");
	} else if (r->safe) {
		snprintf(r->verdict, sizeof(r->verdict),
			 "SAFE to retire the source: all %llu accounts are MIGRATED and no client "
			 "reached the source directly in the last %s",
			 (unsigned long long)r->total, window);
	} else {
		snprintf(r->verdict, sizeof(r->verdict),
			 "NOT SAFE to retire the source: %zu of %llu accounts still on it (%llu never "
			 "seen, %llu seen but not migrated, %llu failed, %llu pinned); %llu direct "
			 "flows from %zu client subnets or addresses in the last %s",
			 r->n_accounts, (unsigned long long)r->total,
			 (unsigned long long)r->n[RETIRE_NEVER_SEEN],
			 (unsigned long long)r->n[RETIRE_NOT_MIGRATED],
			 (unsigned long long)r->n[RETIRE_FAILED],
			 (unsigned long long)r->n[RETIRE_PINNED],
			 (unsigned long long)r->direct_flows, r->n_flows, window);
	}
	if (r->n_silent > 0) {
		size_t len = strlen(r->verdict);

		snprintf(r->verdict + len, sizeof(r->verdict) - len,
			 "; %zu gateway%s silent (no heartbeat for %d s): flows it saw "
			 "lately may be missing", r->n_silent, r->n_silent == 1 ? " is" : "s are",
			 LEDGER_GATEWAY_SILENT_S);
	}
}

static int on_gateway(const struct gateway_beat *b, void *data)
{
	struct retire_report *r = data;
	struct gateway_beat *g = realloc(r->gateways, (r->n_gateways + 1) * sizeof(*g));

	if (g == NULL)
		return MF_ERROR;
	r->gateways = g;
	g[r->n_gateways++] = *b;
	if (strcmp(ledger_gateway_health(b, r->generated), "silent") == 0)
		r->n_silent++;
	return MF_OK;
}

int retire_report_build(struct ledger *l, int64_t now, int64_t window_s,
			struct retire_report *r, char *err, size_t errlen)
{
	struct collect c = { .r = r, .since = now - window_s };
	int rc;

	memset(r, 0, sizeof(*r));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	r->generated = now;
	r->window_s = window_s;
	rc = ledger_account_list(l, -1, on_account, &c, err, errlen);
	if (rc == MF_OK)
		rc = ledger_flow_count_list(l, on_flow, &c, err, errlen);
	if (rc == MF_OK)
		rc = ledger_gateway_list(l, on_gateway, r, err, errlen);
	if (rc == MF_OK)
		rc = sort_by_kind(r);
	if (rc != MF_OK) {
		if (err != NULL && err[0] == '\0')
			mf_err(err, errlen, "out of memory");
		retire_report_free(r);
		return MF_ERROR;
	}
	verdict(r);
	return MF_OK;
}

void retire_report_free(struct retire_report *r)
{
	free(r->accounts);
	free(r->kinds);
	free(r->flows);
	free(r->gateways);
	memset(r, 0, sizeof(*r));
}
