/* ledger.h — the account ledger: every account's state and history.
 *
 * One small interface, two backends (DESIGN.md): SQLite and PostgreSQL
 * (ledger_pg.c, for several gateways sharing one truth). Nothing outside
 * migrate/ledger*.c knows which backend is in use or sees SQL; callers
 * hold an opaque struct ledger.
 *
 * Contracts common to every call:
 * - Account names must already be in normal form (account_name_normalise);
 *   anything else is MF_ERROR, so one user can never become two rows.
 * - Times are Unix seconds (UTC), passed in by the caller so tests and the
 *   gateway's clock agree; 0 means "never".
 * - MF_OK on success, LEDGER_ABSENT where documented, MF_ERROR with the
 *   reason (the backend's own message included) in err. MF_AGAIN is not
 *   used: a busy database is waited for (bounded), then reported as MF_ERROR.
 * - A struct ledger is used by one thread at a time; each gateway worker
 *   opens its own. Several handles, in one process or many, may share one
 *   ledger.
 * - No credential is ever passed to or stored by the ledger: there is no
 *   field for one. */
#ifndef MF_LEDGER_H
#define MF_LEDGER_H

#include "account.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "The account is not in the ledger": not an error, not "try again". */
#define LEDGER_ABSENT 1

/* "Someone else holds it": a copy job leased by another gateway, or one
 * this gateway no longer owns. Not an error, not "try again now". */
#define LEDGER_NOT_OWNER 2

/* "This backend cannot do that" (change notifications on SQLite). */
#define LEDGER_UNSUPPORTED 3

#define LEDGER_CLIENT_MAX 64  /* "[2001:db8::1]:65535" and then some */
/* The schema both backends bring a ledger to (each checks its steps add
 * up to it at compile time). */
#define LEDGER_SCHEMA_VERSION 8
#define LEDGER_GATEWAY_MAX 64 /* a gateway's id ([ledger] gateway_id) */
#define LEDGER_REASON_MAX 256 /* longer reasons are truncated */
#define LEDGER_NOTES_MAX 256  /* the admin's notes of an account (import) */

/* ledger_account_set_state_if: the account was not in an allowed state. */
#define LEDGER_REFUSED 2

struct ledger;

struct account {
	char name[ACCOUNT_NAME_MAX + 1];
	enum account_state state;
	int64_t first_seen;     /* first observed login (0: never) */
	int64_t last_seen;      /* last observed login (0: never) */
	char last_client[LEDGER_CLIENT_MAX]; /* "" if never seen */
	uint64_t logins;        /* observed logins, all time */
	int64_t state_changed;  /* when state last changed (0: never) */
	char reason[LEDGER_REASON_MAX]; /* why it last changed */
	int64_t imported;       /* first named by an admin's import (0: never) */
	char notes[LEDGER_NOTES_MAX]; /* the admin's notes ("" if none) */
	char last_gateway[LEDGER_GATEWAY_MAX]; /* gateway of the last login, "" if none */
};

/* One state change, as kept in the history. */
struct account_event {
	int64_t at;
	enum account_state from;
	enum account_state to;
	char reason[LEDGER_REASON_MAX];
};

/* Opens (creating if needed) the ledger named by spec and brings its schema
 * up to date in place. A spec starting "postgresql://" or "postgres://"
 * names the PostgreSQL backend (ledger_pg.c); anything else is
 * the path of a SQLite file, created with mode 0600 whatever the umask.
 * A schema newer than this program knows is refused, never downgraded. */
int ledger_open(const char *spec, struct ledger **l_r, char *err, size_t errlen);

/* Closes l (NULL is fine). */
void ledger_close(struct ledger *l);

/* The schema version l is at (SQLite: PRAGMA user_version). */
int ledger_schema_version(struct ledger *l, int *version_r, char *err,
			  size_t errlen);

/* Fills *a_r: MF_OK, or LEDGER_ABSENT if name was never recorded
 * (route it as UNSEEN), or MF_ERROR. */
int ledger_account_get(struct ledger *l, const char *name, struct account *a_r,
		       char *err, size_t errlen);

/* One login to record (ledger_logins_observed). */
struct ledger_login {
	char name[ACCOUNT_NAME_MAX + 1];
	char client[LEDGER_CLIENT_MAX];
	char gateway[LEDGER_GATEWAY_MAX]; /* the gateway that saw it ("" unknown) */
	int64_t at;
};

