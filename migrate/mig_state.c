/* mig_state.c — the one-shot's checkpoint file (contract in mig_state.h). */
#include "mig_state.h"
#include "mf.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_SCHEMA_VERSION 2

struct mig_state {
	sqlite3 *db;
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS folder ("
	" name BLOB PRIMARY KEY, uidvalidity INTEGER NOT NULL,"
	" dst_uidvalidity INTEGER NOT NULL, last_uid INTEGER NOT NULL,"
	" dirty INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS msg ("
	" folder BLOB NOT NULL, src_uid INTEGER NOT NULL, dst_uid INTEGER NOT NULL,"
	" size INTEGER NOT NULL, sha256 BLOB NOT NULL, verified INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (folder, src_uid));"
	"CREATE TABLE IF NOT EXISTS uidl ("
	" uidl TEXT PRIMARY KEY, dst_uid INTEGER NOT NULL, size INTEGER NOT NULL,"
	" sha256 BLOB NOT NULL, pending INTEGER NOT NULL);";

/* A loaded array with twice the room (256 entries at first): the new
 * pointer, or NULL (v untouched) when out of memory. */
static void *grow(void *v, size_t *cap, size_t size)
{
	size_t nc = *cap ? *cap * 2 : 256;
	void *nv = realloc(v, nc * size);

	if (nv != NULL)
		*cap = nc;
	return nv;
}

static int db_err(struct mig_state *s, char *err, size_t errlen, const char *what)
{
	return mf_err(err, errlen, "state: %s: %s", what, sqlite3_errmsg(s->db));
}

static int exec(struct mig_state *s, const char *sql, char *err, size_t errlen)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_err(s, err, errlen, sql);
	return MF_OK;
}

static int create_0600(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0)
		return mf_err(err, errlen, "state: %s: %s", path, strerror(errno));
	if (fchmod(fd, 0600) != 0) {
		close(fd);
		return mf_err(err, errlen, "state: chmod %s: %s", path, strerror(errno));
	}
	close(fd);
	return MF_OK;
}

/* The file's pair becomes pair_id, every folder dirty: whatever the map
 * lacks is reconciled by content before anything is copied. */
static int adopt_pair(struct mig_state *s, const char *pair_id, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (exec(s, "UPDATE folder SET dirty = 1", err, errlen) != MF_OK)
		return MF_ERROR;
	if (sqlite3_prepare_v2(s->db, "UPDATE meta SET value = ? WHERE key = 'pair'", -1, &st,
			       NULL) != SQLITE_OK)
		return db_err(s, err, errlen, "meta");
	sqlite3_bind_text(st, 1, pair_id, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? MF_OK : db_err(s, err, errlen, "meta");
}

/* The file belongs to pair_id: recorded on first use, checked after (or,
 * adopt, taken over when it is another's). */
static int check_pair(struct mig_state *s, const char *pair_id, bool adopt, char *err,
		      size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'pair'", -1, &st,
			       NULL) != SQLITE_OK)
		return db_err(s, err, errlen, "meta");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		bool same = v != NULL && strcmp(v, pair_id) == 0;

		if (!same && !adopt)
			mf_err(err, errlen, "state file belongs to another migration (%s)",
			       v ? v : "?");
		sqlite3_finalize(st);
		if (same)
			return MF_OK;
		return adopt ? adopt_pair(s, pair_id, err, errlen) : MF_ERROR;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_err(s, err, errlen, "meta");
	if (sqlite3_prepare_v2(s->db, "INSERT INTO meta VALUES ('pair', ?)", -1, &st, NULL) !=
	    SQLITE_OK)
		return db_err(s, err, errlen, "meta");
	sqlite3_bind_text(st, 1, pair_id, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_err(s, err, errlen, "meta");
	return MF_OK;
}

