/* ledger_sqlite.c — the ledger on SQLite: one file, one gateway.
 *
 * WAL journal: readers (routing lookups) never block the writer (login
 * observations) and vice versa, and several handles may share the file.
 * synchronous=NORMAL: in WAL mode the file can never be corrupted by a
 * crash or power cut, only the last commits before a power cut may be
 * lost; for a login counter or a SEEN that the next login records again
 * that costs nothing, and it saves an fsync per login. State changes,
 * which decide where a user's mail goes, switch to FULL for their commit.
 *
 * States are stored by name ("SEEN"), not by enum value, so the file reads
 * the same to PostgreSQL's schema, to sqlite3(1), and to a later build
 * whose enum has grown. */
#include "ledger_backend.h"
#include "mf.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* How long a call waits for another writer before giving up. Writers hold
 * the lock for a few statements, so this only trips on a stuck process. */
#define LEDGER_BUSY_TIMEOUT_MS 5000

enum stmt_id {
	ST_BEGIN = 0,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SYNC_FULL,
	ST_SYNC_NORMAL,
	ST_GET,
	ST_STATE,
	ST_INSERT,
	ST_SEEN,
	ST_SET_STATE,
	ST_HISTORY_ADD,
	ST_LIST_ALL,
	ST_LIST_STATE,
	ST_HISTORY,
	ST_SETTING_GET,
	ST_SETTING_SET,
	ST_FLOW_ADD,
	ST_FLOW_DIRECT,
	ST_FLOW_LIST,
	ST_GW_SEEN,
	ST_IMPORT,
	ST_RUN_BEGIN,
	ST_RUN_END,
	ST_RUNS_INTERRUPT,
	ST_RUN_LIST_ONE,
	ST_RUN_LIST_ALL,
	ST_COUNT
};

#define ACCOUNT_COLUMNS \
	"name, state, first_seen, last_seen, last_client, logins, " \
	"state_changed, reason, last_gateway, imported, notes"
#define RUN_COLUMNS "id, name, started, ended, result, messages, bytes, error"

/* Prepared once at open: no SQL is parsed on the login path. */
static const char *const stmt_sql[ST_COUNT] = {
	/* IMMEDIATE takes the write lock up front, so a read-then-write
	 * transaction never fails half way with SQLITE_BUSY. */
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_SYNC_FULL] = "PRAGMA synchronous = FULL",
	[ST_SYNC_NORMAL] = "PRAGMA synchronous = NORMAL",
	[ST_GET] = "SELECT " ACCOUNT_COLUMNS " FROM account WHERE name = ?1",
	[ST_STATE] = "SELECT state FROM account WHERE name = ?1",
	[ST_INSERT] = "INSERT OR IGNORE INTO account (name, state) "
		      "VALUES (?1, 'UNSEEN')",
	[ST_SEEN] = "UPDATE account SET "
		    "first_seen = CASE first_seen WHEN 0 THEN ?2 ELSE first_seen END, "
		    "last_seen = ?2, last_client = ?3, logins = logins + 1, "
		    "last_gateway = ?4 WHERE name = ?1",
	[ST_SET_STATE] = "UPDATE account SET state = ?2, state_changed = ?3, "
			 "reason = ?4 WHERE name = ?1",
	[ST_HISTORY_ADD] = "INSERT INTO account_history "
			   "(name, at, from_state, to_state, reason) "
			   "VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_LIST_ALL] = "SELECT " ACCOUNT_COLUMNS " FROM account ORDER BY name",
	[ST_LIST_STATE] = "SELECT " ACCOUNT_COLUMNS " FROM account "
			  "WHERE state = ?1 ORDER BY name",
	[ST_HISTORY] = "SELECT at, from_state, to_state, reason "
		       "FROM account_history WHERE name = ?1 ORDER BY id",
	[ST_SETTING_GET] = "SELECT value FROM setting WHERE key = ?1",
	[ST_SETTING_SET] = "INSERT INTO setting (key, value, changed) "
			   "VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE "
			   "SET value = excluded.value, changed = excluded.changed",
	[ST_FLOW_ADD] = "INSERT INTO flow_count (subnet, port, observed, intercepted, last_seen) "
			"VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (subnet, port) DO UPDATE "
			"SET observed = observed + excluded.observed, "
			"intercepted = intercepted + excluded.intercepted, "
			"last_seen = excluded.last_seen",
	[ST_FLOW_DIRECT] = "INSERT INTO flow_count (subnet, port, direct, last_seen) "
			   "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (subnet, port) DO UPDATE "
			   "SET direct = direct + excluded.direct, "
			   "last_seen = excluded.last_seen",
	[ST_GW_SEEN] = "INSERT INTO account_gateway (name, gateway, logins, first_seen, last_seen) "
		       "VALUES (?1, ?2, 1, ?3, ?3) ON CONFLICT (name, gateway) DO UPDATE "
		       "SET logins = logins + 1, last_seen = excluded.last_seen",
	[ST_FLOW_LIST] = "SELECT subnet, port, observed, intercepted, last_seen, direct "
			 "FROM flow_count ORDER BY subnet, port",
	[ST_IMPORT] = "UPDATE account SET "
		      "imported = CASE imported WHEN 0 THEN ?2 ELSE imported END, "
		      "notes = COALESCE(?3, notes) WHERE name = ?1",
	[ST_RUN_BEGIN] = "INSERT INTO copy_run (name, started) VALUES (?1, ?2)",
	[ST_RUN_END] = "UPDATE copy_run SET ended = ?2, result = ?3, messages = ?4, "
		       "bytes = ?5, error = ?6 WHERE id = ?1 AND result = 'running'",
	[ST_RUNS_INTERRUPT] = "UPDATE copy_run SET ended = ?1, result = 'interrupted' "
			      "WHERE result = 'running' AND (?2 IS NULL OR name = ?2)",
	[ST_RUN_LIST_ONE] = "SELECT " RUN_COLUMNS " FROM copy_run WHERE name = ?1 ORDER BY id",
	[ST_RUN_LIST_ALL] = "SELECT " RUN_COLUMNS " FROM copy_run ORDER BY id",
};

struct ledger_sqlite {
	struct ledger base; /* first: struct ledger * converts to this */
	sqlite3 *db;
	sqlite3_stmt *stmt[ST_COUNT];
	char path[];
};

static struct ledger_sqlite *to_sqlite(struct ledger *l)
{
	return (struct ledger_sqlite *)l;
}

static int db_err(struct ledger_sqlite *s, char *err, size_t errlen,
		  const char *what)
{
	return mf_err(err, errlen, "ledger %s: %s: %s", s->path, what,
		      sqlite3_errmsg(s->db));
}

/* ---- schema -------------------------------------------------------- */

