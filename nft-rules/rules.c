/* rules.c — install, remove and status of the whole interception set-up:
 * table inet mailferry plus policy routing (contract in rules.h). */
#include "rules.h"
#include "br_sysctl.h"
#include "bridge_link.h"
#include "mf.h"
#include "nft_bridge.h"
#include "nft_batch.h"
#include "nft_probe.h"
#include "nft_ruleset.h"
#include "nft_set.h"
#include "nft_state.h"
#include "policy_route.h"
#include "xt_queue.h"

#include <errno.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

static const int families[2] = { AF_INET, AF_INET6 };

/* Policy routing is installed for the families mailferryd listens on:
 * with listen6 = none a router without IPv6 works. */
static bool family_wanted(const struct mf_config *cfg, int f)
{
	return families[f] == AF_INET ? cfg->listen4.family != 0 :
					cfg->listen6.family != 0;
}

static int open_socks(struct nl_sock *nft, struct nl_sock *rt, char *err,
		      size_t errlen)
{
	if (nl_sock_open(nft, NETLINK_NETFILTER, err, errlen) != MF_OK)
		return MF_ERROR;
	if (nl_sock_open(rt, NETLINK_ROUTE, err, errlen) != MF_OK) {
		nl_sock_close(nft);
		return MF_ERROR;
	}
	return MF_OK;
}

int mf_rules_probe(char *err, size_t errlen)
{
	struct nl_sock nft;
	int rc;

	if (nl_sock_open(&nft, NETLINK_NETFILTER, err, errlen) != MF_OK)
		return MF_ERROR;
	rc = nft_probe_features(&nft, err, errlen);
	nl_sock_close(&nft);
	return rc;
}

/* Removes rule and route of pr for both families. With keep set, parts
 * that keep shares with pr are left alone: deleting an old install's
 * route must not take the new install's identical route with it. */
static int del_routing(struct nl_sock *rt, const struct policy_route *pr,
		       const struct policy_route *keep, char *err, size_t errlen)
{
	for (int f = 0; f < 2; f++) {
		if (keep == NULL || !policy_route_equal(pr, keep)) {
			if (policy_route_del(rt, families[f], PR_RULE, pr, err,
					     errlen) != MF_OK)
				return MF_ERROR;
		}
		if (keep == NULL || pr->table != keep->table) {
			if (policy_route_del(rt, families[f], PR_ROUTE, pr, err,
					     errlen) != MF_OK)
				return MF_ERROR;
		}
	}
	return MF_OK;
}

/* Takes away what this install added (added[family][part]), newest first;
 * errors are ignored: the caller is already reporting the first one. */
static void undo_routing(struct nl_sock *rt, const struct policy_route *pr,
			 bool added[2][2])
{
	char ignored[256];

	for (int f = 1; f >= 0; f--)
		for (int p = PR_ROUTE; p >= PR_RULE; p--)
			if (added[f][p])
				policy_route_del(rt, families[f],
						 (enum policy_route_part)p, pr,
						 ignored, sizeof(ignored));
}

/* An earlier install put queue rules into iptables-nft that this one
 * does not use (another mark or queue, or now the native statement). */
static bool old_xt_differs(const struct nft_table_info *old,
			   const struct mf_config *cfg,
			   const struct nft_gate_opts *gate)
{
	return old->has_xt && (gate->native_queue ||
			       old->xt.gate_mark != cfg->gate_mark ||
			       old->xt.queue_num != cfg->queue_num);
}

int mf_rules_install(const struct mf_config *cfg, char *err, size_t errlen)
{
	return mf_rules_install_gate(cfg, cfg->fail == MF_FAIL_CLOSED, err, errlen);
}

