/* ledger_pg.c — the ledger on PostgreSQL (libpq): one database that
 * several gateways share.
 *
 * Same tables, columns and semantics as ledger_sqlite.c (states stored by
 * name), so both backends pass one test suite. What differs is only what a
 * shared server needs: a state is read with SELECT ... FOR UPDATE inside
 * the transaction that changes it, so two gateways observing a first login
 * at the same moment record one UNSEEN -> SEEN, not two; schema migrations
 * run under a transaction-scoped advisory lock, so gateways starting
 * together migrate once. Every statement has parameters ($1, ...): no
 * account name is ever spliced into SQL. The connection string may hold a
 * password, so errors name the host and database, never the string. */
#include "ledger_backend.h"
#include "mf.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <time.h>

/* pg_advisory_xact_lock key for schema migrations: "MFLG". */
#define PG_SCHEMA_LOCK 0x4d464c47

/* The NOTIFY channel of state changes (ledger_changes_*). */
#define PG_CHANNEL "mf_account_state"

/* Reconnect back-off while the server is unreachable: a routing lookup
 * then fails at once instead of waiting on a connect each time. */
#define PG_BACKOFF_MIN_MS 100
#define PG_BACKOFF_MAX_MS LEDGER_RECONNECT_MAX_MS

struct ledger_pg {
	struct ledger base; /* first: struct ledger * converts to this */
	PGconn *conn;
	char where[160];    /* "host/db", for errors */
	int64_t retry_at_ms;  /* no reconnect before this (monotonic) */
	int64_t backoff_ms;
	bool in_tx;           /* between BEGIN and COMMIT/ROLLBACK */
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct ledger_pg *to_pg(struct ledger *l)
{
	return (struct ledger_pg *)l;
}

static int pg_err(struct ledger_pg *p, const PGresult *r, char *err, size_t errlen,
		  const char *what)
{
	const char *msg = r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(p->conn);
	size_t n = strcspn(msg, "\n");

	return mf_err(err, errlen, "ledger %s: %s: %.*s", p->where, what, (int)n, msg);
}

/* Runs sql with n text parameters; *r_r gets the result (PQclear it) when
 * rows are wanted. MF_OK or MF_ERROR with err. */
/* A lost connection is re-made here, at most once per back-off step, so
 * callers see "unreachable" at once while the server is down and work
 * again by themselves when it is back. A transaction is never resumed
 * across a reconnect: the statement that finds the connection lost fails. */
static int reconnect(struct ledger_pg *p, char *err, size_t errlen)
{
	int64_t now = mono_ms();

	if (now < p->retry_at_ms)
		return mf_err(err, errlen, "ledger %s: unreachable (next attempt in %lld ms)",
			      p->where, (long long)(p->retry_at_ms - now));
	PQreset(p->conn);
	if (PQstatus(p->conn) != CONNECTION_OK) {
		p->backoff_ms = p->backoff_ms == 0 ? PG_BACKOFF_MIN_MS : 2 * p->backoff_ms;
		if (p->backoff_ms > PG_BACKOFF_MAX_MS)
			p->backoff_ms = PG_BACKOFF_MAX_MS;
		p->retry_at_ms = now + p->backoff_ms;
		return pg_err(p, NULL, err, errlen, "cannot reconnect");
	}
	p->backoff_ms = 0;
	p->retry_at_ms = 0;
	PQclear(PQexec(p->conn, "SET client_min_messages = warning"));
	return MF_OK;
}

static int run(struct ledger_pg *p, const char *sql, int n, const char *const *v,
	       PGresult **r_r, char *err, size_t errlen, const char *what)
{
	PGresult *r;
	ExecStatusType st;

	if (PQstatus(p->conn) != CONNECTION_OK) {
		/* Only outside a transaction: a statement in the middle of
		 * one must fail with it, never run on its own. */
		if (p->in_tx)
			return pg_err(p, NULL, err, errlen, what);
		if (reconnect(p, err, errlen) != MF_OK)
			return MF_ERROR;
	}
	r = PQexecParams(p->conn, sql, n, NULL, v, NULL, NULL, 0);
	st = PQresultStatus(r);
	if (strcmp(sql, "BEGIN") == 0)
		p->in_tx = st == PGRES_COMMAND_OK;
	else if (strcmp(sql, "COMMIT") == 0)
		p->in_tx = false;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		pg_err(p, r, err, errlen, what);
		PQclear(r);
		return MF_ERROR;
	}
	if (r_r != NULL)
		*r_r = r;
	else
		PQclear(r);
	return MF_OK;
}

static void rollback(struct ledger_pg *p)
{
	p->in_tx = false;
	PQclear(PQexec(p->conn, "ROLLBACK"));
}

/* Ends the open transaction: COMMIT when rc is MF_OK, else (or when the
 * commit fails) ROLLBACK and MF_ERROR. */
static int finish(struct ledger_pg *p, int rc, char *err, size_t errlen)
{
	if (rc == MF_OK && run(p, "COMMIT", 0, NULL, NULL, err, errlen, "COMMIT") == MF_OK)
		return MF_OK;
	rollback(p);
	return MF_ERROR;
}

static void i64(char *buf, size_t len, int64_t v)
{
	snprintf(buf, len, "%" PRId64, v);
}

