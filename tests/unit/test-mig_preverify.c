/* Unit tests: migrate/mig_verify.c's read-back of the bulk pass
 * (mig_preverify_folder) against a scripted destination: the copied
 * messages not verified yet are fetched in slices of at most
 * MIG_PREVERIFY_SLICE_MSGS messages and MIG_PREVERIFY_SLICE_BYTES bytes,
 * each slice's matches committed before the next is read (a mismatch in
 * a later slice keeps the earlier marks, a resumed copy reads only what
 * is left); messages marked already, or without a destination UID, are
 * not read; a stop is honoured between slices. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/sha.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imap_client.h"
#include "mf.h"
#include "mig_ctx.h"
#include "scripted_imap.h"

struct buf {
	char *p;
	size_t n, cap;
};

static void put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int k;

	for (;;) {
		va_start(ap, fmt);
		k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
		va_end(ap);
		assert_true(k >= 0);
		if (b->n + (size_t)k < b->cap)
			break;
		b->cap = (b->cap + (size_t)k) * 2 + 256;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	b->n += (size_t)k;
}

static void body(uint32_t uid, char out[16])
{
	snprintf(out, 16, "msg%07u", uid);
}

static void map_row(struct mig_state *st, uint32_t src_uid, uint32_t dst_uid, uint64_t size)
{
	struct mig_map_entry e = { .src_uid = src_uid, .dst_uid = dst_uid };
	char b[16], err[256];

	body(dst_uid, b);
	e.size = size != 0 ? size : strlen(b);
	SHA256((const unsigned char *)b, strlen(b), e.sha256);
	assert_int_equal(mig_state_map_add(st, "INBOX", &e, err, sizeof(err)), MF_OK);
}

/* The destination's answer to one FETCH of UIDs [lo, hi]: each message's
 * bytes are body(uid), but bad_uid's are not. */
static void fetch_answer(struct buf *b, const char *tag, uint32_t lo, uint32_t hi,
			 uint32_t bad_uid)
{
	for (uint32_t u = lo; u <= hi; u++) {
		char m[16];

		body(u, m);
		if (u == bad_uid)
			m[0] = 'X';
		put(b, "* %u FETCH (UID %u FLAGS () INTERNALDATE \"01-Feb-2020 10:00:00 +0000\" "
		       "BODY[] {%zu}\r\n%s)\r\n", u, u, strlen(m), m);
	}
	put(b, "%s OK fetched\r\n", tag);
}

struct run {
	struct mig_opts o;
	struct mig_report rep;
	struct mig_ctx x;
	atomic_bool cancel;
	int dfd;
};

static void start(struct run *r, const char *answer, size_t len)
{
	memset(r, 0, sizeof(*r));
	atomic_init(&r->cancel, false);
	r->o.cancel = &r->cancel;
	r->x.o = &r->o;
	r->x.rep = &r->rep;
	r->x.dst = scripted(answer, len, &r->dfd);
	assert_int_equal(mig_state_open(NULL, "test", &r->x.st, r->x.err, sizeof(r->x.err)),
			 MF_OK);
}

static int preverify(struct run *r)
{
	struct mig_folder f = { .src = "INBOX", .dst = "INBOX", .selectable = true };

	return mig_preverify_folder(&r->x, &f);
}

/* What the client sent, the state's verified marks (as a count), and
 * everything freed. */
static void finish(struct run *r, const char *want_said, size_t want_verified)
{
	struct mig_map_entry *v = NULL;
	size_t n = 0, nv = 0;
	char *got = malloc(1 << 20);
	size_t k;

	assert_non_null(got);
	assert_int_equal(mig_state_map_load(r->x.st, "INBOX", &v, &n, r->x.err,
					    sizeof(r->x.err)), MF_OK);
	for (size_t i = 0; i < n; i++)
		nv += v[i].verified;
	free(v);
	imap_close(r->x.dst);
	mig_state_close(r->x.st);
	k = read_all(r->dfd, got, (1 << 20) - 1);
	got[k] = '\0';
	close(r->dfd);
	assert_string_equal(got, want_said);
	free(got);
	assert_int_equal(nv, want_verified);
}

#define GREETING "* OK [CAPABILITY IMAP4rev1 UIDPLUS] dst\r\n"
#define EXAMINED "* 1200 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\nm1 OK [READ-ONLY] examined\r\n"

