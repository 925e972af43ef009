/* nft_direct.c — drain the direct-flow counters; see nft_direct.h. */
#include "nft_direct.h"
#include "nft_ruleset.h"
#include "nft_set.h"
#include "mf.h"

#include <errno.h>
#include <libnftnl/expr.h>
#include <libnftnl/set.h>
#include <linux/netfilter/nf_tables.h>
#include <string.h>
#include <sys/socket.h>

/* Debian 12's kernel headers predate it (linux/netfilter/nf_tables.h). */
#ifndef NFT_MSG_GETSETELEM_RESET
#define NFT_MSG_GETSETELEM_RESET 33
#endif

int nft_direct_decode(const void *key, uint32_t len, uint64_t packets,
		      struct nft_direct_count *c_r)
{
	const uint8_t *k = key;
	size_t alen;

	memset(c_r, 0, sizeof(*c_r));
	if (len == 8) {
		c_r->client.family = AF_INET;
		alen = 4;
	} else if (len == 20) {
		c_r->client.family = AF_INET6;
		alen = 16;
	} else {
		return MF_ERROR;
	}
	memcpy(c_r->client.u.bytes, k, alen);
	/* The port is in network order, the register's last two bytes zero. */
	if (k[alen + 2] != 0 || k[alen + 3] != 0)
		return MF_ERROR;
	c_r->port = (uint16_t)(k[alen] << 8 | k[alen + 1]);
	c_r->flows = packets;
	return MF_OK;
}

struct drain_ctx {
	int (*cb)(const struct nft_direct_count *c, void *data);
	void *data;
	int cb_rc;
};

static int counter_of(struct nftnl_expr *e, void *data)
{
	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);

	if (name != NULL && strcmp(name, "counter") == 0 &&
	    nftnl_expr_is_set(e, NFTNL_EXPR_CTR_PACKETS))
		*(uint64_t *)data = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
	return 0;
}

static int drain_elem(struct nftnl_set_elem *se, void *data)
{
	struct drain_ctx *ctx = data;
	struct nft_direct_count c;
	uint64_t packets = 0;
	const void *key;
	uint32_t len = 0;

	key = nftnl_set_elem_get(se, NFTNL_SET_ELEM_KEY, &len);
	nftnl_set_elem_expr_foreach(se, counter_of, &packets);
	if (key == NULL || packets == 0 || nft_direct_decode(key, len, packets, &c) != MF_OK)
		return 0; /* nothing new, or not one of ours */
	ctx->cb_rc = ctx->cb(&c, ctx->data);
	return ctx->cb_rc == MF_OK ? 0 : -1;
}

int nft_direct_drain(struct nl_sock *s,
		     int (*cb)(const struct nft_direct_count *c, void *data), void *data,
		     char *err, size_t errlen)
{
	static const enum nft_set_idx sets[] = { NFT_SET_DIRECT4, NFT_SET_DIRECT6 };
	struct drain_ctx ctx = { .cb = cb, .data = data, .cb_rc = MF_OK };

	for (size_t i = 0; i < MF_ARRAY_LEN(sets); i++) {
		const char *name = nft_sets[sets[i]].name;
		struct nl_error e;
		char why[256];

		if (nft_set_dump_elems(s, name, NFT_MSG_GETSETELEM_RESET, drain_elem, &ctx,
				       &e) == MF_OK || e.error == ENOENT)
			continue;
		if (ctx.cb_rc != MF_OK)
			return mf_err(err, errlen, "direct flows: recording the counts of %s "
				      "failed", name);
		if (e.error == EOPNOTSUPP || e.error == EINVAL)
			return mf_err(err, errlen, "nftables: reading set %s: this kernel "
				      "cannot reset set element counters (Linux 6.5 or "
				      "later can)", name);
		nl_error_format(&e, why, sizeof(why));
		return mf_err(err, errlen, "nftables: reading set %s: %s", name, why);
	}
	return MF_OK;
}
