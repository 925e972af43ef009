/* Unit tests: gateway/addr_count.c — inc/dec, v4/v6, collisions, removal,
 * growth bound. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "addr_count.h"
#include "mf.h"

union sa {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

static union sa v4(uint32_t host)
{
	union sa a;

	memset(&a, 0, sizeof(a));
	a.in.sin_family = AF_INET;
	a.in.sin_port = htons(40000);
	a.in.sin_addr.s_addr = htonl(host);
	return a;
}

static union sa v6(uint32_t low)
{
	union sa a;

	memset(&a, 0, sizeof(a));
	a.in6.sin6_family = AF_INET6;
	a.in6.sin6_port = htons(40001);
	a.in6.sin6_addr.s6_addr[0] = 0x20;
	a.in6.sin6_addr.s6_addr[1] = 0x01;
	a.in6.sin6_addr.s6_addr[12] = (uint8_t)(low >> 24);
	a.in6.sin6_addr.s6_addr[13] = (uint8_t)(low >> 16);
	a.in6.sin6_addr.s6_addr[14] = (uint8_t)(low >> 8);
	a.in6.sin6_addr.s6_addr[15] = (uint8_t)low;
	return a;
}

static void test_inc_dec_and_limit(void **state)
{
	struct addr_count t;
	union sa a = v4(0xc6120102), b = v4(0xc6120103);

	(void)state;
	addr_count_init(&t, 42);
	assert_int_equal(addr_count_get(&t, &a.sa), 0);
	for (unsigned int i = 0; i < 3; i++)
		assert_int_equal(addr_count_inc(&t, &a.sa, 3), MF_OK);
	assert_int_equal(addr_count_inc(&t, &a.sa, 3), MF_AGAIN);
	assert_int_equal(addr_count_get(&t, &a.sa), 3);
	assert_int_equal(addr_count_inc(&t, &b.sa, 3), MF_OK); /* others unaffected */
	assert_int_equal(t.used, 2);
	addr_count_dec(&t, &a.sa);
	assert_int_equal(addr_count_inc(&t, &a.sa, 3), MF_OK);
	for (unsigned int i = 0; i < 3; i++)
		addr_count_dec(&t, &a.sa);
	assert_int_equal(addr_count_get(&t, &a.sa), 0);
	assert_int_equal(t.used, 1); /* the entry is gone at 0 */
	addr_count_dec(&t, &a.sa);   /* absent: no-op */
	assert_int_equal(addr_count_get(&t, &b.sa), 1);
	/* limit 0: no limit */
	for (unsigned int i = 0; i < 1000; i++)
		assert_int_equal(addr_count_inc(&t, &a.sa, 0), MF_OK);
	assert_int_equal(addr_count_get(&t, &a.sa), 1000);
	addr_count_destroy(&t);
	assert_null(t.slots);
}

static void test_v4_v6_and_mapped(void **state)
{
	struct addr_count t;
	union sa a4 = v4(0xc6120102), a6 = v6(0xc6120102), m;
	struct sockaddr_un_like { sa_family_t f; char p[20]; } un = { .f = AF_UNIX };

	(void)state;
	memset(&m, 0, sizeof(m));
	m.in6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:198.18.1.2", &m.in6.sin6_addr);
	addr_count_init(&t, 7);
	assert_int_equal(addr_count_inc(&t, &a4.sa, 2), MF_OK);
	assert_int_equal(addr_count_inc(&t, &a6.sa, 2), MF_OK); /* distinct */
	assert_int_equal(addr_count_get(&t, &a4.sa), 1);
	assert_int_equal(addr_count_get(&t, &a6.sa), 1);
	/* A v4 client on a dual-stack socket is the same client. */
	assert_int_equal(addr_count_inc(&t, &m.sa, 2), MF_OK);
	assert_int_equal(addr_count_get(&t, &a4.sa), 2);
	assert_int_equal(addr_count_inc(&t, &a4.sa, 2), MF_AGAIN);
	/* ports do not matter */
	a4.in.sin_port = htons(1);
	assert_int_equal(addr_count_get(&t, &a4.sa), 2);
	errno = 0;
	assert_int_equal(addr_count_inc(&t, (struct sockaddr *)&un, 2), MF_ERROR);
	assert_int_equal(errno, EAFNOSUPPORT);
	addr_count_dec(&t, &m.sa);
	addr_count_dec(&t, &a4.sa);
	addr_count_dec(&t, &a6.sa);
	assert_int_equal(t.used, 0);
	addr_count_destroy(&t);
}

