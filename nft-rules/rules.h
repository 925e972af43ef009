/* rules.h — install, remove and inspect mailferry's interception rules, and
 * toggle client subnets at run time.
 *
 * What the router needs so that mail TCP from intercepted clients to the
 * old server reaches mailferryd's transparent listener:
 *  - nftables: table inet mailferry with sets sources4/6 (old server
 *    addresses), clients4/6 (intercepted client subnets), ports, and a
 *    prerouting chain with the TPROXY rules; nft-rules/mailferry.nft is
 *    the same rule set in nft syntax;
 *  - policy routing for IPv4 and IPv6, so that marked packets are
 *    delivered to local sockets:
 *        ip rule fwmark FWMARK lookup ROUTE_TABLE pref RULE_PRIORITY
 *        ip route local 0.0.0.0/0 (::/0) dev lo table ROUTE_TABLE
 *
 * Every function acts on the calling thread's network namespace, needs
 * CAP_NET_ADMIN and opens its own netlink sockets: no state is kept
 * between calls. nftables is only ever changed in atomic batches; nothing
 * shells out to nft or ip. On MF_ERROR, err holds one line: what failed
 * and why (with the kernel's own words where it gives them). */
#ifndef MF_RULES_H
#define MF_RULES_H

#include "br_sysctl.h"
#include "config.h"
#include "netaddr.h"
#include "nft_state.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Checks that the kernel has what install needs: nf_tables with the
 * socket and tproxy expressions (IPv4 and IPv6). MF_ERROR names what is
 * missing ("kernel lacks the nftables tproxy expression (CONFIG_NFT_TPROXY,
 * module nft_tproxy)"). Changes nothing. */
int mf_rules_probe(char *err, size_t errlen);

/* Installs everything from cfg; idempotent.
 * - Bridge mode ([intercept] mode = bridge): table bridge mailferry
 *   (nft_bridge.h) for the device [intercept] bridge, whose MAC it names,
 *   in the same transaction as the inet table; br_netfilter's
 *   bridge-nf-call-iptables/-ip6tables are set to 0 first (br_sysctl.h)
 *   and their earlier values recorded in the bridge table. Router mode
 *   removes a bridge table an earlier install left and restores them.
 * - Probes first (mf_rules_probe): a missing feature changes nothing.
 * - Policy routing is added before the nftables rules, so no packet is
 *   ever marked without a route to deliver it. It is added for the
 *   families that have a listener: [gateway] listen6 = none leaves IPv6
 *   routing out (for routers without IPv6) and removes IPv6 routing an
 *   earlier install made; the nftables rules are the same either way
 *   (tproxy does not match without a listener).
 * - The nftables part is one transaction that replaces whatever table inet
 *   mailferry held: re-running with a changed config swaps the whole rule
 *   set atomically. This resets the client sets to [intercept] clients:
 *   subnets added or deleted at run time (mf_subnet_add/del) are not kept.
 * - If the table was installed before with another fwmark, route table or
 *   rule priority, the policy routing of that install is removed.
 * - On failure, policy routing added by this call is taken away again and
 *   the nftables rules are as before. */
int mf_rules_install(const struct mf_config *cfg, char *err, size_t errlen);

/* mf_rules_install with the SYN gate's mode given: fail_closed installs it
 * closed (set fail_closed holds tcp). mf_rules_install itself installs it
 * closed exactly when cfg says fail = closed; the CLI asks the ledger for
 * fail = auto (fail_mode.h) and calls this. The gate's queue rule is the
 * native nft statement where the kernel has it, else iptables-nft
 * (xt_queue.h): the only part of install that runs a program. */
int mf_rules_install_gate(const struct mf_config *cfg, bool fail_closed,
			  char *err, size_t errlen);

/* Switches the installed SYN gate to fail-closed or fail-open: one set
 * element, changed atomically over netlink (what mailferryd calls when
 * fail = auto turns closed, and at start). Idempotent. MF_ERROR if the
 * rules are not installed. */
