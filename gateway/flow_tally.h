/* flow_tally.h — new flows per intercepted client subnet and mail port,
 * counted by the SYN gate and written to the ledger once a second: what
 * observe mode is for (sizing a migration before switching it on), and
 * what the retire report reads.
 *
 * Subnets are those of [intercept] clients as the admin wrote them; a flow
 * counts for the most specific one that holds its source. One gate thread
 * owns the tally: no locking. */
#ifndef MF_FLOW_TALLY_H
#define MF_FLOW_TALLY_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ledger;

struct flow_tally {
	struct mf_cidr clients[MF_MAX_CLIENTS];
	unsigned int n_clients;
	uint16_t ports[MF_MAX_PORTS];
	unsigned int n_ports;
	uint32_t (*n)[MF_MAX_PORTS][2]; /* [client][port][observed?] since the last flush */
	bool dirty;
};

/* MF_OK or MF_ERROR (no memory). Counts nothing until configured. */
int flow_tally_init(struct flow_tally *t);
void flow_tally_destroy(struct flow_tally *t);

/* Takes cfg's client subnets and ports. Call with nothing counted (after a
 * successful flush): counts are kept by position in those lists. */
void flow_tally_configure(struct flow_tally *t, const struct mf_config *cfg);

/* One new flow from src (16 bytes, IPv4 mapped) to port. False when no
 * configured subnet holds src or port is not a mail port of the config. */
bool flow_tally_count(struct flow_tally *t, const uint8_t src[16], uint16_t port,
		      bool observed);

/* Adds what was counted to the ledger and starts again from zero. On
 * MF_ERROR (err) the counts are kept for the next try. */
int flow_tally_flush(struct flow_tally *t, struct ledger *l, int64_t now, char *err,
		     size_t errlen);

#endif
