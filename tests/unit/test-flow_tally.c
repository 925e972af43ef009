/* Unit tests: gateway/flow_tally.c — which subnet and port a new flow
 * counts for, and the counts' way into the ledger (added, not replaced). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "flow_tally.h"
#include "ledger.h"
#include "mf.h"

static void key4(const char *ip, uint8_t k[16])
{
	memset(k, 0, 16);
	k[10] = k[11] = 0xff;
	assert_int_equal(inet_pton(AF_INET, ip, k + 12), 1);
}

static void key6(const char *ip, uint8_t k[16])
{
	assert_int_equal(inet_pton(AF_INET6, ip, k), 1);
}

struct rows {
	unsigned int n;
	struct flow_count c[8];
};

static int collect(const struct flow_count *c, void *data)
{
	struct rows *r = data;

	if (r->n < 8)
		r->c[r->n++] = *c;
	return MF_OK;
}

static void test_count_and_flush(void **state)
{
	static const char conf[] =
		"[intercept]\nclients = 198.18.1.0/24, 198.18.1.128/25, 2001:db8:1::/64\n"
		"ports = 143, 25\n";
	char dir[] = "/tmp/test-flow_tally.XXXXXX", path[64], err[256];
	struct flow_tally t;
	struct mf_config cfg;
	struct ledger *l;
	struct rows r = { 0 };
	uint8_t k[16];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ledger.db", dir);
	assert_int_equal(mf_config_parse_string(conf, &cfg, err, sizeof(err)), MF_OK);
	assert_int_equal(flow_tally_init(&t), MF_OK);
	/* unconfigured: nothing counts */
	key4("198.18.1.2", k);
	assert_false(flow_tally_count(&t, k, 143, true));
	flow_tally_configure(&t, &cfg);
	assert_true(flow_tally_count(&t, k, 143, true));
	assert_true(flow_tally_count(&t, k, 143, false));
	key4("198.18.1.200", k); /* the /25 is more specific than the /24 */
	assert_true(flow_tally_count(&t, k, 25, false));
	key4("198.18.2.1", k); /* no subnet */
	assert_false(flow_tally_count(&t, k, 143, false));
	key4("198.18.1.2", k); /* not a configured port */
	assert_false(flow_tally_count(&t, k, 993, false));
	key6("2001:db8:1::7", k);
	assert_true(flow_tally_count(&t, k, 143, true));
	key6("::ffff:0:0", k); /* IPv4-mapped 0.0.0.0: in no subnet */
	assert_false(flow_tally_count(&t, k, 143, true));

	assert_int_equal(ledger_open(path, &l, err, sizeof(err)), MF_OK);
	assert_int_equal(flow_tally_flush(&t, l, 1000, err, sizeof(err)), MF_OK);
	assert_false(t.dirty);
	/* a second second adds to the first */
	key4("198.18.1.3", k);
	assert_true(flow_tally_count(&t, k, 143, true));
	assert_int_equal(flow_tally_flush(&t, l, 2000, err, sizeof(err)), MF_OK);
	/* nothing counted: nothing written */
	assert_int_equal(flow_tally_flush(&t, l, 3000, err, sizeof(err)), MF_OK);
	assert_int_equal(ledger_flow_count_list(l, collect, &r, err, sizeof(err)), MF_OK);
	assert_int_equal(r.n, 3);
	assert_string_equal(r.c[0].subnet, "198.18.1.0/24");
	assert_int_equal(r.c[0].port, 143);
	assert_int_equal(r.c[0].observed, 2);
	assert_int_equal(r.c[0].intercepted, 1);
	assert_int_equal(r.c[0].last_seen, 2000);
	assert_string_equal(r.c[1].subnet, "198.18.1.128/25");
	assert_int_equal(r.c[1].port, 25);
	assert_int_equal(r.c[1].intercepted, 1);
	assert_string_equal(r.c[2].subnet, "2001:db8:1::/64");
	assert_int_equal(r.c[2].observed, 1);
	ledger_close(l);
	flow_tally_destroy(&t);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	assert_int_equal(system(path), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_count_and_flush),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
