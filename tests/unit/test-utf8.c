/* Unit tests: lib/utf8.c — valid UTF-8 kept as is; every stray byte
 * (lone continuation, overlong forms, surrogates, beyond U+10FFFF, a
 * sequence cut short, 0xff) becomes U+FFFD; output truncated only at a
 * character boundary; every prefix of a hostile string still comes out
 * valid. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "utf8.h"

#define R "\xef\xbf\xbd"

static void expect(const char *in, const char *want)
{
	char out[256];

	mf_utf8_clean(in, out, sizeof(out));
	if (strcmp(out, want) != 0)
		fail_msg("'%s': got '%s', want '%s'", in, out, want);
}

static void test_clean(void **state)
{
	(void)state;
	expect("", "");
	expect("ann@example.org", "ann@example.org");
	expect("J\xc3\xbcrgen \xe2\x82\xac \xf0\x9f\x93\xa7", "J\xc3\xbcrgen \xe2\x82\xac \xf0\x9f\x93\xa7");
	expect("\xff", R);
	expect("a\x80z", "a" R "z");
	expect("\xc0\xaf", R R);                 /* overlong '/' */
	expect("\xe0\x80\xaf", R R R);           /* overlong, 3 bytes */
	expect("\xed\xa0\x80", R R R);           /* a UTF-16 surrogate */
	expect("\xf4\x90\x80\x80", R R R R);     /* beyond U+10FFFF */
	expect("\xe2\x82", R R);                 /* cut short */
	expect("\xc3", R);
	expect("\xc3(", R "(");
}

static void test_bounds(void **state)
{
	char out[8];
	const char *hostile = "\xf0\x9f\x93\xa7\xff\xc3\xbc\xed\xa0\x80x";
	char prefix[16];

	(void)state;
	/* Room for 7 bytes: two 3-byte characters fit, a third does not. */
	mf_utf8_clean("\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", out, sizeof(out));
	assert_string_equal(out, "\xe2\x82\xac\xe2\x82\xac");
	mf_utf8_clean("abc", out, 1);
	assert_string_equal(out, "");
	/* Every prefix of a hostile string comes out valid. */
	for (size_t n = 0; n <= strlen(hostile); n++) {
		char big[64], again[64];

		memcpy(prefix, hostile, n);
		prefix[n] = '\0';
		mf_utf8_clean(prefix, big, sizeof(big));
		mf_utf8_clean(big, again, sizeof(again));
		assert_string_equal(big, again); /* clean text is a fixed point */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean),
		cmocka_unit_test(test_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