/* A table at its fill limit has long probe chains; removing from their
 * middle must keep every other member reachable (backward shift). A
 * random walk against a plain array checks that at every step. */
static void test_collisions_and_removal(void **state)
{
	enum { N = 64, STEPS = 200000 };
	struct addr_count t;
	unsigned int ref[N] = { 0 };
	unsigned int seed = 1;

	(void)state;
	/* Fill the minimum table to its load limit: chains must form. */
	addr_count_init(&t, 0);
	for (uint32_t i = 0; i < ADDR_COUNT_MIN_CAP / 2; i++) {
		union sa a = v6(i);

		assert_int_equal(addr_count_inc(&t, &a.sa, 0), MF_OK);
	}
	assert_int_equal(t.cap, ADDR_COUNT_MIN_CAP);
	for (uint32_t i = 0; i < ADDR_COUNT_MIN_CAP / 2; i += 2) {
		union sa a = v6(i);

		addr_count_dec(&t, &a.sa);
	}
	for (uint32_t i = 0; i < ADDR_COUNT_MIN_CAP / 2; i++) {
		union sa a = v6(i);

		assert_int_equal(addr_count_get(&t, &a.sa), i % 2);
	}
	addr_count_destroy(&t);

	addr_count_init(&t, 0x9e3779b97f4a7c15ULL);
	for (unsigned int step = 0; step < STEPS; step++) {
		unsigned int k = (unsigned int)rand_r(&seed) % N;
		union sa a = k % 2 ? v4(0x0a000000 + k) : v6(k);
		unsigned int live = 0;

		if (rand_r(&seed) % 2) {
			int rc = addr_count_inc(&t, &a.sa, 4);

			assert_int_equal(rc, ref[k] < 4 ? MF_OK : MF_AGAIN);
			if (rc == MF_OK)
				ref[k]++;
		} else {
			addr_count_dec(&t, &a.sa);
			if (ref[k] > 0)
				ref[k]--;
		}
		if (step % 97 != 0)
			continue;
		for (unsigned int j = 0; j < N; j++) {
			union sa b = j % 2 ? v4(0x0a000000 + j) : v6(j);

			assert_int_equal(addr_count_get(&t, &b.sa), ref[j]);
			live += ref[j] != 0;
		}
		assert_int_equal(t.used, live);
	}
	addr_count_destroy(&t);
}

/* Memory follows the addresses with a count now, not those ever seen. */
static void test_growth_bound(void **state)
{
	enum { PEAK = 5000 };
	struct addr_count t;

	(void)state;
	addr_count_init(&t, 3);
	/* A million distinct addresses, one at a time: never grows. */
	for (uint32_t i = 0; i < 1000000; i++) {
		union sa a = i % 2 ? v4(i) : v6(i);

		assert_int_equal(addr_count_inc(&t, &a.sa, 20), MF_OK);
		addr_count_dec(&t, &a.sa);
	}
	assert_int_equal(t.used, 0);
	assert_true(t.cap <= ADDR_COUNT_MIN_CAP);
	/* PEAK at once: at most 4 slots each, and back down when they go. */
	for (uint32_t i = 0; i < PEAK; i++) {
		union sa a = v6(i);

		assert_int_equal(addr_count_inc(&t, &a.sa, 20), MF_OK);
	}
	assert_int_equal(t.used, PEAK);
	assert_true(t.cap >= 2 * PEAK);
	assert_true(t.cap <= 4 * PEAK);
	for (uint32_t i = 0; i < PEAK; i++) {
		union sa a = v6(i);

		assert_int_equal(addr_count_get(&t, &a.sa), 1);
		addr_count_dec(&t, &a.sa);
	}
	assert_int_equal(t.used, 0);
	assert_true(t.cap <= ADDR_COUNT_MIN_CAP * 8);
	addr_count_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inc_dec_and_limit),
		cmocka_unit_test(test_v4_v6_and_mapped),
		cmocka_unit_test(test_collisions_and_removal),
		cmocka_unit_test(test_growth_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
