/* Unit tests: migrate/imap_resp.c — the IMAP response tokenizer. Every
 * input is fed whole and in chunks of 1, 2, 3, 7 and 64 bytes; the token
 * transcripts must be identical. Hostile inputs must fail at any chunking. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap_resp.h"
#include "mf.h"

#define OUT_MAX 8192

struct run {
	char out[OUT_MAX];
	int rc;           /* MF_AGAIN at the end of the input, or MF_ERROR */
	const char *err;
	uint64_t lit_bytes;
};

static void out_add(struct run *r, const char *s, size_t n)
{
	size_t used = strlen(r->out);

	if (n > OUT_MAX - 1 - used)
		n = OUT_MAX - 1 - used;
	memcpy(r->out + used, s, n);
	r->out[used + n] = '\0';
}

/* Renders one token: "S*" "A:x" "Q:x" "N" "(" ")" "[" "]" "L5" "D:..."
 * (consecutive data chunks merged) "LE" "T:x" "E", joined by '|'. */
static void render(struct run *r, const struct imap_tok *t, bool *in_data)
{
	char tmp[64];

	if (t->type == IMAP_TOK_LITERAL_DATA) {
		if (!*in_data)
			out_add(r, "D:", 2);
		*in_data = true;
		if (r->lit_bytes < 256)
			out_add(r, t->text, t->len < 256 - r->lit_bytes ?
					    t->len : 256 - r->lit_bytes);
		r->lit_bytes += t->len;
		return;
	}
	if (*in_data)
		out_add(r, "|", 1);
	*in_data = false;
	switch (t->type) {
	case IMAP_TOK_START:
		snprintf(tmp, sizeof(tmp), "S%s", t->text);
		out_add(r, tmp, strlen(tmp));
		break;
	case IMAP_TOK_ATOM: out_add(r, "A:", 2); out_add(r, t->text, t->len); break;
	case IMAP_TOK_QUOTED: out_add(r, "Q:", 2); out_add(r, t->text, t->len); break;
	case IMAP_TOK_TEXT: out_add(r, "T:", 2); out_add(r, t->text, t->len); break;
	case IMAP_TOK_NIL: out_add(r, "N", 1); break;
	case IMAP_TOK_LIST_BEGIN: out_add(r, "(", 1); break;
	case IMAP_TOK_LIST_END: out_add(r, ")", 1); break;
	case IMAP_TOK_CODE_BEGIN: out_add(r, "[", 1); break;
	case IMAP_TOK_CODE_END: out_add(r, "]", 1); break;
	case IMAP_TOK_LITERAL:
		snprintf(tmp, sizeof(tmp), "%s%llu", t->lit8 ? "L8:" : "L",
			 (unsigned long long)t->lit_size);
		out_add(r, tmp, strlen(tmp));
		break;
	case IMAP_TOK_LITERAL_END: out_add(r, "LE", 2); break;
	case IMAP_TOK_END: out_add(r, "E", 1); break;
	default: out_add(r, "?", 1); break;
	}
	if (t->type != IMAP_TOK_END)
		out_add(r, "|", 1);
	else
		out_add(r, "\n", 1);
}

static void feed(const char *in, size_t len, size_t step,
		 const struct imap_resp_limits *lim, struct run *r)
{
	struct imap_resp p;
	size_t pos = 0;
	bool in_data = false;
	unsigned int stall = 0;

	memset(r, 0, sizeof(*r));
	assert_int_equal(imap_resp_init(&p, lim), MF_OK);
	r->rc = MF_AGAIN;
	while (pos <= len) {
		size_t n = len - pos < step ? len - pos : step, used = 99;
		struct imap_tok t;
		int rc = imap_resp_next(&p, (const uint8_t *)in + pos, n, &used, &t);

		assert_true(used <= n);
		pos += used;
		if (rc == MF_ERROR) {
			r->rc = MF_ERROR;
			r->err = p.err;
			/* sticky */
			assert_int_equal(imap_resp_next(&p, (const uint8_t *)"x", 1, &used, &t),
					 MF_ERROR);
			break;
		}
		if (rc == MF_AGAIN) {
			assert_int_equal(used, n);
			stall = 0;
			if (pos == len)
				break;
			continue;
		}
		/* A token may end at a byte it leaves for the next (an atom
		 * before ")"), but never twice in a row without progress. */
		if (used != 0)
			stall = 0;
		else if (++stall >= 3)
			fail_msg("no progress at %zu: %s", pos, imap_tok_name(t.type));
		assert_true(t.type == IMAP_TOK_LITERAL_DATA || t.text == NULL ||
			    t.text[t.len] == '\0');
		render(r, &t, &in_data);
	}
	imap_resp_free(&p);
}

