/* Unit tests: gateway/login_event.c — FIFO order, the bound (a full queue
 * drops and copies nothing), over-long fields refused, every slot wiped
 * when popped and at stop, pop failing after stop, a blocked consumer
 * woken by push and by stop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "login_event.h"
#include "mf.h"

static struct sockaddr_in addr(uint32_t host, uint16_t port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(host);
	return a;
}

static int push(struct login_queue *q, const char *account, const char *pass)
{
	struct sockaddr_in c = addr(0xc6120102, 40000), s = addr(0xc6120b02, 143);

	return login_queue_push(q, account, account, strlen(account), pass, strlen(pass),
				(struct sockaddr *)&c, sizeof(c), (struct sockaddr *)&s,
				sizeof(s), 1234, false);
}

/* No byte of any slot holds anything: the passwords are gone. */
static void assert_slots_zero(const struct login_queue *q)
{
	const uint8_t *p = (const uint8_t *)q->slots;

	for (size_t i = 0; i < q->cap * sizeof(*q->slots); i++)
		assert_int_equal(p[i], 0);
}

static void test_fifo_bound_wipe(void **state)
{
	struct login_queue q;
	struct login_event *e = login_event_alloc();
	const struct sockaddr_in *src;
	char err[128];

	(void)state;
	assert_non_null(e);
	assert_int_equal(login_queue_init(&q, 2, err, sizeof(err)), MF_OK);
	assert_int_equal(push(&q, "ann", "pw-ann-1"), MF_OK);
	assert_int_equal(push(&q, "bob", "pw-bob-2"), MF_OK);
	/* Full: refused, counted, the queue unchanged. */
	assert_int_equal(push(&q, "cid", "pw-cid-3"), MF_AGAIN);
	assert_int_equal(q.dropped, 1);
	assert_int_equal(login_queue_len(&q), 2);

	assert_int_equal(login_queue_pop(&q, e), MF_OK);
	assert_string_equal(e->account, "ann");
	assert_string_equal(e->login, "ann");
	assert_int_equal(e->pass_len, 8);
	assert_memory_equal(e->pass, "pw-ann-1", 8);
	assert_int_equal(e->at, 1234);
	src = (const struct sockaddr_in *)&e->source;
	assert_int_equal(ntohs(src->sin_port), 143);
	/* The popped slot is wiped at once; bob's still holds its password. */
	assert_null(memmem(q.slots, q.cap * sizeof(*q.slots), "pw-ann-1", 8));
	assert_non_null(memmem(q.slots, q.cap * sizeof(*q.slots), "pw-bob-2", 8));
	login_event_wipe(e);
	assert_null(memmem(e, sizeof(*e), "pw-ann-1", 8));

	/* Room again; the ring wraps in order. */
	assert_int_equal(push(&q, "cid", "pw-cid-3"), MF_OK);
	assert_int_equal(login_queue_pop(&q, e), MF_OK);
	assert_string_equal(e->account, "bob");
	assert_int_equal(login_queue_pop(&q, e), MF_OK);
	assert_string_equal(e->account, "cid");
	assert_int_equal(login_queue_len(&q), 0);
	assert_slots_zero(&q);

	login_event_free(e);
	login_queue_destroy(&q);
}

static void test_too_long_refused(void **state)
{
	struct login_queue q;
	char err[128], *pw = malloc(LOGIN_EVENT_PASS_MAX + 2);

	(void)state;
	assert_non_null(pw);
	memset(pw, 'x', LOGIN_EVENT_PASS_MAX + 1);
	pw[LOGIN_EVENT_PASS_MAX + 1] = '\0';
	assert_int_equal(login_queue_init(&q, 1, err, sizeof(err)), MF_OK);
	assert_int_equal(push(&q, "ann", pw), MF_ERROR);
	assert_int_equal(login_queue_len(&q), 0);
	assert_slots_zero(&q);
	pw[LOGIN_EVENT_PASS_MAX] = '\0'; /* exactly the maximum fits */
	assert_int_equal(push(&q, "ann", pw), MF_OK);
	free(pw);
	login_queue_destroy(&q);
	assert_int_equal(login_queue_init(&q, 0, err, sizeof(err)), MF_ERROR);
}