/* 1: msg has the verified column, 0: not, -1: cannot tell. */
static int has_verified_column(struct mig_state *s)
{
	sqlite3_stmt *st = NULL;
	int rc, found = 0;

	if (sqlite3_prepare_v2(s->db, "SELECT name FROM pragma_table_info('msg')", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (strcmp((const char *)sqlite3_column_text(st, 0), "verified") == 0)
			found = 1;
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? found : -1;
}

static int state_open(const char *path, const char *pair_id, bool adopt, struct mig_state **s_r,
		      char *err, size_t errlen)
{
	struct mig_state *s = calloc(1, sizeof(*s));
	char pragma[64];

	*s_r = NULL;
	if (s == NULL)
		return mf_err(err, errlen, "out of memory");
	if (path != NULL && create_0600(path, err, errlen) != MF_OK)
		goto fail;
	if (sqlite3_open_v2(path != NULL ? path : ":memory:", &s->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		mf_err(err, errlen, "state: %s: %s", path ? path : ":memory:",
		       s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	/* WAL + NORMAL: a commit survives a kill -9 of this process (the
	 * kernel has the pages); a power cut may lose the last batches,
	 * which the dirty mark and reconciliation then repair. */
	if (exec(s, "PRAGMA journal_mode = WAL", err, errlen) != MF_OK ||
	    exec(s, "PRAGMA synchronous = NORMAL", err, errlen) != MF_OK ||
	    exec(s, schema, err, errlen) != MF_OK)
		goto fail;
	/* Files of version 1 have no verified column: every row unverified. */
	if (has_verified_column(s) == 0 &&
	    exec(s, "ALTER TABLE msg ADD COLUMN verified INTEGER NOT NULL DEFAULT 0", err,
		 errlen) != MF_OK)
		goto fail;
	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", STATE_SCHEMA_VERSION);
	if (exec(s, pragma, err, errlen) != MF_OK ||
	    check_pair(s, pair_id, adopt, err, errlen) != MF_OK)
		goto fail;
	*s_r = s;
	return MF_OK;
fail:
	mig_state_close(s);
	return MF_ERROR;
}

int mig_state_open(const char *path, const char *pair_id, struct mig_state **s_r,
		   char *err, size_t errlen)
{
	return state_open(path, pair_id, false, s_r, err, errlen);
}

int mig_state_open_account(const char *path, const char *pair_id, struct mig_state **s_r,
			   char *err, size_t errlen)
{
	return state_open(path, pair_id, true, s_r, err, errlen);
}

void mig_state_close(struct mig_state *s)
{
	if (s == NULL)
		return;
	sqlite3_close(s->db);
	free(s);
}

int mig_state_begin(struct mig_state *s, char *err, size_t errlen)
{
	return exec(s, "BEGIN IMMEDIATE", err, errlen);
}

int mig_state_commit(struct mig_state *s, char *err, size_t errlen)
{
	return exec(s, "COMMIT", err, errlen);
}

void mig_state_rollback(struct mig_state *s)
{
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

int mig_state_folder_get(struct mig_state *s, const char *folder,
			 struct mig_folder_state *f_r, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	memset(f_r, 0, sizeof(*f_r));
	if (sqlite3_prepare_v2(s->db,
			       "SELECT uidvalidity, dst_uidvalidity, last_uid, dirty FROM folder"
			       " WHERE name = ?", -1, &st, NULL) != SQLITE_OK)
		return db_err(s, err, errlen, "folder");
	sqlite3_bind_blob(st, 1, folder, (int)strlen(folder), SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		f_r->known = true;
		f_r->uidvalidity = (uint32_t)sqlite3_column_int64(st, 0);
		f_r->dst_uidvalidity = (uint32_t)sqlite3_column_int64(st, 1);
		f_r->last_uid = (uint32_t)sqlite3_column_int64(st, 2);
		f_r->dirty = sqlite3_column_int(st, 3) != 0;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_err(s, err, errlen, "folder");
	return MF_OK;
}

int mig_state_folder_put(struct mig_state *s, const char *folder,
			 const struct mig_folder_state *f, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO folder VALUES (?, ?, ?, ?, ?)", -1,
			       &st, NULL) != SQLITE_OK)
		return db_err(s, err, errlen, "folder");
	sqlite3_bind_blob(st, 1, folder, (int)strlen(folder), SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, f->uidvalidity);
	sqlite3_bind_int64(st, 3, f->dst_uidvalidity);
	sqlite3_bind_int64(st, 4, f->last_uid);
	sqlite3_bind_int(st, 5, f->dirty ? 1 : 0);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_err(s, err, errlen, "folder");
	return MF_OK;
}

int mig_state_map_add(struct mig_state *s, const char *folder,
		      const struct mig_map_entry *e, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db,
			       "INSERT OR REPLACE INTO msg (folder, src_uid, dst_uid, size, sha256)"
			       " VALUES (?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK)
		return db_err(s, err, errlen, "msg");
	sqlite3_bind_blob(st, 1, folder, (int)strlen(folder), SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, e->src_uid);
	sqlite3_bind_int64(st, 3, e->dst_uid);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)e->size);
	sqlite3_bind_blob(st, 5, e->sha256, 32, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_err(s, err, errlen, "msg");
	return MF_OK;
}

int mig_state_map_drop(struct mig_state *s, const char *folder, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, "DELETE FROM msg WHERE folder = ?", -1, &st, NULL) !=
	    SQLITE_OK)
		return db_err(s, err, errlen, "msg");
	sqlite3_bind_blob(st, 1, folder, (int)strlen(folder), SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_err(s, err, errlen, "msg");
	return MF_OK;
}

int mig_state_map_del(struct mig_state *s, const char *folder, uint32_t src_uid, char *err,
		      size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, "DELETE FROM msg WHERE folder = ? AND src_uid = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return db_err(s, err, errlen, "msg");
	sqlite3_bind_blob(st, 1, folder, (int)strlen(folder), SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, src_uid);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_err(s, err, errlen, "msg");
	return MF_OK;
}

int mig_state_map_verified(struct mig_state *s, const char *folder, const uint32_t *src_uids,
			   size_t n, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_DONE;

	if (n == 0)
		return MF_OK;
	if (sqlite3_prepare_v2(s->db, "UPDATE msg SET verified = 1 WHERE folder = ? AND src_uid = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return db_err(s, err, errlen, "msg");
	if (mig_state_begin(s, err, errlen) != MF_OK) {
		sqlite3_finalize(st);
		return MF_ERROR;
	}
	sqlite3_bind_blob(st, 1, folder, (int)strlen(folder), SQLITE_TRANSIENT);
	for (size_t i = 0; i < n && rc == SQLITE_DONE; i++) {
		sqlite3_bind_int64(st, 2, src_uids[i]);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		mig_state_rollback(s);
		return db_err(s, err, errlen, "msg");
	}
	return mig_state_commit(s, err, errlen);
}

int mig_state_map_count(struct mig_state *s, const char *folder, uint64_t *n_r, char *err,
			size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*n_r = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM msg WHERE folder = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return db_err(s, err, errlen, "msg");
	sqlite3_bind_blob(st, 1, folder, (int)strlen(folder), SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*n_r = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return db_err(s, err, errlen, "msg");
	return MF_OK;
}

int mig_state_map_load(struct mig_state *s, const char *folder,
		       struct mig_map_entry **v_r, size_t *n_r, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	struct mig_map_entry *v = NULL;
	size_t n = 0, cap = 0;
	int rc;

	*v_r = NULL;
	*n_r = 0;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT src_uid, dst_uid, size, sha256, verified FROM msg"
			       " WHERE folder = ? ORDER BY src_uid", -1, &st, NULL) != SQLITE_OK)
		return db_err(s, err, errlen, "msg");
	sqlite3_bind_blob(st, 1, folder, (int)strlen(folder), SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *h = sqlite3_column_blob(st, 3);

		if (n == cap) {
			void *nv = grow(v, &cap, sizeof(*v));

			if (nv == NULL) {
				free(v);
				sqlite3_finalize(st);
				return mf_err(err, errlen, "out of memory");
			}
			v = nv;
		}
		v[n].src_uid = (uint32_t)sqlite3_column_int64(st, 0);
		v[n].dst_uid = (uint32_t)sqlite3_column_int64(st, 1);
		v[n].size = (uint64_t)sqlite3_column_int64(st, 2);
		memset(v[n].sha256, 0, 32);
		if (h != NULL && sqlite3_column_bytes(st, 3) == 32)
			memcpy(v[n].sha256, h, 32);
		v[n].verified = sqlite3_column_int(st, 4) != 0;
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return db_err(s, err, errlen, "msg");
	}
	*v_r = v;
	*n_r = n;
	return MF_OK;
}

int mig_state_uidl_put(struct mig_state *s, const struct mig_uidl_entry *e, char *err,
		       size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO uidl VALUES (?, ?, ?, ?, ?)", -1,
			       &st, NULL) != SQLITE_OK)
		return db_err(s, err, errlen, "uidl");
	sqlite3_bind_text(st, 1, e->uidl, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, e->dst_uid);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)e->size);
	sqlite3_bind_blob(st, 4, e->sha256, 32, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 5, e->pending ? 1 : 0);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? MF_OK : db_err(s, err, errlen, "uidl");
}

