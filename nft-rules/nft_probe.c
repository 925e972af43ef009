#include "nft_probe.h"
#include "nft_batch.h"
#include "nft_expr.h"
#include "nft_chain.h"
#include "mf.h"

#include <errno.h>
#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* Never committed, so it cannot clash with anything; the name only has to
 * be valid. */
#define PROBE_TABLE "mailferry_probe"
#define PROBE_CHAIN "probe"

static const struct {
	const char *expr;
	int nfproto;
	const char *what; /* for the error message */
} features[NFT_FEATURE_COUNT] = {
	[NFT_FEATURE_SOCKET] = { "socket", 0,
		"socket (CONFIG_NFT_SOCKET, module nft_socket)" },
	[NFT_FEATURE_TPROXY4] = { "tproxy", NFPROTO_IPV4,
		"tproxy ip (CONFIG_NFT_TPROXY, CONFIG_NF_TPROXY_IPV4)" },
	[NFT_FEATURE_TPROXY6] = { "tproxy", NFPROTO_IPV6,
		"tproxy ip6 (CONFIG_NFT_TPROXY, CONFIG_NF_TPROXY_IPV6)" },
};

static int put_table(struct nft_batch *b)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	if (t == NULL || nftnl_table_set_str(t, NFTNL_TABLE_NAME, PROBE_TABLE) < 0)
		goto fail;
	nlh = nft_batch_msg(b, NFT_MSG_NEWTABLE, NLM_F_CREATE, "probe table");
	nftnl_table_nlmsg_build_payload(nlh, t);
	nft_batch_next(b);
	nftnl_table_free(t);
	return MF_OK;
fail:
	if (t != NULL)
		nftnl_table_free(t);
	return MF_ERROR;
}

/* Appends a bare expression by name, written by hand: libnftnl only
 * builds expressions it knows, and a probe must be able to ask about any. */
static void put_raw_expr(struct nlmsghdr *nlh, const char *name)
{
	struct nlattr *list = mnl_attr_nest_start(nlh, NFTA_RULE_EXPRESSIONS);
	struct nlattr *elem = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);

	mnl_attr_put_strz(nlh, NFTA_EXPR_NAME, name);
	mnl_attr_nest_end(nlh, elem);
	mnl_attr_nest_end(nlh, list);
}

static int put_rule(struct nft_batch *b, const char *name, int nfproto)
{
	struct nft_rule_builder rb = { .rule = nftnl_rule_alloc() };
	bool raw = false;
	struct nlmsghdr *nlh;

	if (rb.rule == NULL ||
	    nftnl_rule_set_str(rb.rule, NFTNL_RULE_TABLE, PROBE_TABLE) < 0 ||
	    nftnl_rule_set_str(rb.rule, NFTNL_RULE_CHAIN, PROBE_CHAIN) < 0)
		goto fail;
	if (strcmp(name, "socket") == 0) {
		uint8_t one = 1;

		nft_expr_socket_load(&rb, NFT_SOCKET_WILDCARD);
		nft_expr_cmp_eq(&rb, &one, sizeof(one));
	} else if (strcmp(name, "tproxy") == 0) {
		uint16_t port = htons(1);

		nft_expr_imm_data(&rb, &port, sizeof(port));
		nft_expr_tproxy(&rb, (uint32_t)nfproto);
	} else {
		raw = true;
	}
	if (rb.failed)
		goto fail;
	nlh = nft_batch_msg(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND,
			    "probe rule");
	nftnl_rule_nlmsg_build_payload(nlh, rb.rule);
	if (raw)
		put_raw_expr(nlh, name);
	nft_batch_next(b);
	nftnl_rule_free(rb.rule);
	return MF_OK;
fail:
	if (rb.rule != NULL)
		nftnl_rule_free(rb.rule);
	return MF_ERROR;
}

int nft_probe_expr(struct nl_sock *s, const char *name, int nfproto,
		   bool *present_r, char *err, size_t errlen)
{
	struct nft_batch b;
	struct nl_error e;
	char why[256];
	int failed, rc = MF_ERROR;

	*present_r = false;
	if (nft_batch_start(&b, s, err, errlen) != MF_OK)
		return MF_ERROR;
	if (put_table(&b) != MF_OK ||
	    nft_batch_prerouting_chain(&b, PROBE_TABLE, PROBE_CHAIN, NFT_PRIO_MANGLE,
				       "probe chain") != MF_OK ||
	    put_rule(&b, name, nfproto) != MF_OK) {
		mf_err(err, errlen, "nftables probe: out of memory");
		goto out;
	}
	if (nft_batch_send_detail(&b, false, &failed, &e) == MF_OK) {
		*present_r = true;
		rc = MF_OK;
		goto out;
	}
	/* The rule is message 2. An unknown expression is ENOENT (the
	 * kernel found no module), a known one unusable here EOPNOTSUPP. */
	if (failed == 2 && (e.error == ENOENT || e.error == EOPNOTSUPP)) {
		rc = MF_OK;
		goto out;
	}
	/* A bare expression the kernel knows fails on its missing
	 * attributes: known, hence present. */
	if (failed == 2 && e.error == EINVAL && strcmp(name, "socket") != 0 &&
	    strcmp(name, "tproxy") != 0) {
		*present_r = true;
		rc = MF_OK;
		goto out;
	}
	nl_error_format(&e, why, sizeof(why));
	mf_err(err, errlen, "nftables probe (%s): %s", name, why);
out:
	nft_batch_free(&b);
	return rc;
}

int nft_probe_features(struct nl_sock *s, char *err, size_t errlen)
{
	char missing[256] = "";
	size_t used = 0;

	for (int i = 0; i < NFT_FEATURE_COUNT; i++) {
		bool present;
		int n;

		if (nft_probe_expr(s, features[i].expr, features[i].nfproto,
				   &present, err, errlen) != MF_OK)
			return MF_ERROR;
		if (present)
			continue;
		n = snprintf(missing + used, sizeof(missing) - used, "%s%s",
			     used ? ", " : "", features[i].what);
		if (n > 0 && (size_t)n < sizeof(missing) - used)
			used += (size_t)n;
	}
	if (used == 0)
		return MF_OK;
	return mf_err(err, errlen, "kernel lacks nftables expression %s", missing);
}
