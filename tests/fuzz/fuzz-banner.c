/* libFuzzer target: gateway/banner.c's reader of a source's pre-login
 * conversation, fed through the backend line reader.
 *
 * Input: byte 0 picks the protocol (bit 0) and the largest chunk (bits
 * 1-5), the rest is what a source sends. Read once whole and once in
 * chunks: both must end in the same verdict and the same banner. Checked
 * too: the greeting text stays printable ASCII within BANNER_TEXT_MAX. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "banner.h"
#include "imap_backend.h"
#include "mf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum banner_next read_all(enum banner_proto proto, const uint8_t *in, size_t len,
				 size_t max_chunk, struct banner *b)
{
	static struct imap_line l;
	struct banner_reader r;
	enum banner_next next = BN_READ;
	size_t pos = 0;

	memset(b, 0, sizeof(*b));
	banner_reader_init(&r, b, proto);
	imap_line_init(&l);
	while (pos < len && (next == BN_READ || next == BN_SEND_CAPS)) {
		size_t take = len - pos < max_chunk ? len - pos : max_chunk, used = 0;
		int rc = imap_line_feed(&l, in + pos, take, &used);

		if (used > take)
			abort();
		pos += used;
		if (rc == MF_AGAIN)
			continue;
		if (rc == MF_ERROR)
			return BN_FAIL;
		next = banner_reader_line(&r, l.buf, l.len);
	}
	return next;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct banner whole, chunked;
	enum banner_proto proto;
	enum banner_next a, c;
	size_t n;

	if (size < 1)
		return 0;
	proto = (data[0] & 1) ? BP_POP3 : BP_IMAP;
	a = read_all(proto, data + 1, size - 1, size, &whole);
	c = read_all(proto, data + 1, size - 1, (size_t)((data[0] >> 1) & 0x1f) + 1, &chunked);
	if (a != c || whole.ok != chunked.ok || whole.caps != chunked.caps ||
	    strcmp(whole.text, chunked.text) != 0)
		abort();
	n = strlen(whole.text);
	if (n > BANNER_TEXT_MAX)
		abort();
	for (size_t i = 0; i < n; i++)
		if (whole.text[i] < 0x20 || whole.text[i] > 0x7e)
			abort();
	return 0;
}
