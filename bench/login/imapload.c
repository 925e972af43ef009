/* imapload — IMAP login-session load and NOOP round-trip probe for the login
 * benchmark (bench/login).
 *
 *   imapload sessions -d ADDR -p PORT -u USER:PASS [-u ...] [-f FILE]
 *            [-n COUNT] [-c CONC] [-t SECONDS] [-T SECONDS] [-l LABEL]
 *       COUNT sessions, CONC at a time, each: connect, read the greeting
 *       ("* OK"), "a LOGIN user pass", "b SELECT INBOX", "c LOGOUT", close.
 *       Every tagged reply must be OK (and the greeting * OK), else the
 *       session counts as failed, by the step it failed in. Users are taken
 *       round robin. Latency per session: from connect() to the tagged OK
 *       of LOGOUT; also connect() to the tagged OK of LOGIN.
 *
 *   imapload fetch -d ADDR -p PORT -u USER:PASS [-m whole|each] [-c IN_FLIGHT]
 *            [-N MESSAGES] [-E BYTES] [-S MAX_SIZE] [-P PASSES] [-t SECONDS] [-l LABEL]
 *       One session as the first user: greeting, LOGIN, SELECT INBOX, then
 *       (untimed) UID FETCH 1:* (RFC822.SIZE), then, timed: "whole", one
 *       UID FETCH 1:* (BODY.PEEK[]); or "each", one UID FETCH <uid>
 *       (BODY.PEEK[]) per message with IN_FLIGHT (default 16) pipelined;
 *       then LOGOUT. Responses are parsed with their literals; the body
 *       literals must add up to the sizes' sum and count (and to -N / -E).
 *       -S: "each" reads only the messages of at most MAX_SIZE bytes; -P:
 *       the timed part reads its messages PASSES times (default 1).
 *       Reports MB/s (10^6 bytes received per second) of the timed part.
 *
 *   imapload noop {-d ADDR -p PORT | -e LABEL=ADDR:PORT [-e ...]} -u USER:PASS
 *            [-k COUNT] [-w WARMUP] [-t SECONDS] [-s]
 *       One session per target (up to 8): greeting, LOGIN, SELECT INBOX; then
 *       WARMUP + COUNT rounds of one NOOP on each session in turn (round k
 *       starts with session k mod N), strictly one after the other (send, wait
 *       for the tagged OK); the round trips of the last COUNT are recorded in
 *       microseconds, per session, and paired with the baseline session's
 *       (-B LABEL, default the first): sample k minus sample k. Then LOGOUT. -s: before
 *       opening each session read a line from stdin, after it print
 *       "ready LABEL" (the caller re-routes between sessions). -g GAP_US: pause
 *       before each NOOP, so that work a round trip leaves behind (a proxy
 *       re-arming its reads, a server finishing its loop) is over before the
 *       next round trip starts, whichever session that is.
 *
 * Prints one JSON object on stdout. Exit status 0 when the run completed
 * without a failed session, 1 when any session failed (the JSON still says
 * how many and why), 2 on a usage or set-up error.
 *
 * Bounded: -t is a hard deadline for the whole run (default 60 s), each
 * session has its own deadline -T (default 10 s). One thread, epoll, libc
 * only: builds with `cc -O2`. Replies are read with a 16 KiB line buffer per
 * session (SELECT INBOX of a small mailbox is well under 1 KiB). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RBUF 16384
#define MAX_USERS 100000

enum step { ST_FREE = 0, ST_CONNECT, ST_GREETING, ST_LOGIN, ST_SELECT, ST_LOGOUT, ST_COUNT };

static const char *const step_names[ST_COUNT] = {
	"free", "connect", "greeting", "login", "select", "logout",
};

enum fail_kind {
	FK_CONNECT = 0, /* socket/connect failed or was refused */
	FK_NO,          /* a tagged NO or BAD (or a greeting that is not * OK) */
	FK_EOF,         /* closed before the step's answer */
	FK_RESET,       /* error on the socket */
	FK_TIMEOUT,     /* session deadline */
	FK_PROTO,       /* line too long, unexpected tag */
	FK_COUNT
};

static const char *const fail_names[FK_COUNT] = {
	"connect", "no_or_bad", "eof", "reset", "timeout", "protocol",
};

struct user {
	char *name, *pass;
};

struct sess {
	int fd;
	enum step step;
	unsigned int user;
	size_t rlen;
	double t0, t_step[ST_COUNT], deadline; /* t_step[x]: when step x's answer came */
	char rbuf[RBUF];
};

struct opts {
	const char *addr;
	int port;
	unsigned long count;
	unsigned int conc;
	double seconds, sess_seconds;
	unsigned long noops, warmup;
	unsigned long gap_us;
	const char *baseline;
	const char *label;
	struct user *users;
	unsigned int n_users;
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

/* CPU time of this process so far (user + system), ms: the load generator
 * must stay well below one core, or it is what the run measures. */
static double cpu_ms(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return -1;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const double *v, unsigned long n, double p)
{
	unsigned long i;

	if (n == 0)
		return 0;
	i = (unsigned long)(p / 100.0 * (double)n + 0.999999);
	if (i < 1)
		i = 1;
	if (i > n)
		i = n;
	return v[i - 1];
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static int add_user(struct opts *o, const char *spec)
{
	const char *colon = strchr(spec, ':');
	struct user *u;

	if (colon == NULL || colon == spec || colon[1] == '\0' || strpbrk(spec, " \"\\\r\n") != NULL) {
		fprintf(stderr, "imapload: bad user '%s' (USER:PASS, atoms only)\n", spec);
		return -1;
	}
	if (o->n_users >= MAX_USERS)
		return -1;
	if (o->n_users % 64 == 0) {
		u = realloc(o->users, (o->n_users + 64) * sizeof(*u));
		if (u == NULL)
			return -1;
		o->users = u;
	}
	u = &o->users[o->n_users++];
	u->name = strndup(spec, (size_t)(colon - spec));
	u->pass = strdup(colon + 1);
	return u->name && u->pass ? 0 : -1;
}

static int add_user_file(struct opts *o, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];
	size_t n;

	if (f == NULL) {
		perror(path);
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		n = strcspn(line, "\r\n");
		line[n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		if (add_user(o, line) != 0) {
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

static int make_addr(const struct opts *o, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, o->addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)o->port);
		*len = sizeof(*a4);
		return 0;
	}
	if (inet_pton(AF_INET6, o->addr, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)o->port);
		*len = sizeof(*a6);
		return 0;
	}
	fprintf(stderr, "imapload: bad address %s\n", o->addr);
	return -1;
}

/* Finds the reply that ends the current step in b[0..len): for the greeting
 * the first line, else the line tagged with tag. Returns 1 with *ok_r set
 * when found, 0 when more input is needed, -1 when the buffer is full
 * without it. *used_r: bytes up to and including that line. */
static int find_reply(const char *b, size_t len, char tag, bool *ok_r, size_t *used_r, size_t *line_r)
{
	size_t pos = 0;
	const char *nl;

	while (pos < len && (nl = memchr(b + pos, '\n', len - pos)) != NULL) {
		const char *line = b + pos;
		size_t ll = (size_t)(nl - line) + 1;

		if (tag == '*') {
			*ok_r = ll >= 4 && memcmp(line, "* OK", 4) == 0;
			*used_r = pos + ll;
			*line_r = pos;
			return 1;
		}
		if (ll >= 2 && line[0] == tag && line[1] == ' ') {
			*ok_r = ll >= 5 && memcmp(line + 2, "OK", 2) == 0;
			*used_r = pos + ll;
			*line_r = pos;
			return 1;
		}
		pos += ll;
	}
	return len >= RBUF ? -1 : 0;
}

static int send_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	/* Commands are tiny: a fresh socket's send buffer always takes them. */
	n = send(fd, buf, len, MSG_NOSIGNAL);
	return n == (ssize_t)len ? 0 : -1;
}

