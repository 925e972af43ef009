#include "nl_sock.h"
#include "mf.h"

#include <errno.h>
#include <linux/netlink.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* Big enough for any dump message the kernel builds for us: it sizes dump
 * messages by the reader's buffer, up to 32 KiB. */
#define NL_RECV_SIZE 32768

int nl_sock_open(struct nl_sock *s, int bus, char *err, size_t errlen)
{
	int one = 1;

	memset(s, 0, sizeof(*s));
	s->mnl = mnl_socket_open(bus);
	if (s->mnl == NULL)
		return mf_err(err, errlen, "netlink socket: %s", strerror(errno));
	if (mnl_socket_bind(s->mnl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int e = errno;

		nl_sock_close(s);
		return mf_err(err, errlen, "netlink bind: %s", strerror(e));
	}
	s->portid = mnl_socket_get_portid(s->mnl);
	/* Both are best effort: older kernels just give plainer errors.
	 * CAP_ACK keeps error replies small (no copy of our request). */
	mnl_socket_setsockopt(s->mnl, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(s->mnl, NETLINK_CAP_ACK, &one, sizeof(one));
	return MF_OK;
}

void nl_sock_close(struct nl_sock *s)
{
	if (s->mnl != NULL)
		mnl_socket_close(s->mnl);
	s->mnl = NULL;
}

uint32_t nl_sock_next_seq(struct nl_sock *s)
{
	if (++s->seq == 0)
		s->seq = 1;
	return s->seq;
}

static int extack_attr_cb(const struct nlattr *attr, void *data)
{
	struct nl_error *e = data;

	if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
	    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0)
		snprintf(e->msg, sizeof(e->msg), "%s", mnl_attr_get_str(attr));
	return MNL_CB_OK;
}

/* Fills e from an NLMSG_ERROR message with a non-zero error. */
static void error_from_msg(const struct nlmsghdr *nlh, struct nl_error *e)
{
	const struct nlmsgerr *ne = mnl_nlmsg_get_payload(nlh);
	unsigned int off = sizeof(*ne);

	e->error = -ne->error;
	e->seq = ne->msg.nlmsg_seq;
	e->msg[0] = '\0';
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += ne->msg.nlmsg_len - sizeof(ne->msg);
	if (mnl_nlmsg_get_payload_len(nlh) > MNL_ALIGN(off))
		mnl_attr_parse(nlh, off, extack_attr_cb, e);
}

/* One datagram; 0 when nothing is queued (nonblocking), -1 with errno. */
static ssize_t recv_one(struct nl_sock *s, void *buf, size_t len, int flags)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	do {
		n = recvmsg(mnl_socket_get_fd(s->mnl), &mh, flags);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n > 0 && (mh.msg_flags & MSG_TRUNC)) {
		errno = EMSGSIZE;
		return -1;
	}
	return n;
}

int nl_sock_request(struct nl_sock *s, const void *buf, size_t len,
		    unsigned int n_acks, struct nl_error *e_r)
{
	char rbuf[NL_RECV_SIZE];
	unsigned int acks = 0;
	bool failed = false;

	memset(e_r, 0, sizeof(*e_r));
	if (mnl_socket_sendto(s->mnl, buf, len) < 0) {
		e_r->error = errno;
		return MF_ERROR;
	}
	for (;;) {
		ssize_t n = recv_one(s, rbuf, sizeof(rbuf), MSG_DONTWAIT);
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)rbuf;
		int left = (int)n;

		if (n < 0) {
			/* ENOBUFS: acks were dropped; we cannot know more. */
			if (!failed)
				e_r->error = errno;
			return MF_ERROR;
		}
		if (n == 0)
			break;
		for (; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
			const struct nlmsgerr *ne;

			if (nlh->nlmsg_type != NLMSG_ERROR)
				continue;
			if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ne))
				continue;
			ne = mnl_nlmsg_get_payload(nlh);
			acks++;
			if (ne->error != 0 && !failed) {
				error_from_msg(nlh, e_r);
				failed = true;
			}
		}
	}
	if (failed)
		return MF_ERROR;
	if (acks < n_acks) {
		e_r->error = 0;
		snprintf(e_r->msg, sizeof(e_r->msg),
			 "kernel acknowledged %u of %u requests", acks, n_acks);
		return MF_ERROR;
	}
	return MF_OK;
}

int nl_sock_dump(struct nl_sock *s, const struct nlmsghdr *req, mnl_cb_t cb,
		 void *data, struct nl_error *e_r)
{
	char rbuf[NL_RECV_SIZE];

	memset(e_r, 0, sizeof(*e_r));
	if (mnl_socket_sendto(s->mnl, req, req->nlmsg_len) < 0) {
		e_r->error = errno;
		return MF_ERROR;
	}
	for (;;) {
		ssize_t n = recv_one(s, rbuf, sizeof(rbuf), 0);
		int rc;

		if (n <= 0) {
			/* 0: blocking recv on a datagram socket never
			 * returns it; treat it as a broken reply. */
			e_r->error = n < 0 ? errno : EPROTO;
			return MF_ERROR;
		}
		errno = 0;
		rc = mnl_cb_run(rbuf, (size_t)n, req->nlmsg_seq, s->portid, cb, data);
		if (rc == MNL_CB_STOP)
			return MF_OK;
		if (rc == MNL_CB_ERROR) {
			e_r->error = errno != 0 ? errno : EPROTO;
			e_r->seq = req->nlmsg_seq;
			return MF_ERROR;
		}
	}
}

void nl_error_format(const struct nl_error *e, char *buf, size_t len)
{
	if (e->error != 0 && e->msg[0] != '\0')
		snprintf(buf, len, "%s (kernel: %s)", strerror(e->error), e->msg);
	else if (e->error != 0)
		snprintf(buf, len, "%s", strerror(e->error));
	else
		snprintf(buf, len, "%s", e->msg[0] ? e->msg : "unknown error");
}
