/* Unit tests: migrate/mig_pop3_gone.c against a scripted destination: of
 * the rows whose UIDL the POP3 source no longer lists, only the one whose
 * destination message still has its bytes is expunged (one whose message
 * changed is left alone, a pending one only forgotten), by UID EXPUNGE
 * with UIDPLUS, and without it by a plain EXPUNGE with another client's
 * \Deleted mark lifted around it and put back; the gone rows are dropped,
 * the listed one kept. */
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
#include "pop3_client.h"

#define S(x) x, sizeof(x) - 1

static void row(struct mig_state *st, const char *uidl, uint32_t dst_uid, const char *bytes,
		bool pending)
{
	struct mig_uidl_entry e = { .dst_uid = dst_uid, .size = strlen(bytes),
				    .pending = pending };
	char err[256];

	snprintf(e.uidl, sizeof(e.uidl), "%s", uidl);
	SHA256((const unsigned char *)bytes, strlen(bytes), e.sha256);
	assert_int_equal(mig_state_uidl_put(st, &e, err, sizeof(err)), MF_OK);
}

/* After the SELECT and the FETCH of UIDs 11 and 12: message 11 still has
 * "hello" (u2's bytes), message 12 no longer has u3's. */
#define SELECTED \
	"* 3 EXISTS\r\n* OK [UIDVALIDITY 5] ok\r\nm1 OK [READ-WRITE] selected\r\n" \
	"* 2 FETCH (UID 11 FLAGS () INTERNALDATE \"01-Feb-2020 10:00:00 +0000\" " \
	"BODY[] {5}\r\nhello)\r\n" \
	"* 3 FETCH (UID 12 FLAGS () INTERNALDATE \"01-Feb-2020 10:00:00 +0000\" " \
	"BODY[] {5}\r\nOTHER)\r\nm2 OK fetched\r\n"

static void run_gone(const char *answer, size_t len, const char *want)
{
	struct mig_opts o = { .sync_deletes = true };
	struct mig_report rep = { 0 };
	struct mig_ctx x = { .o = &o, .rep = &rep };
	struct pop3_msg listed = { .n = 1, .uidl = "u1" };
	struct mig_uidl_entry *v = NULL;
	uint64_t expunged = 99;
	char got[4096];
	size_t n = 0;
	int fd;

	x.dst = scripted(answer, len, &fd);
	assert_int_equal(mig_state_open(NULL, "test", &x.st, x.err, sizeof(x.err)), MF_OK);
	row(x.st, "u1", 10, "kept!", false);
	row(x.st, "u2", 11, "hello", false);
	row(x.st, "u3", 12, "bytes", false);
	row(x.st, "u4", 0, "maybe", true);
	if (mig_pop3_expunge_gone(&x, &listed, 1, &expunged) != MF_OK)
		fail_msg("expunge: %s", x.err);
	assert_int_equal(expunged, 1);
	assert_int_equal(mig_state_uidl_load(x.st, &v, &n, x.err, sizeof(x.err)), MF_OK);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].uidl, "u1");
	free(v);
	imap_close(x.dst);
	mig_state_close(x.st);
	n = read_all(fd, got, sizeof(got) - 1);
	got[n] = '\0';
	assert_string_equal(got, want);
	close(fd);
}

static void test_uidplus(void **state)
{
	(void)state;
	run_gone(S("* OK [CAPABILITY IMAP4rev1 UIDPLUS] dst\r\n" SELECTED
		   "m3 OK stored\r\n* 2 EXPUNGE\r\nm4 OK expunged\r\nm5 OK bye\r\n"),
		 "m1 SELECT \"INBOX\"\r\n"
		 "m2 UID FETCH 11:12 (UID FLAGS INTERNALDATE BODY.PEEK[])\r\n"
		 "m3 UID STORE 11 +FLAGS.SILENT (\\Deleted)\r\n"
		 "m4 UID EXPUNGE 11\r\n"
		 "m5 LOGOUT\r\n");
}

/* Message 4 is someone else's \Deleted one: kept through our EXPUNGE. */
static void test_no_uidplus(void **state)
{
	(void)state;
	run_gone(S("* OK [CAPABILITY IMAP4rev1] dst\r\n" SELECTED
		   "m3 OK stored\r\n"
		   "* SEARCH 4 11\r\nm4 OK searched\r\n"
		   "m5 OK stored\r\n"
		   "* 2 EXPUNGE\r\nm6 OK expunged\r\n"
		   "m7 OK stored\r\nm8 OK bye\r\n"),
		 "m1 SELECT \"INBOX\"\r\n"
		 "m2 UID FETCH 11:12 (UID FLAGS INTERNALDATE BODY.PEEK[])\r\n"
		 "m3 UID STORE 11 +FLAGS.SILENT (\\Deleted)\r\n"
		 "m4 UID SEARCH DELETED\r\n"
		 "m5 UID STORE 4 -FLAGS.SILENT (\\Deleted)\r\n"
		 "m6 EXPUNGE\r\n"
		 "m7 UID STORE 4 +FLAGS.SILENT (\\Deleted)\r\n"
		 "m8 LOGOUT\r\n");
}

/* Nothing gone: not a command sent. */
static void test_nothing_gone(void **state)
{
	struct mig_opts o = { .sync_deletes = true };
	struct mig_report rep = { 0 };
	struct mig_ctx x = { .o = &o, .rep = &rep };
	struct pop3_msg listed[2] = { { .n = 1, .uidl = "u1" }, { .n = 2, .uidl = "u2" } };
	uint64_t expunged = 99;
	char got[256];
	size_t n;
	int fd;

	(void)state;
	x.dst = scripted(S("* OK [CAPABILITY IMAP4rev1] dst\r\nm1 OK bye\r\n"), &fd);
	assert_int_equal(mig_state_open(NULL, "test", &x.st, x.err, sizeof(x.err)), MF_OK);
	row(x.st, "u1", 10, "kept!", false);
	row(x.st, "u2", 0, "hello", false);
	assert_int_equal(mig_pop3_expunge_gone(&x, listed, 2, &expunged), MF_OK);
	assert_int_equal(expunged, 0);
	imap_close(x.dst);
	mig_state_close(x.st);
	n = read_all(fd, got, sizeof(got) - 1);
	got[n] = '\0';
	assert_string_equal(got, "m1 LOGOUT\r\n");
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uidplus),
		cmocka_unit_test(test_no_uidplus),
		cmocka_unit_test(test_nothing_gone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
