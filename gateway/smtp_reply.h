/* smtp_reply.h — parser for SMTP replies read from a backend, and the EHLO
 * reply helper.
 *
 * A reply is one or more lines "250-text" ... "250 text" (RFC 5321 §4.2.1).
 * The parser hands back one line per call, so the front end can relay or
 * inspect a 100-line EHLO reply without holding all of it: the reply is
 * complete when line_r->last is set. It checks that every line carries the
 * same code, bounds line length and line count, and extracts the enhanced
 * status code (RFC 3463, "2.1.0") when the line has one.
 *
 * Same buffer contract as smtp_parser.h: buf starts at the first unconsumed
 * byte; on MF_AGAIN keep buf[*used_r..len) and call again with more;
 * pointers in struct smtp_reply_line point into buf. The caller's buffer
 * must hold p->line_max bytes.
 *
 * A backend that sends a malformed reply is broken or hostile: errors are
 * final (every later call returns MF_ERROR again); the front end answers
 * its client 421 4.3.0 and closes both sides. A bare LF ends a line (the
 * default; the backend is a server we chose, and its replies are relayed
 * line by line with our own CRLF if the front end wants them normalised). */
#ifndef MF_SMTP_REPLY_H
#define MF_SMTP_REPLY_H

#include "line_scan.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_REPLY_LINE_MAX_DEFAULT 1000 /* with CRLF; RFC says 512 */
#define SMTP_REPLY_LINES_MAX_DEFAULT 100

enum smtp_reply_error {
	SMTP_RERR_NONE = 0,
	SMTP_RERR_LINE_TOO_LONG,
	SMTP_RERR_NUL,
	SMTP_RERR_BARE_CR,
	SMTP_RERR_BARE_LF,       /* only when !allow_bare_lf */
	SMTP_RERR_SYNTAX,        /* not "ddd", "ddd-..." or "ddd ..." */
	SMTP_RERR_CODE_MISMATCH, /* a later line's code differs */
	SMTP_RERR_TOO_MANY_LINES,
};

struct smtp_reply_line {
	unsigned int code;  /* 200..559: first digit 2-5, second 0-5 */
	bool last;          /* "ddd " or "ddd": the reply ends here */
	unsigned int index; /* 0 for the reply's first line */
	const uint8_t *raw; /* the line as received, terminator included */
	size_t raw_len;
	const uint8_t *text; /* after "ddd-" / "ddd ", without terminator */
	size_t text_len;
	bool has_enhanced;   /* text starts with class.subject.detail */
	unsigned int enh_class, enh_subject, enh_detail;
	const uint8_t *msg;  /* text after the enhanced code and its blank */
	size_t msg_len;
};

struct smtp_reply_parser {
	/* Settings; smtp_reply_parser_init() sets the defaults. */
	size_t line_max;
	unsigned int lines_max;
	bool allow_bare_lf;

	/* State, private. */
	enum smtp_reply_error error; /* sticky once set */
	unsigned int code;           /* of the reply in progress */
	unsigned int n_lines;        /* lines of it so far */
	struct line_scan scan;
};

void smtp_reply_parser_init(struct smtp_reply_parser *p);

/* Returns MF_OK with one line in *line_r, MF_AGAIN when no full line is
 * there yet, or MF_ERROR (*error_r set; final). *used_r ≤ len always; MF_OK
 * consumes at least one byte. After a line with last set the next line
 * starts a new reply (pipelined replies are fine). */
int smtp_reply_feed(struct smtp_reply_parser *p, const uint8_t *buf,
		    size_t len, size_t *used_r, struct smtp_reply_line *line_r,
		    enum smtp_reply_error *error_r);

const char *smtp_reply_error_str(enum smtp_reply_error e);

/* --- EHLO reply helper ------------------------------------------------ */

enum smtp_auth_mech {
	SMTP_AUTH_PLAIN = 1u << 0,
	SMTP_AUTH_LOGIN = 1u << 1,
	SMTP_AUTH_CRAM_MD5 = 1u << 2,
	SMTP_AUTH_XOAUTH2 = 1u << 3,
	SMTP_AUTH_OTHER = 1u << 4, /* anything else offered */
};

enum smtp_xclient_attr {
	SMTP_XCLIENT_NAME = 1u << 0,
	SMTP_XCLIENT_ADDR = 1u << 1,
	SMTP_XCLIENT_PORT = 1u << 2,
	SMTP_XCLIENT_PROTO = 1u << 3,
	SMTP_XCLIENT_HELO = 1u << 4,
	SMTP_XCLIENT_LOGIN = 1u << 5,
	SMTP_XCLIENT_DESTADDR = 1u << 6,
	SMTP_XCLIENT_DESTPORT = 1u << 7,
	SMTP_XCLIENT_OTHER = 1u << 8,
};

/* What a backend's EHLO reply offers. Zero-initialise, then give it each
 * line of one reply in order. */
struct smtp_ehlo {
	bool pipelining, eightbitmime, smtputf8, chunking, binarymime;
	bool starttls, dsn, enhancedstatuscodes;
	bool has_size;
	uint64_t size;         /* SIZE n; 0 when offered without a limit */
	bool has_auth;
	unsigned int auth;     /* enum smtp_auth_mech bits */
	bool has_xclient;
	unsigned int xclient;  /* enum smtp_xclient_attr bits */
	unsigned int n_unknown; /* keywords we do not know (passed through) */
};

/* Returns MF_OK, or MF_ERROR when the line is not part of a 250 reply (an
 * EHLO refused: the front end falls back to HELO or fails the backend).
 * The first line (the server's name) carries no keyword and is skipped. */
int smtp_ehlo_add_line(struct smtp_ehlo *e, const struct smtp_reply_line *line);

#endif
