/* libFuzzer target: migrate/pop3_resp.c (the migration's POP3 responses).
 *
 * Input: byte 0 seeds the chunking and the output room (2..33 bytes),
 * byte 1 picks body_max (16 * byte, 0: the default); the rest is a server
 * stream read as a sequence of status lines and multi-line bodies (a body
 * after every +OK whose text starts with "b").
 *
 * The stream is parsed once in one piece (64 bytes of output room) and
 * once in random chunks with the small room; both transcripts (every
 * line, every body byte, every result) must hash the same. Each call is
 * checked: used <= len, output <= room, MF_AGAIN takes all input unless
 * the output is full, a status line fits the bound and holds no NUL, a
 * body never exceeds body_max. Each status line is also read as a UIDL
 * and a LIST listing line (pop3_uidl_line, pop3_list_line). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mf.h"
#include "pop3_resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(ok) check_at((ok), __LINE__)

static void check_at(int ok, int line)
{
	if (!ok) {
		fprintf(stderr, "fuzz-pop3_resp: invariant at line %d failed\n", line);
		abort();
	}
}

static void mix(uint64_t *h, const void *buf, size_t len)
{
	const uint8_t *b = buf;

	for (size_t i = 0; i < len; i++) {
		*h ^= b[i];
		*h *= 0x100000001b3ULL;
	}
}

/* Every line also read as a UIDL and a LIST listing line (the same
 * bounded lines the client splits a listing into): a UIDL taken is 1..70
 * bytes of 0x21..0x7e. */
static void listing_line(uint64_t *h, const char *line, size_t len)
{
	char uidl[POP3_UIDL_MAX + 1];
	uint64_t size;
	uint32_t n;

	if (pop3_uidl_line(line, len, &n, uidl) == MF_OK) {
		size_t ul = strlen(uidl);

		check(ul >= 1 && ul <= POP3_UIDL_MAX);
		for (size_t i = 0; i < ul; i++)
			check((unsigned char)uidl[i] >= 0x21 && (unsigned char)uidl[i] <= 0x7e);
		mix(h, &n, sizeof(n));
		mix(h, uidl, ul);
	}
	if (pop3_list_line(line, len, &n, &size) == MF_OK) {
		mix(h, &n, sizeof(n));
		mix(h, &size, sizeof(size));
	}
}

static uint64_t run(const uint8_t *in, size_t len, uint64_t body_max, uint32_t seed,
		    size_t room)
{
	struct pop3_resp p;
	uint64_t h = 0xcbf29ce484222325ULL, body_total = 0;
	size_t off = 0;
	bool in_body = false;
	uint8_t out[64];

	pop3_resp_init(&p, body_max);
	for (unsigned int guard = 0; guard < 1000000 && off <= len; guard++) {
		size_t n = len - off, used = 0, got = 0;
		int rc;

		if (seed != 0) {
			seed = seed * 1103515245u + 12345u;
			n = n < (seed >> 16) % 9 ? n : (seed >> 16) % 9;
		}
		if (in_body) {
			rc = pop3_resp_body(&p, in + off, n, &used, out, room, &got);
			check(got <= room);
			mix(&h, out, got);
			body_total += got;
			check(body_total <= (body_max ? body_max : UINT64_C(1) << 30));
		} else {
			rc = pop3_resp_status(&p, in + off, n, &used);
			if (rc == MF_OK) {
				size_t l = strlen(p.line);

				check(l + 2 <= POP3_RESP_LINE_MAX);
				mix(&h, p.line, l);
				listing_line(&h, p.line, l);
				mix(&h, &p.ok, sizeof(p.ok));
				in_body = p.ok && pop3_resp_text(&p)[0] == 'b';
				body_total = 0;
			}
		}
		check(used <= n);
		if (rc == MF_AGAIN && !in_body)
			check(used == n);
		off += used;
		if (in_body && rc == MF_OK) {
			mix(&h, "|end|", 5);
			in_body = false;
		}
		if (rc == MF_ERROR) {
			mix(&h, "|err|", 5);
			return h;
		}
		if (off == len && (rc == MF_AGAIN || n == 0) && (!in_body || got < room))
			break;
	}
	mix(&h, &in_body, sizeof(in_body));
	return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t body_max;
	size_t room;

	if (size < 2)
		return 0;
	body_max = (uint64_t)data[1] * 16;
	room = 2 + data[0] % 32;
	check(run(data + 2, size - 2, body_max, 0, 64) ==
	      run(data + 2, size - 2, body_max, 0x9e3779b9u ^ data[0], room));
	return 0;
}
