#include "policy_route.h"
#include "mf.h"

#include <errno.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* Duplicates only exist if someone added them by hand (ip rule add does
 * not use NLM_F_EXCL); this bounds the loop that deletes them all. */
#define PR_MAX_DUPLICATES 16

void policy_route_from_config(const struct mf_config *cfg,
			      struct policy_route *pr_r)
{
	pr_r->fwmark = cfg->fwmark;
	pr_r->table = cfg->route_table;
	pr_r->priority = cfg->rule_priority;
}

bool policy_route_equal(const struct policy_route *a,
			const struct policy_route *b)
{
	return a->fwmark == b->fwmark && a->table == b->table &&
	       a->priority == b->priority;
}

void policy_route_format(int family, enum policy_route_part part,
			 const struct policy_route *pr, char *buf, size_t len)
{
	if (part == PR_RULE)
		snprintf(buf, len, "rule fwmark 0x%x lookup %u pref %u",
			 pr->fwmark, pr->table, pr->priority);
	else
		snprintf(buf, len, "route local %s dev lo table %u",
			 family == AF_INET ? "0.0.0.0/0" : "::/0", pr->table);
}

/* Tables above 255 only fit the 32-bit attribute. */
static uint8_t table_hdr(uint32_t table)
{
	return table < 256 ? (uint8_t)table : RT_TABLE_UNSPEC;
}

static struct nlmsghdr *put_rule(char *buf, struct nl_sock *s, uint16_t type,
				 uint16_t flags, int family,
				 const struct policy_route *pr)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct fib_rule_hdr *frh;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = nl_sock_next_seq(s);
	frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));
	frh->family = (uint8_t)family;
	frh->action = FR_ACT_TO_TBL;
	frh->table = table_hdr(pr->table);
	mnl_attr_put_u32(nlh, FRA_FWMARK, pr->fwmark);
	mnl_attr_put_u32(nlh, FRA_PRIORITY, pr->priority);
	mnl_attr_put_u32(nlh, FRA_TABLE, pr->table);
	return nlh;
}

static int lo_index(unsigned int *idx_r, char *err, size_t errlen)
{
	*idx_r = if_nametoindex("lo");
	if (*idx_r == 0)
		return mf_err(err, errlen, "policy routing: no device lo: %s",
			      strerror(errno));
	return MF_OK;
}

static int put_route(char *buf, struct nl_sock *s, uint16_t type,
		     uint16_t flags, int family, const struct policy_route *pr,
		     struct nlmsghdr **nlh_r, char *err, size_t errlen)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;
	unsigned int lo;

	if (lo_index(&lo, err, errlen) != MF_OK)
		return MF_ERROR;
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = nl_sock_next_seq(s);
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (uint8_t)family;
	rtm->rtm_dst_len = 0;
	rtm->rtm_table = table_hdr(pr->table);
	rtm->rtm_type = RTN_LOCAL;
	if (type == RTM_NEWROUTE) {
		/* What `ip route add local ...` sends, so both list alike. */
		rtm->rtm_protocol = RTPROT_BOOT;
		rtm->rtm_scope = family == AF_INET ? RT_SCOPE_HOST : RT_SCOPE_UNIVERSE;
	} else {
		/* Delete whatever protocol and scope it was added with. */
		rtm->rtm_protocol = RTPROT_UNSPEC;
		rtm->rtm_scope = RT_SCOPE_NOWHERE;
	}
	mnl_attr_put_u32(nlh, RTA_TABLE, pr->table);
	mnl_attr_put_u32(nlh, RTA_OIF, lo);
	*nlh_r = nlh;
	return MF_OK;
}

static int pr_failed(const char *verb, int family, enum policy_route_part part,
		     const struct policy_route *pr, const struct nl_error *e,
		     char *err, size_t errlen)
{
	char what[96], why[256];

	const char *hint = "";

	policy_route_format(family, part, pr, what, sizeof(what));
	nl_error_format(e, why, sizeof(why));
	if (e->error == ENETDOWN)
		hint = "; bring lo up (ip link set lo up)";
	else if (family == AF_INET6 &&
		 (e->error == EACCES || e->error == EAFNOSUPPORT))
		hint = "; without IPv6 here, set [gateway] listen6 = none";
	return mf_err(err, errlen, "policy routing: %s IPv%c %s: %s%s", verb,
		      family == AF_INET ? '4' : '6', what, why, hint);
}

int policy_route_add(struct nl_sock *s, int family, enum policy_route_part part,
		     const struct policy_route *pr, bool *added_r, char *err,
		     size_t errlen)
{
	char buf[NL_REQ_SIZE] = { 0 }; /* no stray bytes in padding */
	struct nlmsghdr *nlh;
	struct nl_error e;
	uint16_t flags = NLM_F_CREATE | NLM_F_EXCL;

	*added_r = false;
	if (part == PR_RULE)
		nlh = put_rule(buf, s, RTM_NEWRULE, flags, family, pr);
	else if (put_route(buf, s, RTM_NEWROUTE, flags, family, pr, &nlh, err,
			   errlen) != MF_OK)
		return MF_ERROR;
	if (nl_sock_request(s, nlh, nlh->nlmsg_len, 1, &e) == MF_OK) {
		*added_r = true;
		return MF_OK;
	}
	if (e.error == EEXIST)
		return MF_OK;
	return pr_failed("adding", family, part, pr, &e, err, errlen);
}

