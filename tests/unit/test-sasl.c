/* Unit tests: gateway/sasl.c — strict base64, PLAIN and LOGIN. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mf.h"
#include "sasl.h"

/* for inputs holding NUL bytes */
#define BIN(lit) (const uint8_t *)(lit), sizeof(lit) - 1

static void test_b64_vectors(void **state)
{
	static const char *const vec[][2] = { /* RFC 4648 section 10 */
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },
	};
	char enc[32];
	uint8_t dec[32];
	size_t i, n;

	(void)state;
	for (i = 0; i < MF_ARRAY_LEN(vec); i++) {
		size_t in_len = strlen(vec[i][0]);

		assert_int_equal(sasl_b64_encode((const uint8_t *)vec[i][0], in_len,
						 enc, sizeof(enc), &n), MF_OK);
		assert_string_equal(enc, vec[i][1]);
		assert_int_equal(n, sasl_b64_encoded_len(in_len));
		assert_int_equal(sasl_b64_decode(vec[i][1], strlen(vec[i][1]), dec,
						 sizeof(dec), &n), MF_OK);
		assert_int_equal(n, in_len);
		assert_memory_equal(dec, vec[i][0], n);
		assert_true(n <= sasl_b64_decoded_max(strlen(vec[i][1])));
	}
	/* output bounds: exact fit works, one short refuses */
	assert_int_equal(sasl_b64_encode((const uint8_t *)"foo", 3, enc, 5, &n), MF_OK);
	assert_int_equal(sasl_b64_encode((const uint8_t *)"foo", 3, enc, 4, &n), MF_ERROR);
	assert_int_equal(sasl_b64_decode("Zm9vYmFy", 8, dec, 6, &n), MF_OK);
	memset(dec, 0xaa, sizeof(dec));
	assert_int_equal(sasl_b64_decode("Zm9vYmFy", 8, dec, 5, &n), MF_ERROR);
	assert_int_equal(dec[0], 0xaa); /* refused before writing */
	assert_int_equal(sasl_b64_decode("Zm8=", 4, dec, 2, &n), MF_OK);
}

static void test_b64_strict(void **state)
{
	static const char *const bad[] = {
		"Zg=", "Zg", "Z", "Zm9", "====", "Z===", "Zg=a", "Zh==", "Zm9=",
		"Zm9v====", "Zg==Zg==", "Zm9v\r\n", "Zm 9", "Zm9\x80", "Zm-_",
		"*", "=", "Zm9v\n",
	};
	uint8_t dec[32];
	size_t i, n;

	(void)state;
	for (i = 0; i < MF_ARRAY_LEN(bad); i++)
		assert_int_equal(sasl_b64_decode(bad[i], strlen(bad[i]), dec,
						 sizeof(dec), &n), MF_ERROR);
	/* a NUL inside is a bad character, not an end */
	assert_int_equal(sasl_b64_decode("Zm9v\0\0\0\0", 8, dec, sizeof(dec), &n),
			 MF_ERROR);
	assert_int_equal(sasl_b64_decode("Zm\09", 4, dec, sizeof(dec), &n), MF_ERROR);
}

static void test_b64_round_trip(void **state)
{
	uint8_t in[300], dec[300];
	char enc[410];
	size_t len, n, m, i;

	(void)state;
	srand(7);
	for (len = 0; len < sizeof(in); len++) {
		for (i = 0; i < len; i++)
			in[i] = (uint8_t)rand();
		assert_int_equal(sasl_b64_encode(in, len, enc, sizeof(enc), &n), MF_OK);
		assert_int_equal(sasl_b64_decode(enc, n, dec, sizeof(dec), &m), MF_OK);
		assert_int_equal(m, len);
		assert_memory_equal(in, dec, len);
	}
}

static void test_plain(void **state)
{
	struct sasl_plain pl;
	uint8_t big[600];
	size_t i;

	(void)state;
	assert_int_equal(sasl_plain_parse(BIN("\0user\0pass"), &pl), MF_OK);
	assert_string_equal(pl.authzid, "");
	assert_string_equal(pl.authcid, "user");
	assert_string_equal(pl.passwd, "pass");
	assert_int_equal(pl.passwd_len, 4);
	assert_int_equal(sasl_plain_parse(BIN("admin\0user@ex.org\0p\xc3\xa4ss w"), &pl),
			 MF_OK);
	assert_string_equal(pl.authzid, "admin");
	assert_string_equal(pl.authcid, "user@ex.org");
	assert_string_equal(pl.passwd, "p\xc3\xa4ss w");
	sasl_plain_wipe(&pl);
	for (i = 0; i < sizeof(pl); i++)
		assert_int_equal(((const uint8_t *)&pl)[i], 0);

	/* missing fields, extra NULs, empty authcid or passwd, bad UTF-8 */
	assert_int_equal(sasl_plain_parse(BIN(""), &pl), MF_ERROR);
	assert_int_equal(sasl_plain_parse(BIN("user"), &pl), MF_ERROR);
	assert_int_equal(sasl_plain_parse(BIN("user\0pass"), &pl), MF_ERROR);
	assert_int_equal(sasl_plain_parse(BIN("\0\0pass"), &pl), MF_ERROR);
	assert_int_equal(sasl_plain_parse(BIN("\0user\0"), &pl), MF_ERROR);
	assert_int_equal(sasl_plain_parse(BIN("\0user\0pa\0ss"), &pl), MF_ERROR);
	assert_int_equal(sasl_plain_parse(BIN("\0user\0pass\0"), &pl), MF_ERROR);
	assert_int_equal(sasl_plain_parse(BIN("\0\0\0"), &pl), MF_ERROR);
	assert_int_equal(sasl_plain_parse(BIN("\0us\xffr\0pass"), &pl), MF_ERROR);
	assert_int_equal(sasl_plain_parse(BIN("\0user\0p\xc0\xafss"), &pl), MF_ERROR);
	assert_int_equal(pl.authcid[0], 0); /* wiped on error */

	/* sizes: 255 octets per field pass, 256 do not */
	memset(big, 'x', sizeof(big));
	big[0] = '\0';
	big[5] = '\0';
	assert_int_equal(sasl_plain_parse(big, 6 + SASL_FIELD_MAX, &pl), MF_OK);
	assert_int_equal(pl.passwd_len, SASL_FIELD_MAX);
	assert_int_equal(sasl_plain_parse(big, 6 + SASL_FIELD_MAX + 1, &pl), MF_ERROR);
	memset(big, 'x', sizeof(big));
	big[256] = '\0';
	big[261] = '\0';
	assert_int_equal(sasl_plain_parse(big, 265, &pl), MF_ERROR);
	assert_int_equal(sasl_plain_parse(big + 1, 264, &pl), MF_OK);
	assert_int_equal(pl.authzid_len, SASL_FIELD_MAX);
	sasl_plain_wipe(&pl);
}

