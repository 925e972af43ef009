#include "admin_cmds.h"
#include "admin_proto.h"
#include "daemon.h"
#include "fail_mode.h"
#include "ledger.h"
#include "log.h"
#include "migrator.h"
#include "mf.h"
#include "stats.h"
#include "utf8.h"
#include "worker.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <stdlib.h>
#include <unistd.h>

#define RECENT_ERRORS_MAX 10

void admin_cmds_init(struct admin_cmds *c, struct mf_daemon *d, int64_t started)
{
	memset(c, 0, sizeof(*c));
	c->d = d;
	c->started = started;
}

void admin_cmds_destroy(struct admin_cmds *c)
{
	ledger_close(c->ledger);
	c->ledger = NULL;
}

int admin_paused_load(struct ledger *l, bool *paused_r, char *err, size_t errlen)
{
	char v[LEDGER_SETTING_VALUE_MAX];
	int rc = ledger_setting_get(l, ADMIN_PAUSED_KEY, v, sizeof(v), err, errlen);

	if (rc == MF_ERROR)
		return MF_ERROR;
	*paused_r = rc == MF_OK && strcmp(v, "yes") == 0;
	return MF_OK;
}

/* What the handlers need of the configuration, copied under the lock. */
struct cfg_view {
	char ledger_path[MF_PATH_MAX];
	char default_domain[MF_DOMAIN_MAX + 1];
	bool equivalence;
	enum mf_fail_mode fail;
	unsigned int migrate_workers;
	char gateway_id[LEDGER_GATEWAY_MAX];
};

static void cfg_view(struct mf_daemon *d, struct cfg_view *v)
{
	pthread_mutex_lock(&d->lock);
	snprintf(v->ledger_path, sizeof(v->ledger_path), "%s", d->cfg.ledger_path);
	snprintf(v->default_domain, sizeof(v->default_domain), "%s",
		 d->cfg.ledger_default_domain);
	v->equivalence = d->cfg.ledger_domain_equivalence;
	v->fail = d->cfg.fail;
	v->migrate_workers = d->cfg.migrate_workers;
	snprintf(v->gateway_id, sizeof(v->gateway_id), "%s", d->cfg.gateway_id);
	pthread_mutex_unlock(&d->lock);
}

static struct ledger *ledger_get(struct admin_cmds *c, const struct cfg_view *v, char *err,
				 size_t errlen)
{
	if (c->ledger == NULL && ledger_open(v->ledger_path, &c->ledger, err, errlen) != MF_OK)
		c->ledger = NULL;
	return c->ledger;
}

/* After a ledger error the handle may be broken (a PostgreSQL connection
 * gone): the next request opens a fresh one. */
static void ledger_drop(struct admin_cmds *c)
{
	ledger_close(c->ledger);
	c->ledger = NULL;
}

