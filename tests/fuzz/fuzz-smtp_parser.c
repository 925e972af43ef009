/* libFuzzer target: gateway/smtp_parser.c.
 *
 * Input: byte 0 picks the settings (bare LF, a tiny line_max, AUTH
 * continuations) and the largest chunk, bytes 1-4 seed the chunk sizes,
 * the rest is what a client sends. The input is parsed
 * once with as much buffered as the session buffer holds and once in
 * chunks; both must give the same commands. Also checked: *used_r ≤ len,
 * MF_OK/MF_ERROR consume something, and the parser decides before the
 * caller's bounded buffer is full. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mf.h"
#include "smtp_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP 1024 /* the fuzz session's buffer; auth_line_max is set to it */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n-- > 0)
		h = (h ^ *b++) * 0x100000001b3ULL;
	return h;
}

static uint64_t fnv_field(uint64_t h, const uint8_t *p, size_t n)
{
	h = fnv(h, &n, sizeof(n));
	return p != NULL ? fnv(h, p, n) : h;
}

static uint64_t parse(uint8_t mode, uint32_t seed, const uint8_t *in,
		      size_t in_len, bool chunked)
{
	static uint8_t buf[CAP];
	struct smtp_parser p;
	size_t plen = 0, pos = 0, max_chunk = (size_t)(mode & 0x1f) + 1;
	uint64_t h = 0xcbf29ce484222325ULL;

	smtp_parser_init(&p);
	p.allow_bare_lf = (mode & 0x20) != 0;
	p.auth_line_max = CAP;
	if (mode & 0x40)
		p.line_max = 16; /* reach the overflow paths often */
	for (;;) {
		size_t take = in_len - pos;

		if (chunked) {
			size_t want;

			seed = seed * 1103515245u + 12345u;
			want = 1 + (seed >> 16) % max_chunk;
			take = take < want ? take : want;
		}
		take = take < CAP - plen ? take : CAP - plen;
		memcpy(buf + plen, in + pos, take);
		plen += take;
		pos += take;
		for (;;) {
			struct smtp_cmd c;
			size_t used;
			int rc = smtp_parser_feed(&p, buf, plen, &used, &c);

			if (used > plen)
				abort();
			if (rc != MF_AGAIN) {
				uint64_t v[12] = {
					(uint64_t)rc, c.type, c.error, c.resync,
					c.raw_len, c.line_len, c.n_params,
					c.has_size, c.size, c.body,
					c.bdat_size,
					(uint64_t)c.smtputf8 << 8 | c.bdat_last << 4 |
					c.path.null_path << 2 |
					c.path.postmaster << 1 | c.path.quoted_local,
				};
				unsigned int i;

				if (used == 0 || (c.raw != NULL &&
						  c.raw + c.raw_len != buf + used))
					abort();
				h = fnv(h, v, sizeof(v));
				h = fnv_field(h, c.raw, c.raw_len);
				h = fnv_field(h, c.name, c.name_len);
				h = fnv_field(h, c.arg, c.arg_len);
				h = fnv_field(h, c.arg2, c.arg2_len);
				h = fnv_field(h, c.path.addr, c.path.addr_len);
				h = fnv_field(h, c.path.local, c.path.local_len);
				h = fnv_field(h, c.path.domain, c.path.domain_len);
				for (i = 0; i < c.n_params; i++) {
					h = fnv_field(h, c.params[i].key,
						      c.params[i].key_len);
					h = fnv_field(h, c.params[i].value,
						      c.params[i].value_len);
				}
				if ((mode & 0x80) && rc == MF_OK &&
				    (c.type == SMTP_CMD_AUTH ||
				     c.type == SMTP_CMD_AUTH_DATA))
					smtp_parser_expect_auth_data(&p);
				if (rc == MF_OK && c.type == SMTP_CMD_AUTH)
					smtp_cmd_wipe(&c);
			}
			memmove(buf, buf + used, plen - used);
			plen -= used;
			if (rc == MF_AGAIN)
				break;
		}
		/* A full buffer with no decision would stall the session. */
		if (plen >= CAP)
			abort();
		if (take == 0 && pos == in_len)
			break;
	}
	return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t seed;

	if (size < 5)
		return 0;
	memcpy(&seed, data + 1, sizeof(seed));
	if (parse(data[0], seed, data + 5, size - 5, false) !=
	    parse(data[0], seed, data + 5, size - 5, true))
		abort();
	return 0;
}