/* ledger_login_observed() for n logins in one transaction (one sync
 * instead of n: a worker records the logins of one event-loop round at
 * once). All or none are recorded. */
int ledger_logins_observed(struct ledger *l, const struct ledger_login *v, size_t n,
			   char *err, size_t errlen);

/* Records a login the source accepted, in one transaction: creates the
 * account if unknown, moves UNSEEN to SEEN (with a history entry) and
 * leaves every other state alone, sets first_seen (once), last_seen and
 * last_client, and counts the login. *state_r (may be NULL) gets the state
 * after the update, which is what the login must be routed by. */
int ledger_login_observed(struct ledger *l, const char *name,
			  const char *client, int64_t now,
			  enum account_state *state_r, char *err, size_t errlen);

/* Admin override (and, later, the migration engine's transitions): sets
 * name's state, creating the account if unknown (so an account can be
 * PINNED before it is ever seen), and appends (now, old, new, reason) to
 * its history, in one transaction that is synced to disk before MF_OK
 * (a flip decides where mail goes; it must survive a power cut). Setting
 * the state it already has is still recorded. *old_r may be NULL. */
int ledger_account_set_state(struct ledger *l, const char *name,
			     enum account_state state, const char *reason,
			     int64_t now, enum account_state *old_r,
			     char *err, size_t errlen);

/* Bit of state s in a set of states (ledger_account_set_state_if). */
#define LEDGER_STATE_BIT(s) (1u << (unsigned int)(s))

/* Compare-and-set: like ledger_account_set_state, but only when the
 * account's state (UNSEEN for an unknown account) is in the set allowed
 * (LEDGER_STATE_BIT()s), checked and changed in one transaction (the row
 * locked on PostgreSQL), so an admin's pin and a migration worker's claim
 * cannot both win. MF_OK when changed, LEDGER_REFUSED (nothing written,
 * not even an unknown account's row) when not, MF_ERROR. *old_r (may be
 * NULL) gets the state found, in both first cases. */
int ledger_account_set_state_if(struct ledger *l, const char *name, unsigned int allowed,
				enum account_state state, const char *reason, int64_t now,
				enum account_state *old_r, char *err, size_t errlen);

/* An admin's list of known accounts (accounts import): creates name as
 * UNSEEN if unknown (*created_r true), marks it imported at now (the first
 * import only) and, when notes is not NULL, replaces its notes (printable
 * text, at most LEDGER_NOTES_MAX - 1 bytes, else MF_ERROR). The state of
 * a known account is left alone. */
int ledger_account_import(struct ledger *l, const char *name, const char *notes, int64_t now,
			  bool *created_r, char *err, size_t errlen);

/* Calls fn for each account in name order, only those in state filter
 * when filter >= 0 (an enum account_state), all when filter is -1. A
 * return other than MF_OK from fn stops the walk and is returned. fn must
 * not call into the same struct ledger (another handle is fine). */
int ledger_account_list(struct ledger *l, int filter,
			int (*fn)(const struct account *a, void *data),
			void *data, char *err, size_t errlen);

/* Calls fn for each state change of name, oldest first; stops like
 * ledger_account_list. LEDGER_ABSENT if name is not in the ledger. */
int ledger_account_history(struct ledger *l, const char *name,
			   int (*fn)(const struct account_event *e, void *data),
			   void *data, char *err, size_t errlen);

/* Copy runs: one row per attempt of the migration engine on an account
 * (a bulk copy and its delta are one run), with what it moved. */
enum copy_result {
	COPY_RUNNING = 0,    /* started, not ended (yet) */
	COPY_MIGRATED,       /* copied, verified, flipped */
	COPY_FAILED,         /* ended with an error: the account went FAILED */
	COPY_INTERRUPTED     /* the daemon stopped or crashed during it */
};
#define COPY_RESULT_COUNT (COPY_INTERRUPTED + 1)

/* "running", "migrated", "failed", "interrupted". */
const char *copy_result_name(enum copy_result r);

