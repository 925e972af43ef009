/* libFuzzer target: gateway/imap_parser.c.
 *
 * Input: byte 0 picks the limits (small ones reach every bound quickly),
 * byte 1 seeds the chunking; the rest is the client's byte stream. It is
 * fed once in one piece per call and once in chunks, and both transcripts
 * (every command, error and continuation, with the offset where it
 * happened) must hash the same. Each call is checked: used <= len, progress
 * on every non-AGAIN result, nothing buffered beyond the limits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap_parser.h"
#include "mf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct transcript {
	uint64_t hash;
	unsigned int events;
	size_t consumed;
};

static void check(int ok)
{
	if (!ok)
		abort();
}

static void mix(struct transcript *t, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	size_t i;

	for (i = 0; i < len; i++) {
		t->hash ^= b[i];
		t->hash *= 0x100000001b3ULL;
	}
}

static void mix_num(struct transcript *t, uint64_t v)
{
	mix(t, &v, sizeof(v));
}

static void mix_str(struct transcript *t, const struct imap_parser *p,
		    const char *s, size_t len)
{
	mix_num(t, s != NULL);
	if (s == NULL)
		return;
	check(strlen(s) == len);
	mix_num(t, len);
	mix(t, s, len);
	(void)p;
}

static void mix_cmd(struct transcript *t, const struct imap_parser *p,
		    int rc, size_t end, const struct imap_cmd *c)
{
	unsigned int i;

	t->events++;
	mix_num(t, (uint64_t)(rc + 10));
	mix_num(t, end);
	mix_num(t, c->kind);
	mix_num(t, c->err);
	mix_num(t, c->must_close);
	mix_str(t, p, c->tag, c->tag_len);
	mix_str(t, p, c->name, c->name_len);
	mix_str(t, p, c->line, c->line_len);
	mix_num(t, c->n_args);
	check(c->n_args <= p->lim.max_args);
	for (i = 0; i < c->n_args; i++) {
		const struct imap_arg *a = &c->args[i];

		mix_num(t, a->type);
		mix_num(t, a->items);
		mix_num(t, a->span);
		mix_num(t, a->nonsync);
		mix_str(t, p, a->str, a->len);
		if (a->type == IMAP_ARG_LIST)
			check(i + a->span < c->n_args && a->items <= a->span);
	}
}

static void run(const struct imap_limits *lim, const uint8_t *in, size_t len,
		uint32_t seed, struct transcript *t)
{
	struct imap_parser p;
	struct imap_cmd cmd;
	size_t pos = 0, end, used;
	int rc;

	memset(t, 0, sizeof(*t));
	t->hash = 0xcbf29ce484222325ULL;
	check(imap_parser_init(&p, lim) == MF_OK);
	while (pos < len) {
		if (seed == 0) {
			end = len;
		} else {
			seed = seed * 1103515245u + 12345u;
			end = pos + 1 + (seed >> 16) % ((seed >> 8 & 1) ? 4 : 64);
			if (end > len)
				end = len;
		}
		while (pos < end) {
			rc = imap_parser_feed(&p, in + pos, end - pos, &used, &cmd);
			check(used <= end - pos);
			check(p.arena_len <= lim->max_line + lim->max_literal);
			check(p.line_len <= lim->max_line + 1);
			check(p.lit_total <= lim->max_literal);
			pos += used;
			if (rc == MF_AGAIN) {
				if (!imap_parser_continuation_due(&p)) {
					check(pos == end);
					break;
				}
				check(used > 0);
				t->events++;
				mix_num(t, 99);
				mix_num(t, pos);
				continue;
			}
			check(rc == MF_OK || rc == MF_ERROR);
			if (rc == MF_ERROR && used == 0) {
				check(cmd.must_close);
				goto out;
			}
			check(used > 0);
			mix_cmd(t, &p, rc, pos, &cmd);
			if (rc == MF_ERROR) {
				check(cmd.err != IMAP_ERR_NONE);
				if (cmd.must_close)
					goto out;
				continue;
			}
			/* arm the SASL line mode the way a front end would */
			if ((cmd.kind == IMAP_CMD_AUTHENTICATE && cmd.n_args == 1) ||
			    (cmd.kind == IMAP_CMD_SASL_LINE && cmd.line_len > 0 &&
			     cmd.line[0] == 'L'))
				check(imap_parser_expect_sasl_line(&p) == MF_OK);
			if (cmd.kind == IMAP_CMD_LOGIN)
				imap_parser_wipe(&p);
		}
	}
out:
	t->consumed = pos;
	imap_parser_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_limits lim;
	struct transcript whole, split;
	uint32_t seed;

	if (size < 2)
		return 0;
	imap_limits_get_default(&lim);
	if (data[0] & 1) {
		lim.max_line = 16 + data[0] % 64;
		lim.max_literal = data[0] % 32;
		lim.max_nonsync = (data[0] & 4) ? lim.max_literal : lim.max_literal / 2;
		lim.max_args = 1 + data[0] % 9;
		lim.max_depth = 1 + (data[0] >> 4) % IMAP_DEPTH_MAX;
	}
	lim.utf8 = (data[0] & 2) != 0;
	seed = (uint32_t)data[1] * 2654435761u | 1;
	run(&lim, data + 2, size - 2, 0, &whole);
	run(&lim, data + 2, size - 2, seed, &split);
	check(whole.hash == split.hash);
	check(whole.events == split.events);
	check(whole.consumed == split.consumed);
	return 0;
}
