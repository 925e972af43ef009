#include "nft_chain.h"
#include "nft_expr.h"
#include "mf.h"

#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* Descriptions for error messages: a rule failing hints at its module. */
static const char *const rule_what[NFT_RULES] = {
	"adding rule 1 (socket transparent: nft_socket)",
	"adding rule 2 (observe: pass mark, ct mark)",
	"adding rule 3 (tproxy ip: nft_tproxy, ct mark)",
	"adding rule 4 (tproxy ip6: nft_tproxy, ct mark)",
	"adding rule 5 (count direct flows ip: dynamic set, counter)",
	"adding rule 6 (count direct flows ip6: dynamic set, counter)",
	"adding rule 7 (direct flows ip: ct state, ct mark)",
	"adding rule 8 (direct flows ip6: ct state, ct mark)",
};

/* meta l4proto tcp, then mark the packet and accept: shared by all rules. */
static void rule_tcp(struct nft_rule_builder *rb)
{
	uint8_t tcp = IPPROTO_TCP;

	nft_expr_meta_load(rb, NFT_META_L4PROTO);
	nft_expr_cmp_eq(rb, &tcp, sizeof(tcp));
}

static void rule_mark_accept(struct nft_rule_builder *rb,
			     const struct mf_config *cfg)
{
	uint32_t mark = cfg->fwmark; /* the mark is host-endian */

	nft_expr_imm_data(rb, &mark, sizeof(mark));
	nft_expr_meta_set(rb, NFT_META_MARK);
	nft_expr_verdict(rb, NF_ACCEPT);
}

/* meta l4proto tcp socket transparent 1 socket wildcard 0
 *     meta mark set FWMARK accept
 * Packets of flows that already have a transparent socket: diverted client
 * connections and the replies to the gateway's upstream legs. wildcard 0
 * leaves out the listener itself, which would otherwise catch forwarded
 * flows that merely share its port number. */
static void rule_socket(struct nft_rule_builder *rb, const struct mf_config *cfg)
{
	uint8_t one = 1, zero = 0;

	rule_tcp(rb);
	nft_expr_socket_load(rb, NFT_SOCKET_TRANSPARENT);
	nft_expr_cmp_eq(rb, &one, sizeof(one));
	nft_expr_socket_load(rb, NFT_SOCKET_WILDCARD);
	nft_expr_cmp_eq(rb, &zero, sizeof(zero));
	rule_mark_accept(rb, cfg);
}

/* The mark of flows that go to the source directly: gate_mark + 2 as the
 * packet mark the SYN gate gives a SYN it lets through untouched (observe
 * mode), and as the conntrack mark of every flow that reached a source
 * directly, so that the tproxy rules leave all its packets alone. */
static uint32_t pass_mark(const struct mf_config *cfg)
{
	return cfg->gate_mark + 2;
}

static void ct_mark_set_pass(struct nft_rule_builder *rb, const struct mf_config *cfg)
{
	uint32_t mark = pass_mark(cfg);

	nft_expr_imm_data(rb, &mark, sizeof(mark));
	nft_expr_ct_set(rb, NFT_CT_MARK);
}

/* meta mark PASS ct mark set PASS accept */
static void rule_pass(struct nft_rule_builder *rb, const struct mf_config *cfg)
{
	uint32_t mark = pass_mark(cfg);

	nft_expr_meta_load(rb, NFT_META_MARK);
	nft_expr_cmp_eq(rb, &mark, sizeof(mark));
	ct_mark_set_pass(rb, cfg);
	nft_expr_verdict(rb, NF_ACCEPT);
}

/* meta l4proto tcp ip daddr @sources4 ip saddr @clients4 tcp dport @ports
 *     ct mark != PASS tproxy ip to :PORT meta mark set FWMARK accept
 * (and the ip6 twin). In an inet table an ip header field is only
 * meaningful after checking the packet's family, as nft itself does (meta
 * nfproto). A flow that went to the source directly (ct mark PASS) is not
 * diverted when its subnet is switched on: its next packet would meet a
 * listener that never saw its handshake (a reset). "ct state new" would
 * not do: the handshake's last ACK is no longer new, and the socket rule
 * cannot take it (a request socket has no wildcard answer). */
static void rule_tproxy(struct nft_rule_builder *rb, const struct mf_config *cfg,
			const struct nft_family *f)
{
	uint8_t nfproto = f->nfproto;
	uint16_t port = htons(cfg->listen_port);
	uint32_t pass = pass_mark(cfg);

	rule_tcp(rb);
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
	nft_expr_ct_load(rb, NFT_CT_MARK);
	nft_expr_cmp_neq(rb, &pass, sizeof(pass));
	nft_expr_imm_data(rb, &port, sizeof(port));
	nft_expr_tproxy(rb, f->nfproto);
	rule_mark_accept(rb, cfg);
}

/* meta l4proto tcp ip daddr @sources4 tcp dport @ports ct state new (and
 * the ip6 twin): a new flow to a source's mail port that no rule above
 * took goes there directly (its subnet is not intercepted, or nothing
 * listens). The start of the two rules below. */