static void test_stop_wipes_and_fails(void **state)
{
	struct login_queue q;
	struct login_event e;
	char err[128];

	(void)state;
	assert_int_equal(login_queue_init(&q, 4, err, sizeof(err)), MF_OK);
	assert_int_equal(push(&q, "ann", "pw-ann-1"), MF_OK);
	assert_int_equal(push(&q, "bob", "pw-bob-2"), MF_OK);
	login_queue_stop(&q);
	assert_slots_zero(&q);
	assert_int_equal(q.dropped, 2);
	assert_int_equal(login_queue_pop(&q, &e), MF_ERROR);
	assert_int_equal(push(&q, "cid", "pw-cid-3"), MF_AGAIN);
	assert_slots_zero(&q);
	login_queue_destroy(&q);
}

struct popper {
	struct login_queue *q;
	int rc;
	char account[ACCOUNT_NAME_MAX + 1];
};

static void *pop_main(void *arg)
{
	struct popper *p = arg;
	struct login_event e;

	p->rc = login_queue_pop(p->q, &e);
	if (p->rc == MF_OK)
		snprintf(p->account, sizeof(p->account), "%s", e.account);
	login_event_wipe(&e);
	return NULL;
}

static void test_blocked_pop_woken(void **state)
{
	struct login_queue q;
	struct popper p = { .q = &q, .rc = 99 };
	pthread_t t;
	char err[128];

	(void)state;
	assert_int_equal(login_queue_init(&q, 1, err, sizeof(err)), MF_OK);
	assert_int_equal(pthread_create(&t, NULL, pop_main, &p), 0);
	assert_int_equal(push(&q, "ann", "pw"), MF_OK);
	pthread_join(t, NULL);
	assert_int_equal(p.rc, MF_OK);
	assert_string_equal(p.account, "ann");

	p.rc = 99;
	assert_int_equal(pthread_create(&t, NULL, pop_main, &p), 0);
	login_queue_stop(&q);
	pthread_join(t, NULL);
	assert_int_equal(p.rc, MF_ERROR);
	login_queue_destroy(&q);
}

/* Paused: nothing is handed out but released events, oldest released
 * first, the others keep their order; the gaps are wiped; resume hands out
 * the rest; a consumer blocked by the pause is woken by release and by
 * resume. */
static void test_pause_release(void **state)
{
	struct login_queue q;
	struct login_event *e = login_event_alloc();
	struct popper p = { .q = &q, .rc = 99 };
	pthread_t t;
	char err[128];

	(void)state;
	assert_non_null(e);
	assert_int_equal(login_queue_init(&q, 4, err, sizeof(err)), MF_OK);
	login_queue_set_paused(&q, true);
	assert_int_equal(push(&q, "ann", "pw-ann-1"), MF_OK);
	assert_int_equal(push(&q, "bob", "pw-bob-2"), MF_OK);
	assert_int_equal(push(&q, "cid", "pw-cid-3"), MF_OK);
	assert_int_equal(push(&q, "bob", "pw-bob-4"), MF_OK);
	assert_int_equal(login_queue_release(&q, "nobody"), 0);
	assert_int_equal(login_queue_release(&q, "bob"), 2);
	assert_int_equal(login_queue_pop(&q, e), MF_OK);
	assert_string_equal(e->account, "bob");
	assert_memory_equal(e->pass, "pw-bob-2", 8);
	assert_int_equal(login_queue_pop(&q, e), MF_OK);
	assert_memory_equal(e->pass, "pw-bob-4", 8);
	assert_int_equal(login_queue_len(&q), 2);
	assert_null(memmem(q.slots, q.cap * sizeof(*q.slots), "pw-bob", 6));
	/* Nothing released is left: a consumer waits, a release wakes it. */
	assert_int_equal(pthread_create(&t, NULL, pop_main, &p), 0);
	assert_int_equal(login_queue_release(&q, "cid"), 1);
	pthread_join(t, NULL);
	assert_int_equal(p.rc, MF_OK);
	assert_string_equal(p.account, "cid");
	/* Resume wakes a waiting consumer and hands out the rest in order. */
	assert_int_equal(pthread_create(&t, NULL, pop_main, &p), 0);
	login_queue_set_paused(&q, false);
	pthread_join(t, NULL);
	assert_string_equal(p.account, "ann");
	assert_int_equal(login_queue_len(&q), 0);
	assert_slots_zero(&q);
	/* The ring wraps while a middle slot is taken out. */
	login_queue_set_paused(&q, true);
	for (int i = 0; i < 3; i++)
		assert_int_equal(push(&q, i == 1 ? "mid" : "end", "pw"), MF_OK);
	assert_int_equal(login_queue_release(&q, "mid"), 1);
	assert_int_equal(login_queue_pop(&q, e), MF_OK);
	assert_string_equal(e->account, "mid");
	login_queue_set_paused(&q, false);
	assert_int_equal(login_queue_pop(&q, e), MF_OK);
	assert_string_equal(e->account, "end");
	assert_int_equal(login_queue_pop(&q, e), MF_OK);
	assert_string_equal(e->account, "end");
	assert_slots_zero(&q);
	/* Not paused, a released event still goes first. */
	assert_int_equal(push(&q, "old", "pw"), MF_OK);
	assert_int_equal(push(&q, "now", "pw"), MF_OK);
	assert_int_equal(login_queue_release(&q, "now"), 1);
	assert_int_equal(login_queue_pop(&q, e), MF_OK);
	assert_string_equal(e->account, "now");
	assert_int_equal(login_queue_pop(&q, e), MF_OK);
	assert_string_equal(e->account, "old");
	/* Pushed released (the admin's master-user push): taken while paused,
	 * before older unreleased ones, and marked released. */
	login_queue_set_paused(&q, true);
	assert_int_equal(push(&q, "old", "pw"), MF_OK);
	{
		struct sockaddr_in none = { .sin_family = AF_UNSPEC };

		assert_int_equal(login_queue_push(&q, "push", "push", 4, "", 0,
						  (struct sockaddr *)&none, sizeof(none),
						  (struct sockaddr *)&none, sizeof(none), 5, true),
				 MF_OK);
	}
	assert_int_equal(login_queue_pop_timed(&q, e, 30), MF_OK);
	assert_string_equal(e->account, "push");
	assert_true(e->released);
	assert_int_equal(e->pass_len, 0);
	assert_int_equal(login_queue_pop_timed(&q, e, 30), MF_AGAIN);
	login_queue_set_paused(&q, false);
	assert_int_equal(login_queue_pop(&q, e), MF_OK);
	assert_string_equal(e->account, "old");
	assert_false(e->released);
	login_event_free(e);
	login_queue_destroy(&q);
}

