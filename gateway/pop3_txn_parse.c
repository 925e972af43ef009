/* pop3_txn_parse.c — see pop3_txn_parse.h. */
#include "pop3_txn_parse.h"

#include <strings.h>

enum { SC_BOL = 0, SC_DOT, SC_DOT_CR, SC_MID, SC_CR, SC_DONE };

static bool word_is(const uint8_t *w, size_t len, const char *verb)
{
	size_t n = 0;

	while (verb[n] != '\0')
		n++;
	return len == n && strncasecmp((const char *)w, verb, n) == 0;
}

void pop3_txn_classify(const uint8_t *line, size_t len, struct pop3_txn_cmd *c_r)
{
	size_t i = 0, w;
	bool arg;

	while (i < len && line[i] != ' ')
		i++;
	w = i;
	while (i < len && line[i] == ' ')
		i++;
	arg = i < len;
	c_r->verb = PTV_OTHER;
	c_r->listing = false;
	if (word_is(line, w, "UIDL")) {
		c_r->verb = PTV_UIDL;
		c_r->listing = !arg;
	} else if (word_is(line, w, "QUIT")) {
		c_r->verb = PTV_QUIT;
	} else if (word_is(line, w, "LIST")) {
		c_r->verb = PTV_LISTING;
		c_r->listing = !arg;
	} else if (word_is(line, w, "RETR") || word_is(line, w, "TOP") ||
		   word_is(line, w, "CAPA")) {
		c_r->verb = PTV_LISTING;
		c_r->listing = true;
	}
}

void pop3_listing_scan_init(struct pop3_listing_scan *sc)
{
	sc->st = SC_BOL;
}

size_t pop3_listing_scan(struct pop3_listing_scan *sc, const uint8_t *buf, size_t len,
			 bool *done_r)
{
	uint8_t st = sc->st;
	size_t i = 0;

	while (i < len && st != SC_DONE) {
		uint8_t c = buf[i++];

		switch (st) {
		case SC_BOL:
			st = c == '.' ? SC_DOT : c == '\r' ? SC_CR : c == '\n' ? SC_BOL : SC_MID;
			break;
		case SC_DOT:
			st = c == '\r' ? SC_DOT_CR : c == '\n' ? SC_DONE : SC_MID;
			break;
		case SC_DOT_CR:
			st = c == '\n' ? SC_DONE : c == '\r' ? SC_CR : SC_MID;
			break;
		case SC_CR:
			st = c == '\n' ? SC_BOL : c == '\r' ? SC_CR : SC_MID;
			break;
		default: /* SC_MID */
			st = c == '\r' ? SC_CR : c == '\n' ? SC_BOL : SC_MID;
			break;
		}
	}
	sc->st = st;
	*done_r = st == SC_DONE;
	return i;
}