static int schema_v1(sqlite3 *db, char **msg_r)
{
	static const char sql[] =
		"CREATE TABLE account ("
		" name TEXT PRIMARY KEY NOT NULL,"
		" state TEXT NOT NULL DEFAULT 'UNSEEN',"
		" first_seen INTEGER NOT NULL DEFAULT 0,"
		" last_seen INTEGER NOT NULL DEFAULT 0,"
		" last_client TEXT NOT NULL DEFAULT '',"
		" logins INTEGER NOT NULL DEFAULT 0,"
		" state_changed INTEGER NOT NULL DEFAULT 0,"
		" reason TEXT NOT NULL DEFAULT ''"
		") WITHOUT ROWID;"
		"CREATE INDEX account_by_state ON account (state, name);"
		"CREATE TABLE account_history ("
		" id INTEGER PRIMARY KEY,"
		" name TEXT NOT NULL REFERENCES account (name),"
		" at INTEGER NOT NULL,"
		" from_state TEXT NOT NULL,"
		" to_state TEXT NOT NULL,"
		" reason TEXT NOT NULL"
		");"
		"CREATE INDEX account_history_by_name ON account_history (name, id);";

	return sqlite3_exec(db, sql, NULL, NULL, msg_r);
}

/* v2: gateway-wide settings (ledger_setting_get/set). */
static int schema_v2(sqlite3 *db, char **msg_r)
{
	static const char sql[] =
		"CREATE TABLE setting ("
		" key TEXT PRIMARY KEY NOT NULL,"
		" value TEXT NOT NULL,"
		" changed INTEGER NOT NULL DEFAULT 0"
		") WITHOUT ROWID;";

	return sqlite3_exec(db, sql, NULL, NULL, msg_r);
}

/* v3: new flows per client subnet and port (ledger_flow_count_*). */
static int schema_v3(sqlite3 *db, char **msg_r)
{
	static const char sql[] =
		"CREATE TABLE flow_count ("
		" subnet TEXT NOT NULL,"
		" port INTEGER NOT NULL,"
		" observed INTEGER NOT NULL DEFAULT 0,"
		" intercepted INTEGER NOT NULL DEFAULT 0,"
		" last_seen INTEGER NOT NULL DEFAULT 0,"
		" PRIMARY KEY (subnet, port)"
		") WITHOUT ROWID;";

	return sqlite3_exec(db, sql, NULL, NULL, msg_r);
}

/* v4: flows that reached a source directly (ledger_flow_direct_add). */
static int schema_v4(sqlite3 *db, char **msg_r)
{
	static const char sql[] =
		"ALTER TABLE flow_count ADD COLUMN direct INTEGER NOT NULL DEFAULT 0;";

	return sqlite3_exec(db, sql, NULL, NULL, msg_r);
}

/* v5: which gateway saw whom, and copy jobs with leases (one gateway on
 * SQLite, but the same rows and rules as on PostgreSQL). */
static int schema_v5(sqlite3 *db, char **msg_r)
{
	static const char sql[] =
		"ALTER TABLE account ADD COLUMN last_gateway TEXT NOT NULL DEFAULT '';"
		"CREATE TABLE account_gateway ("
		" name TEXT NOT NULL REFERENCES account (name),"
		" gateway TEXT NOT NULL,"
		" logins INTEGER NOT NULL DEFAULT 0,"
		" first_seen INTEGER NOT NULL DEFAULT 0,"
		" last_seen INTEGER NOT NULL DEFAULT 0,"
		" PRIMARY KEY (name, gateway)"
		") WITHOUT ROWID;"
		"CREATE TABLE copy_job ("
		" name TEXT PRIMARY KEY NOT NULL REFERENCES account (name),"
		" owner TEXT NOT NULL DEFAULT '',"
		" lease_until INTEGER NOT NULL DEFAULT 0,"
		" claimed INTEGER NOT NULL DEFAULT 0,"
		" checkpoint BLOB,"
		" checkpoint_from TEXT NOT NULL DEFAULT ''"
		") WITHOUT ROWID;";

	return sqlite3_exec(db, sql, NULL, NULL, msg_r);
}

/* v6: the admin's import (imported, notes) and copy runs. */
static int schema_v6(sqlite3 *db, char **msg_r)
{
	static const char sql[] =
		"ALTER TABLE account ADD COLUMN imported INTEGER NOT NULL DEFAULT 0;"
		"ALTER TABLE account ADD COLUMN notes TEXT NOT NULL DEFAULT '';"
		"CREATE TABLE copy_run ("
		" id INTEGER PRIMARY KEY,"
		" name TEXT NOT NULL REFERENCES account (name),"
		" started INTEGER NOT NULL,"
		" ended INTEGER NOT NULL DEFAULT 0,"
		" result TEXT NOT NULL DEFAULT 'running',"
		" messages INTEGER NOT NULL DEFAULT 0,"
		" bytes INTEGER NOT NULL DEFAULT 0,"
		" error TEXT NOT NULL DEFAULT ''"
		");"
		"CREATE INDEX copy_run_by_name ON copy_run (name, id);"
		"CREATE INDEX copy_run_running ON copy_run (result) WHERE result = 'running';";

	return sqlite3_exec(db, sql, NULL, NULL, msg_r);
}

/* v7: gateways' heartbeats (ledger_gateway_beat). */
static int schema_v7(sqlite3 *db, char **msg_r)
{
	static const char sql[] =
		"CREATE TABLE gateway ("
		" id TEXT PRIMARY KEY NOT NULL,"
		" started INTEGER NOT NULL,"
		" last_beat INTEGER NOT NULL,"
		" stopped INTEGER NOT NULL DEFAULT 0,"
		" sessions INTEGER NOT NULL DEFAULT 0,"
		" copies INTEGER NOT NULL DEFAULT 0,"
		" pid INTEGER NOT NULL DEFAULT 0"
		") WITHOUT ROWID;";

	return sqlite3_exec(db, sql, NULL, NULL, msg_r);
}

/* v8: POP3 UIDL maps (ledger_uidl_map_*): which destination UIDL holds
 * the bytes of which source UIDL, per account. */
static int schema_v8(sqlite3 *db, char **msg_r)
{
	static const char sql[] =
		"CREATE TABLE pop3_uidl ("
		" name TEXT NOT NULL REFERENCES account (name),"
		" dst TEXT NOT NULL,"
		" src TEXT NOT NULL,"
		" PRIMARY KEY (name, dst),"
		" UNIQUE (name, src)"
		") WITHOUT ROWID;";

	return sqlite3_exec(db, sql, NULL, NULL, msg_r);
}

/* Schema steps in order: step i takes a file from version i to i + 1.
 * A new version is one more function and one more line here. */
static int (*const schema_steps[])(sqlite3 *db, char **msg_r) = {
	schema_v1,
	schema_v2,
	schema_v3,
	schema_v4,
	schema_v5,
	schema_v6,
	schema_v7,
	schema_v8,
};

#define SCHEMA_VERSION ((int)MF_ARRAY_LEN(schema_steps))
_Static_assert(MF_ARRAY_LEN(schema_steps) == LEDGER_SCHEMA_VERSION,
	       "a schema step without LEDGER_SCHEMA_VERSION (or the reverse)");

static int int_pragma(sqlite3 *db, const char *sql, int *v_r)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return MF_ERROR;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*v_r = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? MF_OK : MF_ERROR;
}

/* Brings the file to SCHEMA_VERSION in one transaction: a crash half way
 * leaves the old version, and two processes opening a fresh file at once
 * migrate it once (the second waits, then finds it done). */
