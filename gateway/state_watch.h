/* state_watch.h — the change feed of a shared ledger (issue 8): a thread
 * with its own PostgreSQL connection LISTENs for committed state changes
 * (ledger_changes_*) and puts each into the daemon's routing cache at once,
 * so a flip made by another gateway is routed by here within milliseconds,
 * not at the cache's TTL. A CUTOVER heard this way also closes the
 * account's sessions this gateway still relays to the source (cutover.h),
 * as the migration worker does on the gateway that runs the copy. While
 * the connection is down the cache is marked not live (nothing non-final
 * is trusted) and the thread reconnects with back-off; while it cannot
 * reach the ledger at all it also says so (routes.ledger_down), and the
 * io_uring workers stop trying their own connects, which would block their
 * event loops. Once it listens again, the cache is emptied (changes in the
 * gap were missed).
 * SQLite: nothing to listen to; not started, the cache is live. */
#ifndef MF_STATE_WATCH_H
#define MF_STATE_WATCH_H

#include <stddef.h>

struct mf_daemon;
struct state_watch;

/* Starts the feed when d's ledger is shared; *w_r stays NULL otherwise.
 * MF_OK or MF_ERROR with err. */
int state_watch_start(struct mf_daemon *d, struct state_watch **w_r, char *err, size_t errlen);
void state_watch_stop(struct state_watch *w);

#endif
