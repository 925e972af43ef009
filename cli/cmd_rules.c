/* cmd_rules.c — `mailferry rules install|remove|status`. */
#include "cli.h"
#include "fail_mode.h"
#include "ledger.h"
#include "mf.h"
#include "rules.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* The SYN gate's mode at install: for fail = auto the ledger decides (and
 * records the switch if an account reached CUTOVER or MIGRATED while no
 * daemon ran), so a reboot re-installs what was in force. */
static int gate_mode(const struct cli_ctx *ctx, const struct mf_config *cfg,
		     bool *closed_r)
{
	struct ledger *l = NULL;
	bool switched;
	char err[512];
	int rc;

	/* No ledger file yet: no account can have moved, so auto is open. The
	 * file is not created here; any other failure to read it stops the
	 * install rather than guess open. */
	if (cfg->fail == MF_FAIL_AUTO && access(cfg->ledger_path, F_OK) != 0 &&
	    errno == ENOENT) {
		*closed_r = false;
		return MF_OK;
	}
	if (cfg->fail == MF_FAIL_AUTO &&
	    ledger_open(cfg->ledger_path, &l, err, sizeof(err)) != MF_OK) {
		cli_error(ctx, "fail = auto needs the ledger: %s", err);
		return MF_ERROR;
	}
	rc = fail_mode_effective(cfg, l, (int64_t)time(NULL), closed_r, &switched,
				 err, sizeof(err));
	ledger_close(l);
	if (rc != MF_OK)
		cli_error(ctx, "fail mode: %s", err);
	return rc;
}

/* Bridge mode forwards what it takes up from the bridge and does not
 * divert (fail-open with no daemon, a subnet switched off): without IP
 * forwarding those flows would die in the gateway. Read, never set: turning
 * it on changes more than mailferry (IPv6 stops taking router adverts). */
static void warn_forwarding(const struct mf_config *cfg)
{
	static const char *const paths[2] = { "/proc/sys/net/ipv4/ip_forward",
					      "/proc/sys/net/ipv6/conf/all/forwarding" };

	if (cfg->mode != MF_MODE_BRIDGE)
		return;
	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(paths[i], "re");
		int c = f != NULL ? fgetc(f) : EOF;

		if (f != NULL)
			fclose(f);
		if (c == '0')
			printf("warning: %s is 0: with the daemon stopped (fail-open) or a "
			       "subnet switched off, IPv%d mail flows across the bridge stop\n",
			       paths[i], i == 0 ? 4 : 6);
	}
}

static void print_brnf(const struct br_sysctl *v)
{
	if (!v->present)
		printf("net.bridge.bridge-nf-call-iptables: absent (no br_netfilter)\n");
	else
		printf("net.bridge.bridge-nf-call-iptables = %u, "
		       "bridge-nf-call-ip6tables = %u\n", v->call_iptables,
		       v->call_ip6tables);
}

static int rules_install(const struct cli_ctx *ctx, char **argv)
{
	struct mf_config cfg;
	char err[512];
	bool closed;

	(void)argv;
	if (cli_load_config(ctx, &cfg) != MF_OK)
		return CLI_EXIT_ERROR;
	if (cfg.intercept == MF_INTERCEPT_LISTEN) {
		cli_error(ctx, "intercept = listen: no rules to install (mailferryd listens on "
			  "the old server's addresses itself)");
		return CLI_EXIT_ERROR;
	}
	if (gate_mode(ctx, &cfg, &closed) != MF_OK)
		return CLI_EXIT_ERROR;
	if (mf_rules_install_gate(&cfg, closed, err, sizeof(err)) != MF_OK) {
		cli_error(ctx, "%s", err);
		return CLI_EXIT_ERROR;
	}
	printf("installed: table inet mailferry (listener port %u, fwmark 0x%x), "
	       "policy routing %s (table %u, pref %u)\n",
	       cfg.listen_port, cfg.fwmark,
	       cfg.listen4.family == 0 ? "IPv6" :
	       cfg.listen6.family == 0 ? "IPv4" : "IPv4+IPv6",
	       cfg.route_table, cfg.rule_priority);
	printf("SYN gate: queue %u, fail = %s, fail-%s now\n", cfg.queue_num,
	       fail_mode_name(cfg.fail), closed ? "closed" : "open");
	if (cfg.mode == MF_MODE_BRIDGE) {
		struct mf_rules_status st;

		if (mf_rules_status(&cfg, &st, err, sizeof(err)) != MF_OK) {
			cli_error(ctx, "%s", err);
			return CLI_EXIT_ERROR;
		}
		printf("bridge mode: table bridge mailferry on %s (MAC %s)\n", cfg.bridge,
		       st.bridge_mac);
		print_brnf(&st.brnf);
		warn_forwarding(&cfg);
	}
	return CLI_EXIT_OK;
}

static int rules_remove(const struct cli_ctx *ctx, char **argv)
{
	struct mf_config cfg;
	char err[512];

	(void)argv;
	if (cli_load_config(ctx, &cfg) != MF_OK)
		return CLI_EXIT_ERROR;
	if (mf_rules_remove(&cfg, err, sizeof(err)) != MF_OK) {
		cli_error(ctx, "%s", err);
		return CLI_EXIT_ERROR;
	}
	printf("removed: table inet mailferry (and bridge mailferry) and its "
	       "policy routing\n");
	return CLI_EXIT_OK;
}

static const char *yes_no(bool present)
{
	return present ? "present" : "absent";
}

static const char *as_config(bool match)
{
	return match ? "as configured" : "DIFFERS FROM CONFIG";
}

