/* cmd_push.c — the admin's push before retiring the old server:
 *
 *   mailferry migrate --user U --master
 *   mailferry migrate --from-csv FILE --master [--window N]
 *
 * With no --source, the copies are the running mailferryd's: each account
 * is handed to it (admin "migrate" with master, admin_cmds.c), which
 * copies it as the configured master user through the whole pipeline
 * (bulk copy, CUTOVER closing the user's sessions, delta, verification,
 * UIDL map, MIGRATED), exactly as a login would have. This command only
 * feeds the daemon and follows: at most --window accounts handed over at
 * a time (default twice the daemon's workers; the daemon's login queue is
 * bounded), the state of each read from the ledger (the truth, whichever
 * gateway copies), the running copy's counts from the daemon's status.
 *
 * The file: CSV with a header row naming a user column ("user",
 * "account" or "login"), as for accounts import; other columns ignored.
 *
 * Progress: on a terminal one line redrawn in place; otherwise JSON lines
 * ({"event":"queued",...} per account handed over, {"event":"progress",...}
 * per change of a running copy's counts, {"event":"migrated"|"failed",...}
 * per account, {"event":"done",...} at the end). Exit status 0 only when
 * every account is MIGRATED. An account the daemon refuses (PINNED, FAILED
 * — `mailferry retry` first —, an unknown user's login failing) counts as
 * failed with the reason; one the daemon let fall back to UNSEEN or SEEN
 * (a restart cancelled its copy) is handed over again after a while. */
#include "account.h"
#include "cli.h"
#include "csv.h"
#include "ledger.h"
#include "mf.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define PUSH_ACCOUNTS_MAX 1000000
#define PUSH_POLL_MS 500
/* An account handed over but back in UNSEEN/SEEN with no copy this long
 * is handed over again (the daemon restarted, the queue was full). */
#define PUSH_REPUSH_S 30

enum job_state { J_WAITING, J_HANDED, J_MIGRATED, J_FAILED };

struct job {
	char given[ACCOUNT_NAME_MAX + 1]; /* as in the file */
	char name[ACCOUNT_NAME_MAX + 1];  /* as the daemon normalised it */
	enum job_state st;
	double handed_at, seen_busy_at;
	long long messages, planned, bytes;
	char reason[LEDGER_REASON_MAX];
};

struct push {
	const struct cli_ctx *ctx;
	struct job *jobs;
	size_t n, cap;
	int user_col; /* CSV: the user column, -1 before the header */
	bool header_seen, tty;
	unsigned int window;
	double t0;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int add_job(struct push *p, const char *user)
{
	size_t len = strlen(user);

	if (len == 0 || len > ACCOUNT_NAME_MAX) {
		cli_error(p->ctx, "user name '%.64s' is empty or longer than %d bytes", user,
			  ACCOUNT_NAME_MAX);
		return MF_ERROR;
	}
	if (p->n == PUSH_ACCOUNTS_MAX) {
		cli_error(p->ctx, "more than %d accounts", PUSH_ACCOUNTS_MAX);
		return MF_ERROR;
	}
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 64;
		struct job *j = realloc(p->jobs, cap * sizeof(*j));

		if (j == NULL) {
			cli_error(p->ctx, "out of memory");
			return MF_ERROR;
		}
		p->jobs = j;
		p->cap = cap;
	}
	memset(&p->jobs[p->n], 0, sizeof(p->jobs[0]));
	memcpy(p->jobs[p->n].given, user, len + 1);
	p->n++;
	return MF_OK;
}

static int on_record(void *arg, const struct csv_reader *r)
{
	struct push *p = arg;

	if (!p->header_seen) {
		p->header_seen = true;
		for (unsigned int i = 0; i < r->n_fields; i++) {
			const char *h = csv_field(r, i);

			if (!strcasecmp(h, "user") || !strcasecmp(h, "account") ||
			    !strcasecmp(h, "login")) {
				if (p->user_col >= 0) {
					cli_error(p->ctx, "line %lu: two user columns",
						  (unsigned long)r->line);
					return MF_ERROR;
				}
				p->user_col = (int)i;
			}
		}
		if (p->user_col < 0) {
			cli_error(p->ctx, "line %lu: no 'user' column in the header row",
				  (unsigned long)r->line);
			return MF_ERROR;
		}
		return MF_OK;
	}
	if ((unsigned int)p->user_col >= r->n_fields) {
		cli_error(p->ctx, "line %lu: no user field", (unsigned long)r->line);
		return MF_ERROR;
	}
	return add_job(p, csv_field(r, (unsigned int)p->user_col));
}

static int read_csv(struct push *p, const char *path)
{
	FILE *f = fopen(path, "rb");
	int rc;

	if (f == NULL) {
		cli_error(p->ctx, "%s: %s", path, strerror(errno));
		return MF_ERROR;
	}
	p->user_col = -1;
	rc = cli_csv_walk(p->ctx, f, path, on_record, p);
	fclose(f);
	if (rc == MF_OK && p->n == 0) {
		cli_error(p->ctx, "%s: no accounts", path);
		return MF_ERROR;
	}
	return rc;
}