struct copy_run {
	int64_t id;
	char name[ACCOUNT_NAME_MAX + 1];
	int64_t started, ended;       /* ended 0 while running */
	enum copy_result result;
	uint64_t messages, bytes;     /* copied (bulk + delta) */
	char error[LEDGER_REASON_MAX]; /* "" unless failed */
};

/* Records the start of a run on name (which must exist); *id_r names it
 * for ledger_copy_run_end. */
int ledger_copy_run_begin(struct ledger *l, const char *name, int64_t now, int64_t *id_r,
			  char *err, size_t errlen);

/* Ends run id with result (not COPY_RUNNING), its totals and error (may be
 * NULL; truncated to LEDGER_REASON_MAX - 1). LEDGER_ABSENT for an unknown
 * id or a run already ended. */
int ledger_copy_run_end(struct ledger *l, int64_t id, int64_t now, enum copy_result result,
			uint64_t messages, uint64_t bytes, const char *error, char *err,
			size_t errlen);

/* Every run of name (of every account when name is NULL) still
 * COPY_RUNNING becomes COPY_INTERRUPTED, ended at now: at a daemon's
 * start, for the accounts a stop or crash left copying (and not a live
 * predecessor's, which hold their copy lock). *n_r (may be NULL) gets how
 * many. */
int ledger_copy_runs_interrupt(struct ledger *l, const char *name, int64_t now,
			       unsigned int *n_r, char *err, size_t errlen);

/* Calls fn for each run of name, oldest first (all accounts' runs when
 * name is NULL); stops like ledger_account_list. */
int ledger_copy_run_list(struct ledger *l, const char *name,
			 int (*fn)(const struct copy_run *r, void *data), void *data,
			 char *err, size_t errlen);

/* New flows the SYN gate saw, per intercepted client subnet (as written
 * in [intercept] clients) and mail port: let through to the source
 * untouched (observe mode) or sent on to the gateway. And flows that
 * reached a source directly, never meeting the gate (a subnet not
 * intercepted, or the daemon down while fail-open), per client address
 * (subnet written as a /32 or /128) and port: counted by the nftables
 * rules (nft_direct.h). */
#define LEDGER_SUBNET_MAX 64
struct flow_count {
	char subnet[LEDGER_SUBNET_MAX];
	uint16_t port;
	uint64_t observed, intercepted, direct;
	int64_t last_seen;
};

/* Adds to subnet/port's counts (creating the row), last_seen = now. */
int ledger_flow_count_add(struct ledger *l, const char *subnet, uint16_t port,
			  uint64_t observed, uint64_t intercepted, int64_t now,
			  char *err, size_t errlen);

/* Adds direct flows to subnet/port's row (creating it), last_seen = now. */
int ledger_flow_direct_add(struct ledger *l, const char *subnet, uint16_t port,
			   uint64_t direct, int64_t now, char *err, size_t errlen);

/* Calls fn for each row in subnet, port order; stops like
 * ledger_account_list. */
int ledger_flow_count_list(struct ledger *l,
			   int (*fn)(const struct flow_count *c, void *data),
			   void *data, char *err, size_t errlen);

/* Gateway-wide settings the ledger keeps across restarts and reboots (the
 * fail mode "auto" recorded as switched to closed, say): short keys and
 * values of printable text. */
#define LEDGER_SETTING_KEY_MAX 64
#define LEDGER_SETTING_VALUE_MAX 256

/* Copies the value of key into value_r (NUL-terminated; MF_ERROR if it
 * does not fit in len): MF_OK, LEDGER_ABSENT if never set, or MF_ERROR. */
int ledger_setting_get(struct ledger *l, const char *key, char *value_r,
		       size_t len, char *err, size_t errlen);

/* Sets key to value (replacing any earlier value) with the time it was
 * set, synced to disk before MF_OK like a state change: a setting decides
 * where flows go after a reboot. */
int ledger_setting_set(struct ledger *l, const char *key, const char *value,
		       int64_t now, char *err, size_t errlen);

/* Which gateways saw an account's logins (several gateways on one
 * PostgreSQL ledger; one row per gateway). */
struct account_gateway {
	char gateway[LEDGER_GATEWAY_MAX];
	uint64_t logins;
	int64_t first_seen, last_seen;
};

/* Calls fn for each gateway that recorded a login of name, by gateway id;
 * stops like ledger_account_list. */