static int64_t col_i64(const PGresult *r, int row, int col)
{
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static void col_text(char *dst, size_t len, const PGresult *r, int row, int col)
{
	snprintf(dst, len, "%s", PQgetvalue(r, row, col));
}

static int parse_state(struct ledger_pg *p, const char *t, enum account_state *s_r, char *err,
		       size_t errlen)
{
	if (account_state_parse(t, s_r) == MF_OK)
		return MF_OK;
	return mf_err(err, errlen, "ledger %s: unknown state '%.32s' in the database", p->where, t);
}

/* ---- schema -------------------------------------------------------- */

static const char *const schema_steps[] = {
	/* v1: accounts and their history */
	"CREATE TABLE account ("
	" name TEXT PRIMARY KEY NOT NULL,"
	" state TEXT NOT NULL DEFAULT 'UNSEEN',"
	" first_seen BIGINT NOT NULL DEFAULT 0,"
	" last_seen BIGINT NOT NULL DEFAULT 0,"
	" last_client TEXT NOT NULL DEFAULT '',"
	" logins BIGINT NOT NULL DEFAULT 0,"
	" state_changed BIGINT NOT NULL DEFAULT 0,"
	" reason TEXT NOT NULL DEFAULT '');"
	"CREATE INDEX account_by_state ON account (state, name);"
	"CREATE TABLE account_history ("
	" id BIGSERIAL PRIMARY KEY,"
	" name TEXT NOT NULL REFERENCES account (name),"
	" at BIGINT NOT NULL,"
	" from_state TEXT NOT NULL,"
	" to_state TEXT NOT NULL,"
	" reason TEXT NOT NULL);"
	"CREATE INDEX account_history_by_name ON account_history (name, id);",
	/* v2: gateway-wide settings */
	"CREATE TABLE setting ("
	" key TEXT PRIMARY KEY NOT NULL,"
	" value TEXT NOT NULL,"
	" changed BIGINT NOT NULL DEFAULT 0);",
	/* v3: new flows per client subnet and port */
	"CREATE TABLE flow_count ("
	" subnet TEXT NOT NULL,"
	" port INTEGER NOT NULL,"
	" observed BIGINT NOT NULL DEFAULT 0,"
	" intercepted BIGINT NOT NULL DEFAULT 0,"
	" last_seen BIGINT NOT NULL DEFAULT 0,"
	" PRIMARY KEY (subnet, port));",
	/* v4: flows that reached a source directly */
	"ALTER TABLE flow_count ADD COLUMN direct BIGINT NOT NULL DEFAULT 0;",
	/* v5: several gateways: which gateway saw whom, copy jobs with
	 * leases, and every committed state change announced (NOTIFY is
	 * delivered at commit, so a listener never hears of a flip that a
	 * reader could not yet see). */
	"ALTER TABLE account ADD COLUMN last_gateway TEXT NOT NULL DEFAULT '';"
	"CREATE TABLE account_gateway ("
	" name TEXT NOT NULL REFERENCES account (name),"
	" gateway TEXT NOT NULL,"
	" logins BIGINT NOT NULL DEFAULT 0,"
	" first_seen BIGINT NOT NULL DEFAULT 0,"
	" last_seen BIGINT NOT NULL DEFAULT 0,"
	" PRIMARY KEY (name, gateway));"
	"CREATE TABLE copy_job ("
	" name TEXT PRIMARY KEY NOT NULL REFERENCES account (name),"
	" owner TEXT NOT NULL DEFAULT '',"
	" lease_until BIGINT NOT NULL DEFAULT 0,"
	" claimed BIGINT NOT NULL DEFAULT 0,"
	" checkpoint BYTEA,"
	" checkpoint_from TEXT NOT NULL DEFAULT '');"
	"CREATE FUNCTION mf_account_notify() RETURNS trigger LANGUAGE plpgsql AS $f$"
	" BEGIN PERFORM pg_notify('" PG_CHANNEL "', NEW.state || E'\\t' || NEW.name);"
	" RETURN NULL; END $f$;"
	"CREATE TRIGGER account_state_notify AFTER UPDATE OF state ON account"
	" FOR EACH ROW EXECUTE FUNCTION mf_account_notify();",
	/* v6: the admin's import (imported, notes) and copy runs */
	"ALTER TABLE account ADD COLUMN imported BIGINT NOT NULL DEFAULT 0;"
	"ALTER TABLE account ADD COLUMN notes TEXT NOT NULL DEFAULT '';"
	"CREATE TABLE copy_run ("
	" id BIGSERIAL PRIMARY KEY,"
	" name TEXT NOT NULL REFERENCES account (name),"
	" started BIGINT NOT NULL,"
	" ended BIGINT NOT NULL DEFAULT 0,"
	" result TEXT NOT NULL DEFAULT 'running',"
	" messages BIGINT NOT NULL DEFAULT 0,"
	" bytes BIGINT NOT NULL DEFAULT 0,"
	" error TEXT NOT NULL DEFAULT '');"
	"CREATE INDEX copy_run_by_name ON copy_run (name, id);"
	"CREATE INDEX copy_run_running ON copy_run (result) WHERE result = 'running';",
	/* v7: gateways' heartbeats */
	"CREATE TABLE gateway ("
	" id TEXT PRIMARY KEY NOT NULL,"
	" started BIGINT NOT NULL,"
	" last_beat BIGINT NOT NULL,"
	" stopped BIGINT NOT NULL DEFAULT 0,"
	" sessions BIGINT NOT NULL DEFAULT 0,"
	" copies BIGINT NOT NULL DEFAULT 0,"
	" pid BIGINT NOT NULL DEFAULT 0);",
	/* v8: POP3 UIDL maps */
	"CREATE TABLE pop3_uidl ("
	" name TEXT NOT NULL REFERENCES account (name),"
	" dst TEXT NOT NULL,"
	" src TEXT NOT NULL,"
	" PRIMARY KEY (name, dst),"
	" UNIQUE (name, src));",
};

#define SCHEMA_VERSION ((int)MF_ARRAY_LEN(schema_steps))
_Static_assert(MF_ARRAY_LEN(schema_steps) == LEDGER_SCHEMA_VERSION,
	       "a schema step without LEDGER_SCHEMA_VERSION (or the reverse)");

static int read_version(struct ledger_pg *p, int *v_r, char *err, size_t errlen)
{
	PGresult *r;

	if (run(p, "SELECT version FROM mf_schema", 0, NULL, &r, err, errlen,
		"cannot read the schema version") != MF_OK)
		return MF_ERROR;
	*v_r = PQntuples(r) == 1 ? atoi(PQgetvalue(r, 0, 0)) : 0;
	PQclear(r);
	return MF_OK;
}

/* Brings the database to SCHEMA_VERSION in one transaction, under a lock
 * that makes a second gateway wait and then find nothing to do. */
static int migrate_schema(struct ledger_pg *p, char *err, size_t errlen)
{
	char lock[64];
	int version;

	snprintf(lock, sizeof(lock), "SELECT pg_advisory_xact_lock(%d)", PG_SCHEMA_LOCK);
	if (run(p, "BEGIN", 0, NULL, NULL, err, errlen, "BEGIN") != MF_OK)
		return MF_ERROR;
	if (run(p, lock, 0, NULL, NULL, err, errlen, "schema lock") != MF_OK ||
	    run(p, "CREATE TABLE IF NOT EXISTS mf_schema (version INTEGER NOT NULL)", 0, NULL,
		NULL, err, errlen, "cannot create the schema table") != MF_OK ||
	    read_version(p, &version, err, errlen) != MF_OK)
		goto fail;
	if (version > SCHEMA_VERSION) {
		mf_err(err, errlen, "ledger %s: schema version %d is newer than this build's %d",
		       p->where, version, SCHEMA_VERSION);
		goto fail;
	}
	for (int v = version; v < SCHEMA_VERSION; v++) {
		char set[96];

		/* Several statements: the simple protocol (no parameters). */
		PGresult *r = PQexec(p->conn, schema_steps[v]);

		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			pg_err(p, r, err, errlen, "schema migration");
			PQclear(r);
			goto fail;
		}
		PQclear(r);
		snprintf(set, sizeof(set), v == 0 ? "INSERT INTO mf_schema VALUES (%d)"
						  : "UPDATE mf_schema SET version = %d", v + 1);
		if (run(p, set, 0, NULL, NULL, err, errlen, "schema version") != MF_OK)
			goto fail;
	}
	return finish(p, MF_OK, err, errlen);
fail:
	return finish(p, MF_ERROR, err, errlen);
}

/* ---- shared steps --------------------------------------------------- */

#define ACCOUNT_COLUMNS \
	"name, state, first_seen, last_seen, last_client, logins, state_changed, reason, " \
	"last_gateway, imported, notes"
#define RUN_COLUMNS "id, name, started, ended, result, messages, bytes, error"

static int row_account(struct ledger_pg *p, const PGresult *r, int row, struct account *a,
		       char *err, size_t errlen)
{
	memset(a, 0, sizeof(*a));
	col_text(a->name, sizeof(a->name), r, row, 0);
	if (parse_state(p, PQgetvalue(r, row, 1), &a->state, err, errlen) != MF_OK)
		return MF_ERROR;
	a->first_seen = col_i64(r, row, 2);
	a->last_seen = col_i64(r, row, 3);
	col_text(a->last_client, sizeof(a->last_client), r, row, 4);
	a->logins = (uint64_t)col_i64(r, row, 5);
	a->state_changed = col_i64(r, row, 6);
	col_text(a->reason, sizeof(a->reason), r, row, 7);
	col_text(a->last_gateway, sizeof(a->last_gateway), r, row, 8);
	a->imported = col_i64(r, row, 9);
	col_text(a->notes, sizeof(a->notes), r, row, 10);
	return MF_OK;
}

