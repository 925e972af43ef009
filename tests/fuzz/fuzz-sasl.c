/* libFuzzer target: gateway/sasl.c.
 *
 * The input is used three ways: as base64 text (a decode that succeeds
 * must re-encode to the very same text: the decoder is canonical), as raw
 * bytes (encode then decode must round-trip), and as a decoded PLAIN
 * message (a parse that succeeds must give fields that rebuild it). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mf.h"
#include "sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

static void fuzz_decode(const uint8_t *data, size_t size)
{
	uint8_t *dec = malloc(size + 1);
	char *enc = malloc(size + 8);
	char field[SASL_FIELD_MAX + 1];
	size_t n, m, out_size = size % 7 == 0 ? size / 2 : size;

	check(dec != NULL && enc != NULL);
	if (sasl_b64_decode((const char *)data, size, dec, out_size, &n) == MF_OK) {
		check(n <= out_size && n <= sasl_b64_decoded_max(size));
		check(sasl_b64_encode(dec, n, enc, size + 8, &m) == MF_OK);
		check(m == size && memcmp(enc, data, size) == 0);
	}
	if (sasl_login_decode((const char *)data, size, field, &n) == MF_OK)
		check(n > 0 && n <= SASL_FIELD_MAX && strlen(field) == n);
	free(dec);
	free(enc);
}

static void fuzz_round_trip(const uint8_t *data, size_t size)
{
	size_t cap = sasl_b64_encoded_len(size) + 1, n, m;
	char *enc = malloc(cap);
	uint8_t *dec = malloc(size + 1);

	check(enc != NULL && dec != NULL);
	check(sasl_b64_encode(data, size, enc, cap, &n) == MF_OK);
	check(n == cap - 1 && strlen(enc) == n);
	check(sasl_b64_encode(data, size, enc, cap - 1, &m) == MF_ERROR);
	check(sasl_b64_decode(enc, n, dec, size, &m) == MF_OK);
	check(m == size && memcmp(dec, data, size) == 0);
	free(enc);
	free(dec);
}

static void fuzz_plain(const uint8_t *data, size_t size)
{
	struct sasl_plain pl;
	uint8_t *re;
	size_t k = 0;

	if (sasl_plain_parse(data, size, &pl) != MF_OK)
		return;
	check(pl.authcid_len > 0 && pl.passwd_len > 0);
	check(pl.authzid_len <= SASL_FIELD_MAX && pl.authcid_len <= SASL_FIELD_MAX &&
	      pl.passwd_len <= SASL_FIELD_MAX);
	check(sasl_utf8_valid((const uint8_t *)pl.passwd, pl.passwd_len));
	re = malloc(size + 1);
	check(re != NULL);
	memcpy(re + k, pl.authzid, pl.authzid_len);
	k += pl.authzid_len;
	re[k++] = '\0';
	memcpy(re + k, pl.authcid, pl.authcid_len);
	k += pl.authcid_len;
	re[k++] = '\0';
	memcpy(re + k, pl.passwd, pl.passwd_len);
	k += pl.passwd_len;
	check(k == size && memcmp(re, data, size) == 0);
	free(re);
	sasl_plain_wipe(&pl);
	check(pl.passwd[0] == '\0' && pl.passwd_len == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_decode(data, size);
	fuzz_round_trip(data, size);
	fuzz_plain(data, size);
	return 0;
}
