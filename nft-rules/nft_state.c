#include "nft_state.h"
#include "nft_bridge.h"
#include "mf.h"

#include <errno.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RULE_TEXT_MAX 2048

static int query_failed(const struct nl_error *e, const char *what, char *err,
			size_t errlen)
{
	char why[256];

	nl_error_format(e, why, sizeof(why));
	return mf_err(err, errlen, "nftables: reading %s: %s", what, why);
}

/* Whether table mailferry exists; record() reads our record from its
 * user data into data. */
struct table_ctx {
	void (*record)(const void *ud, uint32_t len, void *data);
	void *data;
	bool exists;
};

static int table_cb(const struct nlmsghdr *nlh, void *data)
{
	struct table_ctx *ctx = data;
	struct nftnl_table *nt = nftnl_table_alloc();
	const void *ud;
	uint32_t len = 0;

	if (nt == NULL) {
		errno = ENOMEM;
		return MNL_CB_ERROR;
	}
	if (nftnl_table_nlmsg_parse(nlh, nt) < 0) {
		nftnl_table_free(nt);
		errno = EPROTO;
		return MNL_CB_ERROR;
	}
	ctx->exists = true;
	ud = nftnl_table_get_data(nt, NFTNL_TABLE_USERDATA, &len);
	if (ud != NULL)
		ctx->record(ud, len, ctx->data);
	nftnl_table_free(nt);
	return MNL_CB_OK;
}

static void inet_record(const void *ud, uint32_t len, void *data)
{
	struct nft_table_info *t = data;

	t->has_record = nft_record_decode(ud, len, &t->rec) == MF_OK;
	t->has_xt = nft_record_decode_xt(ud, len, &t->xt) == MF_OK;
}

static void bridge_record(const void *ud, uint32_t len, void *data)
{
	struct nft_bridge_info *t = data;

	t->has_record = nft_bridge_record_decode(ud, len, &t->saved) == MF_OK;
}

/* Asks for table mailferry of family; ctx->exists false (MF_OK) when
 * there is none. */
static int get_table(struct nl_sock *s, uint16_t family, struct table_ctx *ctx,
		     char *err, size_t errlen)
{
	char buf[NL_REQ_SIZE] = { 0 }; /* no stray bytes in padding */
	struct nftnl_table *ref = nftnl_table_alloc();
	struct nlmsghdr *nlh;
	struct nl_error e;

	if (ref == NULL || nftnl_table_set_str(ref, NFTNL_TABLE_NAME, NFT_TABLE) < 0) {
		if (ref != NULL)
			nftnl_table_free(ref);
		return mf_err(err, errlen, "nftables: out of memory");
	}
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, family, NLM_F_ACK,
				    nl_sock_next_seq(s));
	nftnl_table_nlmsg_build_payload(nlh, ref);
	nftnl_table_free(ref);
	/* EAFNOSUPPORT: a kernel without nftables for bridges has no
	 * bridge table either. */
	if (nl_sock_dump(s, nlh, table_cb, ctx, &e) == MF_OK || e.error == ENOENT ||
	    (family != NFPROTO_INET && e.error == EAFNOSUPPORT))
		return MF_OK;
	return query_failed(&e, "table", err, errlen);
}

int nft_state_table(struct nl_sock *s, struct nft_table_info *t_r, char *err,
		    size_t errlen)
{
	struct table_ctx ctx = { .record = inet_record, .data = t_r };

	memset(t_r, 0, sizeof(*t_r));
	if (get_table(s, NFPROTO_INET, &ctx, err, errlen) != MF_OK)
		return MF_ERROR;
	if (!ctx.exists)
		memset(t_r, 0, sizeof(*t_r));
	t_r->exists = ctx.exists;
	return MF_OK;
}

static int sets_cb(const struct nlmsghdr *nlh, void *data)
{
	bool *ok = data;
	struct nftnl_set *s = nftnl_set_alloc();
	const char *name;

	if (s == NULL) {
		errno = ENOMEM;
		return MNL_CB_ERROR;
	}
	if (nftnl_set_nlmsg_parse(nlh, s) < 0) {
		nftnl_set_free(s);
		errno = EPROTO;
		return MNL_CB_ERROR;
	}
	name = nftnl_set_get_str(s, NFTNL_SET_NAME);
	for (int i = 0; name != NULL && i < NFT_SET_COUNT; i++) {
		const struct nft_set_def *d = &nft_sets[i];

		if (strcmp(name, d->name) != 0)
			continue;
		ok[i] = nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE) == d->key_type &&
			nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN) == d->key_len &&
			nftnl_set_get_u32(s, NFTNL_SET_FLAGS) == d->flags;
	}
	nftnl_set_free(s);
	return MNL_CB_OK;
}

