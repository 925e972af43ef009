/* nft_chain.h — chain prerouting of table inet mailferry and its rules.
 *
 * Eight rules, each the twin of a line of mailferry.nft, built expression
 * by expression the way nft generates them (tests/unit/test-nft-ruleset.c
 * holds nft's own output for comparison):
 *   1. socket transparent 1, socket wildcard 0 -> mark, accept
 *   2. the SYN gate's pass mark -> ct mark, accept (observe mode)
 *   3-4. ip/ip6 daddr @sources, saddr @clients, tcp dport @ports -> tproxy
 *   5-6. new direct flow to a source -> counted in @direct4/@direct6
 *   7-8. new direct flow to a source -> ct mark (tproxy leaves it alone). */
#ifndef MF_NFT_CHAIN_H
#define MF_NFT_CHAIN_H

#include "config.h"
#include "nft_batch.h"
#include "nft_ruleset.h"

#include <libnftnl/rule.h>
#include <stddef.h>

#define NFT_CHAIN "prerouting"
#define NFT_RULES 8
/* NF_IP_PRI_MANGLE: after conntrack (-200), so flows are known. Spelled
 * out because linux/netfilter_ipv4.h clashes with netinet/in.h. */
#define NFT_PRIO_MANGLE (-150)

/* Adds the chain and its rules to b (after the sets they look up).
 * MF_ERROR only when out of memory. */
int nft_chain_build(struct nft_batch *b, const struct mf_config *cfg);

/* The rules as install builds them from cfg, into rules_r. MF_OK (caller
 * frees each with nftnl_rule_free) or MF_ERROR (no memory, none left). */
int nft_chain_rules(const struct mf_config *cfg,
		    struct nftnl_rule *rules_r[NFT_RULES]);

/* A rule's expressions as `nft --debug=netlink` prints them, one
 * "[ name args ]" each, space separated: how status compares the kernel's
 * rules with ours. MF_ERROR if it does not fit in len. */
int nft_chain_rule_text(struct nftnl_rule *r, char *buf, size_t len);

#endif
