/* Unit tests: migrate/ledger*.c on a temporary SQLite file — file modes,
 * schema version, persistence, the state rules of login_observed, history,
 * listing, two handles at once, and clear errors for bad files. With
 * MF_TEST_PG set (tests/pg/with-pg.sh) the backend-neutral tests run a
 * second time on PostgreSQL: both backends pass one suite. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "fail_mode.h"
#include "ledger.h"
#include "mf.h"

struct fixture {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test-ledger.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/ledger.db", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
	char p[160];

	for (size_t i = 0; i < MF_ARRAY_LEN(suffix); i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, suffix[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* The same tests on PostgreSQL: an empty schema for each. */
static int setup_pg(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *url = getenv("MF_TEST_PG");
	PGconn *c;
	PGresult *r;
	int ok;

	if (f == NULL || url == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s", url);
	c = PQconnectdb(url);
	r = PQexec(c, "SET client_min_messages = warning; "
		      "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	PQfinish(c);
	*state = f;
	return ok ? 0 : -1;
}

static int teardown_pg(void **state)
{
	free(*state);
	return 0;
}

static struct ledger *open_ok(const char *path)
{
	struct ledger *l = NULL;
	char err[512] = "";

	if (ledger_open(path, &l, err, sizeof(err)) != MF_OK)
		fail_msg("ledger_open(%s): %s", path, err);
	return l;
}

static void expect_open_error(const char *path, const char *needle)
{
	struct ledger *l = (struct ledger *)1;
	char err[512] = "";

	assert_int_equal(ledger_open(path, &l, err, sizeof(err)), MF_ERROR);
	assert_null(l);
	if (strstr(err, needle) == NULL)
		fail_msg("error '%s' lacks '%s'", err, needle);
}

static unsigned int file_mode(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		fail_msg("stat %s failed", path);
	return st.st_mode & 07777;
}

static void login(struct ledger *l, const char *name, const char *client,
		  int64_t now, enum account_state want)
{
	enum account_state s = (enum account_state)-1;
	char err[512] = "";

	if (ledger_login_observed(l, name, client, now, &s, err, sizeof(err)) != MF_OK)
		fail_msg("login_observed(%s): %s", name, err);
	assert_int_equal(s, want);
}

static void set_state(struct ledger *l, const char *name, enum account_state to,
		      const char *reason, int64_t now, enum account_state want_old)
{
	enum account_state old = (enum account_state)-1;
	char err[512] = "";

	if (ledger_account_set_state(l, name, to, reason, now, &old, err,
				     sizeof(err)) != MF_OK)
		fail_msg("set_state(%s): %s", name, err);
	assert_int_equal(old, want_old);
}

static void get(struct ledger *l, const char *name, struct account *a)
{
	char err[512] = "";

	if (ledger_account_get(l, name, a, err, sizeof(err)) != MF_OK)
		fail_msg("get(%s): %s", name, err);
}

/* The file and SQLite's -wal and -shm are 0600 whatever the umask: they
 * hold every user's name and address. */
static void test_modes(void **state)
{
	static const mode_t masks[] = { 0, 022, 0277 };
	struct fixture *f = *state;
	char wal[160], shm[160];

	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	snprintf(shm, sizeof(shm), "%s-shm", f->path);
	for (size_t i = 0; i < MF_ARRAY_LEN(masks); i++) {
		mode_t old = umask(masks[i]);
		struct ledger *l = open_ok(f->path);

		umask(old);
		assert_int_equal(file_mode(f->path), 0600);
		login(l, "ann@example.org", "198.18.1.10", 1000, AS_SEEN);
		assert_int_equal(file_mode(wal), 0600);
		assert_int_equal(file_mode(shm), 0600);
		ledger_close(l);
		unlink(f->path);
		unlink(wal);
		unlink(shm);
	}
}

static void test_schema_and_reopen(void **state)
{
	struct fixture *f = *state;
	struct ledger *l = open_ok(f->path);
	struct account a;
	char err[512];
	int version = -1;

	assert_int_equal(ledger_schema_version(l, &version, err, sizeof(err)), MF_OK);
	assert_int_equal(version, LEDGER_SCHEMA_VERSION);
	login(l, "ann@example.org", "198.18.1.10", 1000, AS_SEEN);
	set_state(l, "bob@example.org", AS_PINNED, "vip", 1001, AS_UNSEEN);
	ledger_close(l);

	l = open_ok(f->path);
	assert_int_equal(ledger_schema_version(l, &version, err, sizeof(err)), MF_OK);
	assert_int_equal(version, LEDGER_SCHEMA_VERSION);
	get(l, "ann@example.org", &a);
	assert_int_equal(a.state, AS_SEEN);
	assert_int_equal(a.logins, 1);
	get(l, "bob@example.org", &a);
	assert_int_equal(a.state, AS_PINNED);
	assert_string_equal(a.reason, "vip");
	ledger_close(l);
}

static void test_absent_and_bad_names(void **state)
{
	struct fixture *f = *state;
	struct ledger *l = open_ok(f->path);
	struct account a;
	char err[512] = "";

	assert_int_equal(ledger_account_get(l, "nobody@example.org", &a, err,
					    sizeof(err)), LEDGER_ABSENT);
	assert_int_equal(ledger_account_get(l, "Ann@example.org", &a, err,
					    sizeof(err)), MF_ERROR);
	assert_non_null(strstr(err, "not a normalised"));
	assert_int_equal(ledger_login_observed(l, "a b", "x", 1, NULL, err,
					       sizeof(err)), MF_ERROR);
	assert_int_equal(ledger_account_set_state(l, "", AS_SEEN, "", 1, NULL, err,
						  sizeof(err)), MF_ERROR);
	assert_int_equal(ledger_account_set_state(l, "ann", (enum account_state)42,
						  "", 1, NULL, err, sizeof(err)),
			 MF_ERROR);
	assert_int_equal(ledger_account_list(l, 42, NULL, NULL, err, sizeof(err)),
			 MF_ERROR);
	ledger_close(l);
}

struct events {
	unsigned int n;
	struct account_event e[8];
};

static int collect_event(const struct account_event *e, void *data)
{
	struct events *ev = data;

	if (ev->n < MF_ARRAY_LEN(ev->e))
		ev->e[ev->n] = *e;
	ev->n++;
	return MF_OK;
}

static void history(struct ledger *l, const char *name, struct events *ev)
{
	char err[512] = "";

	memset(ev, 0, sizeof(*ev));
	if (ledger_account_history(l, name, collect_event, ev, err, sizeof(err)) != MF_OK)
		fail_msg("history(%s): %s", name, err);
}

/* UNSEEN -> SEEN on the first login only; any later state survives logins. */
/* A batch of logins is one transaction: every login counted, UNSEEN
 * accounts SEEN, and a bad name refuses the whole batch. */
static void test_logins_batch(void **state)
{
	struct fixture *f = *state;
	struct ledger *l = open_ok(f->path);
	struct ledger_login v[3] = {
		{ .name = "ann@example.org", .client = "198.18.1.10", .at = 1000 },
		{ .name = "bob@example.org", .client = "198.18.1.11", .at = 1001 },
		{ .name = "ann@example.org", .client = "198.18.1.12", .at = 1002 },
	};
	struct account a;
	char err[256];

	assert_int_equal(ledger_logins_observed(l, v, 3, err, sizeof(err)), MF_OK);
	get(l, "ann@example.org", &a);
	assert_int_equal(a.state, AS_SEEN);
	assert_int_equal(a.logins, 2);
	assert_int_equal(a.first_seen, 1000);
	assert_int_equal(a.last_seen, 1002);
	assert_string_equal(a.last_client, "198.18.1.12");
	get(l, "bob@example.org", &a);
	assert_int_equal(a.logins, 1);
	snprintf(v[1].name, sizeof(v[1].name), "bad\001name");
	assert_int_equal(ledger_logins_observed(l, v, 3, err, sizeof(err)), MF_ERROR);
	get(l, "ann@example.org", &a);
	assert_int_equal(a.logins, 2);
	assert_int_equal(ledger_logins_observed(l, v, 0, err, sizeof(err)), MF_OK);
	ledger_close(l);
}

static void test_login_observed(void **state)
{
	struct fixture *f = *state;
	struct ledger *l = open_ok(f->path);
	struct events ev;
	struct account a;

	login(l, "ann@example.org", "198.18.1.10", 1000, AS_SEEN);
	get(l, "ann@example.org", &a);
	assert_int_equal(a.first_seen, 1000);
	assert_int_equal(a.last_seen, 1000);
	assert_int_equal(a.state_changed, 1000);
	assert_string_equal(a.last_client, "198.18.1.10");
	assert_int_equal(a.logins, 1);

	login(l, "ann@example.org", "[2001:db8:1::5]:50000", 2000, AS_SEEN);
	get(l, "ann@example.org", &a);
	assert_int_equal(a.first_seen, 1000);
	assert_int_equal(a.last_seen, 2000);
	assert_int_equal(a.state_changed, 1000);
	assert_string_equal(a.last_client, "[2001:db8:1::5]:50000");
	assert_int_equal(a.logins, 2);
	history(l, "ann@example.org", &ev);
	assert_int_equal(ev.n, 1);
	assert_int_equal(ev.e[0].from, AS_UNSEEN);
	assert_int_equal(ev.e[0].to, AS_SEEN);
	assert_int_equal(ev.e[0].at, 1000);
	assert_non_null(strstr(ev.e[0].reason, "198.18.1.10"));

	/* Later states are the engine's or the admin's, never a login's. */
	static const enum account_state keep[] = {
		AS_COPYING, AS_CUTOVER, AS_MIGRATED, AS_FAILED, AS_PINNED,
		AS_FORCE, AS_ROLLBACK, AS_SEEN,
	};
	enum account_state prev = AS_SEEN;

	for (size_t i = 0; i < MF_ARRAY_LEN(keep); i++) {
		set_state(l, "ann@example.org", keep[i], "test", 3000, prev);
		login(l, "ann@example.org", "198.18.1.11", 3001, keep[i]);
		prev = keep[i];
	}
	get(l, "ann@example.org", &a);
	assert_int_equal(a.logins, 2 + MF_ARRAY_LEN(keep));

	/* An account set before it was seen keeps its state at first login. */
	set_state(l, "carl@example.org", AS_MIGRATED, "moved by hand", 4000, AS_UNSEEN);
	login(l, "carl@example.org", "198.18.1.12", 4001, AS_MIGRATED);
	get(l, "carl@example.org", &a);
	assert_int_equal(a.first_seen, 4001);
	ledger_close(l);
}

static void test_set_state_history(void **state)
{
	struct fixture *f = *state;
	struct ledger *l = open_ok(f->path);
	struct events ev;
	struct account a;
	char err[512] = "";

	assert_int_equal(ledger_account_history(l, "dan@example.org", collect_event,
						&ev, err, sizeof(err)), LEDGER_ABSENT);
	set_state(l, "dan@example.org", AS_PINNED, "board member", 100, AS_UNSEEN);
	set_state(l, "dan@example.org", AS_PINNED, "still", 101, AS_PINNED);
	set_state(l, "dan@example.org", AS_FORCE, "go", 102, AS_PINNED);
	set_state(l, "dan@example.org", AS_MIGRATED, NULL, 103, AS_FORCE);
	history(l, "dan@example.org", &ev);
	assert_int_equal(ev.n, 4);
	assert_int_equal(ev.e[0].at, 100);
	assert_string_equal(ev.e[0].reason, "board member");
	assert_int_equal(ev.e[1].from, AS_PINNED);
	assert_int_equal(ev.e[1].to, AS_PINNED);
	assert_int_equal(ev.e[2].to, AS_FORCE);
	assert_int_equal(ev.e[3].from, AS_FORCE);
	assert_int_equal(ev.e[3].to, AS_MIGRATED);
	assert_string_equal(ev.e[3].reason, "");
	get(l, "dan@example.org", &a);
	assert_int_equal(a.state, AS_MIGRATED);
	assert_int_equal(a.state_changed, 103);
	assert_int_equal(a.logins, 0);
	assert_int_equal(a.first_seen, 0);

	/* Long reasons are cut, not refused. */
	char longer[1000];

	memset(longer, 'r', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	set_state(l, "dan@example.org", AS_ROLLBACK, longer, 104, AS_MIGRATED);
	get(l, "dan@example.org", &a);
	assert_int_equal(strlen(a.reason), LEDGER_REASON_MAX - 1);
	ledger_close(l);
}

struct names {
	unsigned int n;
	unsigned int stop_after; /* 0: never */
	char name[8][ACCOUNT_NAME_MAX + 1];
};

static int collect_name(const struct account *a, void *data)
{
	struct names *nm = data;

	if (nm->n < MF_ARRAY_LEN(nm->name))
		snprintf(nm->name[nm->n], sizeof(nm->name[0]), "%s", a->name);
	nm->n++;
	if (nm->stop_after != 0 && nm->n == nm->stop_after)
		return 7; /* any value: passed back to the caller */
	return MF_OK;
}

static void test_list(void **state)
{
	struct fixture *f = *state;
	struct ledger *l = open_ok(f->path);
	struct names nm;
	char err[512] = "";

	login(l, "zoe@example.org", "198.18.1.1", 10, AS_SEEN);
	login(l, "amy@example.org", "198.18.1.2", 11, AS_SEEN);
	set_state(l, "max@example.org", AS_MIGRATED, "", 12, AS_UNSEEN);
	set_state(l, "bea@example.org", AS_MIGRATED, "", 13, AS_UNSEEN);

	memset(&nm, 0, sizeof(nm));
	assert_int_equal(ledger_account_list(l, -1, collect_name, &nm, err,
					     sizeof(err)), MF_OK);
	assert_int_equal(nm.n, 4);
	assert_string_equal(nm.name[0], "amy@example.org"); /* name order */
	assert_string_equal(nm.name[3], "zoe@example.org");

	memset(&nm, 0, sizeof(nm));
	assert_int_equal(ledger_account_list(l, AS_MIGRATED, collect_name, &nm, err,
					     sizeof(err)), MF_OK);
	assert_int_equal(nm.n, 2);
	assert_string_equal(nm.name[0], "bea@example.org");
	assert_string_equal(nm.name[1], "max@example.org");

	memset(&nm, 0, sizeof(nm));
	assert_int_equal(ledger_account_list(l, AS_CUTOVER, collect_name, &nm, err,
					     sizeof(err)), MF_OK);
	assert_int_equal(nm.n, 0);

	memset(&nm, 0, sizeof(nm));
	nm.stop_after = 2;
	assert_int_equal(ledger_account_list(l, -1, collect_name, &nm, err,
					     sizeof(err)), 7);
	assert_int_equal(nm.n, 2);
	/* The walk was reset: the next one starts afresh. */
	memset(&nm, 0, sizeof(nm));
	assert_int_equal(ledger_account_list(l, -1, collect_name, &nm, err,
					     sizeof(err)), MF_OK);
	assert_int_equal(nm.n, 4);
	ledger_close(l);
}

static int login_other(const struct account *a, void *data)
{
	(void)a;
	login(data, "carl@example.org", "198.18.1.12", 300, AS_SEEN);
	return MF_OK;
}

/* Two handles on one file (two workers, or the gateway and the CLI): each
 * sees the other's commits at once. */
static void test_two_handles(void **state)
{
	struct fixture *f = *state;
	struct ledger *a = open_ok(f->path), *b = open_ok(f->path);
	struct account acc;
	char err[512] = "";

	for (int i = 0; i < 50; i++) {
		login(a, "ann@example.org", "198.18.1.10", 100 + i,
		      i < 25 ? AS_SEEN : AS_MIGRATED);
		if (i == 24)
			set_state(b, "ann@example.org", AS_MIGRATED, "flip", 200,
				  AS_SEEN);
		login(b, "bob@example.org", "198.18.1.11", 100 + i, AS_SEEN);
	}
	get(b, "ann@example.org", &acc);
	assert_int_equal(acc.logins, 50);
	assert_int_equal(acc.state, AS_MIGRATED);
	get(a, "bob@example.org", &acc);
	assert_int_equal(acc.logins, 50);

	/* A walk in progress on one handle does not block the other's writes
	 * (WAL: readers and the writer do not wait for each other). */
	assert_int_equal(ledger_account_list(a, -1, login_other, b, err,
					     sizeof(err)), MF_OK);
	get(a, "carl@example.org", &acc);
	assert_int_equal(acc.logins, 2);
	ledger_close(a);
	ledger_close(b);
}

static void test_bad_files(void **state)
{
	struct fixture *f = *state;
	char junk[4096], other[160];
	sqlite3 *db;
	int fd;

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 7 + 1);
	fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	expect_open_error(f->path, "not a database");
	unlink(f->path);

	/* A file from a newer mailferry is refused, never downgraded. */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL,
				      NULL), SQLITE_OK);
	sqlite3_close(db);
	expect_open_error(f->path, "schema version 99 is newer");
	unlink(f->path);

	snprintf(other, sizeof(other), "%s/missing/ledger.db", f->dir);
	expect_open_error(other, "No such file or directory");
	expect_open_error("", "empty");
	/* a PostgreSQL spec goes to libpq: here a socket directory that does
	 * not exist (nothing on the network is asked) */
	expect_open_error("postgresql:///mailferry?host=/nonexistent-mf-socket-dir",
			  "cannot connect");
}

