/* Unit tests: migrate/mig_folders.c's name mapping (mig_map_name): INBOX,
 * special use across different names, subfolders of a special-use folder,
 * delimiter translation, names kept byte for byte, unrepresentable names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "imap_client.h"

#include "mf.h"
#include "mig_ctx.h"

static struct mig_list_entry src_v[] = {
	{ .name = "INBOX", .delim = '/' },
	{ .name = "Sent Items", .delim = '/', .use = MU_SENT },
	{ .name = "Deleted Items", .delim = '/', .use = MU_TRASH },
	{ .name = "Junk", .delim = '/', .use = MU_JUNK },
	{ .name = "Projects/2024", .delim = '/' },
	{ .name = "Re&AwE-sum&AOk-", .delim = '/' },
};

static struct mig_list_entry dst_v[] = {
	{ .name = "INBOX", .delim = '.' },
	{ .name = "Sent", .delim = '.', .use = MU_SENT },
	{ .name = "Trash", .delim = '.', .use = MU_TRASH },
};

static void expect(const struct mig_list *s, const struct mig_list *d, const char *name,
		   unsigned int use, const char *want)
{
	char err[256] = "";
	char *got = mig_map_name(s, d, name, use, err, sizeof(err));

	if (want == NULL) {
		assert_null(got);
		assert_true(err[0] != '\0');
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_map(void **state)
{
	struct mig_list s = { .v = src_v, .n = MF_ARRAY_LEN(src_v), .delim = '/' };
	struct mig_list d = { .v = dst_v, .n = MF_ARRAY_LEN(dst_v), .delim = '.' };

	(void)state;
	expect(&s, &d, "INBOX", 0, "INBOX");
	/* Special use wins over the name; the destination's name is used. */
	expect(&s, &d, "Sent Items", MU_SENT, "Sent");
	expect(&s, &d, "Deleted Items", MU_TRASH, "Trash");
	expect(&s, &d, "Sent Items/2019", 0, "Sent.2019");
	expect(&s, &d, "Sent Items/2019/Q1", 0, "Sent.2019.Q1");
	/* No \Junk folder on the destination: the name, translated, is kept. */
	expect(&s, &d, "Junk", MU_JUNK, "Junk");
	expect(&s, &d, "Projects/2024", 0, "Projects.2024");
	/* Modified UTF-7 goes over byte for byte. */
	expect(&s, &d, "Re&AwE-sum&AOk-", 0, "Re&AwE-sum&AOk-");
	/* "Sent Items.old" is not under "Sent Items" ('/' is the delimiter). */
	expect(&s, &d, "Sent Itemsx/y", 0, "Sent Itemsx.y");
	/* A source name holding the destination's delimiter cannot be kept. */
	expect(&s, &d, "v1.2/notes", 0, NULL);
	/* Same delimiter on both sides: nothing changes. */
	d.delim = '/';
	expect(&s, &d, "v1.2/notes", 0, "v1.2/notes");
	/* A flat destination (NIL delimiter) keeps names as they are. */
	d.delim = '\0';
	expect(&s, &d, "Projects/2024", 0, "Projects/2024");
}

/* A scripted server: its whole answer is queued at once (the client reads
 * one response per command, in order); returns the client end attached. */
static struct imap_conn *scripted(const char *answer, int *server_r)
{
	struct imap_client_opts o = { .name = "scripted" };
	struct imap_conn *c;
	char err[256];
	int sp[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_int_equal(write(sp[1], answer, strlen(answer)), (ssize_t)strlen(answer));
	shutdown(sp[1], SHUT_WR);
	assert_int_equal(imap_attach_fd(sp[0], &o, &c, err, sizeof(err)), MF_OK);
	*server_r = sp[1];
	return c;
}

static void read_all(int fd, char *buf, size_t len)
{
	size_t n = 0;
	ssize_t r;

	while (n < len - 1 && (r = read(fd, buf + n, len - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
}

/* The whole plan against two scripted servers: LIST parsing, \Noselect
 * parents left to the destination, special use across names, a parent
 * made by hand when the destination will not, subscriptions mapped. */
static void test_plan(void **state)
{
	static const char src_answer[] =
		"* OK [CAPABILITY IMAP4rev1] source\r\n"
		"* LIST (\\HasChildren \\Noselect) \"/\" \"a\"\r\n"
		"* LIST (\\HasNoChildren) \"/\" {3}\r\na/b\r\n"
		"* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"\r\n"
		"* LIST () \"/\" inbox\r\n"
		"* LIST (\\HasNoChildren) NIL \"\"\r\n" /* ignored: empty name */
		"m1 OK listed\r\n"
		"* LSUB () \"/\" \"a/b\"\r\n"
		"* LSUB () \"/\" \"Sent Items\"\r\n"
		"m2 OK lsub\r\n"
		"m3 OK bye\r\n";
	static const char dst_answer[] =
		"* OK [CAPABILITY IMAP4rev1 LITERAL+] destination\r\n"
		"* LIST (\\HasNoChildren) \".\" INBOX\r\n"
		"* LIST (\\HasNoChildren \\Sent) \".\" Sent\r\n"
		"m1 OK listed\r\n"
		"m2 NO [NONEXISTENT] no parent\r\n"
		"m3 OK created a\r\n"
		"m4 OK created a.b\r\n"
		"* LSUB () \".\" INBOX\r\n"
		"m5 OK lsub\r\n"
		"m6 OK subscribed\r\n"
		"m7 OK subscribed\r\n"
		"m8 OK bye\r\n";
	struct mig_report rep = { 0 };
	struct mig_ctx x = { .rep = &rep };
	char got[4096];
	int sfd, dfd;

	(void)state;
	x.src = scripted(src_answer, &sfd);
	x.dst = scripted(dst_answer, &dfd);
	assert_int_equal(mig_folders_plan(&x), MF_OK);
	assert_int_equal(x.n_folders, 3);
	assert_string_equal(x.folders[0].src, "INBOX");
	assert_string_equal(x.folders[0].dst, "INBOX");
	assert_string_equal(x.folders[1].src, "Sent Items");
	assert_string_equal(x.folders[1].dst, "Sent");
	assert_int_equal(x.folders[1].use, MU_SENT);
	assert_string_equal(x.folders[2].src, "a/b");
	assert_string_equal(x.folders[2].dst, "a.b");
	assert_int_equal(rep.folders, 3);
	assert_int_equal(rep.folders_created, 1);
	assert_int_equal(rep.subscribed, 2);
	imap_close(x.src);
	imap_close(x.dst);
	read_all(sfd, got, sizeof(got));
	assert_string_equal(got, "m1 LIST \"\" \"*\"\r\nm2 LSUB \"\" \"*\"\r\nm3 LOGOUT\r\n");
	read_all(dfd, got, sizeof(got));
	assert_string_equal(got, "m1 LIST \"\" \"*\"\r\n"
				 "m2 CREATE \"a.b\"\r\nm3 CREATE \"a\"\r\nm4 CREATE \"a.b\"\r\n"
				 "m5 LSUB \"\" \"*\"\r\n"
				 "m6 SUBSCRIBE \"a.b\"\r\nm7 SUBSCRIBE \"Sent\"\r\n"
				 "m8 LOGOUT\r\n");
	close(sfd);
	close(dfd);
	mig_folders_free(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map),
		cmocka_unit_test(test_plan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
