/* Unit tests: migrate/mig_state.c — the one-shot's checkpoint file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mf.h"
#include "mig_state.h"

#include <sqlite3.h>

static void test_roundtrip(void **state)
{
	char dir[] = "/tmp/mf-state-XXXXXX", path[64], err[256];
	struct mig_state *s;
	struct mig_folder_state f = { .uidvalidity = 7, .dst_uidvalidity = 9, .last_uid = 41,
				      .dirty = true }, g;
	struct mig_map_entry e = { .src_uid = 41, .dst_uid = 3, .size = 1234 }, *v;
	size_t n;
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.db", dir);
	umask(022);
	assert_int_equal(mig_state_open(path, "a -> b", &s, err, sizeof(err)), MF_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(mig_state_folder_get(s, "INBOX", &g, err, sizeof(err)), MF_OK);
	assert_false(g.known);
	assert_int_equal(mig_state_folder_put(s, "INBOX", &f, err, sizeof(err)), MF_OK);
	memset(e.sha256, 0xab, 32);
	assert_int_equal(mig_state_begin(s, err, sizeof(err)), MF_OK);
	assert_int_equal(mig_state_map_add(s, "INBOX", &e, err, sizeof(err)), MF_OK);
	e.src_uid = 5;
	e.dst_uid = 0;
	assert_int_equal(mig_state_map_add(s, "INBOX", &e, err, sizeof(err)), MF_OK);
	assert_int_equal(mig_state_map_add(s, "Other", &e, err, sizeof(err)), MF_OK);
	assert_int_equal(mig_state_commit(s, err, sizeof(err)), MF_OK);
	/* A rolled back batch leaves nothing. */
	assert_int_equal(mig_state_begin(s, err, sizeof(err)), MF_OK);
	e.src_uid = 99;
	assert_int_equal(mig_state_map_add(s, "INBOX", &e, err, sizeof(err)), MF_OK);
	mig_state_rollback(s);
	mig_state_close(s);

	assert_int_equal(mig_state_open(path, "a -> b", &s, err, sizeof(err)), MF_OK);
	assert_int_equal(mig_state_folder_get(s, "INBOX", &g, err, sizeof(err)), MF_OK);
	assert_true(g.known && g.dirty);
	assert_int_equal(g.uidvalidity, 7);
	assert_int_equal(g.dst_uidvalidity, 9);
	assert_int_equal(g.last_uid, 41);
	assert_int_equal(mig_state_map_load(s, "INBOX", &v, &n, err, sizeof(err)), MF_OK);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].src_uid, 5); /* sorted by source UID */
	assert_int_equal(v[1].src_uid, 41);
	assert_int_equal(v[1].dst_uid, 3);
	assert_int_equal(v[1].size, 1234);
	assert_int_equal(v[1].sha256[31], 0xab);
	free(v);
	assert_int_equal(mig_state_map_drop(s, "INBOX", err, sizeof(err)), MF_OK);
	assert_int_equal(mig_state_map_load(s, "INBOX", &v, &n, err, sizeof(err)), MF_OK);
	assert_int_equal(n, 0);
	free(v);
	assert_int_equal(mig_state_map_load(s, "Other", &v, &n, err, sizeof(err)), MF_OK);
	assert_int_equal(n, 1);
	free(v);
	mig_state_close(s);

	/* Another migration's file is refused. */
	assert_int_equal(mig_state_open(path, "a -> c", &s, err, sizeof(err)), MF_ERROR);
	assert_non_null(strstr(err, "another migration (a -> b)"));
	assert_null(s);
	/* An account's file is taken over: the pair rewritten, folders dirty,
	 * the map kept (reconciled by content before the next copy). */
	f.dirty = false;
	assert_int_equal(mig_state_open(path, "a -> b", &s, err, sizeof(err)), MF_OK);
	assert_int_equal(mig_state_folder_put(s, "Other", &f, err, sizeof(err)), MF_OK);
	mig_state_close(s);
	assert_int_equal(mig_state_open_account(path, "acct", &s, err, sizeof(err)), MF_OK);
	assert_int_equal(mig_state_folder_get(s, "Other", &g, err, sizeof(err)), MF_OK);
	assert_true(g.known && g.dirty);
	assert_int_equal(mig_state_map_load(s, "Other", &v, &n, err, sizeof(err)), MF_OK);
	assert_int_equal(n, 1);
	free(v);
	mig_state_close(s);
	assert_int_equal(mig_state_open(path, "acct", &s, err, sizeof(err)), MF_OK);
	mig_state_close(s);
	assert_int_equal(mig_state_open(path, "a -> b", &s, err, sizeof(err)), MF_ERROR);
	unlink(path);
	{
		char p2[80];

		snprintf(p2, sizeof(p2), "%s-wal", path);
		unlink(p2);
		snprintf(p2, sizeof(p2), "%s-shm", path);
		unlink(p2);
	}
	rmdir(dir);
	/* In memory. */
	assert_int_equal(mig_state_open(NULL, "x", &s, err, sizeof(err)), MF_OK);
	mig_state_close(s);
}

static void unlink_db(const char *path)
{
	static const char *const sfx[] = { "", "-wal", "-shm", ".restore" };
	char p[128];

	for (size_t i = 0; i < MF_ARRAY_LEN(sfx); i++) {
		snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
		unlink(p);
	}
}

/* Verified marks: set for the messages named, kept across a reopen, lost
 * when a row is rewritten (a copy again); a version 1 file (no verified
 * column) is upgraded in place with every row unverified. */
