/* Unit tests: migrate/mig_copy.c against scripted servers: the exact
 * APPEND bytes (MULTIAPPEND with LITERAL+, and one APPEND per message with
 * synchronizing literals), flags without \Recent, INTERNALDATE passed on,
 * a body identified by its sequence number when UID comes after it,
 * binary bytes streamed, APPENDUID recorded, the checkpoint committed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "imap_client.h"
#include "mf.h"
#include "mig_ctx.h"
#include "scripted_imap.h"

#define S(x) x, sizeof(x) - 1

static const char src_answer[] =
	"* OK [CAPABILITY IMAP4rev1] source\r\n"
	"* 2 EXISTS\r\n* OK [UIDVALIDITY 77] ok\r\nm1 OK [READ-ONLY] examined\r\n"
	"* 1 FETCH (UID 3 FLAGS (\\Seen \\Recent kw1) INTERNALDATE "
	"\"01-Feb-2020 10:00:00 +0100\" RFC822.SIZE 5)\r\n"
	"* 2 FETCH (UID 8 FLAGS () INTERNALDATE \"02-Feb-2020 10:00:00 +0000\" RFC822.SIZE 4)\r\n"
	"m2 OK fetched\r\n"
	"* 1 FETCH (UID 3 BODY[] {5}\r\nhello)\r\n"
	"* 2 FETCH (BODY[] {4}\r\n\xe9\0\r\n UID 8)\r\n"
	"m3 OK done\r\n"
	"m4 OK bye\r\n";

static void run_copy(const char *dst_answer, size_t dst_len, bool plain, const char *want,
		     size_t want_len)
{
	struct mig_opts o = { .plain_append = plain };
	struct mig_report rep = { 0 };
	struct mig_ctx x = { .o = &o, .rep = &rep };
	struct mig_folder f = { .src = "Src", .dst = "Box" };
	struct mig_folder_state fs;
	struct mig_map_entry *map;
	uint8_t sha[32];
	char got[4096];
	size_t n;
	int sfd, dfd;

	x.src = scripted(S(src_answer), &sfd);
	x.dst = scripted(dst_answer, dst_len, &dfd);
	assert_int_equal(mig_state_open(NULL, "test", &x.st, x.err, sizeof(x.err)), MF_OK);
	if (mig_copy_folder(&x, &f) != MF_OK)
		fail_msg("copy: %s", x.err);
	assert_int_equal(rep.copied, 2);
	assert_int_equal(rep.bytes, 9);
	assert_int_equal(mig_state_folder_get(x.st, "Src", &fs, x.err, sizeof(x.err)), MF_OK);
	assert_true(fs.known && !fs.dirty);
	assert_int_equal(fs.uidvalidity, 77);
	assert_int_equal(fs.dst_uidvalidity, 5);
	assert_int_equal(fs.last_uid, 8);
	assert_int_equal(mig_state_map_load(x.st, "Src", &map, &n, x.err, sizeof(x.err)), MF_OK);
	assert_int_equal(n, 2);
	assert_int_equal(map[0].src_uid, 3);
	assert_int_equal(map[0].dst_uid, 10);
	assert_int_equal(map[0].size, 5);
	SHA256((const unsigned char *)"hello", 5, sha);
	assert_memory_equal(map[0].sha256, sha, 32);
	assert_int_equal(map[1].src_uid, 8);
	assert_int_equal(map[1].dst_uid, 11);
	SHA256((const unsigned char *)"\xe9\0\r\n", 4, sha);
	assert_memory_equal(map[1].sha256, sha, 32);
	free(map);
	imap_close(x.src);
	imap_close(x.dst);
	mig_state_close(x.st);
	n = read_all(sfd, got, sizeof(got));
	got[n] = '\0';
	assert_string_equal(got, "m1 EXAMINE \"Src\"\r\n"
				 "m2 UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE)\r\n"
				 "m3 UID FETCH 3,8 (UID BODY.PEEK[])\r\n"
				 "m4 LOGOUT\r\n");
	n = read_all(dfd, got, sizeof(got));
	if (n != want_len || memcmp(got, want, n) != 0)
		fail_msg("destination got:\n%.*s", (int)n, got);
	close(sfd);
	close(dfd);
}

static void test_multiappend(void **state)
{
	static const char dst_answer[] =
		"* OK [CAPABILITY IMAP4rev1 LITERAL+ MULTIAPPEND UIDPLUS] destination\r\n"
		"* 0 EXISTS\r\n* OK [UIDVALIDITY 5] ok\r\nm1 OK [READ-WRITE] selected\r\n"
		"a1 OK [APPENDUID 5 10:11] appended\r\n"
		"m2 OK bye\r\n";
	static const char want[] =
		"m1 SELECT \"Box\"\r\n"
		"a1 APPEND \"Box\" (\\Seen kw1) \"01-Feb-2020 10:00:00 +0100\" {5+}\r\nhello"
		" () \"02-Feb-2020 10:00:00 +0000\" {4+}\r\n\xe9\0\r\n\r\n"
		"m2 LOGOUT\r\n";

	(void)state;
	run_copy(S(dst_answer), false, S(want));
}

static void test_plain_append(void **state)
{
	static const char dst_answer[] =
		"* OK [CAPABILITY IMAP4rev1 LITERAL+ MULTIAPPEND UIDPLUS] destination\r\n"
		"* 0 EXISTS\r\n* OK [UIDVALIDITY 5] ok\r\nm1 OK [READ-WRITE] selected\r\n"
		"+ go ahead\r\n"
		"* 1 EXISTS\r\na1 OK [APPENDUID 5 10] appended\r\n"
		"+ go ahead\r\n"
		"a2 OK [APPENDUID 5 11] appended\r\n"
		"m2 OK bye\r\n";
	static const char want[] =
		"m1 SELECT \"Box\"\r\n"
		"a1 APPEND \"Box\" (\\Seen kw1) \"01-Feb-2020 10:00:00 +0100\" {5}\r\nhello\r\n"
		"a2 APPEND \"Box\" () \"02-Feb-2020 10:00:00 +0000\" {4}\r\n\xe9\0\r\n\r\n"
		"m2 LOGOUT\r\n";

	(void)state;
	run_copy(S(dst_answer), true, S(want));
}

/* The destination says NO: the copy fails, names the message when one
 * APPEND carried one message, and commits no checkpoint past it. */
