/* Unit tests: gateway/admin_proto.c — the admin socket's line framer fed
 * byte by byte and in one piece (same lines), its bounds (a line of
 * ADMIN_LINE_MAX fits, one byte more is refused, NUL refused), and the
 * request decoder against hostile JSON: wrong types, unknown commands and
 * keys, duplicates, trailing bytes, NUL escapes, over-long users, deep
 * nesting. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_proto.h"
#include "mf.h"

struct lines {
	char text[8][ADMIN_LINE_MAX + 1];
	unsigned int n;
	int last_rc;
};

/* Feeds in chunks of step bytes (0: all at once). */
static void feed(const char *in, size_t n, size_t step, struct lines *out)
{
	static struct admin_line l;
	size_t pos = 0;

	memset(out, 0, sizeof(*out));
	admin_line_init(&l);
	while (pos < n) {
		size_t want = step == 0 || step > n - pos ? n - pos : step, used = 99999;
		int rc = admin_line_feed(&l, in + pos, want, &used);

		assert_true(used <= want);
		pos += used;
		out->last_rc = rc;
		if (rc == MF_ERROR)
			return;
		if (rc == ADMIN_LINE_DONE) {
			assert_true(out->n < 8);
			assert_int_equal(strlen(l.buf), l.len);
			memcpy(out->text[out->n++], l.buf, l.len + 1);
		} else {
			assert_int_equal(rc, MF_AGAIN);
			assert_int_equal(used, want);
		}
	}
}

static void test_lines_byte_by_byte(void **state)
{
	static const char in[] = "{\"cmd\":\"status\"}\r\n\n{\"cmd\":\"pin\",\"user\":\"ann\"}\npartial";
	struct lines whole, bytes;

	(void)state;
	feed(in, sizeof(in) - 1, 0, &whole);
	feed(in, sizeof(in) - 1, 1, &bytes);
	assert_int_equal(whole.n, 3);
	assert_int_equal(bytes.n, 3);
	for (unsigned int i = 0; i < 3; i++)
		assert_string_equal(whole.text[i], bytes.text[i]);
	assert_string_equal(whole.text[0], "{\"cmd\":\"status\"}");
	assert_string_equal(whole.text[1], "");
	assert_int_equal(bytes.last_rc, MF_AGAIN); /* "partial" waits for its LF */
}

static void test_line_bounds(void **state)
{
	char *in = malloc(ADMIN_LINE_MAX + 3);
	struct lines out;

	(void)state;
	assert_non_null(in);
	/* Exactly the maximum, then LF: one line. */
	memset(in, 'x', ADMIN_LINE_MAX);
	in[ADMIN_LINE_MAX] = '\n';
	feed(in, ADMIN_LINE_MAX + 1, 1, &out);
	assert_int_equal(out.n, 1);
	assert_int_equal(strlen(out.text[0]), ADMIN_LINE_MAX);
	/* One more byte, byte by byte or whole: refused before the LF. */
	memset(in, 'x', ADMIN_LINE_MAX + 1);
	in[ADMIN_LINE_MAX + 1] = '\n';
	feed(in, ADMIN_LINE_MAX + 2, 1, &out);
	assert_int_equal(out.last_rc, MF_ERROR);
	assert_int_equal(out.n, 0);
	feed(in, ADMIN_LINE_MAX + 2, 0, &out);
	assert_int_equal(out.last_rc, MF_ERROR);
	/* A NUL byte anywhere in a line. */
	feed("{\"cmd\"\0:1}\n", 11, 1, &out);
	assert_int_equal(out.last_rc, MF_ERROR);
	free(in);
}

static void expect_ok(const char *line, enum admin_cmd cmd, const char *user)
{
	struct admin_request r;
	char err[128] = "";

	if (admin_request_parse(line, strlen(line), &r, err, sizeof(err)) != MF_OK)
		fail_msg("'%s' refused: %s", line, err);
	assert_int_equal(r.cmd, cmd);
	assert_string_equal(r.user, user);
}

static void expect_bad(const char *line, size_t len, const char *needle)
{
	struct admin_request r;
	char err[128] = "";

	if (admin_request_parse(line, len, &r, err, sizeof(err)) != MF_ERROR)
		fail_msg("'%s' accepted", line);
	if (strstr(err, needle) == NULL)
		fail_msg("'%s': error '%s' lacks '%s'", line, err, needle);
	assert_string_equal(r.user, "");
}

#define BAD(s, needle) expect_bad(s, sizeof(s) - 1, needle)

