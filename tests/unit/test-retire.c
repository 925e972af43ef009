/* Unit tests: migrate/retire.c — the retire report from a ledger: an empty
 * ledger is not safe, every kind of account that keeps the source needed
 * is listed (kind then name) and counted, direct flows within the window
 * make it unsafe and old ones do not, and all MIGRATED with no recent
 * direct flow is safe. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger.h"
#include "mf.h"
#include "retire.h"

#define DAY 86400
#define NOW (1000 * DAY)

static struct ledger *open_tmp(char *path, size_t len)
{
	struct ledger *l;
	char err[256], dir[] = "/tmp/test-retire.XXXXXX";

	assert_non_null(mkdtemp(dir));
	snprintf(path, len, "%s/ledger.db", dir);
	if (ledger_open(path, &l, err, sizeof(err)) != MF_OK)
		fail_msg("open: %s", err);
	return l;
}

static void close_tmp(struct ledger *l, const char *path)
{
	char p[300];

	ledger_close(l);
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s", path);
	*strrchr(p, '/') = '\0';
	rmdir(p);
}

static void set(struct ledger *l, const char *name, enum account_state s, const char *why)
{
	char err[256];

	if (ledger_account_set_state(l, name, s, why, NOW - DAY, NULL, err, sizeof(err)) != MF_OK)
		fail_msg("set %s: %s", name, err);
}

static void build(struct ledger *l, struct retire_report *r)
{
	char err[256];

	if (retire_report_build(l, NOW, 7 * DAY, r, err, sizeof(err)) != MF_OK)
		fail_msg("build: %s", err);
}

static void test_retire(void **state)
{
	struct retire_report r;
	struct ledger *l;
	char path[256], err[256];
	bool created;

	(void)state;
	l = open_tmp(path, sizeof(path));
	build(l, &r);
	assert_false(r.safe);
	assert_int_equal(r.total, 0);
	assert_non_null(strstr(r.verdict, "knows no accounts"));
	retire_report_free(&r);

	assert_int_equal(ledger_account_import(l, "zed@example.org", "left", NOW, &created, err,
					       sizeof(err)), MF_OK);
	assert_int_equal(ledger_login_observed(l, "amy@example.org", "198.18.1.2:1", NOW - 5,
					       NULL, err, sizeof(err)), MF_OK);
	set(l, "bob@example.org", AS_FAILED, "bulk copy: connection refused");
	set(l, "cat@example.org", AS_PINNED, "vip");
	set(l, "dan@example.org", AS_MIGRATED, "done");
	set(l, "eve@example.org", AS_ROLLBACK, "admin rollback");
	build(l, &r);
	assert_false(r.safe);
	assert_int_equal(r.total, 6);
	assert_int_equal(r.migrated, 1);
	assert_int_equal(r.n_accounts, 5);
	assert_int_equal(r.n[RETIRE_NEVER_SEEN], 1);
	assert_int_equal(r.n[RETIRE_NOT_MIGRATED], 2);
	assert_int_equal(r.n[RETIRE_FAILED], 1);
	assert_int_equal(r.n[RETIRE_PINNED], 1);
	/* Kind first, then name. */
	assert_string_equal(r.accounts[0].name, "zed@example.org");
	assert_int_equal(r.kinds[0], RETIRE_NEVER_SEEN);
	assert_string_equal(r.accounts[1].name, "amy@example.org");
	assert_int_equal(r.accounts[1].last_seen, NOW - 5);
	assert_string_equal(r.accounts[1].last_client, "198.18.1.2:1");
	assert_string_equal(r.accounts[2].name, "eve@example.org");
	assert_string_equal(r.accounts[3].name, "bob@example.org");
	assert_string_equal(r.accounts[3].reason, "bulk copy: connection refused");
	assert_string_equal(r.accounts[4].name, "cat@example.org");
	assert_non_null(strstr(r.verdict, "NOT SAFE"));
	assert_non_null(strstr(r.verdict, "5 of 6 accounts"));
	retire_report_free(&r);

	/* Everyone moved: safe, until a direct flow within the window. */
	for (const char *const *n = (const char *const[]){ "zed@example.org", "amy@example.org",
							    "bob@example.org", "cat@example.org",
							    "eve@example.org", NULL }; *n; n++)
		set(l, *n, AS_MIGRATED, "done");
	build(l, &r);
	assert_true(r.safe);
	assert_non_null(strstr(r.verdict, "SAFE to retire the source: all 6 accounts"));
	retire_report_free(&r);
	/* Old flows, and flows that went through the gateway, do not count. */
	assert_int_equal(ledger_flow_count_add(l, "198.18.5.0/24", 143, 3, 0, NOW - 8 * DAY, err,
					       sizeof(err)), MF_OK);
	assert_int_equal(ledger_flow_count_add(l, "198.18.1.0/24", 143, 0, 40, NOW, err,
					       sizeof(err)), MF_OK);
	build(l, &r);
	assert_true(r.safe);
	retire_report_free(&r);
	assert_int_equal(ledger_flow_count_add(l, "198.18.6.7", 110, 2, 0, NOW - DAY, err,
					       sizeof(err)), MF_OK);
	build(l, &r);
	assert_false(r.safe);
	assert_int_equal(r.n_flows, 1);
	assert_string_equal(r.flows[0].subnet, "198.18.6.7");
	assert_int_equal(r.flows[0].port, 110);
	assert_int_equal(r.direct_flows, 2);
	assert_non_null(strstr(r.verdict, "2 direct flows from 1 client"));
	retire_report_free(&r);
	/* Flows of a client never intercepted (counted by the rules). */
	assert_int_equal(ledger_flow_direct_add(l, "198.18.9.9/32", 143, 5, NOW - 10, err,
						sizeof(err)), MF_OK);
	build(l, &r);
	assert_int_equal(r.n_flows, 2);
	assert_string_equal(r.flows[1].subnet, "198.18.9.9/32");
	assert_int_equal(r.direct_flows, 7);
	retire_report_free(&r);
	close_tmp(l, path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retire),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