static json_t *fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A JSON string of text that may not be UTF-8 (names, servers' words). */
static json_t *text(const char *s)
{
	char clean[3 * 768 + 1]; /* the longest text: fail()'s message */

	mf_utf8_clean(s, clean, sizeof(clean));
	return json_string(clean);
}

static json_t *fail(const char *fmt, ...)
{
	char why[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:o}", "ok", 0, "error", text(why));
}

/* ---- status -------------------------------------------------------- */

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sample_of(const struct stats_snapshot *s, struct admin_sample *out)
{
	memset(out, 0, sizeof(*out));
	out->t_ms = mono_ms();
	for (unsigned int p = 0; p < STATS_PROTO_COUNT; p++) {
		out->sessions += s->sessions_total[p];
		out->c2s += s->bytes[p][0];
		out->s2c += s->bytes[p][1];
		for (unsigned int b = 0; b < STATS_BACKEND_COUNT; b++)
			for (unsigned int r = 0; r < STATS_LOGIN_COUNT; r++)
				out->logins += s->logins[p][b][r];
	}
	out->copy_messages = s->copy_messages;
	out->copy_bytes = s->copy_bytes;
}

void admin_cmds_tick(void *arg)
{
	struct admin_cmds *c = arg;
	struct stats_snapshot s;

	stats_snapshot(&c->d->stats, &s, NULL);
	sample_of(&s, &c->samples[c->next_sample]);
	c->next_sample = (c->next_sample + 1) % ADMIN_RATE_SAMPLES;
}

/* Per second between the oldest sample of the window and now; {} until
 * the first sample a second old exists. */
static json_t *rates(const struct admin_cmds *c, const struct admin_sample *now)
{
	const struct admin_sample *old = NULL;
	json_t *r = json_object();
	double dt;

	for (unsigned int i = 0; i < ADMIN_RATE_SAMPLES; i++) {
		const struct admin_sample *x = &c->samples[i];

		if (x->t_ms == 0 || now->t_ms - x->t_ms > ADMIN_RATE_WINDOW_S * 1000 + 500 ||
		    now->t_ms - x->t_ms < 1000)
			continue;
		if (old == NULL || x->t_ms < old->t_ms)
			old = x;
	}
	if (r == NULL || old == NULL)
		return r;
	dt = (double)(now->t_ms - old->t_ms) / 1000.0;
	json_object_set_new(r, "window_s", json_real(dt));
	json_object_set_new(r, "sessions_per_s", json_real((double)(now->sessions - old->sessions) / dt));
	json_object_set_new(r, "logins_per_s", json_real((double)(now->logins - old->logins) / dt));
	json_object_set_new(r, "relay_bytes_per_s",
			    json_real((double)(now->c2s + now->s2c - old->c2s - old->s2c) / dt));
	json_object_set_new(r, "copy_messages_per_s",
			    json_real((double)(now->copy_messages - old->copy_messages) / dt));
	json_object_set_new(r, "copy_bytes_per_s",
			    json_real((double)(now->copy_bytes - old->copy_bytes) / dt));
	return r;
}

/* Sessions open now by protocol and backend, and totals since start. */
static json_t *sessions(const struct stats_snapshot *s)
{
	json_t *open = json_object(), *total = json_object();

	for (unsigned int p = 0; p < STATS_PROTO_COUNT; p++) {
		json_t *per = json_object();

		for (unsigned int b = 0; b < STATS_BACKEND_COUNT; b++)
			json_object_set_new(per, stats_backend_name((enum stats_backend)b),
					    json_integer((json_int_t)s->sessions_open[p][b]));
		json_object_set_new(open, stats_proto_name((enum stats_proto)p), per);
		json_object_set_new(total, stats_proto_name((enum stats_proto)p),
				    json_integer((json_int_t)s->sessions_total[p]));
	}
	return json_pack("{s:o, s:o}", "open", open, "total", total);
}

/* Running copies with their progress (stats.h), oldest first. */
static json_t *copies(const struct stats_snapshot *s)
{
	json_t *a = json_array();

	for (unsigned int i = 0; a != NULL && i < s->n_copies; i++) {
		const struct stats_copy *cp = &s->copies[i];

		json_array_append_new(a, json_pack("{s:o, s:s, s:I, s:I, s:I, s:i, s:i, s:I}",
						   "account", text(cp->account), "phase", cp->phase,
						   "messages", (json_int_t)cp->messages,
						   "planned", (json_int_t)cp->planned,
						   "bytes", (json_int_t)cp->bytes,
						   "folder", (int)cp->folder_index,
						   "folders", (int)cp->folder_count,
						   "started", (json_int_t)cp->started));
	}
	return a;
}

struct state_count {
	json_int_t n[ACCOUNT_STATE_COUNT];
	json_int_t total;
};

static int count_state(const struct account *a, void *data)
{
	struct state_count *sc = data;

	sc->n[a->state]++;
	sc->total++;
	return MF_OK;
}

struct run_scan {
	struct copy_run recent[RECENT_ERRORS_MAX]; /* ring of the latest failures */
	unsigned int n_recent;
};

static int scan_run(const struct copy_run *r, void *data)
{
	struct run_scan *rs = data;

	if (r->result == COPY_FAILED)
		rs->recent[rs->n_recent++ % RECENT_ERRORS_MAX] = *r;
	return MF_OK;
}

static json_t *recent_errors(const struct run_scan *rs)
{
	json_t *a = json_array();
	unsigned int n = rs->n_recent < RECENT_ERRORS_MAX ? rs->n_recent : RECENT_ERRORS_MAX;

	/* Newest first. */
	for (unsigned int i = 0; a != NULL && i < n; i++) {
		const struct copy_run *r = &rs->recent[(rs->n_recent - 1 - i) % RECENT_ERRORS_MAX];

		json_array_append_new(a, json_pack("{s:I, s:o, s:o}", "at", (json_int_t)r->ended,
						   "account", text(r->name), "error", text(r->error)));
	}
	return a;
}

/* fail = auto as the SYN gate last recorded it (it re-checks each second;
 * status only reads). */
static int fail_mode_recorded(struct ledger *l, bool *closed_r, char *err, size_t errlen)
{
	char v[LEDGER_SETTING_VALUE_MAX];
	int rc = ledger_setting_get(l, FAIL_MODE_KEY, v, sizeof(v), err, errlen);

	if (rc == MF_ERROR)
		return MF_ERROR;
	*closed_r = rc == MF_OK && strcmp(v, "closed") == 0;
	return MF_OK;
}

/* Every gateway that beats into the ledger (heartbeat.h), this one too. */
struct gw_list {
	json_t *a;
	const char *self;
	int64_t now;
};

static int add_gateway(const struct gateway_beat *b, void *data)
{
	struct gw_list *g = data;

	json_array_append_new(g->a, json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I}",
					      "id", b->id, "health", ledger_gateway_health(b, g->now),
					      "this", strcmp(b->id, g->self) == 0,
					      "started", (json_int_t)b->started,
					      "last_beat", (json_int_t)b->last_beat,
					      "stopped", (json_int_t)b->stopped,
					      "sessions", (json_int_t)b->sessions,
					      "copies", (json_int_t)b->copies,
					      "pid", (json_int_t)b->pid));
	return MF_OK;
}

