#include "admin_server.h"
#include "admin_proto.h"
#include "log.h"
#include "mf.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define ADMIN_READ_CHUNK 512

struct admin_client {
	int fd;                 /* -1: free */
	struct admin_line line;
	char in[ADMIN_READ_CHUNK]; /* read, not yet framed */
	size_t in_len, in_off;
	char *out;              /* reply being written (with its newline) */
	size_t out_len, out_off;
	bool close_after;       /* the reply is the last thing it gets */
	int64_t last_ms;
};

struct admin_server {
	int fd;
	int stop_fd;            /* eventfd: admin_server_stop wakes the thread */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
	pthread_t tid;
	bool started;
	admin_handler_fn fn;
	void (*tick)(void *arg);
	int64_t last_tick_ms;
	void *arg;
	struct admin_client c[ADMIN_CLIENTS_MAX];
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The socket's directory: made 0700 if missing (only the last level) and
 * handed to the user the daemon will run as. An existing directory is
 * left as its owner set it. */
static int prepare_dir(const char *path, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return MF_OK;
	*slash = '\0';
	if (mkdir(dir, 0700) != 0) {
		if (errno == EEXIST)
			return MF_OK;
		return mf_err(err, errlen, "admin socket directory %s: %s", dir, strerror(errno));
	}
	if (uid != 0 && chown(dir, uid, gid) != 0)
		return mf_err(err, errlen, "admin socket directory %s: chown: %s", dir,
			      strerror(errno));
	return MF_OK;
}

int admin_server_open(const char *path, uid_t dir_uid, gid_t dir_gid,
		      struct admin_server **s_r, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct admin_server *s;
	struct stat st;
	mode_t old_mask;
	int rc;

	*s_r = NULL;
	if (path[0] != '/' || strlen(path) >= sizeof(sun.sun_path))
		return mf_err(err, errlen, "admin socket %s: an absolute path of at most %zu bytes",
			      path, sizeof(sun.sun_path) - 1);
	if (prepare_dir(path, dir_uid, dir_gid, err, errlen) != MF_OK)
		return MF_ERROR;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return mf_err(err, errlen, "admin socket %s: exists and is not a socket",
				      path);
		/* Left by a crash, or a predecessor's we take over. */
		if (unlink(path) != 0 && errno != ENOENT)
			return mf_err(err, errlen, "admin socket %s: %s", path, strerror(errno));
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return mf_err(err, errlen, "admin socket: out of memory");
	for (unsigned int i = 0; i < ADMIN_CLIENTS_MAX; i++)
		s->c[i].fd = -1;
	snprintf(s->path, sizeof(s->path), "%s", path);
	memcpy(sun.sun_path, path, strlen(path));
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->stop_fd < 0 || s->fd < 0) {
		mf_err(err, errlen, "admin socket: %s", strerror(errno));
		goto fail;
	}
	/* The file is born 0600: never a moment when others may connect. */
	old_mask = umask(0177);
	rc = bind(s->fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old_mask);
	if (rc != 0) {
		mf_err(err, errlen, "admin socket %s: bind: %s", path, strerror(errno));
		goto fail;
	}
	if (chmod(path, 0600) != 0 || lstat(path, &st) != 0 || listen(s->fd, 8) != 0) {
		mf_err(err, errlen, "admin socket %s: %s", path, strerror(errno));
		unlink(path);
		goto fail;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	*s_r = s;
	return MF_OK;
fail:
	if (s->fd >= 0)
		close(s->fd);
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	free(s);
	return MF_ERROR;
}

static void client_close(struct admin_client *c)
{
	if (c->fd < 0)
		return;
	close(c->fd);
	free(c->out);
	c->fd = -1;
	c->out = NULL;
}

/* Queues reply + "\n" (takes reply). */
static void client_reply(struct admin_client *c, char *reply)
{
	size_t n = strlen(reply);
	char *out = realloc(reply, n + 2);

	if (out == NULL) {
		free(reply);
		client_close(c);
		return;
	}
	out[n] = '\n';
	out[n + 1] = '\0';
	c->out = out;
	c->out_len = n + 1;
	c->out_off = 0;
}

static char *error_reply(const char *why)
{
	char *r = malloc(strlen(why) + 32);

	if (r != NULL)
		sprintf(r, "{\"ok\":false,\"error\":\"%s\"}", why); /* why: fixed text */
	return r;
}

static void accept_one(struct admin_server *s)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	struct admin_client *c = NULL;
	const char *refuse = NULL;

	if (fd < 0)
		return;
	for (unsigned int i = 0; i < ADMIN_CLIENTS_MAX && c == NULL; i++)
		if (s->c[i].fd < 0)
			c = &s->c[i];
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != 0) {
		refuse = "permission denied: the admin socket answers root only";
		mf_log_warn("admin refused a client uid=%ld pid=%ld",
			    len == sizeof(cred) ? (long)cred.uid : -1L,
			    len == sizeof(cred) ? (long)cred.pid : -1L);
	} else if (c == NULL) {
		refuse = "too many admin clients, try again";
	}
	if (refuse != NULL) {
		char *r = error_reply(refuse);

		/* One best-effort line, then goodbye: a fresh socket's buffer
		 * takes it whole. */
		if (r != NULL) {
			(void)send(fd, r, strlen(r), MSG_NOSIGNAL | MSG_DONTWAIT);
			(void)send(fd, "\n", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		}
		free(r);
		close(fd);
		return;
	}
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	admin_line_init(&c->line);
	c->last_ms = now_ms();
}