static void run_refused(const char *dst_answer, size_t dst_len, bool plain, bool known,
			uint32_t uid, const char *code, const char *msg)
{
	struct mig_opts o = { .plain_append = plain };
	struct mig_report rep = { 0 };
	struct mig_ctx x = { .o = &o, .rep = &rep };
	struct mig_folder f = { .src = "Src", .dst = "Box" };
	struct mig_folder_state fs;
	int sfd, dfd;

	x.src = scripted(S(src_answer), &sfd);
	x.dst = scripted(dst_answer, dst_len, &dfd);
	assert_int_equal(mig_state_open(NULL, "test", &x.st, x.err, sizeof(x.err)), MF_OK);
	assert_int_equal(mig_copy_folder(&x, &f), MF_ERROR);
	if (strstr(x.err, msg) == NULL)
		fail_msg("error '%s' lacks '%s'", x.err, msg);
	assert_true(rep.dst_refused);
	assert_int_equal(rep.refused_known, known);
	assert_string_equal(rep.refused_code, code);
	if (known) {
		assert_int_equal(rep.refused_uid, uid);
		assert_string_equal(rep.refused_folder, "Src");
	}
	assert_int_equal(mig_state_folder_get(x.st, "Src", &fs, x.err, sizeof(x.err)), MF_OK);
	assert_true(!fs.known || fs.dirty || fs.last_uid == 0);
	imap_close(x.src);
	imap_close(x.dst);
	mig_state_close(x.st);
	close(sfd);
	close(dfd);
}

static void test_refusals(void **state)
{
	static const char quota[] =
		"* OK [CAPABILITY IMAP4rev1 LITERAL+ MULTIAPPEND UIDPLUS] destination\r\n"
		"* 0 EXISTS\r\n* OK [UIDVALIDITY 5] ok\r\nm1 OK [READ-WRITE] selected\r\n"
		"+ go ahead\r\n"
		"a1 OK [APPENDUID 5 10] appended\r\n"
		"+ go ahead\r\n"
		"a2 NO [OVERQUOTA] Quota exceeded (mailbox for user is full)\r\n";
	static const char toobig[] =
		"* OK [CAPABILITY IMAP4rev1 UIDPLUS] destination\r\n"
		"* 0 EXISTS\r\n* OK [UIDVALIDITY 5] ok\r\nm1 OK [READ-WRITE] selected\r\n"
		"+ go ahead\r\n"
		"a1 OK [APPENDUID 5 10] appended\r\n"
		"a2 NO [TOOBIG] Mail too large\r\n";
	static const char batch[] =
		"* OK [CAPABILITY IMAP4rev1 LITERAL+ MULTIAPPEND UIDPLUS] destination\r\n"
		"* 0 EXISTS\r\n* OK [UIDVALIDITY 5] ok\r\nm1 OK [READ-WRITE] selected\r\n"
		"a1 NO [OVERQUOTA] Quota exceeded\r\n";
	static const char parse[] =
		"* OK [CAPABILITY IMAP4rev1 UIDPLUS] destination\r\n"
		"* 0 EXISTS\r\n* OK [UIDVALIDITY 5] ok\r\nm1 OK [READ-WRITE] selected\r\n"
		"a1 NO Invalid message\r\n";

	(void)state;
	run_refused(S(quota), true, true, 8, "OVERQUOTA",
		    "destination refused message UID 8 of Src (4 bytes): NO [OVERQUOTA] Quota "
		    "exceeded (mailbox for user is full)");
	run_refused(S(toobig), true, true, 8, "TOOBIG",
		    "refused message UID 8 of Src (4 bytes): NO [TOOBIG] Mail too large");
	run_refused(S(batch), false, false, 0, "OVERQUOTA",
		    "destination refused a batch of 2 messages of Src: NO [OVERQUOTA] Quota");
	run_refused(S(parse), true, true, 3, "",
		    "refused message UID 3 of Src (5 bytes): NO Invalid message");
}

/* The verification sample: all at 0 and 100, about pct per cent of any run
 * of UIDs otherwise, the same answer every time. */
static void test_verify_sample(void **state)
{
	unsigned int n = 0, runs = 0;

	(void)state;
	for (uint32_t uid = 1; uid <= 10000; uid++) {
		assert_true(mig_verify_sampled(uid, 0));
		assert_true(mig_verify_sampled(uid, 100));
		/* A larger sample holds the smaller one. */
		if (mig_verify_sampled(uid, 1))
			assert_true(mig_verify_sampled(uid, 2));
		n += mig_verify_sampled(uid, 25);
		assert_int_equal(mig_verify_sampled(uid, 25), mig_verify_sampled(uid, 25));
	}
	assert_in_range(n, 2400, 2600);
	/* Consecutive UIDs (a folder) are spread, not taken in blocks. */
	for (uint32_t uid = 1; uid <= 100; uid++)
		runs += mig_verify_sampled(uid, 10) != mig_verify_sampled(uid + 1, 10);
	assert_true(runs >= 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_multiappend),
		cmocka_unit_test(test_plain_append),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_verify_sample),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