int nft_state_sets(struct nl_sock *s, bool ok_r[NFT_SET_COUNT], char *err,
		   size_t errlen)
{
	char buf[NL_REQ_SIZE] = { 0 }; /* no stray bytes in padding */
	struct nftnl_set *ref = nftnl_set_alloc();
	struct nlmsghdr *nlh;
	struct nl_error e;

	for (int i = 0; i < NFT_SET_COUNT; i++)
		ok_r[i] = false;
	if (ref == NULL || nftnl_set_set_str(ref, NFTNL_SET_TABLE, NFT_TABLE) < 0) {
		if (ref != NULL)
			nftnl_set_free(ref);
		return mf_err(err, errlen, "nftables: out of memory");
	}
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSET, NFPROTO_INET,
				    NLM_F_DUMP, nl_sock_next_seq(s));
	nftnl_set_nlmsg_build_payload(nlh, ref);
	nftnl_set_free(ref);
	if (nl_sock_dump(s, nlh, sets_cb, ok_r, &e) == MF_OK || e.error == ENOENT)
		return MF_OK;
	return query_failed(&e, "sets", err, errlen);
}

struct chain_ctx {
	int32_t prio;
	bool ok;
};

static int chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct chain_ctx *ctx = data;
	struct nftnl_chain *c = nftnl_chain_alloc();
	const char *type;

	if (c == NULL) {
		errno = ENOMEM;
		return MNL_CB_ERROR;
	}
	if (nftnl_chain_nlmsg_parse(nlh, c) < 0) {
		nftnl_chain_free(c);
		errno = EPROTO;
		return MNL_CB_ERROR;
	}
	type = nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE);
	ctx->ok = nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM) &&
	      nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM) == NF_INET_PRE_ROUTING &&
	      nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO) == ctx->prio &&
	      nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY) == NF_ACCEPT &&
	      type != NULL && strcmp(type, "filter") == 0;
	nftnl_chain_free(c);
	return MNL_CB_OK;
}

/* Chain name exists as a filter chain on prerouting at priority prio
 * with policy accept. */
static int state_chain(struct nl_sock *s, uint16_t family, const char *name,
		       int32_t prio, bool *ok_r, char *err, size_t errlen)
{
	char buf[NL_REQ_SIZE] = { 0 }; /* no stray bytes in padding */
	struct nftnl_chain *ref = nftnl_chain_alloc();
	struct chain_ctx ctx = { .prio = prio, .ok = false };
	struct nlmsghdr *nlh;
	struct nl_error e;

	*ok_r = false;
	if (ref == NULL ||
	    nftnl_chain_set_str(ref, NFTNL_CHAIN_TABLE, NFT_TABLE) < 0 ||
	    nftnl_chain_set_str(ref, NFTNL_CHAIN_NAME, name) < 0) {
		if (ref != NULL)
			nftnl_chain_free(ref);
		return mf_err(err, errlen, "nftables: out of memory");
	}
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETCHAIN, family,
				    NLM_F_ACK, nl_sock_next_seq(s));
	nftnl_chain_nlmsg_build_payload(nlh, ref);
	nftnl_chain_free(ref);
	if (nl_sock_dump(s, nlh, chain_cb, &ctx, &e) == MF_OK) {
		*ok_r = ctx.ok;
		return MF_OK;
	}
	if (e.error == ENOENT) {
		*ok_r = false;
		return MF_OK;
	}
	return query_failed(&e, "chain", err, errlen);
}

int nft_state_chain(struct nl_sock *s, bool *ok_r, char *err, size_t errlen)
{
	return state_chain(s, NFPROTO_INET, NFT_CHAIN, NFT_PRIO_MANGLE, ok_r, err, errlen);
}

/* NFT_RULES is the largest of the three chains'. */
#define RULES_MAX NFT_RULES
_Static_assert(NFT_RULES >= NFT_GATE_RULES && NFT_RULES >= NFT_BRIDGE_RULES,
	       "rules_ctx holds every chain's rules");

struct rules_ctx {
	char want[RULES_MAX][RULE_TEXT_MAX];
	unsigned int n_want;
	unsigned int n;
	bool match;
};

static int rules_cb(const struct nlmsghdr *nlh, void *data)
{
	struct rules_ctx *ctx = data;
	struct nftnl_rule *r = nftnl_rule_alloc();
	char got[RULE_TEXT_MAX];

	if (r == NULL) {
		errno = ENOMEM;
		return MNL_CB_ERROR;
	}
	if (nftnl_rule_nlmsg_parse(nlh, r) < 0) {
		nftnl_rule_free(r);
		errno = EPROTO;
		return MNL_CB_ERROR;
	}
	if (ctx->n >= ctx->n_want ||
	    nft_chain_rule_text(r, got, sizeof(got)) != MF_OK ||
	    strcmp(got, ctx->want[ctx->n]) != 0)
		ctx->match = false;
	ctx->n++;
	nftnl_rule_free(r);
	return MNL_CB_OK;
}

