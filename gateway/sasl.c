/* sasl.c — strict base64, SASL PLAIN and LOGIN (see sasl.h). */
#include "sasl.h"

#include <string.h>

#include "mf.h"

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The value of a base64 character, or -1. */
static int b64_value(char ch)
{
	unsigned char c = (unsigned char)ch;

	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

size_t sasl_b64_encoded_len(size_t n)
{
	return (n / 3 + (n % 3 != 0)) * 4;
}

size_t sasl_b64_decoded_max(size_t n)
{
	return n / 4 * 3;
}

int sasl_b64_encode(const uint8_t *in, size_t in_len, char *out,
		    size_t out_size, size_t *out_len_r)
{
	size_t i, o = 0;
	uint32_t v;

	if (in_len > (SIZE_MAX - 1) / 4 * 3 - 3 ||
	    out_size < sasl_b64_encoded_len(in_len) + 1)
		return MF_ERROR;
	for (i = 0; i + 3 <= in_len; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = b64_alphabet[(v >> 6) & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	if (in_len - i == 1) {
		v = (uint32_t)in[i] << 16;
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (in_len - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = b64_alphabet[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
	*out_len_r = o;
	return MF_OK;
}

int sasl_b64_decode(const char *in, size_t in_len, uint8_t *out,
		    size_t out_size, size_t *out_len_r)
{
	size_t i, o = 0, pad = 0, total;
	int d[4];
	unsigned int k;

	if (in_len % 4 != 0)
		return MF_ERROR;
	if (in_len > 0 && in[in_len - 1] == '=')
		pad = in[in_len - 2] == '=' ? 2 : 1;
	total = sasl_b64_decoded_max(in_len) - pad;
	if (total > out_size) /* refuse before writing anything */
		return MF_ERROR;
	for (i = 0; i < in_len; i += 4) {
		bool last = i + 4 == in_len;

		for (k = 0; k < 4; k++) {
			d[k] = b64_value(in[i + k]);
			/* "=" is only legal in the padding of the last quad */
			if (d[k] < 0 && !(last && in[i + k] == '=' && k >= 4 - pad))
				return MF_ERROR;
		}
		out[o++] = (uint8_t)(d[0] << 2 | d[1] >> 4);
		if (last && pad == 2) {
			if ((d[1] & 0x0f) != 0) /* non-canonical: stray bits */
				return MF_ERROR;
			break;
		}
		out[o++] = (uint8_t)((d[1] & 0x0f) << 4 | d[2] >> 2);
		if (last && pad == 1) {
			if ((d[2] & 0x03) != 0)
				return MF_ERROR;
			break;
		}
		out[o++] = (uint8_t)((d[2] & 0x03) << 6 | d[3]);
	}
	*out_len_r = o;
	return MF_OK;
}

bool sasl_utf8_valid(const uint8_t *buf, size_t len)
{
	size_t i = 0;
	unsigned int n, k;
	uint8_t c, lo, hi;

	while (i < len) {
		c = buf[i++];
		if (c < 0x80)
			continue;
		lo = 0x80;
		hi = 0xbf;
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			if (c == 0xe0)
				lo = 0xa0;
			else if (c == 0xed) /* UTF-16 surrogates */
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4) /* above U+10FFFF */
				hi = 0x8f;
		} else {
			return false;
		}
		for (k = 0; k < n; k++, i++) {
			if (i >= len || buf[i] < lo || buf[i] > hi)
				return false;
			lo = 0x80;
			hi = 0xbf;
		}
	}
	return true;
}

void sasl_plain_wipe(struct sasl_plain *plain)
{
	explicit_bzero(plain, sizeof(*plain));
}

/* Copies one field into dst (SASL_FIELD_MAX + 1 bytes) if it is valid. */
static int plain_field(const uint8_t *src, size_t len, bool may_be_empty,
		       char *dst, size_t *len_r)
{
	if ((len == 0 && !may_be_empty) || len > SASL_FIELD_MAX ||
	    !sasl_utf8_valid(src, len))
		return MF_ERROR;
	memcpy(dst, src, len);
	dst[len] = '\0';
	*len_r = len;
	return MF_OK;
}

int sasl_plain_parse(const uint8_t *msg, size_t len, struct sasl_plain *plain_r)
{
	const uint8_t *nul1, *nul2, *end = msg + len;

	memset(plain_r, 0, sizeof(*plain_r));
	nul1 = len > 0 ? memchr(msg, '\0', len) : NULL;
	if (nul1 == NULL)
		return MF_ERROR;
	nul2 = memchr(nul1 + 1, '\0', (size_t)(end - nul1 - 1));
	/* a third NUL would hide inside passwd: RFC 4616 forbids it */
	if (nul2 == NULL || memchr(nul2 + 1, '\0', (size_t)(end - nul2 - 1)) != NULL)
		return MF_ERROR;
	if (plain_field(msg, (size_t)(nul1 - msg), true,
			plain_r->authzid, &plain_r->authzid_len) != MF_OK ||
	    plain_field(nul1 + 1, (size_t)(nul2 - nul1 - 1), false,
			plain_r->authcid, &plain_r->authcid_len) != MF_OK ||
	    plain_field(nul2 + 1, (size_t)(end - nul2 - 1), false,
			plain_r->passwd, &plain_r->passwd_len) != MF_OK) {
		sasl_plain_wipe(plain_r);
		return MF_ERROR;
	}
	return MF_OK;
}

const char *sasl_login_prompt(enum sasl_login_step step)
{
	return step == SASL_LOGIN_USER ? "VXNlcm5hbWU6" : "UGFzc3dvcmQ6";
}

int sasl_login_decode(const char *b64, size_t b64_len,
		      char field[SASL_FIELD_MAX + 1], size_t *len_r)
{
	size_t n;

	if (sasl_b64_decode(b64, b64_len, (uint8_t *)field, SASL_FIELD_MAX,
			    &n) != MF_OK ||
	    n == 0 || memchr(field, '\0', n) != NULL ||
	    !sasl_utf8_valid((const uint8_t *)field, n)) {
		explicit_bzero(field, SASL_FIELD_MAX + 1);
		return MF_ERROR;
	}
	field[n] = '\0';
	*len_r = n;
	return MF_OK;
}
