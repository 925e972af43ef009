/* nft_interval.h — client subnets as nftables interval-set elements, and back.
 *
 * An interval set stores a range as two elements: its first address, and
 * the first address after it flagged NFT_SET_ELEM_INTERVAL_END. A range
 * that reaches the top of the address space (255.0.0.0/8, ::/0) has no end
 * element: there is no "plus one". Pure functions, no kernel: unit-tested
 * in tests/unit/test-nft-interval.c. */
#ifndef MF_NFT_INTERVAL_H
#define MF_NFT_INTERVAL_H

#include "netaddr.h"

#include <stdbool.h>
#include <stddef.h>

struct nft_interval_elem {
	struct mf_addr key;
	bool end; /* NFT_SET_ELEM_INTERVAL_END */
};

/* The elements for subnet c: returns 2 (start, end), or 1 (start only)
 * when c reaches the top of the address space. */
unsigned int nft_interval_from_cidr(const struct mf_cidr *c,
				    struct nft_interval_elem elems_r[2]);

/* Rebuilds the subnets from the elements of one set as the kernel dumps
 * them: in any order; a lone end element (nft writes one at address 0
 * before the first range) is skipped. A range that is not a single prefix
 * (put there by hand with nft) becomes the fewest prefixes covering it
 * exactly. Sorts elems in place. Calls cb for each subnet in ascending
 * order; returns MF_OK, or the first result of cb that was not MF_OK. */
int nft_interval_to_cidrs(struct nft_interval_elem *elems, size_t n,
			  int (*cb)(const struct mf_cidr *subnet, void *data),
			  void *data);

enum nft_overlap { NFT_DISJOINT = 0, NFT_SAME, NFT_OVERLAP };

/* How two subnets relate. Prefixes either nest or are disjoint, so
 * NFT_OVERLAP means one contains the other. Different families never
 * overlap. */
enum nft_overlap nft_interval_overlap(const struct mf_cidr *a,
				      const struct mf_cidr *b);

#endif
