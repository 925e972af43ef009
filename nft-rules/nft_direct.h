/* nft_direct.h — the flows that reached a source directly, as the rules
 * count them in sets direct4/direct6 (mailferry.nft): one element per
 * client address and mail port, with a counter.
 *
 * Draining reads and zeroes the counters in one kernel operation
 * (NFT_MSG_GETSETELEM_RESET, Linux 6.5 and later), so a flow counted
 * while we read is neither lost nor read twice, whoever drains (the
 * daemon, or `mailferry flows list` while it is down). */
#ifndef MF_NFT_DIRECT_H
#define MF_NFT_DIRECT_H

#include "netaddr.h"
#include "nl_sock.h"

#include <stddef.h>
#include <stdint.h>

struct nft_direct_count {
	struct mf_addr client;
	uint16_t port;
	uint64_t flows; /* new flows since the last drain */
};

/* Decodes one element of direct4 (key 8 bytes: address, port, padding)
 * or direct6 (20 bytes) with its packet counter. MF_OK, or MF_ERROR for
 * a key of another shape. */
int nft_direct_decode(const void *key, uint32_t len, uint64_t packets,
		      struct nft_direct_count *c_r);

/* Calls cb for every element whose counter was not zero, having zeroed
 * it. A missing table or set is no error (nothing counted). A cb result
 * other than MF_OK stops the walk and is an error: the counts it had not
 * taken yet are lost, so cb should only fail when it cannot go on.
 * MF_ERROR with the reason in err. */
int nft_direct_drain(struct nl_sock *s,
		     int (*cb)(const struct nft_direct_count *c, void *data), void *data,
		     char *err, size_t errlen);

#endif