int mf_rules_install_gate(const struct mf_config *cfg, bool fail_closed,
			  char *err, size_t errlen)
{
	struct nl_sock nft, rt;
	struct nft_table_info old;
	struct policy_route pr;
	struct nft_batch b;
	struct nft_gate_opts gate = { .closed = fail_closed };
	struct nft_bridge_info old_br;
	struct bridge_link brl;
	struct br_sysctl saved = { 0 }, before = { 0 };
	bool added[2][2] = { { false, false }, { false, false } };
	bool xt_added = false, brnf_changed = false;
	int rc = MF_ERROR;

	policy_route_from_config(cfg, &pr);
	if (open_socks(&nft, &rt, err, errlen) != MF_OK)
		return MF_ERROR;
	if (nft_probe_features(&nft, err, errlen) != MF_OK)
		goto close;
	if (nft_probe_expr(&nft, "queue", 0, &gate.native_queue, err, errlen) != MF_OK)
		goto close;
	if (nft_state_table(&nft, &old, err, errlen) != MF_OK ||
	    nft_state_bridge(&nft, cfg, NULL, &old_br, err, errlen) != MF_OK)
		goto close;
	/* Bridge mode: br_netfilter must not run the IP hooks for bridged
	 * frames, and is switched off before any frame is sent up. The values
	 * to restore at remove are those before the first bridge-mode install,
	 * which a re-install finds in the table it replaces. */
	if (cfg->mode == MF_MODE_BRIDGE) {
		if (bridge_link_get(cfg->bridge, &brl, err, errlen) != MF_OK ||
		    br_sysctl_read(&before, err, errlen) != MF_OK)
			goto close;
		saved = old_br.has_record ? old_br.saved : before;
		if (!br_sysctl_off(&before)) {
			struct br_sysctl off = { .present = true };

			if (br_sysctl_write(&off, err, errlen) != MF_OK)
				goto undo_brnf;
			brnf_changed = true;
		}
	}
	/* The fallback queue rules match only marks that the gate chain
	 * sets: added before the table, they wait harmlessly for it. */
	if (!gate.native_queue) {
		if (xt_queue_install(cfg, err, errlen) != MF_OK)
			goto undo_brnf;
		xt_added = !old.exists;
	}
	/* Routing first: until the rules exist nothing carries the mark. */
	for (int f = 0; f < 2; f++)
		for (int p = PR_RULE; p <= PR_ROUTE && family_wanted(cfg, f); p++)
			if (policy_route_add(&rt, families[f],
					     (enum policy_route_part)p, &pr,
					     &added[f][p], err, errlen) != MF_OK)
				goto undo;
	if (nft_batch_start(&b, &nft, err, errlen) != MF_OK)
		goto undo;
	if (nft_ruleset_build(&b, cfg, &gate, err, errlen) != MF_OK)
		goto free_batch;
	/* One transaction with the inet table: a half bridge-mode install
	 * never exists. Leaving bridge mode drops the bridge table in it. */
	if (cfg->mode == MF_MODE_BRIDGE) {
		if (nft_bridge_build(&b, cfg, brl.mac, &saved, err, errlen) != MF_OK)
			goto free_batch;
	} else if (old_br.exists) {
		nft_bridge_build_delete(&b);
	}
	if (nft_batch_send(&b, true, err, errlen) != MF_OK)
		goto free_batch;
	nft_batch_free(&b);
	if (cfg->mode != MF_MODE_BRIDGE && old_br.has_record &&
	    br_sysctl_write(&old_br.saved, err, errlen) != MF_OK)
		goto close;
	/* The new install stands; from here on errors only report what an
	 * earlier install left over. */
	for (int f = 0; f < 2; f++)
		for (int p = PR_RULE; p <= PR_ROUTE && !family_wanted(cfg, f); p++)
			if (policy_route_del(&rt, families[f],
					     (enum policy_route_part)p, &pr, err,
					     errlen) != MF_OK)
				goto close;
	if (old.has_record && !policy_route_equal(&old.rec, &pr) &&
	    del_routing(&rt, &old.rec, &pr, err, errlen) != MF_OK)
		goto close;
	if (old_xt_differs(&old, cfg, &gate) &&
	    xt_queue_remove_spec(old.xt.gate_mark, (uint16_t)old.xt.queue_num,
				 err, errlen) != MF_OK)
		goto close;
	rc = MF_OK;
	goto close;
free_batch:
	nft_batch_free(&b);
undo:
	undo_routing(&rt, &pr, added);
	if (xt_added) {
		char ignored[256];

		(void)xt_queue_remove(cfg, ignored, sizeof(ignored));
	}
undo_brnf:
	if (brnf_changed) {
		char ignored[256];

		(void)br_sysctl_write(&before, ignored, sizeof(ignored));
	}
close:
	nl_sock_close(&rt);
	nl_sock_close(&nft);
	return rc;
}

