/* stats.h — the daemon's counters: sessions, bytes, logins, copies.
 *
 * No lock on the hot path: the counters live in shards, one per thread
 * that writes (each io_uring worker, each migration thread), cache-line
 * aligned so two writers never share a line. A shard has exactly one
 * writer, so an update is a relaxed load and a relaxed store (a plain
 * add on x86, no locked instruction); readers (the metrics server, the
 * admin socket) sum every shard with relaxed loads. A snapshot is
 * therefore not one instant across shards, but every counter in it is a
 * value that counter really had, and counters never go backwards.
 *
 * The progress of running copies (account, phase, messages done/planned)
 * changes once per batch, not per byte: one small mutex per migration
 * thread's slot guards it. */
#ifndef MF_STATS_H
#define MF_STATS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "account.h"

/* What a session speaks; STATS_P_OTHER is a protocol-blind relay. */
enum stats_proto {
	STATS_P_IMAP = 0,
	STATS_P_POP3,
	STATS_P_SMTP,        /* MTA ports (25): no login, routed per RCPT */
	STATS_P_SUBMISSION,
	STATS_P_OTHER,
};
#define STATS_PROTO_COUNT (STATS_P_OTHER + 1)

/* Where a session is relayed; NONE until routed (pre-auth, refused
 * logins, and SMTP MTA sessions, which route each transaction). */
enum stats_backend { STATS_B_NONE = 0, STATS_B_SOURCE, STATS_B_DESTINATION };
#define STATS_BACKEND_COUNT (STATS_B_DESTINATION + 1)

/* ok: the backend accepted; fail: the backend said no (bad password);
 * refused: the gateway answered "try again" without a backend verdict
 * (CUTOVER, ledger down, backend unreachable or misbehaving). */
enum stats_login { STATS_L_OK = 0, STATS_L_FAIL, STATS_L_REFUSED };
#define STATS_LOGIN_COUNT (STATS_L_REFUSED + 1)

/* A front end's routing decision as the backend label (a session that
 * is refused, AR_UNAVAILABLE, relays nowhere: NONE). */
static inline enum stats_backend stats_backend_of_route(int route)
{
	return route == AR_SOURCE ? STATS_B_SOURCE
	       : route == AR_DESTINATION ? STATS_B_DESTINATION : STATS_B_NONE;
}

/* [0] client to server, [1] server to client (as session dir[]). */
#define STATS_DIR_COUNT 2

/* interrupted: a shutdown stopped it, or another daemon holds the
 * account's copy (back to SEEN; not a failure, no duration observed). */
enum stats_copy_result { STATS_C_MIGRATED = 0, STATS_C_FAILED, STATS_C_INTERRUPTED };
#define STATS_COPY_RESULT_COUNT (STATS_C_INTERRUPTED + 1)

#define STATS_HIST_MAX 16 /* finite bucket bounds at most; +Inf is extra */

/* Fixed upper bounds (seconds, ascending) of a histogram's buckets. */
struct stats_hist_spec {
	unsigned int n;
	double le[STATS_HIST_MAX];
};
extern const struct stats_hist_spec stats_login_latency_spec;
extern const struct stats_hist_spec stats_copy_duration_spec;
extern const struct stats_hist_spec stats_cutover_duration_spec;

/* Per-bucket counts (not cumulative: bucket[i] counts le[i-1] < v <=
 * le[i]; bucket[n] the rest), their sum in microseconds and count. */
struct stats_hist {
	_Atomic uint64_t bucket[STATS_HIST_MAX + 1];
	_Atomic uint64_t sum_us;
	_Atomic uint64_t count;
};

struct stats_shard {
	_Atomic uint64_t sessions_total[STATS_PROTO_COUNT];
	/* Open now, by where the session currently relays (it moves from
	 * NONE to a backend when its login is relayed). Per shard it can
	 * only drop after it rose in the same shard. */
	_Atomic int64_t sessions_open[STATS_PROTO_COUNT][STATS_BACKEND_COUNT];
	_Atomic uint64_t sessions_relayed[STATS_PROTO_COUNT][STATS_BACKEND_COUNT];
	_Atomic uint64_t bytes[STATS_PROTO_COUNT][STATS_DIR_COUNT];
	_Atomic uint64_t logins[STATS_PROTO_COUNT][STATS_BACKEND_COUNT][STATS_LOGIN_COUNT];
	struct stats_hist login_latency[STATS_PROTO_COUNT];
	/* SMTP MTA transactions by backend, [0] accepted (2xx final reply)
	 * [1] not; recipients per backend, [0] routed [1] refused. */
	_Atomic uint64_t smtp_txns[STATS_BACKEND_COUNT][2];
	_Atomic uint64_t smtp_rcpts[STATS_BACKEND_COUNT][2];
	_Atomic uint64_t copies_started;
	_Atomic uint64_t copies_done[STATS_COPY_RESULT_COUNT];
	_Atomic uint64_t copy_messages;
	_Atomic uint64_t copy_bytes;
	struct stats_hist copy_duration;
	struct stats_hist cutover_duration;
} __attribute__((aligned(64)));

#define STATS_PHASE_MAX 16

/* One migration thread's account in progress (account[0] == 0: idle). */
struct stats_copy {
	char account[ACCOUNT_NAME_MAX + 1];
	char phase[STATS_PHASE_MAX];   /* "bulk", "delta" + mig_progress's phase */
	uint64_t messages, planned, bytes;
	unsigned int folder_index, folder_count;
	int64_t started;               /* unix seconds */
	/* Only for the counters: what this run of mig_run already added. */
	uint64_t run_messages, run_bytes;
};

