/* Unit tests: gateway/mig_park.c — events parked and taken when their
 * account is ready, a newer event of the same account replaces the older
 * (one slot, newer password), a full set refuses and wipes the event,
 * every slot and every handed-in event wiped. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mf.h"
#include "mig_park.h"

static void event(struct login_event *e, const char *account, const char *pass)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->account, sizeof(e->account), "%s", account);
	snprintf(e->login, sizeof(e->login), "%s", account);
	snprintf(e->pass, sizeof(e->pass), "%s", pass);
	e->pass_len = strlen(pass);
}

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		if (c[i] != 0)
			return false;
	return true;
}

static bool only(void *arg, const char *account)
{
	return strcmp(arg, account) == 0;
}

static void test_park_take(void **state)
{
	struct mig_park p;
	struct login_event e, out;
	char err[100];

	(void)state;
	assert_int_equal(mig_park_init(&p, 2, err, sizeof(err)), MF_OK);
	event(&e, "ann", "pw-ann-1");
	assert_int_equal(mig_park_put(&p, &e), MF_OK);
	assert_true(all_zero(&e, sizeof(e)));
	event(&e, "bob", "pw-bob");
	assert_int_equal(mig_park_put(&p, &e), MF_OK);
	event(&e, "ann", "pw-ann-2"); /* replaces ann's slot */
	assert_int_equal(mig_park_put(&p, &e), MF_OK);
	assert_int_equal(mig_park_len(&p), 2);
	event(&e, "cid", "pw-cid"); /* full */
	assert_int_equal(mig_park_put(&p, &e), MF_AGAIN);
	assert_true(all_zero(&e, sizeof(e)));
	assert_false(mig_park_take(&p, only, "cid", &out));
	assert_true(mig_park_take(&p, only, "ann", &out));
	assert_string_equal(out.pass, "pw-ann-2");
	assert_int_equal(out.pass_len, 8);
	assert_false(mig_park_take(&p, only, "ann", &out));
	assert_int_equal(mig_park_len(&p), 1);
	/* ann's slot is wiped, bob's holds bob's. */
	for (unsigned int i = 0; i < p.cap; i++)
		if (!p.used[i])
			assert_true(all_zero(&p.slots[i], sizeof(p.slots[i])));
	assert_true(mig_park_take(&p, only, "bob", &out));
	assert_string_equal(out.pass, "pw-bob");
	assert_int_equal(mig_park_len(&p), 0);
	assert_true(all_zero(p.slots, p.cap * sizeof(*p.slots)));
	mig_park_destroy(&p);
	assert_int_equal(mig_park_init(&p, 0, err, sizeof(err)), MF_ERROR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_park_take),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