int ledger_account_gateways(struct ledger *l, const char *name,
			    int (*fn)(const struct account_gateway *g, void *data),
			    void *data, char *err, size_t errlen);

/* ---- gateways: who is running -------------------------------------------
 *
 * Each mailferryd records a heartbeat under its gateway id every few
 * seconds (gateway/heartbeat.h), so status, the metrics and the retire
 * report can say which gateways share the ledger and which went silent. */
struct gateway_beat {
	char id[LEDGER_GATEWAY_MAX];
	int64_t started;     /* this run of the daemon */
	int64_t last_beat;
	int64_t stopped;     /* 0 while it runs; the time of a clean stop */
	uint64_t sessions;   /* open at the last beat */
	uint64_t copies;     /* running at the last beat */
	int64_t pid;
};

/* A gateway with no beat for this long is "silent". */
#define LEDGER_GATEWAY_SILENT_S 20

/* "running", "stopped" (its last beat said so) or "silent". */
const char *ledger_gateway_health(const struct gateway_beat *b, int64_t now);

/* Records b (replacing the gateway's earlier beat). */
int ledger_gateway_beat(struct ledger *l, const struct gateway_beat *b, char *err,
			size_t errlen);

/* Calls fn for each gateway that ever beat, by id; stops like
 * ledger_account_list. */
int ledger_gateway_list(struct ledger *l, int (*fn)(const struct gateway_beat *b, void *data),
			void *data, char *err, size_t errlen);

/* ---- copy jobs: one gateway copies an account at a time ---------------
 *
 * A job row per account names its owner (a gateway id) and the lease's end
 * (milliseconds, the gateways' wall clocks: keep them in NTP sync, well
 * within a lease). On PostgreSQL the row is taken with SELECT ... FOR
 * UPDATE SKIP LOCKED, so of two gateways claiming at once one gets it and
 * the other does not wait; on SQLite the file's write lock serialises.
 * The owner renews the lease while it copies; every state change of a
 * leased copy checks ownership in its own transaction, so a gateway whose
 * lease was taken can never flip the account. No credential is stored:
 * a job whose owner died goes back to SEEN (ledger_jobs_reap) and waits
 * for the user's next login on any gateway. */

/* Takes name's copy job for owner until now_ms + lease_ms and sets the
 * account COPYING (reason in the history), in one transaction, when the
 * account is UNSEEN, SEEN, or FAILED for at least retry_after_s seconds
 * (0: never) and no other gateway holds a live lease (our own id's lease is
 * no obstacle: the state says whether that copy still runs). MF_OK: claimed.
 * LEDGER_NOT_OWNER: not claimed (*state_r, may be NULL, gets the state;
 * *holder_r, may be NULL, LEDGER_GATEWAY_MAX bytes, the lease holder or
 * ""). MF_ERROR. */
int ledger_job_claim(struct ledger *l, const char *name, const char *owner, int64_t now_ms,
		     int64_t lease_ms, unsigned int retry_after_s, const char *reason,
		     enum account_state *state_r, char *holder_r, char *err, size_t errlen);

/* Extends owner's lease of name to now_ms + lease_ms: MF_OK, or
 * LEDGER_NOT_OWNER when owner no longer holds it, or MF_ERROR. */
int ledger_job_renew(struct ledger *l, const char *name, const char *owner, int64_t now_ms,
		     int64_t lease_ms, char *err, size_t errlen);

/* ledger_account_set_state(), only while owner holds name's job (checked
 * under the job row's lock in the same transaction); release also frees
 * the job (the copy ended: MIGRATED or FAILED). MF_OK, LEDGER_NOT_OWNER,
 * MF_ERROR. */
int ledger_job_set_state(struct ledger *l, const char *name, const char *owner,
			 enum account_state state, const char *reason, int64_t now,
			 bool release, char *err, size_t errlen);

/* Frees jobs whose lease ended before now_ms, or, when owner is not NULL,
 * every job of owner (a gateway restarting under the same id): their
 * accounts in COPYING or CUTOVER go back to SEEN (served by the source;
 * the next login resumes from the checkpoints). fn (may be NULL) is
 * called with each account and its former owner after the commit. */
int ledger_jobs_reap(struct ledger *l, int64_t now_ms, const char *owner,
		     void (*fn)(const char *name, const char *former_owner, void *data),
		     void *data, char *err, size_t errlen);

