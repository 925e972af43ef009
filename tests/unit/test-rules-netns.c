/* test-rules-netns.c — the rules API against the real kernel, in a private
 * network namespace of this test process (unshare: anonymous, gone when
 * the process exits, never the caller's). Skipped without the privilege.
 * The e2e test drives the same through the CLI; this one runs the netlink
 * code under ASan/UBSan (make unit-asan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"
#include "mf.h"
#include "nft_bridge.h"
#include "nft_chain.h"
#include "nft_probe.h"
#include "nft_set.h"
#include "nl_sock.h"
#include "rules.h"

#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static bool in_private_netns;

static void lo_up(void)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	assert_int_equal(ioctl(fd, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	assert_int_equal(ioctl(fd, SIOCSIFFLAGS, &ifr), 0);
	close(fd);
}

static int enter_private_netns(void **state)
{
	struct stat before, after;

	(void)state;
	if (stat("/proc/self/ns/net", &before) != 0)
		return 0;
	if (unshare(CLONE_NEWNET) != 0) {
		fprintf(stderr, "# no private netns (%s): skipping\n", strerror(errno));
		return 0;
	}
	/* Never touch the namespace we were started in. */
	if (stat("/proc/self/ns/net", &after) != 0 || after.st_ino == before.st_ino)
		abort();
	in_private_netns = true;
	lo_up();
	return 0;
}

static void need_netns(void)
{
	if (!in_private_netns)
		skip();
}

static void load(struct mf_config *cfg, const char *text)
{
	char err[256] = "";

	if (mf_config_parse_string(text, cfg, err, sizeof(err)) != MF_OK)
		fail_msg("config: %s", err);
}

static void status(const struct mf_config *cfg, struct mf_rules_status *st)
{
	char err[512] = "";

	if (mf_rules_status(cfg, st, err, sizeof(err)) != MF_OK)
		fail_msg("status: %s", err);
}

static void ok_or_fail(int rc, const char *what, const char *err)
{
	if (rc != MF_OK)
		fail_msg("%s: %s", what, err);
}

static const char *lab_conf =
	"[intercept]\n"
	"sources = 198.18.11.2, 2001:db8:11::2\n"
	"clients = 198.18.1.0/24, 2001:db8:1::/64\n"
	"ports = 143, 993\n";

static void probe_finds_what_we_need(void **state)
{
	struct nl_sock s;
	char err[256] = "";
	bool present;

	(void)state;
	need_netns();
	ok_or_fail(mf_rules_probe(err, sizeof(err)), "probe", err);
	ok_or_fail(nl_sock_open(&s, NETLINK_NETFILTER, err, sizeof(err)), "open", err);
	ok_or_fail(nft_probe_expr(&s, "mailferry_none", 0, &present, err,
				  sizeof(err)), "probe none", err);
	assert_false(present);
	/* Known but given no attributes: the kernel knows it. */
	ok_or_fail(nft_probe_expr(&s, "payload", 0, &present, err, sizeof(err)),
		   "probe payload", err);
	assert_true(present);
	ok_or_fail(nft_probe_expr(&s, "tproxy", NFPROTO_IPV6, &present, err,
				  sizeof(err)), "probe tproxy6", err);
	assert_true(present);
	nl_sock_close(&s);
}

static void install_status_remove(void **state)
{
	struct mf_rules_status st;
	struct mf_config cfg;
	char err[512] = "";

	(void)state;
	need_netns();
	load(&cfg, lab_conf);
	status(&cfg, &st);
	assert_int_equal(st.state, MF_RULES_ABSENT);
	for (int i = 0; i < 2; i++) {
		ok_or_fail(mf_rules_install(&cfg, err, sizeof(err)), "install", err);
		status(&cfg, &st);
		assert_int_equal(st.state, MF_RULES_INSTALLED);
		assert_true(st.table && st.sets_ok && st.chain_ok && st.rules_match);
		assert_int_equal(st.n_rules, NFT_RULES);
		assert_true(st.gate_ok && st.queue_ok);
		assert_false(st.fail_closed);
		assert_int_equal(st.n_sources, 2);
		assert_int_equal(st.n_ports, 2);
		assert_int_equal(st.n_clients, 2);
		assert_true(st.rule4 && st.route4 && st.rule6 && st.route6);
	}
	for (int i = 0; i < 2; i++) {
		ok_or_fail(mf_rules_remove(&cfg, err, sizeof(err)), "remove", err);
		status(&cfg, &st);
		assert_int_equal(st.state, MF_RULES_ABSENT);
	}
}