static void test_requests(void **state)
{
	char deep[ADMIN_LINE_MAX + 1], user[ACCOUNT_NAME_MAX + 40], want[ACCOUNT_NAME_MAX + 1];
	int n;

	(void)state;
	expect_ok("{\"cmd\":\"status\"}", ADMIN_STATUS, "");
	expect_ok(" { \"cmd\" : \"pause\" } ", ADMIN_PAUSE, "");
	expect_ok("{\"cmd\":\"resume\"}", ADMIN_RESUME, "");
	expect_ok("{\"user\":\"Ann\",\"cmd\":\"pin\"}", ADMIN_PIN, "Ann");
	expect_ok("{\"cmd\":\"migrate\",\"user\":\"b\\u00e9@x\"}", ADMIN_MIGRATE, "b\xc3\xa9@x");
	expect_ok("{\"cmd\":\"retry\",\"user\":\"bob\"}", ADMIN_RETRY, "bob");
	expect_ok("{\"cmd\":\"rollback\",\"user\":\"bob\"}", ADMIN_ROLLBACK, "bob");
	{
		struct admin_request r;
		char err[128];
		const char *m = "{\"cmd\":\"migrate\",\"master\":true,\"user\":\"ann\"}";

		assert_int_equal(admin_request_parse(m, strlen(m), &r, err, sizeof(err)), MF_OK);
		assert_true(r.master);
		assert_string_equal(r.user, "ann");
		m = "{\"cmd\":\"migrate\",\"master\":false,\"user\":\"ann\"}";
		assert_int_equal(admin_request_parse(m, strlen(m), &r, err, sizeof(err)), MF_OK);
		assert_false(r.master);
		m = "{\"cmd\":\"migrate\",\"user\":\"ann\"}";
		assert_int_equal(admin_request_parse(m, strlen(m), &r, err, sizeof(err)), MF_OK);
		assert_false(r.master);
	}
	BAD("{\"cmd\":\"migrate\",\"user\":\"ann\",\"master\":1}", "true or false");
	BAD("{\"cmd\":\"migrate\",\"user\":\"ann\",\"master\":\"yes\"}", "true or false");
	BAD("{\"cmd\":\"migrate\",\"master\":true}", "needs \"user\"");
	BAD("{\"cmd\":\"retry\",\"user\":\"ann\",\"master\":true}", "takes no key");
	BAD("{\"cmd\":\"migrate\",\"user\":\"a\",\"master\":true,\"master\":true}", "not JSON");

	BAD("", "not JSON");
	BAD("status", "not JSON");
	BAD("[\"status\"]", "JSON object");
	BAD("\"status\"", "not JSON");
	BAD("{}", "missing");
	BAD("{\"cmd\":1}", "missing");
	BAD("{\"cmd\":null}", "missing");
	BAD("{\"cmd\":\"STATUS\"}", "unknown command");
	BAD("{\"cmd\":\"status\\u0000x\"}", "not JSON");
	BAD("{\"cmd\":\"stat\"}", "unknown command");
	BAD("{\"cmd\":\"statusx\"}", "unknown command");
	BAD("{\"cmd\":\"status\",\"cmd\":\"pause\"}", "not JSON");
	BAD("{\"cmd\":\"status\"} {\"cmd\":\"pause\"}", "not JSON");
	BAD("{\"cmd\":\"status\"", "not JSON");
	BAD("{\"cmd\":\"status\",\"user\":\"ann\"}", "takes no key");
	BAD("{\"cmd\":\"pin\",\"user\":\"ann\",\"force\":true}", "takes no key");
	BAD("{\"cmd\":\"pin\"}", "needs \"user\"");
	BAD("{\"cmd\":\"pin\",\"user\":7}", "needs \"user\"");
	BAD("{\"cmd\":\"pin\",\"user\":[\"ann\"]}", "needs \"user\"");
	BAD("{\"cmd\":\"pin\",\"user\":\"\"}", "1 to");
	BAD("{\"cmd\":\"pin\",\"user\":\"a\\u0000b\"}", "not JSON");
	BAD("{\"cmd\":\"pin\",\"user\":\"\xff\xfe\"}", "not JSON");
	n = snprintf(user, sizeof(user), "{\"cmd\":\"pin\",\"user\":\"");
	memset(user + n, 'a', ACCOUNT_NAME_MAX + 1);
	snprintf(user + n + ACCOUNT_NAME_MAX + 1, sizeof(user) - (size_t)n - ACCOUNT_NAME_MAX - 1,
		 "\"}");
	expect_bad(user, strlen(user), "1 to");
	/* Exactly ACCOUNT_NAME_MAX bytes fit. */
	memcpy(user + n + ACCOUNT_NAME_MAX, "\"}", 3);
	memset(want, 'a', ACCOUNT_NAME_MAX);
	want[ACCOUNT_NAME_MAX] = '\0';
	expect_ok(user, ADMIN_PIN, want);
	/* Deep nesting, within the line bound: refused, no crash. */
	memset(deep, '[', sizeof(deep));
	expect_bad(deep, ADMIN_LINE_MAX, "not JSON");
	/* Longer than the line bound: refused before decoding. */
	expect_bad(deep, ADMIN_LINE_MAX + 1, "longer");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines_byte_by_byte),
		cmocka_unit_test(test_line_bounds),
		cmocka_unit_test(test_requests),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