static json_t *cmd_status(struct admin_cmds *c)
{
	struct mf_daemon *d = c->d;
	struct cfg_view v;
	struct state_count sc = { { 0 }, 0 };
	struct run_scan rs = { .n_recent = 0 };
	struct stats_snapshot snap;
	struct stats_copy *running = calloc(d->stats.n_copy_slots + 1, sizeof(*running));
	struct admin_sample sample;
	json_t *problems = json_array(), *accounts = json_object(), *r;
	int64_t now = (int64_t)time(NULL);
	struct gw_list gws = { .a = json_array(), .now = now };
	bool paused = false, closed = false, ledger_ok = false;
	unsigned int queued = 0;
	struct ledger *l;
	char err[512];

	if (running == NULL)
		return NULL;
	stats_snapshot(&d->stats, &snap, running);
	sample_of(&snap, &sample);
	cfg_view(d, &v);
	gws.self = v.gateway_id;
	for (unsigned int i = 0; i < d->n_workers; i++)
		if (d->workers[i]->fatal_errno != 0)
			json_array_append_new(problems, json_sprintf("worker %u stopped: %s", i,
								     strerror(d->workers[i]->fatal_errno)));
	l = ledger_get(c, &v, err, sizeof(err));
	if (l != NULL &&
	    ledger_account_list(l, -1, count_state, &sc, err, sizeof(err)) == MF_OK &&
	    ledger_copy_run_list(l, NULL, scan_run, &rs, err, sizeof(err)) == MF_OK &&
	    admin_paused_load(l, &paused, err, sizeof(err)) == MF_OK &&
	    fail_mode_recorded(l, &closed, err, sizeof(err)) == MF_OK &&
	    ledger_gateway_list(l, add_gateway, &gws, err, sizeof(err)) == MF_OK)
		ledger_ok = true;
	if (!ledger_ok) {
		json_array_append_new(problems, text(err));
		ledger_drop(c);
	}
	if (v.fail != MF_FAIL_AUTO)
		closed = v.fail == MF_FAIL_CLOSED;
	if (d->migrate) {
		queued = login_queue_len(&d->logins);
		if (d->migrator == NULL)
			json_array_append_new(problems, json_string("migration workers not running"));
	}
	for (unsigned int i = 0; i < ACCOUNT_STATE_COUNT; i++)
		json_object_set_new(accounts, account_state_name((enum account_state)i),
				    json_integer(sc.n[i]));
	json_object_set_new(accounts, "total", json_integer(sc.total));
	r = json_pack("{s:b, s:s, s:o, s:i, s:I, s:I, s:i, s:s, s:s,"
		      " s:{s:b, s:b, s:i, s:i}, s:o, s:o, s:o, s:o, s:o, s:s, s:o}",
		      "ok", 1, "health", json_array_size(problems) == 0 ? "ok" : "degraded",
		      "problems", problems, "pid", (int)getpid(), "started", (json_int_t)c->started,
		      "uptime_s", (json_int_t)(now - c->started), "workers", (int)d->n_workers,
		      "fail_mode", fail_mode_name(v.fail),
		      "fail_mode_now", closed ? "closed" : "open",
		      "migrate", "enabled", d->migrate, "paused", paused, "queued_logins",
		      (int)queued, "workers", d->migrate ? (int)v.migrate_workers : 0,
		      "accounts", accounts, "sessions", sessions(&snap), "rates",
		      rates(c, &sample), "copies", copies(&snap), "recent_errors",
		      recent_errors(&rs), "gateway_id", v.gateway_id, "gateways", gws.a);
	free(running);
	return r;
}

