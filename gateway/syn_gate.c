#include "syn_gate.h"
#include "config.h"
#include "daemon.h"
#include "fail_mode.h"
#include "ledger.h"
#include "log.h"
#include "mf.h"
#include "rules.h"
#include "syn_packet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* A batch of queued SYNs per read; big enough for hundreds of them. */
#define GATE_BUF_SIZE (256 * 1024)
#define GATE_TICK_MS 1000
/* Ticks between drains of the kernel's direct-flow counters: the kernel
 * holds them meanwhile, so this only sets how fresh the ledger is. */
#define GATE_DIRECT_TICKS 5
/* Reads per wake-up before the tick gets its turn under a flood. */
#define GATE_READS_PER_WAKE 64
/* Packets the kernel holds for us before it drops (or, fail-open, passes). */
#define GATE_QUEUE_MAXLEN 4096
/* While a predecessor holds the queue: how often we try to take it. */
#define GATE_BIND_RETRY_MS 50

/* What the gate copies from the config at start and each tick (reload). */
struct gate_tunables {
	enum mf_fail_mode fail;
	unsigned int rate, burst;
	bool observe;
	uint32_t pass_mark;   /* gate_mark + 2: through to the source untouched */
	unsigned int max_sessions; /* per client address, 0: no limit */
};

static uint64_t clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* +1: syn_limit reserves 0 for "never". */
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 + 1;
}

static void load_tunables(struct syn_gate *g, struct gate_tunables *t)
{
	pthread_mutex_lock(&g->d->lock);
	t->fail = g->d->cfg.fail;
	t->rate = g->d->cfg.syn_rate_per_client;
	t->burst = g->d->cfg.syn_burst_per_client;
	t->observe = g->d->cfg.observe;
	t->max_sessions = g->d->cfg.max_sessions_per_client;
	t->pass_mark = g->d->cfg.gate_mark + 2;
	pthread_mutex_unlock(&g->d->lock);
}

/* ---- fail mode ------------------------------------------------------ */

/* Brings the kernel's set in step with g->closed; errors are logged once
 * and retried at every tick (the rules may be installed later). */
static void apply_mode(struct syn_gate *g)
{
	char err[512];

	if (g->applied)
		return;
	if (mf_rules_set_fail_closed(g->closed, err, sizeof(err)) != MF_OK) {
		if (!g->apply_failing)
			mf_log_err("syn_gate cannot set mode=%s: %s",
				   g->closed ? "closed" : "open", err);
		g->apply_failing = true;
		return;
	}
	if (g->apply_failing)
		mf_log_info("syn_gate mode=%s set", g->closed ? "closed" : "open");
	g->apply_failing = false;
	g->applied = true;
}

/* Asks the config and ledger which mode is in force. A ledger error keeps
 * the mode we had: never open up because a read failed. */
static int update_mode(struct syn_gate *g, const struct mf_config *cfg,
		       char *err, size_t errlen)
{
	bool closed, switched;

	if (fail_mode_effective(cfg, g->ledger, (int64_t)time(NULL), &closed,
				&switched, err, errlen) != MF_OK)
		return MF_ERROR;
	if (switched)
		mf_log_info("fail_mode switched mode=closed fail=auto "
			    "reason=an account is in CUTOVER or MIGRATED");
	if (closed != g->closed) {
		g->closed = closed;
		g->applied = false;
		mf_log_info("syn_gate mode=%s fail=%s", closed ? "closed" : "open",
			    fail_mode_name(cfg->fail));
	}
	return MF_OK;
}

/* The second's flow counts into the ledger (opened on first need: with
 * fail = open or closed nothing else needs it), then the subnets and
 * ports of a possibly reloaded config. Counts that could not be written
 * wait for the next tick. */
static void flush_tally(struct syn_gate *g, const struct mf_config *cfg)
{
	char err[512];

	if (g->tally.dirty && g->ledger == NULL &&
	    ledger_open(cfg->ledger_path, &g->ledger, err, sizeof(err)) != MF_OK) {
		if (!g->tally_failing)
			mf_log_err("syn_gate: flow counts: ledger: %s", err);
		g->tally_failing = true;
		return;
	}
	if (flow_tally_flush(&g->tally, g->ledger, (int64_t)time(NULL), err, sizeof(err)) != MF_OK) {
		if (!g->tally_failing)
			mf_log_err("syn_gate: flow counts: %s", err);
		g->tally_failing = true;
		return;
	}
	g->tally_failing = false;
	flow_tally_configure(&g->tally, cfg);
}

