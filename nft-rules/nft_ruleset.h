/* nft_ruleset.h — what table inet mailferry holds, built from the config.
 *
 * The one place that knows the table's names and shape: install writes
 * it, status compares the kernel's copy with it. It mirrors
 * nft-rules/mailferry.nft expression for expression (compare with
 * `nft --debug=netlink -f mailferry.nft`), so nft lists our table exactly
 * as it would list its own. */
#ifndef MF_NFT_RULESET_H
#define MF_NFT_RULESET_H

#include "config.h"
#include "nft_batch.h"
#include "nft_gate.h"
#include "policy_route.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NFT_TABLE "mailferry"

enum nft_set_idx {
	NFT_SET_SOURCES4 = 0,
	NFT_SET_SOURCES6,
	NFT_SET_CLIENTS4,
	NFT_SET_CLIENTS6,
	NFT_SET_PORTS,
	NFT_SET_FAIL_CLOSED, /* holds "tcp" exactly while fail-closed */
	NFT_SET_DIRECT4,     /* client address . port of flows that went to a */
	NFT_SET_DIRECT6,     /* source directly, with a counter: nft_direct.h */
	NFT_SET_COUNT
};

struct nft_set_def {
	const char *name;
	uint32_t key_type; /* nft's datatype: what `nft list` prints as type */
	uint32_t key_len;
	uint32_t flags;    /* NFT_SET_INTERVAL for the client subnets */
	int family;        /* of the addresses; 0 for ports */
	/* Sets the rules fill (NFT_SET_EVAL): element bound, default element
	 * timeout, a counter per element; their key is address . port. */
	uint32_t size;
	uint64_t timeout_ms;
};

extern const struct nft_set_def nft_sets[NFT_SET_COUNT];

/* The id a set gets in the batch that creates it, so that rules in the
 * same batch can name it (nft does the same). */
uint32_t nft_set_id(enum nft_set_idx i);

/* Where a family's addresses sit in its network header, and its sets:
 * [0] IPv4, [1] IPv6 (the tproxy, direct-flow and gate rules). */
struct nft_family {
	uint8_t nfproto;
	uint32_t saddr_off, daddr_off, addr_len;
	enum nft_set_idx sources, clients, direct;
};

extern const struct nft_family nft_families[2];

/* The client set for an address family (AF_INET, AF_INET6). */
enum nft_set_idx nft_clients_set(int family);

/* Install records the policy-routing keys it used in the table's user
 * data, so that remove and a re-install take away exactly what was
 * installed even after the config changed. nft ignores the record.
 * MF_OK, or MF_ERROR when data holds no complete record (not our table). */
int nft_record_decode(const void *data, uint32_t len, struct policy_route *pr_r);

/* The SYN gate's iptables-nft queue rules as an install made them (it
 * records them only when it used that fallback). */
struct nft_xt_record {
	uint32_t gate_mark;
	uint32_t queue_num;
};

/* MF_OK, or MF_ERROR when data holds no such record. */
int nft_record_decode_xt(const void *data, uint32_t len, struct nft_xt_record *r);

/* Adds to b everything install does, in one transaction: create the table
 * if missing and delete it (so whatever was there goes, atomically), then
 * the new table, its sets with the elements from cfg, the chain and its
 * rules (nft_chain.h), and the SYN gate chain (nft_gate.h) in gate's mode
 * (fail_closed set filled when gate->closed). MF_ERROR with err for a config nftables would refuse
 * (overlapping client subnets) or no memory. */
int nft_ruleset_build(struct nft_batch *b, const struct mf_config *cfg,
		      const struct nft_gate_opts *gate, char *err, size_t errlen);

/* Adds to b the sets sources4/6, clients4/6 and ports with their elements
 * from cfg, in table mailferry of family (NFPROTO_INET, or NFPROTO_BRIDGE
 * for bridge mode's table, which has the same sets but no fail_closed).
 * MF_ERROR with err as nft_ruleset_build. */
int nft_ruleset_put_sets(struct nft_batch *b, uint16_t family,
			 const struct mf_config *cfg, char *err, size_t errlen);

/* The batch id nft_ruleset_put_sets gives set i in the table of family. */
uint32_t nft_ruleset_set_id(uint16_t family, enum nft_set_idx i);

/* Adds create-if-missing + delete of the table to b: afterwards it is
 * gone, and it was no error if it never existed. */
void nft_ruleset_build_delete(struct nft_batch *b);

/* Client subnets of cfg for family, sorted, duplicates dropped, into
 * out_r (room for MF_MAX_CLIENTS). MF_ERROR with err if two overlap. */
int nft_ruleset_clients(const struct mf_config *cfg, int family,
			struct mf_cidr *out_r, unsigned int *n_r, char *err,
			size_t errlen);

#endif
