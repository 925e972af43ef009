/* cmd_admin.c — the commands that ask the running mailferryd over its
 * admin socket ([admin] socket): status, pin, retry, rollback, migrate
 * USER, pause, resume. One request line, one reply line (admin_proto.h);
 * --json prints the reply as it came. Exit status 1 when the daemon
 * refused (its reason on stderr) or cannot be reached. */
#include "account.h"
#include "admin_proto.h"
#include "cli.h"
#include "mf.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* A status of thousands of accounts is still a few KiB; this bounds a
 * daemon (or whatever listens there) that never ends its line. */
#define REPLY_MAX (4u << 20)
#define REPLY_TIMEOUT_S 30

static int connect_admin(const struct cli_ctx *ctx, const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = REPLY_TIMEOUT_S };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		cli_error(ctx, "admin socket path too long: %s", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		cli_error(ctx, "socket: %s", strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		int e = errno;

		close(fd);
		if (e == EACCES || e == EPERM)
			cli_error(ctx, "%s: %s (the admin socket is root's only)", path, strerror(e));
		else
			cli_error(ctx, "%s: %s (is mailferryd running?)", path, strerror(e));
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return MF_ERROR;
		p += w;
		n -= (size_t)w;
	}
	return MF_OK;
}

/* Reads up to the first LF; MF_OK with *line_r (malloc'ed, NUL-ended). */
static int read_line(int fd, char **line_r, size_t *len_r)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);

	while (buf != NULL) {
		ssize_t n;
		char *nl;

		if (len + 1 == cap) {
			char *b = cap >= REPLY_MAX ? NULL : realloc(buf, cap * 2);

			if (b == NULL)
				break;
			buf = b;
			cap *= 2;
		}
		n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		nl = memchr(buf, '\n', len);
		if (nl != NULL) {
			*nl = '\0';
			*line_r = buf;
			*len_r = (size_t)(nl - buf);
			return MF_OK;
		}
	}
	free(buf);
	return MF_ERROR;
}

int cli_admin_call(const struct cli_ctx *ctx, json_t *request, json_t **reply_r)
{
	struct mf_config cfg;
	json_error_t jerr;
	char *req, *line = NULL;
	size_t len = 0;
	int fd, rc = MF_ERROR;

	*reply_r = NULL;
	if (cli_load_config(ctx, &cfg) != MF_OK)
		return MF_ERROR;
	req = json_dumps(request, JSON_COMPACT);
	if (req == NULL) {
		cli_error(ctx, "out of memory");
		return MF_ERROR;
	}
	fd = connect_admin(ctx, cfg.admin_socket);
	if (fd < 0)
		goto out;
	if (send_all(fd, req, strlen(req)) != MF_OK || send_all(fd, "\n", 1) != MF_OK ||
	    read_line(fd, &line, &len) != MF_OK) {
		cli_error(ctx, "%s: no answer from mailferryd", cfg.admin_socket);
		goto out_close;
	}
	*reply_r = json_loadb(line, len, 0, &jerr);
	if (!json_is_object(*reply_r)) {
		cli_error(ctx, "%s: an answer that is not a JSON object", cfg.admin_socket);
		json_decref(*reply_r);
		*reply_r = NULL;
		goto out_close;
	}
	rc = MF_OK;
out_close:
	close(fd);
out:
	free(line);
	free(req);
	return rc;
}

/* --json, or nothing. */
static int parse_json_flag(const struct cli_ctx *ctx, char **argv, bool *json_r)
{
	*json_r = false;
	for (; *argv != NULL; argv++) {
		if (strcmp(*argv, "--json") != 0) {
			cli_error(ctx, "unknown option '%s'", *argv);
			return MF_ERROR;
		}
		*json_r = true;
	}
	return MF_OK;
}

/* Sends the request; a refusal goes to stderr. MF_OK with the reply. */
static int call(const struct cli_ctx *ctx, json_t *request, bool json, json_t **reply_r)
{
	json_t *reply;

	if (request == NULL) {
		cli_error(ctx, "out of memory");
		return MF_ERROR;
	}
	if (cli_admin_call(ctx, request, &reply) != MF_OK) {
		json_decref(request);
		return MF_ERROR;
	}
	json_decref(request);
	if (json) {
		json_dumpf(reply, stdout, JSON_COMPACT);
		fputc('\n', stdout);
	}
	if (!json_is_true(json_object_get(reply, "ok"))) {
		json_t *why = json_object_get(reply, "error");

		cli_error(ctx, "%s", json_is_string(why) ? json_string_value(why) : "refused");
		json_decref(reply);
		return MF_ERROR;
	}
	*reply_r = reply;
	return MF_OK;
}

