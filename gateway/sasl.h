/* sasl.h — the SASL pieces every pre-auth front end shares: strict base64,
 * PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login) responses.
 *
 * Nothing here reads a socket or allocates. Decoded credentials live in
 * fixed buffers of the caller's struct so they can be wiped in one place:
 * the password of a login the source accepted is held in memory only and
 * wiped after use (DESIGN.md, "Credentials").
 */
#ifndef MF_SASL_H
#define MF_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 4616: each of authzid, authcid and passwd is at most 255 octets. */
#define SASL_FIELD_MAX 255

/* Characters base64 needs for n bytes, without the terminating NUL. */
size_t sasl_b64_encoded_len(size_t n);

/* Most bytes that n base64 characters can decode to. */
size_t sasl_b64_decoded_max(size_t n);

/* Writes the base64 of in (RFC 4648, padded) and a NUL into out.
 * Returns MF_OK with *out_len_r (without the NUL), or MF_ERROR when out
 * (out_size bytes) cannot hold sasl_b64_encoded_len(in_len) + 1. */
int sasl_b64_encode(const uint8_t *in, size_t in_len, char *out,
		    size_t out_size, size_t *out_len_r);

/* Decodes strict base64: length a multiple of 4, only the RFC 4648
 * alphabet, "=" only as the last one or two characters, and zero unused
 * bits (one canonical encoding per byte string, so a checker and a server
 * cannot disagree). No whitespace. "" decodes to zero bytes; SASL-IR's "="
 * (an empty initial response) is the front end's to recognise.
 * Returns MF_OK with *out_len_r, or MF_ERROR on bad input or when the result
 * would exceed out_size (nothing beyond out_size is written). On MF_ERROR,
 * out may hold partial output: wipe it if it was a credential. */
int sasl_b64_decode(const char *in, size_t in_len, uint8_t *out,
		    size_t out_size, size_t *out_len_r);

/* True when buf holds only well-formed UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). NUL is valid UTF-8: test apart. */
bool sasl_utf8_valid(const uint8_t *buf, size_t len);

/* A decoded PLAIN response; every string is NUL-terminated. */
struct sasl_plain {
	char authzid[SASL_FIELD_MAX + 1]; /* "" when absent */
	char authcid[SASL_FIELD_MAX + 1];
	char passwd[SASL_FIELD_MAX + 1];
	size_t authzid_len, authcid_len, passwd_len;
};

/* Parses message = [authzid] NUL authcid NUL passwd (already base64
 * decoded): exactly two NULs, authcid and passwd non-empty, each field at
 * most SASL_FIELD_MAX bytes of valid UTF-8. Returns MF_OK, or MF_ERROR with
 * *plain_r wiped. The caller calls sasl_plain_wipe() when done with it. */
int sasl_plain_parse(const uint8_t *msg, size_t len, struct sasl_plain *plain_r);

/* Overwrites every credential byte (explicit_bzero: not optimised away). */
void sasl_plain_wipe(struct sasl_plain *plain);

enum sasl_login_step {
	SASL_LOGIN_USER = 0, /* "Username:" is asked */
	SASL_LOGIN_PASS,     /* "Password:" is asked */
};

/* The base64 prompt for a step of AUTH=LOGIN ("VXNlcm5hbWU6" or
 * "UGFzc3dvcmQ6"); clients match these exact strings. */
const char *sasl_login_prompt(enum sasl_login_step step);

/* Decodes one base64 LOGIN response into field (NUL-terminated, room for
 * SASL_FIELD_MAX + 1 bytes): non-empty, at most SASL_FIELD_MAX bytes, no
 * NUL, valid UTF-8. Returns MF_OK with *len_r, or MF_ERROR with field
 * wiped. */
int sasl_login_decode(const char *b64, size_t b64_len,
		      char field[SASL_FIELD_MAX + 1], size_t *len_r);

#endif
