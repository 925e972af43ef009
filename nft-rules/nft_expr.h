/* nft_expr.h — append nftables expressions to a rule, the way nft does.
 *
 * Every helper works on register 1, as nft's own code generation does for
 * our rules, so `nft --debug=netlink list ruleset` reads the same for a
 * table built by us and one loaded from mailferry.nft. Errors (only out
 * of memory) are sticky: build the whole rule, then check rb->failed. */
#ifndef MF_NFT_EXPR_H
#define MF_NFT_EXPR_H

#include <libnftnl/rule.h>
#include <stdbool.h>
#include <stdint.h>

struct nft_rule_builder {
	struct nftnl_rule *rule;
	bool failed;
};

/* reg 1 = meta key (NFT_META_L4PROTO, NFT_META_NFPROTO). */
void nft_expr_meta_load(struct nft_rule_builder *rb, uint32_t key);
/* meta key (NFT_META_MARK, NFT_META_PKTTYPE) = reg 1. */
void nft_expr_meta_set(struct nft_rule_builder *rb, uint32_t key);
/* reg 1 = socket key (NFT_SOCKET_TRANSPARENT, NFT_SOCKET_WILDCARD). */
void nft_expr_socket_load(struct nft_rule_builder *rb, uint32_t key);
/* reg 1 = len bytes at offset of header base (NFT_PAYLOAD_*_HEADER). */
void nft_expr_payload_load(struct nft_rule_builder *rb, uint32_t base,
			   uint32_t offset, uint32_t len);
/* The same into register reg (NFT_REG32_xx: the later parts of a
 * concatenated key). */
void nft_expr_payload_load_to(struct nft_rule_builder *rb, uint32_t base,
			      uint32_t offset, uint32_t len, uint32_t reg);
/* update @set { key in reg 1... }: adds the key to a dynamic set or
 * refreshes it, and runs the set's per-element expressions (a counter).
 * Stops the rule when the set is full. */
void nft_expr_dynset_update(struct nft_rule_builder *rb, const char *set,
			    uint32_t set_id);
/* len bytes at offset of header base = reg 1 (no checksum update). */
void nft_expr_payload_write(struct nft_rule_builder *rb, uint32_t base,
			    uint32_t offset, uint32_t len);
/* Stop unless reg 1 equals the len bytes of data. */
/* ct KEY into register 1, and ct KEY set from register 1. */
void nft_expr_ct_load(struct nft_rule_builder *rb, uint32_t key);
void nft_expr_ct_set(struct nft_rule_builder *rb, uint32_t key);
/* register 1 != data */
void nft_expr_cmp_neq(struct nft_rule_builder *rb, const void *data, uint32_t len);
void nft_expr_cmp_eq(struct nft_rule_builder *rb, const void *data,
		     uint32_t len);
/* Stop unless reg 1 is in the named set; set_id names it within the
 * batch that creates it (0: none). */
void nft_expr_lookup(struct nft_rule_builder *rb, const char *set,
		     uint32_t set_id);
/* reg 1 = the len bytes of data. */
void nft_expr_imm_data(struct nft_rule_builder *rb, const void *data,
		       uint32_t len);
/* TPROXY to the local port in reg 1, for NFPROTO_IPV4 or NFPROTO_IPV6. */
void nft_expr_tproxy(struct nft_rule_builder *rb, uint32_t nfproto);
/* reg 1 = (reg 1 & mask) ^ xor, len bytes (nft's "flags & (a|b) == c"). */
void nft_expr_bitwise(struct nft_rule_builder *rb, const void *mask,
		      const void *xor, uint32_t len);
/* Hand the packet to NFQUEUE num; flags NFT_QUEUE_FLAG_BYPASS or 0. */
void nft_expr_queue(struct nft_rule_builder *rb, uint16_t num, uint16_t flags);
/* Final verdict (NF_ACCEPT). */
void nft_expr_verdict(struct nft_rule_builder *rb, int verdict);

#endif