static void match_direct(struct nft_rule_builder *rb, const struct nft_family *f)
{
	uint8_t nfproto = f->nfproto;
	uint32_t ct_new = NF_CT_STATE_BIT(IP_CT_NEW), zero = 0;

	rule_tcp(rb);
	nft_expr_meta_load(rb, NFT_META_NFPROTO);
	nft_expr_cmp_eq(rb, &nfproto, sizeof(nfproto));
	nft_expr_payload_load(rb, NFT_PAYLOAD_NETWORK_HEADER, f->daddr_off, f->addr_len);
	nft_expr_lookup(rb, nft_sets[f->sources].name, nft_set_id(f->sources));
	nft_expr_payload_load(rb, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
	nft_expr_lookup(rb, nft_sets[NFT_SET_PORTS].name, nft_set_id(NFT_SET_PORTS));
	nft_expr_ct_load(rb, NFT_CT_STATE);
	nft_expr_bitwise(rb, &ct_new, &zero, sizeof(ct_new));
	nft_expr_cmp_neq(rb, &zero, sizeof(zero));
}

/* ... ct mark != PASS update @direct4 { ip saddr . tcp dport }
 * Counts, per client address and port, the flows that go to a source
 * directly: what the retire report asks ("who still talks to the old
 * server?") about subnets the SYN gate never sees. The mark test leaves
 * out retransmitted SYNs of a flow already counted (the next rule marks
 * it). A rule of its own because a full set stops the rule: the marking
 * must not depend on the counting. */
static void rule_count_direct(struct nft_rule_builder *rb, const struct mf_config *cfg,
			      const struct nft_family *f)
{
	uint32_t pass = pass_mark(cfg);

	match_direct(rb, f);
	nft_expr_ct_load(rb, NFT_CT_MARK);
	nft_expr_cmp_neq(rb, &pass, sizeof(pass));
	nft_expr_payload_load(rb, NFT_PAYLOAD_NETWORK_HEADER, f->saddr_off, f->addr_len);
	/* The port goes in the 4-byte register right after the address;
	 * one that starts a 16-byte register has that register's number,
	 * as the kernel lists it. */
	nft_expr_payload_load_to(rb, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2,
				 f->addr_len % 16 == 0 ? NFT_REG_1 + f->addr_len / 16
						       : NFT_REG32_00 + f->addr_len / 4);
	nft_expr_dynset_update(rb, nft_sets[f->direct].name, nft_set_id(f->direct));
}

/* ... ct mark set PASS: the tproxy rules leave the flow alone from now. */
static void rule_direct(struct nft_rule_builder *rb, const struct mf_config *cfg,
			const struct nft_family *f)
{
	match_direct(rb, f);
	ct_mark_set_pass(rb, cfg);
}

int nft_chain_rules(const struct mf_config *cfg,
		      struct nftnl_rule *rules_r[NFT_RULES])
{
	int i;

	memset(rules_r, 0, NFT_RULES * sizeof(rules_r[0]));
	for (i = 0; i < NFT_RULES; i++) {
		struct nft_rule_builder rb = { .rule = nftnl_rule_alloc() };

		if (rb.rule == NULL)
			goto fail;
		rules_r[i] = rb.rule;
		if (nftnl_rule_set_str(rb.rule, NFTNL_RULE_TABLE, NFT_TABLE) < 0 ||
		    nftnl_rule_set_str(rb.rule, NFTNL_RULE_CHAIN, NFT_CHAIN) < 0)
			goto fail;
		nftnl_rule_set_u32(rb.rule, NFTNL_RULE_FAMILY, NFPROTO_INET);
		if (i == 0)
			rule_socket(&rb, cfg);
		else if (i == 1)
			rule_pass(&rb, cfg);
		else if (i < 4)
			rule_tproxy(&rb, cfg, &nft_families[i - 2]);
		else if (i < 6)
			rule_count_direct(&rb, cfg, &nft_families[i - 4]);
		else
			rule_direct(&rb, cfg, &nft_families[i - 6]);
		if (rb.failed)
			goto fail;
	}
	return MF_OK;
fail:
	for (i = 0; i < NFT_RULES; i++) {
		if (rules_r[i] != NULL)
			nftnl_rule_free(rules_r[i]);
		rules_r[i] = NULL;
	}
	return MF_ERROR;
}

static int put_rules(struct nft_batch *b, const struct mf_config *cfg)
{
	struct nftnl_rule *rules[NFT_RULES];

	if (nft_chain_rules(cfg, rules) != MF_OK)
		return MF_ERROR;
	nft_batch_put_rules(b, NFPROTO_INET, rules, NFT_RULES, rule_what);
	return MF_OK;
}

int nft_chain_build(struct nft_batch *b, const struct mf_config *cfg)
{
	if (nft_batch_prerouting_chain(b, NFT_TABLE, NFT_CHAIN, NFT_PRIO_MANGLE,
				       "creating chain") != MF_OK)
		return MF_ERROR;
	return put_rules(b, cfg);
}

struct text_ctx {
	char *buf;
	size_t len, used;
};

static int expr_text_cb(struct nftnl_expr *e, void *data)
{
	struct text_ctx *t = data;
	char one[512];
	int n;

	nftnl_expr_snprintf(one, sizeof(one), e, NFTNL_OUTPUT_DEFAULT, 0);
	n = snprintf(t->buf + t->used, t->len - t->used, "%s[ %s %s]",
		     t->used ? " " : "", nftnl_expr_get_str(e, NFTNL_EXPR_NAME),
		     one);
	if (n < 0 || (size_t)n >= t->len - t->used)
		return -1;
	t->used += (size_t)n;
	return 0;
}

int nft_chain_rule_text(struct nftnl_rule *r, char *buf, size_t len)
{
	struct text_ctx t = { .buf = buf, .len = len };

	if (len == 0)
		return MF_ERROR;
	buf[0] = '\0';
	return nftnl_expr_foreach(r, expr_text_cb, &t) < 0 ? MF_ERROR : MF_OK;
}
