/* smtp_data.c — end-of-message scanner; see smtp_data.h. */
#include "smtp_data.h"
#include "mf.h"

/* Where in a line the last byte left us. BOL: beginning of a line, after
 * CRLF or after a bare LF. DOT: "." first on such a line. */
enum data_state {
	DS_TEXT = 0,
	DS_CR,          /* after a CR inside a line */
	DS_BOL_CRLF,
	DS_BOL_LF,
	DS_DOT_CRLF,    /* CRLF "." */
	DS_DOT_LF,      /* bare LF "." */
	DS_DOT_CRLF_CR, /* CRLF "." CR */
	DS_DOT_LF_CR,   /* bare LF "." CR */
};

enum step { STEP_ON = 0, STEP_END, STEP_AMBIGUOUS };

static enum step next(struct smtp_data_scan *d, uint8_t c)
{
	enum data_state st = (enum data_state)d->state;
	enum data_state to = DS_TEXT;
	enum step r = STEP_ON;

	if (c == '\r') {
		to = st == DS_DOT_CRLF ? DS_DOT_CRLF_CR : st == DS_DOT_LF ? DS_DOT_LF_CR : DS_CR;
	} else if (c == '\n') {
		switch (st) {
		case DS_CR:
			to = DS_BOL_CRLF;
			break;
		case DS_DOT_CRLF_CR:
			r = STEP_END;
			to = DS_BOL_CRLF;
			break;
		case DS_DOT_CRLF:
		case DS_DOT_LF:
			r = STEP_AMBIGUOUS;
			to = DS_BOL_LF;
			break;
		case DS_DOT_LF_CR:
			/* a CRLF: the next line may be the real end */
			r = STEP_AMBIGUOUS;
			to = DS_BOL_CRLF;
			break;
		default:
			to = DS_BOL_LF;
			break;
		}
	} else if (c == '.') {
		to = st == DS_BOL_CRLF ? DS_DOT_CRLF : st == DS_BOL_LF ? DS_DOT_LF : DS_TEXT;
	}
	d->state = (uint8_t)to;
	return r;
}

void smtp_data_init(struct smtp_data_scan *d)
{
	d->state = DS_BOL_CRLF;
	d->ambiguous = false;
	d->octets = 0;
}

int smtp_data_scan(struct smtp_data_scan *d, const uint8_t *buf, size_t len, size_t *used_r)
{
	for (size_t i = 0; i < len; i++) {
		enum step r = next(d, buf[i]);

		if (r == STEP_ON)
			continue;
		*used_r = i + 1;
		d->octets += i + 1;
		if (r == STEP_END)
			return MF_OK;
		d->ambiguous = true;
		return MF_ERROR;
	}
	*used_r = len;
	d->octets += len;
	return MF_AGAIN;
}

void smtp_stuff_init(struct smtp_stuff *st)
{
	st->at_bol = true;
	st->tail_crlf = true;
	st->last = 0;
}

size_t smtp_stuff(struct smtp_stuff *st, const uint8_t *in, size_t len, uint8_t *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		uint8_t c = in[i];

		if (st->at_bol && c == '.')
			out[o++] = '.';
		out[o++] = c;
		st->at_bol = c == '\n';
		st->tail_crlf = c == '\n' && st->last == '\r';
		st->last = c;
	}
	return o;
}

const char *smtp_stuff_end(const struct smtp_stuff *st)
{
	return st->tail_crlf ? ".\r\n" : "\r\n.\r\n";
}
