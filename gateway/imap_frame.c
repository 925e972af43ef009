/* imap_frame.c — following an IMAP server's response framing; see
 * imap_frame.h. */
#include "imap_frame.h"

void imap_frame_init(struct imap_frame *f)
{
	f->lit_left = 0;
	f->num = 0;
	f->st = IF_LINE_START;
}

/* One byte of a line (any state but IF_LITERAL and IF_LOST). */
static uint8_t line_step(struct imap_frame *f, uint8_t c)
{
	uint8_t st = f->st;

	switch (c) {
	case '\n':
		if (st != IF_CLOSE && st != IF_CLOSE_CR)
			return IF_LINE_START;
		if (f->num == 0)
			return IF_LINE; /* "{0}": the line goes on at once */
		f->lit_left = f->num;
		return IF_LITERAL;
	case '\r':
		return st == IF_CLOSE ? IF_CLOSE_CR : IF_LINE;
	case '{':
		f->num = 0;
		return IF_BRACE;
	case '}':
		return st == IF_DIGITS ? IF_CLOSE : IF_LINE;
	default:
		if (c < '0' || c > '9' || (st != IF_BRACE && st != IF_DIGITS))
			return IF_LINE;
		/* num <= LITERAL_MAX here, so this cannot overflow. */
		f->num = f->num * 10 + (uint64_t)(c - '0');
		return f->num > IMAP_FRAME_LITERAL_MAX ? IF_LOST : IF_DIGITS;
	}
}

void imap_frame_feed(struct imap_frame *f, const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		if (f->st == IF_LOST)
			return;
		if (f->st == IF_LITERAL) {
			uint64_t k = n - i < f->lit_left ? n - i : f->lit_left;

			i += (size_t)k;
			f->lit_left -= k;
			if (f->lit_left == 0)
				f->st = IF_LINE;
			continue;
		}
		f->st = line_step(f, p[i++]);
	}
}

void imap_frame_skip(struct imap_frame *f, uint64_t n)
{
	if (n == 0)
		return;
	if (f->st != IF_LITERAL || n > f->lit_left) {
		f->st = IF_LOST;
		return;
	}
	f->lit_left -= n;
	if (f->lit_left == 0)
		f->st = IF_LINE;
}
