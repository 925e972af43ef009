#include "nft_batch.h"
#include "mf.h"

#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Our largest message (the client set of a full config) is ~15 KiB. The
 * buffer is twice the limit because libmnl lets the message being built
 * run past the limit before it reports the overflow. */
#define NFT_BATCH_LIMIT (256u * 1024)

int nft_batch_start(struct nft_batch *b, struct nl_sock *sock, char *err,
		    size_t errlen)
{
	memset(b, 0, sizeof(*b));
	b->sock = sock;
	/* Zeroed: libnftnl leaves some attribute padding unwritten, and
	 * nothing uninitialised should reach the kernel. */
	b->buf = calloc(1, 2 * NFT_BATCH_LIMIT);
	if (b->buf == NULL)
		return mf_err(err, errlen, "nftables batch: out of memory");
	b->mb = mnl_nlmsg_batch_start(b->buf, NFT_BATCH_LIMIT);
	if (b->mb == NULL) {
		free(b->buf);
		b->buf = NULL;
		return mf_err(err, errlen, "nftables batch: out of memory");
	}
	b->begin_seq = nl_sock_next_seq(sock);
	nftnl_batch_begin(mnl_nlmsg_batch_current(b->mb), b->begin_seq);
	mnl_nlmsg_batch_next(b->mb);
	return MF_OK;
}

struct nlmsghdr *nft_batch_msg(struct nft_batch *b, uint16_t type,
			       uint16_t flags, const char *what)
{
	return nft_batch_msg_family(b, type, flags, NFPROTO_INET, what);
}

struct nlmsghdr *nft_batch_msg_family(struct nft_batch *b, uint16_t type,
				      uint16_t flags, uint16_t family,
				      const char *what)
{
	uint32_t seq = nl_sock_next_seq(b->sock);

	if (b->n_msgs < NFT_BATCH_MAX_MSGS) {
		b->seqs[b->n_msgs] = seq;
		b->what[b->n_msgs] = what;
	}
	return nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(b->mb), type,
				     family, NLM_F_ACK | flags, seq);
}

void nft_batch_next(struct nft_batch *b)
{
	/* Past the limits the current slot is simply reused: every later
	 * message lands on it and the send fails. */
	if (b->overflow || b->n_msgs >= NFT_BATCH_MAX_MSGS) {
		b->overflow = true;
		return;
	}
	if (!mnl_nlmsg_batch_next(b->mb)) {
		b->overflow = true;
		return;
	}
	b->n_msgs++;
}

int nft_batch_send_detail(struct nft_batch *b, bool commit, int *failed_r,
			  struct nl_error *e_r)
{
	*failed_r = -1;
	memset(e_r, 0, sizeof(*e_r));
	if (b->overflow) {
		snprintf(e_r->msg, sizeof(e_r->msg), "batch too large");
		return MF_ERROR;
	}
	if (commit) {
		nftnl_batch_end(mnl_nlmsg_batch_current(b->mb),
				nl_sock_next_seq(b->sock));
		if (!mnl_nlmsg_batch_next(b->mb)) {
			snprintf(e_r->msg, sizeof(e_r->msg), "batch too large");
			return MF_ERROR;
		}
	}
	if (nl_sock_request(b->sock, mnl_nlmsg_batch_head(b->mb),
			    mnl_nlmsg_batch_size(b->mb), b->n_msgs, e_r) == MF_OK)
		return MF_OK;
	for (unsigned int i = 0; i < b->n_msgs; i++) {
		if (b->seqs[i] == e_r->seq) {
			*failed_r = (int)i;
			break;
		}
	}
	return MF_ERROR;
}

int nft_batch_send(struct nft_batch *b, bool commit, char *err, size_t errlen)
{
	struct nl_error e;
	char why[256];
	int failed;

	if (nft_batch_send_detail(b, commit, &failed, &e) == MF_OK)
		return MF_OK;
	nl_error_format(&e, why, sizeof(why));
	if (failed >= 0)
		return mf_err(err, errlen, "nftables: %s: %s", b->what[failed], why);
	if (e.seq == b->begin_seq)
		return mf_err(err, errlen, "nftables: commit: %s", why);
	return mf_err(err, errlen, "nftables: %s", why);
}

void nft_batch_free(struct nft_batch *b)
{
	if (b->mb != NULL)
		mnl_nlmsg_batch_stop(b->mb);
	free(b->buf);
	b->mb = NULL;
	b->buf = NULL;
}

void nft_batch_put_rules(struct nft_batch *b, uint16_t family,
			 struct nftnl_rule **rules, unsigned int n,
			 const char *const *what)
{
	for (unsigned int i = 0; i < n; i++) {
		struct nlmsghdr *nlh = nft_batch_msg_family(b, NFT_MSG_NEWRULE,
							    NLM_F_CREATE | NLM_F_APPEND,
							    family, what[i]);

		nftnl_rule_nlmsg_build_payload(nlh, rules[i]);
		nft_batch_next(b);
		nftnl_rule_free(rules[i]);
	}
}

int nft_batch_prerouting_chain(struct nft_batch *b, const char *table, const char *name,
			       int32_t prio, const char *what)
{
	return nft_batch_prerouting_chain_family(b, NFPROTO_INET, table, name, prio, what);
}

int nft_batch_prerouting_chain_family(struct nft_batch *b, uint16_t family,
				      const char *table, const char *name,
				      int32_t prio, const char *what)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;

	if (c == NULL)
		return MF_ERROR;
	if (nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, table) < 0 ||
	    nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name) < 0 ||
	    nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter") < 0) {
		nftnl_chain_free(c);
		return MF_ERROR;
	}
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, NF_INET_PRE_ROUTING);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, prio);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	nlh = nft_batch_msg_family(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE, family, what);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nft_batch_next(b);
	nftnl_chain_free(c);
	return MF_OK;
}
