/* pop3_backend.h — the gateway's side of a POP3 backend conversation
 * before relaying: a status-line classifier and the USER / PASS commands
 * the front end replays.
 *
 * Pure logic: nothing here reads a socket or allocates. Lines come from
 * imap_backend.h's bounded line reader (imap_line_feed), which is
 * protocol-neutral: LF-terminated, CR stripped, at most IMAP_RESP_LINE_MAX
 * bytes, no NUL. */
#ifndef MF_POP3_BACKEND_H
#define MF_POP3_BACKEND_H

#include <stddef.h>

/* "PASS " + a SASL-sized secret + CRLF, with room to spare. */
#define POP3_UP_CMD_MAX 300
#define POP3_UP_FIELD_MAX 255

enum pop3_status {
	POP3_ST_OK = 0, /* "+OK" */
	POP3_ST_ERR,    /* "-ERR" */
};

/* Classifies a status line (without CRLF): "+OK" or "-ERR", then the end
 * of the line or a space (RFC 1939 §3; the keyword's case is not
 * significant). MF_OK with *st_r, or MF_ERROR for anything else
 * (continuations "+ ", garbage). */
int pop3_status_parse(const char *line, size_t len, enum pop3_status *st_r);

/* Writes "<verb> <value>\r\n" and a NUL into out (POP3_UP_CMD_MAX bytes):
 * verb is "USER" or "PASS"; value is 1..POP3_UP_FIELD_MAX bytes without
 * CR, LF or NUL (anything else could smuggle a second command). MF_OK
 * with *len_r, or MF_ERROR. Wipe out with explicit_bzero after a PASS. */
int pop3_up_cmd_build(const char *verb, const char *value, size_t value_len,
		      char out[POP3_UP_CMD_MAX], size_t *len_r);

#endif