/* Inside a transaction: creates name if unknown and locks its row for the
 * rest of the transaction; *state_r gets its state. */
static int lock_account(struct ledger_pg *p, const char *name, enum account_state *state_r,
			char *err, size_t errlen)
{
	const char *v[1] = { name };
	PGresult *r;
	int rc;

	if (run(p, "INSERT INTO account (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", 1, v,
		NULL, err, errlen, "cannot add the account") != MF_OK ||
	    run(p, "SELECT state FROM account WHERE name = $1 FOR UPDATE", 1, v, &r, err, errlen,
		"cannot read the account's state") != MF_OK)
		return MF_ERROR;
	rc = PQntuples(r) == 1 ? parse_state(p, PQgetvalue(r, 0, 0), state_r, err, errlen)
			       : mf_err(err, errlen, "ledger %s: account vanished", p->where);
	PQclear(r);
	return rc;
}

static int change_state(struct ledger_pg *p, const char *name, enum account_state from,
			enum account_state to, const char *reason, int64_t now, char *err,
			size_t errlen)
{
	char at[24], r[LEDGER_REASON_MAX];
	const char *v[5];

	snprintf(r, sizeof(r), "%s", reason ? reason : "");
	i64(at, sizeof(at), now);
	v[0] = name;
	v[1] = account_state_name(to);
	v[2] = at;
	v[3] = r;
	if (run(p, "UPDATE account SET state = $2, state_changed = $3, reason = $4 "
		   "WHERE name = $1", 4, v, NULL, err, errlen, "cannot set the state") != MF_OK)
		return MF_ERROR;
	v[1] = at;
	v[2] = account_state_name(from);
	v[3] = account_state_name(to);
	v[4] = r;
	return run(p, "INSERT INTO account_history (name, at, from_state, to_state, reason) "
		      "VALUES ($1, $2, $3, $4, $5)", 5, v, NULL, err, errlen,
		   "cannot append to the history");
}

static int observe_one(struct ledger_pg *p, const char *name, const char *client,
		       const char *gateway, int64_t now, enum account_state *state_r, char *err,
		       size_t errlen)
{
	enum account_state state;
	char at[24], why[LEDGER_REASON_MAX];
	const char *v[4];

	if (lock_account(p, name, &state, err, errlen) != MF_OK)
		return MF_ERROR;
	if (state == AS_UNSEEN) {
		snprintf(why, sizeof(why), "first login from %s",
			 client[0] ? client : "unknown address");
		if (change_state(p, name, AS_UNSEEN, AS_SEEN, why, now, err, errlen) != MF_OK)
			return MF_ERROR;
		state = AS_SEEN;
	}
	i64(at, sizeof(at), now);
	v[0] = name;
	v[1] = at;
	v[2] = client;
	v[3] = gateway;
	if (run(p, "UPDATE account SET "
		   "first_seen = CASE first_seen WHEN 0 THEN $2::BIGINT ELSE first_seen END, "
		   "last_seen = $2::BIGINT, last_client = $3, logins = logins + 1, "
		   "last_gateway = $4 WHERE name = $1",
		4, v, NULL, err, errlen, "cannot record the login") != MF_OK)
		return MF_ERROR;
	if (gateway[0] != '\0') {
		v[2] = gateway;
		if (run(p, "INSERT INTO account_gateway (name, gateway, logins, first_seen, "
			   "last_seen) VALUES ($1, $3, 1, $2, $2) ON CONFLICT (name, gateway) DO "
			   "UPDATE SET logins = account_gateway.logins + 1, "
			   "last_seen = excluded.last_seen", 3, v, NULL, err, errlen,
			"cannot record the login's gateway") != MF_OK)
			return MF_ERROR;
	}
	if (state_r != NULL)
		*state_r = state;
	return MF_OK;
}

/* ---- operations ---------------------------------------------------- */

static void pg_close(struct ledger *l)
{
	struct ledger_pg *p = to_pg(l);

	PQfinish(p->conn);
	free(p);
}

static int pg_schema_version(struct ledger *l, int *version_r, char *err, size_t errlen)
{
	return read_version(to_pg(l), version_r, err, errlen);
}

static int pg_account_get(struct ledger *l, const char *name, struct account *a_r, char *err,
			  size_t errlen)
{
	struct ledger_pg *p = to_pg(l);
	const char *v[1] = { name };
	PGresult *r;
	int rc;

	if (run(p, "SELECT " ACCOUNT_COLUMNS " FROM account WHERE name = $1", 1, v, &r, err,
		errlen, "cannot read the account") != MF_OK)
		return MF_ERROR;
	rc = PQntuples(r) == 0 ? LEDGER_ABSENT : row_account(p, r, 0, a_r, err, errlen);
	PQclear(r);
	return rc;
}

static int pg_login_observed(struct ledger *l, const char *name, const char *client,
			     int64_t now, enum account_state *state_r, char *err, size_t errlen)
{
	struct ledger_pg *p = to_pg(l);

	if (run(p, "BEGIN", 0, NULL, NULL, err, errlen, "BEGIN") != MF_OK)
		return MF_ERROR;
	return finish(p, observe_one(p, name, client, "", now, state_r, err, errlen), err,
		      errlen);
}

static int pg_logins_observed(struct ledger *l, const struct ledger_login *v, size_t n,
			      char *err, size_t errlen)
{
	struct ledger_pg *p = to_pg(l);
	int rc = MF_OK;

	if (run(p, "BEGIN", 0, NULL, NULL, err, errlen, "BEGIN") != MF_OK)
		return MF_ERROR;
	for (size_t i = 0; i < n && rc == MF_OK; i++)
		rc = observe_one(p, v[i].name, v[i].client, v[i].gateway, v[i].at, NULL, err,
				 errlen);
	return finish(p, rc, err, errlen);
}

static int pg_account_set_state(struct ledger *l, const char *name, enum account_state state,
				const char *reason, int64_t now, enum account_state *old_r,
				char *err, size_t errlen)
{
	struct ledger_pg *p = to_pg(l);
	enum account_state old;

	if (run(p, "BEGIN", 0, NULL, NULL, err, errlen, "BEGIN") != MF_OK)
		return MF_ERROR;
	if (finish(p, lock_account(p, name, &old, err, errlen) == MF_OK &&
			      change_state(p, name, old, state, reason, now, err, errlen) == MF_OK
			      ? MF_OK : MF_ERROR, err, errlen) != MF_OK)
		return MF_ERROR;
	if (old_r != NULL)
		*old_r = old;
	return MF_OK;
}

static int pg_account_set_state_if(struct ledger *l, const char *name, unsigned int allowed,
				   enum account_state state, const char *reason, int64_t now,
				   enum account_state *old_r, char *err, size_t errlen)
{
	struct ledger_pg *p = to_pg(l);
	enum account_state old;

	if (run(p, "BEGIN", 0, NULL, NULL, err, errlen, "BEGIN") != MF_OK)
		return MF_ERROR;
	/* The row is created and locked; a refusal rolls the creation back. */
	if (lock_account(p, name, &old, err, errlen) != MF_OK)
		return finish(p, MF_ERROR, err, errlen);
	if (old_r != NULL)
		*old_r = old;
	if (!(allowed & LEDGER_STATE_BIT(old))) {
		rollback(p);
		return LEDGER_REFUSED;
	}
	return finish(p, change_state(p, name, old, state, reason, now, err, errlen), err,
		      errlen);
}