static void test_verified_marks(void **state)
{
	char dir[] = "/tmp/mf-state-XXXXXX", path[64], err[256];
	struct mig_map_entry e = { .size = 10 }, *v;
	uint32_t uids[] = { 2, 3, 777 };
	struct mig_state *s;
	sqlite3 *db;
	size_t n;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.db", dir);
	/* A file as version 1 wrote it. */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "CREATE TABLE msg (folder BLOB NOT NULL, src_uid INTEGER NOT NULL,"
				      " dst_uid INTEGER NOT NULL, size INTEGER NOT NULL,"
				      " sha256 BLOB NOT NULL, PRIMARY KEY (folder, src_uid));"
				      " INSERT INTO msg VALUES (CAST('INBOX' AS BLOB), 1, 11, 10,"
				      " zeroblob(32));", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(mig_state_open(path, "a -> b", &s, err, sizeof(err)), MF_OK);
	for (uint32_t u = 2; u <= 4; u++) {
		e.src_uid = u;
		e.dst_uid = 10 + u;
		assert_int_equal(mig_state_map_add(s, "INBOX", &e, err, sizeof(err)), MF_OK);
	}
	assert_int_equal(mig_state_map_verified(s, "INBOX", uids, 3, err, sizeof(err)), MF_OK);
	assert_int_equal(mig_state_map_verified(s, "INBOX", uids, 0, err, sizeof(err)), MF_OK);
	mig_state_close(s);
	assert_int_equal(mig_state_open(path, "a -> b", &s, err, sizeof(err)), MF_OK);
	assert_int_equal(mig_state_map_load(s, "INBOX", &v, &n, err, sizeof(err)), MF_OK);
	assert_int_equal(n, 4);
	assert_int_equal(v[0].src_uid, 1);
	assert_false(v[0].verified); /* the old row */
	assert_true(v[1].verified && v[2].verified);
	assert_false(v[3].verified);
	free(v);
	e.src_uid = 2; /* copied again: not verified any more */
	assert_int_equal(mig_state_map_add(s, "INBOX", &e, err, sizeof(err)), MF_OK);
	assert_int_equal(mig_state_map_load(s, "INBOX", &v, &n, err, sizeof(err)), MF_OK);
	assert_false(v[1].verified);
	assert_true(v[2].verified);
	free(v);
	mig_state_close(s);
	unlink_db(path);
	rmdir(dir);
}


/* Another gateway's checkpoints: the snapshot taken while the copy still
 * has the file open (WAL not checkpointed) holds every committed batch;
 * restored over an older file (and its stale -wal), every folder is dirty
 * and the map is the snapshot's. */
static void test_snapshot_restore(void **state)
{
	char dir[] = "/tmp/mf-state-XXXXXX", a[64], b[64], err[256];
	struct mig_state *s, *old;
	struct mig_folder_state f = { .uidvalidity = 7, .dst_uidvalidity = 9, .last_uid = 41 }, g;
	struct mig_map_entry e = { .src_uid = 41, .dst_uid = 3, .size = 1234 }, *v;
	void *buf;
	size_t len, n;
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(a, sizeof(a), "%s/a.db", dir);
	snprintf(b, sizeof(b), "%s/b.db", dir);
	assert_int_equal(mig_state_open(a, "p", &s, err, sizeof(err)), MF_OK);
	assert_int_equal(mig_state_begin(s, err, sizeof(err)), MF_OK);
	assert_int_equal(mig_state_map_add(s, "INBOX", &e, err, sizeof(err)), MF_OK);
	assert_int_equal(mig_state_folder_put(s, "INBOX", &f, err, sizeof(err)), MF_OK);
	assert_int_equal(mig_state_commit(s, err, sizeof(err)), MF_OK);
	/* b: an older state of its own, still open (a -wal beside it) */
	assert_int_equal(mig_state_open(b, "p", &old, err, sizeof(err)), MF_OK);
	f.last_uid = 2;
	assert_int_equal(mig_state_folder_put(old, "Sent", &f, err, sizeof(err)), MF_OK);
	mig_state_close(old);
	assert_int_equal(mig_state_snapshot(a, &buf, &len, err, sizeof(err)), MF_OK);
	mig_state_close(s);
	assert_true(len > 0);
	assert_int_equal(mig_state_restore(b, buf, len, err, sizeof(err)), MF_OK);
	free(buf);
	assert_int_equal(stat(b, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(mig_state_open(b, "p", &s, err, sizeof(err)), MF_OK);
	assert_int_equal(mig_state_folder_get(s, "INBOX", &g, err, sizeof(err)), MF_OK);
	assert_true(g.known && g.dirty);
	assert_int_equal(g.last_uid, 41);
	assert_int_equal(mig_state_folder_get(s, "Sent", &g, err, sizeof(err)), MF_OK);
	assert_false(g.known);
	assert_int_equal(mig_state_map_load(s, "INBOX", &v, &n, err, sizeof(err)), MF_OK);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].dst_uid, 3);
	free(v);
	mig_state_close(s);
	/* garbage is not a state */
	assert_int_equal(mig_state_restore(b, "not a database at all", 21, err, sizeof(err)),
			 MF_ERROR);
	assert_int_equal(stat(b, &st), -1);
	unlink_db(a);
	unlink_db(b);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_snapshot_restore),
		cmocka_unit_test(test_verified_marks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