static void status_sees_a_changed_config(void **state)
{
	struct mf_rules_status st;
	struct mf_config cfg, other;
	char err[512] = "";

	(void)state;
	need_netns();
	load(&cfg, lab_conf);
	ok_or_fail(mf_rules_install(&cfg, err, sizeof(err)), "install", err);
	load(&other, "[gateway]\nlisten_port = 20000\n[intercept]\n"
		     "sources = 198.18.11.9\nports = 143\nfwmark = 7\n");
	status(&other, &st);
	assert_int_equal(st.state, MF_RULES_PARTIAL);
	assert_false(st.sources_match);
	assert_false(st.ports_match);
	assert_false(st.rules_match);
	assert_false(st.rule4);
	assert_true(st.route4); /* same table */
	/* Re-install replaces all, and drops the old mark's rules. */
	ok_or_fail(mf_rules_install(&other, err, sizeof(err)), "re-install", err);
	status(&other, &st);
	assert_int_equal(st.state, MF_RULES_INSTALLED);
	status(&cfg, &st);
	assert_false(st.rule4 || st.rule6);
	/* Removing with the first config still removes everything: the
	 * table recorded what was installed. */
	ok_or_fail(mf_rules_remove(&cfg, err, sizeof(err)), "remove", err);
	status(&other, &st);
	assert_int_equal(st.state, MF_RULES_ABSENT);
}

static void bad_config_changes_nothing(void **state)
{
	struct mf_rules_status st;
	struct mf_config cfg;
	char err[512] = "";

	(void)state;
	need_netns();
	load(&cfg, "[intercept]\nclients = 10.0.0.0/8, 10.1.0.0/16\n");
	assert_int_equal(mf_rules_install(&cfg, err, sizeof(err)), MF_ERROR);
	assert_non_null(strstr(err, "10.1.0.0/16 overlaps 10.0.0.0/8"));
	status(&cfg, &st);
	assert_int_equal(st.state, MF_RULES_ABSENT);
}

struct list {
	char text[512];
};

static int list_cb(const struct mf_cidr *c, void *data)
{
	struct list *l = data;
	char buf[MF_ADDRSTRLEN];
	size_t used = strlen(l->text);

	mf_cidr_format(c, buf, sizeof(buf));
	snprintf(l->text + used, sizeof(l->text) - used, "%s%s", used ? " " : "", buf);
	return MF_OK;
}

static const char *list(void)
{
	static struct list l;
	char err[512] = "";

	memset(&l, 0, sizeof(l));
	ok_or_fail(mf_subnet_list(list_cb, &l, err, sizeof(err)), "list", err);
	return l.text;
}

static enum mf_subnet_change subnet(bool add, const char *text, int want_rc,
				    char *err, size_t errlen)
{
	enum mf_subnet_change ch = MF_SUBNET_UNCHANGED;
	struct mf_cidr c;

	assert_int_equal(mf_cidr_parse(text, &c), MF_OK);
	err[0] = '\0';
	if ((add ? mf_subnet_add(&c, &ch, err, errlen) :
		   mf_subnet_del(&c, &ch, err, errlen)) != want_rc)
		fail_msg("subnet %s %s: %s", add ? "add" : "del", text, err);
	return ch;
}

