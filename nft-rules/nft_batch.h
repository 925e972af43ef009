/* nft_batch.h — one nfnetlink transaction (batch) for table inet mailferry.
 *
 * Every change to our table goes through one batch so the kernel applies
 * it all or nothing. Each message asks for an ack and carries a short
 * description, so an error names what failed ("adding rule tproxy ip").
 *
 * Use: nft_batch_start, then per message nft_batch_msg (build the payload
 * with libnftnl into the returned header) and nft_batch_next, then
 * nft_batch_send, and always nft_batch_free. */
#ifndef MF_NFT_BATCH_H
#define MF_NFT_BATCH_H

#include "nl_sock.h"

#include <libnftnl/rule.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NFT_BATCH_MAX_MSGS 64

struct nft_batch {
	struct nl_sock *sock;
	char *buf;
	struct mnl_nlmsg_batch *mb;
	uint32_t begin_seq;
	unsigned int n_msgs;
	uint32_t seqs[NFT_BATCH_MAX_MSGS];
	const char *what[NFT_BATCH_MAX_MSGS]; /* static strings */
	bool overflow;                        /* too many or too large */
};

/* MF_OK with the batch-begin message written, or MF_ERROR (no memory). */
int nft_batch_start(struct nft_batch *b, struct nl_sock *sock, char *err,
		    size_t errlen);

/* Header of the next message (family inet, NLM_F_REQUEST | NLM_F_ACK |
 * flags), to be filled by a libnftnl *_nlmsg_build_payload call; what is a
 * static description for errors. Never NULL: on overflow it returns a
 * scratch header and nft_batch_send fails. */
struct nlmsghdr *nft_batch_msg(struct nft_batch *b, uint16_t type,
			       uint16_t flags, const char *what);

/* The same for a table of another family (NFPROTO_IPV4, ...): only the
 * tidying of iptables-nft's table raw needs it (xt_queue.h). */
struct nlmsghdr *nft_batch_msg_family(struct nft_batch *b, uint16_t type,
				      uint16_t flags, uint16_t family,
				      const char *what);

/* Closes the message opened by nft_batch_msg. */
void nft_batch_next(struct nft_batch *b);

/* Adds (creates) a filter chain of table on the prerouting hook at prio,
 * policy accept: every chain of ours is one. MF_OK or MF_ERROR (memory). */
int nft_batch_prerouting_chain(struct nft_batch *b, const char *table, const char *name,
			       int32_t prio, const char *what);

/* The same in a table of family (NFPROTO_BRIDGE for bridge mode's table;
 * the bridge's prerouting hook has the same number as inet's). */
int nft_batch_prerouting_chain_family(struct nft_batch *b, uint16_t family,
				      const char *table, const char *name,
				      int32_t prio, const char *what);

/* Appends the n rules to their chain in table mailferry of family, one
 * message each (what[i] describes rule i), and frees them. */
void nft_batch_put_rules(struct nft_batch *b, uint16_t family,
			 struct nftnl_rule **rules, unsigned int n,
			 const char *const *what);

/* Sends the batch. With commit false the batch-end message is left out:
 * the kernel then checks every message and throws the transaction away
 * (how nft --check works), which is what feature probes need.
 * MF_OK, or MF_ERROR with "what: why" in err. */
int nft_batch_send(struct nft_batch *b, bool commit, char *err, size_t errlen);

/* Like nft_batch_send but also gives the failing message's index in the
 * batch (-1 when the failure was not one message's) and the raw error. */
int nft_batch_send_detail(struct nft_batch *b, bool commit, int *failed_r,
			  struct nl_error *e_r);

void nft_batch_free(struct nft_batch *b);

#endif
