/* imap_resp.h — IMAP server response tokenizer for the migration engine.
 *
 * Turns the byte stream a server sends into a stream of tokens, one per
 * call: the start of a response (untagged "*", tagged, continuation "+"),
 * atoms, quoted strings (escapes undone), NIL, list parentheses, response
 * codes "[...]", literals {n} and literal8 ~{n}, the human text of a status
 * response, and the end of the response line. No assumption that the
 * server is Dovecot; nothing here touches a socket.
 *
 * Resumable byte by byte: the caller feeds whatever it received; the
 * parser consumes what it can (*used_r) and returns
 *   MF_OK     with one token in *tok_r (it may have consumed 0 bytes, e.g.
 *             a literal's end),
 *   MF_AGAIN  when all len bytes were consumed and more input is needed,
 *   MF_ERROR  on a protocol violation or a bound exceeded; p->err says why
 *             and every later call fails too (an IMAP stream cannot be
 *             resynchronised).
 *
 * A literal's bytes are never buffered: IMAP_TOK_LITERAL announces its
 * size, then IMAP_TOK_LITERAL_DATA tokens point into the caller's buffer
 * (text/len, at most what was fed), then IMAP_TOK_LITERAL_END. A 20 MiB
 * message costs the parser no memory at all.
 *
 * Bounds: bytes of one response line outside literals (line_max, which is
 * also the longest token), list nesting (IMAP_RESP_DEPTH_MAX), literal size
 * (literal_max). Token text (other than literal data) lives in the parser
 * and is valid until the next call; it is NUL-terminated but may hold NULs
 * only where the grammar allows them (never: atoms, quoted and text refuse
 * NUL, CR and LF). */
#ifndef MF_IMAP_RESP_H
#define MF_IMAP_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMAP_RESP_LINE_MAX_DEFAULT (64 * 1024)
#define IMAP_RESP_LINE_MIN 64
#define IMAP_RESP_DEPTH_MAX 32
#define IMAP_RESP_TAG_MAX 64

enum imap_tok_type {
	IMAP_TOK_START = 0,    /* a response begins: kind, text = tag ("*", "+") */
	IMAP_TOK_ATOM,         /* includes numbers and BODY[...]<...> */
	IMAP_TOK_QUOTED,       /* unescaped contents */
	IMAP_TOK_NIL,
	IMAP_TOK_LIST_BEGIN,   /* depth: the depth inside the list */
	IMAP_TOK_LIST_END,
	IMAP_TOK_CODE_BEGIN,   /* "[" of a status response's code */
	IMAP_TOK_CODE_END,
	IMAP_TOK_LITERAL,      /* lit_size, lit8 (~{n}) */
	IMAP_TOK_LITERAL_DATA, /* text/len point into the caller's buffer */
	IMAP_TOK_LITERAL_END,
	IMAP_TOK_TEXT,         /* resp-text (or a code's free text), not empty */
	IMAP_TOK_END           /* the response line ended (CRLF) */
};

enum imap_resp_kind {
	IMAP_KIND_UNTAGGED = 0,
	IMAP_KIND_TAGGED,
	IMAP_KIND_CONTINUE
};

struct imap_tok {
	enum imap_tok_type type;
	enum imap_resp_kind kind; /* of the response this token belongs to */
	const char *text;
	size_t len;
	uint64_t lit_size;
	bool lit8;
	unsigned int depth; /* list nesting of the token */
};

struct imap_resp_limits {
	size_t line_max;      /* 0: IMAP_RESP_LINE_MAX_DEFAULT */
	uint64_t literal_max; /* 0: no bound beyond 2^53 */
};

struct imap_resp {
	int state;
	enum imap_resp_kind kind;
	bool failed;
	bool in_code;        /* between "[" and "]" */
	bool code_tokens;    /* the code's arguments are tokens, not text */
	bool first_token;    /* the next token is the first after the tag */
	unsigned int depth;
	unsigned int code_depth;
	unsigned int bracket; /* "[" nesting inside an atom: BODY[...] */
	size_t line_len;
	size_t line_max;
	uint64_t literal_max;
	uint64_t lit_left;
	uint64_t lit_num;
	bool lit8;
	size_t tok_len;
	char *tok;            /* line_max + 1 bytes */
	const char *err;
};

/* MF_OK, or MF_ERROR when memory is short or limits is absurd. */
int imap_resp_init(struct imap_resp *p, const struct imap_resp_limits *limits);
void imap_resp_free(struct imap_resp *p);

/* See the top of this file. */
int imap_resp_next(struct imap_resp *p, const uint8_t *buf, size_t len,
		   size_t *used_r, struct imap_tok *tok_r);

/* "ATOM", "LITERAL_DATA", ... for logs and tests. */
const char *imap_tok_name(enum imap_tok_type t);

#endif