static void test_slices_by_count_commit_each(void **state)
{
	struct buf b = { 0 };
	struct run r;
	char want[256];

	(void)state;
	/* 1,001 messages: 1,000 in the first slice, one in the second, whose
	 * destination bytes differ. */
	put(&b, GREETING EXAMINED);
	fetch_answer(&b, "m2", 1, 1000, 0);
	fetch_answer(&b, "m3", 1001, 1001, 1001);
	start(&r, b.p, b.n);
	for (uint32_t u = 1; u <= 1001; u++)
		map_row(r.x.st, u + 100, u, 0);
	assert_int_equal(preverify(&r), MF_ERROR);
	assert_non_null(strstr(r.x.err, "source UID 1101 differs on the destination (UID 1001)"));
	assert_int_equal(r.rep.preverified, 1000);
	snprintf(want, sizeof(want),
		 "m1 EXAMINE \"INBOX\"\r\n"
		 "m2 UID FETCH 1:1000 (UID FLAGS INTERNALDATE BODY.PEEK[])\r\n"
		 "m3 UID FETCH 1001 (UID FLAGS INTERNALDATE BODY.PEEK[])\r\n"
		 "m4 LOGOUT\r\n");
	finish(&r, want, 1000);
	free(b.p);
}

static void test_resume_reads_only_what_is_left(void **state)
{
	struct buf b = { 0 };
	struct run r;
	struct mig_map_entry *v = NULL;
	size_t n = 0;
	uint32_t done[3] = { 101, 103, 104 };

	(void)state;
	/* 5 messages, 3 marked by an earlier run, one without a destination
	 * UID (found by content by the final verification, not here). */
	put(&b, GREETING EXAMINED);
	fetch_answer(&b, "m2", 2, 2, 0);
	start(&r, b.p, b.n);
	for (uint32_t u = 1; u <= 4; u++)
		map_row(r.x.st, u + 100, u, 0);
	map_row(r.x.st, 105, 0, 0);
	assert_int_equal(mig_state_map_verified(r.x.st, "INBOX", done, 3, r.x.err,
						sizeof(r.x.err)), MF_OK);
	assert_int_equal(preverify(&r), MF_OK);
	assert_int_equal(r.rep.preverified, 1);
	assert_int_equal(mig_state_map_load(r.x.st, "INBOX", &v, &n, r.x.err, sizeof(r.x.err)),
			 MF_OK);
	assert_int_equal(n, 5);
	assert_false(v[4].verified);
	free(v);
	finish(&r, "m1 EXAMINE \"INBOX\"\r\nm2 UID FETCH 2 (UID FLAGS INTERNALDATE BODY.PEEK[])\r\n"
		  "m3 LOGOUT\r\n",
	       4);
	free(b.p);
}

static void test_slices_by_bytes(void **state)
{
	struct buf b = { 0 };
	struct run r;

	(void)state;
	/* Two messages the map says are 20 MiB each: one slice each. The
	 * first one's bytes (10 here) do not match: stopped after it. */
	put(&b, GREETING EXAMINED);
	fetch_answer(&b, "m2", 1, 1, 0);
	start(&r, b.p, b.n);
	map_row(r.x.st, 101, 1, 20u << 20);
	map_row(r.x.st, 102, 2, 20u << 20);
	assert_int_equal(preverify(&r), MF_ERROR);
	assert_non_null(strstr(r.x.err, "source UID 101 differs"));
	finish(&r, "m1 EXAMINE \"INBOX\"\r\nm2 UID FETCH 1 (UID FLAGS INTERNALDATE BODY.PEEK[])\r\n"
		  "m3 LOGOUT\r\n",
	       0);
	free(b.p);
}

static void test_stop_between_slices(void **state)
{
	struct run r;

	(void)state;
	start(&r, GREETING EXAMINED, strlen(GREETING EXAMINED));
	map_row(r.x.st, 101, 1, 0);
	atomic_store(&r.cancel, true);
	assert_int_equal(preverify(&r), MF_ERROR);
	assert_string_equal(r.x.err, MIG_CANCELLED);
	finish(&r, "m1 EXAMINE \"INBOX\"\r\nm2 LOGOUT\r\n", 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slices_by_count_commit_each),
		cmocka_unit_test(test_resume_reads_only_what_is_left),
		cmocka_unit_test(test_slices_by_bytes),
		cmocka_unit_test(test_stop_between_slices),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