int mig_state_uidl_del(struct mig_state *s, const char *uidl, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, "DELETE FROM uidl WHERE uidl = ?", -1, &st, NULL) !=
	    SQLITE_OK)
		return db_err(s, err, errlen, "uidl");
	sqlite3_bind_text(st, 1, uidl, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? MF_OK : db_err(s, err, errlen, "uidl");
}

int mig_state_uidl_load(struct mig_state *s, struct mig_uidl_entry **v_r, size_t *n_r,
			char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	struct mig_uidl_entry *v = NULL;
	size_t n = 0, cap = 0;
	int rc;

	*v_r = NULL;
	*n_r = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT uidl, dst_uid, size, sha256, pending FROM uidl"
			       " ORDER BY uidl", -1, &st, NULL) != SQLITE_OK)
		return db_err(s, err, errlen, "uidl");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *u = sqlite3_column_text(st, 0);
		const void *h = sqlite3_column_blob(st, 3);

		if (n == cap) {
			void *nv = grow(v, &cap, sizeof(*v));

			if (nv == NULL) {
				free(v);
				sqlite3_finalize(st);
				return mf_err(err, errlen, "out of memory");
			}
			v = nv;
		}
		memset(&v[n], 0, sizeof(v[n]));
		snprintf(v[n].uidl, sizeof(v[n].uidl), "%s", u != NULL ? (const char *)u : "");
		v[n].dst_uid = (uint32_t)sqlite3_column_int64(st, 1);
		v[n].size = (uint64_t)sqlite3_column_int64(st, 2);
		if (h != NULL && sqlite3_column_bytes(st, 3) == 32)
			memcpy(v[n].sha256, h, 32);
		v[n].pending = sqlite3_column_int(st, 4) != 0;
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return db_err(s, err, errlen, "uidl");
	}
	*v_r = v;
	*n_r = n;
	return MF_OK;
}

