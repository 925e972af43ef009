/* libFuzzer target: gateway/imap_frame.c.
 *
 * Input: byte 0 seeds the chunk sizes, the rest is a server's response
 * stream. Followed whole, byte by byte, and in chunks where every literal
 * met is partly "spliced" (imap_frame_skip, as the relay does), the
 * stream must end in one same state; a boundary is only ever right after
 * an LF, and a literal never claims more than the bound. */
#include <stdint.h>
#include <stdlib.h>

#include "imap_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const struct imap_frame *a, const struct imap_frame *b)
{
	if (a->st != b->st || imap_frame_literal_left(a) != imap_frame_literal_left(b))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_frame whole, bytes, chunks;
	unsigned int seed;
	size_t i;

	if (size < 1)
		return 0;
	seed = data[0];
	data++;
	size--;
	imap_frame_init(&whole);
	imap_frame_feed(&whole, data, size);

	imap_frame_init(&bytes);
	for (i = 0; i < size; i++) {
		imap_frame_feed(&bytes, data + i, 1);
		if (imap_frame_at_boundary(&bytes) && data[i] != '\n')
			abort();
		if (imap_frame_literal_left(&bytes) > IMAP_FRAME_LITERAL_MAX)
			abort();
	}
	same(&whole, &bytes);

	imap_frame_init(&chunks);
	for (i = 0; i < size;) {
		size_t n = 1 + (seed % 7), left = size - i;
		uint64_t lit = imap_frame_literal_left(&chunks);

		seed = seed * 1103515245u + 12345u;
		if (n > left)
			n = left;
		if (lit > 0 && (seed & 1)) {
			/* Splice part of the literal: never past its end. */
			uint64_t k = lit < n ? lit : n;

			imap_frame_skip(&chunks, k);
			i += (size_t)k;
			continue;
		}
		imap_frame_feed(&chunks, data + i, n);
		i += n;
	}
	same(&whole, &chunks);
	return 0;
}