static int schema_migrate(struct ledger_sqlite *s, char *err, size_t errlen)
{
	char *msg = NULL, sql[64];
	int version;

	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_err(s, err, errlen, "cannot start schema update");
	if (int_pragma(s->db, "PRAGMA user_version", &version) != MF_OK) {
		db_err(s, err, errlen, "cannot read the schema version");
		goto rollback;
	}
	if (version > SCHEMA_VERSION || version < 0) {
		mf_err(err, errlen, "ledger %s: schema version %d is newer than "
		       "this mailferry knows (%d)", s->path, version,
		       SCHEMA_VERSION);
		goto rollback;
	}
	for (; version < SCHEMA_VERSION; version++) {
		if (schema_steps[version](s->db, &msg) != SQLITE_OK) {
			mf_err(err, errlen, "ledger %s: schema update to v%d: %s",
			       s->path, version + 1, msg ? msg : "failed");
			sqlite3_free(msg);
			goto rollback;
		}
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version + 1);
		if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
			db_err(s, err, errlen, "cannot set the schema version");
			goto rollback;
		}
	}
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		db_err(s, err, errlen, "cannot commit the schema update");
		goto rollback;
	}
	return MF_OK;

rollback:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return MF_ERROR;
}

/* ---- statements ---------------------------------------------------- */

static void stmt_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Runs a statement that returns no rows. */
static int stmt_run(struct ledger_sqlite *s, enum stmt_id id, char *err,
		    size_t errlen)
{
	sqlite3_stmt *st = s->stmt[id];
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE) {
		db_err(s, err, errlen, stmt_sql[id]);
		stmt_done(st);
		return MF_ERROR;
	}
	stmt_done(st);
	return MF_OK;
}

static void tx_rollback(struct ledger_sqlite *s)
{
	/* Fails harmlessly when SQLite already rolled back by itself. */
	sqlite3_step(s->stmt[ST_ROLLBACK]);
	stmt_done(s->stmt[ST_ROLLBACK]);
}

static void copy_text(char *dst, size_t dstlen, const unsigned char *src)
{
	snprintf(dst, dstlen, "%s", src ? (const char *)src : "");
}

static int parse_state(struct ledger_sqlite *s, const unsigned char *text,
		       enum account_state *s_r, char *err, size_t errlen)
{
	const char *t = text ? (const char *)text : "";

	if (account_state_parse(t, s_r) == MF_OK)
		return MF_OK;
	return mf_err(err, errlen, "ledger %s: unknown state '%.32s' in the file",
		      s->path, t);
}

/* Reads the ACCOUNT_COLUMNS of the current row. */
static int row_account(struct ledger_sqlite *s, sqlite3_stmt *st,
		       struct account *a, char *err, size_t errlen)
{
	memset(a, 0, sizeof(*a));
	copy_text(a->name, sizeof(a->name), sqlite3_column_text(st, 0));
	if (parse_state(s, sqlite3_column_text(st, 1), &a->state, err, errlen))
		return MF_ERROR;
	a->first_seen = sqlite3_column_int64(st, 2);
	a->last_seen = sqlite3_column_int64(st, 3);
	copy_text(a->last_client, sizeof(a->last_client), sqlite3_column_text(st, 4));
	a->logins = (uint64_t)sqlite3_column_int64(st, 5);
	a->state_changed = sqlite3_column_int64(st, 6);
	copy_text(a->reason, sizeof(a->reason), sqlite3_column_text(st, 7));
	copy_text(a->last_gateway, sizeof(a->last_gateway), sqlite3_column_text(st, 8));
	a->imported = sqlite3_column_int64(st, 9);
	copy_text(a->notes, sizeof(a->notes), sqlite3_column_text(st, 10));
	return MF_OK;
}

/* Current state of name: MF_OK, LEDGER_ABSENT or MF_ERROR. */
static int read_state(struct ledger_sqlite *s, const char *name,
		      enum account_state *state_r, char *err, size_t errlen)
{
	sqlite3_stmt *st = s->stmt[ST_STATE];
	int rc;

	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		rc = LEDGER_ABSENT;
	} else if (rc == SQLITE_ROW) {
		rc = parse_state(s, sqlite3_column_text(st, 0), state_r, err, errlen);
	} else {
		rc = db_err(s, err, errlen, "cannot read the account's state");
	}
	stmt_done(st);
	return rc;
}

/* Inside a transaction: sets the state and appends to the history. */
static int change_state(struct ledger_sqlite *s, const char *name,
			enum account_state from, enum account_state to,
			const char *reason, int64_t now, char *err, size_t errlen)
{
	sqlite3_stmt *st = s->stmt[ST_SET_STATE];
	char r[LEDGER_REASON_MAX];

	copy_text(r, sizeof(r), (const unsigned char *)reason);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, account_state_name(to), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_text(st, 4, r, -1, SQLITE_STATIC);
	if (stmt_run(s, ST_SET_STATE, err, errlen) != MF_OK)
		return MF_ERROR;
	st = s->stmt[ST_HISTORY_ADD];
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_text(st, 3, account_state_name(from), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, account_state_name(to), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r, -1, SQLITE_STATIC);
	return stmt_run(s, ST_HISTORY_ADD, err, errlen);
}

static int insert_account(struct ledger_sqlite *s, const char *name, char *err,
			  size_t errlen)
{
	sqlite3_bind_text(s->stmt[ST_INSERT], 1, name, -1, SQLITE_STATIC);
	return stmt_run(s, ST_INSERT, err, errlen);
}

/* ---- operations ---------------------------------------------------- */

static int sq_schema_version(struct ledger *l, int *version_r, char *err,
			     size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);

	if (int_pragma(s->db, "PRAGMA user_version", version_r) != MF_OK)
		return db_err(s, err, errlen, "cannot read the schema version");
	return MF_OK;
}

static int sq_account_get(struct ledger *l, const char *name, struct account *a_r,
			  char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);
	sqlite3_stmt *st = s->stmt[ST_GET];
	int rc;

	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		rc = LEDGER_ABSENT;
	else if (rc == SQLITE_ROW)
		rc = row_account(s, st, a_r, err, errlen);
	else
		rc = db_err(s, err, errlen, "cannot read the account");
	stmt_done(st);
	return rc;
}

/* One login inside the caller's transaction. */
static int observe_one(struct ledger_sqlite *s, const char *name, const char *client,
		       const char *gateway, int64_t now, enum account_state *state_r, char *err,
		       size_t errlen)
{
	enum account_state state = AS_UNSEEN;
	sqlite3_stmt *st;
	char why[LEDGER_REASON_MAX];

	if (insert_account(s, name, err, errlen) != MF_OK ||
	    read_state(s, name, &state, err, errlen) != MF_OK)
		return MF_ERROR;
	if (state == AS_UNSEEN) {
		snprintf(why, sizeof(why), "first login from %s",
			 client[0] ? client : "unknown address");
		if (change_state(s, name, AS_UNSEEN, AS_SEEN, why, now, err,
				 errlen) != MF_OK)
			return MF_ERROR;
		state = AS_SEEN;
	}
	st = s->stmt[ST_SEEN];
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_text(st, 3, client, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, gateway, -1, SQLITE_STATIC);
	if (stmt_run(s, ST_SEEN, err, errlen) != MF_OK)
		return MF_ERROR;
	if (gateway[0] != '\0') {
		st = s->stmt[ST_GW_SEEN];
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, gateway, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, now);
		if (stmt_run(s, ST_GW_SEEN, err, errlen) != MF_OK)
			return MF_ERROR;
	}
	if (state_r != NULL)
		*state_r = state;
	return MF_OK;
}

