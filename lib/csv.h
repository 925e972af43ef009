/* csv.h — RFC 4180 comma-separated values: a bounded, resumable reader
 * (admins' account lists come from spreadsheets and other people) and a
 * writer for the admin tool's --csv output.
 *
 * Reader: fields separated by ',', records by LF or CRLF; a field may be
 * quoted ("...") and then hold commas, line breaks and "" for one quote.
 * A UTF-8 byte-order mark before the first record is skipped. Refused,
 * with the record's line number: a NUL byte, a quote inside an unquoted
 * field, anything but a separator or line end after a closing quote, a
 * quoted field still open at the end, a record longer than CSV_RECORD_MAX
 * bytes or with more than CSV_FIELDS_MAX fields. The reader consumes the
 * caller's buffer in any chunks (one byte at a time included) and never
 * reads a file itself. */
#ifndef MF_CSV_H
#define MF_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CSV_RECORD_MAX 8192
#define CSV_FIELDS_MAX 32

/* csv_read: a whole record is available. */
#define CSV_RECORD 1

enum csv_state { CSV_FIELD_START = 0, CSV_UNQUOTED, CSV_QUOTED, CSV_QUOTE_IN_QUOTED, CSV_CR };

struct csv_reader {
	enum csv_state state;
	char buf[CSV_RECORD_MAX + 1];  /* the fields, each NUL-terminated */
	size_t len;
	unsigned int field[CSV_FIELDS_MAX]; /* offsets into buf */
	unsigned int n_fields;
	unsigned long line;            /* line the current record starts on (1-based) */
	unsigned long lines_seen;      /* line breaks consumed */
	unsigned int bom;              /* BOM bytes matched so far; 3: done */
	bool record_done;              /* a record was handed out: reset on the next call */
	bool failed;
};

void csv_reader_init(struct csv_reader *r);

/* Consumes in[0..n) up to the end of one record; *used_r says how much.
 * CSV_RECORD: the record is in r (csv_field, r->n_fields, r->line);
 * MF_AGAIN: all consumed, no record complete; MF_ERROR with err (then
 * every later call fails too). Blank lines are skipped, not records. */
int csv_read(struct csv_reader *r, const char *in, size_t n, size_t *used_r, char *err,
	     size_t errlen);

/* At the end of the input: CSV_RECORD for a last record without a line
 * break, MF_OK when there is none, MF_ERROR for an open quoted field. */
int csv_finish(struct csv_reader *r, char *err, size_t errlen);

/* Field i (< r->n_fields) of the current record, NUL-terminated. */
const char *csv_field(const struct csv_reader *r, unsigned int i);

/* Writes s as one field (quoted when needed; a leading = + - @ is
 * prefixed with ' so a spreadsheet never runs it as a formula), then ','
 * or, when last, CRLF. */
void csv_write_field(FILE *f, const char *s, bool last);

#endif
