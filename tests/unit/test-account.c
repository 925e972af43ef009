/* Unit tests: migrate/account.c — state names, routing per DESIGN.md's
 * table, and user-name normalisation against hostile input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "mf.h"

static void test_state_names(void **state)
{
	enum account_state s;

	(void)state;
	for (unsigned int i = 0; i < ACCOUNT_STATE_COUNT; i++) {
		const char *name = account_state_name((enum account_state)i);

		assert_string_not_equal(name, "?");
		assert_int_equal(account_state_parse(name, &s), MF_OK);
		assert_int_equal(s, i);
	}
	assert_int_equal(AS_UNSEEN, 0);
	assert_string_equal(account_state_name(AS_CUTOVER), "CUTOVER");
	assert_int_equal(account_state_parse("migrated", &s), MF_OK);
	assert_int_equal(s, AS_MIGRATED);
	assert_int_equal(account_state_parse("", &s), MF_ERROR);
	assert_int_equal(account_state_parse("AS_SEEN", &s), MF_ERROR);
	assert_int_equal(account_state_parse("SEEN ", &s), MF_ERROR);
	assert_string_equal(account_state_name((enum account_state)99), "?");
}

/* DESIGN.md: UNSEEN, SEEN, COPYING, FAILED, PINNED -> source; CUTOVER ->
 * nobody; MIGRATED -> destination; the admin states FORCE and ROLLBACK are
 * served by the source until the engine moves them on. */
static void test_routing(void **state)
{
	static const struct {
		enum account_state s;
		enum account_route r;
	} table[] = {
		{ AS_UNSEEN, AR_SOURCE },      { AS_SEEN, AR_SOURCE },
		{ AS_COPYING, AR_SOURCE },     { AS_CUTOVER, AR_UNAVAILABLE },
		{ AS_MIGRATED, AR_DESTINATION }, { AS_FAILED, AR_SOURCE },
		{ AS_PINNED, AR_SOURCE },      { AS_FORCE, AR_SOURCE },
		{ AS_ROLLBACK, AR_SOURCE },
	};

	(void)state;
	assert_int_equal(MF_ARRAY_LEN(table), ACCOUNT_STATE_COUNT);
	for (size_t i = 0; i < MF_ARRAY_LEN(table); i++)
		assert_int_equal(account_state_route(table[i].s), table[i].r);
	assert_string_equal(account_route_name(AR_UNAVAILABLE), "unavailable");
	assert_string_equal(account_route_name(AR_DESTINATION), "destination");
}

static int norm(const char *in, size_t len, const char *dom, bool eq, char *out,
		size_t outlen)
{
	char err[200] = "";
	int rc = account_name_normalise(in, len, dom, eq, out, outlen, err,
					sizeof(err));

	if (rc != MF_OK) {
		assert_string_not_equal(err, ""); /* every refusal says why */
		assert_string_equal(out, "");
	}
	return rc;
}

static void expect_norm(const char *in, const char *dom, bool eq, const char *want)
{
	char out[ACCOUNT_NAME_MAX + 1];

	assert_int_equal(norm(in, strlen(in), dom, eq, out, sizeof(out)), MF_OK);
	assert_string_equal(out, want);
}

static void expect_refused(const char *in, size_t len, const char *dom)
{
	char out[ACCOUNT_NAME_MAX + 1];

	assert_int_equal(norm(in, len, dom, true, out, sizeof(out)), MF_ERROR);
}

static void test_normalise(void **state)
{
	(void)state;
	expect_norm("ann", "", true, "ann");
	expect_norm("ann", NULL, true, "ann");
	expect_norm("Ann", "example.org", true, "ann@example.org");
	expect_norm("ANN@Example.ORG", "example.org", true, "ann@example.org");
	expect_norm("ann", "Example.ORG", true, "ann@example.org");
	expect_norm("ann", "example.org", false, "ann");
	expect_norm("Ann@Other.Net", "example.org", true, "ann@other.net");
	expect_norm("Ann@Other.Net", "example.org", false, "ann@other.net");
	expect_norm("j.doe+tag", "", false, "j.doe+tag");
	expect_norm("Jos\xc3\xa9", "", false, "jos\xc3\xa9"); /* UTF-8 kept */
	assert_true(account_name_is_normal("ann@example.org"));
	assert_false(account_name_is_normal("Ann@example.org"));
	assert_false(account_name_is_normal(""));
	assert_false(account_name_is_normal(NULL));
}

