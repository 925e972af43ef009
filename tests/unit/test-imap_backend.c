/* Unit tests: gateway/imap_backend.c — backend line reader, response
 * classifier, LOGIN builder. Lines are fed whole and one byte at a time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "imap_backend.h"
#include "mf.h"

/* Feeds in in chunks of step bytes; returns the lines joined by '|'. */
static int feed_all(const char *in, size_t len, size_t step, char *out, size_t outlen)
{
	struct imap_line *l = malloc(sizeof(*l));
	size_t pos = 0;
	int rc = MF_AGAIN;

	out[0] = '\0';
	imap_line_init(l);
	while (pos < len) {
		size_t n = len - pos < step ? len - pos : step, used = 0;

		rc = imap_line_feed(l, (const uint8_t *)in + pos, n, &used);
		pos += used;
		if (rc == MF_ERROR)
			break;
		if (rc == MF_OK) {
			strncat(out, l->buf, outlen - strlen(out) - 2);
			strcat(out, "|");
		}
	}
	free(l);
	return rc;
}

static void test_lines(void **state)
{
	static const char in[] = "* OK [CAPABILITY IMAP4rev1 LITERAL+] hi\r\n"
				 "* CAPABILITY X\nmf1 OK done\r\npartial";
	char out[256], ref[256];

	(void)state;
	assert_int_equal(feed_all(in, sizeof(in) - 1, sizeof(in), ref, sizeof(ref)), MF_AGAIN);
	assert_string_equal(ref, "* OK [CAPABILITY IMAP4rev1 LITERAL+] hi|* CAPABILITY X|mf1 OK done|");
	for (size_t step = 1; step < 8; step++) {
		assert_int_equal(feed_all(in, sizeof(in) - 1, step, out, sizeof(out)), MF_AGAIN);
		assert_string_equal(out, ref);
	}
}

static void test_line_bounds(void **state)
{
	size_t n = IMAP_RESP_LINE_MAX + 10;
	char *big = malloc(n), out[64];

	(void)state;
	memset(big, 'a', n);
	assert_int_equal(feed_all(big, n, 1, out, sizeof(out)), MF_ERROR);
	assert_int_equal(feed_all(big, n, n, out, sizeof(out)), MF_ERROR);
	/* exactly the maximum, then CRLF: fine */
	memcpy(big + IMAP_RESP_LINE_MAX, "\r\n", 2);
	assert_int_equal(feed_all(big, IMAP_RESP_LINE_MAX + 2, 1, out, sizeof(out)), MF_OK);
	assert_int_equal(feed_all("a\0b\r\n", 5, 1, out, sizeof(out)), MF_ERROR);
	free(big);
}

static void test_resp(void **state)
{
	struct imap_resp r;
	const char *l;

	(void)state;
	l = "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID] Dovecot ready.";
	assert_int_equal(imap_resp_parse(l, strlen(l), &r), MF_OK);
	assert_int_equal(r.kind, IMAP_RESP_UNTAGGED);
	assert_int_equal(r.status, IMAP_ST_OK);
	assert_true(imap_resp_text_has_cap(r.text, "LITERAL+"));
	assert_true(imap_resp_text_has_cap(r.text, "literal+"));
	assert_false(imap_resp_text_has_cap(r.text, "LITERAL"));
	assert_false(imap_resp_text_has_cap("Dovecot ready LITERAL+", "LITERAL+"));
	l = "mf1 NO [AUTHENTICATIONFAILED] Authentication failed.";
	assert_int_equal(imap_resp_parse(l, strlen(l), &r), MF_OK);
	assert_int_equal(r.kind, IMAP_RESP_TAGGED);
	assert_int_equal(r.status, IMAP_ST_NO);
	assert_int_equal(r.tag_len, 3);
	assert_string_equal(r.text, "[AUTHENTICATIONFAILED] Authentication failed.");
	l = "+ OK";
	assert_int_equal(imap_resp_parse(l, strlen(l), &r), MF_OK);
	assert_int_equal(r.kind, IMAP_RESP_CONTINUE);
	assert_int_equal(imap_resp_parse("+", 1, &r), MF_OK);
	l = "* PREAUTH hi";
	assert_int_equal(imap_resp_parse(l, strlen(l), &r), MF_OK);
	assert_int_equal(r.status, IMAP_ST_PREAUTH);
	l = "* BYE";
	assert_int_equal(imap_resp_parse(l, strlen(l), &r), MF_OK);
	assert_int_equal(r.status, IMAP_ST_BYE);
	assert_int_equal(imap_resp_parse("", 0, &r), MF_ERROR);
	assert_int_equal(imap_resp_parse("garbage", 7, &r), MF_ERROR);
	assert_int_equal(imap_resp_parse("mf1 FOO x", 9, &r), MF_ERROR);
	assert_int_equal(imap_resp_parse(" OK x", 5, &r), MF_ERROR);
}

static void test_login_build(void **state)
{
	struct imap_login_cmd c;

	(void)state;
	assert_int_equal(imap_login_build("mf1", "alice", 5, "p\"w", 3, true, &c), MF_OK);
	assert_int_equal(c.n_seg, 1);
	assert_memory_equal(c.buf, "mf1 LOGIN {5+}\r\nalice {3+}\r\np\"w\r\n", c.seg_end[0]);
	assert_int_equal(c.seg_end[0], strlen("mf1 LOGIN {5+}\r\nalice {3+}\r\np\"w\r\n"));
	assert_int_equal(imap_login_build("mf1", "alice", 5, "p\"w\\", 4, false, &c), MF_OK);
	assert_int_equal(c.n_seg, 1);
	assert_int_equal(c.seg_end[0], strlen("mf1 LOGIN \"alice\" \"p\\\"w\\\\\"\r\n"));
	assert_memory_equal(c.buf, "mf1 LOGIN \"alice\" \"p\\\"w\\\\\"\r\n", c.seg_end[0]);
	assert_int_equal(imap_login_build("mf1", "alice", 5, "p\xc3\xa9", 3, false, &c), MF_OK);
	assert_int_equal(c.n_seg, 3);
	assert_memory_equal(c.buf, "mf1 LOGIN {5}\r\n", c.seg_end[0]);
	assert_memory_equal(c.buf + c.seg_end[0], "alice {3}\r\n", c.seg_end[1] - c.seg_end[0]);
	assert_memory_equal(c.buf + c.seg_end[1], "p\xc3\xa9\r\n", c.seg_end[2] - c.seg_end[1]);
	assert_int_equal(imap_login_build("mf1", "", 0, "x", 1, true, &c), MF_ERROR);
	assert_int_equal(imap_login_build("mf1", "a", 1, "x\0y", 3, true, &c), MF_ERROR);
	{
		char big[300];

		memset(big, '"', sizeof(big));
		assert_int_equal(imap_login_build("mf1", big, 255, big, 255, false, &c), MF_OK);
		assert_int_equal(imap_login_build("mf1", big, 256, "x", 1, true, &c), MF_ERROR);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_line_bounds),
		cmocka_unit_test(test_resp),
		cmocka_unit_test(test_login_build),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