int policy_route_del(struct nl_sock *s, int family, enum policy_route_part part,
		     const struct policy_route *pr, char *err, size_t errlen)
{
	char buf[NL_REQ_SIZE] = { 0 }; /* no stray bytes in padding */

	for (int i = 0; i < PR_MAX_DUPLICATES; i++) {
		struct nlmsghdr *nlh;
		struct nl_error e;

		if (part == PR_RULE)
			nlh = put_rule(buf, s, RTM_DELRULE, 0, family, pr);
		else if (put_route(buf, s, RTM_DELROUTE, 0, family, pr, &nlh, err,
				   errlen) != MF_OK)
			return MF_ERROR;
		if (nl_sock_request(s, nlh, nlh->nlmsg_len, 1, &e) == MF_OK)
			continue;
		/* ESRCH: IPv4 route that is not there. */
		if (e.error == ENOENT || e.error == ESRCH)
			return MF_OK;
		/* No IPv6 in this kernel: nothing of ours can exist. */
		if (e.error == EAFNOSUPPORT)
			return MF_OK;
		return pr_failed("deleting", family, part, pr, &e, err, errlen);
	}
	return MF_OK;
}

struct query_ctx {
	const struct policy_route *pr;
	unsigned int lo;
	bool found;
};

static int attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	uint16_t type = mnl_attr_get_type(attr);

	/* FRA_MAX and RTA_MAX are both far below 64. */
	if (type < 64)
		tb[type] = attr;
	return MNL_CB_OK;
}

static uint32_t attr_u32(const struct nlattr *a, uint32_t fallback)
{
	if (a == NULL || mnl_attr_get_payload_len(a) < sizeof(uint32_t))
		return fallback;
	return mnl_attr_get_u32(a);
}

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct query_ctx *q = data;
	const struct nlattr *tb[64] = { NULL };
	const struct fib_rule_hdr *frh = mnl_nlmsg_get_payload(nlh);

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*frh))
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*frh), attr_cb, tb);
	if (frh->action == FR_ACT_TO_TBL && frh->src_len == 0 &&
	    frh->dst_len == 0 &&
	    attr_u32(tb[FRA_TABLE], frh->table) == q->pr->table &&
	    tb[FRA_FWMARK] != NULL && attr_u32(tb[FRA_FWMARK], 0) == q->pr->fwmark &&
	    attr_u32(tb[FRA_FWMASK], 0xffffffffu) == 0xffffffffu &&
	    attr_u32(tb[FRA_PRIORITY], 0) == q->pr->priority)
		q->found = true;
	return MNL_CB_OK;
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	struct query_ctx *q = data;
	const struct nlattr *tb[64] = { NULL };
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*rtm))
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*rtm), attr_cb, tb);
	if (rtm->rtm_type == RTN_LOCAL && rtm->rtm_dst_len == 0 &&
	    attr_u32(tb[RTA_TABLE], rtm->rtm_table) == q->pr->table &&
	    attr_u32(tb[RTA_OIF], 0) == q->lo)
		q->found = true;
	return MNL_CB_OK;
}

static int query_one(struct nl_sock *s, int family, uint16_t type,
		     struct query_ctx *q, char *err, size_t errlen)
{
	char buf[NL_REQ_SIZE] = { 0 }; /* no stray bytes in padding */
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nl_error e;
	char why[256];
	int rc;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = nl_sock_next_seq(s);
	q->found = false;
	if (type == RTM_GETRULE) {
		struct fib_rule_hdr *frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));

		frh->family = (uint8_t)family;
		rc = nl_sock_dump(s, nlh, rule_cb, q, &e);
	} else {
		struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));

		rtm->rtm_family = (uint8_t)family;
		rc = nl_sock_dump(s, nlh, route_cb, q, &e);
	}
	if (rc == MF_OK || e.error == EAFNOSUPPORT)
		return MF_OK;
	nl_error_format(&e, why, sizeof(why));
	return mf_err(err, errlen, "policy routing: reading IPv%c %s: %s",
		      family == AF_INET ? '4' : '6',
		      type == RTM_GETRULE ? "rules" : "routes", why);
}

int policy_route_query(struct nl_sock *s, int family,
		       const struct policy_route *pr, bool *rule_r,
		       bool *route_r, char *err, size_t errlen)
{
	struct query_ctx q = { .pr = pr };

	*rule_r = *route_r = false;
	if (lo_index(&q.lo, err, errlen) != MF_OK)
		return MF_ERROR;
	if (query_one(s, family, RTM_GETRULE, &q, err, errlen) != MF_OK)
		return MF_ERROR;
	*rule_r = q.found;
	if (query_one(s, family, RTM_GETROUTE, &q, err, errlen) != MF_OK)
		return MF_ERROR;
	*route_r = q.found;
	return MF_OK;
}