/* Flows that went to a source without meeting the gate, from the
 * kernel's counters into the ledger (direct_flows.h). */
static void drain_direct(struct syn_gate *g, const struct mf_config *cfg)
{
	char err[512];
	size_t n = 0;

	if (++g->direct_ticks < GATE_DIRECT_TICKS)
		return;
	g->direct_ticks = 0;
	if (g->ledger == NULL &&
	    ledger_open(cfg->ledger_path, &g->ledger, err, sizeof(err)) != MF_OK) {
		if (!g->direct_failing)
			mf_log_err("syn_gate: direct flows: ledger: %s", err);
		g->direct_failing = true;
		return;
	}
	if (direct_flows_collect(&g->direct, g->ledger, (int64_t)time(NULL), &n, err,
				 sizeof(err)) != MF_OK) {
		if (!g->direct_failing)
			mf_log_err("syn_gate: direct flows: %s", err);
		g->direct_failing = true;
		return;
	}
	g->direct_failing = false;
	if (n > 0)
		mf_log_info("direct_flows rows=%zu", n);
}

static void tick(struct syn_gate *g, struct gate_tunables *t)
{
	struct mf_config *cfg = malloc(sizeof(*cfg));
	char err[512];

	load_tunables(g, t);
	if (cfg == NULL) {
		mf_log_err("syn_gate: out of memory");
		return;
	}
	pthread_mutex_lock(&g->d->lock);
	*cfg = g->d->cfg;
	pthread_mutex_unlock(&g->d->lock);
	flush_tally(g, cfg);
	drain_direct(g, cfg);
	/* A reload to fail = auto needs a ledger we may not have opened. */
	if (cfg->fail == MF_FAIL_AUTO && g->ledger == NULL &&
	    ledger_open(cfg->ledger_path, &g->ledger, err, sizeof(err)) != MF_OK) {
		mf_log_err("syn_gate: ledger: %s", err);
	} else if (update_mode(g, cfg, err, sizeof(err)) != MF_OK) {
		mf_log_err("syn_gate: fail mode: %s", err);
	}
	free(cfg);
	apply_mode(g);
	if (memcmp(&g->n, &g->logged, sizeof(g->n)) != 0) {
		mf_log_info("syn_gate accepted=%llu observed=%llu dropped_rate=%llu "
			    "dropped_sessions=%llu dropped_drain=%llu unparsed=%llu",
			    (unsigned long long)g->n.accepted,
			    (unsigned long long)g->n.observed,
			    (unsigned long long)g->n.dropped_rate,
			    (unsigned long long)g->n.dropped_sessions,
			    (unsigned long long)g->n.dropped_drain,
			    (unsigned long long)g->n.unparsed);
		g->logged = g->n;
	}
}

/* ---- verdicts ------------------------------------------------------- */

/* NF_ACCEPT (on to TPROXY) or NF_DROP, and what it counts as. A packet we
 * cannot parse is accepted: the rules matched it as a new-flow SYN, and
 * the kernel, not we, is the judge of malformed packets. */
/* Live sessions of a client address, as the workers count them. */
static unsigned int sessions_of(struct syn_gate *g, const uint8_t src[16])
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };
	unsigned int n;

	memcpy(&sa.sin6_addr, src, 16);
	pthread_mutex_lock(&g->d->conn_lock);
	n = addr_count_get(&g->d->conns, (const struct sockaddr *)&sa);
	pthread_mutex_unlock(&g->d->conn_lock);
	return n;
}

