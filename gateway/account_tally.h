/* account_tally.h — accounts per state, read from the ledger, and what the
 * ledger alone says about retiring the source.
 *
 * The metrics server and the dashboard read this at scrape time (cached
 * briefly by the caller): one walk over the accounts, never on a worker.
 * The verdict here knows only the ledger: accounts nobody told the ledger
 * about, and clients reaching the source without passing the gateway, are
 * outside it (`mailferry report retire` is the full report). */
#ifndef MF_ACCOUNT_TALLY_H
#define MF_ACCOUNT_TALLY_H

#include "account.h"
#include "ledger.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ledger;

/* Gateways listed (their heartbeats): more share one ledger only in
 * unusual set-ups; the rest are counted, not listed. */
#define ACCOUNT_TALLY_GATEWAYS 32

struct account_tally {
	uint64_t by_state[ACCOUNT_STATE_COUNT];
	uint64_t total;
	int64_t last_seen;      /* the latest observed login of any account (0: none) */
	int64_t read_at;        /* when (the gateways' health is as of then) */
	struct gateway_beat gateways[ACCOUNT_TALLY_GATEWAYS]; /* by id */
	unsigned int n_gateways, more_gateways;
};

/* Walks every account and gateway heartbeat of l. MF_OK, or MF_ERROR with
 * err. */
int account_tally_read(struct ledger *l, struct account_tally *t_r, char *err, size_t errlen);

/* Accounts the source must still serve: every state but MIGRATED. */
uint64_t account_tally_on_source(const struct account_tally *t);

/* true when the ledger knows accounts and all of them are MIGRATED. */
bool account_tally_retire_safe(const struct account_tally *t);

/* One line: "source still needed: 3 of 5 accounts not migrated (1 never
 * seen, 1 seen or copying, 1 failed, 0 pinned)" or "every account the
 * ledger knows is migrated (5)", or "the ledger knows no accounts". */
void account_tally_verdict(const struct account_tally *t, char *buf, size_t len);

#endif
