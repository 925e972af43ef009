/* test-nft-ruleset.c — the rule set built from the config, without a
 * kernel: expressions as nft itself generates them, client subnets from
 * the config, the install record, batch limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/socket.h>

#include "config.h"
#include "mf.h"
#include "nft_batch.h"
#include "nft_chain.h"
#include "nft_direct.h"
#include "nft_gate.h"
#include "nft_direct.h"
#include "nft_ruleset.h"

#include <libnftnl/rule.h>
#include <linux/netfilter/nf_tables.h>
#include <stdio.h>
#include <string.h>

/* What `nft --debug=netlink add rule inet mailferry prerouting ...` prints
 * for the rules of mailferry.nft with the defaults (port 10143, mark
 * 0x4d46), as listed back from the kernel (lookups show their flags). */
static const char *const nft_says[NFT_RULES] = {
	"[ meta load l4proto => reg 1 ] [ cmp eq reg 1 0x00000006 ] "
	"[ socket load transparent => reg 1 ] [ cmp eq reg 1 0x00000001 ] "
	"[ socket load wildcard => reg 1 ] [ cmp eq reg 1 0x00000000 ] "
	"[ immediate reg 1 0x00004d46 ] [ meta set mark with reg 1 ] "
	"[ immediate reg 0 accept ]",

	"[ meta load mark => reg 1 ] [ cmp eq reg 1 0x4d470002 ] "
	"[ immediate reg 1 0x4d470002 ] [ ct set mark with reg 1 ] [ immediate reg 0 accept ]",

	"[ meta load l4proto => reg 1 ] [ cmp eq reg 1 0x00000006 ] "
	"[ meta load nfproto => reg 1 ] [ cmp eq reg 1 0x00000002 ] "
	"[ payload load 4b @ network header + 16 => reg 1 ] "
	"[ lookup reg 1 set sources4 0x0 ] "
	"[ payload load 4b @ network header + 12 => reg 1 ] "
	"[ lookup reg 1 set clients4 0x0 ] "
	"[ payload load 2b @ transport header + 2 => reg 1 ] "
	"[ lookup reg 1 set ports 0x0 ] "
	"[ ct load mark => reg 1 ] [ cmp neq reg 1 0x4d470002 ] [ immediate reg 1 0x00009f27 ] "
	"[ tproxy ip port reg 1 ] [ immediate reg 1 0x00004d46 ] "
	"[ meta set mark with reg 1 ] [ immediate reg 0 accept ]",

	"[ meta load l4proto => reg 1 ] [ cmp eq reg 1 0x00000006 ] "
	"[ meta load nfproto => reg 1 ] [ cmp eq reg 1 0x0000000a ] "
	"[ payload load 16b @ network header + 24 => reg 1 ] "
	"[ lookup reg 1 set sources6 0x0 ] "
	"[ payload load 16b @ network header + 8 => reg 1 ] "
	"[ lookup reg 1 set clients6 0x0 ] "
	"[ payload load 2b @ transport header + 2 => reg 1 ] "
	"[ lookup reg 1 set ports 0x0 ] "
	"[ ct load mark => reg 1 ] [ cmp neq reg 1 0x4d470002 ] [ immediate reg 1 0x00009f27 ] "
	"[ tproxy ip6 port reg 1 ] [ immediate reg 1 0x00004d46 ] "
	"[ meta set mark with reg 1 ] [ immediate reg 0 accept ]",

	"[ meta load l4proto => reg 1 ] [ cmp eq reg 1 0x00000006 ] "
	"[ meta load nfproto => reg 1 ] [ cmp eq reg 1 0x00000002 ] "
	"[ payload load 4b @ network header + 16 => reg 1 ] "
	"[ lookup reg 1 set sources4 0x0 ] "
	"[ payload load 2b @ transport header + 2 => reg 1 ] "
	"[ lookup reg 1 set ports 0x0 ] "
	"[ ct load state => reg 1 ] [ bitwise reg 1 = ( reg 1 & 0x00000008 ) ^ 0x00000000 ] "
	"[ cmp neq reg 1 0x00000000 ] [ ct load mark => reg 1 ] [ cmp neq reg 1 0x4d470002 ] "
	"[ payload load 4b @ network header + 12 => reg 1 ] "
	"[ payload load 2b @ transport header + 2 => reg 9 ] "
	"[ dynset update reg_key 1 set direct4 timeout 0ms ]",

	"[ meta load l4proto => reg 1 ] [ cmp eq reg 1 0x00000006 ] "
	"[ meta load nfproto => reg 1 ] [ cmp eq reg 1 0x0000000a ] "
	"[ payload load 16b @ network header + 24 => reg 1 ] "
	"[ lookup reg 1 set sources6 0x0 ] "
	"[ payload load 2b @ transport header + 2 => reg 1 ] "
	"[ lookup reg 1 set ports 0x0 ] "
	"[ ct load state => reg 1 ] [ bitwise reg 1 = ( reg 1 & 0x00000008 ) ^ 0x00000000 ] "
	"[ cmp neq reg 1 0x00000000 ] [ ct load mark => reg 1 ] [ cmp neq reg 1 0x4d470002 ] "
	"[ payload load 16b @ network header + 8 => reg 1 ] "
	"[ payload load 2b @ transport header + 2 => reg 2 ] "
	"[ dynset update reg_key 1 set direct6 timeout 0ms ]",

	"[ meta load l4proto => reg 1 ] [ cmp eq reg 1 0x00000006 ] "
	"[ meta load nfproto => reg 1 ] [ cmp eq reg 1 0x00000002 ] "
	"[ payload load 4b @ network header + 16 => reg 1 ] "
	"[ lookup reg 1 set sources4 0x0 ] "
	"[ payload load 2b @ transport header + 2 => reg 1 ] "
	"[ lookup reg 1 set ports 0x0 ] "
	"[ ct load state => reg 1 ] [ bitwise reg 1 = ( reg 1 & 0x00000008 ) ^ 0x00000000 ] "
	"[ cmp neq reg 1 0x00000000 ] [ immediate reg 1 0x4d470002 ] [ ct set mark with reg 1 ]",

	"[ meta load l4proto => reg 1 ] [ cmp eq reg 1 0x00000006 ] "
	"[ meta load nfproto => reg 1 ] [ cmp eq reg 1 0x0000000a ] "
	"[ payload load 16b @ network header + 24 => reg 1 ] "
	"[ lookup reg 1 set sources6 0x0 ] "
	"[ payload load 2b @ transport header + 2 => reg 1 ] "
	"[ lookup reg 1 set ports 0x0 ] "
	"[ ct load state => reg 1 ] [ bitwise reg 1 = ( reg 1 & 0x00000008 ) ^ 0x00000000 ] "
	"[ cmp neq reg 1 0x00000000 ] [ immediate reg 1 0x4d470002 ] [ ct set mark with reg 1 ]",
};