int mf_rules_remove(const struct mf_config *cfg, char *err, size_t errlen)
{
	struct nl_sock nft, rt;
	struct nft_table_info old;
	struct nft_bridge_info old_br;
	struct policy_route pr;
	struct nft_batch b;
	int rc = MF_ERROR;

	policy_route_from_config(cfg, &pr);
	if (open_socks(&nft, &rt, err, errlen) != MF_OK)
		return MF_ERROR;
	if (nft_state_table(&nft, &old, err, errlen) != MF_OK ||
	    nft_state_bridge(&nft, cfg, NULL, &old_br, err, errlen) != MF_OK)
		goto close;
	/* The tables first: once they are gone nothing is marked any more,
	 * and the routing can go without stranding a packet. */
	if (nft_batch_start(&b, &nft, err, errlen) != MF_OK)
		goto close;
	nft_ruleset_build_delete(&b);
	if (old_br.exists)
		nft_bridge_build_delete(&b);
	rc = nft_batch_send(&b, true, err, errlen);
	nft_batch_free(&b);
	if (rc != MF_OK)
		goto close;
	/* With the bridge table gone no mail frame goes up any more: the
	 * bridge may run br_netfilter's IP hooks again as it did before. */
	if (old_br.has_record)
		rc = br_sysctl_write(&old_br.saved, err, errlen);
	if (rc != MF_OK)
		goto close;
	rc = del_routing(&rt, &pr, NULL, err, errlen);
	if (rc == MF_OK && old.has_record && !policy_route_equal(&old.rec, &pr))
		rc = del_routing(&rt, &old.rec, NULL, err, errlen);
	/* Last: with the table gone nothing carries the gate marks. */
	if (rc == MF_OK)
		rc = xt_queue_remove(cfg, err, errlen);
	if (rc == MF_OK && old.has_xt && (old.xt.gate_mark != cfg->gate_mark ||
					  old.xt.queue_num != cfg->queue_num))
		rc = xt_queue_remove_spec(old.xt.gate_mark, (uint16_t)old.xt.queue_num,
					  err, errlen);
close:
	nl_sock_close(&rt);
	nl_sock_close(&nft);
	return rc;
}

int mf_rules_set_fail_closed(bool closed, char *err, size_t errlen)
{
	const char *set = nft_sets[NFT_SET_FAIL_CLOSED].name;
	struct nft_elem tcp;
	struct nft_batch b;
	struct nl_sock nft;
	struct nl_error e;
	int failed, rc = MF_ERROR;

	nft_elem_fail_closed(&tcp);
	if (nl_sock_open(&nft, NETLINK_NETFILTER, err, errlen) != MF_OK)
		return MF_ERROR;
	if (nft_batch_start(&b, &nft, err, errlen) != MF_OK)
		goto close;
	if (nft_set_put_elems(&b, closed ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM,
			      closed ? NLM_F_CREATE : 0, set, 0, &tcp, 1,
			      closed ? "closing the SYN gate" :
			      "opening the SYN gate") != MF_OK) {
		mf_err(err, errlen, "nftables: out of memory");
		goto free_batch;
	}
	rc = nft_batch_send_detail(&b, true, &failed, &e);
	/* Opening what is open: the element is simply not there. */
	if (rc != MF_OK && !closed && e.error == ENOENT && failed == 0) {
		struct nft_table_info t;

		rc = nft_state_table(&nft, &t, err, errlen);
		if (rc == MF_OK && !t.exists)
			rc = mf_err(err, errlen, "table inet mailferry is not "
				    "installed (run `mailferry rules install`)");
	} else if (rc != MF_OK) {
		char why[256];

		nl_error_format(&e, why, sizeof(why));
		mf_err(err, errlen, "nftables: %s set %s: %s",
		       closed ? "closing the SYN gate in" : "opening the SYN gate in",
		       set, why);
	}
free_batch:
	nft_batch_free(&b);
close:
	nl_sock_close(&nft);
	return rc;
}

/* Status: the contents of the sources and ports sets. */
struct elems_ctx {
	struct mf_rules_status *st;
	int family; /* of the addresses in the set; 0 for ports */
};