/* There is nowhere to put a password: no column of the schema could hold
 * one, whatever it were called. */
static void test_no_credentials(void **state)
{
	struct fixture *f = *state;
	struct ledger *l = open_ok(f->path);
	sqlite3_stmt *st;
	sqlite3 *db;
	int n = 0;

	ledger_close(l);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
		"SELECT p.name FROM sqlite_master m, pragma_table_info(m.name) p "
		"WHERE m.type = 'table'", -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *col = (const char *)sqlite3_column_text(st, 0);

		n++;
		assert_null(strstr(col, "pass"));
		assert_null(strstr(col, "secret"));
		assert_null(strstr(col, "cred"));
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	assert_true(n >= 10);
}

static void test_settings(void **state)
{
	struct fixture *f = *state;
	struct ledger *l = open_ok(f->path);
	char v[LEDGER_SETTING_VALUE_MAX], small[4], err[512], long_v[300];

	assert_int_equal(ledger_setting_get(l, "fail_mode", v, sizeof(v), err,
					    sizeof(err)), LEDGER_ABSENT);
	assert_int_equal(ledger_setting_set(l, "fail_mode", "open", 10, err,
					    sizeof(err)), MF_OK);
	assert_int_equal(ledger_setting_set(l, "fail_mode", "closed", 11, err,
					    sizeof(err)), MF_OK);
	assert_int_equal(ledger_setting_get(l, "fail_mode", v, sizeof(v), err,
					    sizeof(err)), MF_OK);
	assert_string_equal(v, "closed");
	/* Too small a buffer, bad keys and values: errors, nothing written. */
	assert_int_equal(ledger_setting_get(l, "fail_mode", small, sizeof(small),
					    err, sizeof(err)), MF_ERROR);
	assert_int_equal(ledger_setting_set(l, "", "x", 12, err, sizeof(err)), MF_ERROR);
	assert_int_equal(ledger_setting_set(l, "k", "a\nb", 12, err, sizeof(err)), MF_ERROR);
	memset(long_v, 'x', sizeof(long_v) - 1);
	long_v[sizeof(long_v) - 1] = '\0';
	assert_int_equal(ledger_setting_set(l, "k", long_v, 12, err, sizeof(err)), MF_ERROR);
	assert_int_equal(ledger_setting_get(l, "k", v, sizeof(v), err, sizeof(err)),
			 LEDGER_ABSENT);
	ledger_close(l);
	/* It survives a reopen. */
	l = open_ok(f->path);
	assert_int_equal(ledger_setting_get(l, "fail_mode", v, sizeof(v), err,
					    sizeof(err)), MF_OK);
	assert_string_equal(v, "closed");
	ledger_close(l);
}

