/* pop3_resp.h — what a POP3 server sends the migration's POP3 client
 * (RFC 1939, RFC 2449): status lines and multi-line bodies.
 *
 * Parsers never touch sockets: they consume the caller's buffer in place,
 * resume byte by byte, and are bounded: a status line is at most
 * POP3_RESP_LINE_MAX bytes with its CRLF, a body at most the body_max
 * given to pop3_resp_init() after dot-unstuffing. A body is handed out
 * unstuffed in the caller's chunks (a 50 MiB message is never held), and
 * ends at the line "." (CRLF, or a bare LF from sloppy servers). Results:
 * MF_OK complete, MF_AGAIN more input (or output room) needed, MF_ERROR
 * with p->err. */
#ifndef MF_POP3_RESP_H
#define MF_POP3_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POP3_RESP_LINE_MAX 512  /* a status or listing line, CRLF included */
#define POP3_UIDL_MAX 70        /* RFC 1939: 1 to 70 characters 0x21..0x7e */

struct pop3_resp {
	uint8_t state;                 /* enum in pop3_resp.c */
	bool ok;                       /* the status line said +OK */
	size_t line_len;
	char line[POP3_RESP_LINE_MAX + 1]; /* status line without CRLF */
	uint64_t body_len, body_max;
	char err[96];
};

/* body_max: the largest body accepted (0: 1 GiB). */
void pop3_resp_init(struct pop3_resp *p, uint64_t body_max);

/* One status line. MF_OK: p->line holds it (NUL-terminated, no CRLF),
 * p->ok is true for "+OK", false for "-ERR"; anything else, a NUL, or a
 * line longer than POP3_RESP_LINE_MAX is MF_ERROR. *used_r: bytes taken
 * (all of them on MF_AGAIN). The next call starts a new line. */
int pop3_resp_status(struct pop3_resp *p, const uint8_t *buf, size_t len, size_t *used_r);

/* A multi-line body (after a +OK): writes up to outcap (>= 2) unstuffed
 * bytes to out (*outlen_r), takes *used_r input bytes. MF_OK once the
 * terminating line is consumed (out may still carry the last bytes);
 * MF_AGAIN when the input is used up or out is full; MF_ERROR past
 * body_max. The next call after MF_OK starts a new body. */
int pop3_resp_body(struct pop3_resp *p, const uint8_t *buf, size_t len, size_t *used_r,
		   uint8_t *out, size_t outcap, size_t *outlen_r);

/* The text after "+OK " / "-ERR " of the last status line ("" if none). */
const char *pop3_resp_text(const struct pop3_resp *p);

/* A UIDL listing line "n uidl" (no CRLF): MF_OK with *n_r and uidl_r
 * (NUL-terminated); MF_ERROR for anything RFC 1939 does not allow. */
int pop3_uidl_line(const char *line, size_t len, uint32_t *n_r,
		   char uidl_r[POP3_UIDL_MAX + 1]);

/* A LIST listing line "n size": MF_OK with *n_r and *size_r. */
int pop3_list_line(const char *line, size_t len, uint32_t *n_r, uint64_t *size_r);

#endif
