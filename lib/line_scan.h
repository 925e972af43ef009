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
	bool skipping;   /* line_scan_take: discarding the rest of an overlong line */
};

enum line_verdict { LINE_OK = 0, LINE_TOO_LONG, LINE_NUL, LINE_BARE_CR, LINE_BARE_LF };

struct line_take {
	const uint8_t *line; /* in the caller's buffer */
	size_t len;          /* without the CRLF or LF */
	size_t raw_len;      /* with it */
	enum line_verdict verdict;
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

/* One whole line for a command parser, on top of line_scan_next():
 * MF_AGAIN with *used_r bytes consumed (the rest of an overlong line being
 * skipped) and no line yet; MF_OK with a clean line in *t_r; MF_ERROR with
 * t_r->verdict saying why (NUL, bare CR, bare LF when !allow_bare_lf: the
 * line is consumed; too long: the bytes so far are consumed and the rest of
 * the line is skipped by the next calls). *used_r always counts what the
 * caller may drop from buf. */
int line_scan_take(struct line_scan *ls, const uint8_t *buf, size_t len, size_t max,
		   bool allow_bare_lf, size_t *used_r, struct line_take *t_r);

#endif