/* The copy's checkpoints travel with its job (opaque bytes: the engine's
 * state, mig_state_snapshot), so a gateway taking over a dead owner's job
 * resumes where the last snapshot left off instead of re-reading the
 * mailbox. At most LEDGER_CHECKPOINT_MAX bytes. put: only while owner
 * holds the job (MF_OK, LEDGER_NOT_OWNER, MF_ERROR). get: *buf_r malloc'd
 * (NULL, *len_r 0 and LEDGER_ABSENT when there is none), *from_r
 * (LEDGER_GATEWAY_MAX bytes) the gateway that stored it. A job's
 * checkpoints are dropped when it ends MIGRATED. */
#define LEDGER_CHECKPOINT_MAX (64u << 20)
int ledger_job_checkpoint_put(struct ledger *l, const char *name, const char *owner,
			      const void *buf, size_t len, char *err, size_t errlen);
int ledger_job_checkpoint_get(struct ledger *l, const char *name, void **buf_r,
			      size_t *len_r, char *from_r, char *err, size_t errlen);

/* ---- POP3 UIDL continuity ---------------------------------------------
 *
 * After MIGRATED a POP3 client that leaves mail on the server must not
 * fetch it all again: the gateway answers UIDL with the source's UIDLs for
 * the messages the copy moved. The migration engine computes, per account,
 * which destination UIDL holds the bytes of which source UIDL and keeps the
 * pairs here; the gateway reads them (ledger_uidl_map_get) and rewrites.
 * A UIDL is 1..LEDGER_UIDL_MAX characters 0x21-0x7E (RFC 1939 7). Within
 * one map every dst and every src is unique (a maildrop's UIDLs are). */
#define LEDGER_UIDL_MAX 70
struct uidl_pair { char dst[71]; char src[71]; };   /* POP3 UIDLs are 1..70 chars 0x21-0x7E */

/* Largest map accepted (a mailbox of more messages keeps no map: fetched
 * again, never wrong). */
#define LEDGER_UIDL_MAP_MAX 2000000u

/* Replaces name's whole map with v[0..n) in one transaction (n may be 0:
 * forget it). name must be in the ledger (else LEDGER_ABSENT, nothing
 * written). MF_ERROR, nothing written, for a UIDL that is empty, too long,
 * not NUL-terminated within its field or holds a byte outside 0x21-0x7E,
 * or a dst or src given twice. */
int ledger_uidl_map_put(struct ledger *l, const char *name, const struct uidl_pair *v, size_t n, char *err, size_t errlen);
/* name's map, sorted by dst (byte order, strcmp), into a malloc'd *v_r (NULL when n is 0).
 * An account with no map (or not in the ledger) has an empty one: MF_OK, n 0. */
int ledger_uidl_map_get(struct ledger *l, const char *name, struct uidl_pair **v_r, size_t *n_r, char *err, size_t errlen);

/* true when u is a valid UIDL: 1..LEDGER_UIDL_MAX bytes 0x21-0x7E then NUL,
 * all within len bytes. */
bool ledger_uidl_valid(const char *u, size_t len);

/* ---- change notifications ------------------------------------------
 * PostgreSQL: every committed state change is announced (a trigger does
 * NOTIFY), so a gateway learns of a flip made by another one at once.
 * Use a handle of its own for listening. SQLite: LEDGER_UNSUPPORTED (one
 * gateway: the process that flips updates its own cache). */
int ledger_changes_listen(struct ledger *l, char *err, size_t errlen);

/* Waits up to timeout_ms for announcements and calls fn for each (name,
 * new state), in commit order. MF_OK (none is fine) or MF_ERROR when the
 * connection is lost: changes may have been missed, listen again on a
 * new handle. */
int ledger_changes_wait(struct ledger *l, int timeout_ms,
			void (*fn)(const char *name, enum account_state state, void *data),
			void *data, char *err, size_t errlen);

/* A handle that lost its server tries again after a growing pause, at
 * most this long: leases must let a cut-off owner come back within it. */
#define LEDGER_RECONNECT_MAX_MS 5000

/* true when spec names a ledger several gateways share (PostgreSQL). */
bool ledger_spec_is_shared(const char *spec);

#endif
