/* imap_frame.h — where an IMAP server's response stream stands: at a
 * response boundary, inside a line, or inside a literal (and how much of
 * it is left).
 *
 * The relay follows the server → client direction of IMAP sessions
 * relayed to the source with it, so that a cutover can end a session with
 * "* BYE [UNAVAILABLE]" where a response may begin (RFC 9051 7.1.5), and
 * close it plainly anywhere else: a BYE in the middle of a message would
 * corrupt what the client is reading. Bytes that pass by splice are never
 * seen: the relay splices only inside literals, at most their remaining
 * length (imap_frame_skip), so the lines around them are always fed.
 *
 * Grammar followed: a line ends at LF; a line whose last bytes before
 * its CRLF (or bare LF) are "{digits}" announces a literal of that many
 * octets (also "~{n}", RFC 3516), after which the same line goes on. That
 * is all a client needs to find where responses begin, and what any
 * client parser does. Constant state whatever the input; an announced
 * length over IMAP_FRAME_LITERAL_MAX makes the stream "lost" for good
 * (never again at a boundary), as does a splice outside a literal. */
#ifndef MF_IMAP_FRAME_H
#define MF_IMAP_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMAP_FRAME_LITERAL_MAX (UINT64_C(1) << 40)

enum imap_frame_state {
	IF_LINE_START = 0, /* a response may begin here */
	IF_LINE,           /* inside a line */
	IF_BRACE,          /* just after '{' */
	IF_DIGITS,         /* "{1", "{12", ... */
	IF_CLOSE,          /* "{12}" */
	IF_CLOSE_CR,       /* "{12}\r" */
	IF_LITERAL,        /* lit_left octets of a literal to come */
	IF_LOST,           /* framing unknown from here on */
};

struct imap_frame {
	uint64_t lit_left; /* IF_LITERAL: octets still to come, > 0 */
	uint64_t num;      /* IF_DIGITS, IF_CLOSE*: the length announced */
	uint8_t st;        /* enum imap_frame_state */
};

/* At a response boundary (what follows a greeting or a tagged reply). */
void imap_frame_init(struct imap_frame *f);

/* Follows n bytes of the server's stream. */
void imap_frame_feed(struct imap_frame *f, const uint8_t *p, size_t n);

/* n bytes went by unseen (spliced). Within the current literal they are
 * accounted for; anything else loses the framing. */
void imap_frame_skip(struct imap_frame *f, uint64_t n);

/* Bytes go by unseen from here on (a splice outside a literal). */
static inline void imap_frame_lose(struct imap_frame *f)
{
	f->st = IF_LOST;
}

static inline bool imap_frame_at_boundary(const struct imap_frame *f)
{
	return f->st == IF_LINE_START;
}

static inline bool imap_frame_lost(const struct imap_frame *f)
{
	return f->st == IF_LOST;
}

/* Octets of the current literal still to come; 0 outside a literal. */
static inline uint64_t imap_frame_literal_left(const struct imap_frame *f)
{
	return f->st == IF_LITERAL ? f->lit_left : 0;
}

#endif
