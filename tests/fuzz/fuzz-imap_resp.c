/* libFuzzer target: migrate/imap_resp.c (the migration engine's IMAP
 * response tokenizer).
 *
 * Input: byte 0 seeds the chunking, byte 1 picks a line bound
 * (IMAP_RESP_LINE_MIN + 8 * byte) and byte 2 a literal bound (0: none,
 * else 16 * byte); the rest is the server's byte stream.
 *
 * The stream is tokenized once in one piece and once in random chunks
 * (empty ones included); both transcripts (every token, its text, its
 * depth, literal data and the final result) must hash the same. Each call
 * is checked: used <= len, MF_AGAIN consumes everything, no more than two
 * tokens in a row without progress, literal data points into the input
 * and adds up to the announced size, depths stay within bounds, token text
 * is NUL-terminated and no longer than the line bound. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap_resp.h"
#include "mf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct transcript {
	uint64_t hash;
	unsigned int tokens;
	int last_rc;
};

#define check(ok) check_at((ok), __LINE__)

static void check_at(int ok, int line)
{
	if (!ok) {
		fprintf(stderr, "fuzz-imap_resp: invariant at line %d failed\n", line);
		abort();
	}
}

static void mix(struct transcript *t, const void *buf, size_t len)
{
	const uint8_t *b = buf;

	for (size_t i = 0; i < len; i++) {
		t->hash ^= b[i];
		t->hash *= 0x100000001b3ULL;
	}
}

static void mix_num(struct transcript *t, uint64_t v)
{
	mix(t, &v, sizeof(v));
}

struct lit_track {
	uint64_t left;
	bool in;
};

static void on_token(struct transcript *t, const struct imap_resp *p,
		     const struct imap_tok *k, const uint8_t *chunk, size_t used,
		     struct lit_track *lt)
{
	check(k->depth <= IMAP_RESP_DEPTH_MAX);
	if (k->type == IMAP_TOK_LITERAL_DATA) {
		check(lt->in && k->len > 0 && k->len <= lt->left);
		check((const uint8_t *)k->text == chunk && k->len == used);
		lt->left -= k->len;
		/* Data chunks differ by chunking: hash the bytes only. */
		mix(t, k->text, k->len);
		return;
	}
	t->tokens++;
	mix_num(t, k->type);
	mix_num(t, k->kind);
	mix_num(t, k->depth);
	check(k->text != NULL && k->text[k->len] == '\0');
	check(k->len <= p->line_max);
	mix_num(t, k->len);
	mix(t, k->text, k->len);
	if (k->type == IMAP_TOK_LITERAL) {
		check(!lt->in);
		check(p->literal_max == 0 || k->lit_size <= p->literal_max);
		lt->in = true;
		lt->left = k->lit_size;
		mix_num(t, k->lit_size);
		mix_num(t, k->lit8);
	} else if (k->type == IMAP_TOK_LITERAL_END) {
		check(lt->in && lt->left == 0);
		lt->in = false;
	} else {
		check(!lt->in);
	}
	if (k->type == IMAP_TOK_ATOM || k->type == IMAP_TOK_QUOTED ||
	    k->type == IMAP_TOK_TEXT)
		check(memchr(k->text, '\0', k->len) == NULL &&
		      memchr(k->text, '\r', k->len) == NULL &&
		      memchr(k->text, '\n', k->len) == NULL);
}

static void run(struct transcript *t, const struct imap_resp_limits *lim,
		const uint8_t *s, size_t n, uint32_t seed, bool chunked)
{
	struct imap_resp p;
	struct lit_track lt = { 0 };
	size_t off = 0;
	unsigned int stall = 0;

	check(imap_resp_init(&p, lim) == MF_OK);
	for (unsigned int guard = 0; guard < 8 * n + 64; guard++) {
		size_t chunk = n - off, used = 0;
		struct imap_tok k;
		int rc;

		if (chunked) {
			seed = seed * 1103515245u + 12345u;
			switch ((seed >> 16) & 7) {
			case 0: chunk = 0; break;
			case 1: case 2: chunk = 1; break;
			case 3: chunk = 2 + ((seed >> 20) & 7); break;
			case 4: chunk = (seed >> 19) & 0x3ff; break;
			default: break;
			}
			if (chunk > n - off)
				chunk = n - off;
		}
		rc = imap_resp_next(&p, s + off, chunk, &used, &k);
		check(used <= chunk);
		check(rc == MF_OK || rc == MF_AGAIN || rc == MF_ERROR);
		if (rc == MF_ERROR) {
			check(p.err != NULL);
			/* Where it failed is not reported (used is 0). */
			check(used == 0);
			t->last_rc = rc;
			break;
		}
		if (rc == MF_AGAIN) {
			check(used == chunk);
			off += used;
			stall = 0;
			if (off == n) {
				t->last_rc = rc;
				break;
			}
			continue;
		}
		on_token(t, &p, &k, s + off, used, &lt);
		off += used;
		if (used > 0)
			stall = 0;
		else
			check(++stall < 3);
	}
	check(t->last_rc != 0);
	imap_resp_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct transcript a = { .hash = 0xcbf29ce484222325ULL };
	struct transcript b = { .hash = 0xcbf29ce484222325ULL };
	struct imap_resp_limits lim;

	if (size < 3)
		return 0;
	lim.line_max = IMAP_RESP_LINE_MIN + 8 * (size_t)data[1];
	lim.literal_max = 16 * (uint64_t)data[2];
	run(&a, &lim, data + 3, size - 3, 0, false);
	run(&b, &lim, data + 3, size - 3, (uint32_t)data[0] * 2654435761u, true);
	check(a.hash == b.hash && a.tokens == b.tokens && a.last_rc == b.last_rc);
	return 0;
}