static void test_normalise_hostile(void **state)
{
	char out[ACCOUNT_NAME_MAX + 1], small[8];
	char *big;

	(void)state;
	expect_refused("", 0, "example.org");
	expect_refused("@", 1, "example.org");
	expect_refused("@example.org", 12, "");
	expect_refused("ann@", 4, "example.org");
	expect_refused("a@b@c", 5, "");
	expect_refused("ann@@b", 6, "");
	expect_refused("ann\0evil", 8, "");       /* NUL inside a literal */
	expect_refused("\0", 1, "");
	expect_refused("ann evil", 8, "");
	expect_refused(" ann", 4, "");
	expect_refused("ann\t", 4, "");
	expect_refused("ann\r\nA1 LOGOUT", 15, "");
	expect_refused("ann\x1b[2J", 7, "");
	expect_refused("ann\x7f", 4, "");
	assert_int_equal(norm(NULL, 3, "", true, out, sizeof(out)), MF_ERROR);
	/* A bad default domain is refused, not glued on. */
	expect_refused("ann", 3, "exa mple.org");
	expect_refused("ann", 3, "a@b");

	/* 10 KB names; exactly the limit passes, one more does not. */
	big = malloc(10240);
	assert_non_null(big);
	memset(big, 'A', 10240);
	expect_refused(big, 10240, "");
	assert_int_equal(norm(big, ACCOUNT_NAME_MAX, "", true, out, sizeof(out)), MF_OK);
	assert_int_equal(strlen(out), ACCOUNT_NAME_MAX);
	assert_int_equal(out[0], 'a');
	expect_refused(big, ACCOUNT_NAME_MAX + 1, "");
	/* Fits alone, not with the default domain appended. */
	expect_refused(big, ACCOUNT_NAME_MAX - 3, "example.org");
	free(big);

	/* The output buffer is never overrun. */
	assert_int_equal(norm("annabelle", 9, "", true, small, sizeof(small)), MF_ERROR);
	assert_int_equal(norm("ann", 3, "example.org", true, small, sizeof(small)),
			 MF_ERROR);
	out[0] = '\0'; /* outlen 0: nothing may be written, not even "" */
	out[1] = 'x';
	assert_int_equal(norm("ann", 3, "", true, out, 0), MF_ERROR);
	assert_int_equal(out[1], 'x');
}

static void test_retry_backoff(void **state)
{
	struct migrate_backoff b = { .first_s = 60, .max_s = 1000 }, never = { 0, 1000 };
	char r[64], longwhy[300];

	(void)state;
	assert_int_equal(migrate_retry_delay(&b, 1), 60);
	assert_int_equal(migrate_retry_delay(&b, 2), 120);
	assert_int_equal(migrate_retry_delay(&b, 4), 480);
	assert_int_equal(migrate_retry_delay(&b, 5), 960);
	assert_int_equal(migrate_retry_delay(&b, 6), 1000);
	assert_int_equal(migrate_retry_delay(&b, 4000000), 1000);
	assert_int_equal(migrate_retry_delay(&never, 3), 0);

	migrate_failed_reason(r, sizeof(r), "bulk copy: quota", 3, 240);
	assert_string_equal(r, "bulk copy: quota (attempt 3, next in 240 s)");
	assert_int_equal(migrate_failures(r), 3);
	migrate_failed_reason(r, sizeof(r), "x", 2, 0);
	assert_string_equal(r, "x (attempt 2, no automatic retry)");
	assert_int_equal(migrate_failures(r), 2);
	/* A long why is cut, the attempt kept. */
	memset(longwhy, 'e', sizeof(longwhy) - 1);
	longwhy[sizeof(longwhy) - 1] = '\0';
	migrate_failed_reason(r, sizeof(r), longwhy, 12, 60);
	assert_int_equal(strlen(r), sizeof(r) - 1);
	assert_int_equal(migrate_failures(r), 12);
	/* The server's text may hold the mark itself: the last one counts. */
	assert_int_equal(migrate_failures("NO (attempt 99, x) (attempt 4, next in 1 s)"), 4);
	assert_int_equal(migrate_failures("set by admin"), 1);
	assert_int_equal(migrate_failures(""), 1);
	assert_int_equal(migrate_failures(" (attempt 0, x)"), 1);
	assert_int_equal(migrate_failures(" (attempt 7"), 1);
	assert_int_equal(migrate_failures(" (attempt 99999999999999999999, x)"), 1);

	assert_false(migrate_retry_due(&b, 2, 1000, 1119));
	assert_true(migrate_retry_due(&b, 2, 1000, 1120));
	assert_false(migrate_retry_due(&b, 1, 1000, 999)); /* clock went back */
	assert_false(migrate_retry_due(&never, 1, 0, 1 << 30));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_names),
		cmocka_unit_test(test_routing),
		cmocka_unit_test(test_normalise),
		cmocka_unit_test(test_normalise_hostile),
		cmocka_unit_test(test_retry_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