/* ----------------------------------------------------------------- sessions */

struct run {
	const struct opts *o;
	int ep;
	struct sockaddr_storage dst;
	socklen_t dst_len;
	struct sess *s;
	unsigned long started, done, ok, fail[FK_COUNT], fail_step[ST_COUNT];
	int first_errno[FK_COUNT];
	char first_line[FK_COUNT][120];
	unsigned int active;
	double *lat, *lat_login;
	double *phase[ST_COUNT]; /* per step: from the previous step's answer to this one's */
};

static void sess_close(struct run *r, struct sess *s)
{
	epoll_ctl(r->ep, EPOLL_CTL_DEL, s->fd, NULL);
	close(s->fd);
	s->fd = -1;
	s->step = ST_FREE;
	r->active--;
	r->done++;
}

static void sess_fail(struct run *r, struct sess *s, enum fail_kind k, int err, const char *line)
{
	r->fail[k]++;
	r->fail_step[s->step]++;
	if (r->first_errno[k] == 0 && err != 0)
		r->first_errno[k] = err;
	if (line != NULL && r->first_line[k][0] == '\0') {
		size_t n = strcspn(line, "\r\n");

		if (n >= sizeof(r->first_line[k]))
			n = sizeof(r->first_line[k]) - 1;
		memcpy(r->first_line[k], line, n);
		r->first_line[k][n] = '\0';
	}
	sess_close(r, s);
}

static int sess_start(struct run *r, struct sess *s)
{
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN | EPOLLRDHUP };
	int one = 1, fd;

	fd = socket(r->dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->fd = fd;
	s->step = ST_CONNECT;
	s->rlen = 0;
	s->user = (unsigned int)(r->started % r->o->n_users);
	s->t0 = now_s();
	s->deadline = s->t0 + r->o->sess_seconds;
	r->started++;
	r->active++;
	if (connect(fd, (struct sockaddr *)&r->dst, r->dst_len) < 0 && errno != EINPROGRESS) {
		int e = errno;

		r->active--;
		r->started--;
		close(fd);
		s->fd = -1;
		s->step = ST_FREE;
		return -e;
	}
	ev.data.ptr = s;
	if (epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

/* Sends the command of the step s is entering. */
static int sess_command(struct run *r, struct sess *s)
{
	char cmd[600];
	int n;
	const struct user *u = &r->o->users[s->user];

	switch (s->step) {
	case ST_LOGIN:
		n = snprintf(cmd, sizeof(cmd), "a LOGIN %s %s\r\n", u->name, u->pass);
		break;
	case ST_SELECT:
		n = snprintf(cmd, sizeof(cmd), "b SELECT INBOX\r\n");
		break;
	case ST_LOGOUT:
		n = snprintf(cmd, sizeof(cmd), "c LOGOUT\r\n");
		break;
	default:
		return 0;
	}
	return send_all(s->fd, cmd, (size_t)n);
}

static void sess_event(struct run *r, struct sess *s, uint32_t events)
{
	static const char tags[ST_COUNT] = { 0, 0, '*', 'a', 'b', 'c' };
	int err = 0;
	socklen_t el = sizeof(err);
	ssize_t n;

	if (s->step == ST_CONNECT) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = s };

		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err != 0) {
			sess_fail(r, s, FK_CONNECT, err, NULL);
			return;
		}
		if (!(events & (EPOLLOUT | EPOLLIN)))
			return;
		epoll_ctl(r->ep, EPOLL_CTL_MOD, s->fd, &ev);
		s->step = ST_GREETING;
		if (!(events & EPOLLIN))
			return;
	}
	for (;;) {
		bool ok;
		size_t used, at;
		int rc;

		n = recv(s->fd, s->rbuf + s->rlen, RBUF - s->rlen, 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR)
				continue;
			sess_fail(r, s, FK_RESET, errno, NULL);
			return;
		}
		if (n == 0) {
			s->rbuf[s->rlen < RBUF ? s->rlen : RBUF - 1] = '\0';
			sess_fail(r, s, FK_EOF, 0, s->rlen ? s->rbuf : NULL);
			return;
		}
		s->rlen += (size_t)n;
		/* A step's answer may arrive together with nothing else: each
		 * command is sent only after the previous tagged reply. */
		while ((rc = find_reply(s->rbuf, s->rlen, tags[s->step], &ok, &used, &at)) == 1) {
			if (!ok) {
				s->rbuf[used - 1] = '\0';
				sess_fail(r, s, FK_NO, 0, s->rbuf + at);
				return;
			}
			memmove(s->rbuf, s->rbuf + used, s->rlen - used);
			s->rlen -= used;
			s->t_step[s->step] = now_s();
			if (s->step == ST_LOGOUT) {
				double t = s->t_step[ST_LOGOUT];
				int k;

				r->lat[r->ok] = t - s->t0;
				r->lat_login[r->ok] = s->t_step[ST_LOGIN] - s->t0;
				for (k = ST_GREETING; k <= ST_LOGOUT; k++)
					r->phase[k][r->ok] = s->t_step[k] - (k == ST_GREETING ? s->t0 : s->t_step[k - 1]);
				r->ok++;
				sess_close(r, s);
				return;
			}
			s->step++;
			if (sess_command(r, s) != 0) {
				sess_fail(r, s, FK_RESET, errno, NULL);
				return;
			}
		}
		if (rc < 0) {
			sess_fail(r, s, FK_PROTO, 0, NULL);
			return;
		}
	}
}