int mf_rules_set_fail_closed(bool closed, char *err, size_t errlen);

/* Removes the table (and bridge mode's, restoring the br_netfilter sysctls
 * recorded in it), then the policy routing of cfg and of the install
 * recorded in the table; afterwards nothing of mailferry's is left in
 * nftables, the routing rules or the routing tables. Idempotent: MF_OK
 * when nothing was installed. */
int mf_rules_remove(const struct mf_config *cfg, char *err, size_t errlen);

enum mf_rules_state {
	MF_RULES_ABSENT = 0, /* no table, no policy routing */
	MF_RULES_INSTALLED,  /* everything present and as cfg says */
	MF_RULES_PARTIAL     /* anything in between, or not matching cfg */
};

struct mf_rules_status {
	enum mf_rules_state state;
	bool table;           /* table inet mailferry exists */
	bool sets_ok;         /* its five sets exist with the right types */
	bool sources_match;   /* sources4 + sources6 == [intercept] sources */
	bool ports_match;     /* ports == [intercept] ports */
	bool chain_ok;        /* prerouting: filter, priority mangle, accept */
	unsigned int n_rules; /* rules in the chain */
	bool rules_match;     /* exactly the rules install builds from cfg */
	/* Contents of the sets (IPv4 first); *_more: there were more. */
	struct mf_addr sources[MF_MAX_SOURCES];
	unsigned int n_sources;
	bool sources_more;
	uint16_t ports[MF_MAX_PORTS];
	unsigned int n_ports;
	bool ports_more;
	unsigned int n_clients; /* subnets; mf_subnet_list lists them */
	bool fail_closed;     /* the SYN gate's set fail_closed holds tcp */
	bool gate_native;     /* the kernel has the nft queue statement */
	bool gate_ok;         /* chain gate as install builds it */
	bool queue_ok;        /* its queue: native, or the iptables-nft rules */
	/* Policy routing for cfg's fwmark, route table and priority. */
	bool rule4, route4, rule6, route6;
	bool want4, want6; /* families install sets it up for (listeners) */
	/* Bridge mode: table bridge mailferry (rules compared for the
	 * device's MAC now), the device, br_netfilter's sysctls now. In
	 * router mode the table must be absent. */
	struct nft_bridge_info bridge;
	bool bridge_dev_ok;      /* [intercept] bridge is a bridge device */
	char bridge_mac[18];     /* its MAC, when bridge_dev_ok */
	char bridge_why[160];    /* why not, otherwise */
	struct br_sysctl brnf;
};

/* Fills *st_r. MF_OK whatever the state; MF_ERROR only when the kernel
 * could not be asked. */
int mf_rules_status(const struct mf_config *cfg, struct mf_rules_status *st_r,
		    char *err, size_t errlen);

/* Client subnets: flows from these to the sources are intercepted. The
 * sets start as [intercept] clients at install; these change them at run
 * time until the next install. MF_ERROR if the rules are not installed. */
enum mf_subnet_change { MF_SUBNET_CHANGED = 0, MF_SUBNET_UNCHANGED };

/* Adding a subnet that is already there is no error (*change_r says
 * MF_SUBNET_UNCHANGED); one that overlaps a present subnet (contains it or
 * lies inside it) is, naming that subnet. */
int mf_subnet_add(const struct mf_cidr *subnet,
		  enum mf_subnet_change *change_r, char *err, size_t errlen);

/* Deleting a subnet that is not there is no error (MF_SUBNET_UNCHANGED);
 * deleting part of a present subnet, or a range holding several, is. */
int mf_subnet_del(const struct mf_cidr *subnet,
		  enum mf_subnet_change *change_r, char *err, size_t errlen);

/* Calls cb for each intercepted subnet, IPv4 then IPv6, each ascending.
 * cb returns MF_OK to go on; anything else stops the walk and is returned
 * as is (err is then left untouched: the callback knows why). */
int mf_subnet_list(int (*cb)(const struct mf_cidr *subnet, void *data),
		   void *data, char *err, size_t errlen);

#endif
