/* line_scan.h — resumable search for the end of one protocol line.
 *
 * Shared by the line-based parsers (POP3 and SMTP commands, SMTP replies):
 * it remembers how far the current line was examined, so every byte is
 * looked at once however the input is split, and it stops as soon as the
 * line reaches its limit without an LF, before the caller had to buffer
 * more. Along the way it notes what makes a line suspect: a NUL byte, a CR
 * not followed by LF. */
#ifndef MF_LINE_SCAN_H
#define MF_LINE_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct line_scan {
	size_t scanned;  /* bytes of the current line already examined */
	bool saw_cr;     /* the last byte examined was CR (so: CRLF ending) */
	bool bad_nul, bad_cr;
};

void line_scan_reset(struct line_scan *ls);

/* Looks for the end of the line starting at buf[0], resuming at
 * ls->scanned. MF_OK: *end_r is one past the LF. MF_ERROR: the line reached
 * max bytes without an LF; *end_r is one past the byte that broke the
 * limit. MF_AGAIN: no LF yet. The state depends only on the line's bytes,
 * so presenting fewer bytes than before just costs a rescan. The caller
 * resets after each complete or failed line. */
int line_scan_next(struct line_scan *ls, const uint8_t *buf, size_t len, size_t max,
		   size_t *end_r);

#endif
