/* smtp_data.h — finds the end of an SMTP DATA message in a byte stream.
 *
 * The SMTP front end relays message content to the backend verbatim (no
 * dot unstuffing or restuffing): it only needs to know where the content
 * ends, so it can stop relaying, read the backend's final reply and go back
 * to parsing commands. The end is CRLF "." CRLF (RFC 5321 §4.1.1.4); the
 * scan starts just after the DATA command's CRLF, so a message whose first
 * line is "." ends at once.
 *
 * A resumable byte-at-a-time automaton: any split of the stream into
 * buffers gives the same result; no memory beyond the struct.
 *
 * Ambiguous ends are refused: a line "." that ends with a bare LF, or a
 * "." line that starts after a bare LF ("\n.\r\n", "\n.\n", "\r\n.\n").
 * Some servers take these for the end of the message; if the backend did
 * and the gateway did not, the bytes after it would reach the backend as
 * commands the gateway never saw (SMTP smuggling, CVE-2023-51764 class).
 * After an ambiguous end the scan goes on to the real end so the front end
 * can resynchronise with its client; the message must not be delivered. */
#ifndef MF_SMTP_DATA_H
#define MF_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct smtp_data_scan {
	uint8_t state; /* private */
	bool ambiguous; /* sticky: an ambiguous end was seen in this message */
	uint64_t octets; /* consumed so far, end marker included */
};

/* Starts the scan of one message (just after "DATA\r\n" was accepted). */
void smtp_data_init(struct smtp_data_scan *d);

/* Scans buf. Returns
 *   MF_OK     the message ends in buf: *used_r bytes (end marker included)
 *             belong to it, the rest is the next command;
 *   MF_AGAIN  all of buf is content (*used_r = len);
 *   MF_ERROR  an ambiguous end: *used_r bytes were consumed, the last one
 *             completing the ambiguity. d->ambiguous is now set and the scan
 *             may be resumed on buf + *used_r to find the real end.
 * *used_r ≤ len always; MF_ERROR consumes at least one byte. */
int smtp_data_scan(struct smtp_data_scan *d, const uint8_t *buf, size_t len, size_t *used_r);

/* --- dot-stuffing (BDAT content sent to a backend as DATA) ---------------- */

/* RFC 5321 §4.5.2 transparency, applied after every LF (not only CRLF), so
 * no content, bare LFs included, can make a DATA end early or ambiguously
 * on any server. */
struct smtp_stuff {
	bool at_bol;    /* the next byte starts a line */
	bool tail_crlf; /* the content so far ends with CRLF (or is empty) */
	uint8_t last;
};

void smtp_stuff_init(struct smtp_stuff *st);

/* Copies in[0, len) to out (room for 2 * len bytes) with a "." before each
 * "." that starts a line. Returns the bytes written. */
size_t smtp_stuff(struct smtp_stuff *st, const uint8_t *in, size_t len, uint8_t *out);

/* What ends the DATA after the stuffed content: ".\r\n" when it ended
 * with CRLF, else "\r\n.\r\n". */
const char *smtp_stuff_end(const struct smtp_stuff *st);

#endif