static void subnets_at_run_time(void **state)
{
	static const char *const all[] = {
		"10.0.0.0/8", "255.255.255.0/24", "198.18.1.0/24",
		"2001:db8:1::/64", "2001:db8:2::/64",
	};
	struct mf_config cfg;
	char err[512] = "";

	(void)state;
	need_netns();
	load(&cfg, lab_conf);
	assert_int_equal(subnet(true, "10.0.0.0/8", MF_ERROR, err, sizeof(err)),
			 MF_SUBNET_UNCHANGED);
	assert_non_null(strstr(err, "not installed"));
	ok_or_fail(mf_rules_install(&cfg, err, sizeof(err)), "install", err);
	assert_string_equal(list(), "198.18.1.0/24 2001:db8:1::/64");

	assert_int_equal(subnet(true, "10.0.0.0/8", MF_OK, err, sizeof(err)),
			 MF_SUBNET_CHANGED);
	assert_int_equal(subnet(true, "10.0.0.0/8", MF_OK, err, sizeof(err)),
			 MF_SUBNET_UNCHANGED);
	subnet(true, "10.1.0.0/16", MF_ERROR, err, sizeof(err));
	assert_string_equal(err, "10.1.0.0/16 overlaps intercepted subnet 10.0.0.0/8");
	subnet(true, "0.0.0.0/0", MF_ERROR, err, sizeof(err));
	assert_int_equal(subnet(true, "255.255.255.0/24", MF_OK, err, sizeof(err)),
			 MF_SUBNET_CHANGED);
	assert_int_equal(subnet(true, "2001:db8:2::/64", MF_OK, err, sizeof(err)),
			 MF_SUBNET_CHANGED);
	assert_string_equal(list(), "10.0.0.0/8 198.18.1.0/24 255.255.255.0/24 "
				    "2001:db8:1::/64 2001:db8:2::/64");

	subnet(false, "10.1.0.0/16", MF_ERROR, err, sizeof(err));
	assert_non_null(strstr(err, "overlaps 10.0.0.0/8"));
	assert_int_equal(subnet(false, "11.0.0.0/8", MF_OK, err, sizeof(err)),
			 MF_SUBNET_UNCHANGED);
	for (size_t i = 0; i < MF_ARRAY_LEN(all); i++)
		assert_int_equal(subnet(false, all[i], MF_OK, err, sizeof(err)),
				 MF_SUBNET_CHANGED);
	assert_string_equal(list(), "");

	/* The whole space, both families. */
	assert_int_equal(subnet(true, "0.0.0.0/0", MF_OK, err, sizeof(err)),
			 MF_SUBNET_CHANGED);
	assert_int_equal(subnet(true, "::/0", MF_OK, err, sizeof(err)),
			 MF_SUBNET_CHANGED);
	assert_string_equal(list(), "0.0.0.0/0 ::/0");
	subnet(true, "2001:db8::/32", MF_ERROR, err, sizeof(err));

	/* Install resets the sets to the config. */
	ok_or_fail(mf_rules_install(&cfg, err, sizeof(err)), "install", err);
	assert_string_equal(list(), "198.18.1.0/24 2001:db8:1::/64");
	ok_or_fail(mf_rules_remove(&cfg, err, sizeof(err)), "remove", err);
}

static int count_elem(const struct nft_elem *e, void *data)
{
	(void)e;
	(*(unsigned int *)data)++;
	return MF_OK;
}

/* Elements in set name of table mailferry of family. */
static unsigned int set_elems(uint16_t family, const char *name)
{
	struct nl_sock s;
	struct nl_error e;
	unsigned int n = 0;
	char err[256] = "";

	ok_or_fail(nl_sock_open(&s, NETLINK_NETFILTER, err, sizeof(err)), "open", err);
	if (nft_set_dump_family(&s, family, name, count_elem, &n, &e) != MF_OK)
		fail_msg("dump %s: errno %d", name, e.error);
	nl_sock_close(&s);
	return n;
}

/* Elements in set fail_closed: 1 while fail-closed, 0 while open. */
static unsigned int closed_elems(void)
{
	return set_elems(NFPROTO_INET, "fail_closed");
}

