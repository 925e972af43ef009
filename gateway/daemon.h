/* daemon.h — mailferryd's top-level context: the one place with state
 * shared between threads. Workers read it only under the lock, on a wake-up
 * (reload, stop), never on the relay's hot path. */
#ifndef MF_DAEMON_H
#define MF_DAEMON_H

#include "acct_sessions.h"
#include "addr_count.h"
#include "config.h"
#include "cutover.h"
#include "login_event.h"
#include "stats.h"
#include "route_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct worker;
struct tls_ctxs;
struct banner_set;
struct migrator;
struct metrics_server;
struct copy_lease;
struct state_watch;

struct mf_daemon {
	const char *config_path;
	pthread_mutex_t lock;      /* guards cfg and cfg_gen */
	struct mf_config cfg;
	unsigned int cfg_gen;      /* bumped by each successful reload */
	struct tls_ctxs *tls;      /* from cfg's [tls]; NULL without; guarded by lock */
	struct banner_set *banners; /* the sources' greetings; guarded by lock */
	pthread_t probe_thread;    /* the last banner probe (banner.h) */
	/* Live sessions per client address, all workers: the workers count,
	 * the SYN gate reads (max_sessions_per_client). */
	pthread_mutex_t conn_lock;
	struct addr_count conns;
	bool probe_started;
	atomic_bool stopping;      /* SIGTERM seen: drain and exit */
	struct worker **workers;
	unsigned int n_workers;
	/* [migrate] enabled at start (a reload does not start or stop it):
	 * the front ends push login events, the migrator's threads copy. */
	bool migrate;
	unsigned int migrate_retry_after_s; /* read with migrate, once */
	unsigned int migrate_retry_max_s;
	enum mf_migrate_strategy migrate_strategy;   /* read with migrate, once */
	unsigned int migrate_immediate_wait_ms;
	/* Sessions relayed to the source per account (after-logout only). */
	struct acct_sessions acct_sessions;
	struct login_queue logins;
	struct cutover_board cutover;  /* always set up: the change feed uses it too */
	struct migrator *migrator;
	/* Counters: shard i < n_workers is worker i's, then one per
	 * [migrate] worker (stats.h); read by the metrics server. */
	struct stats stats;
	struct metrics_server *metrics;
	/* Account states routing reads (route_cache.h), kept current by the
	 * change feed of a shared ledger (state_watch.h) or by this process's
	 * own flips; copy-job leases of this gateway (copy_lease.h). */
	struct route_cache routes;
	struct state_watch *watch;
	struct copy_lease *lease;
	struct heartbeat *heartbeat; /* this gateway's beat in the ledger */
};

/* Wake every worker so it re-reads cfg_gen and stopping. */
void daemon_wake_workers(struct mf_daemon *d);

#endif
