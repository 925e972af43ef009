/* nft_state.h — read table inet mailferry back from the kernel and compare
 * it with what install would build (nft_ruleset.h).
 *
 * "Absent" is an answer, not an error: every function returns MF_OK with
 * false/0 results when the table or an object in it does not exist, and
 * MF_ERROR (err) only when the kernel could not be asked. */
#ifndef MF_NFT_STATE_H
#define MF_NFT_STATE_H

#include "config.h"
#include "br_sysctl.h"
#include "nft_chain.h"
#include "nft_gate.h"
#include "nft_ruleset.h"
#include "nl_sock.h"

#include <stdbool.h>
#include <stddef.h>

struct nft_table_info {
	bool exists;
	bool has_record;       /* user data written by install */
	struct policy_route rec; /* valid if has_record */
	bool has_xt;           /* the gate's queue rules went to iptables-nft */
	struct nft_xt_record xt; /* valid if has_xt */
};

int nft_state_table(struct nl_sock *s, struct nft_table_info *t_r, char *err,
		    size_t errlen);

/* Table bridge mailferry (bridge mode, nft_bridge.h). */
struct nft_bridge_info {
	bool exists;
	bool has_record;        /* the br_netfilter sysctls install saved */
	struct br_sysctl saved; /* valid if has_record */
	bool chain_ok;          /* filter, prerouting, priority -300, accept */
	unsigned int n_rules;
	bool rules_match;       /* exactly nft_bridge_rules(cfg, mac) */
};

/* mac NULL: only the table, its record and the chain are read. */
int nft_state_bridge(struct nl_sock *s, const struct mf_config *cfg,
		     const uint8_t *mac, struct nft_bridge_info *t_r, char *err,
		     size_t errlen);

/* ok_r[i]: set i exists with the key type, length and flags install
 * gives it. */
int nft_state_sets(struct nl_sock *s, bool ok_r[NFT_SET_COUNT], char *err,
		   size_t errlen);

/* The chain exists as a filter chain on prerouting at priority mangle
 * with policy accept. */
int nft_state_chain(struct nl_sock *s, bool *ok_r, char *err, size_t errlen);

/* n_r: rules in the chain; match_r: they are, in order, exactly the ones
 * nft_ruleset_rules builds from cfg (expression by expression). */
int nft_state_rules(struct nl_sock *s, const struct mf_config *cfg,
		    unsigned int *n_r, bool *match_r, char *err, size_t errlen);

/* ok_r: chain gate is there (filter, prerouting, priority raw - 10,
 * accept) with exactly the rules install builds from cfg for a kernel
 * with (native_queue) or without the nft queue statement. */
int nft_state_gate(struct nl_sock *s, const struct mf_config *cfg,
		   bool native_queue, bool *ok_r, char *err, size_t errlen);

#endif