static int collect_elem(const struct nft_elem *e, void *data)
{
	struct elems_ctx *ctx = data;
	struct mf_rules_status *st = ctx->st;

	if (ctx->family == 0) {
		if (e->len != 2)
			return MF_OK;
		if (st->n_ports >= MF_MAX_PORTS) {
			st->ports_more = true;
			return MF_OK;
		}
		st->ports[st->n_ports++] = (uint16_t)(e->key[0] << 8 | e->key[1]);
		return MF_OK;
	}
	if (st->n_sources >= MF_MAX_SOURCES) {
		st->sources_more = true;
		return MF_OK;
	}
	if (e->len != (ctx->family == AF_INET ? 4u : 16u))
		return MF_OK;
	memset(&st->sources[st->n_sources], 0, sizeof(st->sources[0]));
	st->sources[st->n_sources].family = ctx->family;
	memcpy(st->sources[st->n_sources].u.bytes, e->key, e->len);
	st->n_sources++;
	return MF_OK;
}

static bool addr_in(const struct mf_addr *a, const struct mf_addr *list,
		    unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		if (mf_addr_equal(a, &list[i]))
			return true;
	return false;
}

static bool port_in(uint16_t p, const uint16_t *list, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		if (list[i] == p)
			return true;
	return false;
}

/* Same elements, ignoring order and the config's duplicates. */
static void compare_with_config(const struct mf_config *cfg,
				struct mf_rules_status *st)
{
	st->sources_match = !st->sources_more;
	for (unsigned int i = 0; i < cfg->n_sources; i++)
		st->sources_match = st->sources_match &&
			addr_in(&cfg->sources[i], st->sources, st->n_sources);
	for (unsigned int i = 0; i < st->n_sources; i++)
		st->sources_match = st->sources_match &&
			addr_in(&st->sources[i], cfg->sources, cfg->n_sources);
	st->ports_match = !st->ports_more;
	for (unsigned int i = 0; i < cfg->n_ports; i++)
		st->ports_match = st->ports_match &&
			port_in(cfg->ports[i], st->ports, st->n_ports);
	for (unsigned int i = 0; i < st->n_ports; i++)
		st->ports_match = st->ports_match &&
			port_in(st->ports[i], cfg->ports, cfg->n_ports);
}

static int note_closed(const struct nft_elem *e, void *data)
{
	if (e->len == 1 && e->key[0] == IPPROTO_TCP)
		*(bool *)data = true;
	return MF_OK;
}

static int count_subnet(const struct mf_cidr *subnet, void *data)
{
	(void)subnet;
	(*(unsigned int *)data)++;
	return MF_OK;
}

static int read_sets(struct nl_sock *nft, const struct mf_config *cfg,
		     struct mf_rules_status *st, char *err, size_t errlen)
{
	static const struct {
		enum nft_set_idx set;
		int family;
	} contents[] = {
		{ NFT_SET_SOURCES4, AF_INET },
		{ NFT_SET_SOURCES6, AF_INET6 },
		{ NFT_SET_PORTS, 0 },
	};
	bool ok[NFT_SET_COUNT];
	struct nl_error e;

	if (nft_state_sets(nft, ok, err, errlen) != MF_OK)
		return MF_ERROR;
	st->sets_ok = true;
	for (int i = 0; i < NFT_SET_COUNT; i++)
		st->sets_ok = st->sets_ok && ok[i];
	for (size_t i = 0; i < MF_ARRAY_LEN(contents); i++) {
		struct elems_ctx ctx = { .st = st, .family = contents[i].family };

		if (!ok[contents[i].set])
			continue;
		if (nft_set_dump(nft, nft_sets[contents[i].set].name,
				 collect_elem, &ctx, &e) != MF_OK &&
		    e.error != ENOENT) {
			char why[256];

			nl_error_format(&e, why, sizeof(why));
			return mf_err(err, errlen, "nftables: reading set %s: %s",
				      nft_sets[contents[i].set].name, why);
		}
	}
	compare_with_config(cfg, st);
	if (ok[NFT_SET_FAIL_CLOSED] &&
	    nft_set_dump(nft, nft_sets[NFT_SET_FAIL_CLOSED].name, note_closed,
			 &st->fail_closed, &e) != MF_OK && e.error != ENOENT) {
		char why[256];

		nl_error_format(&e, why, sizeof(why));
		return mf_err(err, errlen, "nftables: reading set fail_closed: %s", why);
	}
	if (!ok[NFT_SET_CLIENTS4] || !ok[NFT_SET_CLIENTS6])
		return MF_OK;
	return mf_subnet_list(count_subnet, &st->n_clients, err, errlen);
}

