/* libFuzzer target: lib/csv.c — the CSV reader of `accounts import`.
 *
 * Input: byte 0 seeds the chunk sizes, the rest is the file. Read once
 * whole and once in chunks of 1..16 bytes: both must give the same records
 * (a hash of every field) and the same outcome; every field handed out is
 * NUL-terminated inside the record buffer, within the bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "mf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n-- > 0)
		h = (h ^ *b++) * 0x100000001b3ULL;
	return h;
}

static uint64_t record(uint64_t h, const struct csv_reader *r)
{
	if (r->n_fields == 0 || r->n_fields > CSV_FIELDS_MAX || r->len > CSV_RECORD_MAX)
		abort();
	for (unsigned int i = 0; i < r->n_fields; i++) {
		const char *f = csv_field(r, i);
		size_t n = strnlen(f, CSV_RECORD_MAX + 1 - r->field[i]);

		if (r->field[i] > r->len || r->field[i] + n >= CSV_RECORD_MAX + 1)
			abort();
		h = fnv(h, f, n + 1);
	}
	return fnv(h, &r->line, sizeof(r->line));
}

static uint64_t read_all(const uint8_t *in, size_t n, uint8_t seed, bool chunked)
{
	static struct csv_reader r;
	uint64_t h = 0xcbf29ce484222325ULL;
	char err[128];
	size_t pos = 0;
	int rc;

	csv_reader_init(&r);
	while (pos < n) {
		size_t want = chunked ? (size_t)((seed + pos) % 16) + 1 : n - pos, used = 0;

		if (want > n - pos)
			want = n - pos;
		rc = csv_read(&r, (const char *)in + pos, want, &used, err, sizeof(err));
		if (used > want)
			abort();
		pos += used;
		if (rc == MF_ERROR)
			return fnv(h, err, strlen(err));
		if (rc == CSV_RECORD)
			h = record(h, &r);
		else if (rc != MF_AGAIN || used != want)
			abort();
	}
	rc = csv_finish(&r, err, sizeof(err));
	if (rc == MF_ERROR)
		return fnv(h, err, strlen(err));
	if (rc == CSV_RECORD)
		h = record(h, &r);
	return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (read_all(data + 1, size - 1, data[0], false) != read_all(data + 1, size - 1, data[0], true))
		abort();
	return 0;
}