static void emit(struct push *p, json_t *ev)
{
	char *line;

	if (ev == NULL)
		return;
	if (!p->tty) {
		line = json_dumps(ev, JSON_COMPACT);
		if (line != NULL)
			printf("%s\n", line);
		free(line);
		fflush(stdout);
	}
	json_decref(ev);
}

static void finish_job(struct push *p, struct job *j, enum job_state st, const char *reason)
{
	j->st = st;
	snprintf(j->reason, sizeof(j->reason), "%s", reason != NULL ? reason : "");
	if (p->tty)
		printf("\r\033[K%s %s%s%s\n", j->name[0] ? j->name : j->given,
		       st == J_MIGRATED ? "MIGRATED" : "FAILED", reason && *reason ? ": " : "",
		       reason ? reason : "");
	emit(p, json_pack("{s:s, s:s, s:s, s:f}", "event",
			  st == J_MIGRATED ? "migrated" : "failed", "user",
			  j->name[0] ? j->name : j->given, "reason", j->reason,
			  "elapsed", now_s() - p->t0));
}

/* Hands j to the daemon. A refusal fails the account; an unreachable
 * daemon fails the whole push (MF_ERROR). */
static int hand_over(struct push *p, struct job *j)
{
	json_t *reply = NULL;

	if (cli_admin_call(p->ctx, json_pack("{s:s, s:s, s:b}", "cmd", "migrate", "user",
					     j->given, "master", 1), &reply) != MF_OK)
		return MF_ERROR;
	if (!json_is_true(json_object_get(reply, "ok"))) {
		finish_job(p, j, J_FAILED, cli_reply_str(reply, "error"));
		json_decref(reply);
		return MF_OK;
	}
	snprintf(j->name, sizeof(j->name), "%s", cli_reply_str(reply, "user"));
	j->st = J_HANDED;
	j->handed_at = j->seen_busy_at = now_s();
	if (strcmp(cli_reply_str(reply, "state"), "MIGRATED") == 0) {
		finish_job(p, j, J_MIGRATED, "already MIGRATED");
	} else {
		emit(p, json_pack("{s:s, s:s, s:s, s:b}", "event", "queued", "user", j->name,
				  "state", cli_reply_str(reply, "state"), "master",
				  json_is_true(json_object_get(reply, "master"))));
	}
	json_decref(reply);
	return MF_OK;
}

/* The daemon's running copies: their counts onto the jobs; *workers_r. */
static int read_copies(struct push *p, unsigned int *workers_r)
{
	json_t *reply = NULL, *c;
	size_t i;

	if (cli_admin_call(p->ctx, json_pack("{s:s}", "cmd", "status"), &reply) != MF_OK)
		return MF_ERROR;
	/* The migration workers (the top-level "workers" are io_uring's). */
	*workers_r = (unsigned int)cli_reply_num(json_object_get(reply, "migrate"), "workers");
	json_array_foreach(json_object_get(reply, "copies"), i, c) {
		const char *who = cli_reply_str(c, "account");

		for (size_t k = 0; k < p->n; k++) {
			struct job *j = &p->jobs[k];

			if (j->st != J_HANDED || strcmp(j->name, who) != 0)
				continue;
			if (j->messages != cli_reply_num(c, "messages") ||
			    j->planned != cli_reply_num(c, "planned")) {
				j->messages = cli_reply_num(c, "messages");
				j->planned = cli_reply_num(c, "planned");
				j->bytes = cli_reply_num(c, "bytes");
				emit(p, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "event",
						  "progress", "user", j->name, "phase",
						  cli_reply_str(c, "phase"), "messages",
						  (json_int_t)j->messages, "planned",
						  (json_int_t)j->planned, "bytes",
						  (json_int_t)j->bytes));
			}
			j->seen_busy_at = now_s();
		}
	}
	json_decref(reply);
	return MF_OK;
}

/* Each handed-over account's state from the ledger. */
static int read_states(struct push *p, struct ledger *l)
{
	char err[512];

	for (size_t k = 0; k < p->n; k++) {
		struct job *j = &p->jobs[k];
		struct account a;
		int rc;

		if (j->st != J_HANDED)
			continue;
		rc = ledger_account_get(l, j->name, &a, err, sizeof(err));
		if (rc == MF_ERROR) {
			cli_error(p->ctx, "ledger: %s", err);
			return MF_ERROR;
		}
		if (rc == LEDGER_ABSENT)
			continue; /* not yet added by the daemon's worker */
		if (a.state == AS_MIGRATED)
			finish_job(p, j, J_MIGRATED, "");
		else if (a.state == AS_FAILED || a.state == AS_PINNED || a.state == AS_ROLLBACK)
			finish_job(p, j, J_FAILED, a.state == AS_FAILED ? a.reason
						   : account_state_name(a.state));
		else if (a.state == AS_COPYING || a.state == AS_CUTOVER)
			j->seen_busy_at = now_s();
		else if (now_s() - j->seen_busy_at > PUSH_REPUSH_S)
			j->st = J_WAITING; /* handed over again below */
	}
	return MF_OK;
}

