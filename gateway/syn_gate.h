/* syn_gate.h — mailferryd's SYN gate: the verdict on each new diverted
 * flow, and the fail mode in the kernel.
 *
 * The rules (nft-rules/nft_gate.h) send every new-flow SYN from an
 * intercepted client to a source's mail port to NFQUEUE [intercept]
 * queue_num. One thread of its own (never an io_uring worker: a verdict
 * must not wait behind relaying) reads them through libnetfilter_queue's
 * libmnl API, with a copy range of just the headers, and answers:
 *   accept - the SYN goes on to the TPROXY rule and the listener
 *            (intercept);
 *   drop   - over the client's rate (syn_rate_per_client, a token bucket
 *            per address, syn_limit.h), or while the daemon drains in
 *            fail-closed mode (a drop, not a reset: the client
 *            retransmits and finds the next daemon).
 * Draining in fail-open mode accepts: the listeners are closed by then,
 * so tproxy does not match and the flow reaches the source.
 *
 * The same thread keeps the fail mode: at start and once a second it asks
 * fail_mode_effective() (fail = auto turns closed at the first CUTOVER or
 * MIGRATED account, recorded in the ledger) and puts the kernel's set
 * fail_closed in step with mf_rules_set_fail_closed() — netlink only,
 * nothing is ever run. It logs one line per change of mode and, when they
 * moved, its counters:
 *   syn_gate accepted=N dropped_rate=N dropped_drain=N unparsed=N */
#ifndef MF_SYN_GATE_H
#define MF_SYN_GATE_H

#include "direct_flows.h"
#include "flow_tally.h"
#include "syn_limit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mf_daemon;
struct ledger;
struct mnl_socket;

/* Addresses the rate limit remembers (syn_limit.h): 4 MiB of table. */
#define SYN_GATE_TABLE_SLOTS 65536
/* Bytes of each packet the kernel copies to us: IPv6 with a few
 * extension headers plus TCP up to its flags. */
#define SYN_GATE_COPY_RANGE 256

struct syn_gate_counters {
	uint64_t accepted, observed, dropped_rate, dropped_sessions, dropped_drain, unparsed;
};

struct syn_gate {
	struct mf_daemon *d;
	struct mnl_socket *nl;
	uint32_t portid;
	uint16_t queue_num;
	int wake_fd;          /* eventfd: syn_gate_stop */
	pthread_t thread;
	bool started;
	atomic_bool stop;
	char *buf;            /* receive buffer */
	struct syn_limit limit;
	struct ledger *ledger; /* fail = auto only */
	bool bound;           /* the queue is ours (else: a predecessor holds it) */
	uint64_t bind_retry_ms;
	int bind_errno;       /* of the last refused bind */
	bool closed;          /* fail-closed in force */
	bool applied;         /* the kernel's set says `closed` */
	bool apply_failing;   /* logged once until it works again */
	struct syn_gate_counters n, logged;
	struct flow_tally tally;
	bool tally_failing;   /* its last write to the ledger failed (logged) */
	struct direct_flows direct; /* kernel counts of flows past the gate */
	unsigned int direct_ticks;  /* ticks since the last drain */
	bool direct_failing;        /* its last drain failed (logged) */
};

/* Opens the ledger (fail = auto), works out the fail mode and sets it in
 * the kernel, opens the netlink socket and binds queue_num. Call after the
 * listeners exist: from the bind on, accepted SYNs need a listener.
 * Another process holding the queue is the mailferryd this one succeeds
 * (a restart or an upgrade): the thread binds as soon as that one lets go
 * (syn_gate_release), retrying every GATE_BIND_RETRY_MS. MF_OK or
 * MF_ERROR with err. */
int syn_gate_init(struct syn_gate *g, struct mf_daemon *d, char *err,
		  size_t errlen);

/* Starts the thread. MF_OK or MF_ERROR (errno). */
int syn_gate_start(struct syn_gate *g);

/* SIGTERM: lets go of the queue at once, so that a successor started
 * beside us binds it while we drain. Until it does, the rules' bypass flag
 * decides: pass when fail-open, drop when fail-closed (the client's SYN
 * retransmission then meets the successor). */
void syn_gate_release(struct syn_gate *g);

/* Stops and joins the thread (if started) and frees everything; the
 * queue is unbound when the socket closes, so from here the rules'
 * bypass flag decides (pass if fail-open, drop if fail-closed). */
void syn_gate_destroy(struct syn_gate *g);

#endif
