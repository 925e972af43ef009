/* nft_set.h — elements of the sets in table inet mailferry.
 *
 * Keys travel as raw bytes in network order (addresses, ports): the set's
 * key type tells nft how to print them. Interval sets (the client subnets)
 * hold two elements per subnet, see nft_interval.h. */
#ifndef MF_NFT_SET_H
#define MF_NFT_SET_H

#include "nft_batch.h"
#include "nft_interval.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nft_elem {
	uint8_t key[16];
	uint32_t len;  /* 2 (port), 4 or 16 (address) */
	bool end;      /* NFT_SET_ELEM_INTERVAL_END */
	/* The start of a range without end element (runs to the top). Only
	 * nft cares: it is told so in the element's user data, else it
	 * lists the range wrongly. */
	bool open;
};

void nft_elem_from_addr(const struct mf_addr *a, struct nft_elem *e_r);
void nft_elem_from_port(uint16_t port, struct nft_elem *e_r);
/* The one element of set fail_closed: the protocol number of tcp. */
void nft_elem_fail_closed(struct nft_elem *e_r);
/* The one or two elements for subnet c; returns how many. */
unsigned int nft_elem_from_cidr(const struct mf_cidr *c,
				struct nft_elem elems_r[2]);

/* Adds one NEWSETELEM or DELSETELEM (type) message for set to b.
 * set_id != 0 names a set created earlier in the same batch. MF_ERROR only
 * when out of memory. */
int nft_set_put_elems(struct nft_batch *b, uint16_t type, uint16_t flags,
		      const char *set, uint32_t set_id,
		      const struct nft_elem *elems, size_t n, const char *what);

/* The same for the set of that name in table mailferry of family
 * (NFPROTO_INET or, in bridge mode, NFPROTO_BRIDGE). */
int nft_set_put_elems_family(struct nft_batch *b, uint16_t family, uint16_t type,
			     uint16_t flags, const char *set, uint32_t set_id,
			     const struct nft_elem *elems, size_t n,
			     const char *what);

/* Calls cb for every element of set (key bytes, end flag). MF_OK;
 * MF_ERROR with *e_r set, e_r->error == ENOENT if the table or the set
 * does not exist. */
int nft_set_dump(struct nl_sock *s, const char *set,
		 int (*cb)(const struct nft_elem *e, void *data), void *data,
		 struct nl_error *e_r);

/* The same for any element dump request (type NFT_MSG_GETSETELEM, or
 * the reset variant) in table mailferry of family inet, handing cb
 * libnftnl's parsed element; cb returns 0 to go on, -1 to stop
 * (MF_ERROR, e_r->error ECANCELED). */
struct nftnl_set_elem;
int nft_set_dump_elems(struct nl_sock *s, const char *set, uint16_t type,
		       int (*cb)(struct nftnl_set_elem *se, void *data), void *data,
		       struct nl_error *e_r);

/* nft_set_dump in table mailferry of family. */
int nft_set_dump_family(struct nl_sock *s, uint16_t family, const char *set,
			int (*cb)(const struct nft_elem *e, void *data),
			void *data, struct nl_error *e_r);

#endif
