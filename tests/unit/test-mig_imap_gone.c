/* Unit tests: migrate/mig_imap_gone.c against a scripted source and
 * destination: of the map's messages, those the source's UID FETCH no
 * longer names are gone; a gone one whose destination message still has
 * its bytes is expunged (by UID EXPUNGE), one whose message changed is
 * left alone; without destination UIDs (no UIDPLUS) the gone row takes a
 * message with its bytes that the kept rows leave; every gone row leaves
 * the map, the kept ones stay; nothing gone sends nothing to the
 * destination. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "imap_client.h"
#include "mf.h"
#include "mig_ctx.h"
#include "scripted_imap.h"

#define S(x) x, sizeof(x) - 1

static void said(int fd, const char *want)
{
	char got[4096];
	size_t n = read_all(fd, got, sizeof(got) - 1);

	got[n] = '\0';
	assert_string_equal(got, want);
	close(fd);
}

static void map_row(struct mig_state *st, uint32_t src_uid, uint32_t dst_uid, const char *bytes)
{
	struct mig_map_entry e = { .src_uid = src_uid, .dst_uid = dst_uid,
				   .size = strlen(bytes) };
	char err[256];

	SHA256((const unsigned char *)bytes, strlen(bytes), e.sha256);
	assert_int_equal(mig_state_map_add(st, "INBOX", &e, err, sizeof(err)), MF_OK);
}

/* The source still holds UIDs 1 and 3 (and says so among an unsolicited
 * FETCH with no UID, which names nothing). */
#define SRC \
	"* OK [CAPABILITY IMAP4rev1] src\r\n" \
	"* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n* 2 FETCH (FLAGS ())\r\n" \
	"* 2 FETCH (UID 3 FLAGS ())\r\nm1 OK fetched\r\nm2 OK bye\r\n"
#define SRC_SAID "m1 UID FETCH 1:3 (UID FLAGS)\r\nm2 LOGOUT\r\n"

static void run(const char *dst, size_t dlen, const char *dst_said, uint32_t dst_uid2,
		uint64_t want_expunged)
{
	struct mig_opts o = { .sync_deletes = true };
	struct mig_report rep = { 0 };
	struct mig_ctx x = { .o = &o, .rep = &rep };
	struct mig_folder f = { .src = "INBOX", .dst = "INBOX", .selectable = true };
	struct mig_map_entry *v = NULL;
	size_t n = 0;
	int sfd, dfd;

	x.src = scripted(S(SRC), &sfd);
	x.dst = scripted(dst, dlen, &dfd);
	assert_int_equal(mig_state_open(NULL, "test", &x.st, x.err, sizeof(x.err)), MF_OK);
	map_row(x.st, 1, dst_uid2 ? 10 : 0, "kept!");
	map_row(x.st, 2, dst_uid2, "hello");
	map_row(x.st, 3, dst_uid2 ? 12 : 0, "bytes");
	if (mig_imap_expunge_gone(&x, &f, 3) != MF_OK)
		fail_msg("expunge: %s", x.err);
	assert_int_equal(rep.expunged, want_expunged);
	assert_int_equal(mig_state_map_load(x.st, "INBOX", &v, &n, x.err, sizeof(x.err)), MF_OK);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].src_uid, 1);
	assert_int_equal(v[1].src_uid, 3);
	free(v);
	imap_close(x.src);
	imap_close(x.dst);
	mig_state_close(x.st);
	said(sfd, SRC_SAID);
	said(dfd, dst_said);
}

static void test_gone_expunged(void **state)
{
	(void)state;
	run(S("* OK [CAPABILITY IMAP4rev1 UIDPLUS] dst\r\n"
	      "* 2 FETCH (UID 11 FLAGS () INTERNALDATE \"01-Feb-2020 10:00:00 +0000\" "
	      "BODY[] {5}\r\nhello)\r\nm1 OK fetched\r\n"
	      "m2 OK stored\r\n* 2 EXPUNGE\r\nm3 OK expunged\r\nm4 OK bye\r\n"),
	    "m1 UID FETCH 11 (UID FLAGS INTERNALDATE BODY.PEEK[])\r\n"
	    "m2 UID STORE 11 +FLAGS.SILENT (\\Deleted)\r\n"
	    "m3 UID EXPUNGE 11\r\n"
	    "m4 LOGOUT\r\n", 11, 1);
}