static int sq_login_observed(struct ledger *l, const char *name,
			     const char *client, int64_t now,
			     enum account_state *state_r, char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);

	if (stmt_run(s, ST_BEGIN, err, errlen) != MF_OK)
		return MF_ERROR;
	if (observe_one(s, name, client, "", now, state_r, err, errlen) != MF_OK ||
	    stmt_run(s, ST_COMMIT, err, errlen) != MF_OK) {
		tx_rollback(s);
		return MF_ERROR;
	}
	return MF_OK;
}

static int sq_logins_observed(struct ledger *l, const struct ledger_login *v, size_t n,
			      char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);

	if (stmt_run(s, ST_BEGIN, err, errlen) != MF_OK)
		return MF_ERROR;
	for (size_t i = 0; i < n; i++)
		if (observe_one(s, v[i].name, v[i].client, v[i].gateway, v[i].at, NULL, err,
				errlen) != MF_OK)
			goto rollback;
	if (stmt_run(s, ST_COMMIT, err, errlen) != MF_OK)
		goto rollback;
	return MF_OK;

rollback:
	tx_rollback(s);
	return MF_ERROR;
}

static int sq_account_set_state(struct ledger *l, const char *name,
				enum account_state state, const char *reason,
				int64_t now, enum account_state *old_r,
				char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);
	enum account_state old = AS_UNSEEN;
	int rc = MF_ERROR;

	if (stmt_run(s, ST_SYNC_FULL, err, errlen) != MF_OK)
		return MF_ERROR;
	if (stmt_run(s, ST_BEGIN, err, errlen) != MF_OK)
		goto sync_normal;
	if (insert_account(s, name, err, errlen) != MF_OK)
		goto rollback;
	if (read_state(s, name, &old, err, errlen) != MF_OK)
		goto rollback;
	if (change_state(s, name, old, state, reason, now, err, errlen) != MF_OK)
		goto rollback;
	if (stmt_run(s, ST_COMMIT, err, errlen) != MF_OK)
		goto rollback;
	if (old_r != NULL)
		*old_r = old;
	rc = MF_OK;
	goto sync_normal;

rollback:
	tx_rollback(s);
sync_normal:
	/* Back to the cheap mode for logins; failing here only costs fsyncs. */
	stmt_run(s, ST_SYNC_NORMAL, NULL, 0);
	return rc;
}

static int sq_account_set_state_if(struct ledger *l, const char *name, unsigned int allowed,
				   enum account_state state, const char *reason, int64_t now,
				   enum account_state *old_r, char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);
	enum account_state old = AS_UNSEEN;
	int rc = MF_ERROR, found;

	if (stmt_run(s, ST_SYNC_FULL, err, errlen) != MF_OK)
		return MF_ERROR;
	if (stmt_run(s, ST_BEGIN, err, errlen) != MF_OK)
		goto sync_normal;
	found = read_state(s, name, &old, err, errlen);
	if (found == MF_ERROR)
		goto rollback;
	if (!(allowed & LEDGER_STATE_BIT(old))) {
		rc = LEDGER_REFUSED;
		goto rollback;
	}
	if ((found == LEDGER_ABSENT && insert_account(s, name, err, errlen) != MF_OK) ||
	    change_state(s, name, old, state, reason, now, err, errlen) != MF_OK ||
	    stmt_run(s, ST_COMMIT, err, errlen) != MF_OK)
		goto rollback;
	rc = MF_OK;
	goto sync_normal;

rollback:
	tx_rollback(s);
sync_normal:
	if (rc != MF_ERROR && old_r != NULL)
		*old_r = old;
	stmt_run(s, ST_SYNC_NORMAL, NULL, 0);
	return rc;
}

static int sq_account_import(struct ledger *l, const char *name, const char *notes,
			     int64_t now, bool *created_r, char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);
	sqlite3_stmt *st = s->stmt[ST_IMPORT];

	if (stmt_run(s, ST_BEGIN, err, errlen) != MF_OK)
		return MF_ERROR;
	if (insert_account(s, name, err, errlen) != MF_OK)
		goto rollback;
	*created_r = sqlite3_changes(s->db) > 0;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	if (notes != NULL)
		sqlite3_bind_text(st, 3, notes, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 3);
	if (stmt_run(s, ST_IMPORT, err, errlen) != MF_OK ||
	    stmt_run(s, ST_COMMIT, err, errlen) != MF_OK)
		goto rollback;
	return MF_OK;
rollback:
	tx_rollback(s);
	return MF_ERROR;
}

static int sq_copy_run_begin(struct ledger *l, const char *name, int64_t now, int64_t *id_r,
			     char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);
	sqlite3_stmt *st = s->stmt[ST_RUN_BEGIN];

	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	if (stmt_run(s, ST_RUN_BEGIN, err, errlen) != MF_OK)
		return MF_ERROR;
	*id_r = sqlite3_last_insert_rowid(s->db);
	return MF_OK;
}

static int sq_copy_run_end(struct ledger *l, int64_t id, int64_t now, enum copy_result result,
			   uint64_t messages, uint64_t bytes, const char *error, char *err,
			   size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);
	sqlite3_stmt *st = s->stmt[ST_RUN_END];
	char e[LEDGER_REASON_MAX];

	copy_text(e, sizeof(e), (const unsigned char *)error);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_text(st, 3, copy_result_name(result), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)messages);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)bytes);
	sqlite3_bind_text(st, 6, e, -1, SQLITE_STATIC);
	if (stmt_run(s, ST_RUN_END, err, errlen) != MF_OK)
		return MF_ERROR;
	return sqlite3_changes(s->db) == 1 ? MF_OK : LEDGER_ABSENT;
}

static int sq_copy_runs_interrupt(struct ledger *l, const char *name, int64_t now,
				  unsigned int *n_r, char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);

	sqlite3_bind_int64(s->stmt[ST_RUNS_INTERRUPT], 1, now);
	if (name != NULL)
		sqlite3_bind_text(s->stmt[ST_RUNS_INTERRUPT], 2, name, -1, SQLITE_STATIC);
	if (stmt_run(s, ST_RUNS_INTERRUPT, err, errlen) != MF_OK)
		return MF_ERROR;
	*n_r = (unsigned int)sqlite3_changes(s->db);
	return MF_OK;
}

