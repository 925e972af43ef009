#include "line_scan.h"
#include "mf.h"

void line_scan_reset(struct line_scan *ls)
{
	ls->scanned = 0;
	ls->saw_cr = ls->bad_nul = ls->bad_cr = false;
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