/* The destination's message 11 is not what was copied: left alone, the
 * row forgotten all the same (its source message is gone). */
static void test_changed_left_alone(void **state)
{
	(void)state;
	run(S("* OK [CAPABILITY IMAP4rev1 UIDPLUS] dst\r\n"
	      "* 2 FETCH (UID 11 FLAGS () INTERNALDATE \"01-Feb-2020 10:00:00 +0000\" "
	      "BODY[] {5}\r\nOTHER)\r\nm1 OK fetched\r\nm2 OK bye\r\n"),
	    "m1 UID FETCH 11 (UID FLAGS INTERNALDATE BODY.PEEK[])\r\n"
	    "m2 LOGOUT\r\n", 11, 0);
}

/* No destination UIDs: the folder is hashed; UIDs 7 and 9 hold the kept
 * rows' bytes, UID 8 the gone row's ("hello"): it goes, alone. */
static void test_by_content(void **state)
{
	(void)state;
	run(S("* OK [CAPABILITY IMAP4rev1 UIDPLUS] dst\r\n"
	      "* 1 FETCH (UID 7 FLAGS () INTERNALDATE \"01-Feb-2020 10:00:00 +0000\" "
	      "BODY[] {5}\r\nkept!)\r\n"
	      "* 2 FETCH (UID 8 FLAGS () INTERNALDATE \"01-Feb-2020 10:00:00 +0000\" "
	      "BODY[] {5}\r\nhello)\r\n"
	      "* 3 FETCH (UID 9 FLAGS () INTERNALDATE \"01-Feb-2020 10:00:00 +0000\" "
	      "BODY[] {5}\r\nbytes)\r\nm1 OK fetched\r\n"
	      "m2 OK stored\r\n* 2 EXPUNGE\r\nm3 OK expunged\r\nm4 OK bye\r\n"),
	    "m1 UID FETCH 1:* (UID FLAGS INTERNALDATE BODY.PEEK[])\r\n"
	    "m2 UID STORE 8 +FLAGS.SILENT (\\Deleted)\r\n"
	    "m3 UID EXPUNGE 8\r\n"
	    "m4 LOGOUT\r\n", 0, 1);
}

/* Every mapped message still on the source: nothing sent to the
 * destination, the map untouched. */
static void test_nothing_gone(void **state)
{
	struct mig_opts o = { .sync_deletes = true };
	struct mig_report rep = { 0 };
	struct mig_ctx x = { .o = &o, .rep = &rep };
	struct mig_folder f = { .src = "INBOX", .dst = "INBOX", .selectable = true };
	uint64_t n = 0;
	int sfd, dfd;

	(void)state;
	x.src = scripted(S("* OK [CAPABILITY IMAP4rev1] src\r\n"
			   "* 1 FETCH (UID 1 FLAGS ())\r\n* 2 FETCH (UID 3 FLAGS ())\r\n"
			   "m1 OK fetched\r\nm2 OK bye\r\n"), &sfd);
	x.dst = scripted(S("* OK [CAPABILITY IMAP4rev1] dst\r\nm1 OK bye\r\n"), &dfd);
	assert_int_equal(mig_state_open(NULL, "test", &x.st, x.err, sizeof(x.err)), MF_OK);
	map_row(x.st, 1, 10, "kept!");
	map_row(x.st, 3, 12, "bytes");
	assert_int_equal(mig_imap_expunge_gone(&x, &f, 2), MF_OK);
	assert_int_equal(rep.expunged, 0);
	assert_int_equal(mig_state_map_count(x.st, "INBOX", &n, x.err, sizeof(x.err)), MF_OK);
	assert_int_equal(n, 2);
	imap_close(x.src);
	imap_close(x.dst);
	mig_state_close(x.st);
	said(sfd, "m1 UID FETCH 1:3 (UID FLAGS)\r\nm2 LOGOUT\r\n");
	said(dfd, "m1 LOGOUT\r\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gone_expunged),
		cmocka_unit_test(test_changed_left_alone),
		cmocka_unit_test(test_by_content),
		cmocka_unit_test(test_nothing_gone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
