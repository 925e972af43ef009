/* libFuzzer target: gateway/admin_proto.c — the admin socket's line
 * framer and request decoder.
 *
 * Input: byte 0 seeds the chunk sizes, the rest is what a client sends.
 * The input is framed once whole and once in chunks of 1..16 bytes; both
 * must give the same lines and the same decoded requests (a hash of
 * each), and every decoded request must be self-consistent: a known
 * command, a user only where one belongs, NUL-terminated within bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin_proto.h"
#include "mf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n-- > 0)
		h = (h ^ *b++) * 0x100000001b3ULL;
	return h;
}

static uint64_t on_line(uint64_t h, const struct admin_line *l)
{
	struct admin_request r;
	char err[128];
	size_t ulen;

	if (l->len > ADMIN_LINE_MAX || l->buf[l->len] != '\0')
		abort();
	h = fnv(h, l->buf, l->len);
	if (admin_request_parse(l->buf, l->len, &r, err, sizeof(err)) != MF_OK)
		return fnv(h, "E", 1);
	if ((unsigned int)r.cmd >= ADMIN_CMD_COUNT)
		abort();
	ulen = strnlen(r.user, sizeof(r.user));
	if (ulen == sizeof(r.user))
		abort();
	if ((ulen > 0) != (r.cmd == ADMIN_MIGRATE || r.cmd == ADMIN_PIN ||
			   r.cmd == ADMIN_RETRY || r.cmd == ADMIN_ROLLBACK))
		abort();
	h = fnv(h, &r.cmd, sizeof(r.cmd));
	return fnv(h, r.user, ulen);
}

static uint64_t frame(const uint8_t *in, size_t n, uint8_t seed, bool chunked)
{
	static struct admin_line l;
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t pos = 0;

	admin_line_init(&l);
	while (pos < n) {
		size_t want = chunked ? (size_t)((seed + pos) % 16) + 1 : n - pos, used = 0;
		int rc;

		if (want > n - pos)
			want = n - pos;
		rc = admin_line_feed(&l, (const char *)in + pos, want, &used);
		if (used > want)
			abort();
		pos += used;
		if (rc == ADMIN_LINE_DONE) {
			h = on_line(h, &l);
		} else if (rc == MF_ERROR) {
			return fnv(h, "X", 1); /* the server closes here */
		} else if (rc != MF_AGAIN || used != want) {
			abort();
		}
	}
	return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (frame(data + 1, size - 1, data[0], false) != frame(data + 1, size - 1, data[0], true))
		abort();
	return 0;
}