static int print_subnet(const struct mf_cidr *subnet, void *data)
{
	char buf[MF_ADDRSTRLEN];

	(void)data;
	mf_cidr_format(subnet, buf, sizeof(buf));
	printf(" %s", buf);
	return MF_OK;
}

static void print_table(const struct mf_rules_status *st)
{
	char err[512], a[MF_ADDRSTRLEN];

	printf("table inet mailferry: %s\n", st->table ? "present" : "absent");
	if (!st->table)
		return;
	if (!st->sets_ok)
		printf("  sets: MISSING OR WRONG TYPE\n");
	printf("  sources:");
	for (unsigned int i = 0; i < st->n_sources; i++) {
		mf_addr_format(&st->sources[i], a, sizeof(a));
		printf(" %s", a);
	}
	printf("%s (%s)\n", st->sources_more ? " ..." : "",
	       as_config(st->sources_match));
	printf("  ports:");
	for (unsigned int i = 0; i < st->n_ports; i++)
		printf(" %u", st->ports[i]);
	printf("%s (%s)\n", st->ports_more ? " ..." : "",
	       as_config(st->ports_match));
	printf("  clients:");
	if (mf_subnet_list(print_subnet, NULL, err, sizeof(err)) != MF_OK)
		printf(" (%s)", err);
	printf(" (%u subnet%s)\n", st->n_clients, st->n_clients == 1 ? "" : "s");
	printf("  SYN gate: fail-%s; chain gate: %s; queue rule: %s\n",
	       st->fail_closed ? "closed" : "open",
	       st->gate_ok ? "as configured" : "MISSING OR DIFFERS FROM CONFIG",
	       st->gate_native ? "nft queue" :
	       st->queue_ok ? "iptables-nft (the kernel lacks nft queue)" :
	       "iptables-nft rules MISSING");
	printf("  chain prerouting: %s, %u rules (%s)\n",
	       st->chain_ok ? "present" : "MISSING OR WRONG HOOK", st->n_rules,
	       as_config(st->rules_match));
}

static void print_bridge(const struct mf_config *cfg, const struct mf_rules_status *st)
{
	if (cfg->mode != MF_MODE_BRIDGE) {
		if (st->bridge.exists)
			printf("table bridge mailferry: present, but mode = router "
			       "(run `mailferry rules install`)\n");
		return;
	}
	if (st->bridge_dev_ok)
		printf("bridge %s: MAC %s\n", cfg->bridge, st->bridge_mac);
	else
		printf("bridge %s: %s\n", cfg->bridge, st->bridge_why);
	printf("table bridge mailferry: %s", st->bridge.exists ? "present" : "absent");
	if (st->bridge.exists)
		printf(", chain prerouting %s, %u rules (%s)",
		       st->bridge.chain_ok ? "present" : "MISSING OR WRONG HOOK",
		       st->bridge.n_rules,
		       st->bridge.rules_match ? "as configured, for this MAC" :
		       "DIFFERS FROM CONFIG OR MAC");
	printf("\n");
	print_brnf(&st->brnf);
	if (!br_sysctl_off(&st->brnf))
		printf("  br_netfilter calls the IP hooks for bridged frames: "
		       "diverted flows never reach the listener\n");
	warn_forwarding(cfg);
}

static void print_routing(const struct mf_config *cfg, int v, bool want,
			  bool rule, bool route)
{
	printf("policy routing IPv%d%s: rule fwmark 0x%x lookup %u pref %u: %s; "
	       "route local %s dev lo table %u: %s\n", v,
	       want ? "" : " (not wanted: no listener)", cfg->fwmark,
	       cfg->route_table, cfg->rule_priority, yes_no(rule),
	       v == 4 ? "0.0.0.0/0" : "::/0", cfg->route_table, yes_no(route));
}

static int rules_status(const struct cli_ctx *ctx, char **argv)
{
	static const char *const verdict[] = {
		[MF_RULES_ABSENT] = "not installed",
		[MF_RULES_INSTALLED] = "installed",
		[MF_RULES_PARTIAL] = ("PARTIAL or not as configured: "
				      "run `mailferry rules install` (or remove)"),
	};
	struct mf_rules_status st;
	struct mf_config cfg;
	char err[512];

	(void)argv;
	if (cli_load_config(ctx, &cfg) != MF_OK)
		return CLI_EXIT_ERROR;
	if (mf_rules_status(&cfg, &st, err, sizeof(err)) != MF_OK) {
		cli_error(ctx, "%s", err);
		return CLI_EXIT_ERROR;
	}
	print_table(&st);
	print_bridge(&cfg, &st);
	print_routing(&cfg, 4, st.want4, st.rule4, st.route4);
	print_routing(&cfg, 6, st.want6, st.rule6, st.route6);
	printf("rules: %s\n", verdict[st.state]);
	if (st.state == MF_RULES_INSTALLED)
		return CLI_EXIT_OK;
	return st.state == MF_RULES_ABSENT ? CLI_EXIT_ABSENT : CLI_EXIT_ERROR;
}

const struct cli_cmd cli_rules_cmds[] = {
	{ .name = "install", .args = "", .run = rules_install,
	  .help = "install nftables rules + policy routing from the config" },
	{ .name = "remove", .args = "", .run = rules_remove,
	  .help = "remove them; leaves no trace" },
	{ .name = "status", .args = "", .run = rules_status,
	  .help = "show what is installed (exit 0 yes, 3 no, 1 partly)" },
	{ .name = NULL },
};