struct stats_copy_slot {
	pthread_mutex_t lock;
	struct stats_copy c;
};

struct stats {
	unsigned int n_shards;
	struct stats_shard *shards;    /* n_shards, 64-byte aligned */
	unsigned int n_copy_slots;
	struct stats_copy_slot *copy_slots;
	int64_t started;               /* unix seconds of stats_init */
};

/* n_shards writers (one shard each), n_copy_slots migration threads.
 * MF_OK, or MF_ERROR (out of memory, or a count of 0 shards). */
int stats_init(struct stats *st, unsigned int n_shards, unsigned int n_copy_slots);
void stats_destroy(struct stats *st);

/* The shard for writer i (i < n_shards): hand it to one thread only. */
struct stats_shard *stats_shard(struct stats *st, unsigned int i);

/* --- writers (the shard's own thread only) ---------------------------- */

static inline void stats_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline void stats_gauge_add(_Atomic int64_t *g, int64_t n)
{
	atomic_store_explicit(g, atomic_load_explicit(g, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* A session started speaking proto (it is open, backend NONE). */
void stats_session_open(struct stats_shard *sh, enum stats_proto p);
/* It relays to b from now on (moves from its current backend). */
void stats_session_relay(struct stats_shard *sh, enum stats_proto p, enum stats_backend from,
			 enum stats_backend to);
void stats_session_close(struct stats_shard *sh, enum stats_proto p, enum stats_backend b);
/* A login attempt ended; latency_us from the client's command to the
 * backend's verdict (recorded for ok and fail, not for refused). */
void stats_login(struct stats_shard *sh, enum stats_proto p, enum stats_backend b,
		 enum stats_login r, uint64_t latency_us);

/* An SMTP transaction on an MTA port ended with a final reply (accepted:
 * 2xx): rcpts recipients routed to b, refused refused (451 for the other
 * backend, CUTOVER, or the backend's own refusal). */
void stats_smtp_txn(struct stats_shard *sh, enum stats_backend b, bool accepted,
		    unsigned int rcpts, unsigned int refused);

/* Records v (microseconds) in h with bounds spec. */
void stats_hist_observe(struct stats_hist *h, const struct stats_hist_spec *spec, uint64_t v_us);

/* Copy progress (migration thread `slot`, shard sh is its own). */
void stats_copy_begin(struct stats *st, unsigned int slot, struct stats_shard *sh,
		      const char *account, int64_t now);
void stats_copy_phase(struct stats *st, unsigned int slot, const char *phase);
/* A mig_run progress report: messages/bytes of this run so far. The
 * counters grow by what is new since the previous report of the run. */
void stats_copy_progress(struct stats *st, unsigned int slot, struct stats_shard *sh,
			 uint64_t messages, uint64_t bytes, uint64_t planned,
			 unsigned int folder_index, unsigned int folder_count);
/* A mig_run ended: the run's totals (its last report may lag). */
void stats_copy_run_end(struct stats *st, unsigned int slot, struct stats_shard *sh,
			uint64_t messages, uint64_t bytes);
void stats_copy_end(struct stats *st, unsigned int slot, struct stats_shard *sh,
		    enum stats_copy_result r, uint64_t duration_us);
/* A cutover ended MIGRATED after duration_us of the user refused. */
void stats_cutover_done(struct stats_shard *sh, uint64_t duration_us);

/* --- readers ----------------------------------------------------------- */

struct stats_hist_snap {
	uint64_t bucket[STATS_HIST_MAX + 1]; /* cumulative: bucket[i] = count(v <= le[i]) */
	uint64_t sum_us;
	uint64_t count;                      /* = bucket[n] (the +Inf bucket) */
};

struct stats_snapshot {
	uint64_t sessions_total[STATS_PROTO_COUNT];
	uint64_t sessions_open[STATS_PROTO_COUNT][STATS_BACKEND_COUNT];
	uint64_t sessions_relayed[STATS_PROTO_COUNT][STATS_BACKEND_COUNT];
	uint64_t bytes[STATS_PROTO_COUNT][STATS_DIR_COUNT];
	uint64_t logins[STATS_PROTO_COUNT][STATS_BACKEND_COUNT][STATS_LOGIN_COUNT];
	struct stats_hist_snap login_latency[STATS_PROTO_COUNT];
	uint64_t smtp_txns[STATS_BACKEND_COUNT][2];
	uint64_t smtp_rcpts[STATS_BACKEND_COUNT][2];
	uint64_t copies_started;
	uint64_t copies_done[STATS_COPY_RESULT_COUNT];
	uint64_t copy_messages, copy_bytes;
	struct stats_hist_snap copy_duration;
	struct stats_hist_snap cutover_duration;
	unsigned int n_copies;               /* running copies in copies[] */
	struct stats_copy *copies;           /* caller's array of n_copy_slots, or NULL */
	int64_t started;
};

/* Sums every shard into out. With copies non-NULL (room for
 * st->n_copy_slots entries), out->copies gets the running copies and
 * out->n_copies their number. The histograms come out cumulative with
 * count equal to the +Inf bucket even while writers race the reader. */
void stats_snapshot(const struct stats *st, struct stats_snapshot *out,
		    struct stats_copy *copies);

/* Label values: "imap", "pop3", "smtp", "submission", "other";
 * "none", "source", "destination"; "ok", "fail", "refused";
 * "migrated", "failed", "interrupted"; direction "client_to_server", "server_to_client". */
const char *stats_proto_name(enum stats_proto p);
const char *stats_backend_name(enum stats_backend b);
const char *stats_login_name(enum stats_login r);
const char *stats_copy_result_name(enum stats_copy_result r);
const char *stats_dir_name(unsigned int dir);

#endif
