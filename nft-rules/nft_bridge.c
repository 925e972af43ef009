#include "nft_bridge.h"
#include "nft_expr.h"
#include "nft_ruleset.h"
#include "mf.h"

#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/if_ether.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <netinet/in.h>
#include <string.h>

static const char *const rule_what[NFT_BRIDGE_RULES] = {
	"adding bridge rule 1 (ip to sources: nft_meta pkttype)",
	"adding bridge rule 2 (ip6 to sources)",
	"adding bridge rule 3 (ip from sources)",
	"adding bridge rule 4 (ip6 from sources)",
};

/* Our user-data types in the bridge table, clear of nft's and of the inet
 * table's: br_netfilter present, then the two values it had. */
enum {
	NFT_UDATA_MF_BRNF = 0xf0,
	NFT_UDATA_MF_BRNF_IP,
	NFT_UDATA_MF_BRNF_IP6,
	NFT_UDATA_MF_BRNF_MAX = NFT_UDATA_MF_BRNF_IP6
};

static int record_attr_cb(const struct nftnl_udata *attr, void *data)
{
	const struct nftnl_udata **tb = data;
	uint8_t type = nftnl_udata_type(attr);

	if (type < NFT_UDATA_MF_BRNF || type > NFT_UDATA_MF_BRNF_MAX)
		return 0;
	if (nftnl_udata_len(attr) != sizeof(uint32_t))
		return -1;
	tb[type - NFT_UDATA_MF_BRNF] = attr;
	return 0;
}

int nft_bridge_record_decode(const void *data, uint32_t len,
			     struct br_sysctl *saved_r)
{
	const struct nftnl_udata *tb[3] = { NULL, NULL, NULL };

	if (nftnl_udata_parse(data, len, record_attr_cb, tb) < 0)
		return MF_ERROR;
	if (tb[0] == NULL || tb[1] == NULL || tb[2] == NULL)
		return MF_ERROR;
	saved_r->present = nftnl_udata_get_u32(tb[0]) != 0;
	saved_r->call_iptables = nftnl_udata_get_u32(tb[1]);
	saved_r->call_ip6tables = nftnl_udata_get_u32(tb[2]);
	if (saved_r->call_iptables > 1 || saved_r->call_ip6tables > 1)
		return MF_ERROR;
	return MF_OK;
}

/* saved NULL: a bare reference (create-if-missing, delete). */
static int put_table(struct nft_batch *b, uint16_t type, uint16_t flags,
		     const struct br_sysctl *saved, const char *what)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nftnl_udata_buf *ud = NULL;
	struct nlmsghdr *nlh;
	int rc = MF_ERROR;

	if (t == NULL || nftnl_table_set_str(t, NFTNL_TABLE_NAME, NFT_TABLE) < 0)
		goto out;
	if (saved != NULL) {
		ud = nftnl_udata_buf_alloc(64);
		if (ud == NULL ||
		    !nftnl_udata_put_u32(ud, NFT_UDATA_MF_BRNF, saved->present) ||
		    !nftnl_udata_put_u32(ud, NFT_UDATA_MF_BRNF_IP, saved->call_iptables) ||
		    !nftnl_udata_put_u32(ud, NFT_UDATA_MF_BRNF_IP6, saved->call_ip6tables))
			goto out;
		nftnl_table_set_u32(t, NFTNL_TABLE_FLAGS, 0);
		if (nftnl_table_set_data(t, NFTNL_TABLE_USERDATA, nftnl_udata_buf_data(ud),
					 nftnl_udata_buf_len(ud)) < 0)
			goto out;
	}
	nlh = nft_batch_msg_family(b, type, flags, NFPROTO_BRIDGE, what);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nft_batch_next(b);
	rc = MF_OK;
out:
	if (ud != NULL)
		nftnl_udata_buf_free(ud);
	if (t != NULL)
		nftnl_table_free(t);
	return rc;
}

void nft_bridge_build_delete(struct nft_batch *b)
{
	/* Only out of memory can fail; the kernel's reply count shows it. */
	put_table(b, NFT_MSG_NEWTABLE, NLM_F_CREATE, NULL, "creating bridge table");
	put_table(b, NFT_MSG_DELTABLE, 0, NULL, "deleting old bridge table");
}

static void lookup(struct nft_rule_builder *rb, enum nft_set_idx i)
{
	nft_expr_lookup(rb, nft_sets[i].name, nft_ruleset_set_id(NFPROTO_BRIDGE, i));
}