static int decide(struct syn_gate *g, const struct gate_tunables *t,
		  const uint8_t *pkt, size_t len, uint32_t *mark_r)
{
	struct syn_packet sp;

	if (atomic_load(&g->d->stopping) && g->closed) {
		g->n.dropped_drain++;
		return NF_DROP;
	}
	if (syn_packet_parse(pkt, len, &sp) != MF_OK) {
		g->n.unparsed++;
		return NF_ACCEPT;
	}
	if (!syn_limit_take(&g->limit, sp.src, clock_ms(), t->rate, t->burst)) {
		g->n.dropped_rate++;
		return NF_DROP;
	}
	if (!t->observe && t->max_sessions > 0 && sessions_of(g, sp.src) >= t->max_sessions) {
		/* Held until one of its sessions ends: the retransmitted SYN
		 * gets another verdict. */
		g->n.dropped_sessions++;
		return NF_DROP;
	}
	(void)flow_tally_count(&g->tally, sp.src, sp.dport, t->observe);
	if (t->observe) {
		/* On to the source: the rules leave a flow with this mark
		 * (and its conntrack entry) alone. */
		g->n.observed++;
		*mark_r = t->pass_mark;
		return NF_ACCEPT;
	}
	g->n.accepted++;
	return NF_ACCEPT;
}

static void send_verdict(struct syn_gate *g, uint32_t id, int verdict, uint32_t mark)
{
	char buf[256];
	struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT, g->queue_num);

	nfq_nlmsg_verdict_put(nlh, (int)id, verdict);
	if (mark != 0)
		nfq_nlmsg_verdict_put_mark(nlh, mark);
	if (mnl_socket_sendto(g->nl, nlh, nlh->nlmsg_len) < 0)
		/* The packet stays queued until the socket closes; nothing
		 * better to do than say so. */
		mf_log_err("syn_gate verdict id=%u: %s", id, strerror(errno));
}

static void handle_packet(struct syn_gate *g, const struct gate_tunables *t,
			  const struct nlmsghdr *nlh)
{
	struct nlattr *attr[NFQA_MAX + 1];
	const struct nfqnl_msg_packet_hdr *ph;
	const uint8_t *payload = NULL;
	size_t len = 0;

	memset(attr, 0, sizeof(attr));
	if (nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == NULL ||
	    mnl_attr_get_payload_len(attr[NFQA_PACKET_HDR]) < sizeof(*ph)) {
		mf_log_warn("syn_gate: malformed queue message");
		return;
	}
	ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	if (attr[NFQA_PAYLOAD] != NULL) {
		payload = mnl_attr_get_payload(attr[NFQA_PAYLOAD]);
		len = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
	}
	uint32_t mark = 0;
	int verdict = decide(g, t, payload, len, &mark);

	send_verdict(g, ntohl(ph->packet_id), verdict, mark);
}

/* Walks the messages of one read: queued packets get their verdict, an
 * acknowledgement is reported through ack_r (0 or a negative errno; left
 * alone when there is none). */
static void dispatch(struct syn_gate *g, const struct gate_tunables *t,
		     const void *buf, size_t n, int *ack_r)
{
	const struct nlmsghdr *nlh = buf;
	int len = (int)n;

	while (mnl_nlmsg_ok(nlh, len)) {
		if (nlh->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

			if (ack_r != NULL && nlh->nlmsg_len >=
			    mnl_nlmsg_size(sizeof(*e)))
				*ack_r = e->error;
		} else if (nlh->nlmsg_type ==
			   ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET)) {
			handle_packet(g, t, nlh);
		}
		nlh = mnl_nlmsg_next(nlh, &len);
	}
}

static int receive(struct syn_gate *g, const struct gate_tunables *t, int flags,
		   int *ack_r)
{
	ssize_t n = recv(mnl_socket_get_fd(g->nl), g->buf, GATE_BUF_SIZE, flags);

	if (n < 0)
		return -errno;
	dispatch(g, t, g->buf, (size_t)n, ack_r);
	return MF_OK;
}

static int bind_queue(struct syn_gate *g, char *err, size_t errlen);

/* Takes the queue once the predecessor has let go of it. */
static void retry_bind(struct syn_gate *g)
{
	char err[256];

	g->bind_retry_ms = clock_ms() + GATE_BIND_RETRY_MS;
	if (bind_queue(g, err, sizeof(err)) == MF_OK) {
		g->bound = true;
		mf_log_info("syn_gate queue=%u taken over", g->queue_num);
	}
}