/* Frames what was read; answers at most one request (the next waits for
 * that reply to be written). */
static void client_process(struct admin_server *s, struct admin_client *c)
{
	while (c->fd >= 0 && c->out == NULL && c->in_off < c->in_len) {
		size_t used = 0;
		int rc = admin_line_feed(&c->line, c->in + c->in_off, c->in_len - c->in_off, &used);

		c->in_off += used;
		if (rc == MF_AGAIN)
			break;
		if (rc == MF_ERROR) {
			char *r = error_reply("request line too long or holding a NUL byte");

			if (r == NULL) {
				client_close(c);
				return;
			}
			client_reply(c, r);
			c->close_after = true;
			c->in_off = c->in_len;
			return;
		}
		if (c->line.len == 0)
			continue; /* a blank line asks nothing */
		{
			char *r = s->fn(s->arg, c->line.buf, c->line.len);

			if (r == NULL) {
				client_close(c);
				return;
			}
			client_reply(c, r);
		}
	}
}

static void client_read(struct admin_server *s, struct admin_client *c)
{
	ssize_t n = recv(c->fd, c->in, sizeof(c->in), 0);

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		client_close(c);
		return;
	}
	if (n < 0)
		return;
	c->in_len = (size_t)n;
	c->in_off = 0;
	c->last_ms = now_ms();
	client_process(s, c);
}

static void client_write(struct admin_server *s, struct admin_client *c)
{
	ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
			 MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			client_close(c);
		return;
	}
	c->last_ms = now_ms();
	c->out_off += (size_t)n;
	if (c->out_off < c->out_len)
		return;
	free(c->out);
	c->out = NULL;
	if (c->close_after) {
		client_close(c);
		return;
	}
	client_process(s, c); /* requests pipelined behind that one */
}

static void *admin_main(void *arg)
{
	struct admin_server *s = arg;
	struct pollfd pfd[2 + ADMIN_CLIENTS_MAX];
	int map[ADMIN_CLIENTS_MAX];

	for (;;) {
		nfds_t n = 2;
		int64_t now;

		pfd[0] = (struct pollfd){ .fd = s->stop_fd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = s->fd, .events = POLLIN };
		for (unsigned int i = 0; i < ADMIN_CLIENTS_MAX; i++) {
			struct admin_client *c = &s->c[i];

			if (c->fd < 0)
				continue;
			map[n - 2] = (int)i;
			pfd[n++] = (struct pollfd){
				.fd = c->fd,
				.events = c->out != NULL ? POLLOUT
					  : c->in_off < c->in_len ? 0 : POLLIN,
			};
		}
		if (poll(pfd, n, 1000) < 0 && errno != EINTR) {
			mf_log_err("admin socket: poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents & POLLIN)
			break;
		for (nfds_t i = 2; i < n; i++) {
			struct admin_client *c = &s->c[map[i - 2]];

			if (pfd[i].revents & POLLOUT)
				client_write(s, c);
			else if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
				client_read(s, c);
		}
		if (pfd[1].revents & POLLIN)
			accept_one(s);
		now = now_ms();
		if (s->tick != NULL && now - s->last_tick_ms >= 1000) {
			s->last_tick_ms = now;
			s->tick(s->arg);
		}
		for (unsigned int i = 0; i < ADMIN_CLIENTS_MAX; i++)
			if (s->c[i].fd >= 0 && now - s->c[i].last_ms > ADMIN_IDLE_MS)
				client_close(&s->c[i]);
	}
	return NULL;
}

int admin_server_start(struct admin_server *s, admin_handler_fn fn, void (*tick)(void *arg),
		       void *arg, char *err, size_t errlen)
{
	s->fn = fn;
	s->tick = tick;
	s->arg = arg;
	if (pthread_create(&s->tid, NULL, admin_main, s) != 0)
		return mf_err(err, errlen, "admin socket: thread: %s", strerror(errno));
	s->started = true;
	return MF_OK;
}

void admin_server_stop(struct admin_server *s)
{
	struct stat st;
	uint64_t one = 1;

	if (s == NULL)
		return;
	if (s->started) {
		if (write(s->stop_fd, &one, sizeof(one)) != sizeof(one))
			mf_log_warn("admin socket: cannot wake its thread: %s", strerror(errno));
		pthread_join(s->tid, NULL);
	}
	for (unsigned int i = 0; i < ADMIN_CLIENTS_MAX; i++)
		client_close(&s->c[i]);
	close(s->fd);
	close(s->stop_fd);
	if (lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino &&
	    unlink(s->path) != 0)
		mf_log_warn("admin socket %s: not removed: %s", s->path, strerror(errno));
	free(s);
}