struct flows {
	struct flow_count c[8];
	int n;
};

static int collect_flow(const struct flow_count *c, void *data)
{
	struct flows *f = data;

	if (f->n == 8)
		return MF_ERROR;
	f->c[f->n++] = *c;
	return MF_OK;
}

/* Gate counts and direct counts land in one row per subnet and port and
 * add up; rows come in subnet, port order. */
static void test_flow_counts(void **state)
{
	struct fixture *f = *state;
	struct ledger *l = open_ok(f->path);
	struct flows got = { .n = 0 };
	char err[512];

	assert_int_equal(ledger_flow_count_add(l, "198.18.1.0/24", 143, 2, 5, 100, err,
					       sizeof(err)), MF_OK);
	assert_int_equal(ledger_flow_count_add(l, "198.18.1.0/24", 143, 1, 0, 110, err,
					       sizeof(err)), MF_OK);
	assert_int_equal(ledger_flow_direct_add(l, "198.18.2.7/32", 25, 3, 120, err,
						sizeof(err)), MF_OK);
	assert_int_equal(ledger_flow_direct_add(l, "198.18.2.7/32", 25, 4, 130, err,
						sizeof(err)), MF_OK);
	assert_int_equal(ledger_flow_direct_add(l, "198.18.1.0/24", 143, 9, 140, err,
						sizeof(err)), MF_OK);
	assert_int_equal(ledger_flow_direct_add(l, "198.18.2.7/32", 25, (uint64_t)INT64_MAX + 1,
						150, err, sizeof(err)), MF_ERROR);
	assert_int_equal(ledger_flow_count_list(l, collect_flow, &got, err, sizeof(err)), MF_OK);
	assert_int_equal(got.n, 2);
	assert_string_equal(got.c[0].subnet, "198.18.1.0/24");
	assert_int_equal(got.c[0].port, 143);
	assert_int_equal(got.c[0].observed, 3);
	assert_int_equal(got.c[0].intercepted, 5);
	assert_int_equal(got.c[0].direct, 9);
	assert_int_equal(got.c[0].last_seen, 140);
	assert_string_equal(got.c[1].subnet, "198.18.2.7/32");
	assert_int_equal(got.c[1].port, 25);
	assert_int_equal(got.c[1].observed, 0);
	assert_int_equal(got.c[1].intercepted, 0);
	assert_int_equal(got.c[1].direct, 7);
	assert_int_equal(got.c[1].last_seen, 130);
	ledger_close(l);
}