static int sq_copy_run_list(struct ledger *l, const char *name,
			    int (*fn)(const struct copy_run *r, void *data), void *data,
			    char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);
	sqlite3_stmt *st = s->stmt[name != NULL ? ST_RUN_LIST_ONE : ST_RUN_LIST_ALL];
	int rc = MF_OK;

	if (name != NULL)
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	for (;;) {
		struct copy_run r;
		int step = sqlite3_step(st);

		if (step == SQLITE_DONE)
			break;
		if (step != SQLITE_ROW) {
			rc = db_err(s, err, errlen, "cannot list copy runs");
			break;
		}
		memset(&r, 0, sizeof(r));
		r.id = sqlite3_column_int64(st, 0);
		copy_text(r.name, sizeof(r.name), sqlite3_column_text(st, 1));
		r.started = sqlite3_column_int64(st, 2);
		r.ended = sqlite3_column_int64(st, 3);
		if (copy_result_parse((const char *)sqlite3_column_text(st, 4), &r.result) != MF_OK) {
			rc = mf_err(err, errlen, "ledger %s: unknown copy result in the file",
				    s->path);
			break;
		}
		r.messages = (uint64_t)sqlite3_column_int64(st, 5);
		r.bytes = (uint64_t)sqlite3_column_int64(st, 6);
		copy_text(r.error, sizeof(r.error), sqlite3_column_text(st, 7));
		rc = fn(&r, data);
		if (rc != MF_OK)
			break;
	}
	stmt_done(st);
	return rc;
}

static int sq_account_list(struct ledger *l, int filter,
			   int (*fn)(const struct account *a, void *data),
			   void *data, char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);
	sqlite3_stmt *st;
	struct account a;
	int rc;

	if (filter < 0) {
		st = s->stmt[ST_LIST_ALL];
	} else {
		st = s->stmt[ST_LIST_STATE];
		sqlite3_bind_text(st, 1, account_state_name((enum account_state)filter),
				  -1, SQLITE_STATIC);
	}
	for (;;) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE) {
			rc = MF_OK;
			break;
		}
		if (rc != SQLITE_ROW) {
			rc = db_err(s, err, errlen, "cannot list accounts");
			break;
		}
		rc = row_account(s, st, &a, err, errlen);
		if (rc != MF_OK)
			break;
		rc = fn(&a, data);
		if (rc != MF_OK)
			break;
	}
	stmt_done(st);
	return rc;
}

static int sq_account_history(struct ledger *l, const char *name,
			      int (*fn)(const struct account_event *e, void *data),
			      void *data, char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);
	sqlite3_stmt *st = s->stmt[ST_HISTORY];
	enum account_state now_state;
	struct account_event e;
	int rc;

	rc = read_state(s, name, &now_state, err, errlen);
	if (rc != MF_OK)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	for (;;) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE) {
			rc = MF_OK;
			break;
		}
		if (rc != SQLITE_ROW) {
			rc = db_err(s, err, errlen, "cannot read the history");
			break;
		}
		memset(&e, 0, sizeof(e));
		e.at = sqlite3_column_int64(st, 0);
		if (parse_state(s, sqlite3_column_text(st, 1), &e.from, err, errlen) ||
		    parse_state(s, sqlite3_column_text(st, 2), &e.to, err, errlen)) {
			rc = MF_ERROR;
			break;
		}
		copy_text(e.reason, sizeof(e.reason), sqlite3_column_text(st, 3));
		rc = fn(&e, data);
		if (rc != MF_OK)
			break;
	}
	stmt_done(st);
	return rc;
}

static int sq_setting_get(struct ledger *l, const char *key, char *value_r,
			  size_t len, char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);
	sqlite3_stmt *st = s->stmt[ST_SETTING_GET];
	int rc;

	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		rc = LEDGER_ABSENT;
	} else if (rc == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(st, 0);
		size_t n = v ? strlen((const char *)v) : 0;

		if (n >= len) {
			rc = mf_err(err, errlen, "ledger %s: setting %s: value of "
				    "%zu bytes", s->path, key, n);
		} else {
			memcpy(value_r, v ? (const char *)v : "", n + 1);
			rc = MF_OK;
		}
	} else {
		rc = db_err(s, err, errlen, "cannot read a setting");
	}
	stmt_done(st);
	return rc;
}

static int sq_setting_set(struct ledger *l, const char *key, const char *value,
			  int64_t now, char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);
	sqlite3_stmt *st = s->stmt[ST_SETTING_SET];
	int rc;

	if (stmt_run(s, ST_SYNC_FULL, err, errlen) != MF_OK)
		return MF_ERROR;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	rc = stmt_run(s, ST_SETTING_SET, err, errlen);
	/* Back to the cheap mode for logins; failing here only costs fsyncs. */
	stmt_run(s, ST_SYNC_NORMAL, NULL, 0);
	return rc;
}

static int sq_flow_count_add(struct ledger *l, const char *subnet, uint16_t port,
			     uint64_t observed, uint64_t intercepted, int64_t now,
			     char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);
	sqlite3_stmt *st = s->stmt[ST_FLOW_ADD];

	sqlite3_bind_text(st, 1, subnet, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, port);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)observed);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)intercepted);
	sqlite3_bind_int64(st, 5, now);
	return stmt_run(s, ST_FLOW_ADD, err, errlen);
}

static int sq_flow_direct_add(struct ledger *l, const char *subnet, uint16_t port,
			      uint64_t direct, int64_t now, char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);
	sqlite3_stmt *st = s->stmt[ST_FLOW_DIRECT];

	sqlite3_bind_text(st, 1, subnet, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, port);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)direct);
	sqlite3_bind_int64(st, 4, now);
	return stmt_run(s, ST_FLOW_DIRECT, err, errlen);
}

static int sq_flow_count_list(struct ledger *l,
			      int (*fn)(const struct flow_count *c, void *data),
			      void *data, char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);
	sqlite3_stmt *st = s->stmt[ST_FLOW_LIST];
	int rc = MF_OK;

	for (;;) {
		struct flow_count c;
		int step = sqlite3_step(st);

		if (step == SQLITE_DONE)
			break;
		if (step != SQLITE_ROW) {
			rc = db_err(s, err, errlen, "cannot list flow counts");
			break;
		}
		copy_text(c.subnet, sizeof(c.subnet), sqlite3_column_text(st, 0));
		c.port = (uint16_t)sqlite3_column_int(st, 1);
		c.observed = (uint64_t)sqlite3_column_int64(st, 2);
		c.intercepted = (uint64_t)sqlite3_column_int64(st, 3);
		c.last_seen = sqlite3_column_int64(st, 4);
		c.direct = (uint64_t)sqlite3_column_int64(st, 5);
		rc = fn(&c, data);
		if (rc != MF_OK)
			break;
	}
	stmt_done(st);
	return rc;
}

/* ---- gateways and copy jobs (rare: statements prepared per call) ---- */

static int prep(struct ledger_sqlite *s, const char *sql, sqlite3_stmt **st_r, char *err,
		size_t errlen)
{
	if (sqlite3_prepare_v2(s->db, sql, -1, st_r, NULL) != SQLITE_OK)
		return db_err(s, err, errlen, "cannot prepare");
	return MF_OK;
}

/* Steps a statement with no rows to the end and finalizes it. */
static int exec_done(struct ledger_sqlite *s, sqlite3_stmt *st, char *err, size_t errlen)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? MF_OK : db_err(s, err, errlen, "statement failed");
}