static void *gate_main(void *arg)
{
	struct syn_gate *g = arg;
	struct pollfd pfd[2] = {
		{ .fd = mnl_socket_get_fd(g->nl), .events = POLLIN },
		{ .fd = g->wake_fd, .events = POLLIN },
	};
	struct gate_tunables t;
	uint64_t next_tick = clock_ms() + GATE_TICK_MS;

	load_tunables(g, &t);
	while (!atomic_load(&g->stop)) {
		uint64_t now = clock_ms(), until = next_tick;
		int rc;

		if (now >= next_tick) {
			tick(g, &t);
			next_tick = clock_ms() + GATE_TICK_MS;
			continue;
		}
		if (!g->bound) {
			if (now >= g->bind_retry_ms) {
				retry_bind(g);
				continue;
			}
			if (g->bind_retry_ms < until)
				until = g->bind_retry_ms;
		}
		if (poll(pfd, 2, (int)(until - now)) < 0) {
			if (errno == EINTR)
				continue;
			mf_log_err("syn_gate poll: %s", strerror(errno));
			break;
		}
		if (!(pfd[0].revents & POLLIN))
			continue;
		for (int i = 0; i < GATE_READS_PER_WAKE; i++) {
			rc = receive(g, &t, MSG_DONTWAIT, NULL);
			if (rc == -EAGAIN || rc == -EWOULDBLOCK)
				break;
			/* The kernel queue overflowed our socket: those SYNs
			 * were dropped (the clients retransmit). */
			if (rc == -ENOBUFS) {
				mf_log_warn("syn_gate: receive buffer overflowed");
				continue;
			}
			if (rc < 0) {
				mf_log_err("syn_gate recv: %s", strerror(-rc));
				break;
			}
		}
	}
	g->direct_ticks = GATE_DIRECT_TICKS; /* drain them too */
	tick(g, &t); /* last counters */
	/* Closing the socket unbinds the queue for a successor. */
	mnl_socket_close(g->nl);
	g->nl = NULL;
	return NULL;
}

/* ---- set-up --------------------------------------------------------- */

/* Binds the queue and sets its copy range and length in one request,
 * then waits (bounded) for the kernel's acknowledgement; a SYN that
 * arrives in between gets its verdict on the way. */
static int bind_queue(struct syn_gate *g, char *err, size_t errlen)
{
	char buf[512];
	struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, g->queue_num);
	struct gate_tunables t;
	int ack = 1;

	load_tunables(g, &t);
	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = (uint32_t)time(NULL);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, SYN_GATE_COPY_RANGE);
	nfq_nlmsg_cfg_put_qmaxlen(nlh, GATE_QUEUE_MAXLEN);
	if (mnl_socket_sendto(g->nl, nlh, nlh->nlmsg_len) < 0)
		return mf_err(err, errlen, "binding queue %u: %s", g->queue_num,
			      strerror(errno));
	/* The kernel answers within sendmsg(); a few reads are plenty. */
	for (int i = 0; i < 16 && ack == 1; i++) {
		struct pollfd pfd = { .fd = mnl_socket_get_fd(g->nl), .events = POLLIN };
		int rc;

		if (poll(&pfd, 1, 1000) <= 0)
			break;
		rc = receive(g, &t, MSG_DONTWAIT, &ack);
		if (rc < 0 && rc != -EAGAIN)
			return mf_err(err, errlen, "binding queue %u: %s",
				      g->queue_num, strerror(-rc));
	}
	if (ack == 1)
		return mf_err(err, errlen, "binding queue %u: no answer from the "
			      "kernel", g->queue_num);
	g->bind_errno = -ack;
	if (ack != 0)
		return mf_err(err, errlen, "binding queue %u: %s%s", g->queue_num,
			      strerror(-ack), ack == -EBUSY || ack == -EPERM ?
			      " (another process holds it)" : "");
	return MF_OK;
}

static int open_socket(struct syn_gate *g, char *err, size_t errlen)
{
	int one = 1;

	g->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (g->nl == NULL)
		return mf_err(err, errlen, "netlink: %s", strerror(errno));
	if (mnl_socket_bind(g->nl, 0, MNL_SOCKET_AUTOPID) < 0)
		return mf_err(err, errlen, "netlink bind: %s", strerror(errno));
	g->portid = mnl_socket_get_portid(g->nl);
	/* An overflow is reported once as ENOBUFS by default and then the
	 * socket goes on; we log it and go on, which is the same. */
	(void)mnl_socket_setsockopt(g->nl, NETLINK_NO_ENOBUFS, &one, sizeof(one));
	return MF_OK;
}