struct beats {
	struct gateway_beat b[4];
	int n;
};

static int collect_beat(const struct gateway_beat *b, void *data)
{
	struct beats *g = data;

	if (g->n == 4)
		return MF_ERROR;
	g->b[g->n++] = *b;
	return MF_OK;
}

/* A gateway's beat replaces its last one; gateways come by id. */
static void test_gateway_beats(void **state)
{
	struct fixture *f = *state;
	struct ledger *l = open_ok(f->path);
	struct gateway_beat b = { .id = "gw-b", .started = 100, .last_beat = 105, .sessions = 7,
				  .copies = 1, .pid = 4242 };
	struct beats got = { .n = 0 };
	char err[512];

	assert_int_equal(ledger_gateway_beat(l, &b, err, sizeof(err)), MF_OK);
	b.last_beat = 110;
	b.sessions = 3;
	assert_int_equal(ledger_gateway_beat(l, &b, err, sizeof(err)), MF_OK);
	b = (struct gateway_beat){ .id = "gw-a", .started = 90, .last_beat = 95, .stopped = 95 };
	assert_int_equal(ledger_gateway_beat(l, &b, err, sizeof(err)), MF_OK);
	memset(b.id, 'x', sizeof(b.id) - 1);
	b.id[sizeof(b.id) - 1] = '\0';
	assert_int_equal(ledger_gateway_beat(l, &b, err, sizeof(err)), MF_ERROR);
	assert_int_equal(ledger_gateway_list(l, collect_beat, &got, err, sizeof(err)), MF_OK);
	assert_int_equal(got.n, 2);
	assert_string_equal(got.b[0].id, "gw-a");
	assert_int_equal(got.b[0].stopped, 95);
	assert_string_equal(got.b[1].id, "gw-b");
	assert_int_equal(got.b[1].started, 100);
	assert_int_equal(got.b[1].last_beat, 110);
	assert_int_equal(got.b[1].stopped, 0);
	assert_int_equal(got.b[1].sessions, 3);
	assert_int_equal(got.b[1].copies, 1);
	assert_int_equal(got.b[1].pid, 4242);
	ledger_close(l);
}

/* A v1 file (before settings and flow counts) is brought to the current
 * version in place, accounts kept. */
static void test_upgrade_from_v1(void **state)
{
	struct fixture *f = *state;
	struct ledger *l = open_ok(f->path);
	char v[LEDGER_SETTING_VALUE_MAX], err[512];
	struct account a;
	sqlite3 *db;
	int version;

	set_state(l, "ann@example.org", AS_PINNED, "vip", 1000, AS_UNSEEN);
	ledger_close(l);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE setting; DROP TABLE flow_count; DROP TABLE copy_job; "
				      "DROP TABLE account_gateway; DROP TABLE copy_run; DROP TABLE gateway; "
				      "DROP TABLE pop3_uidl; "
				      "ALTER TABLE account DROP COLUMN last_gateway; "
				      "ALTER TABLE account DROP COLUMN notes; "
				      "ALTER TABLE account DROP COLUMN imported; PRAGMA user_version = 1",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	l = open_ok(f->path);
	assert_int_equal(ledger_schema_version(l, &version, err, sizeof(err)), MF_OK);
	assert_int_equal(version, LEDGER_SCHEMA_VERSION);
	get(l, "ann@example.org", &a);
	assert_int_equal(a.state, AS_PINNED);
	assert_int_equal(a.imported, 0);
	assert_string_equal(a.notes, "");
	assert_int_equal(ledger_setting_get(l, "fail_mode", v, sizeof(v), err,
					    sizeof(err)), LEDGER_ABSENT);
	ledger_close(l);
}

static struct uidl_pair pair(const char *dst, const char *src)
{
	struct uidl_pair p;

	memset(&p, 0, sizeof(p));
	snprintf(p.dst, sizeof(p.dst), "%s", dst);
	snprintf(p.src, sizeof(p.src), "%s", src);
	return p;
}

static void uidl_get(struct ledger *l, const char *name, struct uidl_pair **v, size_t *n)
{
	char err[512] = "";

	if (ledger_uidl_map_get(l, name, v, n, err, sizeof(err)) != MF_OK)
		fail_msg("uidl_map_get(%s): %s", name, err);
}

/* POP3 UIDL maps: replaced whole, read back sorted by dst in byte order,
 * UIDLs with every printable byte (quotes, backslashes, braces, commas: the
 * PostgreSQL array literal's syntax) kept exactly, bad maps refused with
 * the old one intact, and one account's map never another's. */