static void gate_mode_flips(void **state)
{
	struct mf_config cfg;
	char err[512] = "";

	(void)state;
	need_netns();
	load(&cfg, lab_conf);
	assert_int_equal(mf_rules_set_fail_closed(true, err, sizeof(err)), MF_ERROR);
	assert_int_equal(mf_rules_set_fail_closed(false, err, sizeof(err)), MF_ERROR);
	assert_non_null(strstr(err, "not installed"));
	ok_or_fail(mf_rules_install(&cfg, err, sizeof(err)), "install", err);
	assert_int_equal(closed_elems(), 0);
	for (int i = 0; i < 2; i++) { /* idempotent both ways */
		ok_or_fail(mf_rules_set_fail_closed(true, err, sizeof(err)), "close", err);
		assert_int_equal(closed_elems(), 1);
	}
	for (int i = 0; i < 2; i++) {
		ok_or_fail(mf_rules_set_fail_closed(false, err, sizeof(err)), "open", err);
		assert_int_equal(closed_elems(), 0);
	}
	/* fail = closed installs closed; so does an explicit closed install. */
	load(&cfg, "[intercept]\nsources = 198.18.11.2\nfail = closed\n");
	ok_or_fail(mf_rules_install(&cfg, err, sizeof(err)), "install closed", err);
	assert_int_equal(closed_elems(), 1);
	load(&cfg, lab_conf);
	ok_or_fail(mf_rules_install_gate(&cfg, true, err, sizeof(err)), "install gate", err);
	assert_int_equal(closed_elems(), 1);
	ok_or_fail(mf_rules_remove(&cfg, err, sizeof(err)), "remove", err);
}

/* br_netfilter's two sysctls in this namespace, "ip/ip6" ("-" without
 * br_netfilter). */
static const char *brnf(void)
{
	static char out[8];
	char a[8] = "", b[8] = "";
	FILE *f = fopen("/proc/sys/net/bridge/bridge-nf-call-iptables", "re");
	FILE *g = fopen("/proc/sys/net/bridge/bridge-nf-call-ip6tables", "re");

	if (f == NULL || g == NULL || fgets(a, sizeof(a), f) == NULL ||
	    fgets(b, sizeof(b), g) == NULL)
		snprintf(out, sizeof(out), "-");
	else
		snprintf(out, sizeof(out), "%c/%c", a[0], b[0]);
	if (f != NULL)
		fclose(f);
	if (g != NULL)
		fclose(g);
	return out;
}