static void print_fail_json(const struct run *r)
{
	int k, first = 1;

	printf(", \"fail_kinds\": {");
	for (k = 0; k < FK_COUNT; k++) {
		if (r->fail[k] == 0)
			continue;
		printf("%s\"%s\": %lu", first ? "" : ", ", fail_names[k], r->fail[k]);
		first = 0;
	}
	printf("}, \"fail_steps\": {");
	first = 1;
	for (k = 0; k < ST_COUNT; k++) {
		if (r->fail_step[k] == 0)
			continue;
		printf("%s\"%s\": %lu", first ? "" : ", ", step_names[k], r->fail_step[k]);
		first = 0;
	}
	printf("}, \"fail_first\": {");
	first = 1;
	for (k = 0; k < FK_COUNT; k++) {
		if (r->fail[k] == 0)
			continue;
		printf("%s\"%s\": ", first ? "" : ", ", fail_names[k]);
		if (r->first_line[k][0])
			json_str(r->first_line[k]);
		else
			json_str(r->first_errno[k] ? strerror(r->first_errno[k]) : "");
		first = 0;
	}
	printf("}");
}

static int run_sessions(const struct opts *o)
{
	struct run r = { .o = o };
	struct epoll_event evs[256];
	double t_start, t_end, t_check = 0;
	unsigned long failed = 0, n_ok;
	unsigned int i;
	int k, timed_out = 0;

	if (make_addr(o, &r.dst, &r.dst_len) != 0)
		return 2;
	r.ep = epoll_create1(EPOLL_CLOEXEC);
	r.s = calloc(o->conc, sizeof(*r.s));
	r.lat = calloc(o->count, sizeof(double));
	r.lat_login = calloc(o->count, sizeof(double));
	for (k = ST_GREETING; k <= ST_LOGOUT; k++)
		if ((r.phase[k] = calloc(o->count, sizeof(double))) == NULL)
			r.lat = NULL;
	if (r.ep < 0 || r.s == NULL || r.lat == NULL || r.lat_login == NULL) {
		perror("imapload");
		return 2;
	}
	for (i = 0; i < o->conc; i++)
		r.s[i].fd = -1;

	t_start = now_s();
	t_end = t_start + o->seconds;
	for (;;) {
		double t = now_s();
		int n, e;

		/* Fill free slots while sessions are left to start. */
		for (i = 0; i < o->conc && !stop && t < t_end && r.started < o->count; i++) {
			if (r.s[i].step != ST_FREE)
				continue;
			e = sess_start(&r, &r.s[i]);
			if (e < 0) {
				r.fail[FK_CONNECT]++;
				r.fail_step[ST_CONNECT]++;
				r.started++;
				r.done++;
				if (r.first_errno[FK_CONNECT] == 0)
					r.first_errno[FK_CONNECT] = -e;
			}
		}
		if (r.active == 0 && (r.started >= o->count || stop || t >= t_end))
			break;
		if (t >= t_end || stop) {
			timed_out = 1;
			break;
		}
		n = epoll_wait(r.ep, evs, 256, 50);
		if (n < 0 && errno != EINTR) {
			perror("epoll_wait");
			break;
		}
		for (k = 0; k < n; k++)
			sess_event(&r, evs[k].data.ptr, evs[k].events);
		t = now_s();
		if (t - t_check > 0.05) {
			t_check = t;
			for (i = 0; i < o->conc; i++)
				if (r.s[i].step != ST_FREE && t > r.s[i].deadline)
					sess_fail(&r, &r.s[i], FK_TIMEOUT, 0, NULL);
		}
	}
	t_end = now_s();
	/* Sessions still running at the run's deadline count as timed out. */
	for (i = 0; i < o->conc; i++)
		if (r.s[i].step != ST_FREE)
			sess_fail(&r, &r.s[i], FK_TIMEOUT, 0, NULL);
	for (k = 0; k < FK_COUNT; k++)
		failed += r.fail[k];
	n_ok = r.ok;
	qsort(r.lat, n_ok, sizeof(double), cmp_double);
	qsort(r.lat_login, n_ok, sizeof(double), cmp_double);
	for (k = ST_GREETING; k <= ST_LOGOUT; k++)
		qsort(r.phase[k], n_ok, sizeof(double), cmp_double);

	printf("{\"mode\": \"sessions\", \"label\": ");
	json_str(o->label);
	printf(", \"dst\": \"%s:%d\", \"conc\": %u, \"requested\": %lu, \"started\": %lu, "
	       "\"ok\": %lu, \"failed\": %lu, \"deadline_hit\": %s, \"seconds\": %.3f, "
	       "\"sessions_per_s\": %.1f, \"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, "
	       "\"max_ms\": %.3f, \"login_p50_ms\": %.3f, \"login_p99_ms\": %.3f",
	       o->addr, o->port, o->conc, o->count, r.started, n_ok, failed,
	       timed_out ? "true" : "false", t_end - t_start,
	       (double)n_ok / (t_end - t_start), pct(r.lat, n_ok, 50) * 1e3,
	       pct(r.lat, n_ok, 90) * 1e3, pct(r.lat, n_ok, 99) * 1e3,
	       n_ok ? r.lat[n_ok - 1] * 1e3 : 0.0, pct(r.lat_login, n_ok, 50) * 1e3,
	       pct(r.lat_login, n_ok, 99) * 1e3);
	/* Each step's own share: connect() to the greeting, the greeting to
	 * LOGIN's OK, LOGIN's OK to SELECT's, SELECT's to LOGOUT's. */
	for (k = ST_GREETING; k <= ST_LOGOUT; k++)
		printf(", \"step_%s_p50_ms\": %.3f, \"step_%s_p99_ms\": %.3f", step_names[k],
		       pct(r.phase[k], n_ok, 50) * 1e3, step_names[k], pct(r.phase[k], n_ok, 99) * 1e3);
	print_fail_json(&r);
	printf(", \"loadgen_cpu_ms\": %.0f}\n", cpu_ms());
	fflush(stdout);
	close(r.ep);
	return failed || timed_out ? 1 : 0;
}

/* --------------------------------------------------------------------- noop */

/* Blocking read until the line of tag (or '*' for the greeting). Returns
 * 1 for OK, 0 for another answer, -1 for EOF, error or the deadline. */