int syn_gate_init(struct syn_gate *g, struct mf_daemon *d, char *err,
		  size_t errlen)
{
	uint64_t seed = 0;
	char why[512];

	memset(g, 0, sizeof(*g));
	g->d = d;
	g->wake_fd = -1;
	atomic_init(&g->stop, false);
	g->queue_num = d->cfg.queue_num;
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint64_t)clock_ms() ^ (uint64_t)getpid();
	g->buf = malloc(GATE_BUF_SIZE);
	if (g->buf == NULL || syn_limit_init(&g->limit, SYN_GATE_TABLE_SLOTS, seed) != MF_OK ||
	    flow_tally_init(&g->tally) != MF_OK) {
		mf_err(err, errlen, "syn gate: out of memory");
		goto fail;
	}
	flow_tally_configure(&g->tally, &d->cfg);
	direct_flows_init(&g->direct);
	g->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (g->wake_fd < 0) {
		mf_err(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if (d->cfg.fail == MF_FAIL_AUTO &&
	    ledger_open(d->cfg.ledger_path, &g->ledger, why, sizeof(why)) != MF_OK) {
		mf_err(err, errlen, "fail = auto: ledger: %s", why);
		goto fail;
	}
	/* The mode goes into the kernel before we take SYNs. Without the
	 * rules installed nothing reaches the gate yet (and the daemon runs
	 * without rules as before): say so, and retry at every tick. */
	if (update_mode(g, &d->cfg, why, sizeof(why)) != MF_OK) {
		mf_err(err, errlen, "fail mode: %s", why);
		goto fail;
	}
	g->applied = false;
	apply_mode(g);
	if (open_socket(g, err, errlen) != MF_OK)
		goto fail;
	if (bind_queue(g, why, sizeof(why)) == MF_OK) {
		g->bound = true;
	} else if (g->bind_errno == EPERM || g->bind_errno == EBUSY) {
		/* The kernel refuses a queue bound to another socket with
		 * EPERM (nfnetlink_queue: not the instance's peer). */
		mf_log_info("syn_gate queue=%u held by another process (the mailferryd "
			    "this one succeeds): taking it over when it lets go", g->queue_num);
	} else {
		mf_err(err, errlen, "%s", why);
		goto fail;
	}
	mf_log_info("syn_gate queue=%u fail=%s mode=%s", g->queue_num,
		    fail_mode_name(d->cfg.fail), g->closed ? "closed" : "open");
	return MF_OK;
fail:
	syn_gate_destroy(g);
	return MF_ERROR;
}

int syn_gate_start(struct syn_gate *g)
{
	int rc = pthread_create(&g->thread, NULL, gate_main, g);

	if (rc != 0) {
		errno = rc;
		return MF_ERROR;
	}
	g->started = true;
	return MF_OK;
}

void syn_gate_release(struct syn_gate *g)
{
	uint64_t one = 1;

	atomic_store(&g->stop, true);
	if (g->wake_fd >= 0 && write(g->wake_fd, &one, sizeof(one)) < 0) {
		/* counter full: the thread is woken already */
	}
}

void syn_gate_destroy(struct syn_gate *g)
{
	if (g->started) {
		uint64_t one = 1;

		atomic_store(&g->stop, true);
		if (write(g->wake_fd, &one, sizeof(one)) < 0) {
			/* counter full: the thread is woken already */
		}
		pthread_join(g->thread, NULL);
		g->started = false;
	}
	if (g->nl != NULL)
		mnl_socket_close(g->nl);
	g->nl = NULL;
	if (g->wake_fd >= 0)
		close(g->wake_fd);
	g->wake_fd = -1;
	ledger_close(g->ledger);
	g->ledger = NULL;
	syn_limit_destroy(&g->limit);
	flow_tally_destroy(&g->tally);
	direct_flows_destroy(&g->direct);
	free(g->buf);
	g->buf = NULL;
}