static int pg_account_import(struct ledger *l, const char *name, const char *notes,
			     int64_t now, bool *created_r, char *err, size_t errlen)
{
	struct ledger_pg *p = to_pg(l);
	char at[24];
	const char *v[3] = { name, at, notes };
	PGresult *r;
	int rc;

	i64(at, sizeof(at), now);
	if (run(p, "BEGIN", 0, NULL, NULL, err, errlen, "BEGIN") != MF_OK)
		return MF_ERROR;
	if (run(p, "INSERT INTO account (name) VALUES ($1) ON CONFLICT (name) DO NOTHING "
		   "RETURNING name", 1, v, &r, err, errlen, "cannot add the account") != MF_OK)
		return finish(p, MF_ERROR, err, errlen);
	*created_r = PQntuples(r) == 1;
	PQclear(r);
	rc = run(p, "UPDATE account SET "
		    "imported = CASE imported WHEN 0 THEN $2::BIGINT ELSE imported END, "
		    "notes = COALESCE($3, notes) WHERE name = $1", 3, v, NULL, err, errlen,
		 "cannot record the import");
	return finish(p, rc, err, errlen);
}

static int pg_copy_run_begin(struct ledger *l, const char *name, int64_t now, int64_t *id_r,
			     char *err, size_t errlen)
{
	struct ledger_pg *p = to_pg(l);
	char at[24];
	const char *v[2] = { name, at };
	PGresult *r;

	i64(at, sizeof(at), now);
	if (run(p, "INSERT INTO copy_run (name, started) VALUES ($1, $2) RETURNING id", 2, v,
		&r, err, errlen, "cannot record a copy run") != MF_OK)
		return MF_ERROR;
	*id_r = col_i64(r, 0, 0);
	PQclear(r);
	return MF_OK;
}

static int pg_copy_run_end(struct ledger *l, int64_t id, int64_t now, enum copy_result result,
			   uint64_t messages, uint64_t bytes, const char *error, char *err,
			   size_t errlen)
{
	struct ledger_pg *p = to_pg(l);
	char ids[24], at[24], m[24], b[24], e[LEDGER_REASON_MAX];
	const char *v[6] = { ids, at, copy_result_name(result), m, b, e };
	PGresult *r;
	int rc;

	i64(ids, sizeof(ids), id);
	i64(at, sizeof(at), now);
	snprintf(m, sizeof(m), "%" PRIu64, messages);
	snprintf(b, sizeof(b), "%" PRIu64, bytes);
	snprintf(e, sizeof(e), "%s", error);
	if (run(p, "UPDATE copy_run SET ended = $2, result = $3, messages = $4, bytes = $5, "
		   "error = $6 WHERE id = $1 AND result = 'running'", 6, v, &r, err, errlen,
		"cannot end a copy run") != MF_OK)
		return MF_ERROR;
	rc = atoi(PQcmdTuples(r)) == 1 ? MF_OK : LEDGER_ABSENT;
	PQclear(r);
	return rc;
}

static int pg_copy_runs_interrupt(struct ledger *l, const char *name, int64_t now,
				  unsigned int *n_r, char *err, size_t errlen)
{
	struct ledger_pg *p = to_pg(l);
	char at[24];
	const char *v[2] = { at, name };
	PGresult *r;

	i64(at, sizeof(at), now);
	if (run(p, "UPDATE copy_run SET ended = $1, result = 'interrupted' "
		   "WHERE result = 'running' AND ($2::TEXT IS NULL OR name = $2)", 2, v, &r, err,
		errlen,
		"cannot close interrupted copy runs") != MF_OK)
		return MF_ERROR;
	*n_r = (unsigned int)atoi(PQcmdTuples(r));
	PQclear(r);
	return MF_OK;
}

static int pg_copy_run_list(struct ledger *l, const char *name,
			    int (*fn)(const struct copy_run *r, void *data), void *data,
			    char *err, size_t errlen)
{
	struct ledger_pg *p = to_pg(l);
	const char *v[1] = { name };
	PGresult *r;
	int rc;

	rc = name != NULL
		? run(p, "SELECT " RUN_COLUMNS " FROM copy_run WHERE name = $1 ORDER BY id", 1, v,
		      &r, err, errlen, "cannot list copy runs")
		: run(p, "SELECT " RUN_COLUMNS " FROM copy_run ORDER BY id", 0, NULL, &r, err,
		      errlen, "cannot list copy runs");
	if (rc != MF_OK)
		return MF_ERROR;
	for (int i = 0; i < PQntuples(r) && rc == MF_OK; i++) {
		struct copy_run c;

		memset(&c, 0, sizeof(c));
		c.id = col_i64(r, i, 0);
		col_text(c.name, sizeof(c.name), r, i, 1);
		c.started = col_i64(r, i, 2);
		c.ended = col_i64(r, i, 3);
		if (copy_result_parse(PQgetvalue(r, i, 4), &c.result) != MF_OK) {
			rc = mf_err(err, errlen, "ledger %s: unknown copy result in the database",
				    p->where);
			break;
		}
		c.messages = (uint64_t)col_i64(r, i, 5);
		c.bytes = (uint64_t)col_i64(r, i, 6);
		col_text(c.error, sizeof(c.error), r, i, 7);
		rc = fn(&c, data);
	}
	PQclear(r);
	return rc;
}

static int pg_account_list(struct ledger *l, int filter,
			   int (*fn)(const struct account *a, void *data), void *data, char *err,
			   size_t errlen)
{
	struct ledger_pg *p = to_pg(l);
	const char *v[1];
	PGresult *r;
	int rc = MF_OK;

	if (filter < 0) {
		rc = run(p, "SELECT " ACCOUNT_COLUMNS " FROM account ORDER BY name", 0, NULL, &r,
			 err, errlen, "cannot list accounts");
	} else {
		v[0] = account_state_name((enum account_state)filter);
		rc = run(p, "SELECT " ACCOUNT_COLUMNS " FROM account WHERE state = $1 "
			    "ORDER BY name", 1, v, &r, err, errlen, "cannot list accounts");
	}
	if (rc != MF_OK)
		return MF_ERROR;
	for (int i = 0; i < PQntuples(r) && rc == MF_OK; i++) {
		struct account a;

		rc = row_account(p, r, i, &a, err, errlen);
		if (rc == MF_OK)
			rc = fn(&a, data);
	}
	PQclear(r);
	return rc;
}

static int pg_account_history(struct ledger *l, const char *name,
			      int (*fn)(const struct account_event *e, void *data), void *data,
			      char *err, size_t errlen)
{
	struct ledger_pg *p = to_pg(l);
	const char *v[1] = { name };
	PGresult *r;
	int rc;

	if (run(p, "SELECT at, from_state, to_state, reason FROM account_history "
		   "WHERE name = $1 ORDER BY id", 1, v, &r, err, errlen,
		"cannot read the history") != MF_OK)
		return MF_ERROR;
	rc = MF_OK;
	if (PQntuples(r) == 0) {
		struct account a;

		PQclear(r);
		/* no history: LEDGER_ABSENT only when the account is unknown */
		rc = pg_account_get(l, name, &a, err, errlen);
		return rc == LEDGER_ABSENT ? LEDGER_ABSENT : rc;
	}
	for (int i = 0; i < PQntuples(r) && rc == MF_OK; i++) {
		struct account_event e;

		memset(&e, 0, sizeof(e));
		e.at = col_i64(r, i, 0);
		if (parse_state(p, PQgetvalue(r, i, 1), &e.from, err, errlen) != MF_OK ||
		    parse_state(p, PQgetvalue(r, i, 2), &e.to, err, errlen) != MF_OK) {
			rc = MF_ERROR;
			break;
		}
		col_text(e.reason, sizeof(e.reason), r, i, 3);
		rc = fn(&e, data);
	}
	PQclear(r);
	return rc;
}