static int wait_reply(int fd, char *buf, size_t *len, const char *tag, double deadline, char *last, size_t lastsz)
{
	size_t tl = strlen(tag);

	for (;;) {
		size_t pos = 0;
		char *nl;

		while (pos < *len && (nl = memchr(buf + pos, '\n', *len - pos)) != NULL) {
			char *line = buf + pos;
			size_t ll = (size_t)(nl - line) + 1;

			if ((tag[0] == '*' && tl == 1) ||
			    (ll > tl && memcmp(line, tag, tl) == 0 && line[tl] == ' ')) {
				int ok = tag[0] == '*' ? (ll >= 4 && memcmp(line, "* OK", 4) == 0)
						       : (ll > tl + 3 && memcmp(line + tl + 1, "OK", 2) == 0);

				if (!ok && last != NULL) {
					size_t n = ll < lastsz ? ll : lastsz - 1;

					memcpy(last, line, n);
					last[n] = '\0';
					last[strcspn(last, "\r\n")] = '\0';
				}
				memmove(buf, buf + pos + ll, *len - pos - ll);
				*len -= pos + ll;
				return ok;
			}
			pos += ll;
		}
		if (pos > 0) {
			memmove(buf, buf + pos, *len - pos);
			*len -= pos;
		}
		if (*len >= RBUF)
			return -1;
		{
			struct pollfd p = { .fd = fd, .events = POLLIN };
			double left = deadline - now_s();
			ssize_t n;

			/* Spin on a non-blocking recv first: a poll() sleep and
			 * wake-up would add scheduler latency to every round trip
			 * of both rows alike, and hide the difference measured. */
			n = recv(fd, buf + *len, RBUF - *len, MSG_DONTWAIT);
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) <= 0) {
					if (last != NULL)
						snprintf(last, lastsz, "deadline");
					return -1;
				}
				n = recv(fd, buf + *len, RBUF - *len, 0);
			}
			if (n <= 0) {
				if (last != NULL)
					snprintf(last, lastsz, "%s", n == 0 ? "connection closed by peer" : strerror(errno));
				return -1;
			}
			*len += (size_t)n;
		}
	}
}

struct target {
	const char *label;
	char addr[64];
	int port;
	int fd;
	size_t len;
	char *buf;
	double *rtt;
	const char *where;
	char last[200];
};

/* Opens one session of a NOOP run: connect, greeting, LOGIN, SELECT INBOX.
 * Returns 0, or -1 with t->where and t->last saying what failed. */
static int noop_open(struct target *t, const struct user *u, double deadline)
{
	struct opts one = { .addr = t->addr, .port = t->port };
	struct sockaddr_storage dst;
	socklen_t dl;
	char cmd[600];
	int on = 1;

	t->where = "connect";
	if (make_addr(&one, &dst, &dl) != 0)
		return -1;
	t->fd = socket(dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (t->fd < 0 || setsockopt(t->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) < 0 ||
	    connect(t->fd, (struct sockaddr *)&dst, dl) < 0) {
		snprintf(t->last, sizeof(t->last), "%s", strerror(errno));
		return -1;
	}
	t->where = "greeting";
	if (wait_reply(t->fd, t->buf, &t->len, "*", deadline, t->last, sizeof(t->last)) != 1)
		return -1;
	t->where = "login";
	snprintf(cmd, sizeof(cmd), "a LOGIN %s %s\r\n", u->name, u->pass);
	if (send_all(t->fd, cmd, strlen(cmd)) != 0 ||
	    wait_reply(t->fd, t->buf, &t->len, "a", deadline, t->last, sizeof(t->last)) != 1)
		return -1;
	t->where = "select";
	if (send_all(t->fd, "b SELECT INBOX\r\n", 16) != 0 ||
	    wait_reply(t->fd, t->buf, &t->len, "b", deadline, t->last, sizeof(t->last)) != 1)
		return -1;
	t->where = "noop";
	return 0;
}

/* One NOOP round trip in microseconds, or a negative value on failure. */
static double noop_once(struct target *t, unsigned long i, double deadline)
{
	char cmd[64], tag[32];
	double t0, t1;
	int n = snprintf(cmd, sizeof(cmd), "n%lu NOOP\r\n", i);

	snprintf(tag, sizeof(tag), "n%lu", i);
	t0 = now_s();
	if (send_all(t->fd, cmd, (size_t)n) != 0)
		return -1;
	if (wait_reply(t->fd, t->buf, &t->len, tag, deadline, t->last, sizeof(t->last)) != 1)
		return -1;
	t1 = now_s();
	return (t1 - t0) * 1e6;
}

static void print_stats(const double *sorted, unsigned long n)
{
	double sum = 0;
	unsigned long i;

	for (i = 0; i < n; i++)
		sum += sorted[i];
	printf("\"n\": %lu, \"min_us\": %.1f, \"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, "
	       "\"mean_us\": %.1f, \"max_us\": %.1f",
	       n, n ? sorted[0] : 0.0, pct(sorted, n, 50), pct(sorted, n, 90), pct(sorted, n, 99),
	       n ? sum / (double)n : 0.0, n ? sorted[n - 1] : 0.0);
}

/* NOOP round trips on one or more sessions. The sessions are opened one
 * after the other; with -s, before opening each one imapload reads a line
 * from stdin and after opening it prints "ready LABEL" on stdout, so that the
 * caller can change the route between them (the benchmark switches
 * interception of the client subnet on and off: established sessions keep
 * their path). Then the NOOPs go round robin, one at a time, over the
 * sessions: sample k of every session is taken back to back, under the same
 * load on the machine, and the per-sample difference to the first session
 * (the baseline) is reported besides each session's own percentiles. */
static int run_noop(const struct opts *o, struct target *tg, unsigned int nt, bool sync_stdin)
{
	double deadline, t_start, *diff = NULL;
	unsigned long i, k, total = o->warmup + o->noops, done = 0;
	unsigned int j, jj, base = 0;
	int failed = 0;
	char line[64];

	t_start = now_s();
	deadline = t_start + o->seconds;
	for (j = 0; j < nt; j++)
		if (o->baseline != NULL && strcmp(tg[j].label, o->baseline) == 0)
			base = j;
	for (j = 0; j < nt; j++) {
		tg[j].fd = -1;
		tg[j].buf = malloc(RBUF);
		tg[j].rtt = calloc(o->noops ? o->noops : 1, sizeof(double));
		tg[j].where = "";
		tg[j].last[0] = '\0';
		if (tg[j].buf == NULL || tg[j].rtt == NULL)
			return 2;
	}
	for (j = 0; j < nt && !failed; j++) {
		if (sync_stdin) {
			struct pollfd p = { .fd = 0, .events = POLLIN };
			double left = deadline - now_s();

			if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) <= 0 ||
			    fgets(line, sizeof(line), stdin) == NULL) {
				tg[j].where = "waiting for go on stdin";
				failed = 1;
				break;
			}
		}
		if (noop_open(&tg[j], &o->users[j % o->n_users], deadline) != 0) {
			failed = 1;
			break;
		}
		if (sync_stdin) {
			printf("ready %s\n", tg[j].label);
			fflush(stdout);
		}
	}
	for (i = 0; i < total && !failed && !stop; i++) {
		for (jj = 0; jj < nt; jj++) {
			/* Each round starts with the next session: every session is
			 * first, second, ... equally often, so what one round trip
			 * leaves behind on the machine (a proxy re-arming its reads,
			 * a server finishing its loop) weighs on all of them alike. */
			unsigned int j = (unsigned int)((jj + i) % nt);
			double us;

			if (o->gap_us > 0) {
				struct timespec ts = { .tv_sec = (time_t)(o->gap_us / 1000000),
						       .tv_nsec = (long)(o->gap_us % 1000000) * 1000 };

				nanosleep(&ts, NULL);
			}
			us = noop_once(&tg[j], i, deadline);

			if (us < 0) {
				failed = 1;
				break;
			}
			if (i >= o->warmup)
				tg[j].rtt[i - o->warmup] = us;
		}
		if (!failed && i >= o->warmup)
			done++;
	}
	for (j = 0; j < nt; j++) {
		if (tg[j].fd < 0)
			continue;
		if (!failed && (send_all(tg[j].fd, "c LOGOUT\r\n", 10) != 0 ||
				wait_reply(tg[j].fd, tg[j].buf, &tg[j].len, "c", deadline, tg[j].last,
					   sizeof(tg[j].last)) != 1)) {
			tg[j].where = "logout";
			failed = 1;
		}
		close(tg[j].fd);
	}
	diff = calloc(done ? done : 1, sizeof(double));
	if (diff == NULL)
		return 2;
	printf("{\"mode\": \"noop\", \"requested\": %lu, \"warmup\": %lu, \"ok\": %lu, \"failed\": %d, "
	       "\"seconds\": %.3f, \"sessions\": [", o->noops, o->warmup, done, failed, now_s() - t_start);
	for (j = 0; j < nt; j++) {
		printf("%s{\"label\": ", j ? ", " : "");
		json_str(tg[j].label);
		printf(", \"dst\": \"%s:%d\", ", tg[j].addr, tg[j].port);
		if (j != base && diff != NULL) {
			/* Paired: sample k of this session minus sample k of the
			 * baseline (taken in the same round, next to it). */
			for (k = 0; k < done; k++)
				diff[k] = tg[j].rtt[k] - tg[base].rtt[k];
			qsort(diff, done, sizeof(double), cmp_double);
			printf("\"paired_diff_p10_us\": %.1f, \"paired_diff_p50_us\": %.1f, \"paired_diff_p90_us\": %.1f, ",
			       pct(diff, done, 10), pct(diff, done, 50), pct(diff, done, 90));
		}
		memcpy(diff, tg[j].rtt, done * sizeof(double));
		qsort(diff, done, sizeof(double), cmp_double);
		print_stats(diff, done);
		printf(", \"error\": ");
		json_str(failed && tg[j].last[0] ? tg[j].last : "");
		printf(", \"failed_at\": ");
		json_str(failed ? tg[j].where : "");
		printf("}");
	}
	printf("], \"loadgen_cpu_ms\": %.0f}\n", cpu_ms());
	fflush(stdout);
	free(diff);
	return failed ? 1 : 0;
}

