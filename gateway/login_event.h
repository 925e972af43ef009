/* login_event.h — "login observed" events: a login the source accepted,
 * with its credentials, handed from the front ends to the migration
 * workers (migrator.h).
 *
 * The queue is bounded: an event that does not fit is dropped (its
 * password never copied) and the account simply waits for its next
 * login. The slots are one allocation, mlock'ed when the limit allows so
 * a password is never swapped out; a password lives in exactly one slot
 * and is wiped (explicit_bzero) when it is popped, dropped at stop, or
 * the queue is destroyed. Nothing here logs a password. */
#ifndef MF_LOGIN_EVENT_H
#define MF_LOGIN_EVENT_H

#include "account.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A longer password gets no event (the account waits for a master user). */
#define LOGIN_EVENT_PASS_MAX 1024

struct login_event {
	char account[ACCOUNT_NAME_MAX + 1];  /* normalised ledger key */
	char login[ACCOUNT_NAME_MAX + 1];    /* as the client typed it */
	char pass[LOGIN_EVENT_PASS_MAX + 1];
	size_t pass_len;
	struct sockaddr_storage client;      /* where the client connected from */
	struct sockaddr_storage source;      /* the source address it connected to */
	int64_t at;                          /* time(NULL) of the login */
	bool released;                       /* taken even while paused */
};

struct login_queue {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct login_event *slots;
	unsigned int cap, head, n;
	bool locked_in_ram;  /* mlock succeeded */
	bool stopped;
	/* The admin's pause: events wait (credentials held, mlock'ed) until
	 * resume, or until the admin releases an account's (migrate USER). */
	bool paused;
	uint64_t dropped;    /* full or stopped */
};

/* cap slots (>= 1). MF_OK, or MF_ERROR with err. */
int login_queue_init(struct login_queue *q, unsigned int cap, char *err, size_t errlen);

/* Copies the event into a free slot and wakes a consumer: MF_OK, or
 * MF_AGAIN when the queue is full or stopped (nothing copied, counted in
 * dropped), MF_ERROR when a field is too long. released: the admin asked
 * for this copy by name (as login_queue_release), set under the same lock
 * so no consumer sees the event unreleased. */
int login_queue_push(struct login_queue *q, const char *account,
		     const char *login, size_t login_len, const char *pass, size_t pass_len,
		     const struct sockaddr *client, socklen_t client_len,
		     const struct sockaddr *source, socklen_t source_len, int64_t at,
		     bool released);

/* Blocks for the oldest released event (login_queue_release), else the
 * oldest, and while paused only for a released one, and moves it to *e_r (the slot is wiped):
 * MF_OK, or MF_ERROR once the queue is stopped. The caller wipes *e_r
 * with login_event_wipe() when done, and should keep it in locked memory
 * (login_event_alloc). */
int login_queue_pop(struct login_queue *q, struct login_event *e_r);

/* Pauses or resumes the consumers: while paused, pop hands out only
 * released events (oldest first); the others wait, and new ones queue
 * (and are dropped when the queue is full, as always). */
void login_queue_set_paused(struct login_queue *q, bool paused);

/* Blocks while the queue is paused: true once it is not (at once when it
 * was not paused), false once it is stopped. A copy waits here between
 * its bulk copy and its cutover, so no account flips while paused. */
bool login_queue_wait_unpaused(struct login_queue *q);

/* Whether the queue is paused now. */
bool login_queue_paused(struct login_queue *q);

/* Marks every queued event of account released (popped before the others,
 * paused or not) and wakes a consumer.
 * Returns how many there are (0: the queue holds no credentials for it). */
unsigned int login_queue_release(struct login_queue *q, const char *account);
/* The same, waiting at most timeout_ms (< 0: for ever): MF_AGAIN when
 * nothing came meanwhile. */
int login_queue_pop_timed(struct login_queue *q, struct login_event *e_r, int timeout_ms);

/* Wipes every queued event, fails every pop from now on, wakes them. */
void login_queue_stop(struct login_queue *q);

/* Stops (if not yet), wipes and frees. */
void login_queue_destroy(struct login_queue *q);

/* Events waiting now (tests, metrics). */
unsigned int login_queue_len(struct login_queue *q);

/* One event in mlock'ed memory (best effort) for a consumer; NULL when out
 * of memory. login_event_free() wipes it first. */
struct login_event *login_event_alloc(void);
void login_event_free(struct login_event *e);

void login_event_wipe(struct login_event *e);

#endif