static const struct nft_gate_opts open_gate = { .native_queue = false, .closed = false };
static const struct nft_gate_opts closed_gate = { .native_queue = false, .closed = true };

/* The SYN gate's IPv4 match, as `nft --debug=netlink` printed it for
 * "tcp flags & (syn | ack) == syn ip daddr @sources4 ip saddr @clients4
 * tcp dport @ports" in chain gate. */
#define GATE_MATCH4 \
	"[ meta load l4proto => reg 1 ] [ cmp eq reg 1 0x00000006 ] " \
	"[ payload load 1b @ transport header + 13 => reg 1 ] " \
	"[ bitwise reg 1 = ( reg 1 & 0x00000012 ) ^ 0x00000000 ] " \
	"[ cmp eq reg 1 0x00000002 ] " \
	"[ meta load nfproto => reg 1 ] [ cmp eq reg 1 0x00000002 ] " \
	"[ payload load 4b @ network header + 16 => reg 1 ] " \
	"[ lookup reg 1 set sources4 0x0 ] " \
	"[ payload load 4b @ network header + 12 => reg 1 ] " \
	"[ lookup reg 1 set clients4 0x0 ] " \
	"[ payload load 2b @ transport header + 2 => reg 1 ] " \
	"[ lookup reg 1 set ports 0x0 ] "