/* Feeds at every chunking; all transcripts must equal the whole one. */
static void check_all(const char *in, const struct imap_resp_limits *lim, struct run *ref)
{
	static const size_t steps[] = { 1, 2, 3, 7, 64 };
	size_t len = strlen(in);
	struct run *r = malloc(sizeof(*r));

	feed(in, len, len + 1, lim, ref);
	for (size_t i = 0; i < MF_ARRAY_LEN(steps); i++) {
		feed(in, len, steps[i], lim, r);
		assert_string_equal(r->out, ref->out);
		assert_int_equal(r->rc, ref->rc);
	}
	free(r);
}

static void expect(const char *in, const char *want)
{
	struct run *ref = malloc(sizeof(*ref));

	check_all(in, NULL, ref);
	if (ref->rc != MF_AGAIN)
		fprintf(stderr, "error: %s\n", ref->err);
	assert_int_equal(ref->rc, MF_AGAIN);
	assert_string_equal(ref->out, want);
	free(ref);
}

static void expect_error(const char *in, const struct imap_resp_limits *lim)
{
	struct run *ref = malloc(sizeof(*ref));

	check_all(in, lim, ref);
	if (ref->rc != MF_ERROR)
		fprintf(stderr, "accepted: %s -> %s\n", in, ref->out);
	assert_int_equal(ref->rc, MF_ERROR);
	assert_non_null(ref->err);
	free(ref);
}

static void test_status(void **state)
{
	(void)state;
	expect("* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] Dovecot ready.\r\n",
	       "S*|A:OK|[|A:CAPABILITY|A:IMAP4rev1|A:LITERAL+|A:AUTH=PLAIN|]|T:Dovecot ready.|E\n");
	expect("a1 OK [APPENDUID 1700000000 5:9,12] Append completed.\r\n",
	       "Sa1|A:OK|[|A:APPENDUID|A:1700000000|A:5:9,12|]|T:Append completed.|E\n");
	expect("* OK [PERMANENTFLAGS (\\Answered \\Seen $Forwarded \\*)] Flags\r\n",
	       "S*|A:OK|[|A:PERMANENTFLAGS|(|A:\\Answered|A:\\Seen|A:$Forwarded|A:\\*|)|]|T:Flags|E\n");
	expect("x NO [ALERT] quota \"exceeded\r\n", "Sx|A:NO|[|A:ALERT|]|T:quota \"exceeded|E\n");
	expect("* OK [REFERRAL imap://h/x\"] moved\r\n",
	       "S*|A:OK|[|A:REFERRAL|T:imap://h/x\"|]|T:moved|E\n");
	expect("* BYE\r\n* ok\n", "S*|A:BYE|E\nS*|A:ok|E\n");
	expect("t BAD [PARSE]\r\n", "St|A:BAD|[|A:PARSE|]|E\n");
	expect("+ go ahead\r\n+\r\n+ \r\n", "S+|T:go ahead|E\nS+|E\nS+|E\n");
	expect("* OK  [not a code]\r\n", "S*|A:OK|T: [not a code]|E\n");
	/* The "*" of the greeting's code is part of the status text. */
	expect("* PREAUTH [UIDNEXT 7] x ] y\r\n", "S*|A:PREAUTH|[|A:UIDNEXT|A:7|]|T:x ] y|E\n");
	(void)0;
}

