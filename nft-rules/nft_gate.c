#include "nft_gate.h"
#include "nft_expr.h"
#include "nft_ruleset.h"
#include "mf.h"

#include <libnftnl/chain.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <netinet/in.h>
#include <string.h>

static const char *const rule_what[NFT_GATE_RULES] = {
	"adding gate rule 1 (ip, fail-closed)",
	"adding gate rule 2 (ip, fail-open)",
	"adding gate rule 3 (ip6, fail-closed)",
	"adding gate rule 4 (ip6, fail-open)",
};

/* tcp flags & (syn | ack) == syn ip daddr @sources4 ip saddr @clients4
 * tcp dport @ports [meta l4proto @fail_closed], in nft's own order: the
 * tcp dependency comes first because the first match is on tcp. A SYN
 * without ACK opens a flow (or retransmits the opening): queuing exactly
 * these keeps every established packet on the kernel's fast path. */
static void rule_match(struct nft_rule_builder *rb, const struct nft_family *f,
		       bool closed)
{
	uint8_t tcp = IPPROTO_TCP, nfproto = f->nfproto;
	uint8_t mask = 0x12 /* SYN | ACK */, zero = 0, syn = 0x02;

	nft_expr_meta_load(rb, NFT_META_L4PROTO);
	nft_expr_cmp_eq(rb, &tcp, sizeof(tcp));
	nft_expr_payload_load(rb, NFT_PAYLOAD_TRANSPORT_HEADER, 13, 1);
	nft_expr_bitwise(rb, &mask, &zero, 1);
	nft_expr_cmp_eq(rb, &syn, sizeof(syn));
	nft_expr_meta_load(rb, NFT_META_NFPROTO);
	nft_expr_cmp_eq(rb, &nfproto, sizeof(nfproto));
	nft_expr_payload_load(rb, NFT_PAYLOAD_NETWORK_HEADER, f->daddr_off,
			      f->addr_len);
	nft_expr_lookup(rb, nft_sets[f->sources].name, nft_set_id(f->sources));
	nft_expr_payload_load(rb, NFT_PAYLOAD_NETWORK_HEADER, f->saddr_off,
			      f->addr_len);
	nft_expr_lookup(rb, nft_sets[f->clients].name, nft_set_id(f->clients));
	nft_expr_payload_load(rb, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
	nft_expr_lookup(rb, nft_sets[NFT_SET_PORTS].name, nft_set_id(NFT_SET_PORTS));
	if (closed) {
		nft_expr_meta_load(rb, NFT_META_L4PROTO);
		nft_expr_lookup(rb, nft_sets[NFT_SET_FAIL_CLOSED].name,
				nft_set_id(NFT_SET_FAIL_CLOSED));
	}
}

static void rule_action(struct nft_rule_builder *rb, const struct mf_config *cfg,
			bool native_queue, bool closed)
{
	uint32_t mark = cfg->gate_mark + (closed ? 1 : 0); /* host-endian */

	if (native_queue) {
		nft_expr_queue(rb, cfg->queue_num, closed ? 0 : NFT_QUEUE_FLAG_BYPASS);
		return;
	}
	nft_expr_imm_data(rb, &mark, sizeof(mark));
	nft_expr_meta_set(rb, NFT_META_MARK);
	nft_expr_verdict(rb, NF_ACCEPT);
}

int nft_gate_rules(const struct mf_config *cfg, bool native_queue,
		   struct nftnl_rule *rules_r[NFT_GATE_RULES])
{
	int i;

	memset(rules_r, 0, NFT_GATE_RULES * sizeof(rules_r[0]));
	for (i = 0; i < NFT_GATE_RULES; i++) {
		struct nft_rule_builder rb = { .rule = nftnl_rule_alloc() };
		bool closed = i % 2 == 0;

		if (rb.rule == NULL)
			goto fail;
		rules_r[i] = rb.rule;
		if (nftnl_rule_set_str(rb.rule, NFTNL_RULE_TABLE, NFT_TABLE) < 0 ||
		    nftnl_rule_set_str(rb.rule, NFTNL_RULE_CHAIN, NFT_GATE_CHAIN) < 0)
			goto fail;
		nftnl_rule_set_u32(rb.rule, NFTNL_RULE_FAMILY, NFPROTO_INET);
		rule_match(&rb, &nft_families[i / 2], closed);
		rule_action(&rb, cfg, native_queue, closed);
		if (rb.failed)
			goto fail;
	}
	return MF_OK;
fail:
	for (i = 0; i < NFT_GATE_RULES; i++) {
		if (rules_r[i] != NULL)
			nftnl_rule_free(rules_r[i]);
		rules_r[i] = NULL;
	}
	return MF_ERROR;
}

int nft_gate_build(struct nft_batch *b, const struct mf_config *cfg,
		   const struct nft_gate_opts *gate)
{
	struct nftnl_rule *rules[NFT_GATE_RULES];

	if (nft_batch_prerouting_chain(b, NFT_TABLE, NFT_GATE_CHAIN, NFT_PRIO_GATE,
				       "creating chain gate") != MF_OK)
		return MF_ERROR;
	if (nft_gate_rules(cfg, gate->native_queue, rules) != MF_OK)
		return MF_ERROR;
	nft_batch_put_rules(b, NFPROTO_INET, rules, NFT_GATE_RULES, rule_what);
	return MF_OK;
}
