/* migrator.h — the in-daemon copy (DESIGN.md's strategies): threads that
 * take "login observed" events (login_event.h) and move the account:
 *
 *   UNSEEN/SEEN ─► COPYING (bulk copy with the observed credentials while
 *   the user keeps working on the source) ─► CUTOVER (new logins refused;
 *   the account's sessions relayed to the source closed, cutover.h; the
 *   delta copied: mail that arrived and flags that changed meanwhile;
 *   verification) ─► MIGRATED.  Any failure ─► FAILED with the reason:
 *   the user stays on the source.
 *
 * The endpoints: the source address the client connected to and the
 * [intercept] destination of its family, on the [migrate] ports, with
 * the [migrate] TLS settings. The checkpoints of each account live in
 * <state_dir>/<account>.state (mig.h), so a rerun is incremental. The
 * password is held only in the event (mlock'ed) and wiped when the
 * account's run ends; it is never logged nor written.
 *
 * Strategy live runs each event at once; immediate the same (its login
 * waits in the front end, front_io_hold()); after-logout parks an event
 * while the account has sessions relayed to the source (acct_sessions.h,
 * mig_park.h). Events with no password (accounts resumed or pushed) log in
 * as the configured master user. */
#ifndef MF_MIGRATOR_H
#define MF_MIGRATOR_H

#include <stddef.h>

struct mf_daemon;
struct migrator;

/* Starts d->cfg's [migrate] workers (d->logins and d->cutover set up).
 * Accounts left in COPYING or CUTOVER by a previous run that died go back
 * to SEEN, so their next login resumes the copy from its checkpoints; a
 * copy a running predecessor holds (its lock, "<state file>.lock") is
 * left to it. MF_OK, or MF_ERROR with err. */
int migrator_start(struct mf_daemon *d, struct migrator **m_r, char *err, size_t errlen);

/* The admin's push (migrate USER --master): queues a copy of account
 * name (normalised, in the ledger) as the configured master user, taken
 * before other waiting logins and even while paused. MF_OK, or MF_ERROR
 * with err (no master user, no source, queue full). Any thread. */
int migrator_push(struct migrator *m, const char *name, char *err, size_t errlen);

/* Asks running copies to stop at their next checkpoint (a shutdown, a
 * restart): they go back to SEEN, their next login resumes them. Any
 * thread. */
void migrator_cancel(struct migrator *m);

/* Stops taking events (queued ones are wiped), cancels running copies,
 * waits for them to end, frees. */
void migrator_stop(struct migrator *m);

#endif
