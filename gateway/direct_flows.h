/* direct_flows.h — moves the kernel's counts of flows that reached a
 * source directly (nft_direct.h) into the ledger's flow counts, one row
 * per client address (as a /32 or /128) and port.
 *
 * Draining zeroes the kernel's counters, so drained counts are held here
 * until the ledger took them; while some are held nothing more is
 * drained: the kernel keeps counting meanwhile, and nothing is lost or
 * counted twice when the ledger is away for a while. The SYN gate's
 * thread runs it every few seconds; `mailferry flows list` runs it too,
 * so the counts of a stopped daemon are not left in the kernel. */
#ifndef MF_DIRECT_FLOWS_H
#define MF_DIRECT_FLOWS_H

#include "nft_direct.h"
#include "nl_sock.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ledger;

struct direct_flows {
	struct nl_sock nl;
	bool nl_open;
	struct nft_direct_count *held; /* drained, not yet in the ledger */
	size_t n_held, cap;
};

void direct_flows_init(struct direct_flows *df);
void direct_flows_destroy(struct direct_flows *df);

/* Writes what an earlier call could not, then drains the kernel's
 * counters and writes them. *n_r (may be NULL): rows written. MF_OK, or
 * MF_ERROR with err (the counts not written are kept for the next call). */
int direct_flows_collect(struct direct_flows *df, struct ledger *l, int64_t now,
			 size_t *n_r, char *err, size_t errlen);

#endif
