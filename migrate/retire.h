/* retire.h — is the source safe to switch off? What `mailferry report
 * retire` prints, built from the ledger alone.
 *
 * Safe means: the ledger knows accounts (imported or seen), every one of
 * them is MIGRATED, and no client reached the source directly within the
 * window before now: neither flows the SYN gate let through untouched
 * (observe mode: a flow_count row's `observed`) nor flows that never met
 * the gate (a subnet not intercepted: `direct`, per client address). A
 * row's last_seen is its last flow of any kind, so a row with old direct
 * counts and recent intercepted flows is listed too: over-cautious, never
 * the other way. Everything that keeps the source needed is
 * listed: accounts never seen (imported, no login), seen but not migrated
 * (SEEN, COPYING, CUTOVER, FORCE, ROLLBACK), FAILED with their reasons,
 * PINNED; each with its last login on the source (last_seen) and client;
 * and the client subnets or addresses with direct flows, with counts.
 * Also every gateway that shares the ledger with its health: a silent
 * one's last flow counts may not be in, which the verdict says.
 */
#ifndef MF_RETIRE_H
#define MF_RETIRE_H

#include "ledger.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum retire_kind {
	RETIRE_NEVER_SEEN = 0, /* UNSEEN */
	RETIRE_NOT_MIGRATED,   /* SEEN, COPYING, CUTOVER, FORCE, ROLLBACK */
	RETIRE_FAILED,
	RETIRE_PINNED,
};
#define RETIRE_KIND_COUNT (RETIRE_PINNED + 1)

/* "never_seen", "not_migrated", "failed", "pinned". */
const char *retire_kind_name(enum retire_kind k);

struct retire_report {
	int64_t generated, window_s;
	uint64_t total, migrated;
	uint64_t n[RETIRE_KIND_COUNT];
	struct account *accounts;  /* those still on the source, by kind then name */
	enum retire_kind *kinds;   /* kinds[i] of accounts[i] */
	size_t n_accounts;
	struct flow_count *flows;  /* direct flows seen within the window */
	size_t n_flows;
	uint64_t direct_flows;     /* their sum */
	struct gateway_beat *gateways; /* every gateway on the ledger, by id */
	size_t n_gateways, n_silent;
	bool safe;
	char verdict[512];
};

/* Reads l. MF_OK, or MF_ERROR with err (r is then empty). */
int retire_report_build(struct ledger *l, int64_t now, int64_t window_s,
			struct retire_report *r, char *err, size_t errlen);

void retire_report_free(struct retire_report *r);

#endif
