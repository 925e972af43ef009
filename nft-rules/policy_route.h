/* policy_route.h — the policy routing that hands TPROXY-marked packets to
 * local sockets, for one address family:
 *
 *     ip rule add fwmark MARK lookup TABLE pref PRIORITY
 *     ip route add local 0.0.0.0/0 dev lo table TABLE     (::/0 for IPv6)
 *
 * through rtnetlink. Adds ask for NLM_F_EXCL: without it the kernel stacks
 * a duplicate rule on every re-run; with it EEXIST means "already there"
 * and is no error. Deletes treat ENOENT as "already gone". */
#ifndef MF_POLICY_ROUTE_H
#define MF_POLICY_ROUTE_H

#include "config.h"
#include "nl_sock.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct policy_route {
	uint32_t fwmark;
	uint32_t table;
	uint32_t priority;
};

enum policy_route_part { PR_RULE = 0, PR_ROUTE };

void policy_route_from_config(const struct mf_config *cfg,
			      struct policy_route *pr_r);
bool policy_route_equal(const struct policy_route *a,
			const struct policy_route *b);

/* s must be a NETLINK_ROUTE socket. family: AF_INET or AF_INET6.
 * add: MF_OK with *added_r false when it was already there. */
int policy_route_add(struct nl_sock *s, int family, enum policy_route_part part,
		     const struct policy_route *pr, bool *added_r, char *err,
		     size_t errlen);
int policy_route_del(struct nl_sock *s, int family, enum policy_route_part part,
		     const struct policy_route *pr, char *err, size_t errlen);

/* Whether the rule and the route exist exactly as add makes them. */
int policy_route_query(struct nl_sock *s, int family,
		       const struct policy_route *pr, bool *rule_r,
		       bool *route_r, char *err, size_t errlen);

/* "rule fwmark 0x4d46 lookup 1846 pref 1846" or
 * "route local 0.0.0.0/0 dev lo table 1846", as ip(8) would take it. */
void policy_route_format(int family, enum policy_route_part part,
			 const struct policy_route *pr, char *buf, size_t len);

#endif
