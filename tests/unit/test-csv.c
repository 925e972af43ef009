/* Unit tests: lib/csv.c — records and fields fed whole and one byte at a
 * time (same result), quoting ("" inside, commas and line breaks in
 * quotes), CRLF and LF, blank lines, a BOM, line numbers in errors, and
 * hostile input: NUL, stray quotes, text after a closing quote, a quote
 * left open, a lone CR, too long a record, too many fields; the writer's
 * quoting and formula guard. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "mf.h"

static size_t add(char *out, size_t outlen, size_t o, const char *a, const char *b)
{
	int n = o < outlen ? snprintf(out + o, outlen - o, "%s%s", a, b) : 0;

	return o + (size_t)(n > 0 ? n : 0) < outlen ? o + (size_t)n : outlen;
}

static size_t emit(const struct csv_reader *r, char *out, size_t outlen, size_t o)
{
	char line[32];

	for (unsigned int i = 0; i < r->n_fields; i++)
		o = add(out, outlen, o, i ? "|" : "", csv_field(r, i));
	snprintf(line, sizeof(line), "@%lu;", r->line);
	return add(out, outlen, o, line, "");
}

/* Records as "f1|f2|...;" (fields joined by '|', records ended by ';'),
 * or "ERR:<message>" after an error. */
static void parse(const char *in, size_t n, size_t step, char *out, size_t outlen)
{
	static struct csv_reader r;
	char err[128];
	size_t pos = 0, o = 0;
	int rc;

	csv_reader_init(&r);
	out[0] = '\0';
	while (pos < n) {
		size_t want = step == 0 || step > n - pos ? n - pos : step, used = 0;

		rc = csv_read(&r, in + pos, want, &used, err, sizeof(err));
		assert_true(used <= want);
		pos += used;
		if (rc == MF_ERROR) {
			snprintf(out, outlen, "ERR:%s", err);
			return;
		}
		if (rc == CSV_RECORD) {
			o = emit(&r, out, outlen, o);
		} else {
			assert_int_equal(rc, MF_AGAIN);
			assert_int_equal(used, want);
		}
	}
	rc = csv_finish(&r, err, sizeof(err));
	if (rc == MF_ERROR) {
		snprintf(out, outlen, "ERR:%s", err);
		return;
	}
	if (rc == CSV_RECORD)
		emit(&r, out, outlen, o);
}

static void expect(const char *in, size_t n, const char *want)
{
	char whole[4096], bytes[4096];

	parse(in, n, 0, whole, sizeof(whole));
	parse(in, n, 1, bytes, sizeof(bytes));
	if (strcmp(whole, want) != 0)
		fail_msg("whole: got '%s', want '%s'", whole, want);
	if (strcmp(bytes, want) != 0)
		fail_msg("byte by byte: got '%s', want '%s'", bytes, want);
}

#define EXPECT(s, want) expect(s, sizeof(s) - 1, want)

static void test_records(void **state)
{
	(void)state;
	EXPECT("user,pin,notes\r\nann,yes,\"Sales, 2nd floor\"\r\n", "user|pin|notes@1;ann|yes|Sales, 2nd floor@2;");
	EXPECT("a,b\nc,d", "a|b@1;c|d@2;");
	EXPECT("a,\n,b\n,\n", "a|@1;|b@2;|@3;");
	EXPECT("\n\r\na\n\n", "a@3;");
	EXPECT("\"say \"\"hi\"\"\",x\n", "say \"hi\"|x@1;");
	EXPECT("\"two\nlines\",x\nnext\n", "two\nlines|x@1;next@3;");
	EXPECT("\"\"\n", "@1;");
	EXPECT("\xef\xbb\xbfuser\nann\n", "user@1;ann@2;");
	EXPECT("J\xc3\xbcrgen,1\n", "J\xc3\xbcrgen|1@1;");
	EXPECT("", "");
	EXPECT("last,\"quoted\"", "last|quoted@1;");
}

static void test_hostile(void **state)
{
	char *big = malloc(CSV_RECORD_MAX + 16), many[CSV_FIELDS_MAX * 2 + 8];
	char out[4096];

	(void)state;
	EXPECT("a,b\nc\0d\n", "ERR:line 2: a NUL byte");
	EXPECT("a\"b\n", "ERR:line 1: a quote inside an unquoted field");
	EXPECT("\"a\"b\n", "ERR:line 1: text after a closing quote");
	EXPECT("ok\n\"open\nstill open", "ERR:line 2: a quoted field is not closed at the end");
	EXPECT("a\rb\n", "ERR:line 1: a CR not followed by LF");
	EXPECT("a\r", "ERR:line 1: a CR not followed by LF");
	EXPECT("\xef\xbbx\n", "ERR:line 1: a broken byte-order mark");
	/* One byte over the record bound, quoted or not. */
	assert_non_null(big);
	memset(big, 'x', CSV_RECORD_MAX + 1);
	big[CSV_RECORD_MAX + 1] = '\n';
	parse(big, CSV_RECORD_MAX + 2, 1, out, sizeof(out));
	assert_string_equal(out, "ERR:line 1: record longer than 8192 bytes");
	memset(big, 'x', CSV_RECORD_MAX + 2);
	big[0] = '"';
	big[CSV_RECORD_MAX + 1] = '"';
	big[CSV_RECORD_MAX + 2] = '\n';
	parse(big, CSV_RECORD_MAX + 3, 0, out, sizeof(out));
	assert_string_equal(out, "ERR:line 1: record longer than 8192 bytes");
	/* The largest record that fits: CSV_RECORD_MAX - 1 bytes + its NUL. */
	memset(big, 'x', CSV_RECORD_MAX - 1);
	big[CSV_RECORD_MAX - 1] = '\n';
	parse(big, CSV_RECORD_MAX, 1, out, sizeof(out));
	assert_int_equal(strncmp(out, "xxxx", 4), 0);
	free(big);
	/* CSV_FIELDS_MAX fields fit, one more does not. */
	memset(many, ',', sizeof(many));
	many[CSV_FIELDS_MAX - 1] = '\n';
	parse(many, CSV_FIELDS_MAX, 1, out, sizeof(out));
	assert_int_equal(strncmp(out, "ERR", 3) != 0, 1);
	many[CSV_FIELDS_MAX - 1] = ',';
	many[CSV_FIELDS_MAX] = '\n';
	parse(many, CSV_FIELDS_MAX + 1, 1, out, sizeof(out));
	assert_string_equal(out, "ERR:line 1: more than 32 fields");
}

static void test_writer(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	assert_non_null(f);
	csv_write_field(f, "plain", false);
	csv_write_field(f, "a,b", false);
	csv_write_field(f, "say \"hi\"", false);
	csv_write_field(f, "=HYPERLINK(\"x\")", false);
	csv_write_field(f, "-1", false);
	csv_write_field(f, "two\nlines", true);
	fclose(f);
	assert_string_equal(buf, "plain,\"a,b\",\"say \"\"hi\"\"\",\"'=HYPERLINK(\"\"x\"\")\","
				 "\"'-1\",\"two\nlines\"\r\n");
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_writer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
