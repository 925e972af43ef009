/* libFuzzer target: gateway/imap_backend.c (the backend's side of pre-auth).
 *
 * Input: byte 0 seeds the chunking; byte 1 picks the LOGIN builder's
 * options (bit 0 literal_plus, bits 2..7 the tag length, 0..63); bytes 2
 * and 3 are the user and password lengths, taken from the start of the
 * rest; the rest is the backend's byte stream.
 *
 * The stream is read with imap_line_feed() once in one piece per call and
 * once in chunks (empty ones included); both transcripts (every line, its
 * end offset, its classification by imap_resp_parse()) must hash the same.
 * Each call is checked: used <= len, progress on every non-AGAIN result, a
 * returned line is at most IMAP_RESP_LINE_MAX bytes, NUL-free and equal to
 * the stream's bytes minus its CRLF, and an error is a NUL or an overlong
 * line. The LOGIN command is decoded back and must carry exactly the user
 * and password it was built from. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap_backend.h"
#include "mf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct transcript {
	uint64_t hash;
	unsigned int events;
	size_t partial; /* bytes of the unfinished last line */
	int last_rc;
};

/* A failed invariant names its line: the crash report alone does not. */
#define check(ok) check_at((ok), __LINE__)

static void check_at(int ok, int line)
{
	if (!ok) {
		fprintf(stderr, "fuzz-imap_backend: invariant at line %d failed\n", line);
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

static bool in_line(const char *p, const char *line, size_t len)
{
	return p >= line && p <= line + len;
}

/* Classifies a returned line and checks the pointers stay inside it. */
static void classify(struct transcript *t, const char *line, size_t len)
{
	static const char *const caps[] = { "IMAP4rev1", "LITERAL+", "STARTTLS", "ID" };
	struct imap_resp r;
	int rc = imap_resp_parse(line, len, &r);

	mix_num(t, (uint64_t)(rc + 10));
	check(r.text != NULL);
	if (rc != MF_OK)
		return;
	check(r.kind <= IMAP_RESP_TAGGED);
	check(r.status <= IMAP_ST_BYE);
	check(in_line(r.text, line, len));
	check(strlen(r.text) == len - (size_t)(r.text - line));
	if (r.kind == IMAP_RESP_TAGGED) {
		check(r.tag == line && r.tag_len > 0 && r.tag_len < len);
		check(line[r.tag_len] == ' ');
		check(memchr(line, ' ', r.tag_len) == NULL);
		check(r.status == IMAP_ST_OK || r.status == IMAP_ST_NO ||
		      r.status == IMAP_ST_BAD);
	} else {
		check(r.tag == NULL && r.tag_len == 0);
		if (r.kind == IMAP_RESP_CONTINUE)
			check(line[0] == '+' && r.status == IMAP_ST_OTHER);
		else
			check(line[0] == '*' && line[1] == ' ');
	}
	mix_num(t, r.kind);
	mix_num(t, r.status);
	mix_num(t, r.tag_len);
	mix_num(t, (uint64_t)(r.text - line));
	for (size_t i = 0; i < MF_ARRAY_LEN(caps); i++)
		mix_num(t, imap_resp_text_has_cap(r.text, caps[i]));
}

/* One result of imap_line_feed() at absolute offset off of the stream;
 * ls is where the current line started. Returns false to stop. */
static bool on_feed(struct transcript *t, const struct imap_line *l,
		    const uint8_t *s, size_t off, size_t avail, size_t *ls,
		    int rc, size_t used)
{
	size_t end = off + used;

	check(used <= avail);
	check(rc == MF_OK || rc == MF_AGAIN || rc == MF_ERROR);
	t->last_rc = rc;
	if (rc == MF_AGAIN) {
		check(used == avail);
		check(l->len == end - *ls);
		check(l->len <= IMAP_RESP_LINE_MAX + 1);
		return true;
	}
	check(used >= 1);
	t->events++;
	mix_num(t, (uint64_t)(rc + 10));
	mix_num(t, end);
	if (rc == MF_ERROR) {
		/* A NUL, or a byte beyond the bound that is not the line end. */
		check(s[end - 1] == '\0' ||
		      (end - 1 - *ls >= IMAP_RESP_LINE_MAX && s[end - 1] != '\n'));
		if (s[end - 1] != '\0' && end - 1 - *ls == IMAP_RESP_LINE_MAX)
			check(s[end - 1] != '\r');
		check(memchr(s + *ls, '\0', end - 1 - *ls) == NULL);
		return false;
	}
	/* The line is the stream's bytes up to LF, minus one CR before it. */
	check(s[end - 1] == '\n');
	check(l->len <= IMAP_RESP_LINE_MAX);
	check(l->buf[l->len] == '\0' && strlen(l->buf) == l->len);
	check(l->len == end - 1 - *ls || (l->len == end - 2 - *ls && s[end - 2] == '\r'));
	check(memcmp(l->buf, s + *ls, l->len) == 0);
	check(memchr(s + *ls, '\n', end - 1 - *ls) == NULL);
	mix_num(t, l->len);
	mix(t, l->buf, l->len);
	classify(t, l->buf, l->len);
	*ls = end;
	return true;
}

static struct imap_line line1, line2; /* 8 KiB each: not on the stack */

static void read_oneshot(struct transcript *t, const uint8_t *s, size_t n)
{
	size_t off = 0, ls = 0;

	imap_line_init(&line1);
	for (;;) {
		size_t used = 0;
		int rc = imap_line_feed(&line1, s + off, n - off, &used);

		if (!on_feed(t, &line1, s, off, n - off, &ls, rc, used))
			return;
		off += used;
		if (rc == MF_AGAIN)
			break;
	}
	check(off == n);
	t->partial = line1.len;
}

static void read_chunked(struct transcript *t, const uint8_t *s, size_t n, uint32_t seed)
{
	size_t off = 0, ls = 0;
	unsigned int empties = 0;

	imap_line_init(&line2);
	while (off < n || empties == 0) {
		size_t chunk, used = 0;
		int rc;

		seed = seed * 1103515245u + 12345u;
		switch ((seed >> 16) & 7) {
		case 0: chunk = 0; break;
		case 1: case 2: chunk = 1; break;
		case 3: chunk = 2 + ((seed >> 20) & 7); break;
		case 4: chunk = (seed >> 19) & 0x3ff; break;
		case 5: chunk = IMAP_RESP_LINE_MAX - 1 + ((seed >> 20) & 3); break;
		default: chunk = n - off; break;
		}
		if (chunk > n - off)
			chunk = n - off;
		if (chunk == 0)
			empties++;
		rc = imap_line_feed(&line2, s + off, chunk, &used);
		if (!on_feed(t, &line2, s, off, chunk, &ls, rc, used))
			return;
		off += used;
		/* A line ended mid-chunk: the rest of the chunk is fed next. */
		if (rc == MF_AGAIN && chunk == 0)
			check(used == 0);
	}
	check(off == n);
	/* As read_oneshot() ends: a last, empty feed after the last line. */
	{
		size_t used = 1;
		int rc = imap_line_feed(&line2, s + off, 0, &used);

		check(rc == MF_AGAIN && used == 0);
		on_feed(t, &line2, s, off, 0, &ls, rc, used);
	}
	t->partial = line2.len;
}

/* Reads a quoted string or a literal at *p; returns its length or -1. */
static long read_string(const char *b, size_t end, size_t *p, char *out, bool *literal_r,
			bool *plus_r)
{
	size_t i = *p, o = 0;

	if (i < end && b[i] == '"') {
		for (i++; i < end && b[i] != '"'; i++) {
			if (b[i] == '\\') {
				i++;
				check(i < end && (b[i] == '"' || b[i] == '\\'));
			}
			check(b[i] != '\r' && b[i] != '\n' && b[i] != '\0');
			check((unsigned char)b[i] < 0x80);
			out[o++] = b[i];
		}
		check(i < end);
		*p = i + 1;
		*literal_r = false;
		return (long)o;
	}
	if (i < end && b[i] == '{') {
		size_t n = 0;

		for (i++; i < end && b[i] >= '0' && b[i] <= '9'; i++)
			n = n * 10 + (size_t)(b[i] - '0');
		*plus_r = i < end && b[i] == '+';
		if (*plus_r)
			i++;
		check(i + 3 <= end && b[i] == '}' && b[i + 1] == '\r' && b[i + 2] == '\n');
		i += 3;
		check(n <= end - i);
		memcpy(out, b + i, n);
		*p = i + n;
		*literal_r = true;
		return (long)n;
	}
	return -1;
}

static void check_login(const uint8_t *data, size_t size, uint8_t opts, size_t ul, size_t pl)
{
	static struct imap_login_cmd cmd;
	char tag[64], user[IMAP_LOGIN_CMD_MAX], pass[IMAP_LOGIN_CMD_MAX];
	size_t tl = opts >> 2, p, end, hdr;
	bool lplus = opts & 1, lit_u = false, lit_p = false, plus_u = false, plus_p = false;
	const char *u = (const char *)data, *pw;
	bool valid;
	long n;
	int rc;

	if (ul > size)
		ul = size;
	if (pl > size - ul)
		pl = size - ul;
	pw = u + ul;
	memset(tag, 't', tl);
	tag[tl] = '\0';
	valid = tl >= 1 && tl <= 32 && ul >= 1 && pl >= 1 &&
		memchr(u, '\0', ul) == NULL && memchr(pw, '\0', pl) == NULL;
	rc = imap_login_build(tag, u, ul, pw, pl, lplus, &cmd);
	check(rc == (valid ? MF_OK : MF_ERROR));
	if (rc != MF_OK)
		return;
	check(cmd.n_seg == 1 || cmd.n_seg == 3);
	for (unsigned int i = 0; i < cmd.n_seg; i++)
		check(cmd.seg_end[i] > (i ? cmd.seg_end[i - 1] : 0));
	end = cmd.seg_end[cmd.n_seg - 1];
	check(end <= sizeof(cmd.buf));
	hdr = tl + strlen(" LOGIN ");
	check(memcmp(cmd.buf, tag, tl) == 0 && memcmp(cmd.buf + tl, " LOGIN ", 7) == 0);
	p = hdr;
	n = read_string(cmd.buf, end, &p, user, &lit_u, &plus_u);
	check(n == (long)ul && memcmp(user, u, ul) == 0);
	if (cmd.n_seg == 3)
		check(cmd.seg_end[0] == p - ul);
	check(p < end && cmd.buf[p] == ' ');
	p++;
	n = read_string(cmd.buf, end, &p, pass, &lit_p, &plus_p);
	check(n == (long)pl && memcmp(pass, pw, pl) == 0);
	if (cmd.n_seg == 3)
		check(cmd.seg_end[1] == p - pl);
	check(p + 2 == end && cmd.buf[p] == '\r' && cmd.buf[p + 1] == '\n');
	/* The form: {n+} with LITERAL+, else quoted when it can be, else {n}
	 * in three segments (the backend's "+" comes between them). */
	check(lit_u == lit_p);
	if (lplus)
		check(lit_u && plus_u && plus_p && cmd.n_seg == 1);
	else if (lit_u)
		check(!plus_u && !plus_p && cmd.n_seg == 3);
	else
		check(cmd.n_seg == 1);
	explicit_bzero(&cmd, sizeof(cmd));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct transcript a = { .hash = 0xcbf29ce484222325ULL };
	struct transcript b = { .hash = 0xcbf29ce484222325ULL };
	uint32_t seed;

	if (size < 4)
		return 0;
	seed = (uint32_t)data[0] * 2654435761u;
	check_login(data + 4, size - 4, data[1], data[2], data[3]);
	read_oneshot(&a, data + 4, size - 4);
	read_chunked(&b, data + 4, size - 4, seed);
	check(a.hash == b.hash && a.events == b.events && a.last_rc == b.last_rc);
	if (a.last_rc == MF_AGAIN)
		check(a.partial == b.partial);
	return 0;
}