static void test_data(void **state)
{
	(void)state;
	expect("* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent \\\"x\\\\y\"\r\n",
	       "S*|A:LIST|(|A:\\HasNoChildren|A:\\Sent|)|Q:/|Q:Sent \"x\\y|E\n");
	expect("* LIST () NIL {5}\r\nIN\r\nX\r\n",
	       "S*|A:LIST|(|)|N|L5|D:IN\r\nX|LE|E\n");
	expect("* LSUB () \".\" &AMk-t&AOk-\r\n", "S*|A:LSUB|(|)|Q:.|A:&AMk-t&AOk-|E\n");
	expect("* 12 EXISTS\r\n* 3 EXPUNGE\r\n", "S*|A:12|A:EXISTS|E\nS*|A:3|A:EXPUNGE|E\n");
	expect("* 1 FETCH (UID 4 FLAGS (\\Seen $x) INTERNALDATE \"01-Jan-2020 10:00:00 +0100\" "
	       "RFC822.SIZE 3 BODY[] {3}\r\nabc)\r\n",
	       "S*|A:1|A:FETCH|(|A:UID|A:4|A:FLAGS|(|A:\\Seen|A:$x|)|A:INTERNALDATE|"
	       "Q:01-Jan-2020 10:00:00 +0100|A:RFC822.SIZE|A:3|A:BODY[]|L3|D:abc|LE|)|E\n");
	expect("* 2 FETCH (BODY[HEADER.FIELDS (FROM \"TO\")]<0> {0}\r\n BINARY[1] ~{2}\r\n\x01\xff)\r\n",
	       "S*|A:2|A:FETCH|(|A:BODY[HEADER.FIELDS (FROM \"TO\")]<0>|L0|LE|A:BINARY[1]|L8:2|D:\x01\xff|LE|)|E\n");
	expect("* STATUS {3}\r\n\"a\" (MESSAGES 0)\r\n",
	       "S*|A:STATUS|L3|D:\"a\"|LE|(|A:MESSAGES|A:0|)|E\n");
	expect("* SEARCH\r\n* FLAGS ()\r\n", "S*|A:SEARCH|E\nS*|A:FLAGS|(|)|E\n");
	expect("* 1 FETCH (BODY[] {4}\r\n\xe9t\xe9\n)\r\n",
	       "S*|A:1|A:FETCH|(|A:BODY[]|L4|D:\xe9t\xe9\n|LE|)|E\n");
	/* Nested lists, NIL as an element, 8-bit in a quoted string. */
	expect("* X ((NIL (\"\xc3\xa9\" nil)) ())\r\n",
	       "S*|A:X|(|(|N|(|Q:\xc3\xa9|N|)|)|(|)|)|E\n");
	/* A response begun but not finished is not an error. */
	expect("* 1 FETCH (BODY[] {10}\r\nabc", "S*|A:1|A:FETCH|(|A:BODY[]|L10|D:abc");
}

/* Literal data with a NUL in it (binary) is passed through exactly. */
static void test_binary_literal(void **state)
{
	static const char in[] = "* 1 FETCH (BINARY[] ~{4}\r\n\0\r\n\0)\r\n";
	struct imap_resp p;
	size_t pos = 0, data = 0, len = sizeof(in) - 1;
	char got[4];

	(void)state;
	assert_int_equal(imap_resp_init(&p, NULL), MF_OK);
	while (pos < len) {
		struct imap_tok t;
		size_t used;
		int rc = imap_resp_next(&p, (const uint8_t *)in + pos, 1, &used, &t);

		assert_int_not_equal(rc, MF_ERROR);
		pos += used;
		if (rc == MF_OK && t.type == IMAP_TOK_LITERAL_DATA) {
			assert_true(data + t.len <= 4);
			memcpy(got + data, t.text, t.len);
			data += t.len;
		}
	}
	assert_int_equal(data, 4);
	assert_memory_equal(got, "\0\r\n\0", 4);
	imap_resp_free(&p);
}