/* Bridge mode's part of the status: the device, its table compared with
 * what install would build for the device's MAC now, the sysctls. */
static int bridge_status(struct nl_sock *nft, const struct mf_config *cfg,
			 struct mf_rules_status *st, char *err, size_t errlen)
{
	struct bridge_link brl;
	const uint8_t *mac = NULL;

	if (cfg->mode == MF_MODE_BRIDGE) {
		st->bridge_dev_ok = bridge_link_get(cfg->bridge, &brl, st->bridge_why,
						    sizeof(st->bridge_why)) == MF_OK;
		if (st->bridge_dev_ok) {
			mac = brl.mac;
			bridge_mac_format(brl.mac, st->bridge_mac, sizeof(st->bridge_mac));
		}
	}
	if (nft_state_bridge(nft, cfg, mac, &st->bridge, err, errlen) != MF_OK)
		return MF_ERROR;
	return br_sysctl_read(&st->brnf, err, errlen);
}

int mf_rules_status(const struct mf_config *cfg, struct mf_rules_status *st_r,
		    char *err, size_t errlen)
{
	struct nl_sock nft, rt;
	struct nft_table_info table;
	struct policy_route pr;
	bool all, none;
	int rc = MF_ERROR;

	memset(st_r, 0, sizeof(*st_r));
	policy_route_from_config(cfg, &pr);
	if (open_socks(&nft, &rt, err, errlen) != MF_OK)
		return MF_ERROR;
	if (nft_state_table(&nft, &table, err, errlen) != MF_OK)
		goto close;
	st_r->table = table.exists;
	if (st_r->table) {
		if (read_sets(&nft, cfg, st_r, err, errlen) != MF_OK ||
		    nft_state_chain(&nft, &st_r->chain_ok, err, errlen) != MF_OK ||
		    nft_state_rules(&nft, cfg, &st_r->n_rules, &st_r->rules_match,
				    err, errlen) != MF_OK)
			goto close;
		if (nft_probe_expr(&nft, "queue", 0, &st_r->gate_native, err,
				   errlen) != MF_OK ||
		    nft_state_gate(&nft, cfg, st_r->gate_native, &st_r->gate_ok,
				   err, errlen) != MF_OK)
			goto close;
		st_r->queue_ok = st_r->gate_native;
		if (!st_r->gate_native &&
		    xt_queue_check(cfg, &st_r->queue_ok, err, errlen) != MF_OK)
			goto close;
	}
	if (policy_route_query(&rt, AF_INET, &pr, &st_r->rule4, &st_r->route4,
			       err, errlen) != MF_OK ||
	    policy_route_query(&rt, AF_INET6, &pr, &st_r->rule6, &st_r->route6,
			       err, errlen) != MF_OK)
		goto close;
	st_r->want4 = family_wanted(cfg, 0);
	st_r->want6 = family_wanted(cfg, 1);
	if (bridge_status(&nft, cfg, st_r, err, errlen) != MF_OK)
		goto close;
	all = st_r->table && st_r->sets_ok && st_r->sources_match &&
	      st_r->ports_match && st_r->chain_ok && st_r->rules_match &&
	      st_r->gate_ok && st_r->queue_ok &&
	      (!st_r->want4 || (st_r->rule4 && st_r->route4)) &&
	      (!st_r->want6 || (st_r->rule6 && st_r->route6)) &&
	      (cfg->mode == MF_MODE_BRIDGE ?
	       st_r->bridge.exists && st_r->bridge.chain_ok &&
	       st_r->bridge.rules_match && st_r->bridge_dev_ok &&
	       br_sysctl_off(&st_r->brnf) :
	       !st_r->bridge.exists);
	none = !st_r->table && !st_r->rule4 && !st_r->route4 && !st_r->rule6 &&
	       !st_r->route6 && !st_r->bridge.exists;
	st_r->state = all ? MF_RULES_INSTALLED :
		      none ? MF_RULES_ABSENT : MF_RULES_PARTIAL;
	rc = MF_OK;
close:
	nl_sock_close(&rt);
	nl_sock_close(&nft);
	return rc;
}