/* -------------------------------------------------------------------- fetch */

/* Response framing of the server -> client stream, as a relay that injects
 * at response boundaries must see it: a response is lines joined by
 * literals; a line ending in {N} (or {N+}) is followed by N bytes of
 * literal, then the response goes on; a line without one ends the
 * response. The parser consumes a buffer in place and never reads the
 * socket; it keeps the first line of each response (the tag, the FETCH
 * items before the first literal) and counts literal bytes. Bounded: a
 * line is at most FP_LINE_MAX bytes, a literal at most FP_LIT_MAX. */
#define FP_LINE_MAX 65536
#define FP_LIT_MAX (1ULL << 31)

enum fp_state { FP_LINE = 0, FP_LITERAL };

struct fetch_parser {
	enum fp_state state;
	uint64_t lit_left;
	bool first;              /* the line being read is the first of its response */
	size_t line_len;         /* bytes of the current line so far */
	char line[FP_LINE_MAX + 1];
	size_t head_len;         /* the response's first line, NUL-terminated */
	char head[FP_LINE_MAX + 1];
	/* per response, valid when fetch_parse_next() returns 1 */
	unsigned long lits;      /* literals in it */
	uint64_t lit_bytes;      /* their bytes */
	unsigned long body_lits; /* literals announced by "BODY[] {N}" */
	uint64_t body_bytes;
};

static void fetch_parser_reset(struct fetch_parser *p)
{
	p->state = FP_LINE;
	p->lit_left = 0;
	p->first = true;
	p->line_len = 0;
	p->head_len = 0;
	p->head[0] = '\0';
	p->lits = 0;
	p->lit_bytes = 0;
	p->body_lits = 0;
	p->body_bytes = 0;
}

/* The literal announced at the end of line l[0..n) (CRLF included), or -1
 * when the line does not end in {N} / {N+}. */
static long long fetch_literal_len(const char *l, size_t n, size_t *brace_r)
{
	size_t i, e;
	unsigned long long v = 0;

	if (n >= 2 && l[n - 2] == '\r')
		n -= 2;
	else if (n >= 1)
		n -= 1;
	if (n < 3 || l[n - 1] != '}')
		return -1;
	e = n - 1;
	if (e > 0 && l[e - 1] == '+')
		e--;
	for (i = e; i > 0 && l[i - 1] >= '0' && l[i - 1] <= '9'; i--)
		;
	if (i == e || i == 0 || l[i - 1] != '{' || e - i > 12)
		return -1;
	for (size_t k = i; k < e; k++)
		v = v * 10 + (unsigned long long)(l[k] - '0');
	if (v > FP_LIT_MAX)
		return -2;
	*brace_r = i - 1;
	return (long long)v;
}

/* Consumes b[0..len) up to the end of the next complete response. Returns 1
 * when a response ended (p->head, lits, lit_bytes, body_* describe it; the
 * next call starts a new one), 0 when all of b was consumed without one
 * (more input needed), -1 on a protocol error (line too long, literal too
 * large). *used_r: bytes consumed. */
