/* pop3_txn_parse.h — what the POP3 front end needs to know of the
 * transaction state (RFC 1939 §5, RFC 2449) to stay between a client and
 * the destination: which commands' answers are multi-line listings, and
 * where a listing ends.
 *
 * Pure logic, no I/O; the scanner is resumable byte by byte. */
#ifndef MF_POP3_TXN_PARSE_H
#define MF_POP3_TXN_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pop3_txn_verb {
	PTV_OTHER = 0, /* answered by one status line (or unknown to us) */
	PTV_UIDL,      /* the answer is rewritten (uidl_map.h) */
	PTV_QUIT,      /* the session ends after the answer */
	PTV_LISTING,   /* +OK opens a listing: LIST, RETR, TOP, CAPA */
};

struct pop3_txn_cmd {
	enum pop3_txn_verb verb;
	bool listing;   /* a +OK answer is followed by a listing ending ".\r\n" */
};

/* Classifies a client's command line (without its terminator): the verb
 * is the first word, any case; "UIDL" and "LIST" open a listing only
 * without an argument. Never fails: anything unknown is PTV_OTHER, sent on
 * as it is and answered by the server with one line. */
void pop3_txn_classify(const uint8_t *line, size_t len, struct pop3_txn_cmd *c_r);

/* Finds the end of a multi-line answer: the line "." after the status
 * line (RFC 1939 §3). Lines end with CRLF; a bare LF is taken as a line
 * end too (it cannot hide a terminator the server meant: servers
 * byte-stuff every line starting with "."), but the terminator itself is
 * ".\r\n" or ".\n". */
struct pop3_listing_scan {
	uint8_t st;
};

/* Starts right after the status line's LF: at the start of a line. */
void pop3_listing_scan_init(struct pop3_listing_scan *sc);

/* Scans buf[0, len): returns how many bytes belong to the listing. When
 * that is less than len, or equals it with *done_r set, the terminator
 * was the last of them; bytes after it are the next answer's. */
size_t pop3_listing_scan(struct pop3_listing_scan *sc, const uint8_t *buf, size_t len,
			 bool *done_r);

#endif