#define GATE_CLOSED "[ meta load l4proto => reg 1 ] [ lookup reg 1 set fail_closed 0x0 ] "

static void gate_text(const struct mf_config *cfg, bool native,
		      char out[NFT_GATE_RULES][2048])
{
	struct nftnl_rule *rules[NFT_GATE_RULES];

	assert_int_equal(nft_gate_rules(cfg, native, rules), MF_OK);
	for (int i = 0; i < NFT_GATE_RULES; i++) {
		assert_int_equal(nft_chain_rule_text(rules[i], out[i], 2048), MF_OK);
		nftnl_rule_free(rules[i]);
	}
}

static void gate_rules_match_what_nft_generates(void **state)
{
	struct mf_config cfg;
	char text[NFT_GATE_RULES][2048];

	(void)state;
	mf_config_defaults(&cfg);
	gate_text(&cfg, false, text);
	assert_string_equal(text[0], GATE_MATCH4 GATE_CLOSED
			    "[ immediate reg 1 0x4d470001 ] [ meta set mark with reg 1 ] "
			    "[ immediate reg 0 accept ]");
	assert_string_equal(text[1], GATE_MATCH4
			    "[ immediate reg 1 0x4d470000 ] [ meta set mark with reg 1 ] "
			    "[ immediate reg 0 accept ]");
	assert_non_null(strstr(text[2], "[ payload load 16b @ network header + 24 => reg 1 ] "
				       "[ lookup reg 1 set sources6 0x0 ]"));
	assert_non_null(strstr(text[2], GATE_CLOSED));
	assert_null(strstr(text[3], "fail_closed"));
	/* Native: nft's "queue num 4242" and "queue num 4242 bypass". */
	gate_text(&cfg, true, text);
	assert_string_equal(text[0], GATE_MATCH4 GATE_CLOSED "[ queue num 4242 ]");
	assert_string_equal(text[1], GATE_MATCH4 "[ queue num 4242 bypass ]");
}

static void gate_marks_must_differ_from_fwmark(void **state)
{
	struct mf_config cfg;
	char err[256] = "";

	(void)state;
	assert_int_equal(mf_config_parse_string("[intercept]\nfwmark = 0x10\n"
						"gate_mark = 0xf\n", &cfg, err,
						sizeof(err)), MF_ERROR);
	assert_non_null(strstr(err, "must differ from fwmark"));
}

static void load(struct mf_config *cfg, const char *text)
{
	char err[256] = "";

	if (mf_config_parse_string(text, cfg, err, sizeof(err)) != MF_OK)
		fail_msg("config: %s", err);
}

static void rules_text(const struct mf_config *cfg, char out[NFT_RULES][2048])
{
	struct nftnl_rule *rules[NFT_RULES];

	assert_int_equal(nft_chain_rules(cfg, rules), MF_OK);
	for (int i = 0; i < NFT_RULES; i++) {
		assert_int_equal(nft_chain_rule_text(rules[i], out[i], 2048), MF_OK);
		nftnl_rule_free(rules[i]);
	}
}

static void rules_match_what_nft_generates(void **state)
{
	struct mf_config cfg;
	char text[NFT_RULES][2048];

	(void)state;
	mf_config_defaults(&cfg);
	rules_text(&cfg, text);
	for (int i = 0; i < NFT_RULES; i++)
		assert_string_equal(text[i], nft_says[i]);
}