static void test_hostile(void **state)
{
	static const char *const bad[] = {
		"\r\n",                         /* empty line */
		" OK\r\n",                      /* empty tag */
		"*\r\n",                        /* nothing after * */
		"a1\r\n",                       /* nothing after the tag */
		"a+b OK\r\n",                   /* bad tag */
		"a(b OK\r\n",
		"* \r\n",
		"* LIST (a\r\n",                /* unclosed list */
		"* LIST a)\r\n",                /* unbalanced */
		"* X \"abc\r\n",                /* CR in quoted */
		"* X \"a\\b\"\r\n",             /* bad escape */
		"* X {3x}\r\nabc\r\n",          /* bad literal size */
		"* X {}\r\n\r\n",
		"* X {3+}\r\nabc\r\n",          /* LITERAL+ from a server */
		"* X {3}abc\r\n",               /* no CRLF after size */
		"* X {99999999999999999999}\r\n",
		"* X {123456789012345678901}\r\n",
		"* X ~[3]\r\n",
		"* X ]\r\n",
		"* X a]b\r\n",
		"* OK [CAPABILITY IMAP4 (x]\r\n", /* ] inside a code's list */
		"* OK [CAPABILITY x\r\n",       /* unclosed code */
		"* OK [ALERT x\r\n",
		"* OK []\r\n",
		"* OK [A[B] x\r\n",
		"* OK\x01[ALERT]\r\n",          /* no SP after status */
		"* X BODY[1\r\n",               /* unclosed [ in an atom */
		"* X \x01\r\n",
		"* X a\rb\r\n",                 /* CR not before LF */
		"* OK te\0xt\r\n",              /* NUL in text (strlen stops it: see below) */
	};

	(void)state;
	for (size_t i = 0; i < MF_ARRAY_LEN(bad) - 1; i++)
		expect_error(bad[i], NULL);
	/* Inputs with NUL bytes: fed with their real length. */
	{
		static const char nul_text[] = "* OK te\0xt\r\n";
		static const char nul_quoted[] = "* X \"a\0\"\r\n";
		static const char nul_atom[] = "* X a\0b\r\n";
		static const char nul_tag[] = "a\0 OK\r\n";
		const char *ins[] = { nul_text, nul_quoted, nul_atom, nul_tag };
		const size_t lens[] = { sizeof(nul_text) - 1, sizeof(nul_quoted) - 1,
					sizeof(nul_atom) - 1, sizeof(nul_tag) - 1 };

		for (size_t i = 0; i < MF_ARRAY_LEN(ins); i++) {
			struct run r;

			for (size_t step = 1; step <= lens[i]; step++) {
				feed(ins[i], lens[i], step, NULL, &r);
				assert_int_equal(r.rc, MF_ERROR);
			}
		}
	}
	/* A tagged response that is not a status is still tokenized (the
	 * client rejects it); a status word only counts first. */
	expect("* 1 OK (a)\r\n", "S*|A:1|A:OK|(|A:a|)|E\n");
}

