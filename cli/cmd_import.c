/* cmd_import.c — `mailferry accounts import FILE.csv`: the admin's list of
 * the accounts that exist, so the retire report knows who never logged in.
 *
 * The file (RFC 4180, lib/csv.h; UTF-8, a byte-order mark allowed) starts
 * with a header row naming its columns, in any order, case-insensitively:
 *   user   (required; also "account" or "login") the login name, normalised
 *          like a login ([ledger] default_domain)
 *   pin    (optional) yes/no, true/false, 1/0, y/n or empty: yes pins the
 *          account (it stays on the source, never copied)
 *   notes  (optional) free text up to 255 bytes, no control characters;
 *          an empty cell clears the notes, a missing column keeps them
 * Other columns are ignored (and named once on stderr). The whole file is
 * checked first; any error (all are listed, with line numbers) and
 * nothing is written. Then each row: the account is created UNSEEN if the
 * ledger does not know it, marked imported, its notes set; pin=yes pins it
 * unless it is MIGRATED or being copied (reported, not an error). */
#include "account.h"
#include "cli.h"
#include "csv.h"
#include "ledger.h"
#include "mf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define IMPORT_ROWS_MAX 1000000
#define IMPORT_ERRORS_SHOWN 20

struct import_cols {
	int user, pin, notes; /* column index, -1: absent */
};

struct import {
	const struct cli_ctx *ctx;
	const struct mf_config *cfg;
	struct ledger *l;          /* NULL in the checking pass */
	struct import_cols col;
	bool header_seen;
	unsigned long rows, errors;
	unsigned long created, pinned, not_pinned;
	int64_t now;
};