static void test_plain_from_b64(void **state)
{
	uint8_t buf[1024];
	char enc[1400];
	size_t n;
	struct sasl_plain pl;

	(void)state;
	assert_int_equal(sasl_b64_decode("AHVzZXIAcGFzcw==", 16, buf, sizeof(buf), &n), MF_OK);
	assert_int_equal(sasl_plain_parse(buf, n, &pl), MF_OK);
	assert_string_equal(pl.authcid, "user");
	sasl_plain_wipe(&pl);
	/* a huge response decodes but is refused by PLAIN */
	memset(buf, 'a', sizeof(buf));
	buf[0] = buf[2] = '\0';
	assert_int_equal(sasl_b64_encode(buf, sizeof(buf), enc, sizeof(enc), &n), MF_OK);
	assert_int_equal(sasl_b64_decode(enc, n, buf, sizeof(buf), &n), MF_OK);
	assert_int_equal(sasl_plain_parse(buf, n, &pl), MF_ERROR);
	/* and a too small output buffer refuses it earlier */
	assert_int_equal(sasl_b64_decode(enc, strlen(enc), buf, 3 * SASL_FIELD_MAX + 2,
					 &n), MF_ERROR);
}

static void test_login(void **state)
{
	uint8_t dec[32];
	char field[SASL_FIELD_MAX + 1];
	char enc[400];
	uint8_t raw[300];
	size_t n;

	(void)state;
	assert_int_equal(sasl_b64_decode(sasl_login_prompt(SASL_LOGIN_USER), 12, dec,
					 sizeof(dec), &n), MF_OK);
	assert_memory_equal(dec, "Username:", 9);
	assert_int_equal(sasl_b64_decode(sasl_login_prompt(SASL_LOGIN_PASS), 12, dec,
					 sizeof(dec), &n), MF_OK);
	assert_memory_equal(dec, "Password:", 9);
	assert_int_equal(sasl_login_decode("dXNlcg==", 8, field, &n), MF_OK);
	assert_string_equal(field, "user");
	assert_int_equal(n, 4);
	assert_int_equal(sasl_login_decode("", 0, field, &n), MF_ERROR);      /* empty */
	assert_int_equal(sasl_login_decode("dQB1", 4, field, &n), MF_ERROR);  /* "u\0u" */
	assert_int_equal(sasl_login_decode("/w==", 4, field, &n), MF_ERROR);  /* 0xff */
	assert_int_equal(sasl_login_decode("dXNlcg=", 7, field, &n), MF_ERROR);
	memset(raw, 'p', sizeof(raw));
	assert_int_equal(sasl_b64_encode(raw, SASL_FIELD_MAX, enc, sizeof(enc), &n), MF_OK);
	assert_int_equal(sasl_login_decode(enc, n, field, &n), MF_OK);
	assert_int_equal(n, SASL_FIELD_MAX);
	assert_int_equal(sasl_b64_encode(raw, SASL_FIELD_MAX + 1, enc, sizeof(enc), &n), MF_OK);
	assert_int_equal(sasl_login_decode(enc, n, field, &n), MF_ERROR);
	assert_int_equal(field[0], 0); /* wiped */
}

static void test_utf8(void **state)
{
	(void)state;
	assert_true(sasl_utf8_valid(BIN("")));
	assert_true(sasl_utf8_valid(BIN("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91\xf4\x8f\xbf\xbf")));
	assert_false(sasl_utf8_valid(BIN("\xc1\xbf")));         /* overlong */
	assert_false(sasl_utf8_valid(BIN("\xe0\x9f\xbf")));     /* overlong */
	assert_false(sasl_utf8_valid(BIN("\xed\xa0\x80")));     /* surrogate */
	assert_false(sasl_utf8_valid(BIN("\xf4\x90\x80\x80"))); /* > U+10FFFF */
	assert_false(sasl_utf8_valid(BIN("\xe2\x82")));         /* truncated */
	assert_false(sasl_utf8_valid(BIN("\x80")));
	assert_false(sasl_utf8_valid(BIN("\xf8\x88\x80\x80\x80")));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_vectors),
		cmocka_unit_test(test_b64_strict),
		cmocka_unit_test(test_b64_round_trip),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_plain_from_b64),
		cmocka_unit_test(test_login),
		cmocka_unit_test(test_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
