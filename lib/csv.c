#include "csv.h"
#include "mf.h"

#include <string.h>

static const unsigned char bom[3] = { 0xef, 0xbb, 0xbf };

static void record_reset(struct csv_reader *r)
{
	r->len = 0;
	r->n_fields = 0;
	r->state = CSV_FIELD_START;
	r->record_done = false;
	r->line = r->lines_seen + 1;
}

void csv_reader_init(struct csv_reader *r)
{
	memset(r, 0, sizeof(*r));
	record_reset(r);
}

static int fail(struct csv_reader *r, char *err, size_t errlen, const char *why)
{
	r->failed = true;
	return mf_err(err, errlen, "line %lu: %s", r->line, why);
}

static int put(struct csv_reader *r, char c, char *err, size_t errlen)
{
	if (r->len >= CSV_RECORD_MAX)
		return fail(r, err, errlen, "record longer than 8192 bytes");
	r->buf[r->len++] = c;
	return MF_OK;
}

static int field_begin(struct csv_reader *r, char *err, size_t errlen)
{
	if (r->n_fields == CSV_FIELDS_MAX)
		return fail(r, err, errlen, "more than 32 fields");
	r->field[r->n_fields++] = (unsigned int)r->len;
	return MF_OK;
}

/* Ends the current field (a NUL in buf). */
static int field_end(struct csv_reader *r, char *err, size_t errlen)
{
	return put(r, '\0', err, errlen);
}

/* A line break ends the record: CSV_RECORD, or MF_AGAIN for a blank line. */
static int record_end(struct csv_reader *r, char *err, size_t errlen)
{
	r->lines_seen++;
	if (r->n_fields == 0) {
		record_reset(r);
		return MF_AGAIN;
	}
	if (field_end(r, err, errlen) != MF_OK)
		return MF_ERROR;
	r->record_done = true;
	return CSV_RECORD;
}

/* One byte (not a BOM byte, not NUL): MF_OK, CSV_RECORD when it ended a
 * record, or MF_ERROR. A blank line is MF_OK. */
static int step(struct csv_reader *r, char c, char *err, size_t errlen)
{
	int rc;

	switch (r->state) {
	case CSV_CR:
		if (c != '\n')
			return fail(r, err, errlen, "a CR not followed by LF");
		break; /* the record ends below */
	case CSV_FIELD_START:
		if (c == '\r' || c == '\n') {
			/* An empty last field after ',', or a blank line. */
			if (r->n_fields > 0 && field_begin(r, err, errlen) != MF_OK)
				return MF_ERROR;
			break;
		}
		if (field_begin(r, err, errlen) != MF_OK)
			return MF_ERROR;
		if (c == '"') {
			r->state = CSV_QUOTED;
			return MF_OK;
		}
		if (c == ',')
			return field_end(r, err, errlen); /* still at a field's start */
		r->state = CSV_UNQUOTED;
		return put(r, c, err, errlen);
	case CSV_UNQUOTED:
		if (c == '"')
			return fail(r, err, errlen, "a quote inside an unquoted field");
		if (c == ',') {
			r->state = CSV_FIELD_START;
			return field_end(r, err, errlen);
		}
		if (c != '\r' && c != '\n')
			return put(r, c, err, errlen);
		break;
	case CSV_QUOTED:
		if (c == '"') {
			r->state = CSV_QUOTE_IN_QUOTED;
			return MF_OK;
		}
		if (c == '\n')
			r->lines_seen++;
		return put(r, c, err, errlen);
	case CSV_QUOTE_IN_QUOTED:
		if (c == '"') {
			r->state = CSV_QUOTED;
			return put(r, '"', err, errlen);
		}
		if (c == ',') {
			r->state = CSV_FIELD_START;
			return field_end(r, err, errlen);
		}
		if (c != '\r' && c != '\n')
			return fail(r, err, errlen, "text after a closing quote");
		break;
	}
	/* A line break: CR waits for its LF, LF ends the record. */
	if (c == '\r') {
		r->state = CSV_CR;
		return MF_OK;
	}
	rc = record_end(r, err, errlen);
	return rc == MF_AGAIN ? MF_OK : rc;
}

int csv_read(struct csv_reader *r, const char *in, size_t n, size_t *used_r, char *err,
	     size_t errlen)
{
	*used_r = 0;
	if (r->failed)
		return mf_err(err, errlen, "line %lu: earlier error", r->line);
	if (r->record_done)
		record_reset(r);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		int rc;

		if (r->bom < 3) {
			if (c == bom[r->bom] && r->len == 0 && r->n_fields == 0) {
				r->bom++;
				continue;
			}
			if (r->bom > 0)
				return fail(r, err, errlen, "a broken byte-order mark");
			r->bom = 3;
		}
		if (c == '\0')
			return fail(r, err, errlen, "a NUL byte");
		rc = step(r, (char)c, err, errlen);
		if (rc == MF_ERROR)
			return MF_ERROR;
		if (rc == CSV_RECORD) {
			*used_r = i + 1;
			return CSV_RECORD;
		}
	}
	*used_r = n;
	return MF_AGAIN;
}

int csv_finish(struct csv_reader *r, char *err, size_t errlen)
{
	if (r->failed)
		return mf_err(err, errlen, "line %lu: earlier error", r->line);
	if (r->record_done)
		record_reset(r);
	if (r->bom > 0 && r->bom < 3)
		return fail(r, err, errlen, "a broken byte-order mark");
	switch (r->state) {
	case CSV_QUOTED:
		return fail(r, err, errlen, "a quoted field is not closed at the end");
	case CSV_CR:
		return fail(r, err, errlen, "a CR not followed by LF");
	case CSV_FIELD_START:
		if (r->n_fields == 0)
			return MF_OK;
		if (field_begin(r, err, errlen) != MF_OK)
			return MF_ERROR;
		break;
	case CSV_UNQUOTED:
	case CSV_QUOTE_IN_QUOTED:
		break;
	}
	if (field_end(r, err, errlen) != MF_OK)
		return MF_ERROR;
	r->record_done = true;
	r->state = CSV_FIELD_START;
	return CSV_RECORD;
}

const char *csv_field(const struct csv_reader *r, unsigned int i)
{
	return i < r->n_fields ? r->buf + r->field[i] : "";
}

void csv_write_field(FILE *f, const char *s, bool last)
{
	bool formula = s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@';

	if (formula || strpbrk(s, ",\"\r\n") != NULL) {
		fputc('"', f);
		if (formula)
			fputc('\'', f);
		for (; *s; s++) {
			if (*s == '"')
				fputc('"', f);
			fputc(*s, f);
		}
		fputc('"', f);
	} else {
		fputs(s, f);
	}
	fputs(last ? "\r\n" : ",", f);
}
