/* Unit tests: migrate/imap_client.c and the FETCH/date/flag/UID-set helpers
 * of migrate/mig_fetch.c and mig_hash.c, against scripted servers over a
 * socketpair: what the client sends is read back and checked, hostile
 * answers must fail cleanly (no hang: every script ends by closing). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "imap_client.h"
#include "mf.h"
#include "mig_ctx.h"
#include "sasl.h"

struct script {
	int fd;
	const char *data;
	size_t len;
	bool close_after;
};

static void *writer(void *arg)
{
	struct script *s = arg;
	size_t off = 0;

	while (off < s->len) {
		ssize_t n = send(s->fd, s->data + off, s->len - off, MSG_NOSIGNAL);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (s->close_after)
		shutdown(s->fd, SHUT_WR);
	return NULL;
}

struct server {
	int fd;          /* the server's end */
	pthread_t t;
	struct script s;
};

/* Starts a client on a socketpair whose server side sends data (then
 * half-closes). *c_r is NULL when the client refused the greeting. */
static bool *busy_flag; /* handed to the next start() */

static int start(struct server *sv, const char *data, size_t len, struct imap_conn **c_r,
		 char *err, size_t errlen)
{
	struct imap_client_opts o = { .name = "test", .line_max = 1024, .busy_r = busy_flag };
	int sp[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	sv->fd = sp[1];
	sv->s = (struct script){ .fd = sp[1], .data = data, .len = len, .close_after = true };
	assert_int_equal(pthread_create(&sv->t, NULL, writer, &sv->s), 0);
	return imap_attach_fd(sp[0], &o, c_r, err, errlen);
}

static void stop(struct server *sv, struct imap_conn *c)
{
	imap_close(c);
	pthread_join(sv->t, NULL);
	close(sv->fd);
}

/* What the client sent, as a string (the client end is closed by now). */
static char *sent(struct server *sv)
{
	static char buf[65536];
	size_t n = 0;
	ssize_t r;

	while (n < sizeof(buf) - 1 && (r = read(sv->fd, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	return buf;
}

#define S(x) x, sizeof(x) - 1

static void test_login_plain(void **state)
{
	static const char script[] =
		"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN LITERAL+] hi\r\n"
		"m1 OK [CAPABILITY IMAP4rev1 MULTIAPPEND UIDPLUS SPECIAL-USE] Logged in\r\n"
		"* CAPABILITY IMAP4rev1 MULTIAPPEND UIDPLUS SPECIAL-USE LIST-EXTENDED CONDSTORE\r\n"
		"m2 OK done\r\n"
		"m3 OK bye\r\n";
	struct server sv;
	struct imap_conn *c;
	char err[256] = "", *out, *b64, expect[64];
	uint8_t raw[64];
	size_t rawlen;

	(void)state;
	assert_int_equal(start(&sv, S(script), &c, err, sizeof(err)), MF_OK);
	assert_true(imap_has(c, IMAP_CAP_SASL_IR) && imap_has(c, IMAP_CAP_AUTH_PLAIN));
	assert_int_equal(imap_login(c, "ann", "mfmaster", "s3cr\"et", 7, err, sizeof(err)), MF_OK);
	assert_true(imap_has(c, IMAP_CAP_MULTIAPPEND) && imap_has(c, IMAP_CAP_UIDPLUS) &&
		    imap_has(c, IMAP_CAP_LIST_EXTENDED) && imap_has(c, IMAP_CAP_CONDSTORE));
	assert_false(imap_has(c, IMAP_CAP_LITERAL_PLUS));
	imap_close(c);
	pthread_join(sv.t, NULL);
	out = sent(&sv);
	/* m1 AUTHENTICATE PLAIN base64("ann\0mfmaster\0s3cr\"et") */
	assert_memory_equal(out, "m1 AUTHENTICATE PLAIN ", 22);
	b64 = out + 22;
	*strchr(b64, '\r') = '\0';
	assert_int_equal(sasl_b64_decode(b64, strlen(b64), raw, sizeof(raw), &rawlen), MF_OK);
	memcpy(expect, "ann\0mfmaster\0s3cr\"et", 20);
	assert_int_equal(rawlen, 20);
	assert_memory_equal(raw, expect, 20);
	close(sv.fd);
}

static void test_login_refused(void **state)
{
	static const char script[] =
		"* OK hi\r\n"
		"m1 OK [CAPABILITY IMAP4rev1] caps\r\n" /* for CAPABILITY */
		"m2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n";
	struct server sv;
	struct imap_conn *c;
	char err[256] = "";

	(void)state;
	assert_int_equal(start(&sv, S(script), &c, err, sizeof(err)), MF_OK);
	assert_false(imap_has(c, IMAP_CAP_AUTH_PLAIN));
	assert_int_equal(imap_login(c, "ann", NULL, "pw\"x", 4, err, sizeof(err)), MF_ERROR);
	assert_non_null(strstr(err, "[AUTHENTICATIONFAILED] Authentication failed."));
	assert_null(strstr(err, "pw"));
	/* A master login needs AUTH=PLAIN. */
	assert_int_equal(imap_login(c, "ann", "m", "pw", 2, err, sizeof(err)), MF_ERROR);
	stop(&sv, c);
}

static void test_greetings(void **state)
{
	static const char *const bad[] = {
		"* PREAUTH [CAPABILITY IMAP4rev1] welcome\r\n",
		"* BYE go away\r\n",
		"m1 OK nonsense\r\n",
		"* OK [CAPABILITY IMAP4rev1 LOGINDISABLED] x\r\n",
		"* OK hi\r\nm1 BAD what\r\n",
		"* OK hi", /* closed before the line ended */
		"* OK [CAPABILITY x\r\n",
	};

	(void)state;
	for (size_t i = 0; i < MF_ARRAY_LEN(bad); i++) {
		struct server sv;
		struct imap_conn *c = NULL;
		char err[256] = "";
		int rc = start(&sv, bad[i], strlen(bad[i]), &c, err, sizeof(err));

		if (i == 3) {
			/* LOGINDISABLED: connected, but login refused without TLS. */
			assert_int_equal(rc, MF_OK);
			assert_int_equal(imap_login(c, "a", NULL, "b", 1, err, sizeof(err)), MF_ERROR);
			assert_non_null(strstr(err, "login disabled"));
		} else {
			assert_int_equal(rc, MF_ERROR);
			assert_true(err[0] != '\0');
		}
		stop(&sv, c);
	}
}

struct collect {
	char buf[300000];
	size_t n;
	int begins, ends;
	bool stream;
};

static int c_begin(void *arg, const struct imap_response *r, uint64_t size)
{
	struct collect *k = arg;

	(void)size;
	k->begins++;
	if (!imap_item_is(&r->items[r->n - 1], "BODY[]"))
		return 0;
	return k->stream ? 1 : 0;
}

static int c_data(void *arg, const uint8_t *p, size_t n)
{
	struct collect *k = arg;

	assert_true(k->n + n <= sizeof(k->buf));
	memcpy(k->buf + k->n, p, n);
	k->n += n;
	return MF_OK;
}

static int c_end(void *arg)
{
	struct collect *k = arg;

	k->ends++;
	return MF_OK;
}

static void test_fetch_stream(void **state)
{
	size_t big = 200000, len;
	char *script = malloc(big + 4096);
	struct collect *k = calloc(1, sizeof(*k));
	struct imap_sink sink = { .begin = c_begin, .data = c_data, .end = c_end, .arg = k };
	const struct imap_response *r;
	struct server sv;
	struct imap_conn *c;
	struct mig_msg m;
	char err[256] = "";
	int64_t t;

	(void)state;
	len = (size_t)sprintf(script, "* OK [CAPABILITY IMAP4rev1 LITERAL+] hi\r\n"
			      "* 3 FETCH (UID 17 FLAGS (\\Seen \\Recent $Fwd) INTERNALDATE "
			      "\"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE %zu BODY[] {%zu}\r\n",
			      big, big);
	for (size_t i = 0; i < big; i++)
		script[len + i] = (char)(i * 131 % 251);
	len += big;
	len += (size_t)sprintf(script + len, ")\r\n* LIST (\\HasNoChildren \\Sent) \".\" {4}\r\nSe\"t\r\n"
			       "* 4 FETCH (FLAGS (\\Seen) UID 0)\r\n"
			       "* 5 FETCH (UID 9 FLAGS \\Seen)\r\n"
			       "* 6 FETCH (UID 9 BODY[] {70000}\r\n");
	assert_int_equal(start(&sv, script, len, &c, err, sizeof(err)), MF_OK);
	k->stream = true;
	assert_int_equal(imap_read(c, &sink, &r, err, sizeof(err)), MF_OK);
	assert_int_equal(k->begins, 1);
	assert_int_equal(k->ends, 1);
	assert_int_equal(k->n, big);
	for (size_t i = 0; i < big; i += 997)
		assert_int_equal((uint8_t)k->buf[i], (uint8_t)(i * 131 % 251));
	assert_int_equal(mig_fetch_parse(r, &m), 1);
	assert_int_equal(m.seq, 3);
	assert_int_equal(m.uid, 17);
	assert_int_equal(m.size, big);
	assert_string_equal(m.flags, "\\Seen $Fwd");
	assert_string_equal(m.date, "17-Jul-1996 02:44:25 -0700");
	assert_int_equal(mig_date_parse(m.date, &t), MF_OK);
	assert_int_equal(t, 837596665);
	free(m.flags);
	/* A small literal is collected inline (a folder name). */
	assert_int_equal(imap_read(c, &sink, &r, err, sizeof(err)), MF_OK);
	assert_int_equal(r->items[r->n - 1].type, IMAP_TOK_LITERAL);
	assert_string_equal(r->items[r->n - 1].s, "Se\"t");
	assert_int_equal(mig_fetch_parse(r, &m), 0);
	/* Malformed FETCH responses are errors, not guesses. */
	assert_int_equal(imap_read(c, &sink, &r, err, sizeof(err)), MF_OK);
	assert_int_equal(mig_fetch_parse(r, &m), MF_ERROR);
	assert_int_equal(imap_read(c, &sink, &r, err, sizeof(err)), MF_OK);
	assert_int_equal(mig_fetch_parse(r, &m), MF_ERROR);
	/* A body larger than the inline bound with nobody to stream it to. */
	k->stream = false;
	assert_int_equal(imap_read(c, &sink, &r, err, sizeof(err)), MF_ERROR);
	assert_non_null(strstr(err, "unexpected literal"));
	stop(&sv, c);
	free(script);
	free(k);
}

static void test_wait_hostile(void **state)
{
	static const char *const scripts[] = {
		"* OK [CAPABILITY IMAP4rev1] hi\r\nm9 OK not yours\r\n",
		"* OK [CAPABILITY IMAP4rev1] hi\r\n+ go on\r\n",
		"* OK [CAPABILITY IMAP4rev1] hi\r\n* BYE shutting down\r\n",
		"* OK [CAPABILITY IMAP4rev1] hi\r\n* 1 FETCH (X \"unterminated\r\n",
		"* OK [CAPABILITY IMAP4rev1] hi\r\n* 1 EXISTS\r\n", /* then EOF */
		"* OK [CAPABILITY IMAP4rev1] hi\r\nm1 NO [TRYCREATE] no such folder\r\n",
	};

	(void)state;
	for (size_t i = 0; i < MF_ARRAY_LEN(scripts); i++) {
		struct server sv;
		struct imap_conn *c;
		char err[256] = "";

		assert_int_equal(start(&sv, scripts[i], strlen(scripts[i]), &c, err, sizeof(err)),
				 MF_OK);
		assert_int_equal(imap_simple(c, NULL, NULL, err, sizeof(err), "NOOP"), MF_ERROR);
		assert_true(err[0] != '\0');
		if (i == 5)
			assert_non_null(strstr(err, "NO [TRYCREATE] no such folder"));
		stop(&sv, c);
	}
	/* A line over the bound (1024 here) fails instead of growing. */
	{
		char *big = malloc(4096);
		struct server sv;
		struct imap_conn *c;
		char err[256] = "";
		int n = sprintf(big, "* OK [CAPABILITY IMAP4rev1] hi\r\n* ");

		memset(big + n, 'x', 2000);
		memcpy(big + n + 2000, "\r\n", 3);
		assert_int_equal(start(&sv, big, strlen(big), &c, err, sizeof(err)), MF_OK);
		assert_int_equal(imap_simple(c, NULL, NULL, err, sizeof(err), "NOOP"), MF_ERROR);
		assert_non_null(strstr(err, "too long"));
		stop(&sv, c);
		free(big);
	}
}

static void test_quote(void **state)
{
	static const char script[] = "* OK [CAPABILITY IMAP4rev1 LITERAL+] hi\r\n";
	static const char script2[] = "* OK [CAPABILITY IMAP4rev1] hi\r\n";
	struct server sv;
	struct imap_conn *c;
	char err[256] = "", out[64];

	(void)state;
	assert_int_equal(start(&sv, S(script), &c, err, sizeof(err)), MF_OK);
	assert_int_equal(imap_quote(c, "a\"b\\c", 5, out, sizeof(out)), MF_OK);
	assert_string_equal(out, "\"a\\\"b\\\\c\"");
	assert_int_equal(imap_quote(c, "&AOk-t\xc3\xa9", 8, out, sizeof(out)), MF_OK);
	assert_string_equal(out, "{8+}\r\n&AOk-t\xc3\xa9");
	assert_int_equal(imap_quote(c, "", 0, out, sizeof(out)), MF_OK);
	assert_string_equal(out, "\"\"");
	assert_int_equal(imap_quote(c, "abcdefgh", 8, out, 6), MF_ERROR);
	stop(&sv, c);
	assert_int_equal(start(&sv, S(script2), &c, err, sizeof(err)), MF_OK);
	assert_int_equal(imap_quote(c, "a\r\nb", 4, out, sizeof(out)), MF_ERROR);
	stop(&sv, c);
}

static void test_url(void **state)
{
	struct imap_url u;
	char err[128];

	(void)state;
	assert_int_equal(imap_url_parse("imap://198.18.11.2:143", &u, err, sizeof(err)), MF_OK);
	assert_string_equal(u.host, "198.18.11.2");
	assert_string_equal(u.port, "143");
	assert_int_equal(u.sec, IMAP_SEC_PLAIN);
	assert_int_equal(imap_url_parse("imaps://old.lab.test", &u, err, sizeof(err)), MF_OK);
	assert_string_equal(u.port, "993");
	assert_int_equal(u.sec, IMAP_SEC_TLS);
	assert_int_equal(imap_url_parse("imap+starttls://[2001:db8::2]:1143/", &u, err,
					sizeof(err)), MF_OK);
	assert_string_equal(u.host, "2001:db8::2");
	assert_string_equal(u.port, "1143");
	assert_int_equal(u.sec, IMAP_SEC_STARTTLS);
	assert_int_equal(imap_url_parse("pop3://x", &u, err, sizeof(err)), MF_OK);
	assert_true(u.pop3 && u.sec == IMAP_SEC_PLAIN);
	assert_string_equal(u.port, "110");
	assert_int_equal(imap_url_parse("pop3s://[2001:db8::2]", &u, err, sizeof(err)), MF_OK);
	assert_true(u.pop3 && u.sec == IMAP_SEC_TLS);
	assert_string_equal(u.port, "995");
	assert_int_equal(imap_url_parse("pop3+stls://x:1110", &u, err, sizeof(err)), MF_OK);
	assert_true(u.pop3 && u.sec == IMAP_SEC_STARTTLS);
	assert_string_equal(u.port, "1110");
	assert_int_equal(imap_url_parse("imap://x", &u, err, sizeof(err)), MF_OK);
	assert_false(u.pop3);
	assert_int_equal(imap_url_parse("pop2://x", &u, err, sizeof(err)), MF_ERROR);
	assert_non_null(strstr(err, "pop3s"));
	{
		static const char *const bad[] = {
			"http://x", "imap://", "imap://:143", "imap://x:0", "imap://x:65536",
			"imap://x:1a", "imap://[::1", "imap://x/INBOX", "imap://[::1]x",
		};

		for (size_t i = 0; i < MF_ARRAY_LEN(bad); i++)
			assert_int_equal(imap_url_parse(bad[i], &u, err, sizeof(err)), MF_ERROR);
	}
}

static void test_helpers(void **state)
{
	uint32_t uids[] = { 1, 2, 3, 5, 7, 8, 4000000000u };
	char set[64];
	size_t used;
	int64_t a, b;

	(void)state;
	mig_uidset(uids, 7, set, sizeof(set), &used);
	assert_string_equal(set, "1:3,5,7:8,4000000000");
	assert_int_equal(used, 7);
	mig_uidset(uids, 7, set, 8, &used);
	assert_string_equal(set, "1:3,5");
	assert_int_equal(used, 4);
	assert_int_equal(mig_date_parse("01-Jan-2020 10:00:00 +0100", &a), MF_OK);
	assert_int_equal(mig_date_parse(" 1-Jan-2020 09:00:00 +0000", &b), MF_OK);
	assert_true(a == b);
	assert_int_equal(mig_date_parse("01-Foo-2020 10:00:00 +0100", &a), MF_ERROR);
	assert_int_equal(mig_date_parse("01-Jan-2020 10:00:00 *0100", &a), MF_ERROR);
	assert_int_equal(mig_date_parse("01-Jan-2020 10:00:00 +0100x", &a), MF_ERROR);
	assert_int_equal(mig_date_parse("", &a), MF_ERROR);
	assert_true(mig_flags_equal("\\Seen $a b", "b \\seen $a"));
	assert_true(mig_flags_equal("", NULL));
	assert_false(mig_flags_equal("\\Seen", "\\Seen \\Flagged"));
	assert_false(mig_flags_equal("a b", "a c"));
}

/* The source sheds load: [LIMIT], [UNAVAILABLE], [INUSE], BYE, a close in
 * the middle of a response; a plain NO and our own LOGOUT's BYE do not
 * count. */
static void expect_busy(const char *script, bool want)
{
	struct server sv;
	struct imap_conn *c = NULL;
	char err[256] = "";
	bool busy = false;

	busy_flag = &busy;
	if (start(&sv, script, strlen(script), &c, err, sizeof(err)) == MF_OK) {
		assert_int_equal(imap_simple(c, NULL, NULL, err, sizeof(err), "NOOP"), MF_ERROR);
		stop(&sv, c);
	} else {
		pthread_join(sv.t, NULL);
		close(sv.fd);
	}
	busy_flag = NULL;
	if (busy != want)
		fail_msg("busy=%d for %s (%s)", busy, script, err);
}

static void test_busy(void **state)
{
	struct server sv;
	struct imap_conn *c;
	char err[256] = "";
	bool busy = false;

	(void)state;
	expect_busy("* OK [CAPABILITY IMAP4rev1] hi\r\nm1 NO [LIMIT] slow down\r\n", true);
	expect_busy("* OK [CAPABILITY IMAP4rev1] hi\r\nm1 NO [UNAVAILABLE] later\r\n", true);
	expect_busy("* OK [CAPABILITY IMAP4rev1] hi\r\nm1 NO [INUSE] locked\r\n", true);
	expect_busy("* OK [CAPABILITY IMAP4rev1] hi\r\n* BYE [UNAVAILABLE] shutting down\r\n", true);
	expect_busy("* BYE Too many connections\r\n", true);
	expect_busy("* OK [CAPABILITY IMAP4rev1] hi\r\n* 1 FETCH (BODY[] {100}\r\nonly part", true);
	expect_busy("* OK [CAPABILITY IMAP4rev1] hi\r\nm1 NO no such thing\r\n", false);
	expect_busy("* OK [CAPABILITY IMAP4rev1] hi\r\nm1 BAD [CLIENTBUG] what\r\n", false);
	/* A good session ending with our LOGOUT. */
	busy_flag = &busy;
	assert_int_equal(start(&sv, S("* OK [CAPABILITY IMAP4rev1] hi\r\nm1 OK done\r\n* BYE bye\r\nm2 OK out\r\n"),
			       &c, err, sizeof(err)), MF_OK);
	assert_int_equal(imap_simple(c, NULL, NULL, err, sizeof(err), "NOOP"), MF_OK);
	stop(&sv, c);
	busy_flag = NULL;
	assert_false(busy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_login_plain),
		cmocka_unit_test(test_login_refused),
		cmocka_unit_test(test_greetings),
		cmocka_unit_test(test_fetch_stream),
		cmocka_unit_test(test_wait_hostile),
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_helpers),
		cmocka_unit_test(test_busy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
