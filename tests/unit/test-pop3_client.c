/* Unit tests: migrate/pop3_client.c against scripted servers: the exact
 * bytes of USER/PASS and of AUTH PLAIN with an authorization identity (a
 * master user), UIDL listing parsed, RETR unstuffed to the sink, a -ERR
 * with its text in the error, [IN-USE] and a dropped connection reported
 * as busy, a bad UIDL line refused, credentials a POP3 line cannot carry
 * refused before anything is sent. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mf.h"
#include "pop3_client.h"
#include "sasl.h"

#define S(x) x, sizeof(x) - 1

static struct pop3_conn *scripted(const char *answer, size_t len, bool *busy, int *server_r)
{
	struct imap_client_opts o = { .name = "src", .busy_r = busy };
	struct pop3_conn *c;
	char err[256];
	int sp[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_int_equal(write(sp[1], answer, len), (ssize_t)len);
	shutdown(sp[1], SHUT_WR);
	assert_int_equal(pop3_attach_fd(sp[0], &o, &c, err, sizeof(err)), MF_OK);
	*server_r = sp[1];
	return c;
}

static char *sent(int fd)
{
	static char buf[8192];
	size_t n = 0;
	ssize_t r;

	while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	return buf;
}

struct got {
	char buf[256];
	size_t len;
};

static int sink(void *arg, const uint8_t *p, size_t n)
{
	struct got *g = arg;

	assert_true(g->len + n < sizeof(g->buf));
	memcpy(g->buf + g->len, p, n);
	g->len += n;
	return MF_OK;
}

static void test_session(void **state)
{
	static const char script[] =
		"+OK ready\r\n"
		"+OK user\r\n+OK logged in\r\n"
		"+OK listing\r\n1 000000017a\r\n2 ~x!\r\n.\r\n"
		"+OK 20 octets\r\nSubject: a\r\n\r\n..dot\r\n.\r\n"
		"+OK bye\r\n";
	struct pop3_msg *v;
	struct got g = { 0 };
	char err[256] = "";
	bool busy = false;
	size_t n;
	int fd;
	struct pop3_conn *c = scripted(S(script), &busy, &fd);

	(void)state;
	assert_int_equal(pop3_login(c, "ann", NULL, "pw x", 4, err, sizeof(err)), MF_OK);
	assert_int_equal(pop3_uidl(c, &v, &n, err, sizeof(err)), MF_OK);
	assert_int_equal(n, 2);
	assert_true(v[0].n == 1 && strcmp(v[0].uidl, "000000017a") == 0);
	assert_true(v[1].n == 2 && strcmp(v[1].uidl, "~x!") == 0);
	free(v);
	assert_int_equal(pop3_retr(c, 2, sink, &g, err, sizeof(err)), MF_OK);
	assert_int_equal(g.len, 20);
	assert_memory_equal(g.buf, "Subject: a\r\n\r\n.dot\r\n", 20);
	pop3_close(c);
	assert_string_equal(sent(fd), "USER ann\r\nPASS pw x\r\nUIDL\r\nRETR 2\r\nQUIT\r\n");
	assert_false(busy);
	close(fd);
}

/* LIST: sizes by message number, extra fields after the size ignored; a
 * listing with an empty line, a size that is not a number, or an empty
 * listing. */
static void test_list(void **state)
{
	struct pop3_size *v = NULL;
	char err[256] = "";
	bool busy = false;
	size_t n = 9;
	int fd;
	struct pop3_conn *c = scripted(S("+OK ready\r\n+OK 2 messages\r\n1 120\r\n"
					 "2 3000 extra\r\n.\r\n+OK 0\r\n.\r\n+OK bye\r\n"),
				       &busy, &fd);

	(void)state;
	assert_int_equal(pop3_list(c, &v, &n, err, sizeof(err)), MF_OK);
	assert_int_equal(n, 2);
	assert_true(v[0].n == 1 && v[0].size == 120);
	assert_true(v[1].n == 2 && v[1].size == 3000);
	free(v);
	assert_int_equal(pop3_list(c, &v, &n, err, sizeof(err)), MF_OK);
	assert_int_equal(n, 0);
	assert_null(v);
	pop3_close(c);
	assert_string_equal(sent(fd), "LIST\r\nLIST\r\nQUIT\r\n");
	close(fd);

	static const char *const bad[] = {
		"+OK ready\r\n+OK\r\n1 12x\r\n.\r\n",
		"+OK ready\r\n+OK\r\n1 12\r\n\r\n.\r\n",
		"+OK ready\r\n+OK\r\n1 -3\r\n.\r\n",
		"+OK ready\r\n+OK\r\n0x1 3\r\n.\r\n",
		"+OK ready\r\n+OK\r\n1 99999999999999999999999\r\n.\r\n",
	};
	for (size_t i = 0; i < MF_ARRAY_LEN(bad); i++) {
		c = scripted(bad[i], strlen(bad[i]), &busy, &fd);
		assert_int_equal(pop3_list(c, &v, &n, err, sizeof(err)), MF_ERROR);
		assert_non_null(strstr(err, "bad LIST line"));
		pop3_close(c);
		close(fd);
	}
}