static int sq_gateway_beat(struct ledger *l, const struct gateway_beat *b, char *err,
			   size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);
	sqlite3_stmt *st;

	if (prep(s, "INSERT INTO gateway (id, started, last_beat, stopped, sessions, copies, pid) "
		    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO UPDATE SET "
		    "started = excluded.started, last_beat = excluded.last_beat, "
		    "stopped = excluded.stopped, sessions = excluded.sessions, "
		    "copies = excluded.copies, pid = excluded.pid", &st, err, errlen) != MF_OK)
		return MF_ERROR;
	sqlite3_bind_text(st, 1, b->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, b->started);
	sqlite3_bind_int64(st, 3, b->last_beat);
	sqlite3_bind_int64(st, 4, b->stopped);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)b->sessions);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)b->copies);
	sqlite3_bind_int64(st, 7, b->pid);
	return exec_done(s, st, err, errlen);
}

static int sq_gateway_list(struct ledger *l, int (*fn)(const struct gateway_beat *b, void *data),
			   void *data, char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);
	sqlite3_stmt *st;
	int rc = MF_OK, step;

	if (prep(s, "SELECT id, started, last_beat, stopped, sessions, copies, pid FROM gateway "
		    "ORDER BY id", &st, err, errlen) != MF_OK)
		return MF_ERROR;
	while (rc == MF_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
		struct gateway_beat b;

		copy_text(b.id, sizeof(b.id), sqlite3_column_text(st, 0));
		b.started = sqlite3_column_int64(st, 1);
		b.last_beat = sqlite3_column_int64(st, 2);
		b.stopped = sqlite3_column_int64(st, 3);
		b.sessions = (uint64_t)sqlite3_column_int64(st, 4);
		b.copies = (uint64_t)sqlite3_column_int64(st, 5);
		b.pid = sqlite3_column_int64(st, 6);
		rc = fn(&b, data);
	}
	if (rc == MF_OK && step != SQLITE_DONE)
		rc = db_err(s, err, errlen, "cannot list the gateways");
	sqlite3_finalize(st);
	return rc;
}

static int sq_account_gateways(struct ledger *l, const char *name,
			       int (*fn)(const struct account_gateway *g, void *data), void *data,
			       char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);
	sqlite3_stmt *st;
	int rc = MF_OK, step;

	if (prep(s, "SELECT gateway, logins, first_seen, last_seen FROM account_gateway "
		    "WHERE name = ?1 ORDER BY gateway", &st, err, errlen) != MF_OK)
		return MF_ERROR;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	while (rc == MF_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
		struct account_gateway g;

		copy_text(g.gateway, sizeof(g.gateway), sqlite3_column_text(st, 0));
		g.logins = (uint64_t)sqlite3_column_int64(st, 1);
		g.first_seen = sqlite3_column_int64(st, 2);
		g.last_seen = sqlite3_column_int64(st, 3);
		rc = fn(&g, data);
	}
	if (rc == MF_OK && step != SQLITE_DONE)
		rc = db_err(s, err, errlen, "cannot list the account's gateways");
	sqlite3_finalize(st);
	return rc;
}

/* Inside a transaction: name's job (created if missing). */
static int read_job(struct ledger_sqlite *s, const char *name, char *owner_r, int64_t *until_r,
		    char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc;

	if (insert_account(s, name, err, errlen) != MF_OK ||
	    prep(s, "INSERT OR IGNORE INTO copy_job (name) VALUES (?1)", &st, err, errlen) != MF_OK)
		return MF_ERROR;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (exec_done(s, st, err, errlen) != MF_OK ||
	    prep(s, "SELECT owner, lease_until FROM copy_job WHERE name = ?1", &st, err,
		 errlen) != MF_OK)
		return MF_ERROR;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_ROW ? MF_OK : db_err(s, err, errlen, "no copy job");
	if (rc == MF_OK) {
		copy_text(owner_r, LEDGER_GATEWAY_MAX, sqlite3_column_text(st, 0));
		*until_r = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	return rc;
}

static int write_job(struct ledger_sqlite *s, const char *name, const char *owner,
		     int64_t until, int64_t claimed, char *err, size_t errlen)
{
	sqlite3_stmt *st;

	if (prep(s, "UPDATE copy_job SET owner = ?2, lease_until = ?3, "
		    "claimed = CASE WHEN ?4 = 0 THEN claimed ELSE ?4 END WHERE name = ?1",
		 &st, err, errlen) != MF_OK)
		return MF_ERROR;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, until);
	sqlite3_bind_int64(st, 4, claimed);
	return exec_done(s, st, err, errlen);
}

/* Ends a write transaction: COMMIT on MF_OK (synced like a state change),
 * else ROLLBACK; rc is passed through (LEDGER_NOT_OWNER included). */
static int tx_end(struct ledger_sqlite *s, int rc, char *err, size_t errlen)
{
	if (rc == MF_OK && stmt_run(s, ST_COMMIT, err, errlen) != MF_OK)
		rc = MF_ERROR;
	if (rc != MF_OK)
		tx_rollback(s);
	stmt_run(s, ST_SYNC_NORMAL, NULL, 0);
	return rc;
}

static int tx_begin(struct ledger_sqlite *s, char *err, size_t errlen)
{
	if (stmt_run(s, ST_SYNC_FULL, err, errlen) != MF_OK)
		return MF_ERROR;
	if (stmt_run(s, ST_BEGIN, err, errlen) != MF_OK) {
		stmt_run(s, ST_SYNC_NORMAL, NULL, 0);
		return MF_ERROR;
	}
	return MF_OK;
}

static int sq_job_claim(struct ledger *l, const char *name, const char *owner, int64_t now_ms,
			int64_t lease_ms, unsigned int retry_after_s, const char *reason,
			enum account_state *state_r, char *holder_r, char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);
	char cur[LEDGER_GATEWAY_MAX];
	struct account a;
	int64_t until = 0;
	int rc;

	if (tx_begin(s, err, errlen) != MF_OK)
		return MF_ERROR;
	rc = read_job(s, name, cur, &until, err, errlen);
	if (rc == MF_OK)
		rc = sq_account_get(l, name, &a, err, errlen);
	if (rc != MF_OK)
		return tx_end(s, MF_ERROR, err, errlen);
	if (state_r != NULL)
		*state_r = a.state;
	if (cur[0] != '\0' && strcmp(cur, owner) != 0 && until >= now_ms) {
		if (holder_r != NULL)
			snprintf(holder_r, LEDGER_GATEWAY_MAX, "%s", cur);
		return tx_end(s, LEDGER_NOT_OWNER, err, errlen);
	}
	if (!ledger_job_claimable(a.state, a.state_changed, retry_after_s, now_ms / 1000))
		return tx_end(s, LEDGER_NOT_OWNER, err, errlen);
	rc = change_state(s, name, a.state, AS_COPYING, reason, now_ms / 1000, err, errlen);
	if (rc == MF_OK)
		rc = write_job(s, name, owner, now_ms + lease_ms, now_ms, err, errlen);
	if (rc == MF_OK && state_r != NULL)
		*state_r = AS_COPYING;
	return tx_end(s, rc, err, errlen);
}