static int pg_setting_get(struct ledger *l, const char *key, char *value_r, size_t len,
			  char *err, size_t errlen)
{
	struct ledger_pg *p = to_pg(l);
	const char *v[1] = { key };
	PGresult *r;
	int rc;

	if (run(p, "SELECT value FROM setting WHERE key = $1", 1, v, &r, err, errlen,
		"cannot read a setting") != MF_OK)
		return MF_ERROR;
	if (PQntuples(r) == 0) {
		rc = LEDGER_ABSENT;
	} else if ((size_t)PQgetlength(r, 0, 0) >= len) {
		rc = mf_err(err, errlen, "ledger %s: setting %s: value of %d bytes", p->where, key,
			    PQgetlength(r, 0, 0));
	} else {
		col_text(value_r, len, r, 0, 0);
		rc = MF_OK;
	}
	PQclear(r);
	return rc;
}

static int pg_setting_set(struct ledger *l, const char *key, const char *value, int64_t now,
			  char *err, size_t errlen)
{
	char at[24];
	const char *v[3] = { key, value, at };

	i64(at, sizeof(at), now);
	return run(to_pg(l), "INSERT INTO setting (key, value, changed) VALUES ($1, $2, $3) "
			     "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
			     "changed = excluded.changed", 3, v, NULL, err, errlen,
		   "cannot write a setting");
}

static int pg_flow_count_add(struct ledger *l, const char *subnet, uint16_t port,
			     uint64_t observed, uint64_t intercepted, int64_t now, char *err,
			     size_t errlen)
{
	char ps[8], o[24], in[24], at[24];
	const char *v[5] = { subnet, ps, o, in, at };

	snprintf(ps, sizeof(ps), "%u", port);
	snprintf(o, sizeof(o), "%" PRIu64, observed);
	snprintf(in, sizeof(in), "%" PRIu64, intercepted);
	i64(at, sizeof(at), now);
	return run(to_pg(l), "INSERT INTO flow_count (subnet, port, observed, intercepted, "
			     "last_seen) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (subnet, port) "
			     "DO UPDATE SET observed = flow_count.observed + excluded.observed, "
			     "intercepted = flow_count.intercepted + excluded.intercepted, "
			     "last_seen = excluded.last_seen", 5, v, NULL, err, errlen,
		   "cannot count flows");
}

static int pg_flow_direct_add(struct ledger *l, const char *subnet, uint16_t port,
			      uint64_t direct, int64_t now, char *err, size_t errlen)
{
	char ps[8], d[24], at[24];
	const char *v[4] = { subnet, ps, d, at };

	snprintf(ps, sizeof(ps), "%u", port);
	snprintf(d, sizeof(d), "%" PRIu64, direct);
	i64(at, sizeof(at), now);
	return run(to_pg(l), "INSERT INTO flow_count (subnet, port, direct, last_seen) "
			     "VALUES ($1, $2, $3, $4) ON CONFLICT (subnet, port) "
			     "DO UPDATE SET direct = flow_count.direct + excluded.direct, "
			     "last_seen = excluded.last_seen", 4, v, NULL, err, errlen,
		   "cannot count direct flows");
}

static int pg_flow_count_list(struct ledger *l, int (*fn)(const struct flow_count *c, void *data),
			      void *data, char *err, size_t errlen)
{
	struct ledger_pg *p = to_pg(l);
	PGresult *r;
	int rc = MF_OK;

	if (run(p, "SELECT subnet, port, observed, intercepted, last_seen, direct FROM flow_count "
		   "ORDER BY subnet, port", 0, NULL, &r, err, errlen,
		"cannot list flow counts") != MF_OK)
		return MF_ERROR;
	for (int i = 0; i < PQntuples(r) && rc == MF_OK; i++) {
		struct flow_count c;

		col_text(c.subnet, sizeof(c.subnet), r, i, 0);
		c.port = (uint16_t)col_i64(r, i, 1);
		c.observed = (uint64_t)col_i64(r, i, 2);
		c.intercepted = (uint64_t)col_i64(r, i, 3);
		c.last_seen = col_i64(r, i, 4);
		c.direct = (uint64_t)col_i64(r, i, 5);
		rc = fn(&c, data);
	}
	PQclear(r);
	return rc;
}

static int pg_gateway_beat(struct ledger *l, const struct gateway_beat *b, char *err,
			   size_t errlen)
{
	char st[24], lb[24], sp[24], se[24], co[24], pid[24];
	const char *v[7] = { b->id, st, lb, sp, se, co, pid };

	i64(st, sizeof(st), b->started);
	i64(lb, sizeof(lb), b->last_beat);
	i64(sp, sizeof(sp), b->stopped);
	i64(se, sizeof(se), (int64_t)b->sessions);
	i64(co, sizeof(co), (int64_t)b->copies);
	i64(pid, sizeof(pid), b->pid);
	return run(to_pg(l), "INSERT INTO gateway (id, started, last_beat, stopped, sessions, "
			     "copies, pid) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) "
			     "DO UPDATE SET started = excluded.started, last_beat = excluded.last_beat, "
			     "stopped = excluded.stopped, sessions = excluded.sessions, "
			     "copies = excluded.copies, pid = excluded.pid", 7, v, NULL, err, errlen,
		   "cannot record the gateway's heartbeat");
}

static int pg_gateway_list(struct ledger *l, int (*fn)(const struct gateway_beat *b, void *data),
			   void *data, char *err, size_t errlen)
{
	struct ledger_pg *p = to_pg(l);
	PGresult *r;
	int rc = MF_OK;

	if (run(p, "SELECT id, started, last_beat, stopped, sessions, copies, pid FROM gateway "
		   "ORDER BY id", 0, NULL, &r, err, errlen, "cannot list the gateways") != MF_OK)
		return MF_ERROR;
	for (int i = 0; i < PQntuples(r) && rc == MF_OK; i++) {
		struct gateway_beat b;

		col_text(b.id, sizeof(b.id), r, i, 0);
		b.started = col_i64(r, i, 1);
		b.last_beat = col_i64(r, i, 2);
		b.stopped = col_i64(r, i, 3);
		b.sessions = (uint64_t)col_i64(r, i, 4);
		b.copies = (uint64_t)col_i64(r, i, 5);
		b.pid = col_i64(r, i, 6);
		rc = fn(&b, data);
	}
	PQclear(r);
	return rc;
}

static int pg_account_gateways(struct ledger *l, const char *name,
			       int (*fn)(const struct account_gateway *g, void *data), void *data,
			       char *err, size_t errlen)
{
	struct ledger_pg *p = to_pg(l);
	const char *v[1] = { name };
	PGresult *r;
	int rc = MF_OK;

	if (run(p, "SELECT gateway, logins, first_seen, last_seen FROM account_gateway "
		   "WHERE name = $1 ORDER BY gateway", 1, v, &r, err, errlen,
		"cannot list the account's gateways") != MF_OK)
		return MF_ERROR;
	for (int i = 0; i < PQntuples(r) && rc == MF_OK; i++) {
		struct account_gateway g;

		col_text(g.gateway, sizeof(g.gateway), r, i, 0);
		g.logins = (uint64_t)col_i64(r, i, 1);
		g.first_seen = col_i64(r, i, 2);
		g.last_seen = col_i64(r, i, 3);
		rc = fn(&g, data);
	}
	PQclear(r);
	return rc;
}

