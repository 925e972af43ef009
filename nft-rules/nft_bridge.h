/* nft_bridge.h — table bridge mailferry: bridge mode's rules (issue 7).
 *
 * In bridge mode the gateway is a transparent L2 bridge in front of the old
 * server. Frames of mail flows between intercepted clients and the sources
 * would simply be bridged; this table, on the bridge's prerouting hook at
 * priority -300, turns them into frames for the gateway itself (packet type
 * host, destination MAC the bridge's own), so they go up its IP stack where
 * table inet mailferry treats them exactly as in router mode (SYN gate,
 * tproxy, socket rule). Four rules, IPv4 then IPv6, each the twin of a line
 * of nft-rules/mailferry-bridge.nft:
 *   1./2. ether type ip(6), daddr @sources, saddr @clients, tcp dport @ports
 *         (client to source: diverted, or forwarded when not)
 *   3./4. ether type ip(6), saddr @sources, daddr @clients, tcp sport @ports
 *         (source to client: the replies to the gateway's upstream legs)
 *   -> meta pkttype set host ether daddr set BRIDGE-MAC accept
 * `ether type` reads the frame's own type field, so VLAN-tagged frames do
 * not match: they cross the bridge untouched. Everything else does too. */
#ifndef MF_NFT_BRIDGE_H
#define MF_NFT_BRIDGE_H

#include "br_sysctl.h"
#include "config.h"
#include "nft_batch.h"

#include <libnftnl/rule.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NFT_BRIDGE_CHAIN "prerouting"
#define NFT_BRIDGE_RULES 4
/* Before the bridge's conntrack (-200) and br_netfilter (0). */
#define NFT_PRIO_BRIDGE (-300)

/* The rules as install builds them from cfg for a bridge whose own MAC is
 * mac, into rules_r (caller frees each with nftnl_rule_free). MF_OK or
 * MF_ERROR (no memory, none left). */
int nft_bridge_rules(const struct mf_config *cfg, const uint8_t mac[6],
		     struct nftnl_rule *rules_r[NFT_BRIDGE_RULES]);

/* Adds to b: create-if-missing + delete of table bridge mailferry, then
 * the table with saved (the br_netfilter sysctls as they were before the
 * first bridge-mode install) in its user data, the sets sources4/6,
 * clients4/6 and ports from cfg, the chain and its rules. MF_ERROR with
 * err as nft_ruleset_build. */
int nft_bridge_build(struct nft_batch *b, const struct mf_config *cfg,
		     const uint8_t mac[6], const struct br_sysctl *saved,
		     char *err, size_t errlen);

/* Adds create-if-missing + delete of table bridge mailferry to b. */
void nft_bridge_build_delete(struct nft_batch *b);

/* The sysctls recorded by nft_bridge_build in the table's user data.
 * MF_OK, or MF_ERROR when data holds no complete record. */
int nft_bridge_record_decode(const void *data, uint32_t len,
			     struct br_sysctl *saved_r);

#endif