static int fetch_parse_next(struct fetch_parser *p, const char *b, size_t len, size_t *used_r)
{
	size_t pos = 0;

	if (p->first && p->line_len == 0 && p->state == FP_LINE) {
		p->lits = 0;
		p->lit_bytes = 0;
		p->body_lits = 0;
		p->body_bytes = 0;
		p->head_len = 0;
		p->head[0] = '\0';
	}
	while (pos < len) {
		if (p->state == FP_LITERAL) {
			uint64_t take = len - pos;

			if (take > p->lit_left)
				take = p->lit_left;
			pos += (size_t)take;
			p->lit_left -= take;
			if (p->lit_left == 0)
				p->state = FP_LINE;
			continue;
		}
		{
			const char *nl = memchr(b + pos, '\n', len - pos);
			size_t n = nl != NULL ? (size_t)(nl - (b + pos)) + 1 : len - pos;
			long long lit;
			size_t brace = 0;

			if (p->line_len + n > FP_LINE_MAX) {
				*used_r = pos;
				return -1;
			}
			memcpy(p->line + p->line_len, b + pos, n);
			p->line_len += n;
			pos += n;
			if (nl == NULL)
				continue;
			p->line[p->line_len] = '\0';
			if (p->first) {
				memcpy(p->head, p->line, p->line_len + 1);
				p->head_len = p->line_len;
			}
			lit = fetch_literal_len(p->line, p->line_len, &brace);
			if (lit == -2) {
				*used_r = pos;
				return -1;
			}
			if (lit >= 0) {
				p->lits++;
				p->lit_bytes += (uint64_t)lit;
				if (brace >= 7 && memcmp(p->line + brace - 7, "BODY[] ", 7) == 0) {
					p->body_lits++;
					p->body_bytes += (uint64_t)lit;
				}
				p->line_len = 0;
				p->first = false;
				p->lit_left = (uint64_t)lit;
				if (lit > 0)
					p->state = FP_LITERAL;
				continue;
			}
			p->line_len = 0;
			p->first = true;
			*used_r = pos;
			return 1;
		}
	}
	*used_r = pos;
	return 0;
}

struct fetch_conn {
	int fd;
	char *buf;
	size_t cap, off, len; /* unparsed input: buf[off..off+len) */
	uint64_t wire;        /* bytes received while counting */
	double deadline;
	char err[200];
	struct fetch_parser *p;
};

/* Next complete response into c->p. Returns 0, or -1 with c->err set. */
static int fetch_next(struct fetch_conn *c)
{
	for (;;) {
		size_t used = 0;
		int rc;

		if (c->len > 0) {
			rc = fetch_parse_next(c->p, c->buf + c->off, c->len, &used);
			c->off += used;
			c->len -= used;
			if (rc == 1)
				return 0;
			if (rc < 0) {
				snprintf(c->err, sizeof(c->err), "protocol: line over %d bytes or literal over %llu",
					 FP_LINE_MAX, (unsigned long long)FP_LIT_MAX);
				return -1;
			}
		}
		{
			struct pollfd pf = { .fd = c->fd, .events = POLLIN };
			double left = c->deadline - now_s();
			ssize_t n;

			c->off = 0;
			if (stop) {
				snprintf(c->err, sizeof(c->err), "interrupted");
				return -1;
			}
			n = recv(c->fd, c->buf, c->cap, MSG_DONTWAIT);
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				if (left <= 0 || poll(&pf, 1, (int)(left * 1000) + 1) <= 0) {
					snprintf(c->err, sizeof(c->err), "deadline");
					return -1;
				}
				n = recv(c->fd, c->buf, c->cap, 0);
			}
			if (n <= 0) {
				snprintf(c->err, sizeof(c->err), "%s", n == 0 ? "connection closed by peer" : strerror(errno));
				return -1;
			}
			c->len = (size_t)n;
			c->wire += (uint64_t)n;
		}
	}
}

/* Is the current response the tagged one of tag? *ok_r: it says OK. */
static bool fetch_tagged(const struct fetch_parser *p, const char *tag, bool *ok_r)
{
	size_t tl = strlen(tag);

	if (p->head_len <= tl || memcmp(p->head, tag, tl) != 0 || p->head[tl] != ' ')
		return false;
	*ok_r = p->head_len >= tl + 3 && memcmp(p->head + tl + 1, "OK", 2) == 0;
	return true;
}

/* Reads responses until the tagged one of tag; untagged ones go to fn (may
 * be NULL). Returns 0 on OK, -1 with c->err set. */
static int fetch_until(struct fetch_conn *c, const char *tag, int (*fn)(struct fetch_conn *, void *), void *arg)
{
	bool ok;

	for (;;) {
		if (fetch_next(c) != 0)
			return -1;
		if (fetch_tagged(c->p, tag, &ok)) {
			if (!ok) {
				snprintf(c->err, sizeof(c->err), "%.*s", (int)strcspn(c->p->head, "\r\n"), c->p->head);
				return -1;
			}
			return 0;
		}
		if (c->p->head[0] != '*' && c->p->head[0] != '+') {
			snprintf(c->err, sizeof(c->err), "unexpected: %.*s", (int)strcspn(c->p->head, "\r\n"), c->p->head);
			return -1;
		}
		if (fn != NULL && fn(c, arg) != 0)
			return -1;
	}
}

static bool head_num(const char *head, const char *key, unsigned long long *v_r)
{
	const char *s = strstr(head, key);
	char *end;

	if (s == NULL)
		return false;
	s += strlen(key);
	if (*s < '0' || *s > '9')
		return false;
	*v_r = strtoull(s, &end, 10);
	return end != s;
}

struct fetch_box {
	unsigned long exists, n;
	unsigned long long size_sum;
	unsigned long *uids, *sizes;
	unsigned long cap;
	/* what the timed part reads: sel_n messages of sel_bytes, `passes` times */
	unsigned long sel_n;
	unsigned long long sel_bytes;
	/* body pass */
	unsigned long body_msgs, fetch_resps;
	uint64_t body_bytes, lit_bytes;
};

static int on_select(struct fetch_conn *c, void *arg)
{
	struct fetch_box *fb = arg;
	unsigned long long v;
	int end = 0;

	/* "* N EXISTS", not "* N RECENT" */
	if (sscanf(c->p->head, "* %llu EXISTS%n", &v, &end) == 1 && end > 0)
		fb->exists = (unsigned long)v;
	return 0;
}

static int on_size(struct fetch_conn *c, void *arg)
{
	struct fetch_box *fb = arg;
	unsigned long long uid, size;

	if (strstr(c->p->head, " FETCH (") == NULL)
		return 0;
	if (!head_num(c->p->head, "UID ", &uid) || !head_num(c->p->head, "RFC822.SIZE ", &size)) {
		snprintf(c->err, sizeof(c->err), "FETCH without UID or RFC822.SIZE: %.80s", c->p->head);
		return -1;
	}
	if (fb->n == fb->cap) {
		unsigned long ncap = fb->cap ? fb->cap * 2 : 1024;
		unsigned long *u = ncap <= 10000000 ? realloc(fb->uids, ncap * sizeof(*u)) : NULL;
		unsigned long *z = u != NULL ? realloc(fb->sizes, ncap * sizeof(*z)) : NULL;

		if (u != NULL)
			fb->uids = u;
		if (z == NULL) {
			snprintf(c->err, sizeof(c->err), "too many messages");
			return -1;
		}
		fb->sizes = z;
		fb->cap = ncap;
	}
	fb->sizes[fb->n] = (unsigned long)size;
	fb->uids[fb->n++] = (unsigned long)uid;
	fb->size_sum += size;
	return 0;
}

