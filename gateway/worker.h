/* worker.h — one thread, one io_uring, its own listeners and sessions.
 *
 * Nothing here is shared with other workers: sessions, pipes and timers
 * belong to the worker whose ring accepted the connection. */
#ifndef MF_WORKER_H
#define MF_WORKER_H

#include "addr_count.h"
#include "buf_ring.h"
#include "config.h"
#include "pipe_pool.h"

#include <liburing.h>
#include <linux/time_types.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct mf_daemon;
struct session;
struct relay_dir;
struct ledger;
struct tls_ctxs;
struct banner_set;
union mf_sockaddr;

/* Tunables a worker copies from the daemon's config at start and reload. */
struct worker_tunables {
	unsigned int connect_timeout_ms;
	unsigned int idle_timeout_ms;
	unsigned int drain_timeout_ms;
	unsigned int max_sessions;
	int upstream_source;
	uint16_t listen_port;
	/* Listen mode: the address a source really answers at now
	 * (mf_config_real_source); n_moved 0 in tproxy mode. */
	struct mf_addr moved_from[MF_MAX_SOURCES], moved_to[MF_MAX_SOURCES];
	unsigned int n_moved;
	/* IMAP and POP3 front ends */
	uint16_t imap_ports[MF_MAX_PORTS];
	unsigned int n_imap_ports;
	uint16_t pop3_ports[MF_MAX_PORTS];
	unsigned int n_pop3_ports;
	uint16_t smtp_ports[MF_MAX_PORTS];
	unsigned int n_smtp_ports;
	uint16_t submission_ports[MF_MAX_PORTS];
	unsigned int n_submission_ports;
	bool smtp_xclient;
	unsigned int preauth_timeout_ms;
	unsigned int preauth_max_errors;
	unsigned int preauth_per_client; /* per worker, see addr_count.h */
	bool forward_client_address;
	unsigned int max_sessions_per_client;
	struct mf_addr dest4, dest6;
	char default_domain[MF_DOMAIN_MAX + 1];
	bool domain_equivalence;
	/* TLS front ends and backend legs */
	uint16_t imaps_ports[MF_MAX_PORTS];
	unsigned int n_imaps_ports;
	uint16_t pop3s_ports[MF_MAX_PORTS];
	unsigned int n_pop3s_ports;
	uint16_t smtps_ports[MF_MAX_PORTS];
	unsigned int n_smtps_ports;
	int backend_tls;               /* enum mf_backend_tls */
	char ledger_path[MF_PATH_MAX]; /* read once, at the first open */
	char gateway_id[64];           /* recorded with each login */
};

struct listener_slot {
	struct worker *w;
	int fd;
	bool armed;
} __attribute__((aligned(16)));

struct worker {
	struct io_uring ring;
	struct mf_daemon *d;
	unsigned int id;
	pthread_t thread;
	/* tproxy: [0] IPv4, [1] IPv6 (fd -1 if absent); listen: one per
	 * source address and mail port. */
	struct listener_slot *listeners;
	unsigned int n_listeners;
	int wake_fd;                       /* eventfd the daemon writes */
	uint64_t wake_buf;
	struct __kernel_timespec tick_ts;
	unsigned int cfg_gen;
	struct worker_tunables t;
	struct pipe_pool pipes;
	struct buf_ring bufs;              /* bufs.br NULL: splice only */

	/* Sessions, least recently active first: the idle sweep stops at the
	 * first one that is still fresh. */
	struct session *lru_head, *lru_tail;
	unsigned int n_sessions;
	/* Pre-auth front-end sessions per client address (this worker's). */
	struct addr_count preauth;
	/* Relay directions waiting for a pipe, oldest first. */
	struct relay_dir *pipe_wait_head, *pipe_wait_tail;

	uint64_t now_ms;
	bool draining;
	uint64_t drain_deadline_ms;
	bool exit_loop;
	bool accept_paused;                /* EMFILE: re-arm at the next tick */
	bool ring_disabled;                /* created R_DISABLED: enable in-thread */
	int fatal_errno;
	struct ledger *ledger;             /* this thread's handle, opened on first use */
	struct tls_ctxs *tls;              /* a reference to the daemon's, or NULL */
	struct banner_set *banners;        /* likewise */
	uint64_t ledger_retry_ms;          /* after a failed open, not before this */
	/* Logins the source accepted in this event-loop round, written to
	 * the ledger in one transaction at the end of the round. */
	struct ledger_login *logins;
	unsigned int n_logins;
} __attribute__((aligned(16)));

/* Listen mode: replaces the address of sa (a source as a client reached
 * it) with where that source answers now; tproxy mode: leaves sa alone. */
void worker_real_source(const struct worker *w, union mf_sockaddr *sa);

/* Opens the ring and the listeners. MF_OK or MF_ERROR with err. */
int worker_init(struct worker *w, struct mf_daemon *d, unsigned int id,
		char *err, size_t errlen);
int worker_start(struct worker *w);   /* spawns the thread */
void worker_join(struct worker *w);
void worker_destroy(struct worker *w);

/* An SQE, submitting to make room if the SQ ring is full. Never NULL. */
struct io_uring_sqe *worker_sqe(struct worker *w);

/* Pipe hand-out with a fair wait list: MF_OK with the pipe, MF_AGAIN when
 * the direction was queued (it is resumed by relay_pipe_ready()), MF_ERROR. */
int worker_pipe_get(struct worker *w, struct relay_dir *rd, struct mf_pipe **p_r);
void worker_pipe_put(struct worker *w, struct mf_pipe *p, bool empty);
void worker_pipe_unwait(struct worker *w, struct relay_dir *rd);

/* The worker's ledger handle, opened in the worker thread at first use;
 * NULL (logged, retried at most once a second) when it cannot be opened. */
struct ledger *worker_ledger(struct worker *w);

/* Queues a source-verified login for the ledger (worker_flush_logins). */
void worker_login_observed(struct worker *w, const char *user, const char *client);

/* Writes the queued logins in one transaction (logged when it fails). */
void worker_flush_logins(struct worker *w);

void worker_lru_touch(struct worker *w, struct session *s);
void worker_lru_remove(struct worker *w, struct session *s);

#endif