struct waiter {
	struct login_queue *q;
	int rc;
};

static void *wait_main(void *arg)
{
	struct waiter *w = arg;

	w->rc = login_queue_wait_unpaused(w->q);
	return NULL;
}

/* A copy waiting at its cutover: released by resume (true), or by a stop
 * (false); not paused, no wait at all. */
static void test_wait_unpaused(void **state)
{
	struct login_queue q;
	struct waiter w = { .q = &q, .rc = 99 };
	pthread_t t;
	char err[128];

	(void)state;
	assert_int_equal(login_queue_init(&q, 1, err, sizeof(err)), MF_OK);
	assert_false(login_queue_paused(&q));
	assert_true(login_queue_wait_unpaused(&q));
	login_queue_set_paused(&q, true);
	assert_true(login_queue_paused(&q));
	assert_int_equal(pthread_create(&t, NULL, wait_main, &w), 0);
	login_queue_set_paused(&q, false);
	pthread_join(t, NULL);
	assert_int_equal(w.rc, 1);
	login_queue_set_paused(&q, true);
	w.rc = 99;
	assert_int_equal(pthread_create(&t, NULL, wait_main, &w), 0);
	login_queue_stop(&q);
	pthread_join(t, NULL);
	assert_int_equal(w.rc, 0);
	login_queue_destroy(&q);
}

static void test_timed_pop(void **state)
{
	struct login_queue q;
	struct login_event *e = login_event_alloc();
	char err[128];

	(void)state;
	assert_non_null(e);
	assert_int_equal(login_queue_init(&q, 2, err, sizeof(err)), MF_OK);
	assert_int_equal(login_queue_pop_timed(&q, e, 0), MF_AGAIN);
	assert_int_equal(login_queue_pop_timed(&q, e, 30), MF_AGAIN);
	assert_int_equal(push(&q, "ann", "pw"), MF_OK);
	assert_int_equal(login_queue_pop_timed(&q, e, 30), MF_OK);
	assert_string_equal(e->account, "ann");
	assert_int_equal(e->pass_len, 2);
	login_queue_stop(&q);
	assert_int_equal(login_queue_pop_timed(&q, e, 30), MF_ERROR);
	login_queue_destroy(&q);
	login_event_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fifo_bound_wipe),
		cmocka_unit_test(test_too_long_refused),
		cmocka_unit_test(test_stop_wipes_and_fails),
		cmocka_unit_test(test_blocked_pop_woken),
		cmocka_unit_test(test_pause_release),
		cmocka_unit_test(test_wait_unpaused),
		cmocka_unit_test(test_timed_pop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
