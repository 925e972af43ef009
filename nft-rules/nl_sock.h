/* nl_sock.h — one netlink socket: acknowledged requests and dumps.
 *
 * Shared by the nftables (NETLINK_NETFILTER) and the policy-routing
 * (NETLINK_ROUTE) code. The kernel handles a netlink request synchronously
 * inside sendmsg(): when it returns, every acknowledgement is already queued
 * on our socket. So acks are read without blocking, and a missing ack is an
 * error rather than a hang. */
#ifndef MF_NL_SOCK_H
#define MF_NL_SOCK_H

#include <libmnl/libmnl.h>
#include <stddef.h>
#include <stdint.h>

/* Room for any single request we build (not a batch: see nft_batch.h).
 * A constant, unlike MNL_SOCKET_BUFFER_SIZE, so buffers are no VLAs. */
#define NL_REQ_SIZE 8192

struct nl_sock {
	struct mnl_socket *mnl;
	uint32_t portid;
	uint32_t seq; /* last sequence number handed out */
};

/* What the kernel said about the first request that failed. */
struct nl_error {
	int error;     /* positive errno; 0 when the failure was ours */
	uint32_t seq;  /* sequence number of the failed request */
	char msg[160]; /* kernel's extended-ack text, often "" */
};

/* Opens and binds a socket on bus (NETLINK_ROUTE, NETLINK_NETFILTER) with
 * extended acks on. MF_OK, or MF_ERROR with the reason in err. */
int nl_sock_open(struct nl_sock *s, int bus, char *err, size_t errlen);
void nl_sock_close(struct nl_sock *s);

/* The next sequence number; never 0 (0 disables libmnl's seq check). */
uint32_t nl_sock_next_seq(struct nl_sock *s);

/* Sends len bytes holding one or more requests. n_acks of them carry
 * NLM_F_ACK and must be acknowledged. MF_OK when all were, MF_ERROR with
 * *e_r set for the first error (also a commit error of an nfnetlink batch,
 * which the kernel reports against the batch-begin message). */
int nl_sock_request(struct nl_sock *s, const void *buf, size_t len,
		    unsigned int n_acks, struct nl_error *e_r);

/* Sends the dump request req and calls cb (a libmnl callback) for each
 * reply until NLMSG_DONE. MF_OK, or MF_ERROR with *e_r set; e_r->error is
 * ENOENT when the object asked about does not exist. */
int nl_sock_dump(struct nl_sock *s, const struct nlmsghdr *req, mnl_cb_t cb,
		 void *data, struct nl_error *e_r);

/* "Invalid argument (kernel: Nexthop device is not up.)" into buf. */
void nl_error_format(const struct nl_error *e, char *buf, size_t len);

#endif
