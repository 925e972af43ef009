/* direct_flows.c — kernel direct-flow counts into the ledger; see
 * direct_flows.h. */
#include "direct_flows.h"
#include "ledger.h"
#include "mf.h"
#include "netaddr.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/netlink.h>

/* Both sets are bounded (mailferry.nft: size 65536 each). */
#define DIRECT_HELD_MAX (2 * 65536)

void direct_flows_init(struct direct_flows *df)
{
	memset(df, 0, sizeof(*df));
}

void direct_flows_destroy(struct direct_flows *df)
{
	if (df->nl_open)
		nl_sock_close(&df->nl);
	free(df->held);
	memset(df, 0, sizeof(*df));
}

static int hold(const struct nft_direct_count *c, void *data)
{
	struct direct_flows *df = data;

	if (df->n_held == df->cap) {
		size_t cap = df->cap != 0 ? df->cap * 2 : 64;
		struct nft_direct_count *p;

		if (df->cap >= DIRECT_HELD_MAX)
			return MF_ERROR;
		if (cap > DIRECT_HELD_MAX)
			cap = DIRECT_HELD_MAX;
		p = realloc(df->held, cap * sizeof(*p));
		if (p == NULL)
			return MF_ERROR;
		df->held = p;
		df->cap = cap;
	}
	df->held[df->n_held++] = *c;
	return MF_OK;
}

/* Writes held counts from the end, dropping each once written: a failure
 * half way keeps exactly the ones not written. */
static int write_held(struct direct_flows *df, struct ledger *l, int64_t now,
		      size_t *n_r, char *err, size_t errlen)
{
	while (df->n_held > 0) {
		const struct nft_direct_count *c = &df->held[df->n_held - 1];
		struct mf_cidr host = { .addr = c->client,
					.prefix = c->client.family == AF_INET ? 32 : 128 };
		char subnet[MF_ADDRSTRLEN + 5];

		mf_cidr_format(&host, subnet, sizeof(subnet));
		if (ledger_flow_direct_add(l, subnet, c->port, c->flows, now, err,
					   errlen) != MF_OK)
			return MF_ERROR;
		df->n_held--;
		if (n_r != NULL)
			(*n_r)++;
	}
	return MF_OK;
}

int direct_flows_collect(struct direct_flows *df, struct ledger *l, int64_t now,
			 size_t *n_r, char *err, size_t errlen)
{
	if (n_r != NULL)
		*n_r = 0;
	if (write_held(df, l, now, n_r, err, errlen) != MF_OK)
		return MF_ERROR;
	if (!df->nl_open) {
		if (nl_sock_open(&df->nl, NETLINK_NETFILTER, err, errlen) != MF_OK)
			return MF_ERROR;
		df->nl_open = true;
	}
	/* Out of room (only with a ledger away while > 131072 clients came
	 * and went): what was drained is held, the rest of this drain is
	 * lost; say so rather than pretend. */
	if (nft_direct_drain(&df->nl, hold, df, err, errlen) != MF_OK) {
		char ignored[256];

		/* What was drained before the failure still goes in. */
		(void)write_held(df, l, now, n_r, ignored, sizeof(ignored));
		return MF_ERROR;
	}
	return write_held(df, l, now, n_r, err, errlen);
}