static int sq_job_renew(struct ledger *l, const char *name, const char *owner, int64_t now_ms,
			int64_t lease_ms, char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);
	sqlite3_stmt *st;

	if (prep(s, "UPDATE copy_job SET lease_until = ?3 WHERE name = ?1 AND owner = ?2", &st,
		 err, errlen) != MF_OK)
		return MF_ERROR;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now_ms + lease_ms);
	if (exec_done(s, st, err, errlen) != MF_OK)
		return MF_ERROR;
	return sqlite3_changes(s->db) == 1 ? MF_OK : LEDGER_NOT_OWNER;
}

static int sq_job_set_state(struct ledger *l, const char *name, const char *owner,
			    enum account_state state, const char *reason, int64_t now,
			    bool release, char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);
	char cur[LEDGER_GATEWAY_MAX];
	enum account_state old = AS_UNSEEN;
	int64_t until;
	int rc;

	if (tx_begin(s, err, errlen) != MF_OK)
		return MF_ERROR;
	rc = read_job(s, name, cur, &until, err, errlen);
	if (rc == MF_OK && strcmp(cur, owner) != 0)
		rc = LEDGER_NOT_OWNER;
	if (rc == MF_OK)
		rc = read_state(s, name, &old, err, errlen);
	if (rc == MF_OK)
		rc = change_state(s, name, old, state, reason, now, err, errlen);
	if (rc == MF_OK && release)
		rc = write_job(s, name, "", 0, 0, err, errlen);
	if (rc == MF_OK && state == AS_MIGRATED) {
		sqlite3_stmt *st;

		rc = prep(s, "UPDATE copy_job SET checkpoint = NULL, checkpoint_from = '' "
			     "WHERE name = ?1", &st, err, errlen);
		if (rc == MF_OK) {
			sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
			rc = exec_done(s, st, err, errlen);
		}
	}
	return tx_end(s, rc, err, errlen);
}

static int sq_checkpoint_put(struct ledger *l, const char *name, const char *owner,
			     const void *buf, size_t len, char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);
	sqlite3_stmt *st;

	if (prep(s, "UPDATE copy_job SET checkpoint = ?3, checkpoint_from = ?2 "
		    "WHERE name = ?1 AND owner = ?2", &st, err, errlen) != MF_OK)
		return MF_ERROR;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
	sqlite3_bind_blob64(st, 3, buf, (sqlite3_uint64)len, SQLITE_STATIC);
	if (exec_done(s, st, err, errlen) != MF_OK)
		return MF_ERROR;
	return sqlite3_changes(s->db) == 1 ? MF_OK : LEDGER_NOT_OWNER;
}

static int sq_checkpoint_get(struct ledger *l, const char *name, void **buf_r, size_t *len_r,
			     char *from_r, char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);
	sqlite3_stmt *st;
	int rc = LEDGER_ABSENT, step, n;

	if (prep(s, "SELECT checkpoint, checkpoint_from FROM copy_job "
		    "WHERE name = ?1 AND checkpoint IS NOT NULL", &st, err, errlen) != MF_OK)
		return MF_ERROR;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW && (n = sqlite3_column_bytes(st, 0)) > 0) {
		*buf_r = malloc((size_t)n);
		if (*buf_r == NULL) {
			rc = mf_err(err, errlen, "out of memory");
		} else {
			memcpy(*buf_r, sqlite3_column_blob(st, 0), (size_t)n);
			*len_r = (size_t)n;
			copy_text(from_r, LEDGER_GATEWAY_MAX, sqlite3_column_text(st, 1));
			rc = MF_OK;
		}
	} else if (step != SQLITE_ROW && step != SQLITE_DONE) {
		rc = db_err(s, err, errlen, "cannot read checkpoints");
	}
	sqlite3_finalize(st);
	return rc;
}

/* ---- POP3 UIDL maps ------------------------------------------------ */

static int uidl_map_write(struct ledger_sqlite *s, const char *name, const struct uidl_pair *v,
			  size_t n, char *err, size_t errlen)
{
	enum account_state state;
	sqlite3_stmt *st;
	int rc;

	rc = read_state(s, name, &state, err, errlen);
	if (rc != MF_OK)
		return rc;
	if (prep(s, "DELETE FROM pop3_uidl WHERE name = ?1", &st, err, errlen) != MF_OK)
		return MF_ERROR;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (exec_done(s, st, err, errlen) != MF_OK)
		return MF_ERROR;
	if (n == 0)
		return MF_OK;
	if (prep(s, "INSERT INTO pop3_uidl (name, dst, src) VALUES (?1, ?2, ?3)", &st, err,
		 errlen) != MF_OK)
		return MF_ERROR;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	for (size_t i = 0; i < n && rc == MF_OK; i++) {
		sqlite3_bind_text(st, 2, v[i].dst, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, v[i].src, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = db_err(s, err, errlen, "cannot store the UIDL map");
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return rc;
}

static int sq_uidl_map_put(struct ledger *l, const char *name, const struct uidl_pair *v,
			   size_t n, char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);

	if (tx_begin(s, err, errlen) != MF_OK)
		return MF_ERROR;
	return tx_end(s, uidl_map_write(s, name, v, n, err, errlen), err, errlen);
}

static int sq_uidl_map_get(struct ledger *l, const char *name, struct uidl_pair **v_r,
			   size_t *n_r, char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);
	struct uidl_pair *v = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc = MF_OK, step;

	if (prep(s, "SELECT dst, src FROM pop3_uidl WHERE name = ?1 ORDER BY dst", &st, err,
		 errlen) != MF_OK)
		return MF_ERROR;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	while (rc == MF_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			struct uidl_pair *nv = realloc(v, ncap * sizeof(*v));

			if (nv == NULL) {
				rc = mf_err(err, errlen, "out of memory");
				break;
			}
			v = nv;
			cap = ncap;
		}
		if (sqlite3_column_bytes(st, 0) > LEDGER_UIDL_MAX ||
		    sqlite3_column_bytes(st, 1) > LEDGER_UIDL_MAX) {
			rc = mf_err(err, errlen, "ledger %s: a UIDL of %s is too long", s->path,
				    name);
			break;
		}
		copy_text(v[n].dst, sizeof(v[n].dst), sqlite3_column_text(st, 0));
		copy_text(v[n].src, sizeof(v[n].src), sqlite3_column_text(st, 1));
		n++;
	}
	if (rc == MF_OK && step != SQLITE_DONE)
		rc = db_err(s, err, errlen, "cannot read the UIDL map");
	sqlite3_finalize(st);
	if (rc != MF_OK) {
		free(v);
		return rc;
	}
	*v_r = v;
	*n_r = n;
	return MF_OK;
}