static void rules_follow_the_config(void **state)
{
	struct mf_config cfg;
	char text[NFT_RULES][2048];

	(void)state;
	load(&cfg, "[gateway]\nlisten_port = 993\n[intercept]\nfwmark = 0x1\n");
	rules_text(&cfg, text);
	/* 993 = 0x03e1, in network order in the register. */
	assert_non_null(strstr(text[2], "[ immediate reg 1 0x0000e103 ] [ tproxy ip port"));
	assert_non_null(strstr(text[3], "[ immediate reg 1 0x0000e103 ] [ tproxy ip6 port"));
	for (int i = 0; i < 4; i++)
		if (i != 1) /* the pass rule sets the ct mark, not the packet's */
			assert_non_null(strstr(text[i], "[ immediate reg 1 0x00000001 ] "
						      "[ meta set mark with reg 1 ]"));
	/* the pass mark follows gate_mark */
	load(&cfg, "[intercept]\ngate_mark = 0x100\n");
	rules_text(&cfg, text);
	assert_string_equal(text[1], "[ meta load mark => reg 1 ] [ cmp eq reg 1 0x00000102 ] "
				     "[ immediate reg 1 0x00000102 ] [ ct set mark with reg 1 ] "
				     "[ immediate reg 0 accept ]");
}

static void rule_text_too_long_is_an_error(void **state)
{
	struct nftnl_rule *rules[NFT_RULES];
	struct mf_config cfg;
	char small[64];

	(void)state;
	mf_config_defaults(&cfg);
	assert_int_equal(nft_chain_rules(&cfg, rules), MF_OK);
	assert_int_equal(nft_chain_rule_text(rules[0], small, sizeof(small)),
			 MF_ERROR);
	for (int i = 0; i < NFT_RULES; i++)
		nftnl_rule_free(rules[i]);
}

static void clients_sorted_deduplicated(void **state)
{
	struct mf_cidr out[MF_MAX_CLIENTS];
	struct mf_config cfg;
	char err[256], a[MF_ADDRSTRLEN];
	unsigned int n;

	(void)state;
	load(&cfg, "[intercept]\n"
		   "clients = 198.18.2.0/24, 10.0.0.0/8, 2001:db8:1::/64\n"
		   "clients = 198.18.2.0/24, 192.0.2.1\n");
	assert_int_equal(nft_ruleset_clients(&cfg, AF_INET, out, &n, err,
					     sizeof(err)), MF_OK);
	assert_int_equal(n, 3);
	mf_cidr_format(&out[0], a, sizeof(a));
	assert_string_equal(a, "10.0.0.0/8");
	mf_cidr_format(&out[1], a, sizeof(a));
	assert_string_equal(a, "192.0.2.1/32");
	mf_cidr_format(&out[2], a, sizeof(a));
	assert_string_equal(a, "198.18.2.0/24");
	assert_int_equal(nft_ruleset_clients(&cfg, AF_INET6, out, &n, err,
					     sizeof(err)), MF_OK);
	assert_int_equal(n, 1);
}

static void overlapping_clients_are_refused(void **state)
{
	struct mf_cidr out[MF_MAX_CLIENTS];
	struct mf_config cfg;
	char err[256] = "";
	unsigned int n;

	(void)state;
	load(&cfg, "[intercept]\nclients = 10.1.0.0/16, 10.0.0.0/8\n");
	assert_int_equal(nft_ruleset_clients(&cfg, AF_INET, out, &n, err,
					     sizeof(err)), MF_ERROR);
	assert_string_equal(err, "[intercept] clients: 10.1.0.0/16 overlaps 10.0.0.0/8");
}