/* ---- actions on one account ---------------------------------------- */

#define BIT LEDGER_STATE_BIT

/* A copy of the account is running: the migration worker will set its
 * next state, whatever an admin wrote meanwhile. */
static const unsigned int copy_running = BIT(AS_COPYING) | BIT(AS_CUTOVER);

static const char *refusal(enum admin_cmd cmd, enum account_state st)
{
	if (BIT(st) & copy_running)
		return "a copy of it is running: pause, wait for the copy to end, then try again";
	switch (cmd) {
	case ADMIN_PIN:
		if (st == AS_MIGRATED)
			return "it is MIGRATED: its mail lives on the destination, and pinning would "
			       "route it to the source (use rollback)";
		return st == AS_PINNED ? "it is PINNED already" : "not in a state that can be pinned";
	case ADMIN_RETRY:
		return "only a FAILED account is retried";
	case ADMIN_ROLLBACK:
		if (st == AS_ROLLBACK)
			return "it is ROLLBACK already (served by the source)";
		return "not in a state that can be rolled back";
	default:
		return "refused";
	}
}

static unsigned int allowed_from(enum admin_cmd cmd)
{
	switch (cmd) {
	case ADMIN_PIN:
		return BIT(AS_UNSEEN) | BIT(AS_SEEN) | BIT(AS_FAILED) | BIT(AS_ROLLBACK) |
		       BIT(AS_FORCE);
	case ADMIN_RETRY:
		return BIT(AS_FAILED);
	case ADMIN_ROLLBACK:
		return BIT(AS_UNSEEN) | BIT(AS_SEEN) | BIT(AS_FAILED) | BIT(AS_PINNED) |
		       BIT(AS_FORCE);
	default:
		return 0;
	}
}

static enum account_state target(enum admin_cmd cmd)
{
	return cmd == ADMIN_PIN ? AS_PINNED : cmd == ADMIN_RETRY ? AS_SEEN : AS_ROLLBACK;
}