static int on_body(struct fetch_conn *c, void *arg)
{
	struct fetch_box *fb = arg;

	if (strstr(c->p->head, " FETCH (") == NULL)
		return 0;
	fb->fetch_resps++;
	fb->body_msgs += c->p->body_lits;
	fb->body_bytes += c->p->body_bytes;
	fb->lit_bytes += c->p->lit_bytes;
	return 0;
}

/* One FETCH session: connect, greeting, LOGIN, SELECT INBOX, then untimed
 * `UID FETCH 1:* (RFC822.SIZE)` (the UIDs, and the size sum every body
 * read must add up to), then timed: either one `UID FETCH 1:* (BODY.PEEK[])`
 * (o->count == 0: "whole", the server streams the mailbox in one response
 * run with literals of every size) or one `UID FETCH <uid> (BODY.PEEK[])`
 * per message with o->conc commands in flight ("each": many small
 * responses), until the last tagged OK; then LOGOUT. Every body literal is
 * counted: their number and bytes must equal the size pass's, and -N / -E
 * (the mailbox as generated) when given. With -S, "each" reads only the
 * messages of at most that size (small responses: the relay's buffered
 * path rather than its splices); -P reads the selection that many times. */
struct fetch_opts {
	bool each;                    /* one command per message, else one UID FETCH 1:* */
	unsigned long want_n;         /* the mailbox must hold this many messages (0: any) */
	unsigned long long want_bytes; /* ... of this many bytes (0: any) */
	unsigned long max_size;       /* each: only messages of at most this size (0: all) */
	unsigned int passes;          /* read them this many times */
};

static int run_fetch(const struct opts *o, const struct fetch_opts *fo)
{
	bool each = fo->each;
	unsigned long want_n = fo->want_n;
	unsigned long long want_bytes = fo->want_bytes;
	unsigned int pass;
	struct fetch_parser *p = calloc(1, sizeof(*p));
	struct fetch_conn c = { .fd = -1, .cap = 1 << 20 };
	struct fetch_box fb = { 0 };
	struct sockaddr_storage dst;
	socklen_t dl;
	const char *where = "connect";
	char cmd[700], tag[32];
	double t0 = 0, t1 = 0, cpu0 = 0, cpu1 = 0;
	unsigned long sent = 0, done = 0;
	int on = 1, failed = 1;

	c.buf = malloc(c.cap);
	c.p = p;
	c.deadline = now_s() + o->seconds;
	if (p == NULL || c.buf == NULL || make_addr(o, &dst, &dl) != 0)
		return 2;
	fetch_parser_reset(p);
	c.fd = socket(dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c.fd < 0 || setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) < 0 ||
	    connect(c.fd, (struct sockaddr *)&dst, dl) < 0) {
		snprintf(c.err, sizeof(c.err), "%s", strerror(errno));
		goto out;
	}
	where = "greeting";
	if (fetch_next(&c) != 0)
		goto out;
	if (strncmp(p->head, "* OK", 4) != 0) {
		snprintf(c.err, sizeof(c.err), "%.*s", (int)strcspn(p->head, "\r\n"), p->head);
		goto out;
	}
	where = "login";
	snprintf(cmd, sizeof(cmd), "a LOGIN %s %s\r\n", o->users[0].name, o->users[0].pass);
	if (send_all(c.fd, cmd, strlen(cmd)) != 0 || fetch_until(&c, "a", NULL, NULL) != 0)
		goto out;
	where = "select";
	if (send_all(c.fd, "b SELECT INBOX\r\n", 16) != 0 || fetch_until(&c, "b", on_select, &fb) != 0)
		goto out;
	where = "size";
	if (send_all(c.fd, "s UID FETCH 1:* (RFC822.SIZE)\r\n", 31) != 0 || fetch_until(&c, "s", on_size, &fb) != 0)
		goto out;
	if (fb.n != fb.exists || fb.n == 0 || (want_n && fb.n != want_n) || (want_bytes && fb.size_sum != want_bytes)) {
		snprintf(c.err, sizeof(c.err), "mailbox: %lu EXISTS, %lu sizes summing to %llu; expected %lu, %llu",
			 fb.exists, fb.n, fb.size_sum, want_n, want_bytes);
		goto out;
	}
	for (unsigned long i = 0; i < fb.n; i++) {
		if (each && fo->max_size > 0 && fb.sizes[i] > fo->max_size)
			continue;
		fb.uids[fb.sel_n++] = fb.uids[i];
		fb.sel_bytes += fb.sizes[i];
	}
	if (fb.sel_n == 0) {
		snprintf(c.err, sizeof(c.err), "no message of at most %lu bytes", fo->max_size);
		goto out;
	}
	where = "fetch";
	c.wire = 0;
	cpu0 = cpu_ms();
	t0 = now_s();
	for (pass = 0; pass < fo->passes; pass++) {
		unsigned long base = done;

		if (!each) {
			snprintf(tag, sizeof(tag), "f%u", pass);
			snprintf(cmd, sizeof(cmd), "%s UID FETCH 1:* (BODY.PEEK[])\r\n", tag);
			if (send_all(c.fd, cmd, strlen(cmd)) != 0 || fetch_until(&c, tag, on_body, &fb) != 0)
				goto out;
			sent++;
			done++;
			continue;
		}
		/* o->conc in flight: each tagged OK sends the next; the server
		 * answers in order, so the next tag expected is the oldest. */
		while (done - base < fb.sel_n) {
			while (sent - base < fb.sel_n && sent - done < o->conc) {
				int n = snprintf(cmd, sizeof(cmd), "f%lu UID FETCH %lu (BODY.PEEK[])\r\n", sent,
						 fb.uids[sent - base]);

				if (send_all(c.fd, cmd, (size_t)n) != 0) {
					snprintf(c.err, sizeof(c.err), "send: %s", strerror(errno));
					goto out;
				}
				sent++;
			}
			snprintf(tag, sizeof(tag), "f%lu", done);
			if (fetch_until(&c, tag, on_body, &fb) != 0)
				goto out;
			done++;
		}
	}
	t1 = now_s();
	cpu1 = cpu_ms();
	where = "check";
	if (fb.body_msgs != fb.sel_n * fo->passes || fb.body_bytes != fb.sel_bytes * fo->passes ||
	    fb.lit_bytes != fb.body_bytes) {
		snprintf(c.err, sizeof(c.err), "read %lu bodies of %llu bytes (%llu in all literals, %lu FETCH responses);"
			 " expected %u x %lu of %llu", fb.body_msgs, (unsigned long long)fb.body_bytes,
			 (unsigned long long)fb.lit_bytes, fb.fetch_resps, fo->passes, fb.sel_n, fb.sel_bytes);
		goto out;
	}
	where = "logout";
	if (send_all(c.fd, "z LOGOUT\r\n", 10) != 0 || fetch_until(&c, "z", NULL, NULL) != 0)
		goto out;
	where = "";
	failed = 0;
