/* cutover.h — how a migration worker tells the io_uring workers to close
 * an account's sessions still relayed to the source (CUTOVER, DESIGN.md).
 *
 * The board holds the names of the accounts in cutover (one slot per
 * migration worker) and a generation. cutover_begin() posts a name and
 * bumps the generation; the daemon then wakes every io_uring worker
 * (daemon_wake_workers), each of which takes a snapshot, aborts its
 * matching sessions and acknowledges the generation; cutover_wait()
 * returns when all have, or at the deadline (a worker busy for longer
 * must not hold the cutover: the account is already refused new logins). */
#ifndef MF_CUTOVER_H
#define MF_CUTOVER_H

#include "account.h"

#include <pthread.h>
#include <stdbool.h>

/* One slot per [migrate] worker (at most 64), and one for the change feed
 * (state_watch.h: a CUTOVER another gateway committed). */
#define CUTOVER_SLOTS_MAX 65
#define CUTOVER_SLOT_FEED 64
#define CUTOVER_WORKERS_MAX 256 /* = the most [gateway] workers */

struct cutover_board {
	pthread_mutex_t lock;
	pthread_cond_t acked;
	unsigned int gen;
	char names[CUTOVER_SLOTS_MAX][ACCOUNT_NAME_MAX + 1]; /* "" free */
	unsigned int seen[CUTOVER_WORKERS_MAX]; /* per io_uring worker */
	unsigned int n_workers;
};

void cutover_init(struct cutover_board *b, unsigned int n_workers);
void cutover_destroy(struct cutover_board *b);

/* Posts name in slot (a migration worker's index); returns the new
 * generation to wait for. */
unsigned int cutover_begin(struct cutover_board *b, unsigned int slot, const char *name);
/* Frees slot. */
void cutover_end(struct cutover_board *b, unsigned int slot);

/* true when every worker acknowledged gen within timeout_ms. */
bool cutover_wait(struct cutover_board *b, unsigned int gen, unsigned int timeout_ms);

/* Worker side: when the board's generation differs from the one worker
 * acknowledged last, copies the names in cutover to names_r (n_r of them)
 * and returns the generation to acknowledge; 0 when nothing changed. */
unsigned int cutover_poll(struct cutover_board *b, unsigned int worker,
			  char (*names_r)[ACCOUNT_NAME_MAX + 1], unsigned int *n_r);
void cutover_ack(struct cutover_board *b, unsigned int worker, unsigned int gen);

#endif
