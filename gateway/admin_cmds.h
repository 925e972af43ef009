/* admin_cmds.h — what mailferryd answers on its admin socket
 * (admin_server.h, admin_proto.h): status, and the admin's actions on
 * accounts and on copying.
 *
 * Every action is checked and applied in one ledger transaction
 * (ledger_account_set_state_if), so an action and a migration worker's
 * claim of the same account cannot both win; a refusal says why and
 * changes nothing:
 *   pin USER       UNSEEN/SEEN/FAILED/ROLLBACK/FORCE -> PINNED (never moved)
 *   retry USER     FAILED -> SEEN (copies at the next login, or now when
 *                  the daemon holds a login of USER waiting in its queue)
 *   rollback USER  any state before MIGRATED but a running copy -> ROLLBACK
 *                  (served by the source, never copied); MIGRATED is refused:
 *                  a sync back needs USER's credentials, which the daemon
 *                  does not hold once a copy has ended
 *   migrate USER   starts the copy of a login of USER (UNSEEN or SEEN)
 *                  waiting in the queue (ahead of the others, paused or
 *                  not); refused when there is none: the daemon keeps no
 *                  password beyond its copy (a FAILED account: use retry)
 *   pause, resume  copying as a whole (no copy starts; one whose bulk copy
 *                  ends waits before its cutover), persisted in the ledger
 *                  (setting ADMIN_PAUSED_KEY), read again at the next start
 * The admin thread is the only caller: one ledger handle, opened lazily. */
#ifndef MF_ADMIN_CMDS_H
#define MF_ADMIN_CMDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mf_daemon;
struct ledger;

#define ADMIN_PAUSED_KEY "copy_paused"

/* Counters sampled for status's rates: per second over the last
 * ADMIN_RATE_WINDOW_S or so (the oldest sample at least that old). */
#define ADMIN_RATE_WINDOW_S 10
#define ADMIN_RATE_SAMPLES (ADMIN_RATE_WINDOW_S + 2)

struct admin_sample {
	int64_t t_ms;            /* monotonic; 0: empty */
	uint64_t sessions, logins, c2s, s2c, copy_messages, copy_bytes;
};

struct admin_cmds {
	struct mf_daemon *d;
	struct ledger *ledger;   /* NULL until first needed, or after an error */
	int64_t started;         /* daemon start, unix seconds */
	struct admin_sample samples[ADMIN_RATE_SAMPLES]; /* ring, one a second */
	unsigned int next_sample;
};

void admin_cmds_init(struct admin_cmds *c, struct mf_daemon *d, int64_t started);
void admin_cmds_destroy(struct admin_cmds *c);

/* Once a second (the admin thread): samples the counters for the rates. */
void admin_cmds_tick(void *arg);

/* admin_handler_fn: one request line -> one reply object (malloc'ed). */
char *admin_cmds_handle(void *arg, const char *line, size_t len);

/* The persisted pause: *paused_r from l (false when never set). */
int admin_paused_load(struct ledger *l, bool *paused_r, char *err, size_t errlen);

#endif