static int import_error(struct import *im, unsigned long line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int import_error(struct import *im, unsigned long line, const char *fmt, ...)
{
	if (im->errors++ < IMPORT_ERRORS_SHOWN) {
		char msg[512];
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		cli_error(im->ctx, "line %lu: %s", line, msg);
	}
	return MF_OK; /* keep checking: every error at once */
}

static int header(struct import *im, const struct csv_reader *r)
{
	im->col = (struct import_cols){ -1, -1, -1 };
	for (unsigned int i = 0; i < r->n_fields; i++) {
		const char *h = csv_field(r, i);
		int *slot = NULL;

		if (!strcasecmp(h, "user") || !strcasecmp(h, "account") || !strcasecmp(h, "login"))
			slot = &im->col.user;
		else if (!strcasecmp(h, "pin"))
			slot = &im->col.pin;
		else if (!strcasecmp(h, "notes"))
			slot = &im->col.notes;
		if (slot == NULL) {
			if (im->l == NULL)
				fprintf(stderr, "mailferry: accounts import: column '%.64s' ignored\n",
					h);
			continue;
		}
		if (*slot >= 0)
			return import_error(im, r->line, "column '%.64s' named twice", h);
		*slot = (int)i;
	}
	if (im->col.user < 0)
		return import_error(im, r->line, "no 'user' column in the header row");
	return MF_OK;
}

/* yes/no and friends: MF_OK with *pin_r. */
static int parse_pin(const char *v, bool *pin_r)
{
	static const char *const yes[] = { "yes", "y", "true", "1" };
	static const char *const no[] = { "", "no", "n", "false", "0" };

	for (size_t i = 0; i < MF_ARRAY_LEN(yes); i++)
		if (!strcasecmp(v, yes[i]))
			return *pin_r = true, MF_OK;
	for (size_t i = 0; i < MF_ARRAY_LEN(no); i++)
		if (!strcasecmp(v, no[i]))
			return *pin_r = false, MF_OK;
	return MF_ERROR;
}

static int notes_ok(const char *n)
{
	if (strlen(n) >= LEDGER_NOTES_MAX)
		return MF_ERROR;
	for (; *n; n++)
		if ((unsigned char)*n < 0x20 || *n == 0x7f)
			return MF_ERROR;
	return MF_OK;
}

static int pin_account(struct import *im, const char *name)
{
	const unsigned int from = LEDGER_STATE_BIT(AS_UNSEEN) | LEDGER_STATE_BIT(AS_SEEN) |
				  LEDGER_STATE_BIT(AS_FAILED) | LEDGER_STATE_BIT(AS_ROLLBACK) |
				  LEDGER_STATE_BIT(AS_PINNED);
	enum account_state old = AS_UNSEEN;
	char err[512];
	int rc = ledger_account_set_state_if(im->l, name, from, AS_PINNED, "pinned by import",
					     im->now, &old, err, sizeof(err));

	if (rc == MF_ERROR) {
		cli_error(im->ctx, "%s", err);
		return MF_ERROR;
	}
	if (rc == LEDGER_REFUSED) {
		im->not_pinned++;
		fprintf(stderr, "mailferry: accounts import: %s not pinned: it is %s\n", name,
			account_state_name(old));
	} else if (old != AS_PINNED) {
		im->pinned++;
	}
	return MF_OK;
}

static int row(struct import *im, const struct csv_reader *r)
{
	char name[ACCOUNT_NAME_MAX + 1], err[256];
	const char *user = csv_field(r, (unsigned int)im->col.user);
	const char *notes = im->col.notes >= 0 ? csv_field(r, (unsigned int)im->col.notes) : NULL;
	bool pin = false, created = false;

	if (++im->rows > IMPORT_ROWS_MAX)
		return import_error(im, r->line, "more than 1,000,000 rows");
	if ((unsigned int)im->col.user >= r->n_fields || user[0] == '\0')
		return import_error(im, r->line, "no user");
	if (account_name_normalise(user, strlen(user), im->cfg->ledger_default_domain,
				   im->cfg->ledger_domain_equivalence, name, sizeof(name), err,
				   sizeof(err)) != MF_OK)
		return import_error(im, r->line, "bad user name: %s", err);
	if (im->col.pin >= 0 && parse_pin(csv_field(r, (unsigned int)im->col.pin), &pin) != MF_OK)
		return import_error(im, r->line, "pin is '%.32s', not yes or no",
				    csv_field(r, (unsigned int)im->col.pin));
	if (notes != NULL && notes_ok(notes) != MF_OK)
		return import_error(im, r->line, "notes longer than 255 bytes or holding a "
				    "control character");
	if (im->l == NULL)
		return MF_OK;
	if (ledger_account_import(im->l, name, notes, im->now, &created, err, sizeof(err)) !=
	    MF_OK) {
		cli_error(im->ctx, "%s: %s", name, err);
		return MF_ERROR;
	}
	im->created += created;
	return pin ? pin_account(im, name) : MF_OK;
}

static int on_record(void *arg, const struct csv_reader *r)
{
	struct import *im = arg;

	if (!im->header_seen) {
		im->header_seen = true;
		return header(im, r);
	}
	if (im->col.user < 0)
		return MF_OK; /* the header's error is said once */
	return row(im, r);
}

/* One pass over the file: every record to on_record. MF_ERROR stops it
 * (a ledger error, or a file that is not CSV). */
static int walk(struct import *im, FILE *f, const char *path)
{
	if (cli_csv_walk(im->ctx, f, path, on_record, im) != MF_OK)
		return MF_ERROR;
	if (!im->header_seen) {
		cli_error(im->ctx, "%s: empty (a header row naming 'user' comes first)", path);
		return MF_ERROR;
	}
	return MF_OK;
}

int cli_accounts_import(const struct cli_ctx *ctx, char **argv)
{
	struct mf_config cfg;
	struct import im = { .ctx = ctx, .cfg = &cfg };
	char err[512];
	FILE *f;
	int rc = CLI_EXIT_ERROR;

	if (argv[1] != NULL) {
		cli_error(ctx, "unknown option '%s'", argv[1]);
		return CLI_EXIT_USAGE;
	}
	if (cli_load_config(ctx, &cfg) != MF_OK)
		return CLI_EXIT_ERROR;
	f = fopen(argv[0], "rb");
	if (f == NULL) {
		cli_error(ctx, "%s: %s", argv[0], strerror(errno));
		return CLI_EXIT_ERROR;
	}
	/* Pass 1: check everything, write nothing. */
	if (walk(&im, f, argv[0]) != MF_OK || im.errors > 0) {
		if (im.errors > IMPORT_ERRORS_SHOWN)
			cli_error(ctx, "... %lu errors in all", im.errors);
		cli_error(ctx, "%s: nothing imported", argv[0]);
		goto out;
	}
	/* Pass 2: the same file again, into the ledger. */
	if (ledger_open(cfg.ledger_path, &im.l, err, sizeof(err)) != MF_OK) {
		cli_error(ctx, "%s", err);
		goto out;
	}
	rewind(f);
	im.header_seen = false;
	im.rows = 0;
	im.now = (int64_t)time(NULL);
	if (walk(&im, f, argv[0]) != MF_OK) {
		cli_error(ctx, "%s: stopped after %lu rows (those are imported)", argv[0],
			  im.rows);
		goto out;
	}
	printf("imported %lu accounts (%lu new), %lu pinned%s", im.rows, im.created, im.pinned,
	       im.not_pinned ? "" : "\n");
	if (im.not_pinned)
		printf(", %lu not pinned (see above)\n", im.not_pinned);
	rc = CLI_EXIT_OK;
out:
	ledger_close(im.l);
	fclose(f);
	return rc;
}