static void record_decode(void **state)
{
	/* nftnl_udata TLVs: type, length, host-order u32 value. */
	uint8_t good[18], missing[12], bad_len[6] = { 0xe0, 3, 1, 2, 3, 0 };
	uint32_t v[3] = { 0x4d46, 1846, 100 };
	struct policy_route pr;

	(void)state;
	for (int i = 0; i < 3; i++) {
		good[6 * i] = (uint8_t)(0xe0 + i);
		good[6 * i + 1] = 4;
		memcpy(&good[6 * i + 2], &v[i], 4);
	}
	assert_int_equal(nft_record_decode(good, sizeof(good), &pr), MF_OK);
	assert_int_equal(pr.fwmark, 0x4d46);
	assert_int_equal(pr.table, 1846);
	assert_int_equal(pr.priority, 100);
	memcpy(missing, good, sizeof(missing));
	assert_int_equal(nft_record_decode(missing, sizeof(missing), &pr), MF_ERROR);
	assert_int_equal(nft_record_decode(bad_len, sizeof(bad_len), &pr), MF_ERROR);
	assert_int_equal(nft_record_decode(NULL, 0, &pr), MF_ERROR);
}

static void record_decode_xt(void **state)
{
	/* The policy-routing record plus the gate's iptables-nft record. */
	uint8_t both[30];
	uint32_t v[5] = { 0x4d46, 1846, 100, 0x4d470000, 4242 };
	uint8_t types[5] = { 0xe0, 0xe1, 0xe2, 0xe8, 0xe9 };
	struct nft_xt_record xt;
	struct policy_route pr;

	(void)state;
	for (int i = 0; i < 5; i++) {
		both[6 * i] = types[i];
		both[6 * i + 1] = 4;
		memcpy(&both[6 * i + 2], &v[i], 4);
	}
	assert_int_equal(nft_record_decode(both, sizeof(both), &pr), MF_OK);
	assert_int_equal(pr.priority, 100);
	assert_int_equal(nft_record_decode_xt(both, sizeof(both), &xt), MF_OK);
	assert_int_equal(xt.gate_mark, 0x4d470000);
	assert_int_equal(xt.queue_num, 4242);
	/* An install with the native queue wrote none. */
	assert_int_equal(nft_record_decode_xt(both, 18, &xt), MF_ERROR);
	/* Half a record is none either. */
	assert_int_equal(nft_record_decode_xt(both, 24, &xt), MF_ERROR);
}

/* Keys of direct4/direct6 as the kernel hands them back: address, port in
 * network order, two bytes of register padding; anything else is refused. */
static void direct_keys_decode(void **state)
{
	const uint8_t k4[8] = { 198, 18, 1, 2, 0, 143, 0, 0 };
	uint8_t k6[20] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1 };
	const uint8_t padded[8] = { 198, 18, 1, 2, 0, 25, 0, 1 };
	struct nft_direct_count c;
	char text[MF_ADDRSTRLEN];

	(void)state;
	assert_int_equal(nft_direct_decode(k4, sizeof(k4), 7, &c), MF_OK);
	assert_int_equal(c.client.family, AF_INET);
	mf_addr_format(&c.client, text, sizeof(text));
	assert_string_equal(text, "198.18.1.2");
	assert_int_equal(c.port, 143);
	assert_int_equal(c.flows, 7);
	k6[15] = 2;
	k6[16] = 0x02;
	k6[17] = 0x4b; /* 587 */
	assert_int_equal(nft_direct_decode(k6, sizeof(k6), 1, &c), MF_OK);
	assert_int_equal(c.client.family, AF_INET6);
	mf_addr_format(&c.client, text, sizeof(text));
	assert_string_equal(text, "2001:db8:1::2");
	assert_int_equal(c.port, 587);
	/* Hostile shapes: every other length, and junk in the padding. */
	for (uint32_t len = 0; len <= 20; len++)
		if (len != 8 && len != 20)
			assert_int_equal(nft_direct_decode(k6, len, 1, &c), MF_ERROR);
	assert_int_equal(nft_direct_decode(padded, sizeof(padded), 1, &c), MF_ERROR);
}