/* ---- copy jobs ------------------------------------------------------ */

/* Inside a transaction: the job row of name (created if missing) locked
 * for the rest of it, or LEDGER_NOT_OWNER when another transaction holds
 * it right now (SKIP LOCKED: a claimer never waits for another). */
static int lock_job(struct ledger_pg *p, const char *name, char *owner_r, int64_t *until_r,
		    char *err, size_t errlen)
{
	const char *v[1] = { name };
	PGresult *r;

	if (run(p, "INSERT INTO account (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", 1, v,
		NULL, err, errlen, "cannot add the account") != MF_OK ||
	    run(p, "INSERT INTO copy_job (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", 1, v,
		NULL, err, errlen, "cannot add the copy job") != MF_OK ||
	    run(p, "SELECT owner, lease_until FROM copy_job WHERE name = $1 "
		   "FOR UPDATE SKIP LOCKED", 1, v, &r, err, errlen,
		"cannot lock the copy job") != MF_OK)
		return MF_ERROR;
	if (PQntuples(r) == 0) {
		PQclear(r);
		snprintf(owner_r, LEDGER_GATEWAY_MAX, "%s", "?");
		return LEDGER_NOT_OWNER;
	}
	col_text(owner_r, LEDGER_GATEWAY_MAX, r, 0, 0);
	*until_r = col_i64(r, 0, 1);
	PQclear(r);
	return MF_OK;
}

static int set_job(struct ledger_pg *p, const char *name, const char *owner, int64_t until,
		   int64_t claimed, char *err, size_t errlen)
{
	char u[24], c[24];
	const char *v[4] = { name, owner, u, c };

	i64(u, sizeof(u), until);
	i64(c, sizeof(c), claimed);
	return run(p, "UPDATE copy_job SET owner = $2, lease_until = $3, "
		      "claimed = CASE WHEN $4::BIGINT = 0 THEN claimed ELSE $4::BIGINT END "
		      "WHERE name = $1", 4, v, NULL, err, errlen, "cannot update the copy job");
}

static int account_state_changed(struct ledger_pg *p, const char *name, enum account_state *st_r,
				 int64_t *changed_r, char *err, size_t errlen)
{
	const char *v[1] = { name };
	PGresult *r;
	int rc;

	if (run(p, "SELECT state, state_changed FROM account WHERE name = $1 FOR UPDATE", 1, v,
		&r, err, errlen, "cannot read the account's state") != MF_OK)
		return MF_ERROR;
	rc = PQntuples(r) == 1 ? parse_state(p, PQgetvalue(r, 0, 0), st_r, err, errlen)
			       : mf_err(err, errlen, "ledger %s: account vanished", p->where);
	if (rc == MF_OK)
		*changed_r = col_i64(r, 0, 1);
	PQclear(r);
	return rc;
}

static int claim_tx(struct ledger_pg *p, const char *name, const char *owner, int64_t now_ms,
		    int64_t lease_ms, unsigned int retry_after_s, const char *reason,
		    enum account_state *state_r, char *holder, char *err, size_t errlen)
{
	char cur[LEDGER_GATEWAY_MAX];
	int64_t until = 0, changed = 0;
	enum account_state st = AS_UNSEEN;
	int rc = lock_job(p, name, cur, &until, err, errlen);

	if (rc != MF_OK) {
		snprintf(holder, LEDGER_GATEWAY_MAX, "%s", cur);
		return rc;
	}
	if (account_state_changed(p, name, &st, &changed, err, errlen) != MF_OK)
		return MF_ERROR;
	if (state_r != NULL)
		*state_r = st;
	if (cur[0] != '\0' && strcmp(cur, owner) != 0 && until >= now_ms) {
		snprintf(holder, LEDGER_GATEWAY_MAX, "%s", cur);
		return LEDGER_NOT_OWNER;
	}
	if (!ledger_job_claimable(st, changed, retry_after_s, now_ms / 1000))
		return LEDGER_NOT_OWNER;
	if (change_state(p, name, st, AS_COPYING, reason, now_ms / 1000, err, errlen) != MF_OK ||
	    set_job(p, name, owner, now_ms + lease_ms, now_ms, err, errlen) != MF_OK)
		return MF_ERROR;
	if (state_r != NULL)
		*state_r = AS_COPYING;
	return MF_OK;
}

static int pg_job_claim(struct ledger *l, const char *name, const char *owner, int64_t now_ms,
			int64_t lease_ms, unsigned int retry_after_s, const char *reason,
			enum account_state *state_r, char *holder_r, char *err, size_t errlen)
{
	struct ledger_pg *p = to_pg(l);
	char holder[LEDGER_GATEWAY_MAX] = "";
	int rc;

	if (run(p, "BEGIN", 0, NULL, NULL, err, errlen, "BEGIN") != MF_OK)
		return MF_ERROR;
	rc = claim_tx(p, name, owner, now_ms, lease_ms, retry_after_s, reason, state_r, holder,
		      err, errlen);
	if (rc == LEDGER_NOT_OWNER) {
		rollback(p);
		if (holder_r != NULL)
			snprintf(holder_r, LEDGER_GATEWAY_MAX, "%s", holder);
		return LEDGER_NOT_OWNER;
	}
	return finish(p, rc, err, errlen);
}

static int pg_job_renew(struct ledger *l, const char *name, const char *owner, int64_t now_ms,
			int64_t lease_ms, char *err, size_t errlen)
{
	struct ledger_pg *p = to_pg(l);
	char u[24];
	const char *v[3] = { name, owner, u };
	PGresult *r;
	int rc;

	i64(u, sizeof(u), now_ms + lease_ms);
	if (run(p, "UPDATE copy_job SET lease_until = $3 WHERE name = $1 AND owner = $2", 3, v,
		&r, err, errlen, "cannot renew the lease") != MF_OK)
		return MF_ERROR;
	rc = strcmp(PQcmdTuples(r), "1") == 0 ? MF_OK : LEDGER_NOT_OWNER;
	PQclear(r);
	return rc;
}

static int pg_job_set_state(struct ledger *l, const char *name, const char *owner,
			    enum account_state state, const char *reason, int64_t now,
			    bool release, char *err, size_t errlen)
{
	struct ledger_pg *p = to_pg(l);
	const char *v[1] = { name };
	enum account_state old;
	PGresult *r;
	bool mine;
	int rc;

	if (run(p, "BEGIN", 0, NULL, NULL, err, errlen, "BEGIN") != MF_OK)
		return MF_ERROR;
	/* Waits for a claimer or reaper holding the row: ownership is what
	 * the row says once they are done. */
	if (run(p, "SELECT owner FROM copy_job WHERE name = $1 FOR UPDATE", 1, v, &r, err, errlen,
		"cannot lock the copy job") != MF_OK)
		return finish(p, MF_ERROR, err, errlen);
	mine = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), owner) == 0;
	PQclear(r);
	if (!mine) {
		rollback(p);
		return LEDGER_NOT_OWNER;
	}
	rc = lock_account(p, name, &old, err, errlen);
	if (rc == MF_OK)
		rc = change_state(p, name, old, state, reason, now, err, errlen);
	if (rc == MF_OK && release)
		rc = set_job(p, name, "", 0, 0, err, errlen);
	if (rc == MF_OK && state == AS_MIGRATED)
		rc = run(p, "UPDATE copy_job SET checkpoint = NULL, checkpoint_from = '' "
			    "WHERE name = $1", 1, v, NULL, err, errlen, "cannot drop checkpoints");
	return finish(p, rc, err, errlen);
}

