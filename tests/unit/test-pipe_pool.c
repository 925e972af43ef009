/* Unit tests: gateway/pipe_pool.c — reuse, limits, dirty pipes, trim. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <unistd.h>

#include "mf.h"
#include "pipe_pool.h"

static void test_reuse_and_limit(void **state)
{
	struct pipe_pool pp;
	struct mf_pipe *a, *b, *c;

	(void)state;
	pipe_pool_init(&pp, 2, 1 << 20);
	assert_int_equal(pipe_pool_get(&pp, &a), MF_OK);
	assert_int_equal(pipe_pool_get(&pp, &b), MF_OK);
	assert_int_equal(pipe_pool_get(&pp, &c), MF_AGAIN);
	assert_int_equal(pp.n_total, 2);
	assert_true(a->size >= 65536);
	assert_true(fcntl(a->rfd, F_GETFL) & O_NONBLOCK);
	pipe_pool_put(&pp, a, true);
	assert_int_equal(pp.n_free, 1);
	assert_int_equal(pipe_pool_get(&pp, &c), MF_OK);
	assert_ptr_equal(c, a); /* reused, not reopened */
	pipe_pool_put(&pp, b, true);
	pipe_pool_put(&pp, c, true);
	pipe_pool_destroy(&pp);
	assert_int_equal(pp.n_total, 0);
}

static void test_dirty_pipe_is_closed(void **state)
{
	struct pipe_pool pp;
	struct mf_pipe *a, *b;
	int rfd;

	(void)state;
	pipe_pool_init(&pp, 4, 65536);
	assert_int_equal(pipe_pool_get(&pp, &a), MF_OK);
	rfd = a->rfd;
	assert_int_equal(write(a->wfd, "x", 1), 1);
	pipe_pool_put(&pp, a, false);
	assert_int_equal(pp.n_total, 0);
	assert_int_equal(pp.n_free, 0);
	assert_int_equal(fcntl(rfd, F_GETFD), -1); /* closed */
	/* A fresh pipe never carries the old bytes. */
	assert_int_equal(pipe_pool_get(&pp, &b), MF_OK);
	assert_int_equal(read(b->rfd, &rfd, 1), -1);
	pipe_pool_put(&pp, b, true);
	pipe_pool_destroy(&pp);
}

static void test_trim(void **state)
{
	struct pipe_pool pp;
	struct mf_pipe *p[5];

	(void)state;
	pipe_pool_init(&pp, 10, 65536);
	for (int i = 0; i < 5; i++)
		assert_int_equal(pipe_pool_get(&pp, &p[i]), MF_OK);
	for (int i = 0; i < 5; i++)
		pipe_pool_put(&pp, p[i], true);
	/* The peak (5 in use) is kept for one period... */
	pipe_pool_trim(&pp);
	assert_int_equal(pp.n_free, 5);
	/* ...then an idle period drops them all. */
	pipe_pool_trim(&pp);
	assert_int_equal(pp.n_free, 0);
	assert_int_equal(pp.n_total, 0);
	/* With 2 in use at the peak, 2 stay pooled. */
	assert_int_equal(pipe_pool_get(&pp, &p[0]), MF_OK);
	assert_int_equal(pipe_pool_get(&pp, &p[1]), MF_OK);
	pipe_pool_put(&pp, p[0], true);
	pipe_pool_put(&pp, p[1], true);
	assert_int_equal(pipe_pool_get(&pp, &p[0]), MF_OK);
	pipe_pool_put(&pp, p[0], true);
	pipe_pool_trim(&pp);
	assert_int_equal(pp.n_free, 2);
	pipe_pool_destroy(&pp);
	assert_int_equal(pp.n_total, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reuse_and_limit),
		cmocka_unit_test(test_dirty_pipe_is_closed),
		cmocka_unit_test(test_trim),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
