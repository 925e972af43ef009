#include "nft_expr.h"

#include <libnftnl/expr.h>
#include <linux/netfilter/nf_tables.h>

static struct nftnl_expr *expr_new(struct nft_rule_builder *rb, const char *name)
{
	struct nftnl_expr *e;

	if (rb->failed)
		return NULL;
	e = nftnl_expr_alloc(name);
	if (e == NULL)
		rb->failed = true;
	return e;
}

void nft_expr_meta_load(struct nft_rule_builder *rb, uint32_t key)
{
	struct nftnl_expr *e = expr_new(rb, "meta");

	if (e == NULL)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	nftnl_rule_add_expr(rb->rule, e);
}

void nft_expr_meta_set(struct nft_rule_builder *rb, uint32_t key)
{
	struct nftnl_expr *e = expr_new(rb, "meta");

	if (e == NULL)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, NFT_REG_1);
	nftnl_rule_add_expr(rb->rule, e);
}

void nft_expr_socket_load(struct nft_rule_builder *rb, uint32_t key)
{
	struct nftnl_expr *e = expr_new(rb, "socket");

	if (e == NULL)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_DREG, NFT_REG_1);
	/* nft always sends the cgroup level, 0 for other keys. */
	nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_LEVEL, 0);
	nftnl_rule_add_expr(rb->rule, e);
}

/* A payload expression on len bytes at offset of base: loading into
 * register reg (attr NFTNL_EXPR_PAYLOAD_DREG) or writing it from there
 * (SREG). */
static struct nftnl_expr *payload(struct nft_rule_builder *rb, uint32_t base,
				  uint32_t offset, uint32_t len, uint16_t attr, uint32_t reg)
{
	struct nftnl_expr *e = expr_new(rb, "payload");

	if (e == NULL)
		return NULL;
	nftnl_expr_set_u32(e, attr, reg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	return e;
}

void nft_expr_payload_load_to(struct nft_rule_builder *rb, uint32_t base,
			      uint32_t offset, uint32_t len, uint32_t reg)
{
	struct nftnl_expr *e = payload(rb, base, offset, len, NFTNL_EXPR_PAYLOAD_DREG, reg);

	if (e != NULL)
		nftnl_rule_add_expr(rb->rule, e);
}

void nft_expr_payload_load(struct nft_rule_builder *rb, uint32_t base,
			   uint32_t offset, uint32_t len)
{
	nft_expr_payload_load_to(rb, base, offset, len, NFT_REG_1);
}

void nft_expr_dynset_update(struct nft_rule_builder *rb, const char *set,
			    uint32_t set_id)
{
	struct nftnl_expr *e = expr_new(rb, "dynset");

	if (e == NULL)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SREG_KEY, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
	/* nft sends 0: the element gets the set's own timeout. */
	nftnl_expr_set_u64(e, NFTNL_EXPR_DYNSET_TIMEOUT, 0);
	nftnl_expr_set_str(e, NFTNL_EXPR_DYNSET_SET_NAME, set);
	if (set_id != 0)
		nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SET_ID, set_id);
	nftnl_rule_add_expr(rb->rule, e);
}

static void cmp(struct nft_rule_builder *rb, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = expr_new(rb, "cmp");

	if (e == NULL)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	nftnl_rule_add_expr(rb->rule, e);
}

void nft_expr_cmp_eq(struct nft_rule_builder *rb, const void *data,
		     uint32_t len)
{
	cmp(rb, NFT_CMP_EQ, data, len);
}

void nft_expr_cmp_neq(struct nft_rule_builder *rb, const void *data, uint32_t len)
{
	cmp(rb, NFT_CMP_NEQ, data, len);
}

void nft_expr_ct_load(struct nft_rule_builder *rb, uint32_t key)
{
	struct nftnl_expr *e = expr_new(rb, "ct");

	if (e == NULL)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	nftnl_rule_add_expr(rb->rule, e);
}

void nft_expr_lookup(struct nft_rule_builder *rb, const char *set,
		     uint32_t set_id)
{
	struct nftnl_expr *e = expr_new(rb, "lookup");

	if (e == NULL)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
	if (nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set) < 0) {
		nftnl_expr_free(e);
		rb->failed = true;
		return;
	}
	if (set_id != 0)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
	/* nft leaves the flags out; the kernel reports them back anyway,
	 * as 0. Sending the 0 makes our rule read like the dumped one, which
	 * is how status compares them. */
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, 0);
	nftnl_rule_add_expr(rb->rule, e);
}

void nft_expr_imm_data(struct nft_rule_builder *rb, const void *data,
		       uint32_t len)
{
	struct nftnl_expr *e = expr_new(rb, "immediate");

	if (e == NULL)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
	nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, data, len);
	nftnl_rule_add_expr(rb->rule, e);
}

void nft_expr_tproxy(struct nft_rule_builder *rb, uint32_t nfproto)
{
	struct nftnl_expr *e = expr_new(rb, "tproxy");

	if (e == NULL)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_TPROXY_FAMILY, nfproto);
	nftnl_expr_set_u32(e, NFTNL_EXPR_TPROXY_REG_PORT, NFT_REG_1);
	nftnl_rule_add_expr(rb->rule, e);
}

void nft_expr_bitwise(struct nft_rule_builder *rb, const void *mask,
		      const void *xor, uint32_t len)
{
	struct nftnl_expr *e = expr_new(rb, "bitwise");

	if (e == NULL)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, xor, len);
	nftnl_rule_add_expr(rb->rule, e);
}

void nft_expr_queue(struct nft_rule_builder *rb, uint16_t num, uint16_t flags)
{
	struct nftnl_expr *e = expr_new(rb, "queue");

	if (e == NULL)
		return;
	nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_NUM, num);
	nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_TOTAL, 1);
	nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_FLAGS, flags);
	nftnl_rule_add_expr(rb->rule, e);
}

void nft_expr_verdict(struct nft_rule_builder *rb, int verdict)
{
	struct nftnl_expr *e = expr_new(rb, "immediate");

	if (e == NULL)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	nftnl_rule_add_expr(rb->rule, e);
}

void nft_expr_ct_set(struct nft_rule_builder *rb, uint32_t key)
{
	struct nftnl_expr *e = expr_new(rb, "ct");

	if (e == NULL)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_SREG, NFT_REG_1);
	nftnl_rule_add_expr(rb->rule, e);
}

void nft_expr_payload_write(struct nft_rule_builder *rb, uint32_t base,
			    uint32_t offset, uint32_t len)
{
	struct nftnl_expr *e = payload(rb, base, offset, len, NFTNL_EXPR_PAYLOAD_SREG, NFT_REG_1);

	if (e == NULL)
		return;
	/* No checksum to fix in a MAC address; sent as nft sends them, so
	 * the rule reads back the same. */
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_CSUM_TYPE, NFT_PAYLOAD_CSUM_NONE);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_CSUM_OFFSET, 0);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_FLAGS, 0);
	nftnl_rule_add_expr(rb->rule, e);
}