static void test_uidl_map(void **state)
{
	struct fixture *f = *state;
	struct ledger *l = open_ok(f->path);
	struct uidl_pair v[4], bad[2], *got = NULL;
	char err[512], long_uidl[72];
	size_t n = 99;

	v[0] = pair("zz", "\"q\\uote{,}");
	v[1] = pair("Ab", "1");
	v[2] = pair("a~!", "00000001.1700000000");
	v[3] = pair("B", "NULL");
	assert_int_equal(ledger_uidl_map_put(l, "ann@example.org", v, 4, err, sizeof(err)),
			 LEDGER_ABSENT);
	set_state(l, "ann@example.org", AS_COPYING, "test", 1000, AS_UNSEEN);
	set_state(l, "bob@example.org", AS_COPYING, "test", 1000, AS_UNSEEN);
	uidl_get(l, "ann@example.org", &got, &n);
	assert_null(got);
	assert_int_equal(n, 0);
	assert_int_equal(ledger_uidl_map_put(l, "ann@example.org", v, 4, err, sizeof(err)), MF_OK);
	assert_int_equal(ledger_uidl_map_put(l, "bob@example.org", v + 1, 1, err, sizeof(err)),
			 MF_OK);
	uidl_get(l, "ann@example.org", &got, &n);
	assert_int_equal(n, 4);
	assert_string_equal(got[0].dst, "Ab"); /* 'A' < 'B' < 'a' < 'z' */
	assert_string_equal(got[0].src, "1");
	assert_string_equal(got[1].dst, "B");
	assert_string_equal(got[1].src, "NULL");
	assert_string_equal(got[2].dst, "a~!");
	assert_string_equal(got[2].src, "00000001.1700000000");
	assert_string_equal(got[3].dst, "zz");
	assert_string_equal(got[3].src, "\"q\\uote{,}");
	free(got);

	/* refused, nothing written: dst twice, src twice, bad bytes, lengths */
	bad[0] = pair("x", "1");
	bad[1] = pair("x", "2");
	assert_int_equal(ledger_uidl_map_put(l, "ann@example.org", bad, 2, err, sizeof(err)),
			 MF_ERROR);
	bad[1] = pair("y", "1");
	assert_int_equal(ledger_uidl_map_put(l, "ann@example.org", bad, 2, err, sizeof(err)),
			 MF_ERROR);
	bad[1] = pair("y y", "2");
	assert_int_equal(ledger_uidl_map_put(l, "ann@example.org", bad, 2, err, sizeof(err)),
			 MF_ERROR);
	bad[1] = pair("y\x7f", "2");
	assert_int_equal(ledger_uidl_map_put(l, "ann@example.org", bad, 2, err, sizeof(err)),
			 MF_ERROR);
	bad[1] = pair("", "2");
	assert_int_equal(ledger_uidl_map_put(l, "ann@example.org", bad, 2, err, sizeof(err)),
			 MF_ERROR);
	memset(long_uidl, 'u', 71);
	long_uidl[71] = '\0';
	bad[1] = pair("y", "2");
	memcpy(bad[1].src, long_uidl, sizeof(bad[1].src)); /* 71 bytes, no NUL */
	assert_int_equal(ledger_uidl_map_put(l, "ann@example.org", bad, 2, err, sizeof(err)),
			 MF_ERROR);
	long_uidl[70] = '\0'; /* 70: the longest allowed */
	memcpy(bad[1].src, long_uidl, 71);
	assert_int_equal(ledger_uidl_map_put(l, "bob@example.org", bad, 2, err, sizeof(err)), MF_OK);
	assert_int_equal(ledger_uidl_map_put(l, "Ann@example.org", v, 4, err, sizeof(err)),
			 MF_ERROR);
	assert_int_equal(ledger_uidl_map_put(l, "ann@example.org", NULL, 1, err, sizeof(err)),
			 MF_ERROR);
	uidl_get(l, "ann@example.org", &got, &n);
	assert_int_equal(n, 4);
	free(got);
	uidl_get(l, "bob@example.org", &got, &n);
	assert_int_equal(n, 2);
	assert_string_equal(got[0].dst, "x");
	assert_string_equal(got[1].src, long_uidl);
	free(got);

	/* replaced, then forgotten; a map survives reopening */
	assert_int_equal(ledger_uidl_map_put(l, "ann@example.org", v + 2, 1, err, sizeof(err)),
			 MF_OK);
	ledger_close(l);
	l = open_ok(f->path);
	uidl_get(l, "ann@example.org", &got, &n);
	assert_int_equal(n, 1);
	assert_string_equal(got[0].dst, "a~!");
	free(got);
	assert_int_equal(ledger_uidl_map_put(l, "ann@example.org", NULL, 0, err, sizeof(err)),
			 MF_OK);
	uidl_get(l, "ann@example.org", &got, &n);
	assert_null(got);
	assert_int_equal(n, 0);
	uidl_get(l, "nobody@example.org", &got, &n);
	assert_int_equal(n, 0);
	uidl_get(l, "bob@example.org", &got, &n);
	assert_int_equal(n, 2);
	free(got);
	ledger_close(l);
}

/* A big map (several of PostgreSQL's insert chunks) comes back whole. */
static void test_uidl_map_large(void **state)
{
	struct fixture *f = *state;
	struct ledger *l = open_ok(f->path);
	enum { N = 4501 };
	struct uidl_pair *v = calloc(N, sizeof(*v)), *got = NULL;
	char err[512];
	size_t n = 0;

	assert_non_null(v);
	set_state(l, "ann@example.org", AS_COPYING, "test", 1000, AS_UNSEEN);
	for (int i = 0; i < N; i++) {
		/* written in reverse order of dst */
		snprintf(v[i].dst, sizeof(v[i].dst), "d%06d", N - i);
		snprintf(v[i].src, sizeof(v[i].src), "s\"%d\\", i);
	}
	if (ledger_uidl_map_put(l, "ann@example.org", v, N, err, sizeof(err)) != MF_OK)
		fail_msg("put: %s", err);
	uidl_get(l, "ann@example.org", &got, &n);
	assert_int_equal(n, N);
	for (int i = 0; i < N; i++) {
		char want[32];

		snprintf(want, sizeof(want), "d%06d", i + 1);
		assert_string_equal(got[i].dst, want);
		snprintf(want, sizeof(want), "s\"%d\\", N - 1 - i);
		assert_string_equal(got[i].src, want);
	}
	free(got);
	free(v);
	ledger_close(l);
}

/* A v7 ledger (before UIDL maps) is brought to v8 in place, its accounts
 * kept, and takes a map. */
