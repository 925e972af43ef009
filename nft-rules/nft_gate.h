/* nft_gate.h — chain gate of table inet mailferry: the SYN gate's rules.
 *
 * New-flow SYNs (syn set, ack clear) from an intercepted client to a
 * source's mail port are sent to mailferryd's NFQUEUE before anything else
 * sees them: the chain hooks prerouting at priority raw - 10 (-310), ahead
 * of conntrack (-200), so a dropped SYN never creates a conntrack entry,
 * and ahead of the TPROXY chain (mangle, -150), which then diverts what the
 * daemon accepted. Four rules, IPv4 then IPv6, in each family first the
 * one for fail-closed (it also looks up `meta l4proto @fail_closed`, so it
 * matches only while that set holds tcp), then the one for fail-open:
 *   native (kernel has nft_queue): ... queue num N       (closed: no bypass)
 *                                  ... queue num N bypass (open)
 *   fallback (no nft queue here):  ... meta mark set GATE_MARK + 1 accept
 *                                  ... meta mark set GATE_MARK accept
 * In the fallback two iptables-nft rules at raw priority (-300) queue by
 * those marks (xt_queue.h). Either way flipping fail-open to fail-closed
 * is one set element, which the daemon changes over netlink
 * (mf_rules_set_fail_closed): a dead daemon then means pass (bypass) or
 * drop (no bypass) as the mode demands. */
#ifndef MF_NFT_GATE_H
#define MF_NFT_GATE_H

#include "config.h"
#include "nft_batch.h"

#include <libnftnl/rule.h>
#include <stdbool.h>
#include <stddef.h>

#define NFT_GATE_CHAIN "gate"
#define NFT_GATE_RULES 4
/* NF_IP_PRI_RAW - 10: before iptables' raw table and before conntrack. */
#define NFT_PRIO_GATE (-310)

struct nft_gate_opts {
	bool native_queue; /* the kernel has the nft queue statement */
	bool closed;       /* install with fail_closed holding tcp */
};

/* Adds the gate chain and its rules to b (after the sets). MF_ERROR only
 * when out of memory. */
int nft_gate_build(struct nft_batch *b, const struct mf_config *cfg,
		   const struct nft_gate_opts *gate);

/* The rules as nft_gate_build makes them, into rules_r (caller frees each
 * with nftnl_rule_free). MF_OK or MF_ERROR (no memory, none left). */
int nft_gate_rules(const struct mf_config *cfg, bool native_queue,
		   struct nftnl_rule *rules_r[NFT_GATE_RULES]);

#endif
