/* test-nft-bridge.c — bridge mode's table bridge mailferry built from the
 * config, without a kernel: expressions as nft itself generates them for
 * nft-rules/mailferry-bridge.nft, the sysctl record, the batch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"
#include "mf.h"
#include "nft_batch.h"
#include "nft_bridge.h"
#include "nft_chain.h"
#include "nft_ruleset.h"

#include <libnftnl/rule.h>
#include <stdio.h>
#include <string.h>

static const uint8_t lab_mac[6] = { 0x02, 0x6d, 0x66, 0x62, 0x72, 0x30 };

/* The tail every rule shares: pkttype host (0), then the bridge's MAC
 * (02:6d:66:62:72:30, as the register holds it) over the frame's
 * destination, accept. */
#define TO_HOST \
	"[ immediate reg 1 0x00000000 ] [ meta set pkttype with reg 1 ] " \
	"[ immediate reg 1 0x62666d02 0x00003072 ] " \
	"[ payload write reg 1 => 6b @ link header + 0 csum_type 0 csum_off 0 " \
	"csum_flags 0x0 ] [ immediate reg 0 accept ]"

/* What `nft --debug=netlink list chain bridge mailferry prerouting` printed
 * here for the four rules of mailferry-bridge.nft with that MAC. */
static const char *const nft_says[NFT_BRIDGE_RULES] = {
	"[ payload load 2b @ link header + 12 => reg 1 ] [ cmp eq reg 1 0x00000008 ] "
	"[ payload load 4b @ network header + 16 => reg 1 ] [ lookup reg 1 set sources4 0x0 ] "
	"[ payload load 4b @ network header + 12 => reg 1 ] [ lookup reg 1 set clients4 0x0 ] "
	"[ meta load l4proto => reg 1 ] [ cmp eq reg 1 0x00000006 ] "
	"[ payload load 2b @ transport header + 2 => reg 1 ] [ lookup reg 1 set ports 0x0 ] "
	TO_HOST,

	"[ payload load 2b @ link header + 12 => reg 1 ] [ cmp eq reg 1 0x0000dd86 ] "
	"[ payload load 16b @ network header + 24 => reg 1 ] [ lookup reg 1 set sources6 0x0 ] "
	"[ payload load 16b @ network header + 8 => reg 1 ] [ lookup reg 1 set clients6 0x0 ] "
	"[ meta load l4proto => reg 1 ] [ cmp eq reg 1 0x00000006 ] "
	"[ payload load 2b @ transport header + 2 => reg 1 ] [ lookup reg 1 set ports 0x0 ] "
	TO_HOST,

	"[ payload load 2b @ link header + 12 => reg 1 ] [ cmp eq reg 1 0x00000008 ] "
	"[ payload load 4b @ network header + 12 => reg 1 ] [ lookup reg 1 set sources4 0x0 ] "
	"[ payload load 4b @ network header + 16 => reg 1 ] [ lookup reg 1 set clients4 0x0 ] "
	"[ meta load l4proto => reg 1 ] [ cmp eq reg 1 0x00000006 ] "
	"[ payload load 2b @ transport header + 0 => reg 1 ] [ lookup reg 1 set ports 0x0 ] "
	TO_HOST,

	"[ payload load 2b @ link header + 12 => reg 1 ] [ cmp eq reg 1 0x0000dd86 ] "
	"[ payload load 16b @ network header + 8 => reg 1 ] [ lookup reg 1 set sources6 0x0 ] "
	"[ payload load 16b @ network header + 24 => reg 1 ] [ lookup reg 1 set clients6 0x0 ] "
	"[ meta load l4proto => reg 1 ] [ cmp eq reg 1 0x00000006 ] "
	"[ payload load 2b @ transport header + 0 => reg 1 ] [ lookup reg 1 set ports 0x0 ] "
	TO_HOST,
};

static void load(struct mf_config *cfg, const char *text)
{
	char err[256] = "";

	if (mf_config_parse_string(text, cfg, err, sizeof(err)) != MF_OK)
		fail_msg("config: %s", err);
}

static void bridge_text(const struct mf_config *cfg, const uint8_t mac[6],
			char out[NFT_BRIDGE_RULES][2048])
{
	struct nftnl_rule *rules[NFT_BRIDGE_RULES];

	assert_int_equal(nft_bridge_rules(cfg, mac, rules), MF_OK);
	for (int i = 0; i < NFT_BRIDGE_RULES; i++) {
		assert_int_equal(nft_chain_rule_text(rules[i], out[i], 2048), MF_OK);
		nftnl_rule_free(rules[i]);
	}
}

static void rules_match_what_nft_generates(void **state)
{
	char text[NFT_BRIDGE_RULES][2048];
	struct mf_config cfg;

	(void)state;
	load(&cfg, "[intercept]\nmode = bridge\n");
	bridge_text(&cfg, lab_mac, text);
	for (int i = 0; i < NFT_BRIDGE_RULES; i++)
		assert_string_equal(text[i], nft_says[i]);
}

