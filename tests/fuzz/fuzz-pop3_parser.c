/* libFuzzer target: gateway/pop3_parser.c.
 *
 * Input: byte 0 picks the settings and the largest chunk, bytes 1-4 seed
 * the chunk sizes, the rest is what a client sends. The input is parsed
 * once with as much buffered as the session buffer holds and once in
 * chunks; both must give the same commands. Also checked: *used_r ≤ len,
 * MF_OK/MF_ERROR consume something, and the parser decides before the
 * caller's bounded buffer is full. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mf.h"
#include "pop3_parser.h"

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
	struct pop3_parser p;
	size_t plen = 0, pos = 0, max_chunk = (size_t)(mode & 0x1f) + 1;
	uint64_t h = 0xcbf29ce484222325ULL;

	pop3_parser_init(&p);
	p.allow_bare_lf = (mode & 0x20) == 0;
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
			struct pop3_cmd c;
			size_t used;
			int rc = pop3_parser_feed(&p, buf, plen, &used, &c);

			if (used > plen)
				abort();
			if (rc != MF_AGAIN) {
				int v[5] = { rc, (int)c.type, (int)c.error,
					     c.resync, (int)c.raw_len };

				if (used == 0)
					abort();
				h = fnv(h, v, sizeof(v));
				h = fnv_field(h, c.line, c.line_len);
				h = fnv_field(h, c.name, c.name_len);
				h = fnv_field(h, c.arg, c.arg_len);
				h = fnv_field(h, c.arg2, c.arg2_len);
				if ((mode & 0x80) && rc == MF_OK &&
				    (c.type == POP3_CMD_AUTH ||
				     c.type == POP3_CMD_AUTH_DATA))
					pop3_parser_expect_auth_data(&p);
				if (rc == MF_OK && c.type == POP3_CMD_PASS)
					pop3_cmd_wipe(&c);
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
