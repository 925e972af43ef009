/* mailferryd — the gateway daemon: transparent listeners, io_uring
 * workers, splice relay. Signals: SIGTERM/SIGINT drain and exit, SIGHUP
 * reloads the configuration. */
#include "admin_cmds.h"
#include "admin_server.h"
#include "banner.h"
#include "config.h"
#include "daemon.h"
#include "copy_lease.h"
#include "ledger.h"
#include "metrics_http.h"
#include "state_watch.h"
#include "listener.h"
#include "heartbeat.h"
#include "log.h"
#include "migrator.h"
#include "tls.h"
#include "mf.h"
#include "privdrop.h"
#include "syn_gate.h"
#include "worker.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CONFIG "/etc/mailferry/mailferry.conf"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mailferryd [-c FILE] [-t]\n"
		"  -c FILE  configuration (default " DEFAULT_CONFIG ")\n"
		"  -t       check the configuration and exit\n"
		"Signals: SIGTERM drains sessions and exits, SIGHUP reloads FILE.\n");
}

/* Every session costs two sockets and, while moving data, two pipe fds
 * per direction: take all the descriptors the hard limit allows. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

#define PROBE_TIMEOUT_MS 3000

struct probe_job {
	struct mf_daemon *d;
	struct mf_config cfg;
};

/* Learns the sources' greetings off the main thread (a dead source costs
 * PROBE_TIMEOUT_MS per port) and hands them to the workers like a reload. */
static void *probe_main(void *arg)
{
	struct probe_job *job = arg;
	struct mf_daemon *d = job->d;
	struct banner_set *set = banner_set_probe(&job->cfg, PROBE_TIMEOUT_MS), *old;
	unsigned int n, ok;

	free(job);
	if (set == NULL) {
		mf_log_warn("banner probe: out of memory");
		return NULL;
	}
	n = banner_set_count(set, &ok);
	pthread_mutex_lock(&d->lock);
	old = d->banners;
	d->banners = set;
	d->cfg_gen++;
	pthread_mutex_unlock(&d->lock);
	banner_set_unref(old);
	daemon_wake_workers(d);
	mf_log_info("banners probed=%u answered=%u", n, ok);
	return NULL;
}

static void wait_probe(struct mf_daemon *d)
{
	if (d->probe_started) {
		pthread_join(d->probe_thread, NULL);
		d->probe_started = false;
	}
}

static void start_probe(struct mf_daemon *d)
{
	struct probe_job *job = malloc(sizeof(*job));

	wait_probe(d);
	if (job == NULL) {
		mf_log_warn("banner probe: out of memory");
		return;
	}
	job->d = d;
	pthread_mutex_lock(&d->lock);
	job->cfg = d->cfg;
	pthread_mutex_unlock(&d->lock);
	if (pthread_create(&d->probe_thread, NULL, probe_main, job) != 0) {
		mf_log_warn("banner probe: %s", strerror(errno));
		free(job);
		return;
	}
	d->probe_started = true;
}

static bool listen_changed(const struct mf_config *a, const struct mf_config *b)
{
	return a->listen_port != b->listen_port ||
	       !mf_addr_equal(&a->listen4, &b->listen4) ||
	       !mf_addr_equal(&a->listen6, &b->listen6) || a->workers != b->workers;
}