int mig_state_snapshot(const char *path, void **buf_r, size_t *len_r, char *err,
		       size_t errlen)
{
	sqlite3 *db = NULL;
	sqlite3_int64 n = 0;
	unsigned char *img;
	int rc = MF_ERROR;

	*buf_r = NULL;
	*len_r = 0;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		mf_err(err, errlen, "state: %s: %s", path, db ? sqlite3_errmsg(db) : "no memory");
		goto out;
	}
	sqlite3_busy_timeout(db, 5000);
	img = sqlite3_serialize(db, "main", &n, 0);
	if (img == NULL || n <= 0) {
		mf_err(err, errlen, "state: %s: cannot take a snapshot", path);
		sqlite3_free(img);
		goto out;
	}
	*buf_r = malloc((size_t)n);
	if (*buf_r != NULL) {
		memcpy(*buf_r, img, (size_t)n);
		*len_r = (size_t)n;
		rc = MF_OK;
	} else {
		mf_err(err, errlen, "out of memory");
	}
	sqlite3_free(img);
out:
	sqlite3_close(db);
	return rc;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return MF_ERROR;
		p += w;
		len -= (size_t)w;
	}
	return MF_OK;
}

int mig_state_restore(const char *path, const void *buf, size_t len, char *err,
		      size_t errlen)
{
	static const char *const stale[] = { "-wal", "-shm" };
	char tmp[4096 + 16], side[4096 + 16];
	sqlite3 *db = NULL;
	int fd, rc;

	if (snprintf(tmp, sizeof(tmp), "%s.restore", path) >= (int)sizeof(tmp))
		return mf_err(err, errlen, "state: path too long");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return mf_err(err, errlen, "state: %s: %s", tmp, strerror(errno));
	rc = write_all(fd, buf, len) == MF_OK && fsync(fd) == 0 ? MF_OK : MF_ERROR;
	if (close(fd) != 0)
		rc = MF_ERROR;
	if (rc != MF_OK) {
		unlink(tmp);
		return mf_err(err, errlen, "state: %s: %s", tmp, strerror(errno));
	}
	/* A -wal left by an older file would be replayed into this one. */
	for (size_t i = 0; i < MF_ARRAY_LEN(stale); i++) {
		snprintf(side, sizeof(side), "%s%s", path, stale[i]);
		if (unlink(side) != 0 && errno != ENOENT) {
			unlink(tmp);
			return mf_err(err, errlen, "state: %s: %s", side, strerror(errno));
		}
	}
	if (rename(tmp, path) != 0) {
		unlink(tmp);
		return mf_err(err, errlen, "state: %s: %s", path, strerror(errno));
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
		    SQLITE_OK ||
	    sqlite3_exec(db, "UPDATE folder SET dirty = 1", NULL, NULL, NULL) != SQLITE_OK) {
		mf_err(err, errlen, "state: %s: %s", path, db ? sqlite3_errmsg(db) : "no memory");
		sqlite3_close(db);
		unlink(path); /* a state we cannot mark dirty must not be trusted */
		return MF_ERROR;
	}
	sqlite3_close(db);
	return MF_OK;
}