static void test_bounds(void **state)
{
	struct imap_resp_limits lim = { .line_max = 100, .literal_max = 1000 };
	char buf[512], deep[IMAP_RESP_DEPTH_MAX * 2 + 16];
	struct run *r = malloc(sizeof(*r));
	size_t n;

	(void)state;
	/* Line bound: 100 bytes outside literals; literals do not count. */
	n = (size_t)snprintf(buf, sizeof(buf), "* X %090d\r\n", 1);
	check_all(buf, &lim, r);
	assert_int_equal(r->rc, MF_AGAIN);
	n = (size_t)snprintf(buf, sizeof(buf), "* X %0100d\r\n", 1);
	expect_error(buf, &lim);
	n = (size_t)snprintf(buf, sizeof(buf), "* OK %0100d\r\n", 1);
	expect_error(buf, &lim);
	n = (size_t)snprintf(buf, sizeof(buf), "* X \"%0100d\"\r\n", 1);
	expect_error(buf, &lim);
	n = (size_t)snprintf(buf, sizeof(buf), "* X {400}\r\n%0400d\r\n", 1);
	check_all(buf, &lim, r);
	assert_int_equal(r->rc, MF_AGAIN);
	assert_int_equal(r->lit_bytes, 400);
	/* The counter restarts at each line. */
	n = (size_t)snprintf(buf, sizeof(buf), "* X %080d\r\n* Y %080d\r\n", 1, 2);
	check_all(buf, &lim, r);
	assert_int_equal(r->rc, MF_AGAIN);
	/* Literal bound. */
	expect_error("* X {1001}\r\n", &lim);
	check_all("* X {1000}\r\n", &lim, r);
	assert_int_equal(r->rc, MF_AGAIN);
	/* Nesting: IMAP_RESP_DEPTH_MAX lists fine, one more is not. */
	n = 0;
	n += (size_t)snprintf(deep + n, sizeof(deep) - n, "* X ");
	for (int i = 0; i < IMAP_RESP_DEPTH_MAX; i++)
		deep[n++] = '(';
	for (int i = 0; i < IMAP_RESP_DEPTH_MAX; i++)
		deep[n++] = ')';
	memcpy(deep + n, "\r\n", 3);
	check_all(deep, NULL, r);
	assert_int_equal(r->rc, MF_AGAIN);
	n = (size_t)snprintf(deep, sizeof(deep), "* X ");
	for (int i = 0; i <= IMAP_RESP_DEPTH_MAX; i++)
		deep[n++] = '(';
	deep[n] = '\0';
	expect_error(deep, NULL);
	/* Absurd limits are refused. */
	{
		struct imap_resp p;
		struct imap_resp_limits tiny = { .line_max = 10 };

		assert_int_equal(imap_resp_init(&p, &tiny), MF_ERROR);
	}
	free(r);
}

/* A 20 MiB literal streams through in the caller's chunks: the parser
 * hands out pointers into the input and never holds the message. */
static void test_big_literal(void **state)
{
	const size_t big = 20u << 20, chunk = 65536;
	const char *head = "* 1 FETCH (UID 9 BODY[] {20971520}\r\n";
	uint8_t *buf = malloc(chunk);
	struct imap_resp p;
	size_t fed = 0, data = 0;
	uint64_t sum = 0, want = 0;
	int ends = 0;

	(void)state;
	assert_int_equal(imap_resp_init(&p, NULL), MF_OK);
	{
		size_t pos = 0, len = strlen(head);

		while (pos < len) {
			struct imap_tok t;
			size_t used;

			assert_int_not_equal(imap_resp_next(&p, (const uint8_t *)head + pos,
							    len - pos, &used, &t), MF_ERROR);
			pos += used;
		}
	}
	while (fed < big + 3) {
		size_t n = chunk, pos = 0;

		for (size_t i = 0; i < n; i++) {
			size_t off = fed + i;

			buf[i] = off < big ? (uint8_t)(off * 7 + off / 251) :
				 (uint8_t)")\r\n"[off - big];
			if (off < big)
				want += buf[i];
			if (off == big + 2) {
				n = i + 1;
				break;
			}
		}
		while (pos < n) {
			struct imap_tok t;
			size_t used;
			int rc = imap_resp_next(&p, buf + pos, n - pos, &used, &t);

			assert_int_not_equal(rc, MF_ERROR);
			if (rc == MF_AGAIN)
				break;
			pos += used;
			if (t.type == IMAP_TOK_LITERAL_DATA) {
				assert_ptr_equal(t.text, (const char *)buf + pos - used);
				for (size_t i = 0; i < t.len; i++)
					sum += (uint8_t)t.text[i];
				data += t.len;
			} else if (t.type == IMAP_TOK_END) {
				ends++;
			}
		}
		fed += n;
	}
	assert_int_equal(data, big);
	assert_true(sum == want);
	assert_int_equal(ends, 1);
	imap_resp_free(&p);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_data),
		cmocka_unit_test(test_binary_literal),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_big_literal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