static void draw(const struct push *p, size_t done, size_t failed, size_t handed)
{
	long long msgs = 0, planned = 0, bytes = 0;
	double el = now_s() - p->t0, left = 0;

	if (!p->tty)
		return;
	for (size_t k = 0; k < p->n; k++) {
		if (p->jobs[k].st == J_HANDED) {
			msgs += p->jobs[k].messages;
			planned += p->jobs[k].planned;
			bytes += p->jobs[k].bytes;
		}
	}
	if (done > 0 && done < p->n)
		left = el / (double)done * (double)(p->n - done - failed);
	printf("\r\033[K%zu/%zu migrated, %zu failed, %zu copying (%lld/%lld msgs, %.1f MB)  "
	       "%.0fs  ETA %.0fs", done, p->n, failed, handed, msgs, planned, (double)bytes / 1e6,
	       el, left);
	fflush(stdout);
}

static int follow(struct push *p, struct ledger *l)
{
	size_t done = 0, failed = 0, handed = 0;
	unsigned int workers = 0;

	for (;;) {
		done = failed = handed = 0;
		for (size_t k = 0; k < p->n; k++) {
			done += p->jobs[k].st == J_MIGRATED;
			failed += p->jobs[k].st == J_FAILED;
			handed += p->jobs[k].st == J_HANDED;
		}
		if (done + failed == p->n)
			break;
		if (read_copies(p, &workers) != MF_OK)
			return MF_ERROR;
		if (p->window == 0)
			p->window = workers > 0 ? 2 * workers : 2;
		for (size_t k = 0; k < p->n && handed < p->window; k++) {
			if (p->jobs[k].st != J_WAITING)
				continue;
			if (hand_over(p, &p->jobs[k]) != MF_OK)
				return MF_ERROR;
			handed += p->jobs[k].st == J_HANDED;
		}
		if (read_states(p, l) != MF_OK)
			return MF_ERROR;
		draw(p, done, failed, handed);
		usleep(PUSH_POLL_MS * 1000);
	}
	if (p->tty)
		printf("\r\033[K%zu/%zu migrated, %zu failed in %.1fs\n", done, p->n, failed,
		       now_s() - p->t0);
	emit(p, json_pack("{s:s, s:I, s:I, s:I, s:f}", "event", "done", "accounts",
			  (json_int_t)p->n, "migrated", (json_int_t)done, "failed",
			  (json_int_t)failed, "elapsed", now_s() - p->t0));
	return failed == 0 ? MF_OK : MF_AGAIN;
}

int cli_push_run(const struct cli_ctx *ctx, char **argv)
{
	struct push p = { .ctx = ctx, .tty = isatty(STDOUT_FILENO) == 1 };
	const char *user = NULL, *csv = NULL;
	struct mf_config cfg;
	struct ledger *l = NULL;
	bool master = false;
	int rc;

	for (char **a = argv; *a != NULL; a++) {
		if (strcmp(*a, "--master") == 0) {
			master = true;
		} else if ((strcmp(*a, "--user") == 0 || strcmp(*a, "--from-csv") == 0 ||
			    strcmp(*a, "--window") == 0) && a[1] != NULL) {
			if (strcmp(*a, "--user") == 0) {
				user = a[1];
			} else if (strcmp(*a, "--from-csv") == 0) {
				csv = a[1];
			} else {
				char *end;
				unsigned long w = strtoul(a[1], &end, 10);

				if (*end != '\0' || w == 0 || w > 10000) {
					cli_error(ctx, "--window: 1 to 10000");
					return CLI_EXIT_USAGE;
				}
				p.window = (unsigned int)w;
			}
			a++;
		} else {
			cli_error(ctx, "unknown option or missing value: '%s'", *a);
			return CLI_EXIT_USAGE;
		}
	}
	if (!master || (user == NULL) == (csv == NULL)) {
		cli_error(ctx, "usage: mailferry migrate (--user U | --from-csv FILE) --master "
			  "[--window N]  (copies in the running mailferryd as its master user; "
			  "--source/--destination for a one-shot copy without it)");
		return CLI_EXIT_USAGE;
	}
	if (user != NULL ? add_job(&p, user) != MF_OK : read_csv(&p, csv) != MF_OK) {
		free(p.jobs);
		return CLI_EXIT_ERROR;
	}
	if (cli_open_ledger(ctx, &cfg, &l) != MF_OK) {
		free(p.jobs);
		return CLI_EXIT_ERROR;
	}
	p.t0 = now_s();
	rc = follow(&p, l);
	ledger_close(l);
	free(p.jobs);
	return rc == MF_OK ? CLI_EXIT_OK : CLI_EXIT_ERROR;
}