out:
	if (c.fd >= 0)
		close(c.fd);
	printf("{\"mode\": \"fetch\", \"variant\": \"%s\", \"label\": ", each ? "each" : "whole");
	json_str(o->label);
	printf(", \"user\": ");
	json_str(o->users[0].name);
	printf(", \"in_flight\": %u, \"failed\": %d, \"failed_at\": ", each ? o->conc : 1, failed);
	json_str(where);
	printf(", \"error\": ");
	json_str(failed ? c.err : "");
	printf(", \"max_size\": %lu, \"passes\": %u, \"selected\": %lu, \"selected_bytes\": %llu",
	       each ? fo->max_size : 0, fo->passes, fb.sel_n, fb.sel_bytes);
	printf(", \"messages\": %lu, \"size_sum\": %llu, \"commands\": %lu, \"fetch_responses\": %lu, "
	       "\"body_messages\": %lu, \"body_bytes\": %llu, \"literal_bytes\": %llu, \"wire_bytes\": %llu, "
	       "\"seconds\": %.4f, \"mb_per_s\": %.1f, \"fetch_cpu_ms\": %.0f, \"loadgen_cpu_ms\": %.0f}\n",
	       fb.n, fb.size_sum, done, fb.fetch_resps, fb.body_msgs, (unsigned long long)fb.body_bytes,
	       (unsigned long long)fb.lit_bytes, (unsigned long long)c.wire, t1 > t0 ? t1 - t0 : 0.0,
	       t1 > t0 ? (double)c.wire / 1e6 / (t1 - t0) : 0.0, cpu1 - cpu0, cpu_ms());
	fflush(stdout);
	free(fb.uids);
	free(fb.sizes);
	free(c.buf);
	free(p);
	return failed ? 1 : 0;
}

/* --------------------------------------------------------------------- main */

static void usage(void)
{
	fprintf(stderr,
		"usage: imapload sessions -d ADDR -p PORT -u USER:PASS [-u ...] [-f FILE] [-n COUNT]\n"
		"                [-c CONC] [-t SECONDS] [-T SESSION_SECONDS] [-l LABEL]\n"
		"       imapload noop {-d ADDR -p PORT | -e LABEL=ADDR:PORT ...} -u USER:PASS [-k COUNT]\n"
		"                [-w WARMUP] [-t SECONDS] [-s] [-g GAP_US] [-B LABEL]\n"
		"       imapload fetch -d ADDR -p PORT -u USER:PASS [-m whole|each] [-c IN_FLIGHT]\n"
		"                [-N MESSAGES] [-E BYTES] [-S MAX_SIZE] [-P PASSES] [-t SECONDS] [-l LABEL]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct opts o = {
		.port = 143, .count = 1000, .conc = 16, .seconds = 60, .sess_seconds = 10,
		.noops = 2000, .warmup = 200, .label = "",
	};
	struct sigaction sa = { .sa_handler = on_signal };
	struct rlimit rl;
	struct target tg[8];
	unsigned int nt = 0;
	bool sync_stdin = false;
	struct fetch_opts fo = { .passes = 1 };
	const char *mode;
	int c;

	if (argc < 2)
		usage();
	mode = argv[1];
	optind = 2;
	while ((c = getopt(argc, argv, "d:p:u:f:n:c:t:T:k:w:l:e:sg:B:m:N:E:S:P:")) != -1) {
		switch (c) {
		case 'd': o.addr = optarg; break;
		case 'p': o.port = atoi(optarg); break;
		case 'u': if (add_user(&o, optarg) != 0) return 2; break;
		case 'f': if (add_user_file(&o, optarg) != 0) return 2; break;
		case 'n': o.count = strtoul(optarg, NULL, 10); break;
		case 'c': o.conc = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 't': o.seconds = atof(optarg); break;
		case 'T': o.sess_seconds = atof(optarg); break;
		case 'k': o.noops = strtoul(optarg, NULL, 10); break;
		case 'w': o.warmup = strtoul(optarg, NULL, 10); break;
		case 'l': o.label = optarg; break;
		case 's': sync_stdin = true; break;
		case 'g': o.gap_us = strtoul(optarg, NULL, 10); break;
		case 'B': o.baseline = optarg; break;
		case 'm':
			if (strcmp(optarg, "each") != 0 && strcmp(optarg, "whole") != 0)
				usage();
			fo.each = strcmp(optarg, "each") == 0;
			break;
		case 'N': fo.want_n = strtoul(optarg, NULL, 10); break;
		case 'E': fo.want_bytes = strtoull(optarg, NULL, 10); break;
		case 'S': fo.max_size = strtoul(optarg, NULL, 10); break;
		case 'P': fo.passes = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 'e': {
			char *eq = strchr(optarg, '='), *colon = strrchr(optarg, ':');

			if (nt >= 8 || eq == NULL || colon == NULL || colon < eq ||
			    (size_t)(colon - eq - 1) >= sizeof(tg[0].addr))
				usage();
			memset(&tg[nt], 0, sizeof(tg[nt]));
			*eq = '\0';
			tg[nt].label = optarg;
			memcpy(tg[nt].addr, eq + 1, (size_t)(colon - eq - 1));
			tg[nt].addr[colon - eq - 1] = '\0';
			tg[nt].port = atoi(colon + 1);
			nt++;
			break;
		}
		default: usage();
		}
	}
	if (strcmp(mode, "noop") == 0 && nt == 0 && o.addr != NULL) {
		memset(&tg[0], 0, sizeof(tg[0]));
		tg[0].label = o.label;
		snprintf(tg[0].addr, sizeof(tg[0].addr), "%s", o.addr);
		tg[0].port = o.port;
		nt = 1;
	}
	if (strcmp(mode, "noop") == 0 && nt > 0)
		o.addr = tg[0].addr;
	if (o.addr == NULL || o.n_users == 0 || o.port <= 0 || o.port > 65535 || o.conc == 0 ||
	    o.conc > 10000 || o.count == 0 || o.count > 10000000 || o.seconds <= 0 || o.seconds > 3600 ||
	    o.sess_seconds <= 0 || o.noops > 10000000)
		usage();
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (strcmp(mode, "sessions") == 0)
		return run_sessions(&o);
	if (strcmp(mode, "noop") == 0)
		return run_noop(&o, tg, nt, sync_stdin);
	if (strcmp(mode, "fetch") == 0)
		return fo.passes >= 1 && fo.passes <= 1000 ? run_fetch(&o, &fo) : 2;
	usage();
	return 2;
}
