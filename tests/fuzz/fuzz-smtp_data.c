/* libFuzzer target: gateway/smtp_data.c, the end-of-DATA scanner.
 *
 * Input: bytes 0-3 seed the chunk sizes, the rest is a client's stream
 * after DATA. Scanned whole and in random chunks, resuming after each
 * ambiguous end, up to the first real end: both must report the same
 * events at the same offsets. Also checked against a plain reference
 * search: the real end is the first CRLF "." CRLF (or a leading ".\r\n"),
 * and an ambiguous end is flagged only where a "." line ends in LF.
 * Then the same input as BDAT content: dot-stuffed (in chunks) and ended
 * with smtp_stuff_end(), it must scan to exactly its end, unambiguously,
 * and unstuff back to the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mf.h"
#include "smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t fnv(uint64_t h, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		h = (h ^ (v & 0xff)) * 0x100000001b3ULL;
	return h;
}

/* Returns a hash of the events; *end_r is the offset after the end (or
 * SIZE_MAX when none), *amb_r whether an ambiguous end came before it. */
static uint64_t run(uint32_t seed, const uint8_t *in, size_t len, bool chunked,
		    size_t *end_r, bool *amb_r)
{
	struct smtp_data_scan d;
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t pos = 0;

	smtp_data_init(&d);
	*end_r = SIZE_MAX;
	while (pos < len) {
		size_t take = len - pos, used;
		int rc;

		if (chunked) {
			seed = seed * 1103515245u + 12345u;
			take = 1 + (seed >> 16) % (take < 64 ? take : 64);
		}
		rc = smtp_data_scan(&d, in + pos, take, &used);
		if (used > take || (rc != MF_AGAIN && used == 0) || (rc == MF_AGAIN && used != take))
			abort();
		pos += used;
		if (rc == MF_AGAIN)
			continue;
		h = fnv(fnv(h, (uint64_t)rc), pos);
		if (rc == MF_OK) {
			*end_r = pos;
			break;
		}
	}
	if (d.octets != pos)
		abort();
	*amb_r = d.ambiguous;
	return h;
}

/* The first canonical end by a plain search. */
static size_t reference_end(const uint8_t *in, size_t len)
{
	if (len >= 3 && memcmp(in, ".\r\n", 3) == 0)
		return 3;
	for (size_t i = 0; i + 5 <= len; i++)
		if (memcmp(in + i, "\r\n.\r\n", 5) == 0)
			return i + 5;
	return SIZE_MAX;
}

/* Stuffs in (chunked by seed), appends the end, scans, unstuffs. */
static void stuff_roundtrip(uint32_t seed, const uint8_t *in, size_t len)
{
	static uint8_t out[2 * 65536 + 8], back[65536];
	struct smtp_stuff st;
	struct smtp_data_scan d;
	size_t n = 0, pos = 0, used, b = 0;
	const char *end;

	if (len > 65536)
		return;
	smtp_stuff_init(&st);
	while (pos < len) {
		size_t take;

		seed = seed * 1103515245u + 12345u;
		take = 1 + (seed >> 16) % 64;
		take = take < len - pos ? take : len - pos;
		n += smtp_stuff(&st, in + pos, take, out + n);
		pos += take;
	}
	end = smtp_stuff_end(&st);
	memcpy(out + n, end, strlen(end));
	n += strlen(end);
	smtp_data_init(&d);
	if (smtp_data_scan(&d, out, n, &used) != MF_OK || used != n || d.ambiguous)
		abort();
	/* Unstuff as a server does: drop a "." that starts a line (after LF)
	 * and the end marker; what is left is the input, plus the CRLF that
	 * smtp_stuff_end() added when the input did not end with one. */
	for (size_t i = 0, bol = 1; i < n - 3; i++) {
		if (bol && out[i] == '.') {
			bol = 0;
			continue;
		}
		back[b++] = out[i];
		bol = out[i] == '\n';
	}
	if (strcmp(end, ".\r\n") != 0)
		b -= 2;
	if (b != len || memcmp(back, in, len) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t seed;
	size_t e1, e2, ref;
	bool a1, a2;

	if (size < 4)
		return 0;
	memcpy(&seed, data, sizeof(seed));
	data += 4;
	size -= 4;
	if (run(seed, data, size, false, &e1, &a1) != run(seed, data, size, true, &e2, &a2) ||
	    e1 != e2 || a1 != a2)
		abort();
	stuff_roundtrip(seed, data, size);
	ref = reference_end(data, size);
	if (e1 != ref)
		abort();
	/* Without any LF that is not part of CRLF, nothing is ambiguous. */
	if (a1) {
		bool bare = false;

		for (size_t i = 0; i < e1 && i < size; i++)
			if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
				bare = true;
		if (!bare) {
			/* "\r\n.\n": the LF of the dot line is bare */
			abort();
		}
	}
	return 0;
}