static int sq_jobs_reap(struct ledger *l, int64_t now_ms, const char *owner,
			void (*fn)(const char *name, const char *former_owner, void *data),
			void *data, char *err, size_t errlen)
{
	struct ledger_sqlite *s = to_sqlite(l);
	struct { char name[ACCOUNT_NAME_MAX + 1]; char owner[LEDGER_GATEWAY_MAX]; } *v = NULL;
	size_t n = 0, cap = 0;
	char why[LEDGER_REASON_MAX];
	sqlite3_stmt *st;
	int rc = MF_OK, step;

	if (tx_begin(s, err, errlen) != MF_OK)
		return MF_ERROR;
	if (prep(s, "SELECT name, owner FROM copy_job WHERE owner <> '' AND "
		    "(lease_until < ?1 OR owner = ?2) ORDER BY name", &st, err, errlen) != MF_OK)
		return tx_end(s, MF_ERROR, err, errlen);
	sqlite3_bind_int64(st, 1, now_ms);
	if (owner != NULL)
		sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
	while (rc == MF_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			void *p = realloc(v, (cap = cap ? 2 * cap : 8) * sizeof(*v));

			if (p == NULL) {
				rc = mf_err(err, errlen, "ledger: out of memory");
				break;
			}
			v = p;
		}
		copy_text(v[n].name, sizeof(v[n].name), sqlite3_column_text(st, 0));
		copy_text(v[n].owner, sizeof(v[n].owner), sqlite3_column_text(st, 1));
		n++;
	}
	if (rc == MF_OK && step != SQLITE_DONE)
		rc = db_err(s, err, errlen, "cannot list expired copy jobs");
	sqlite3_finalize(st);
	for (size_t i = 0; i < n && rc == MF_OK; i++) {
		enum account_state cur = AS_UNSEEN;

		rc = read_state(s, v[i].name, &cur, err, errlen);
		if (rc == MF_OK && (cur == AS_COPYING || cur == AS_CUTOVER)) {
			snprintf(why, sizeof(why), "copy by gateway %s %s: resumes at the next "
				 "login", v[i].owner, owner != NULL ? "restarted" : "lost its lease");
			rc = change_state(s, v[i].name, cur, AS_SEEN, why, now_ms / 1000, err,
					  errlen);
		}
		if (rc == MF_OK)
			rc = write_job(s, v[i].name, "", 0, 0, err, errlen);
	}
	rc = tx_end(s, rc, err, errlen);
	for (size_t i = 0; i < n && rc == MF_OK && fn != NULL; i++)
		fn(v[i].name, v[i].owner, data);
	free(v);
	return rc;
}

static void sq_close(struct ledger *l)
{
	struct ledger_sqlite *s = to_sqlite(l);

	for (unsigned int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	sqlite3_close(s->db);
	free(s);
}

static const struct ledger_ops sqlite_ops = {
	.name = "sqlite",
	.close = sq_close,
	.schema_version = sq_schema_version,
	.account_get = sq_account_get,
	.login_observed = sq_login_observed,
	.logins_observed = sq_logins_observed,
	.account_set_state = sq_account_set_state,
	.account_set_state_if = sq_account_set_state_if,
	.account_import = sq_account_import,
	.copy_run_begin = sq_copy_run_begin,
	.copy_run_end = sq_copy_run_end,
	.copy_runs_interrupt = sq_copy_runs_interrupt,
	.copy_run_list = sq_copy_run_list,
	.account_list = sq_account_list,
	.account_history = sq_account_history,
	.setting_get = sq_setting_get,
	.setting_set = sq_setting_set,
	.flow_count_add = sq_flow_count_add,
	.flow_direct_add = sq_flow_direct_add,
	.flow_count_list = sq_flow_count_list,
	.account_gateways = sq_account_gateways,
	.gateway_beat = sq_gateway_beat,
	.gateway_list = sq_gateway_list,
	.job_claim = sq_job_claim,
	.job_renew = sq_job_renew,
	.job_set_state = sq_job_set_state,
	.jobs_reap = sq_jobs_reap,
	.checkpoint_put = sq_checkpoint_put,
	.checkpoint_get = sq_checkpoint_get,
	.uidl_map_put = sq_uidl_map_put,
	.uidl_map_get = sq_uidl_map_get,
};

/* ---- open ---------------------------------------------------------- */

/* Creates path with mode 0600 before SQLite sees it: SQLite would create
 * it with 0644 & ~umask, readable by every local user. SQLite gives the
 * -wal and -shm files the database file's mode, so they follow. An
 * existing file keeps the mode its owner chose. */
static int create_private(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0) {
		if (errno == EEXIST)
			return MF_OK;
		return mf_err(err, errlen, "ledger %s: %s", path, strerror(errno));
	}
	/* A umask such as 0277 may have taken our own bits away. */
	if (fchmod(fd, 0600) != 0) {
		int e = errno;

		close(fd);
		unlink(path);
		return mf_err(err, errlen, "ledger %s: chmod: %s", path, strerror(e));
	}
	close(fd);
	return MF_OK;
}

#define JOURNAL_MODE_LEN 16

/* PRAGMA journal_mode answers with the mode now in force. */
static int journal_mode_cb(void *data, int n, char **values, char **names)
{
	(void)names;
	if (n > 0 && values[0] != NULL)
		snprintf(data, JOURNAL_MODE_LEN, "%s", values[0]);
	return 0;
}

int ledger_sqlite_open(const char *path, struct ledger **l_r, char *err,
		       size_t errlen)
{
	struct ledger_sqlite *s;
	char mode[JOURNAL_MODE_LEN] = "";
	size_t len = strlen(path);

	*l_r = NULL;
	if (create_private(path, err, errlen) != MF_OK)
		return MF_ERROR;
	s = calloc(1, sizeof(*s) + len + 1);
	if (s == NULL)
		return mf_err(err, errlen, "ledger %s: out of memory", path);
	memcpy(s->path, path, len + 1);
	s->base.ops = &sqlite_ops;

	/* No SQLITE_OPEN_CREATE: the file exists now, with our mode. NOMUTEX:
	 * one thread per handle (ledger.h). */
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
			    SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		if (s->db == NULL) {
			mf_err(err, errlen, "ledger %s: out of memory", path);
			goto fail_free;
		}
		db_err(s, err, errlen, "cannot open");
		goto fail_close;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, LEDGER_BUSY_TIMEOUT_MS);
	/* The first read of the file: a file that is not a database fails
	 * here with SQLite's "file is not a database". */
	if (sqlite3_exec(s->db, "PRAGMA journal_mode = WAL", journal_mode_cb,
			 mode, NULL) != SQLITE_OK) {
		db_err(s, err, errlen, "cannot use it");
		goto fail_close;
	}
	if (strcmp(mode, "wal") != 0) {
		mf_err(err, errlen, "ledger %s: cannot use WAL mode (got '%s')",
		       path, mode);
		goto fail_close;
	}
	if (sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL; "
			 "PRAGMA foreign_keys = ON", NULL, NULL, NULL) != SQLITE_OK) {
		db_err(s, err, errlen, "cannot set pragmas");
		goto fail_close;
	}
	if (schema_migrate(s, err, errlen) != MF_OK)
		goto fail_close;
	for (unsigned int i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1,
				       SQLITE_PREPARE_PERSISTENT, &s->stmt[i],
				       NULL) != SQLITE_OK) {
			db_err(s, err, errlen, stmt_sql[i]);
			goto fail_stmts;
		}
	}
	*l_r = &s->base;
	return MF_OK;

fail_stmts:
	for (unsigned int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
fail_close:
	sqlite3_close(s->db);
fail_free:
	free(s);
	return MF_ERROR;
}
