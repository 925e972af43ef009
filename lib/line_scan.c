#include "line_scan.h"
#include "mf.h"

#include <string.h>

void line_scan_reset(struct line_scan *ls)
{
	ls->scanned = 0;
	ls->saw_cr = ls->bad_nul = ls->bad_cr = false;
}

int line_scan_take(struct line_scan *ls, const uint8_t *buf, size_t len, size_t max,
		   bool allow_bare_lf, size_t *used_r, struct line_take *t_r)
{
	size_t off = 0, end;
	int rc;

	memset(t_r, 0, sizeof(*t_r));
	*used_r = 0;
	if (ls->skipping) {
		const uint8_t *lf = len > 0 ? memchr(buf, '\n', len) : NULL;

		if (lf == NULL) {
			*used_r = len;
			return MF_AGAIN;
		}
		off = (size_t)(lf - buf) + 1;
		ls->skipping = false;
		line_scan_reset(ls);
	}
	rc = line_scan_next(ls, buf + off, len - off, max, &end);
	if (rc == MF_AGAIN) {
		*used_r = off;
		return MF_AGAIN;
	}
	*used_r = off + end;
	if (rc == MF_ERROR) {
		/* The offending byte is never the LF: skip up to it. */
		line_scan_reset(ls);
		ls->skipping = true;
		t_r->verdict = LINE_TOO_LONG;
		return MF_ERROR;
	}
	t_r->line = buf + off;
	t_r->raw_len = end;
	t_r->len = end - 1 - (ls->saw_cr ? 1 : 0);
	if (ls->bad_nul)
		t_r->verdict = LINE_NUL;
	else if (ls->bad_cr)
		t_r->verdict = LINE_BARE_CR;
	else if (!ls->saw_cr && !allow_bare_lf)
		t_r->verdict = LINE_BARE_LF;
	line_scan_reset(ls);
	return t_r->verdict == LINE_OK ? MF_OK : MF_ERROR;
}

int line_scan_next(struct line_scan *ls, const uint8_t *buf, size_t len, size_t max,
		   size_t *end_r)
{
	size_t i;

	if (len < ls->scanned)
		line_scan_reset(ls);
	for (i = ls->scanned; i < len; i++) {
		uint8_t c = buf[i];

		if (c == '\n') {
			*end_r = i + 1;
			return MF_OK;
		}
		/* A line of i+1 bytes plus its LF would exceed max. */
		if (i + 1 >= max) {
			*end_r = i + 1;
			return MF_ERROR;
		}
		if (ls->saw_cr)
			ls->bad_cr = true;
		ls->saw_cr = c == '\r';
		if (c == '\0')
			ls->bad_nul = true;
	}
	ls->scanned = len;
	return MF_AGAIN;
}
