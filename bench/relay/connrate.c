/* connrate — short-connection load and idle-session holder for the relay
 * benchmark.
 *
 *   connrate rate -d ADDR -p PORT [-n COUNT] [-c CONC] [-s SIZE] [-t SECONDS]
 *       COUNT connections, CONC at a time: connect, send SIZE bytes, read
 *       SIZE bytes back (checked), close. Prints one line of key=value:
 *       ok, failures by kind, elapsed, conn/s, latency p50/p90/p99/max in ms
 *       (connect() call to the last echoed byte).
 *
 *   connrate hold -d ADDR -p PORT [-n COUNT] [-c CONC] [-s SIZE] [-t SECONDS] [-H SECONDS]
 *       Opens COUNT connections (CONC opening at a time), does the same
 *       SIZE-byte exchange on each so the whole path is known to be up,
 *       prints "READY ok=N fail=N" and keeps them all open and silent until
 *       SIGTERM/SIGINT or -H seconds; counts any that the far end closes
 *       meanwhile ("dropped"), then closes them all.
 *
 * Bounded in count and time: -t is a hard deadline for the whole open or
 * rate phase (default 60 s), each connection has a 5 s deadline, -H
 * defaults to 120 s. One thread, epoll, libc only: builds with `cc -O2`. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZE 65536
#define CONN_DEADLINE_S 5.0

enum conn_state { CS_FREE = 0, CS_CONNECTING, CS_EXCHANGE, CS_IDLE };

enum fail_kind {
	FK_CONNECT = 0, /* socket/connect failed at once (e.g. EADDRNOTAVAIL) */
	FK_REFUSED,     /* connect completed with an error */
	FK_RESET,       /* reset or error after connecting */
	FK_EOF,         /* closed before the whole echo came back */
	FK_MISMATCH,    /* echoed bytes differ */
	FK_TIMEOUT,     /* per-connection deadline */
	FK_COUNT
};

static const char *const fail_names[FK_COUNT] = {
	"connect_err", "refused", "reset", "eof", "mismatch", "timeout",
};

struct conn {
	int fd;
	enum conn_state state;
	unsigned int got;
	double t0;
};

struct run {
	int ep;
	struct sockaddr_storage dst;
	socklen_t dst_len;
	unsigned int size;
	char *payload;
	char *rbuf;
	struct conn *conns;
	unsigned int n_slots;
	unsigned long started, ok, fail[FK_COUNT];
	unsigned int active; /* connecting or exchanging */
	double *lat;
	int first_errno[FK_COUNT];
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int parse_dst(const char *addr, int port, struct sockaddr_storage *ss,
		     socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
		return 0;
	}
	return -1;
}

static void conn_fail(struct run *r, struct conn *c, enum fail_kind k, int err)
{
	if (r->fail[k] == 0)
		r->first_errno[k] = err;
	r->fail[k]++;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = CS_FREE;
	r->active--;
}

/* Starts connection number r->started in slot idx. */
static void conn_open(struct run *r, unsigned int idx)
{
	struct conn *c = &r->conns[idx];
	struct epoll_event ev = { .events = EPOLLOUT, .data.u32 = idx };
	int one = 1;

	r->started++;
	r->active++;
	c->got = 0;
	c->t0 = now_s();
	c->state = CS_CONNECTING;
	c->fd = socket(r->dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		conn_fail(r, c, FK_CONNECT, errno);
		return;
	}
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&r->dst, r->dst_len) < 0 &&
	    errno != EINPROGRESS) {
		conn_fail(r, c, FK_CONNECT, errno);
		return;
	}
	if (epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		conn_fail(r, c, FK_CONNECT, errno);
}

