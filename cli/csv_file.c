/* csv_file.c — an admin's CSV file read record by record (lib/csv.h does
 * the parsing; this only feeds it the file and says where it failed). */
#include "cli.h"
#include "csv.h"
#include "mf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cli_csv_walk(const struct cli_ctx *ctx, FILE *f, const char *path,
		 int (*fn)(void *arg, const struct csv_reader *r), void *arg)
{
	struct csv_reader *r = malloc(sizeof(*r)); /* a record's worth: off the stack */
	char buf[4096], err[256];
	size_t n, off, used;
	int rc = MF_ERROR;

	if (r == NULL) {
		cli_error(ctx, "out of memory");
		return MF_ERROR;
	}
	csv_reader_init(r);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		for (off = 0; off < n; off += used) {
			rc = csv_read(r, buf + off, n - off, &used, err, sizeof(err));
			if (rc == MF_ERROR) {
				cli_error(ctx, "%s: %s", path, err);
				goto out;
			}
			if (rc == CSV_RECORD && fn(arg, r) != MF_OK)
				goto fail;
		}
	}
	if (ferror(f)) {
		cli_error(ctx, "%s: %s", path, strerror(errno));
		goto fail;
	}
	rc = csv_finish(r, err, sizeof(err));
	if (rc == MF_ERROR) {
		cli_error(ctx, "%s: %s", path, err);
		goto out;
	}
	if (rc == CSV_RECORD && fn(arg, r) != MF_OK)
		goto fail;
	rc = MF_OK;
	goto out;
fail:
	rc = MF_ERROR;
out:
	free(r);
	return rc;
}