static void reload(struct mf_daemon *d)
{
	struct mf_config *next = malloc(sizeof(*next));
	struct tls_ctxs *tls, *old_tls;
	char err[256];

	if (next == NULL) {
		mf_log_err("reload: out of memory");
		return;
	}
	if (mf_config_load(d->config_path, next, err, sizeof(err)) != MF_OK) {
		mf_log_err("reload failed, keeping the running configuration: %s", err);
		free(next);
		return;
	}
	/* Certificates are re-read too: renewing one is a reload. */
	if (tls_ctxs_load(next, &tls, err, sizeof(err)) != MF_OK) {
		mf_log_err("reload failed, keeping the running configuration: %s", err);
		free(next);
		return;
	}
	pthread_mutex_lock(&d->lock);
	old_tls = d->tls;
	d->tls = tls;
	if (listen_changed(&d->cfg, next))
		mf_log_warn("reload: listen addresses, port and workers change only at restart");
	if (strcmp(d->cfg.admin_socket, next->admin_socket) != 0)
		mf_log_warn("reload: [admin] socket changes only at restart");
	memcpy(next->admin_socket, d->cfg.admin_socket, sizeof(next->admin_socket));
	next->listen_port = d->cfg.listen_port;
	next->listen4 = d->cfg.listen4;
	next->listen6 = d->cfg.listen6;
	next->workers = d->cfg.workers;
	memcpy(next->user, d->cfg.user, sizeof(next->user)); /* root is gone */
	d->cfg = *next;
	d->cfg_gen++;
	pthread_mutex_unlock(&d->lock);
	tls_ctxs_unref(old_tls);
	mf_log_open("mailferryd", next->log_target == MF_LOG_SYSLOG, next->log_debug);
	free(next);
	daemon_wake_workers(d);
	mf_log_info("reloaded config=%s", d->config_path);
	start_probe(d);
}

/* The admin's pause survives restarts: copying stays paused until
 * `mailferry resume`. */
static int load_pause(struct mf_daemon *d, char *err, size_t errlen)
{
	struct ledger *l;
	bool paused = false;
	int rc;

	if (ledger_open(d->cfg.ledger_path, &l, err, errlen) != MF_OK)
		return MF_ERROR;
	rc = admin_paused_load(l, &paused, err, errlen);
	ledger_close(l);
	if (rc == MF_OK && paused) {
		login_queue_set_paused(&d->logins, true);
		mf_log_info("migrate paused=yes (mailferry resume starts copying again)");
	}
	return rc;
}

static unsigned int worker_count(const struct mf_config *cfg)
{
	long n;

	if (cfg->workers > 0)
		return cfg->workers;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned int)n : 1;
}