static void test_master(void **state)
{
	struct pop3_conn *c;
	char err[256] = "", *out, *b64;
	uint8_t raw[64];
	size_t rawlen;
	bool busy = false;
	int fd;

	(void)state;
	c = scripted(S("+OK ready\r\n+OK logged in\r\n+OK bye\r\n"), &busy, &fd);
	assert_int_equal(pop3_login(c, "ann", "mfmaster", "s3cret", 6, err, sizeof(err)), MF_OK);
	pop3_close(c);
	out = sent(fd);
	assert_memory_equal(out, "AUTH PLAIN ", 11);
	b64 = out + 11;
	*strchr(b64, '\r') = '\0';
	assert_int_equal(sasl_b64_decode(b64, strlen(b64), raw, sizeof(raw), &rawlen), MF_OK);
	assert_int_equal(rawlen, 19);
	assert_memory_equal(raw, "ann\0mfmaster\0s3cret", 19);
	close(fd);
}

static void test_refusals(void **state)
{
	struct pop3_conn *c;
	struct pop3_msg *v;
	char err[256] = "";
	bool busy = false;
	size_t n;
	int fd;

	(void)state;
	c = scripted(S("+OK ready\r\n+OK\r\n-ERR [AUTH] Authentication failed.\r\n"), &busy,
		     &fd);
	assert_int_equal(pop3_login(c, "ann", NULL, "wrong", 5, err, sizeof(err)), MF_ERROR);
	assert_string_equal(err, "src: -ERR [AUTH] Authentication failed.");
	assert_false(busy);
	pop3_close(c);
	close(fd);

	c = scripted(S("+OK ready\r\n+OK\r\n-ERR [IN-USE] Mailbox locked\r\n"), &busy, &fd);
	assert_int_equal(pop3_login(c, "ann", NULL, "pw", 2, err, sizeof(err)), MF_ERROR);
	assert_true(busy);
	pop3_close(c);
	close(fd);

	busy = false;
	c = scripted(S("+OK ready\r\n+OK listing\r\n1 a b\r\n.\r\n"), &busy, &fd);
	assert_int_equal(pop3_uidl(c, &v, &n, err, sizeof(err)), MF_ERROR);
	assert_non_null(strstr(err, "bad UIDL line"));
	pop3_close(c);
	close(fd);

	/* Cut in the middle of a message: busy, an error, nothing more. */
	c = scripted(S("+OK ready\r\n+OK\r\nhalf a mess"), &busy, &fd);
	{
		struct got g = { 0 };

		assert_int_equal(pop3_retr(c, 1, sink, &g, err, sizeof(err)), MF_ERROR);
		assert_non_null(strstr(err, "connection closed by the server"));
		assert_true(busy);
	}
	pop3_close(c);
	close(fd);

	/* A line break in a password would be a second command. */
	busy = false;
	c = scripted(S("+OK ready\r\n"), &busy, &fd);
	assert_int_equal(pop3_login(c, "ann", NULL, "pw\r\nDELE 1", 10, err, sizeof(err)),
			 MF_ERROR);
	assert_null(strstr(err, "DELE"));
	pop3_close(c);
	assert_string_equal(sent(fd), "QUIT\r\n");
	close(fd);
}

static void test_greeting(void **state)
{
	struct imap_client_opts o = { .name = "src" };
	struct pop3_conn *c;
	char err[256] = "";
	int sp[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_int_equal(write(sp[1], S("* OK IMAP4rev1 here\r\n")), 21);
	shutdown(sp[1], SHUT_WR);
	assert_int_equal(pop3_attach_fd(sp[0], &o, &c, err, sizeof(err)), MF_ERROR);
	assert_null(c);
	assert_non_null(strstr(err, "not a POP3 status line"));
	close(sp[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_session),
		cmocka_unit_test(test_master),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_greeting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