/* ether type ip ip daddr @sources4 ip saddr @clients4 tcp dport @ports
 *     meta pkttype set host ether daddr set MAC accept
 * to_source false: ip saddr @sources4 ip daddr @clients4 tcp sport @ports.
 * In nft's own order: the network header first (its type from the frame),
 * then meta l4proto as the dependency of the tcp port. */
static void rule_bridge(struct nft_rule_builder *rb, const struct nft_family *f,
			bool to_source, const uint8_t mac[6])
{
	uint16_t etype = htons(f->nfproto == NFPROTO_IPV4 ? ETH_P_IP : ETH_P_IPV6);
	uint8_t tcp = IPPROTO_TCP, host = 0 /* PACKET_HOST */;

	nft_expr_payload_load(rb, NFT_PAYLOAD_LL_HEADER, 12, 2);
	nft_expr_cmp_eq(rb, &etype, sizeof(etype));
	nft_expr_payload_load(rb, NFT_PAYLOAD_NETWORK_HEADER,
			      to_source ? f->daddr_off : f->saddr_off, f->addr_len);
	lookup(rb, f->sources);
	nft_expr_payload_load(rb, NFT_PAYLOAD_NETWORK_HEADER,
			      to_source ? f->saddr_off : f->daddr_off, f->addr_len);
	lookup(rb, f->clients);
	nft_expr_meta_load(rb, NFT_META_L4PROTO);
	nft_expr_cmp_eq(rb, &tcp, sizeof(tcp));
	nft_expr_payload_load(rb, NFT_PAYLOAD_TRANSPORT_HEADER, to_source ? 2 : 0, 2);
	lookup(rb, NFT_SET_PORTS);
	nft_expr_imm_data(rb, &host, sizeof(host));
	nft_expr_meta_set(rb, NFT_META_PKTTYPE);
	nft_expr_imm_data(rb, mac, 6);
	nft_expr_payload_write(rb, NFT_PAYLOAD_LL_HEADER, 0, 6);
	nft_expr_verdict(rb, NF_ACCEPT);
}

int nft_bridge_rules(const struct mf_config *cfg, const uint8_t mac[6],
		     struct nftnl_rule *rules_r[NFT_BRIDGE_RULES])
{
	int i;

	(void)cfg; /* the sets carry everything from the config */
	memset(rules_r, 0, NFT_BRIDGE_RULES * sizeof(rules_r[0]));
	for (i = 0; i < NFT_BRIDGE_RULES; i++) {
		struct nft_rule_builder rb = { .rule = nftnl_rule_alloc() };

		if (rb.rule == NULL)
			goto fail;
		rules_r[i] = rb.rule;
		if (nftnl_rule_set_str(rb.rule, NFTNL_RULE_TABLE, NFT_TABLE) < 0 ||
		    nftnl_rule_set_str(rb.rule, NFTNL_RULE_CHAIN, NFT_BRIDGE_CHAIN) < 0)
			goto fail;
		nftnl_rule_set_u32(rb.rule, NFTNL_RULE_FAMILY, NFPROTO_BRIDGE);
		rule_bridge(&rb, &nft_families[i % 2], i < 2, mac);
		if (rb.failed)
			goto fail;
	}
	return MF_OK;
fail:
	for (i = 0; i < NFT_BRIDGE_RULES; i++) {
		if (rules_r[i] != NULL)
			nftnl_rule_free(rules_r[i]);
		rules_r[i] = NULL;
	}
	return MF_ERROR;
}

int nft_bridge_build(struct nft_batch *b, const struct mf_config *cfg,
		     const uint8_t mac[6], const struct br_sysctl *saved,
		     char *err, size_t errlen)
{
	struct nftnl_rule *rules[NFT_BRIDGE_RULES];

	nft_bridge_build_delete(b);
	if (put_table(b, NFT_MSG_NEWTABLE, NLM_F_CREATE, saved,
		      "creating bridge table") != MF_OK)
		goto oom;
	if (nft_ruleset_put_sets(b, NFPROTO_BRIDGE, cfg, err, errlen) != MF_OK)
		return MF_ERROR;
	if (nft_batch_prerouting_chain_family(b, NFPROTO_BRIDGE, NFT_TABLE,
					      NFT_BRIDGE_CHAIN, NFT_PRIO_BRIDGE,
					      "creating bridge chain") != MF_OK)
		goto oom;
	if (nft_bridge_rules(cfg, mac, rules) != MF_OK)
		goto oom;
	nft_batch_put_rules(b, NFPROTO_BRIDGE, rules, NFT_BRIDGE_RULES, rule_what);
	return MF_OK;
oom:
	return mf_err(err, errlen, "nftables: out of memory");
}