/* Rules of chain, in order, against want (n_want of them; freed here). */
static int state_rules(struct nl_sock *s, uint16_t family, const char *chain,
		       struct nftnl_rule **want, unsigned int n_want,
		       unsigned int *n_r, bool *match_r, char *err, size_t errlen)
{
	char buf[NL_REQ_SIZE] = { 0 }; /* no stray bytes in padding */
	struct rules_ctx *ctx;
	struct nftnl_rule *ref;
	struct nlmsghdr *nlh;
	struct nl_error e;
	int rc = MF_ERROR;

	*n_r = 0;
	*match_r = false;
	/* Four 2 KiB texts: keep them off the stack of a daemon thread. */
	ctx = calloc(1, sizeof(*ctx));
	ref = nftnl_rule_alloc();
	for (unsigned int i = 0; i < n_want; i++) {
		if (ctx != NULL &&
		    nft_chain_rule_text(want[i], ctx->want[i], RULE_TEXT_MAX) != MF_OK)
			ctx->want[i][0] = '\0';
		nftnl_rule_free(want[i]);
	}
	if (ctx == NULL || ref == NULL)
		goto oom;
	ctx->n_want = n_want;
	ctx->match = true;
	if (nftnl_rule_set_str(ref, NFTNL_RULE_TABLE, NFT_TABLE) < 0 ||
	    nftnl_rule_set_str(ref, NFTNL_RULE_CHAIN, chain) < 0)
		goto oom;
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, family,
				    NLM_F_DUMP, nl_sock_next_seq(s));
	nftnl_rule_nlmsg_build_payload(nlh, ref);
	if (nl_sock_dump(s, nlh, rules_cb, ctx, &e) == MF_OK || e.error == ENOENT) {
		*n_r = ctx->n;
		*match_r = ctx->match && ctx->n == n_want;
		rc = MF_OK;
	} else {
		query_failed(&e, "rules", err, errlen);
	}
	goto out;
oom:
	mf_err(err, errlen, "nftables: out of memory");
out:
	if (ref != NULL)
		nftnl_rule_free(ref);
	free(ctx);
	return rc;
}

int nft_state_rules(struct nl_sock *s, const struct mf_config *cfg,
		    unsigned int *n_r, bool *match_r, char *err, size_t errlen)
{
	struct nftnl_rule *want[NFT_RULES];

	*n_r = 0;
	*match_r = false;
	if (nft_chain_rules(cfg, want) != MF_OK)
		return mf_err(err, errlen, "nftables: out of memory");
	return state_rules(s, NFPROTO_INET, NFT_CHAIN, want, NFT_RULES, n_r, match_r,
			   err, errlen);
}

int nft_state_gate(struct nl_sock *s, const struct mf_config *cfg,
		   bool native_queue, bool *ok_r, char *err, size_t errlen)
{
	struct nftnl_rule *want[NFT_GATE_RULES];
	unsigned int n;
	bool chain_ok, rules_ok;

	*ok_r = false;
	if (state_chain(s, NFPROTO_INET, NFT_GATE_CHAIN, NFT_PRIO_GATE, &chain_ok, err,
			errlen) != MF_OK)
		return MF_ERROR;
	if (nft_gate_rules(cfg, native_queue, want) != MF_OK)
		return mf_err(err, errlen, "nftables: out of memory");
	if (state_rules(s, NFPROTO_INET, NFT_GATE_CHAIN, want, NFT_GATE_RULES, &n,
			&rules_ok, err, errlen) != MF_OK)
		return MF_ERROR;
	*ok_r = chain_ok && rules_ok;
	return MF_OK;
}

int nft_state_bridge(struct nl_sock *s, const struct mf_config *cfg,
		     const uint8_t *mac, struct nft_bridge_info *t_r, char *err,
		     size_t errlen)
{
	struct table_ctx ctx = { .record = bridge_record, .data = t_r };
	struct nftnl_rule *want[NFT_BRIDGE_RULES];

	memset(t_r, 0, sizeof(*t_r));
	if (get_table(s, NFPROTO_BRIDGE, &ctx, err, errlen) != MF_OK)
		return MF_ERROR;
	if (!ctx.exists) {
		memset(t_r, 0, sizeof(*t_r));
		return MF_OK;
	}
	t_r->exists = true;
	if (state_chain(s, NFPROTO_BRIDGE, NFT_BRIDGE_CHAIN, NFT_PRIO_BRIDGE,
			&t_r->chain_ok, err, errlen) != MF_OK)
		return MF_ERROR;
	if (mac == NULL)
		return MF_OK;
	if (nft_bridge_rules(cfg, mac, want) != MF_OK)
		return mf_err(err, errlen, "nftables: out of memory");
	return state_rules(s, NFPROTO_BRIDGE, NFT_BRIDGE_CHAIN, want,
			   NFT_BRIDGE_RULES, &t_r->n_rules, &t_r->rules_match,
			   err, errlen);
}