int main(int argc, char **argv)
{
	struct mf_daemon d;
	struct syn_gate gate;
	struct admin_server *admin = NULL;
	struct admin_cmds admin_cmds;
	bool gate_up = false;
	sigset_t sigs;
	char err[256];
	bool check_only = false;
	unsigned int started = 0;
	uid_t uid = 0;
	gid_t gid = 0;
	int opt, status = EXIT_FAILURE;

	memset(&d, 0, sizeof(d));
	admin_cmds_init(&admin_cmds, &d, (int64_t)time(NULL));
	if (tls_init_wiping_allocator() != MF_OK) {
		fprintf(stderr, "mailferryd: OpenSSL allocator already in use\n");
		return EXIT_FAILURE;
	}
	d.config_path = DEFAULT_CONFIG;
	while ((opt = getopt(argc, argv, "c:th")) != -1) {
		switch (opt) {
		case 'c':
			d.config_path = optarg;
			break;
		case 't':
			check_only = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (mf_config_load(d.config_path, &d.cfg, err, sizeof(err)) != MF_OK) {
		fprintf(stderr, "mailferryd: %s\n", err);
		return EXIT_FAILURE;
	}
	/* The front ends route every login and recipient by the ledger, and
	 * fail = auto keeps its mode there: a ledger that cannot be opened
	 * must stop the start, not fail each login later. */
	if (d.cfg.n_imap_ports > 0 || d.cfg.n_pop3_ports > 0 || d.cfg.n_smtp_ports > 0 ||
	    d.cfg.n_submission_ports > 0 || d.cfg.fail == MF_FAIL_AUTO) {
		struct ledger *l;

		if (ledger_open(d.cfg.ledger_path, &l, err, sizeof(err)) != MF_OK) {
			fprintf(stderr, "mailferryd: ledger: %s\n", err);
			return EXIT_FAILURE;
		}
		ledger_close(l);
	}
	if (tls_ctxs_load(&d.cfg, &d.tls, err, sizeof(err)) != MF_OK) {
		fprintf(stderr, "mailferryd: %s\n", err);
		return EXIT_FAILURE;
	}
	if (d.cfg.user[0] != '\0') {
		if (privdrop_lookup(d.cfg.user, &uid, &gid, err, sizeof(err)) != MF_OK ||
		    ((d.cfg.n_imap_ports > 0 || d.cfg.n_pop3_ports > 0 ||
		      d.cfg.fail == MF_FAIL_AUTO) && !check_only &&
		     !ledger_spec_is_shared(d.cfg.ledger_path) && /* no file to hand over */
		     privdrop_give(d.cfg.ledger_path, uid, gid, err, sizeof(err)) != MF_OK)) {
			fprintf(stderr, "mailferryd: [gateway] user: %s\n", err);
			tls_ctxs_unref(d.tls);
			return EXIT_FAILURE;
		}
		/* The copy's state files are created after the switch: the
		 * directory is made here, as root, and handed over. */
		if (d.cfg.migrate_enabled && !check_only) {
			int rc = MF_OK;

			if (mkdir(d.cfg.migrate_state_dir, 0700) != 0 && errno != EEXIST)
				rc = mf_err(err, sizeof(err), "%s", strerror(errno));
			if (rc == MF_OK)
				rc = privdrop_give(d.cfg.migrate_state_dir, uid, gid, err,
						   sizeof(err));
			if (rc != MF_OK) {
				fprintf(stderr, "mailferryd: [migrate] state_dir %s: %s\n",
					d.cfg.migrate_state_dir, err);
				tls_ctxs_unref(d.tls);
				return EXIT_FAILURE;
			}
		}
	}
	if (check_only) {
		tls_ctxs_unref(d.tls);
		printf("mailferryd: %s: configuration ok\n", d.config_path);
		return EXIT_SUCCESS;
	}
	mf_log_open("mailferryd", d.cfg.log_target == MF_LOG_SYSLOG, d.cfg.log_debug);
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	/* Blocked before any thread exists, so only sigwaitinfo() sees them. */
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	pthread_mutex_init(&d.lock, NULL);
	pthread_mutex_init(&d.conn_lock, NULL);
	{
		uint64_t seed = 0;

		if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
			seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL;
		addr_count_init(&d.conns, seed);
	}
	atomic_init(&d.stopping, false);

	d.n_workers = worker_count(&d.cfg);
	cutover_init(&d.cutover, d.n_workers);
	/* A shared ledger's cache is trusted only once its feed listens. On
	 * SQLite it never is: `mailferry accounts set-state` writes the file
	 * from another process, which no cache here would hear of, and a
	 * local read costs microseconds; the cache then only keeps the final
	 * states to route by should the file become unreadable. */
	if (route_cache_init(&d.routes, d.cfg.route_cache_size, d.cfg.route_cache_ttl_ms,
			     false) != MF_OK) {
		mf_log_err("route cache: out of memory");
		goto out_cutover;
	}
	/* A shard per worker, then one per copy thread (stats.h). */
	{
		unsigned int copiers = d.cfg.migrate_enabled ? d.cfg.migrate_workers : 0;

		if (stats_init(&d.stats, d.n_workers + copiers, copiers) != MF_OK) {
			mf_log_err("counters: out of memory");
			goto out_cache;
		}
	}
	/* [migrate] is read once: the front ends test d.migrate unlocked. */
	if (d.cfg.migrate_enabled) {
		if (login_queue_init(&d.logins, d.cfg.migrate_queue, err, sizeof(err)) != MF_OK) {
			mf_log_err("migrate: %s", err);
			goto out_cache;
		}
		d.migrate_retry_after_s = d.cfg.migrate_retry_after_s;
		d.migrate_retry_max_s = d.cfg.migrate_retry_max_s;
		d.migrate_strategy = d.cfg.migrate_strategy;
		d.migrate_immediate_wait_ms = d.cfg.migrate_immediate_wait_ms;
		if (acct_sessions_init(&d.acct_sessions, 4096) != MF_OK) {
			mf_log_err("migrate: out of memory");
			login_queue_destroy(&d.logins);
			goto out_cache;
		}
		d.migrate = true;
		if (load_pause(&d, err, sizeof(err)) != MF_OK) {
			mf_log_err("migrate: %s", err);
			goto out;
		}
	}
	d.workers = calloc(d.n_workers, sizeof(*d.workers));
	if (d.workers == NULL)
		goto out;
	for (unsigned int i = 0; i < d.n_workers; i++) {
		d.workers[i] = calloc(1, sizeof(struct worker)); /* malloc: 16-byte aligned */
		if (d.workers[i] == NULL ||
		    worker_init(d.workers[i], &d, i, err, sizeof(err)) != MF_OK) {
			mf_log_err("worker %u: %s", i, d.workers[i] ? err : "out of memory");
			free(d.workers[i]);
			d.n_workers = i;
			goto out_workers;
		}
	}
	if (listener_enable_migration(err, sizeof(err)) != MF_OK)
		mf_log_warn("restart hand-over: %s", err);
	if (listener_disable_early_demux(err, sizeof(err)) != MF_OK)
		mf_log_warn("early demux stays on: %s", err);
	/* The gate binds the queue before the workers run: SYNs it accepts
	 * wait in the listeners' backlogs, which exist since worker_init. */
	/* Listen mode has no rules and no queue: with the daemon down
	 * nothing listens on the old address, so nothing reaches the old
	 * server behind our back (fail-closed by construction). */
	if (d.cfg.intercept == MF_INTERCEPT_TPROXY) {
		if (syn_gate_init(&gate, &d, err, sizeof(err)) != MF_OK) {
			mf_log_err("syn gate: %s", err);
			goto out_workers;
		}
		gate_up = true;
	}
	/* Bound as root (the file is root's, 0600); its directory, if made
	 * here, goes to the user the daemon becomes, who removes the socket
	 * at exit. */
	if (admin_server_open(d.cfg.admin_socket, uid, gid, &admin, err, sizeof(err)) != MF_OK) {
		mf_log_err("%s", err);
		goto out_workers;
	}
	/* Everything that needs root is open: drop it before the first
	 * thread, so every thread has the reduced set. */
	if (d.cfg.user[0] != '\0') {
		if (privdrop_to(uid, gid, err, sizeof(err)) != MF_OK) {
			mf_log_err("dropping privileges: %s", err);
			goto out_workers;
		}
		mf_log_info("privileges user=%s uid=%u caps=cap_net_admin,cap_net_raw",
			    d.cfg.user, (unsigned int)uid);
	}
	if (heartbeat_start(&d, &d.heartbeat, err, sizeof(err)) != MF_OK) {
		mf_log_err("%s", err);
		goto out_workers;
	}
	if (state_watch_start(&d, &d.watch, err, sizeof(err)) != MF_OK) {
		mf_log_err("ledger changes: %s", err);
		goto out_workers;
	}
	if (d.migrate) {
		struct copy_lease_cfg lc = {
			.ledger_spec = d.cfg.ledger_path, .owner = d.cfg.gateway_id,
			.lease_ms = d.cfg.lease_ms, .n_slots = d.cfg.migrate_workers,
			.routes = &d.routes, .stopping = &d.stopping,
		};

		if (copy_lease_start(&lc, &d.lease, err, sizeof(err)) != MF_OK) {
			mf_log_err("migrate: copy jobs: %s", err);
			goto out_workers;
		}
	}
	/* Before the first login can queue an event, and after the drop:
	 * the state files belong to the user the daemon runs as. */
	if (d.migrate && migrator_start(&d, &d.migrator, err, sizeof(err)) != MF_OK) {
		mf_log_err("migrate: %s", err);
		goto out_workers;
	}
	for (; started < d.n_workers; started++) {
		if (worker_start(d.workers[started]) != MF_OK) {
			mf_log_err("worker %u: thread: %s", started, strerror(errno));
			atomic_store(&d.stopping, true);
			daemon_wake_workers(&d);
			goto out_join;
		}
	}
	if (admin_server_start(admin, admin_cmds_handle, admin_cmds_tick, &admin_cmds, err,
			       sizeof(err)) != MF_OK) {
		mf_log_err("%s", err);
		atomic_store(&d.stopping, true);
		daemon_wake_workers(&d);
		goto out_join;
	}
	if (gate_up && syn_gate_start(&gate) != MF_OK) {
		mf_log_err("syn gate: thread: %s", strerror(errno));
		atomic_store(&d.stopping, true);
		daemon_wake_workers(&d);
		goto out_join;
	}
	mf_log_info("started workers=%u port=%u config=%s", d.n_workers,
		    d.cfg.listen_port, d.config_path);
	/* [metrics] is read once, at start (a reload does not move it). */
	if (d.cfg.metrics_on &&
	    metrics_server_start(&d.cfg, &d.stats, &d.metrics, err, sizeof(err)) != MF_OK) {
		mf_log_err("%s", err);
		atomic_store(&d.stopping, true);
		daemon_wake_workers(&d);
		goto out_join;
	}
	start_probe(&d);

	for (;;) {
		int sig = sigwaitinfo(&sigs, NULL);

		if (sig == SIGHUP) {
			reload(&d);
		} else if (sig == SIGTERM || sig == SIGINT) {
			mf_log_info("stopping signal=%s", sig == SIGTERM ? "TERM" : "INT");
			/* A successor may be waiting for the queue. */
			if (gate_up)
				syn_gate_release(&gate);
			/* No copy starts while sessions drain; queued
			 * passwords are wiped now. */
			if (d.migrate) {
				login_queue_stop(&d.logins);
				/* A copy stops at its next checkpoint, so a
				 * successor can take the account over. */
				migrator_cancel(d.migrator);
			}
			atomic_store(&d.stopping, true);
			daemon_wake_workers(&d);
			break;
		} else if (sig < 0 && errno != EINTR) {
			mf_log_err("sigwaitinfo: %s", strerror(errno));
			atomic_store(&d.stopping, true);
			daemon_wake_workers(&d);
			break;
		}
	}
	status = EXIT_SUCCESS;
out_join:
	/* First: it reads the workers and the login queue. */
	admin_server_stop(admin);
	admin = NULL;
	metrics_server_stop(d.metrics);
	wait_probe(&d);
	for (unsigned int i = 0; i < started; i++) {
		worker_join(d.workers[i]);
		if (d.workers[i]->fatal_errno != 0)
			status = EXIT_FAILURE;
	}
out_workers:
	admin_server_stop(admin);
	admin_cmds_destroy(&admin_cmds);
	/* Before the workers' eventfds close: a copy in cutover wakes them.
	 * Waits for a copy phase that is running (bounded by its timeouts). */
	state_watch_stop(d.watch);
	migrator_stop(d.migrator);
	copy_lease_stop(d.lease);
	/* After the copies: its last beat says stopped, nothing running. */
	heartbeat_stop(d.heartbeat);
	/* Last to go: while sessions drain it still drops new SYNs in
	 * fail-closed mode; once its socket closes, the rules' bypass flag
	 * decides for it. */
	if (gate_up)
		syn_gate_destroy(&gate);
	for (unsigned int i = 0; i < d.n_workers; i++) {
		worker_destroy(d.workers[i]);
		free(d.workers[i]);
	}
	free(d.workers);
out:
	if (d.migrate) {
		login_queue_destroy(&d.logins);
		acct_sessions_destroy(&d.acct_sessions);
	}
out_cache:
	route_cache_destroy(&d.routes);
out_cutover:
	cutover_destroy(&d.cutover);
	tls_ctxs_unref(d.tls);
	banner_set_unref(d.banners);
	stats_destroy(&d.stats);
	addr_count_destroy(&d.conns);
	pthread_mutex_destroy(&d.conn_lock);
	pthread_mutex_destroy(&d.lock);
	mf_log_info("exited status=%d", status);
	mf_log_close();
	return status;
}