/* MIGRATED has no way back here: say exactly why. */
static json_t *rollback_migrated(const char *name, const struct account *a)
{
	char since[32];
	time_t t = (time_t)a->state_changed;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(since, sizeof(since), "%FT%TZ", &tm) == 0)
		snprintf(since, sizeof(since), "its flip");
	return fail("%s is MIGRATED (since %s): going back means first copying what arrived or "
		    "changed on the destination since then to the source, which needs %s's "
		    "credentials; mailferryd holds a password only from an observed login until "
		    "that login's copy ends, and no master user is configured. Nothing changed: "
		    "%s stays on the destination, no mail was moved", name, since, name, name);
}

/* Releases queued logins of name: the copy starts now. */
static unsigned int release(struct mf_daemon *d, const char *name)
{
	return d->migrate ? login_queue_release(&d->logins, name) : 0;
}

static json_t *migrate_reply(const char *name, enum account_state st, unsigned int held,
			     bool master)
{
	return json_pack("{s:b, s:o, s:s, s:i, s:b}", "ok", 1, "user", text(name), "state",
			 account_state_name(st), "released_logins", (int)held, "master", master);
}

/* migrate USER [--master]: a login of USER held in the queue is released
 * (its copy starts now, paused or not); with master and none held, a copy
 * as the master user is queued (an account the ledger does not know is
 * added to it first, as an import would). With master, an account already
 * MIGRATED or being copied is no error: the push's aim is reached or on
 * its way, and the reply's state says which. */
static json_t *cmd_migrate(struct admin_cmds *c, struct ledger *l, const struct admin_request *rq,
			   const char *name, const struct account *a, bool absent)
{
	char err[512];
	unsigned int held;
	bool created;

	if (!c->d->migrate)
		return fail("in-daemon migration is off ([migrate] enabled = no)");
	/* A FAILED account's held login would meet the retry delay in the
	 * worker's claim and copy nothing: retry says what it means. */
	if (a->state == AS_FAILED)
		return fail("%s is FAILED (%s): `mailferry retry %s` copies it again, at once "
			    "when a login of it is held", name, a->reason, name);
	if (rq->master && (a->state == AS_MIGRATED || a->state == AS_COPYING ||
			   a->state == AS_CUTOVER))
		return migrate_reply(name, a->state, 0, false);
	if (a->state != AS_UNSEEN && a->state != AS_SEEN)
		return fail("%s is %s: only UNSEEN and SEEN accounts are copied", name,
			    account_state_name(a->state));
	held = release(c->d, name);
	if (held > 0) {
		mf_log_info("admin migrate user=%s held_logins=%u", name, held);
		return migrate_reply(name, a->state, held, false);
	}
	if (!rq->master)
		return fail("mailferryd holds no credentials for %s: a password is kept only "
			    "from an observed login until that login's copy ends; %s's next login "
			    "through the gateway starts the copy, or `mailferry migrate %s "
			    "--master` copies it now as the master user", name, name, name);
	if (c->d->migrator == NULL)
		return fail("migration workers not running");
	if (absent && ledger_account_import(l, name, NULL, (int64_t)time(NULL), &created, err,
					    sizeof(err)) != MF_OK) {
		ledger_drop(c);
		return fail("ledger: %s", err);
	}
	if (migrator_push(c->d->migrator, name, err, sizeof(err)) != MF_OK)
		return fail("%s not queued: %s", name, err);
	mf_log_info("admin migrate user=%s master=yes", name);
	return migrate_reply(name, a->state, 0, true);
}

