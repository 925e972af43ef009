/* copy_lease.h — this gateway's copy jobs and their leases (issue 8).
 *
 * A migration worker claims an account's copy job in the ledger
 * (ledger_job_claim: one gateway at a time, everywhere), and this module's
 * keeper thread renews the leases it holds, on a ledger handle of its own,
 * every third of the lease. While the ledger cannot be reached the copy
 * pauses at its next checkpoint (copy_lease_proceed blocks), and resumes by
 * itself once a renewal succeeds; a lease found taken by another gateway
 * stops the copy at its next checkpoint without touching the account. The
 * keeper also gives back jobs whose owner went silent (ledger_jobs_reap:
 * the account returns to SEEN and waits for its user's next login on any
 * gateway, since credentials are never stored) — but only after it has
 * itself reached the ledger for a whole lease plus the longest reconnect
 * pause (LEDGER_RECONNECT_MAX_MS), so a live owner that was cut off with it
 * has renewed first. */
#ifndef MF_COPY_LEASE_H
#define MF_COPY_LEASE_H

#include "account.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct ledger;
struct route_cache;
struct copy_lease;

struct copy_lease_cfg {
	const char *ledger_spec;
	const char *owner;          /* this gateway's id */
	unsigned int lease_ms;
	unsigned int n_slots;       /* migration workers */
	struct route_cache *routes; /* told of every change made here */
	atomic_bool *stopping;      /* the daemon's */
};

/* fn (the keeper's thread, under the lease's lock: it must not call back
 * into copy_lease) is called with each account whose dead owner's job the
 * keeper gave back (SEEN in the ledger by then); NULL: none, and no call
 * runs any more once this returns. The migrator with a master user
 * resumes such copies at once. */
void copy_lease_on_reaped(struct copy_lease *cl, void (*fn)(void *arg, const char *name),
			  void *arg);

/* Starts the keeper (after giving back this owner's old jobs). MF_OK or
 * MF_ERROR with err. */
int copy_lease_start(const struct copy_lease_cfg *cfg, struct copy_lease **cl_r, char *err,
		     size_t errlen);
void copy_lease_stop(struct copy_lease *cl);

/* Claims name's job for slot (a migration worker) through l and sets the
 * account COPYING: MF_OK (the keeper renews it from now on, and stores
 * snapshots of the copy's checkpoints, state_path, with it), LEDGER_NOT_OWNER
 * (*state_r: its state; logged), MF_ERROR (logged). Checkpoints another
 * gateway left with the job are restored into state_path first
 * (mig_state_restore), so the copy resumes where they end. */
int copy_lease_claim(struct copy_lease *cl, struct ledger *l, unsigned int slot,
		     const char *name, const char *state_path, unsigned int retry_after_s,
		     const char *reason, enum account_state *state_r);

/* For mig_opts.proceed (arg: the slot's handle from copy_lease_slot). */
bool copy_lease_proceed(void *slot_arg);
void *copy_lease_slot(struct copy_lease *cl, unsigned int slot);

/* true while slot's lease is held and renewed. */
bool copy_lease_held(struct copy_lease *cl, unsigned int slot);

/* Sets name's state through l while slot holds the job; release ends the
 * job (MIGRATED, FAILED) and forgets the slot. An unreachable ledger is
 * retried (the copy is paused meanwhile) until it answers or the daemon
 * stops. MF_OK, LEDGER_NOT_OWNER or MF_ERROR (logged). */
int copy_lease_set_state(struct copy_lease *cl, struct ledger *l, unsigned int slot,
			 const char *name, enum account_state st, const char *reason,
			 bool release);

/* Forgets slot's job without a state change (it was lost, or the daemon
 * stops with the ledger unreachable: the job is given back by lease
 * expiry or at this gateway's next start). */
void copy_lease_drop(struct copy_lease *cl, unsigned int slot);

#endif