static void build_counts_messages(void **state)
{
	struct nl_sock sock = { 0 }; /* sequence numbers only: never sent */
	struct mf_config cfg;
	struct nft_batch b;
	char err[256];

	(void)state;
	mf_config_defaults(&cfg);
	assert_int_equal(nft_batch_start(&b, &sock, err, sizeof(err)), MF_OK);
	assert_int_equal(nft_ruleset_build(&b, &cfg, &open_gate, err, sizeof(err)), MF_OK);
	/* create+delete old, table, 8 sets, ports only (no sources or
	 * clients by default: empty element lists are not sent), chain,
	 * 8 rules, gate chain, 4 rules. */
	assert_int_equal(b.n_msgs, 2 + 1 + 8 + 1 + 1 + 8 + 1 + 4);
	assert_false(b.overflow);
	nft_batch_free(&b);

	load(&cfg, "[intercept]\nsources = 198.18.11.2, 2001:db8::2\n"
		   "clients = 198.18.1.0/24, 2001:db8:1::/64\n");
	assert_int_equal(nft_batch_start(&b, &sock, err, sizeof(err)), MF_OK);
	assert_int_equal(nft_ruleset_build(&b, &cfg, &open_gate, err, sizeof(err)), MF_OK);
	assert_int_equal(b.n_msgs, 2 + 1 + 8 + 5 + 1 + 8 + 1 + 4);
	nft_batch_free(&b);
	/* Installed closed: one more message, tcp into fail_closed. */
	assert_int_equal(nft_batch_start(&b, &sock, err, sizeof(err)), MF_OK);
	assert_int_equal(nft_ruleset_build(&b, &cfg, &closed_gate, err, sizeof(err)), MF_OK);
	assert_int_equal(b.n_msgs, 2 + 1 + 8 + 5 + 1 + 1 + 8 + 1 + 4);
	nft_batch_free(&b);
}

static void build_refuses_overlapping_clients(void **state)
{
	struct nl_sock sock = { 0 };
	struct mf_config cfg;
	struct nft_batch b;
	char err[256] = "";

	(void)state;
	load(&cfg, "[intercept]\nclients = 2001:db8::/32, 2001:db8:1::/64\n");
	assert_int_equal(nft_batch_start(&b, &sock, err, sizeof(err)), MF_OK);
	assert_int_equal(nft_ruleset_build(&b, &cfg, &open_gate, err, sizeof(err)), MF_ERROR);
	assert_string_equal(err, "[intercept] clients: 2001:db8:1::/64 overlaps 2001:db8::/32");
	nft_batch_free(&b);
}

static void batch_overflow_fails_before_sending(void **state)
{
	struct nl_sock sock = { 0 }; /* no socket: sending would crash */
	struct nft_batch b;
	char err[256] = "";

	(void)state;
	assert_int_equal(nft_batch_start(&b, &sock, err, sizeof(err)), MF_OK);
	for (int i = 0; i <= NFT_BATCH_MAX_MSGS; i++)
		nft_ruleset_build_delete(&b);
	assert_true(b.overflow);
	assert_int_equal(nft_batch_send(&b, true, err, sizeof(err)), MF_ERROR);
	assert_string_equal(err, "nftables: batch too large");
	nft_batch_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rules_match_what_nft_generates),
		cmocka_unit_test(gate_rules_match_what_nft_generates),
		cmocka_unit_test(record_decode_xt),
		cmocka_unit_test(gate_marks_must_differ_from_fwmark),
		cmocka_unit_test(rules_follow_the_config),
		cmocka_unit_test(rule_text_too_long_is_an_error),
		cmocka_unit_test(clients_sorted_deduplicated),
		cmocka_unit_test(overlapping_clients_are_refused),
		cmocka_unit_test(record_decode),
		cmocka_unit_test(build_counts_messages),
		cmocka_unit_test(direct_keys_decode),
		cmocka_unit_test(build_refuses_overlapping_clients),
		cmocka_unit_test(batch_overflow_fails_before_sending),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