static json_t *cmd_account(struct admin_cmds *c, const struct admin_request *rq)
{
	char name[ACCOUNT_NAME_MAX + 1], err[512], reason[LEDGER_REASON_MAX];
	enum account_state old = AS_UNSEEN;
	struct account a;
	struct cfg_view v;
	struct ledger *l;
	unsigned int held;
	int rc;

	cfg_view(c->d, &v);
	if (account_name_normalise(rq->user, strlen(rq->user), v.default_domain, v.equivalence,
				   name, sizeof(name), err, sizeof(err)) != MF_OK)
		return fail("bad user name: %s", err);
	l = ledger_get(c, &v, err, sizeof(err));
	if (l == NULL)
		return fail("ledger: %s", err);
	rc = ledger_account_get(l, name, &a, err, sizeof(err));
	if (rc == MF_ERROR) {
		ledger_drop(c);
		return fail("ledger: %s", err);
	}
	if (rc == LEDGER_ABSENT) {
		memset(&a, 0, sizeof(a));
		a.state = AS_UNSEEN;
	}
	if (rq->cmd == ADMIN_MIGRATE)
		return cmd_migrate(c, l, rq, name, &a, rc == LEDGER_ABSENT);
	if (rq->cmd == ADMIN_ROLLBACK && a.state == AS_MIGRATED)
		return rollback_migrated(name, &a);
	snprintf(reason, sizeof(reason), "admin %s", admin_cmd_name(rq->cmd));
	rc = ledger_account_set_state_if(l, name, allowed_from(rq->cmd), target(rq->cmd), reason,
					 (int64_t)time(NULL), &old, err, sizeof(err));
	if (rc == MF_ERROR) {
		ledger_drop(c);
		return fail("ledger: %s", err);
	}
	if (rc == LEDGER_REFUSED)
		return fail("%s is %s: %s", name, account_state_name(old), refusal(rq->cmd, old));
	mf_log_info("admin %s user=%s from=%s to=%s", admin_cmd_name(rq->cmd), name,
		    account_state_name(old), account_state_name(target(rq->cmd)));
	held = rq->cmd == ADMIN_RETRY ? release(c->d, name) : 0;
	return json_pack("{s:b, s:o, s:s, s:s, s:b}", "ok", 1, "user", text(name), "from",
			 account_state_name(old), "to", account_state_name(target(rq->cmd)),
			 "copy_started", held > 0);
}

/* ---- pause / resume ------------------------------------------------- */

static json_t *cmd_pause(struct admin_cmds *c, bool pause)
{
	struct cfg_view v;
	struct ledger *l;
	char err[512];

	cfg_view(c->d, &v);
	l = ledger_get(c, &v, err, sizeof(err));
	/* Recorded first: a pause that a restart forgets is no pause. */
	if (l == NULL ||
	    ledger_setting_set(l, ADMIN_PAUSED_KEY, pause ? "yes" : "no", (int64_t)time(NULL), err,
			       sizeof(err)) != MF_OK) {
		ledger_drop(c);
		return fail("ledger: %s", err);
	}
	if (c->d->migrate)
		login_queue_set_paused(&c->d->logins, pause);
	mf_log_info("admin %s", pause ? "pause" : "resume");
	return json_pack("{s:b, s:b, s:b, s:i}", "ok", 1, "paused", pause, "migrate_enabled",
			 c->d->migrate, "queued_logins",
			 c->d->migrate ? (int)login_queue_len(&c->d->logins) : 0);
}

char *admin_cmds_handle(void *arg, const char *line, size_t len)
{
	struct admin_cmds *c = arg;
	struct admin_request rq;
	char err[256];
	json_t *r;
	char *out;

	if (admin_request_parse(line, len, &rq, err, sizeof(err)) != MF_OK)
		r = fail("bad request: %s", err);
	else if (rq.cmd == ADMIN_STATUS)
		r = cmd_status(c);
	else if (rq.cmd == ADMIN_PAUSE || rq.cmd == ADMIN_RESUME)
		r = cmd_pause(c, rq.cmd == ADMIN_PAUSE);
	else
		r = cmd_account(c, &rq);
	if (r == NULL)
		return NULL;
	/* No newline inside: one reply, one line. */
	out = json_dumps(r, JSON_COMPACT);
	json_decref(r);
	return out;
}