static int pg_checkpoint_put(struct ledger *l, const char *name, const char *owner,
			     const void *buf, size_t len, char *err, size_t errlen)
{
	struct ledger_pg *p = to_pg(l);
	const char *v[3] = { name, owner, buf };
	const int lens[3] = { 0, 0, (int)len }, fmts[3] = { 0, 0, 1 };
	PGresult *r;
	int rc;

	if (PQstatus(p->conn) != CONNECTION_OK && reconnect(p, err, errlen) != MF_OK)
		return MF_ERROR;
	r = PQexecParams(p->conn, "UPDATE copy_job SET checkpoint = $3, checkpoint_from = $2 "
				  "WHERE name = $1 AND owner = $2", 3, NULL, v, lens, fmts, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		rc = pg_err(p, r, err, errlen, "cannot store checkpoints");
	else
		rc = strcmp(PQcmdTuples(r), "1") == 0 ? MF_OK : LEDGER_NOT_OWNER;
	PQclear(r);
	return rc;
}

static int pg_checkpoint_get(struct ledger *l, const char *name, void **buf_r, size_t *len_r,
			     char *from_r, char *err, size_t errlen)
{
	struct ledger_pg *p = to_pg(l);
	const char *v[1] = { name };
	PGresult *r;
	int rc = LEDGER_ABSENT, n;

	if (PQstatus(p->conn) != CONNECTION_OK && reconnect(p, err, errlen) != MF_OK)
		return MF_ERROR;
	/* binary results: the bytes as stored, no escaping */
	r = PQexecParams(p->conn, "SELECT checkpoint, checkpoint_from FROM copy_job "
				  "WHERE name = $1 AND checkpoint IS NOT NULL", 1, NULL, v, NULL,
			 NULL, 1);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		rc = pg_err(p, r, err, errlen, "cannot read checkpoints");
	} else if (PQntuples(r) == 1 && (n = PQgetlength(r, 0, 0)) > 0) {
		*buf_r = malloc((size_t)n);
		if (*buf_r == NULL) {
			rc = mf_err(err, errlen, "out of memory");
		} else {
			memcpy(*buf_r, PQgetvalue(r, 0, 0), (size_t)n);
			*len_r = (size_t)n;
			snprintf(from_r, LEDGER_GATEWAY_MAX, "%.*s", PQgetlength(r, 0, 1),
				 PQgetvalue(r, 0, 1));
			rc = MF_OK;
		}
	}
	PQclear(r);
	return rc;
}

struct reaped {
	char name[ACCOUNT_NAME_MAX + 1];
	char owner[LEDGER_GATEWAY_MAX];
};

static int pg_jobs_reap(struct ledger *l, int64_t now_ms, const char *owner,
			void (*fn)(const char *name, const char *former_owner, void *data),
			void *data, char *err, size_t errlen)
{
	struct ledger_pg *p = to_pg(l);
	char t[24], why[LEDGER_REASON_MAX];
	const char *v[2] = { t, owner };
	struct reaped *done = NULL;
	PGresult *r;
	int n, rc = MF_OK;

	i64(t, sizeof(t), now_ms);
	if (run(p, "BEGIN", 0, NULL, NULL, err, errlen, "BEGIN") != MF_OK)
		return MF_ERROR;
	if (run(p, "SELECT name, owner FROM copy_job WHERE owner <> '' AND "
		   "(lease_until < $1::BIGINT OR owner = $2) ORDER BY name FOR UPDATE SKIP LOCKED",
		2, v, &r, err, errlen, "cannot list expired copy jobs") != MF_OK)
		return finish(p, MF_ERROR, err, errlen);
	n = PQntuples(r);
	if (n > 0 && (done = calloc((size_t)n, sizeof(*done))) == NULL) {
		PQclear(r);
		mf_err(err, errlen, "ledger: out of memory");
		return finish(p, MF_ERROR, err, errlen);
	}
	for (int i = 0; i < n && rc == MF_OK; i++) {
		enum account_state st;

		col_text(done[i].name, sizeof(done[i].name), r, i, 0);
		col_text(done[i].owner, sizeof(done[i].owner), r, i, 1);
		rc = lock_account(p, done[i].name, &st, err, errlen);
		if (rc == MF_OK && (st == AS_COPYING || st == AS_CUTOVER)) {
			snprintf(why, sizeof(why), "copy by gateway %s %s: resumes at the next "
				 "login", done[i].owner, owner != NULL ? "restarted"
								: "lost its lease");
			rc = change_state(p, done[i].name, st, AS_SEEN, why, now_ms / 1000, err,
					  errlen);
		}
		if (rc == MF_OK)
			rc = set_job(p, done[i].name, "", 0, 0, err, errlen);
	}
	PQclear(r);
	rc = finish(p, rc, err, errlen);
	for (int i = 0; i < n && rc == MF_OK && fn != NULL; i++)
		fn(done[i].name, done[i].owner, data);
	free(done);
	return rc;
}

/* ---- POP3 UIDL maps ---------------------------------------------------- */

/* Pairs per INSERT: one round trip per chunk, not per message, and each
 * array parameter stays well under a megabyte. */
#define PG_UIDL_CHUNK 2000

/* Appends u to an array literal as a quoted element: UIDLs may hold '"',
 * '\\', ',', '{' and '}', which the quotes and backslashes make data. */
static size_t array_elem(char *b, size_t at, const char *u)
{
	if (at > 1)
		b[at++] = ',';
	b[at++] = '"';
	for (; *u != '\0'; u++) {
		if (*u == '"' || *u == '\\')
			b[at++] = '\\';
		b[at++] = *u;
	}
	b[at++] = '"';
	return at;
}

static int uidl_insert_chunk(struct ledger_pg *p, const char *name, const struct uidl_pair *v,
			     size_t n, char *dst, char *src, char *err, size_t errlen)
{
	const char *par[3] = { name, dst, src };
	size_t d = 0, s = 0;

	dst[d++] = '{';
	src[s++] = '{';
	for (size_t i = 0; i < n; i++) {
		d = array_elem(dst, d, v[i].dst);
		s = array_elem(src, s, v[i].src);
	}
	dst[d++] = '}';
	src[s++] = '}';
	dst[d] = '\0';
	src[s] = '\0';
	return run(p, "INSERT INTO pop3_uidl (name, dst, src) "
		      "SELECT $1, d, s FROM unnest($2::text[], $3::text[]) AS u (d, s)", 3, par,
		   NULL, err, errlen, "cannot store the UIDL map");
}

static int uidl_map_write(struct ledger_pg *p, const char *name, const struct uidl_pair *v,
			  size_t n, char *err, size_t errlen)
{
	/* each element at most 2 * 70 escaped bytes, 2 quotes and a comma */
	const size_t cap = PG_UIDL_CHUNK * (2 * LEDGER_UIDL_MAX + 3) + 3;
	const char *par[1] = { name };
	char *dst = NULL, *src = NULL;
	PGresult *r;
	int rc;

	if (run(p, "SELECT state FROM account WHERE name = $1 FOR UPDATE", 1, par, &r, err, errlen,
		"cannot read the account") != MF_OK)
		return MF_ERROR;
	rc = PQntuples(r) == 1 ? MF_OK : LEDGER_ABSENT;
	PQclear(r);
	if (rc != MF_OK)
		return rc;
	if (run(p, "DELETE FROM pop3_uidl WHERE name = $1", 1, par, NULL, err, errlen,
		"cannot forget the UIDL map") != MF_OK)
		return MF_ERROR;
	if (n == 0)
		return MF_OK;
	dst = malloc(cap);
	src = malloc(cap);
	if (dst == NULL || src == NULL)
		rc = mf_err(err, errlen, "ledger: out of memory");
	for (size_t at = 0; at < n && rc == MF_OK; at += PG_UIDL_CHUNK)
		rc = uidl_insert_chunk(p, name, v + at, n - at < PG_UIDL_CHUNK ? n - at
									: PG_UIDL_CHUNK,
				       dst, src, err, errlen);
	free(src);
	free(dst);
	return rc;
}