static void rules_follow_the_mac(void **state)
{
	static const uint8_t other[6] = { 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
	char text[NFT_BRIDGE_RULES][2048];
	struct mf_config cfg;

	(void)state;
	load(&cfg, "[intercept]\nmode = bridge\n");
	bridge_text(&cfg, other, text);
	for (int i = 0; i < NFT_BRIDGE_RULES; i++) {
		assert_non_null(strstr(text[i], "[ immediate reg 1 0xddccbbaa 0x0000ffee ] "
					       "[ payload write reg 1 => 6b @ link header + 0 "));
		assert_string_not_equal(text[i], nft_says[i]);
	}
}

static void put_u32(uint8_t *p, uint8_t type, uint32_t v)
{
	p[0] = type;
	p[1] = 4;
	memcpy(&p[2], &v, 4);
}

static void record_decode(void **state)
{
	/* nftnl_udata TLVs: type, length, host-order u32 value. */
	uint8_t good[18], bad[18];
	struct br_sysctl v;

	(void)state;
	put_u32(&good[0], 0xf0, 1);
	put_u32(&good[6], 0xf1, 1);
	put_u32(&good[12], 0xf2, 0);
	assert_int_equal(nft_bridge_record_decode(good, sizeof(good), &v), MF_OK);
	assert_true(v.present);
	assert_int_equal(v.call_iptables, 1);
	assert_int_equal(v.call_ip6tables, 0);
	/* Missing a value: no record (remove then writes nothing back). */
	assert_int_equal(nft_bridge_record_decode(good, 12, &v), MF_ERROR);
	/* A sysctl value no kernel gave: not ours. */
	memcpy(bad, good, sizeof(bad));
	put_u32(&bad[6], 0xf1, 7);
	assert_int_equal(nft_bridge_record_decode(bad, sizeof(bad), &v), MF_ERROR);
	/* The inet table's record is another one. */
	put_u32(&bad[0], 0xe0, 0x4d46);
	put_u32(&bad[6], 0xe1, 1846);
	put_u32(&bad[12], 0xe2, 1846);
	assert_int_equal(nft_bridge_record_decode(bad, sizeof(bad), &v), MF_ERROR);
	assert_int_equal(nft_bridge_record_decode(NULL, 0, &v), MF_ERROR);
}

static void build_counts_messages(void **state)
{
	static const struct br_sysctl saved = { true, 1, 1 };
	static const struct nft_gate_opts gate = { .native_queue = false, .closed = false };
	struct nl_sock sock = { 0 }; /* sequence numbers only: never sent */
	struct mf_config cfg;
	struct nft_batch b;
	char err[256];

	(void)state;
	load(&cfg, "[intercept]\nmode = bridge\nsources = 198.18.1.11, 2001:db8:1::11\n"
		   "clients = 198.18.1.0/24, 2001:db8:1::/64\n");
	assert_int_equal(nft_batch_start(&b, &sock, err, sizeof(err)), MF_OK);
	assert_int_equal(nft_bridge_build(&b, &cfg, lab_mac, &saved, err, sizeof(err)),
			 MF_OK);
	/* create+delete old, table, 5 sets and their 5 element lists (no
	 * fail_closed: the gate lives in the inet table), chain, 4 rules. */
	assert_int_equal(b.n_msgs, 2 + 1 + 5 + 5 + 1 + 4);
	nft_batch_free(&b);
	/* With the inet table in the same transaction it still fits. */
	assert_int_equal(nft_batch_start(&b, &sock, err, sizeof(err)), MF_OK);
	assert_int_equal(nft_ruleset_build(&b, &cfg, &gate, err, sizeof(err)), MF_OK);
	assert_int_equal(nft_bridge_build(&b, &cfg, lab_mac, &saved, err, sizeof(err)),
			 MF_OK);
	assert_false(b.overflow);
	nft_batch_free(&b);
}

static void build_refuses_overlapping_clients(void **state)
{
	static const struct br_sysctl saved = { false, 0, 0 };
	struct nl_sock sock = { 0 };
	struct mf_config cfg;
	struct nft_batch b;
	char err[256] = "";

	(void)state;
	load(&cfg, "[intercept]\nmode = bridge\nclients = 10.0.0.0/8, 10.1.0.0/16\n");
	assert_int_equal(nft_batch_start(&b, &sock, err, sizeof(err)), MF_OK);
	assert_int_equal(nft_bridge_build(&b, &cfg, lab_mac, &saved, err, sizeof(err)),
			 MF_ERROR);
	assert_string_equal(err, "[intercept] clients: 10.1.0.0/16 overlaps 10.0.0.0/8");
	nft_batch_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rules_match_what_nft_generates),
		cmocka_unit_test(rules_follow_the_mac),
		cmocka_unit_test(record_decode),
		cmocka_unit_test(build_counts_messages),
		cmocka_unit_test(build_refuses_overlapping_clients),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
