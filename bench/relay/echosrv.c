/* echosrv — the benchmark's "old server": echoes every byte back.
 *
 *   echosrv -a ADDR -p PORT [-p PORT ...] [-t SECONDS]
 *
 * One epoll loop, any number of listening ports, level-triggered. Each
 * connection echoes what it reads; it closes when the peer closes or
 * resets. A connection holds no buffer while idle: bytes are read into one
 * shared buffer and written back at once, and only a short write keeps the
 * remainder (rare: the client sends 100 bytes and waits for them).
 *
 * Bounded: exits by itself after -t seconds (default 900), and at SIGTERM.
 * Builds with plain `cc -O2`, libc only. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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

#define MAX_PORTS 8
#define BUF_SIZE 65536

struct conn {
	int fd;
	unsigned int pend_len; /* unsent echo bytes (short write) */
	char *pend;
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

static int listen_on(const char *addr, int port)
{
	struct sockaddr_in6 s6;
	struct sockaddr_in s4;
	struct sockaddr *sa;
	socklen_t len;
	int one = 1, fd, family;

	memset(&s4, 0, sizeof(s4));
	memset(&s6, 0, sizeof(s6));
	if (inet_pton(AF_INET, addr, &s4.sin_addr) == 1) {
		family = AF_INET;
		s4.sin_family = AF_INET;
		s4.sin_port = htons((uint16_t)port);
		sa = (struct sockaddr *)&s4;
		len = sizeof(s4);
	} else if (inet_pton(AF_INET6, addr, &s6.sin6_addr) == 1) {
		family = AF_INET6;
		s6.sin6_family = AF_INET6;
		s6.sin6_port = htons((uint16_t)port);
		sa = (struct sockaddr *)&s6;
		len = sizeof(s6);
	} else {
		fprintf(stderr, "echosrv: bad address %s\n", addr);
		return -1;
	}
	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, sa, len) < 0 || listen(fd, 4096) < 0) {
		fprintf(stderr, "echosrv: listen %s:%d: %s\n", addr, port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static void conn_close(struct conn *c)
{
	close(c->fd);
	free(c->pend);
	free(c);
}

/* Writes buf; keeps what did not fit. 0 ok, -1 the connection is dead. */
static int conn_send(int ep, struct conn *c, const char *buf, size_t len)
{
	ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
	struct epoll_event ev;

	if (n < 0 && errno != EAGAIN)
		return -1;
	if (n < 0)
		n = 0;
	if ((size_t)n == len)
		return 0;
	c->pend = malloc(len - (size_t)n);
	if (c->pend == NULL)
		return -1;
	memcpy(c->pend, buf + n, len - (size_t)n);
	c->pend_len = (unsigned int)(len - (size_t)n);
	ev.events = EPOLLOUT;
	ev.data.ptr = c;
	return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static int conn_flush(int ep, struct conn *c)
{
	char *p = c->pend;
	unsigned int len = c->pend_len;
	struct epoll_event ev;

	c->pend = NULL;
	c->pend_len = 0;
	ev.events = EPOLLIN;
	ev.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
		free(p);
		return -1;
	}
	if (conn_send(ep, c, p, len) < 0) {
		free(p);
		return -1;
	}
	free(p);
	return 0;
}

int main(int argc, char **argv)
{
	static char buf[BUF_SIZE];
	const char *addr = NULL;
	int ports[MAX_PORTS], n_ports = 0, lfds[MAX_PORTS];
	double limit_s = 900, t_end;
	unsigned long accepted = 0;
	int opt, ep;

	while ((opt = getopt(argc, argv, "a:p:t:")) != -1) {
		switch (opt) {
		case 'a':
			addr = optarg;
			break;
		case 'p':
			if (n_ports == MAX_PORTS)
				goto usage;
			ports[n_ports++] = atoi(optarg);
			break;
		case 't':
			limit_s = atof(optarg);
			break;
		default:
			goto usage;
		}
	}
	if (addr == NULL || n_ports == 0 || limit_s <= 0)
		goto usage;
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return 1;
	for (int i = 0; i < n_ports; i++) {
		struct epoll_event ev = { .events = EPOLLIN };

		lfds[i] = listen_on(addr, ports[i]);
		if (lfds[i] < 0)
			return 1;
		/* Listening sockets are told apart by a NULL-free tag: the
		 * index, odd, so it can never be a (aligned) conn pointer. */
		ev.data.u64 = ((uint64_t)i << 1) | 1;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, lfds[i], &ev) < 0)
			return 1;
	}
	printf("echosrv: listening on %s, %d port(s)\n", addr, n_ports);
	fflush(stdout);
	t_end = now_s() + limit_s;

	while (!stop && now_s() < t_end) {
		struct epoll_event evs[256];
		int n = epoll_wait(ep, evs, 256, 200);

		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;
			struct conn *c;

			if (tag & 1) {
				int lfd = lfds[tag >> 1];

				/* Take a batch; level-triggered wakes us again. */
				for (int k = 0; k < 64; k++) {
					struct epoll_event ev = { .events = EPOLLIN };
					int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

					if (fd < 0)
						break;
					c = calloc(1, sizeof(*c));
					if (c == NULL) {
						close(fd);
						continue;
					}
					c->fd = fd;
					ev.data.ptr = c;
					if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
						conn_close(c);
						continue;
					}
					accepted++;
				}
				continue;
			}
			c = evs[i].data.ptr;
			if (c->pend_len > 0) {
				if (conn_flush(ep, c) < 0)
					conn_close(c);
				continue;
			}
			for (;;) {
				ssize_t r = recv(c->fd, buf, sizeof(buf), 0);

				if (r > 0) {
					if (conn_send(ep, c, buf, (size_t)r) < 0) {
						conn_close(c);
						break;
					}
					if (c->pend_len > 0 || (size_t)r < sizeof(buf))
						break;
					continue;
				}
				if (r < 0 && (errno == EAGAIN || errno == EINTR))
					break;
				conn_close(c); /* EOF or reset */
				break;
			}
		}
	}
	printf("echosrv: exit accepted=%lu\n", accepted);
	return 0;
usage:
	fprintf(stderr, "usage: echosrv -a ADDR -p PORT [-p PORT ...] [-t SECONDS]\n");
	return 2;
}
