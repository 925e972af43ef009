/* nft_probe.h — does this kernel have the nftables expressions we need?
 *
 * Each probe sends a batch with a throw-away table, a prerouting chain and
 * one rule using the expression, and leaves out the batch end: the kernel
 * checks every message, then discards the transaction (nft --check works
 * the same way). Nothing is ever created. A missing expression makes the
 * rule fail; autoloadable modules are loaded by the kernel on the way. */
#ifndef MF_NFT_PROBE_H
#define MF_NFT_PROBE_H

#include "nl_sock.h"

#include <stddef.h>

enum nft_feature {
	NFT_FEATURE_SOCKET = 0, /* socket transparent / wildcard */
	NFT_FEATURE_TPROXY4,    /* tproxy ip */
	NFT_FEATURE_TPROXY6,    /* tproxy ip6 */
	NFT_FEATURE_COUNT
};

/* MF_OK when all are there; MF_ERROR with err naming every missing one
 * (and its kernel option), or the reason the probe itself failed. */
int nft_probe_features(struct nl_sock *s, char *err, size_t errlen);

/* One expression by its kernel name: "socket" and "tproxy" are probed as
 * our rules use them (for tproxy nfproto picks NFPROTO_IPV4/6); any other
 * name as a bare expression without attributes, enough to learn whether
 * the kernel knows it (tests use a name no kernel has). MF_OK with
 * *present_r, or MF_ERROR (err) when the probe itself could not run. */
int nft_probe_expr(struct nl_sock *s, const char *name, int nfproto,
		   bool *present_r, char *err, size_t errlen);

#endif
