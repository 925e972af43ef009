/* libFuzzer target: gateway/smtp_reply.c and the EHLO helper.
 *
 * Input: byte 0 picks the settings (bare LF, tiny limits) and the largest
 * chunk, bytes 1-4 seed the chunk sizes, the rest is what a backend sends.
 * Parsed once with as much buffered as the buffer holds and once in chunks;
 * both must give the same lines, the same final error and the same EHLO
 * summary. Also checked: *used_r ≤ len, MF_OK consumes the whole line, and
 * the parser decides before the caller's bounded buffer is full. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mf.h"
#include "smtp_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP SMTP_REPLY_LINE_MAX_DEFAULT

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n-- > 0)
		h = (h ^ *b++) * 0x100000001b3ULL;
	return h;
}

static uint64_t parse(uint8_t mode, uint32_t seed, const uint8_t *in,
		      size_t in_len, bool chunked)
{
	static uint8_t buf[CAP];
	struct smtp_reply_parser p;
	struct smtp_ehlo ehlo;
	size_t plen = 0, pos = 0, max_chunk = (size_t)(mode & 0x1f) + 1;
	uint64_t h = 0xcbf29ce484222325ULL;
	int ehlo_rc = MF_OK;

	memset(&ehlo, 0, sizeof(ehlo));
	smtp_reply_parser_init(&p);
	p.allow_bare_lf = (mode & 0x20) == 0;
	if (mode & 0x40)
		p.line_max = 16;
	if (mode & 0x80)
		p.lines_max = 3;
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
			struct smtp_reply_line l;
			enum smtp_reply_error e;
			size_t used;
			int rc = smtp_reply_feed(&p, buf, plen, &used, &l, &e);

			if (used > plen)
				abort();
			if (rc == MF_ERROR) {
				/* Final: the run ends with the error. */
				return fnv(h, &e, sizeof(e));
			}
			if (rc == MF_AGAIN)
				break;
			if (used == 0 || l.raw != buf || l.raw_len != used ||
			    l.text + l.text_len > buf + used ||
			    l.msg + l.msg_len != l.text + l.text_len)
				abort();
			{
				uint64_t v[8] = { l.code, l.last, l.index,
						  l.raw_len, l.has_enhanced,
						  l.enh_subject, l.enh_detail,
						  l.msg_len };

				h = fnv(h, v, sizeof(v));
				h = fnv(h, l.raw, l.raw_len);
			}
			if (ehlo_rc == MF_OK)
				ehlo_rc = smtp_ehlo_add_line(&ehlo, &l);
			memmove(buf, buf + used, plen - used);
			plen -= used;
		}
		if (plen >= CAP)
			abort();
		if (take == 0 && pos == in_len)
			break;
	}
	h = fnv(h, &ehlo, sizeof(ehlo));
	return fnv(h, &ehlo_rc, sizeof(ehlo_rc));
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