const char *cli_reply_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : "";
}

long long cli_reply_num(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

/* ---- status -------------------------------------------------------- */

static void print_duration(long long s)
{
	if (s >= 86400)
		printf("%lldd %lldh %lldm", s / 86400, s % 86400 / 3600, s % 3600 / 60);
	else if (s >= 3600)
		printf("%lldh %lldm", s / 3600, s % 3600 / 60);
	else
		printf("%lldm %llds", s / 60, s % 60);
}

static void print_status(json_t *r)
{
	json_t *mig = json_object_get(r, "migrate"), *acc = json_object_get(r, "accounts");
	json_t *v;
	size_t i;
	char at[32];

	printf("health:     %s\n", cli_reply_str(r, "health"));
	json_array_foreach(json_object_get(r, "problems"), i, v)
		printf("  problem:  %s\n", json_string_value(v));
	printf("pid:        %lld, %lld workers, up ", cli_reply_num(r, "pid"), cli_reply_num(r, "workers"));
	print_duration(cli_reply_num(r, "uptime_s"));
	printf("\nfail mode:  %s (now %s)\n", cli_reply_str(r, "fail_mode"), cli_reply_str(r, "fail_mode_now"));
	printf("copying:    %s%s, %lld login(s) queued\n",
	       json_is_true(json_object_get(mig, "enabled")) ? "enabled" : "disabled",
	       json_is_true(json_object_get(mig, "paused")) ? ", PAUSED" : "",
	       cli_reply_num(mig, "queued_logins"));
	printf("accounts:   %lld\n", cli_reply_num(acc, "total"));
	for (unsigned int s = 0; s < ACCOUNT_STATE_COUNT; s++) {
		const char *name = account_state_name((enum account_state)s);

		if (cli_reply_num(acc, name) > 0)
			printf("  %-9s %lld\n", name, cli_reply_num(acc, name));
	}
	v = json_object_get(json_object_get(r, "sessions"), "open");
	if (json_is_object(v)) {
		const char *proto;
		json_t *per;

		printf("sessions:   open now, by protocol and backend\n");
		json_object_foreach(v, proto, per) {
			const char *b;
			json_t *n;

			printf("  %-11s", proto);
			json_object_foreach(per, b, n)
				printf(" %s=%lld", b, (long long)json_integer_value(n));
			printf("\n");
		}
	}
	v = json_object_get(r, "rates");
	if (json_object_size(v) > 0)
		printf("rates:      over the last %.0f s: %.1f sessions/s, %.1f logins/s, %.0f bytes/s "
		       "relayed, %.1f messages/s and %.0f bytes/s copied\n",
		       json_number_value(json_object_get(v, "window_s")),
		       json_number_value(json_object_get(v, "sessions_per_s")),
		       json_number_value(json_object_get(v, "logins_per_s")),
		       json_number_value(json_object_get(v, "relay_bytes_per_s")),
		       json_number_value(json_object_get(v, "copy_messages_per_s")),
		       json_number_value(json_object_get(v, "copy_bytes_per_s")));
	else
		printf("rates:      (after the first seconds)\n");
	printf("copies running: %zu\n", json_array_size(json_object_get(r, "copies")));
	json_array_foreach(json_object_get(r, "copies"), i, v) {
		cli_format_time(cli_reply_num(v, "started"), at, sizeof(at));
		printf("  %s since %s, %s: %lld/%lld messages, %lld bytes, folder %lld/%lld\n",
		       cli_reply_str(v, "account"), at, cli_reply_str(v, "phase"), cli_reply_num(v, "messages"),
		       cli_reply_num(v, "planned"), cli_reply_num(v, "bytes"), cli_reply_num(v, "folder"), cli_reply_num(v, "folders"));
	}
	printf("gateways:   %zu on this ledger (this one: %s)\n",
	       json_array_size(json_object_get(r, "gateways")), cli_reply_str(r, "gateway_id"));
	json_array_foreach(json_object_get(r, "gateways"), i, v) {
		cli_format_time(cli_reply_num(v, "last_beat"), at, sizeof(at));
		printf("  %-20s %-8s last beat %s, %lld sessions, %lld copies, pid %lld%s\n",
		       cli_reply_str(v, "id"), cli_reply_str(v, "health"), at, cli_reply_num(v, "sessions"), cli_reply_num(v, "copies"),
		       cli_reply_num(v, "pid"), json_is_true(json_object_get(v, "this")) ? " (this one)" : "");
	}
	printf("recent errors: %zu\n", json_array_size(json_object_get(r, "recent_errors")));
	json_array_foreach(json_object_get(r, "recent_errors"), i, v) {
		cli_format_time(cli_reply_num(v, "at"), at, sizeof(at));
		printf("  %s  %s  %s\n", at, cli_reply_str(v, "account"), cli_reply_str(v, "error"));
	}
}

int cli_admin_status(const struct cli_ctx *ctx, char **argv)
{
	json_t *reply;
	bool json;

	if (parse_json_flag(ctx, argv, &json) != MF_OK)
		return CLI_EXIT_USAGE;
	if (call(ctx, json_pack("{s:s}", "cmd", "status"), json, &reply) != MF_OK)
		return CLI_EXIT_ERROR;
	if (!json)
		print_status(reply);
	json_decref(reply);
	return CLI_EXIT_OK;
}

/* ---- actions ------------------------------------------------------- */

static int account_action(const struct cli_ctx *ctx, const char *cmd, char **argv)
{
	json_t *reply;
	bool json;

	if (parse_json_flag(ctx, argv + 1, &json) != MF_OK)
		return CLI_EXIT_USAGE;
	if (call(ctx, json_pack("{s:s, s:s}", "cmd", cmd, "user", argv[0]), json, &reply) !=
	    MF_OK)
		return CLI_EXIT_ERROR;
	if (!json)
		printf("%s: %s -> %s%s\n", cli_reply_str(reply, "user"), cli_reply_str(reply, "from"), cli_reply_str(reply, "to"),
		       json_is_true(json_object_get(reply, "copy_started"))
			       ? " (copy starting now)" : "");
	json_decref(reply);
	return CLI_EXIT_OK;
}

int cli_admin_pin(const struct cli_ctx *ctx, char **argv)
{
	return account_action(ctx, "pin", argv);
}

int cli_admin_retry(const struct cli_ctx *ctx, char **argv)
{
	return account_action(ctx, "retry", argv);
}

int cli_admin_rollback(const struct cli_ctx *ctx, char **argv)
{
	return account_action(ctx, "rollback", argv);
}

/* migrate USER [--master] [--json]. */
int cli_migrate_user_run(const struct cli_ctx *ctx, char **argv)
{
	bool json = false, master = false;
	json_t *reply;

	for (char **a = argv + 1; *a != NULL; a++) {
		if (strcmp(*a, "--json") == 0) {
			json = true;
		} else if (strcmp(*a, "--master") == 0) {
			master = true;
		} else {
			cli_error(ctx, "unknown option '%s'", *a);
			return CLI_EXIT_USAGE;
		}
	}
	if (call(ctx, json_pack("{s:s, s:s, s:b}", "cmd", "migrate", "user", argv[0], "master",
				master), json, &reply) != MF_OK)
		return CLI_EXIT_ERROR;
	if (json)
		; /* printed as it came */
	else if (cli_reply_num(reply, "released_logins") > 0)
		printf("%s: copy starting now (%lld waiting login(s) released)\n",
		       cli_reply_str(reply, "user"), cli_reply_num(reply, "released_logins"));
	else if (json_is_true(json_object_get(reply, "master")))
		printf("%s: copy queued as the master user, ahead of waiting logins\n",
		       cli_reply_str(reply, "user"));
	else
		printf("%s: nothing to do, it is %s\n", cli_reply_str(reply, "user"), cli_reply_str(reply, "state"));
	json_decref(reply);
	return CLI_EXIT_OK;
}

static int pause_resume(const struct cli_ctx *ctx, const char *cmd, char **argv)
{
	json_t *reply;
	bool json;

	if (parse_json_flag(ctx, argv, &json) != MF_OK)
		return CLI_EXIT_USAGE;
	if (call(ctx, json_pack("{s:s}", "cmd", cmd), json, &reply) != MF_OK)
		return CLI_EXIT_ERROR;
	if (!json)
		printf("copying %s%s (%lld login(s) queued)\n",
		       json_is_true(json_object_get(reply, "paused")) ? "paused" : "resumed",
		       json_is_true(json_object_get(reply, "migrate_enabled"))
			       ? "" : "; note: [migrate] enabled = no",
		       cli_reply_num(reply, "queued_logins"));
	json_decref(reply);
	return CLI_EXIT_OK;
}

int cli_admin_pause(const struct cli_ctx *ctx, char **argv)
{
	return pause_resume(ctx, "pause", argv);
}

int cli_admin_resume(const struct cli_ctx *ctx, char **argv)
{
	return pause_resume(ctx, "resume", argv);
}

