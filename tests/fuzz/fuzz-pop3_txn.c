/* libFuzzer target: gateway/pop3_txn_parse.c and gateway/uidl_map.c.
 *
 * Input: byte 0 seeds the chunk sizes, the rest is what a destination
 * sends after a listing's status line. The listing scanner must find the
 * same end whole and in chunks, never claim more than it was given; every
 * line of the input goes through the UIDL rewriter (listing and status
 * shape), whose output must be a bounded line with no CR or LF added. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mf.h"
#include "pop3_txn_parse.h"
#include "uidl_map.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct uidl_map map;
static bool map_ready;

static void map_init(void)
{
	struct uidl_pair *v = calloc(3, sizeof(*v));

	if (v == NULL)
		abort();
	strcpy(v[0].dst, "a");
	strcpy(v[0].src, "b");
	strcpy(v[1].dst, "00000001x");
	strcpy(v[1].src, "00000002x");
	strcpy(v[2].dst, "c");
	strcpy(v[2].src, "a");
	if (uidl_map_init(&map, v, 3) != MF_OK)
		abort();
	map_ready = true;
}

static void rewrite_lines(const uint8_t *in, size_t len)
{
	size_t start = 0;

	for (size_t i = 0; i <= len; i++) {
		char out[UIDL_LINE_MAX];
		size_t n = 0;

		if (i < len && in[i] != '\n')
			continue;
		for (int status = 0; status < 2; status++) {
			if (uidl_map_rewrite_line(&map, (const char *)in + start, i - start,
						  status, out, &n) != MF_OK)
				continue;
			if (n >= UIDL_LINE_MAX || out[n] != '\0')
				abort();
			if (memchr(out, '\r', n) != NULL &&
			    memchr(in + start, '\r', i - start) == NULL)
				abort();
			if (memchr(out, '\n', n) != NULL)
				abort();
		}
		start = i + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pop3_listing_scan a, b;
	size_t whole, chunked = 0, pos = 0;
	bool done_a = false, done_b = false;
	struct pop3_txn_cmd c;
	uint32_t seed;

	if (!map_ready)
		map_init();
	if (size < 1)
		return 0;
	seed = data[0];
	data++;
	size--;
	pop3_txn_classify(data, size < 255 ? size : 255, &c);
	if (c.listing && c.verb != PTV_UIDL && c.verb != PTV_LISTING)
		abort();
	pop3_listing_scan_init(&a);
	whole = pop3_listing_scan(&a, data, size, &done_a);
	if (whole > size || (whole < size && !done_a))
		abort();
	pop3_listing_scan_init(&b);
	while (pos < size && !done_b) {
		size_t take;

		seed = seed * 1103515245u + 12345u;
		take = 1 + (seed >> 16) % 64;
		if (take > size - pos)
			take = size - pos;
		{
			size_t used = pop3_listing_scan(&b, data + pos, take, &done_b);

			if (used > take || (used < take && !done_b))
				abort();
			chunked += used;
			pos += take;
		}
	}
	if (done_a != done_b || whole != chunked)
		abort();
	rewrite_lines(data, size);
	return 0;
}