static int pg_uidl_map_put(struct ledger *l, const char *name, const struct uidl_pair *v,
			   size_t n, char *err, size_t errlen)
{
	struct ledger_pg *p = to_pg(l);
	int rc;

	if (run(p, "BEGIN", 0, NULL, NULL, err, errlen, "BEGIN") != MF_OK)
		return MF_ERROR;
	rc = uidl_map_write(p, name, v, n, err, errlen);
	if (rc == LEDGER_ABSENT) {
		rollback(p);
		return LEDGER_ABSENT;
	}
	return finish(p, rc, err, errlen);
}

static int pg_uidl_map_get(struct ledger *l, const char *name, struct uidl_pair **v_r,
			   size_t *n_r, char *err, size_t errlen)
{
	struct ledger_pg *p = to_pg(l);
	const char *par[1] = { name };
	struct uidl_pair *v;
	PGresult *r;
	int n;

	if (run(p, "SELECT dst, src FROM pop3_uidl WHERE name = $1", 1, par, &r, err, errlen,
		"cannot read the UIDL map") != MF_OK)
		return MF_ERROR;
	n = PQntuples(r);
	if (n == 0) {
		PQclear(r);
		return MF_OK;
	}
	v = calloc((size_t)n, sizeof(*v));
	if (v == NULL) {
		PQclear(r);
		return mf_err(err, errlen, "ledger: out of memory");
	}
	for (int i = 0; i < n; i++) {
		if (PQgetlength(r, i, 0) > LEDGER_UIDL_MAX || PQgetlength(r, i, 1) > LEDGER_UIDL_MAX) {
			PQclear(r);
			free(v);
			return mf_err(err, errlen, "ledger %s: a UIDL of %s is too long", p->where,
				      name);
		}
		col_text(v[i].dst, sizeof(v[i].dst), r, i, 0);
		col_text(v[i].src, sizeof(v[i].src), r, i, 1);
	}
	PQclear(r);
	*v_r = v;
	*n_r = (size_t)n;
	return MF_OK;
}

/* ---- change notifications ------------------------------------------- */

static int pg_changes_listen(struct ledger *l, char *err, size_t errlen)
{
	return run(to_pg(l), "LISTEN " PG_CHANNEL, 0, NULL, NULL, err, errlen, "LISTEN");
}

/* Hands fn every notification libpq has buffered; the count. */
static int drain(struct ledger_pg *p,
		 void (*fn)(const char *name, enum account_state state, void *data), void *data)
{
	PGnotify *n;
	int count = 0;

	while ((n = PQnotifies(p->conn)) != NULL) {
		char *tab = strchr(n->extra, '\t');
		enum account_state st;

		if (tab != NULL) {
			*tab = '\0';
			if (account_state_parse(n->extra, &st) == MF_OK &&
			    account_name_is_normal(tab + 1)) {
				fn(tab + 1, st, data);
				count++;
			}
		}
		PQfreemem(n);
	}
	return count;
}

static int pg_changes_wait(struct ledger *l, int timeout_ms,
			   void (*fn)(const char *name, enum account_state state, void *data),
			   void *data, char *err, size_t errlen)
{
	struct ledger_pg *p = to_pg(l);
	struct pollfd pfd = { .fd = PQsocket(p->conn), .events = POLLIN };

	if (pfd.fd < 0 || PQstatus(p->conn) != CONNECTION_OK)
		return pg_err(p, NULL, err, errlen, "listening connection lost");
	if (drain(p, fn, data) > 0)
		return MF_OK;
	if (poll(&pfd, 1, timeout_ms) < 0)
		return MF_OK; /* EINTR: the caller loops */
	if (pfd.revents != 0 && PQconsumeInput(p->conn) == 0)
		return pg_err(p, NULL, err, errlen, "listening connection lost");
	drain(p, fn, data);
	return MF_OK;
}

static const struct ledger_ops pg_ops = {
	.name = "postgresql",
	.close = pg_close,
	.schema_version = pg_schema_version,
	.account_get = pg_account_get,
	.login_observed = pg_login_observed,
	.logins_observed = pg_logins_observed,
	.account_set_state = pg_account_set_state,
	.account_set_state_if = pg_account_set_state_if,
	.account_import = pg_account_import,
	.copy_run_begin = pg_copy_run_begin,
	.copy_run_end = pg_copy_run_end,
	.copy_runs_interrupt = pg_copy_runs_interrupt,
	.copy_run_list = pg_copy_run_list,
	.account_list = pg_account_list,
	.account_history = pg_account_history,
	.setting_get = pg_setting_get,
	.setting_set = pg_setting_set,
	.flow_count_add = pg_flow_count_add,
	.flow_direct_add = pg_flow_direct_add,
	.flow_count_list = pg_flow_count_list,
	.account_gateways = pg_account_gateways,
	.gateway_beat = pg_gateway_beat,
	.gateway_list = pg_gateway_list,
	.job_claim = pg_job_claim,
	.job_renew = pg_job_renew,
	.job_set_state = pg_job_set_state,
	.jobs_reap = pg_jobs_reap,
	.checkpoint_put = pg_checkpoint_put,
	.checkpoint_get = pg_checkpoint_get,
	.uidl_map_put = pg_uidl_map_put,
	.uidl_map_get = pg_uidl_map_get,
	.changes_listen = pg_changes_listen,
	.changes_wait = pg_changes_wait,
};

int ledger_pg_open(const char *spec, struct ledger **l_r, char *err, size_t errlen)
{
	struct ledger_pg *p = calloc(1, sizeof(*p));

	*l_r = NULL;
	if (p == NULL)
		return mf_err(err, errlen, "ledger: out of memory");
	p->base.ops = &pg_ops;
	{
		/* Our bounds first: values in spec override them. Keepalives
		 * notice a server that vanished without a reset, the TCP user
		 * timeout one that stopped acknowledging what we send. */
		static const char *const keys[] = { "connect_timeout", "keepalives_idle",
						    "keepalives_interval", "keepalives_count",
						    "tcp_user_timeout", "dbname", NULL };
		const char *vals[] = { "3", "5", "2", "3", "10000", spec, NULL };

		p->conn = PQconnectdbParams(keys, vals, 1);
	}
	if (p->conn == NULL) {
		free(p);
		return mf_err(err, errlen, "ledger: out of memory");
	}
	snprintf(p->where, sizeof(p->where), "postgresql %s/%s",
		 PQhost(p->conn) ? PQhost(p->conn) : "?", PQdb(p->conn) ? PQdb(p->conn) : "?");
	if (PQstatus(p->conn) != CONNECTION_OK) {
		pg_err(p, NULL, err, errlen, "cannot connect");
		pg_close(&p->base);
		return MF_ERROR;
	}
	/* Notices (IF NOT EXISTS) are not errors; keep them off stderr. */
	PQclear(PQexec(p->conn, "SET client_min_messages = warning"));
	if (migrate_schema(p, err, errlen) != MF_OK) {
		pg_close(&p->base);
		return MF_ERROR;
	}
	*l_r = &p->base;
	return MF_OK;
}