static void set_brnf(const char *which, const char *v)
{
	char path[96];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/sys/net/bridge/bridge-nf-call-%s", which);
	f = fopen(path, "we");
	assert_non_null(f);
	assert_true(fputs(v, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static const char *bridge_conf =
	"[intercept]\n"
	"mode = bridge\n"
	"bridge = mfbr0\n"
	"sources = 198.18.1.11, 2001:db8:1::11\n"
	"clients = 198.18.1.0/24, 2001:db8:1::/64\n"
	"ports = 143, 993\n";

/* Elements (start and end) in the bridge table's clients4. */
static unsigned int bridge_clients4(void)
{
	return set_elems(NFPROTO_BRIDGE, "clients4");
}

static void bridge_install_status_remove(void **state)
{
	struct mf_rules_status st;
	struct mf_config cfg, router;
	char err[512] = "";

	(void)state;
	need_netns();
	if (strcmp(brnf(), "-") == 0)
		skip(); /* no br_netfilter: nothing to prove about its sysctls */
	load(&cfg, bridge_conf);
	/* No such device, then one that is not a bridge: nothing changes. */
	assert_int_equal(mf_rules_install(&cfg, err, sizeof(err)), MF_ERROR);
	assert_non_null(strstr(err, "no device mfbr0"));
	assert_int_equal(system("ip link add mfbr0 type veth peer name mfbr1"), 0);
	assert_int_equal(mf_rules_install(&cfg, err, sizeof(err)), MF_ERROR);
	assert_non_null(strstr(err, "mfbr0 is not a bridge (kind veth)"));
	status(&cfg, &st);
	assert_int_equal(st.state, MF_RULES_ABSENT);
	assert_int_equal(system("ip link del mfbr0 && ip link add mfbr0 address "
				"02:00:00:00:00:01 type bridge"), 0);
	/* Values an admin chose survive install and remove exactly. */
	set_brnf("iptables", "1");
	set_brnf("ip6tables", "0");
	for (int i = 0; i < 2; i++) { /* a re-install keeps the first record */
		ok_or_fail(mf_rules_install(&cfg, err, sizeof(err)), "install", err);
		status(&cfg, &st);
		assert_int_equal(st.state, MF_RULES_INSTALLED);
		assert_true(st.bridge.exists && st.bridge.chain_ok && st.bridge.rules_match);
		assert_int_equal(st.bridge.n_rules, NFT_BRIDGE_RULES);
		assert_string_equal(st.bridge_mac, "02:00:00:00:00:01");
		assert_true(st.bridge.has_record && st.bridge.saved.present);
		assert_int_equal(st.bridge.saved.call_iptables, 1);
		assert_int_equal(st.bridge.saved.call_ip6tables, 0);
		assert_string_equal(brnf(), "0/0");
	}
	/* Someone turns br_netfilter's IP hooks back on: not installed. */
	set_brnf("iptables", "1");
	status(&cfg, &st);
	assert_int_equal(st.state, MF_RULES_PARTIAL);
	set_brnf("iptables", "0");
	/* A new MAC on the bridge: the rules name the old one. */
	assert_int_equal(system("ip link set mfbr0 address 02:00:00:00:00:02"), 0);
	status(&cfg, &st);
	assert_int_equal(st.state, MF_RULES_PARTIAL);
	assert_false(st.bridge.rules_match);
	ok_or_fail(mf_rules_install(&cfg, err, sizeof(err)), "install new MAC", err);
	status(&cfg, &st);
	assert_int_equal(st.state, MF_RULES_INSTALLED);

	/* subnet add mirrors into the bridge set; del leaves it there. */
	assert_int_equal(bridge_clients4(), 2);
	subnet(true, "10.0.0.0/8", MF_OK, err, sizeof(err));
	assert_int_equal(bridge_clients4(), 4);
	subnet(false, "10.0.0.0/8", MF_OK, err, sizeof(err));
	assert_int_equal(bridge_clients4(), 4);
	/* Adding part of what del left replaces it there. */
	subnet(true, "10.1.0.0/16", MF_OK, err, sizeof(err));
	assert_int_equal(bridge_clients4(), 4);
	assert_string_equal(list(), "10.1.0.0/16 198.18.1.0/24 2001:db8:1::/64");

	/* Back to router mode: the bridge table goes, the sysctls come back. */
	load(&router, lab_conf);
	status(&router, &st);
	assert_int_equal(st.state, MF_RULES_PARTIAL);
	ok_or_fail(mf_rules_install(&router, err, sizeof(err)), "install router", err);
	status(&router, &st);
	assert_int_equal(st.state, MF_RULES_INSTALLED);
	assert_false(st.bridge.exists);
	assert_string_equal(brnf(), "1/0");

	ok_or_fail(mf_rules_install(&cfg, err, sizeof(err)), "install bridge", err);
	assert_string_equal(brnf(), "0/0");
	for (int i = 0; i < 2; i++) {
		ok_or_fail(mf_rules_remove(&cfg, err, sizeof(err)), "remove", err);
		status(&cfg, &st);
		assert_int_equal(st.state, MF_RULES_ABSENT);
		assert_string_equal(brnf(), "1/0");
	}
	set_brnf("ip6tables", "1");
	assert_int_equal(system("ip link del mfbr0"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(probe_finds_what_we_need),
		cmocka_unit_test(install_status_remove),
		cmocka_unit_test(status_sees_a_changed_config),
		cmocka_unit_test(bad_config_changes_nothing),
		cmocka_unit_test(subnets_at_run_time),
		cmocka_unit_test(gate_mode_flips),
		cmocka_unit_test(bridge_install_status_remove),
	};

	return cmocka_run_group_tests(tests, enter_private_netns, NULL);
}
