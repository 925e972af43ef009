#include "account_tally.h"
#include "ledger.h"
#include "mf.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int count_one(const struct account *a, void *data)
{
	struct account_tally *t = data;

	if ((unsigned int)a->state < ACCOUNT_STATE_COUNT)
		t->by_state[a->state]++;
	t->total++;
	if (a->last_seen > t->last_seen)
		t->last_seen = a->last_seen;
	return MF_OK;
}

static int add_gateway(const struct gateway_beat *b, void *data)
{
	struct account_tally *t = data;

	if (t->n_gateways < ACCOUNT_TALLY_GATEWAYS)
		t->gateways[t->n_gateways++] = *b;
	else
		t->more_gateways++;
	return MF_OK;
}

int account_tally_read(struct ledger *l, struct account_tally *t_r, char *err, size_t errlen)
{
	memset(t_r, 0, sizeof(*t_r));
	t_r->read_at = (int64_t)time(NULL);
	if (ledger_account_list(l, -1, count_one, t_r, err, errlen) != MF_OK ||
	    ledger_gateway_list(l, add_gateway, t_r, err, errlen) != MF_OK)
		return MF_ERROR;
	return MF_OK;
}

uint64_t account_tally_on_source(const struct account_tally *t)
{
	return t->total - t->by_state[AS_MIGRATED];
}

bool account_tally_retire_safe(const struct account_tally *t)
{
	return t->total > 0 && account_tally_on_source(t) == 0;
}

void account_tally_verdict(const struct account_tally *t, char *buf, size_t len)
{
	const uint64_t *s = t->by_state;

	if (t->total == 0) {
		snprintf(buf, len, "the ledger knows no accounts yet");
		return;
	}
	if (account_tally_retire_safe(t)) {
		snprintf(buf, len, "every account the ledger knows is migrated (%llu)",
			 (unsigned long long)t->total);
		return;
	}
	snprintf(buf, len,
		 "source still needed: %llu of %llu accounts not migrated (%llu never seen, "
		 "%llu seen or copying, %llu failed, %llu pinned)",
		 (unsigned long long)account_tally_on_source(t), (unsigned long long)t->total,
		 (unsigned long long)s[AS_UNSEEN],
		 (unsigned long long)(s[AS_SEEN] + s[AS_COPYING] + s[AS_CUTOVER] + s[AS_FORCE] +
				      s[AS_ROLLBACK]),
		 (unsigned long long)s[AS_FAILED], (unsigned long long)s[AS_PINNED]);
}