/* Returns 1 when the exchange finished (ok), 0 if still going, -1 failed. */
static int conn_event(struct run *r, struct conn *c, uint32_t events)
{
	struct epoll_event ev;
	int err = 0;
	socklen_t elen = sizeof(err);

	if (c->state == CS_CONNECTING) {
		ssize_t n;

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			err = errno;
		if (err != 0) {
			conn_fail(r, c, FK_REFUSED, err);
			return -1;
		}
		if (!(events & EPOLLOUT))
			return 0;
		n = send(c->fd, r->payload, r->size, MSG_NOSIGNAL);
		if (n != (ssize_t)r->size) {
			/* 100 bytes always fit a fresh socket's send buffer. */
			conn_fail(r, c, FK_RESET, n < 0 ? errno : EMSGSIZE);
			return -1;
		}
		c->state = CS_EXCHANGE;
		ev.events = EPOLLIN;
		ev.data.u32 = (uint32_t)(c - r->conns);
		if (epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
			conn_fail(r, c, FK_RESET, errno);
			return -1;
		}
		return 0;
	}
	if (c->state == CS_EXCHANGE) {
		for (;;) {
			ssize_t n = recv(c->fd, r->rbuf, r->size - c->got, 0);

			if (n > 0) {
				if (memcmp(r->rbuf, r->payload + c->got, (size_t)n) != 0) {
					conn_fail(r, c, FK_MISMATCH, 0);
					return -1;
				}
				c->got += (unsigned int)n;
				if (c->got == r->size)
					return 1;
				continue;
			}
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return 0;
			conn_fail(r, c, n == 0 ? FK_EOF : FK_RESET, n == 0 ? 0 : errno);
			return -1;
		}
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(const double *v, unsigned long n, double p)
{
	unsigned long i;

	if (n == 0)
		return 0;
	i = (unsigned long)(p * (double)(n - 1) + 0.5);
	return v[i];
}

static void print_fails(const struct run *r)
{
	for (int k = 0; k < FK_COUNT; k++) {
		printf(" %s=%lu", fail_names[k], r->fail[k]);
		if (r->fail[k] && r->first_errno[k])
			printf(" %s_first=%s", fail_names[k], strerrorname_np(r->first_errno[k]) ?
				strerrorname_np(r->first_errno[k]) : "?");
	}
}

static unsigned long n_failed(const struct run *r)
{
	unsigned long n = 0;

	for (int k = 0; k < FK_COUNT; k++)
		n += r->fail[k];
	return n;
}

/* Times out connections older than the per-connection deadline. */
static void sweep(struct run *r, double t)
{
	for (unsigned int i = 0; i < r->n_slots; i++) {
		struct conn *c = &r->conns[i];

		if ((c->state == CS_CONNECTING || c->state == CS_EXCHANGE) &&
		    t - c->t0 > CONN_DEADLINE_S)
			conn_fail(r, c, FK_TIMEOUT, 0);
	}
}

static int run_rate(struct run *r, unsigned long count, unsigned int conc, double limit_s)
{
	double t_start = now_s(), t_end = t_start + limit_s, t_last_sweep = t_start, el;
	unsigned long n_lat = 0;

	r->n_slots = conc;
	r->conns = calloc(conc, sizeof(*r->conns));
	r->lat = malloc(count * sizeof(double));
	if (r->conns == NULL || r->lat == NULL)
		return 1;
	for (unsigned int i = 0; i < conc && r->started < count; i++)
		conn_open(r, i);
	while (!stop && (r->active > 0 || r->started < count)) {
		struct epoll_event evs[256];
		double t;
		int n = epoll_wait(r->ep, evs, 256, 100);

		if (n < 0 && errno != EINTR)
			break;
		t = now_s();
		for (int i = 0; i < n; i++) {
			unsigned int idx = evs[i].data.u32;
			struct conn *c = &r->conns[idx];
			int rc;

			if (c->state == CS_FREE)
				continue;
			rc = conn_event(r, c, evs[i].events);
			if (rc == 1) {
				r->lat[n_lat++] = t - c->t0;
				r->ok++;
				close(c->fd);
				c->fd = -1;
				c->state = CS_FREE;
				r->active--;
			}
			if (rc != 0 && r->started < count && t < t_end)
				conn_open(r, idx);
		}
		if (t - t_last_sweep > 0.25) {
			t_last_sweep = t;
			sweep(r, t);
			/* Refill slots freed by the sweep. */
			for (unsigned int i = 0; i < conc && r->started < count && t < t_end; i++)
				if (r->conns[i].state == CS_FREE)
					conn_open(r, i);
		}
		if (t >= t_end && r->started < count)
			count = r->started; /* out of time: finish what runs */
	}
	el = now_s() - t_start;
	qsort(r->lat, n_lat, sizeof(double), cmp_double);
	printf("mode=rate ok=%lu failed=%lu elapsed_s=%.3f conn_per_s=%.0f "
	       "p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f",
	       r->ok, n_failed(r), el, el > 0 ? (double)r->ok / el : 0,
	       pct(r->lat, n_lat, 0.50) * 1e3, pct(r->lat, n_lat, 0.90) * 1e3,
	       pct(r->lat, n_lat, 0.99) * 1e3, n_lat ? r->lat[n_lat - 1] * 1e3 : 0);
	print_fails(r);
	printf("\n");
	return n_failed(r) > 0 || stop ? 1 : 0;
}

static int run_hold(struct run *r, unsigned long count, unsigned int conc,
		    double limit_s, double hold_s)
{
	double t_start = now_s(), t_end = t_start + limit_s, t_last_sweep = t_start;
	unsigned long next = 0, dropped = 0, idle = 0;

	r->n_slots = (unsigned int)count;
	r->conns = calloc(count, sizeof(*r->conns));
	if (r->conns == NULL)
		return 1;
	for (unsigned long i = 0; i < count; i++)
		r->conns[i].fd = -1;
	/* Open phase. */
	while (!stop && (r->active > 0 || next < count)) {
		struct epoll_event evs[256];
		double t = now_s();
		int n;

		while (next < count && r->active < conc && t < t_end)
			conn_open(r, (unsigned int)next++);
		if (t >= t_end)
			next = count;
		n = epoll_wait(r->ep, evs, 256, 100);
		if (n < 0 && errno != EINTR)
			break;
		t = now_s();
		for (int i = 0; i < n; i++) {
			struct conn *c = &r->conns[evs[i].data.u32];
			struct epoll_event ev = { .events = EPOLLRDHUP, .data.u32 = evs[i].data.u32 };

			if (c->state != CS_CONNECTING && c->state != CS_EXCHANGE)
				continue;
			if (conn_event(r, c, evs[i].events) != 1)
				continue;
			/* From now on only a close by the far end wakes us. */
			if (epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
				conn_fail(r, c, FK_RESET, errno);
				continue;
			}
			r->ok++;
			r->active--;
			idle++;
			c->state = CS_IDLE;
		}
		if (t - t_last_sweep > 0.25) {
			t_last_sweep = t;
			sweep(r, t);
		}
	}
	printf("READY ok=%lu fail=%lu elapsed_s=%.3f", r->ok, n_failed(r), now_s() - t_start);
	print_fails(r);
	printf("\n");
	fflush(stdout);

	/* Hold phase: silent, watching for closes. */
	t_end = now_s() + hold_s;
	while (!stop && now_s() < t_end) {
		struct epoll_event evs[256];
		int n = epoll_wait(r->ep, evs, 256, 100);

		for (int i = 0; i < n; i++) {
			struct conn *c = &r->conns[evs[i].data.u32];

			if (c->state != CS_IDLE)
				continue;
			dropped++;
			close(c->fd);
			c->fd = -1;
			c->state = CS_FREE;
		}
	}
	for (unsigned long i = 0; i < count; i++)
		if (r->conns[i].state == CS_IDLE)
			close(r->conns[i].fd);
	printf("CLOSED held=%lu dropped=%lu\n", idle - dropped, dropped);
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: connrate rate|hold -d ADDR -p PORT [-n COUNT] [-c CONC] [-s SIZE]\n"
		"                [-t SECONDS] [-H HOLD_SECONDS]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct run r;
	const char *mode, *addr = NULL;
	unsigned long count = 20000;
	unsigned int conc = 8;
	double limit_s = 60, hold_s = 120;
	int port = 0, opt;

	if (argc < 2)
		usage();
	mode = argv[1];
	memset(&r, 0, sizeof(r));
	r.size = 100;
	optind = 2;
	while ((opt = getopt(argc, argv, "d:p:n:c:s:t:H:")) != -1) {
		switch (opt) {
		case 'd':
			addr = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'n':
			count = strtoul(optarg, NULL, 10);
			break;
		case 'c':
			conc = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 's':
			r.size = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 't':
			limit_s = atof(optarg);
			break;
		case 'H':
			hold_s = atof(optarg);
			break;
		default:
			usage();
		}
	}
	if (addr == NULL || port <= 0 || port > 65535 || count == 0 || count > 1000000 ||
	    conc == 0 || conc > 10000 || r.size == 0 || r.size > MAX_SIZE ||
	    limit_s <= 0 || hold_s < 0 || parse_dst(addr, port, &r.dst, &r.dst_len) < 0)
		usage();
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	r.ep = epoll_create1(EPOLL_CLOEXEC);
	r.payload = malloc(r.size);
	r.rbuf = malloc(r.size);
	if (r.ep < 0 || r.payload == NULL || r.rbuf == NULL)
		return 1;
	for (unsigned int i = 0; i < r.size; i++)
		r.payload[i] = (char)('a' + i % 26);
	if (!strcmp(mode, "rate"))
		return run_rate(&r, count, conc, limit_s);
	if (!strcmp(mode, "hold"))
		return run_hold(&r, count, conc, limit_s, hold_s);
	usage();
	return 2;
}