static void test_upgrade_from_v7(void **state)
{
	struct fixture *f = *state;
	struct ledger *l = open_ok(f->path);
	struct uidl_pair v = pair("d1", "s1"), *got = NULL;
	char err[512];
	struct account a;
	sqlite3 *db;
	size_t n = 0;
	int version;

	set_state(l, "ann@example.org", AS_MIGRATED, "done", 1000, AS_UNSEEN);
	ledger_close(l);
	if (ledger_spec_is_shared(f->path)) {
		PGconn *c = PQconnectdb(f->path);
		PGresult *r = PQexec(c, "DROP TABLE pop3_uidl; UPDATE mf_schema SET version = 7");

		assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
		PQclear(r);
		PQfinish(c);
	} else {
		assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_exec(db, "DROP TABLE pop3_uidl; PRAGMA user_version = 7",
					      NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
	}
	l = open_ok(f->path);
	assert_int_equal(ledger_schema_version(l, &version, err, sizeof(err)), MF_OK);
	assert_int_equal(version, 8);
	get(l, "ann@example.org", &a);
	assert_int_equal(a.state, AS_MIGRATED);
	assert_int_equal(ledger_uidl_map_put(l, "ann@example.org", &v, 1, err, sizeof(err)), MF_OK);
	uidl_get(l, "ann@example.org", &got, &n);
	assert_int_equal(n, 1);
	assert_string_equal(got[0].src, "s1");
	free(got);
	ledger_close(l);
}

/* Compare-and-set: changed only from an allowed state, nothing written
 * (not even the row of an unknown account) when refused. */
static void test_set_state_if(void **state)
{
	struct fixture *f = *state;
	struct ledger *l = open_ok(f->path);
	const unsigned int movable = LEDGER_STATE_BIT(AS_UNSEEN) | LEDGER_STATE_BIT(AS_SEEN);
	enum account_state old = AS_PINNED;
	struct account a;
	char err[512];
	struct events ev = { 0 };

	assert_int_equal(ledger_account_set_state_if(l, "new@example.org",
						     LEDGER_STATE_BIT(AS_SEEN), AS_PINNED, "x", 5,
						     &old, err, sizeof(err)), LEDGER_REFUSED);
	assert_int_equal(old, AS_UNSEEN);
	assert_int_equal(ledger_account_get(l, "new@example.org", &a, err, sizeof(err)),
			 LEDGER_ABSENT);
	assert_int_equal(ledger_account_set_state_if(l, "new@example.org", movable, AS_PINNED,
						     "pinned by the admin", 6, &old, err,
						     sizeof(err)), MF_OK);
	assert_int_equal(old, AS_UNSEEN);
	get(l, "new@example.org", &a);
	assert_int_equal(a.state, AS_PINNED);
	assert_string_equal(a.reason, "pinned by the admin");
	/* PINNED is not movable: refused, state and history unchanged. */
	assert_int_equal(ledger_account_set_state_if(l, "new@example.org", movable, AS_COPYING,
						     "claim", 7, &old, err, sizeof(err)),
			 LEDGER_REFUSED);
	assert_int_equal(old, AS_PINNED);
	get(l, "new@example.org", &a);
	assert_int_equal(a.state, AS_PINNED);
	history(l, "new@example.org", &ev);
	assert_int_equal(ev.n, 1);
	assert_int_equal(ledger_account_set_state_if(l, "Bad Name", movable, AS_PINNED, "", 8,
						     NULL, err, sizeof(err)), MF_ERROR);
	ledger_close(l);
}

/* Import: unknown accounts created UNSEEN and marked, known ones keep
 * their state; notes replaced only when given; hostile notes refused. */
static void test_import(void **state)
{
	struct fixture *f = *state;
	struct ledger *l = open_ok(f->path);
	struct account a;
	char err[512], long_n[LEDGER_NOTES_MAX + 8];
	bool created = false;

	login(l, "seen@example.org", "198.18.1.2:1", 100, AS_SEEN);
	assert_int_equal(ledger_account_import(l, "seen@example.org", "Sales, 2nd floor", 200,
					       &created, err, sizeof(err)), MF_OK);
	assert_false(created);
	get(l, "seen@example.org", &a);
	assert_int_equal(a.state, AS_SEEN);
	assert_int_equal(a.imported, 200);
	assert_string_equal(a.notes, "Sales, 2nd floor");
	assert_int_equal(ledger_account_import(l, "new@example.org", NULL, 300, &created, err,
					       sizeof(err)), MF_OK);
	assert_true(created);
	get(l, "new@example.org", &a);
	assert_int_equal(a.state, AS_UNSEEN);
	assert_int_equal(a.imported, 300);
	assert_int_equal(a.first_seen, 0);
	/* A second import keeps the first time; NULL notes keep the notes,
	 * UTF-8 is text. */
	assert_int_equal(ledger_account_import(l, "seen@example.org", NULL, 400, &created, err,
					       sizeof(err)), MF_OK);
	get(l, "seen@example.org", &a);
	assert_int_equal(a.imported, 200);
	assert_string_equal(a.notes, "Sales, 2nd floor");
	assert_int_equal(ledger_account_import(l, "seen@example.org", "J\xc3\xbcrgen", 400,
					       &created, err, sizeof(err)), MF_OK);
	get(l, "seen@example.org", &a);
	assert_string_equal(a.notes, "J\xc3\xbcrgen");
	assert_int_equal(ledger_account_import(l, "seen@example.org", "a\nb", 400, &created,
					       err, sizeof(err)), MF_ERROR);
	assert_int_equal(ledger_account_import(l, "seen@example.org", "a\x1b[2J", 400,
					       &created, err, sizeof(err)), MF_ERROR);
	memset(long_n, 'x', sizeof(long_n) - 1);
	long_n[sizeof(long_n) - 1] = '\0';
	assert_int_equal(ledger_account_import(l, "seen@example.org", long_n, 400, &created,
					       err, sizeof(err)), MF_ERROR);
	get(l, "seen@example.org", &a);
	assert_string_equal(a.notes, "J\xc3\xbcrgen");
	assert_int_equal(ledger_account_import(l, "UPPER@example.org", NULL, 400, &created,
					       err, sizeof(err)), MF_ERROR);
	ledger_close(l);
}

struct runs {
	struct copy_run r[8];
	unsigned int n;
};

static int collect_run(const struct copy_run *r, void *data)
{
	struct runs *rs = data;

	if (rs->n < MF_ARRAY_LEN(rs->r))
		rs->r[rs->n] = *r;
	rs->n++;
	return MF_OK;
}

/* Runs begin, end once with their totals, are listed per account and in
 * all; those left running are interrupted at the next start. */
static void test_copy_runs(void **state)
{
	struct fixture *f = *state;
	struct ledger *l = open_ok(f->path);
	struct runs rs = { .n = 0 };
	int64_t id1, id2, id3;
	unsigned int n = 99;
	char err[512];

	login(l, "ann@example.org", "198.18.1.2:1", 100, AS_SEEN);
	login(l, "bob@example.org", "198.18.1.2:2", 100, AS_SEEN);
	assert_int_equal(ledger_copy_run_begin(l, "ann@example.org", 110, &id1, err,
					       sizeof(err)), MF_OK);
	assert_int_equal(ledger_copy_run_end(l, id1, 120, COPY_FAILED, 3, 4096,
					     "bulk copy: connection refused", err, sizeof(err)),
			 MF_OK);
	/* Ended once only; unknown ids are absent. */
	assert_int_equal(ledger_copy_run_end(l, id1, 121, COPY_MIGRATED, 0, 0, NULL, err,
					     sizeof(err)), LEDGER_ABSENT);
	assert_int_equal(ledger_copy_run_end(l, id1 + 1000, 121, COPY_MIGRATED, 0, 0, NULL, err,
					     sizeof(err)), LEDGER_ABSENT);
	assert_int_equal(ledger_copy_run_end(l, id1, 121, COPY_RUNNING, 0, 0, NULL, err,
					     sizeof(err)), MF_ERROR);
	assert_int_equal(ledger_copy_run_begin(l, "ann@example.org", 130, &id2, err,
					       sizeof(err)), MF_OK);
	assert_int_equal(ledger_copy_run_end(l, id2, 140, COPY_MIGRATED, 10, 65536, NULL, err,
					     sizeof(err)), MF_OK);
	assert_int_equal(ledger_copy_run_begin(l, "bob@example.org", 150, &id3, err,
					       sizeof(err)), MF_OK);
	assert_true(id1 != id2 && id2 != id3);
	/* An account that is not in the ledger has no runs. */
	assert_int_equal(ledger_copy_run_begin(l, "nobody@example.org", 150, &id3, err,
					       sizeof(err)), MF_ERROR);
	assert_int_equal(ledger_copy_run_list(l, "ann@example.org", collect_run, &rs, err,
					      sizeof(err)), MF_OK);
	assert_int_equal(rs.n, 2);
	assert_int_equal(rs.r[0].result, COPY_FAILED);
	assert_int_equal(rs.r[0].started, 110);
	assert_int_equal(rs.r[0].ended, 120);
	assert_int_equal(rs.r[0].messages, 3);
	assert_int_equal(rs.r[0].bytes, 4096);
	assert_string_equal(rs.r[0].error, "bulk copy: connection refused");
	assert_int_equal(rs.r[1].result, COPY_MIGRATED);
	assert_int_equal(rs.r[1].messages, 10);
	assert_string_equal(rs.r[1].error, "");
	/* Only the named account's runs, then everyone's. */
	assert_int_equal(ledger_copy_runs_interrupt(l, "ann@example.org", 190, &n, err,
						    sizeof(err)), MF_OK);
	assert_int_equal(n, 0);
	assert_int_equal(ledger_copy_runs_interrupt(l, NULL, 200, &n, err, sizeof(err)), MF_OK);
	assert_int_equal(n, 1);
	rs.n = 0;
	assert_int_equal(ledger_copy_run_list(l, NULL, collect_run, &rs, err, sizeof(err)),
			 MF_OK);
	assert_int_equal(rs.n, 3);
	assert_string_equal(rs.r[2].name, "bob@example.org");
	assert_int_equal(rs.r[2].result, COPY_INTERRUPTED);
	assert_int_equal(rs.r[2].ended, 200);
	assert_int_equal(ledger_copy_runs_interrupt(l, NULL, 300, &n, err, sizeof(err)), MF_OK);
	assert_int_equal(n, 0);
	assert_int_equal(ledger_copy_run_begin(l, "bob@example.org", 310, &id3, err,
					       sizeof(err)), MF_OK);
	assert_int_equal(ledger_copy_runs_interrupt(l, "bob@example.org", 320, &n, err,
						    sizeof(err)), MF_OK);
	assert_int_equal(n, 1);
	ledger_close(l);
}

static void mode(const struct mf_config *cfg, struct ledger *l, bool closed,
		 bool switched)
{
	bool c = !closed, s = !switched;
	char err[512] = "";

	if (fail_mode_effective(cfg, l, 2000, &c, &s, err, sizeof(err)) != MF_OK)
		fail_msg("fail_mode_effective: %s", err);
	assert_int_equal(c, closed);
	assert_int_equal(s, switched);
}

/* auto: open until CUTOVER or MIGRATED, then closed, recorded once, and
 * kept after the account moves back. open/closed never touch the ledger. */
static void test_fail_mode(void **state)
{
	struct fixture *f = *state;
	struct ledger *l = open_ok(f->path);
	char v[LEDGER_SETTING_VALUE_MAX], err[512];
	struct mf_config cfg;

	mf_config_defaults(&cfg);
	assert_int_equal(cfg.fail, MF_FAIL_AUTO);
	mode(&cfg, l, false, false);
	set_state(l, "ann@example.org", AS_COPYING, "", 1000, AS_UNSEEN);
	mode(&cfg, l, false, false);
	set_state(l, "ann@example.org", AS_CUTOVER, "", 1001, AS_COPYING);
	mode(&cfg, l, true, true);
	mode(&cfg, l, true, false); /* recorded: no second switch */
	assert_int_equal(ledger_setting_get(l, FAIL_MODE_KEY, v, sizeof(v), err,
					    sizeof(err)), MF_OK);
	assert_string_equal(v, "closed");
	set_state(l, "ann@example.org", AS_SEEN, "rollback", 1002, AS_CUTOVER);
	mode(&cfg, l, true, false);
	cfg.fail = MF_FAIL_OPEN;
	mode(&cfg, NULL, false, false);
	cfg.fail = MF_FAIL_CLOSED;
	mode(&cfg, NULL, true, false);
	ledger_close(l);
}

/* MIGRATED alone (no CUTOVER ever seen) turns auto closed as well. */
static void test_fail_mode_migrated(void **state)
{
	struct fixture *f = *state;
	struct ledger *l = open_ok(f->path);
	struct mf_config cfg;

	mf_config_defaults(&cfg);
	set_state(l, "bob@example.org", AS_MIGRATED, "", 1000, AS_UNSEEN);
	mode(&cfg, l, true, true);
	ledger_close(l);
}

/* Which gateway saw whom: the batch's gateway ids, per account. */
static int collect_gw(const struct account_gateway *g, void *data)
{
	char *out = data;

	snprintf(out + strlen(out), 256 - strlen(out), "%s:%llu:%lld ", g->gateway,
		 (unsigned long long)g->logins, (long long)g->last_seen);
	return MF_OK;
}

static void test_gateways_seen(void **state)
{
	struct fixture *f = *state;
	struct ledger *l = open_ok(f->path);
	struct ledger_login v[3] = {
		{ "ann@example.org", "198.18.1.2:1", "gw1", 100 },
		{ "ann@example.org", "198.18.2.2:1", "gw2", 101 },
		{ "ann@example.org", "198.18.1.2:2", "gw1", 102 },
	};
	char out[256] = "", err[512];
	struct account a;

	assert_int_equal(ledger_logins_observed(l, v, 3, err, sizeof(err)), MF_OK);
	get(l, "ann@example.org", &a);
	assert_string_equal(a.last_gateway, "gw1");
	assert_int_equal(ledger_account_gateways(l, "ann@example.org", collect_gw, out, err,
						 sizeof(err)), MF_OK);
	assert_string_equal(out, "gw1:2:102 gw2:1:101 ");
	/* a gateway id is shown in logs: no control bytes */
	snprintf(v[0].gateway, sizeof(v[0].gateway), "gw\n1");
	assert_int_equal(ledger_logins_observed(l, v, 1, err, sizeof(err)), MF_ERROR);
	ledger_close(l);
}

static void reaped_cb(const char *name, const char *owner, void *data)
{
	char *out = data;

	snprintf(out + strlen(out), 256 - strlen(out), "%s/%s ", name, owner);
}

/* One copy job at a time: claim, a second claimer refused, renewals by
 * the owner only, owner-checked state changes, an expired lease reaped
 * back to SEEN, then claimed by the other gateway. */
static void test_job_lease(void **state)
{
	struct fixture *f = *state;
	struct ledger *l1 = open_ok(f->path), *l2 = open_ok(f->path);
	const char *u = "ann@example.org";
	enum account_state st;
	char holder[LEDGER_GATEWAY_MAX], out[256] = "", err[512];
	struct account a;

	login(l1, u, "x", 10, AS_SEEN);
	assert_int_equal(ledger_job_claim(l1, u, "gw1", 10000, 3000, 0, "copy", &st, holder, err,
					  sizeof(err)), MF_OK);
	assert_int_equal(st, AS_COPYING);
	assert_int_equal(ledger_job_claim(l2, u, "gw2", 11000, 3000, 0, "copy", &st, holder, err,
					  sizeof(err)), LEDGER_NOT_OWNER);
	assert_int_equal(st, AS_COPYING);
	assert_string_equal(holder, "gw1");
	assert_int_equal(ledger_job_renew(l1, u, "gw1", 12000, 3000, err, sizeof(err)), MF_OK);
	assert_int_equal(ledger_job_renew(l2, u, "gw2", 12000, 3000, err, sizeof(err)),
			 LEDGER_NOT_OWNER);
	assert_int_equal(ledger_job_set_state(l2, u, "gw2", AS_MIGRATED, "no", 12, false, err,
					      sizeof(err)), LEDGER_NOT_OWNER);
	get(l1, u, &a);
	assert_int_equal(a.state, AS_COPYING);
	/* within the lease (renewed to 15000): nothing to reap */
	assert_int_equal(ledger_jobs_reap(l2, 14999, NULL, reaped_cb, out, err, sizeof(err)),
			 MF_OK);
	assert_string_equal(out, "");
	assert_int_equal(ledger_job_set_state(l1, u, "gw1", AS_CUTOVER, "cut", 14, false, err,
					      sizeof(err)), MF_OK);
	/* gw1 goes silent: its lease ends, the job goes back, the user to SEEN */
	assert_int_equal(ledger_jobs_reap(l2, 15001, NULL, reaped_cb, out, err, sizeof(err)),
			 MF_OK);
	assert_string_equal(out, "ann@example.org/gw1 ");
	get(l1, u, &a);
	assert_int_equal(a.state, AS_SEEN);
	assert_non_null(strstr(a.reason, "gw1 lost its lease"));
	/* the late owner can neither renew nor flip */
	assert_int_equal(ledger_job_renew(l1, u, "gw1", 15002, 3000, err, sizeof(err)),
			 LEDGER_NOT_OWNER);
	assert_int_equal(ledger_job_set_state(l1, u, "gw1", AS_MIGRATED, "late", 15, true, err,
					      sizeof(err)), LEDGER_NOT_OWNER);
	/* gw1 had left its checkpoints: gw2 reads them, binary bytes intact */
	{
		static const unsigned char ck[] = { 'S', 'Q', 0, 0xff, '\'', 0x5c, 0 };
		void *buf;
		size_t len;
		char from[LEDGER_GATEWAY_MAX];

		assert_int_equal(ledger_job_checkpoint_put(l1, u, "gw1", ck, sizeof(ck), err,
							   sizeof(err)), LEDGER_NOT_OWNER);
		assert_int_equal(ledger_job_checkpoint_get(l2, u, &buf, &len, from, err,
							   sizeof(err)), LEDGER_ABSENT);
		assert_null(buf);
		assert_int_equal(ledger_job_claim(l2, u, "gw2", 16000, 3000, 0, "copy", &st,
						  holder, err, sizeof(err)), MF_OK);
		assert_int_equal(ledger_job_checkpoint_put(l2, u, "gw2", ck, sizeof(ck), err,
							   sizeof(err)), MF_OK);
		assert_int_equal(ledger_job_checkpoint_get(l1, u, &buf, &len, from, err,
							   sizeof(err)), MF_OK);
		assert_int_equal(len, sizeof(ck));
		assert_memory_equal(buf, ck, sizeof(ck));
		assert_string_equal(from, "gw2");
		free(buf);
	}
	assert_int_equal(ledger_job_set_state(l2, u, "gw2", AS_MIGRATED, "done", 17, true, err,
					      sizeof(err)), MF_OK);
	{
		void *buf;
		size_t len;
		char from[LEDGER_GATEWAY_MAX];

		/* MIGRATED: the checkpoints are dropped with the job */
		assert_int_equal(ledger_job_checkpoint_get(l1, u, &buf, &len, from, err,
							   sizeof(err)), LEDGER_ABSENT);
	}
	/* released: a MIGRATED account is never claimed again */
	assert_int_equal(ledger_job_claim(l1, u, "gw1", 18000, 3000, 0, "copy", &st, holder, err,
					  sizeof(err)), LEDGER_NOT_OWNER);
	assert_int_equal(st, AS_MIGRATED);
	assert_string_equal(holder, "");
	/* a job held under our own id is no obstacle once its account is back
	 * to SEEN (a single gateway's crashed copy reset at start) */
	login(l1, "cy@example.org", "x", 10, AS_SEEN);
	assert_int_equal(ledger_job_claim(l1, "cy@example.org", "gw1", 20000, 60000, 0, "copy",
					  NULL, NULL, err, sizeof(err)), MF_OK);
	set_state(l1, "cy@example.org", AS_SEEN, "reset", 20, AS_COPYING);
	assert_int_equal(ledger_job_claim(l2, "cy@example.org", "gw2", 20001, 60000, 0, "copy",
					  NULL, holder, err, sizeof(err)), LEDGER_NOT_OWNER);
	assert_string_equal(holder, "gw1");
	assert_int_equal(ledger_job_claim(l1, "cy@example.org", "gw1", 20001, 60000, 0, "copy",
					  NULL, NULL, err, sizeof(err)), MF_OK);
	/* a gateway that knows its old jobs are dead gets them back at once */
	login(l1, "bo@example.org", "x", 10, AS_SEEN);
	assert_int_equal(ledger_job_claim(l1, "bo@example.org", "gw1", 20000, 60000, 0, "copy",
					  NULL, NULL, err, sizeof(err)), MF_OK);
	out[0] = '\0';
	assert_int_equal(ledger_jobs_reap(l1, 20001, "gw1", reaped_cb, out, err, sizeof(err)),
			 MF_OK);
	assert_string_equal(out, "bo@example.org/gw1 cy@example.org/gw1 ");
	get(l1, "bo@example.org", &a);
	assert_int_equal(a.state, AS_SEEN);
	ledger_close(l1);
	ledger_close(l2);
}

/* A FAILED copy is claimed again only once retry_after has passed. */
static void test_job_retry(void **state)
{
	struct fixture *f = *state;
	struct ledger *l = open_ok(f->path);
	const char *u = "ann@example.org";
	char err[512];

	set_state(l, u, AS_FAILED, "broken", 100, AS_UNSEEN);
	assert_int_equal(ledger_job_claim(l, u, "gw1", 150000, 3000, 60, "copy", NULL, NULL, err,
					  sizeof(err)), LEDGER_NOT_OWNER);
	assert_int_equal(ledger_job_claim(l, u, "gw1", 160000, 3000, 60, "copy", NULL, NULL, err,
					  sizeof(err)), MF_OK);
	set_state(l, "pin@example.org", AS_PINNED, "vip", 100, AS_UNSEEN);
	assert_int_equal(ledger_job_claim(l, "pin@example.org", "gw1", 160000, 3000, 60, "copy",
					  NULL, NULL, err, sizeof(err)), LEDGER_NOT_OWNER);
	ledger_close(l);
}

static void heard(const char *name, enum account_state st, void *data)
{
	char *out = data;

	snprintf(out + strlen(out), 256 - strlen(out), "%s=%s ", name, account_state_name(st));
}

/* PostgreSQL: a committed state change reaches another handle's listener;
 * SQLite says it cannot. */
static void test_changes(void **state)
{
	struct fixture *f = *state;
	struct ledger *w = open_ok(f->path), *l = open_ok(f->path);
	char out[256] = "", err[512];

	if (!ledger_spec_is_shared(f->path)) {
		assert_int_equal(ledger_changes_listen(w, err, sizeof(err)), LEDGER_UNSUPPORTED);
		goto out;
	}
	assert_int_equal(ledger_changes_listen(w, err, sizeof(err)), MF_OK);
	set_state(l, "ann@example.org", AS_MIGRATED, "", 10, AS_UNSEEN);
	login(l, "bo@example.org", "x", 10, AS_SEEN);
	for (int i = 0; i < 50 && strstr(out, "bo@") == NULL; i++)
		assert_int_equal(ledger_changes_wait(w, 100, heard, out, err, sizeof(err)), MF_OK);
	assert_string_equal(out, "ann@example.org=MIGRATED bo@example.org=SEEN ");
out:
	ledger_close(w);
	ledger_close(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_and_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_absent_and_bad_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_login_observed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_logins_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_state_history, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_handles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_credentials, setup, teardown),
		cmocka_unit_test_setup_teardown(test_settings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_from_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flow_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gateway_beats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_mode_migrated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_state_if, setup, teardown),
		cmocka_unit_test_setup_teardown(test_import, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_runs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gateways_seen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_lease, setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uidl_map, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uidl_map_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_from_v7, setup, teardown),
	};
	/* What does not depend on SQLite files (modes, bytes on disk, a
	 * hand-made old schema). */
	const struct CMUnitTest pg_tests[] = {
		cmocka_unit_test_setup_teardown(test_schema_and_reopen, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_absent_and_bad_names, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_login_observed, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_logins_batch, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_set_state_history, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_list, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_two_handles, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_settings, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_flow_counts, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_gateway_beats, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_fail_mode, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_fail_mode_migrated, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_set_state_if, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_import, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_copy_runs, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_gateways_seen, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_job_lease, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_job_retry, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_changes, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_uidl_map, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_uidl_map_large, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_upgrade_from_v7, setup_pg, teardown_pg),
	};
	int failed = cmocka_run_group_tests_name("sqlite", tests, NULL, NULL);

	if (getenv("MF_TEST_PG") != NULL)
		failed += cmocka_run_group_tests_name("postgresql", pg_tests, NULL, NULL);
	return failed;
}
