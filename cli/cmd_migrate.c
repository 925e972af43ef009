/* cmd_migrate.c — `mailferry migrate`: copy one account from a source IMAP
 * server to a destination IMAP server, with no daemon and no config file
 * (like imapsync's host1/host2), resumable with --state, verified.
 *
 *   mailferry migrate --source imap://198.18.11.2:143 --destination imap://198.18.11.3:143
 *       --user U --password-stdin [--dest-user U2] [--dest-password-stdin]
 *       [--master-user M --master-password-stdin] [--state FILE]
 *       [--insecure] [--ca FILE] [--batch N] [--max-inflight BYTES] [--timeout S]
 *       [--plain-append] [--sync-deletes]
 *       [--uidl-map [--source-pop3 URL] [--destination-pop3 URL] [--ledger SPEC]]
 *
 * --uidl-map: after verification, INBOX's destination POP3 UIDLs paired
 * with its source POP3 UIDLs (mig_uidl.h), each side's POP3 service taken
 * from its IMAP URL's host (imap:// -> pop3://:110, imaps:// ->
 * pop3s://:995, imap+starttls:// -> pop3+stls://:110) unless given; stored
 * under the account in the ledger SPEC (a SQLite file or postgresql://
 * URL; the account must be in it), else only counted in the output.
 * --sync-deletes: messages deleted (expunged, moved) on the source since
 * they were copied are expunged from the destination, only those the copy
 * stored and only if still what it stored (mig_imap_gone.c,
 * mig_pop3_gone.c); without it a rerun after such a deletion fails the
 * verification's count.
 *
 * Passwords are read from standard input, one line each, in this order:
 * the user's (--password-stdin), the destination user's
 * (--dest-password-stdin; else the user's is used on both sides), the
 * master user's (--master-password-stdin; then the master logs in on both
 * sides on behalf of the users). They are read with read(2) into buffers
 * that are wiped before exit; never printed, never written anywhere.
 *
 * Progress: on a terminal one line redrawn in place; otherwise JSON lines
 * on standard output ({"event":"progress",...}), ending with
 * {"event":"done",...} or {"event":"error",...}. Exit status 0 only when
 * the copy is complete and verification passed. */
#include "account.h"
#include "cli.h"
#include "ledger.h"
#include "mf.h"
#include "mig.h"
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PASS_MAX 1024

struct secret {
	char buf[PASS_MAX];
	size_t len;
};

struct progress_out {
	bool tty;
	double last;
};

/* One line of standard input, without its line end. */
static int read_secret(const struct cli_ctx *ctx, const char *what, struct secret *s)
{
	s->len = 0;
	for (;;) {
		char c;
		ssize_t n = read(STDIN_FILENO, &c, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			cli_error(ctx, "reading the %s password: %s", what, strerror(errno));
			return MF_ERROR;
		}
		if (n == 0 || c == '\n')
			break;
		if (s->len >= sizeof(s->buf) - 1) {
			cli_error(ctx, "the %s password is too long", what);
			return MF_ERROR;
		}
		s->buf[s->len++] = c;
	}
	if (s->len > 0 && s->buf[s->len - 1] == '\r')
		s->len--;
	if (s->len == 0) {
		cli_error(ctx, "no %s password on standard input", what);
		return MF_ERROR;
	}
	s->buf[s->len] = '\0';
	return MF_OK;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s != NULL && *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void on_progress(void *arg, const struct mig_progress *p)
{
	struct progress_out *po = arg;
	double rate = p->elapsed > 0 ? (double)p->bytes / p->elapsed : 0;
	double mrate = p->elapsed > 0 ? (double)p->messages / p->elapsed : 0;

	if (po->tty) {
		double left = mrate > 0 && p->planned > p->messages
				      ? (double)(p->planned - p->messages) / mrate : 0;

		printf("\r\033[K%s %u/%u %.40s  %llu/%llu msgs  %.1f MB  %.1f MB/s  %.0f msg/s"
		       "  ETA %.0fs",
		       p->phase, p->folder_index, p->folder_count, p->folder ? p->folder : "",
		       (unsigned long long)p->messages, (unsigned long long)p->planned,
		       (double)p->bytes / 1e6, rate / 1e6, mrate, left);
		fflush(stdout);
		return;
	}
	printf("{\"event\":\"progress\",\"phase\":\"%s\",\"folder\":", p->phase);
	json_str(stdout, p->folder);
	printf(",\"folder_index\":%u,\"folder_count\":%u,\"messages\":%llu,\"planned\":%llu,"
	       "\"bytes\":%llu,\"verified\":%llu,\"elapsed\":%.3f,\"msgs_per_s\":%.1f,"
	       "\"bytes_per_s\":%.0f}\n",
	       p->folder_index, p->folder_count, (unsigned long long)p->messages,
	       (unsigned long long)p->planned, (unsigned long long)p->bytes,
	       (unsigned long long)p->verified, p->elapsed, mrate, rate);
	fflush(stdout);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: mailferry migrate --source URL --destination URL --user U --password-stdin\n"
		"         [--dest-user U2] [--dest-password-stdin]\n"
		"         [--master-user M --master-password-stdin] [--state FILE]\n"
		"         [--insecure] [--ca FILE] [--batch N] [--max-inflight BYTES]"
		" [--timeout SECONDS]\n"
		"         [--verify-sample PCT]  (hash PCT%% of the messages back; all are sized)\n"
		"         [--plain-append]  (no MULTIAPPEND, no LITERAL+: one APPEND per message)\n"
		"         [--sync-deletes]  (the source's deletions since the copy expunged on the\n"
		"                           destination: only messages the copy stored)\n"
		"         [--uidl-map [--source-pop3 URL] [--destination-pop3 URL] [--ledger SPEC]]\n"
		"                           (POP3 UIDL continuity: pairs of destination -> source UIDLs)\n"
		"URL: imap://HOST[:PORT], imaps://HOST[:PORT], imap+starttls://HOST[:PORT];\n"
		"     a POP3-only source: pop3://, pop3s://, pop3+stls:// (its mailbox goes to INBOX)\n");
}

struct args {
	const char *source, *destination, *user, *dest_user, *master, *state, *ca;
	const char *source_pop3, *destination_pop3, *ledger;
	bool pass_stdin, dest_pass_stdin, master_pass_stdin, insecure, plain_append;
	bool uidl_map, sync_deletes;
	long batch, inflight, timeout, sample;
};

static int parse_num(const struct cli_ctx *ctx, const char *opt, const char *v, long min,
		     long max, long *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < min || n > max) {
		cli_error(ctx, "%s: '%s' is not a number in %ld..%ld", opt, v, min, max);
		return MF_ERROR;
	}
	*out = n;
	return MF_OK;
}

static int parse_args(const struct cli_ctx *ctx, char **argv, struct args *a)
{
	static const char *const with_value[] = {
		"--source", "--destination", "--user", "--dest-user", "--master-user",
		"--state", "--ca", "--batch", "--max-inflight", "--timeout", "--verify-sample",
		"--source-pop3", "--destination-pop3", "--ledger",
	};

	memset(a, 0, sizeof(*a));
	for (; *argv != NULL; argv++) {
		const char *o = *argv, *v = NULL;
		bool needs = false;

		for (size_t i = 0; i < MF_ARRAY_LEN(with_value); i++)
			needs |= strcmp(o, with_value[i]) == 0;
		if (needs) {
			v = argv[1];
			if (v == NULL) {
				cli_error(ctx, "%s needs a value", o);
				return MF_ERROR;
			}
			argv++;
		}
		if (strcmp(o, "--source") == 0)
			a->source = v;
		else if (strcmp(o, "--destination") == 0)
			a->destination = v;
		else if (strcmp(o, "--user") == 0)
			a->user = v;
		else if (strcmp(o, "--dest-user") == 0)
			a->dest_user = v;
		else if (strcmp(o, "--master-user") == 0)
			a->master = v;
		else if (strcmp(o, "--state") == 0)
			a->state = v;
		else if (strcmp(o, "--ca") == 0)
			a->ca = v;
		else if (strcmp(o, "--batch") == 0) {
			if (parse_num(ctx, o, v, 1, 1024, &a->batch) != MF_OK)
				return MF_ERROR;
		} else if (strcmp(o, "--max-inflight") == 0) {
			if (parse_num(ctx, o, v, 1, 1L << 40, &a->inflight) != MF_OK)
				return MF_ERROR;
		} else if (strcmp(o, "--verify-sample") == 0) {
			if (parse_num(ctx, o, v, 1, 100, &a->sample) != MF_OK)
				return MF_ERROR;
		} else if (strcmp(o, "--timeout") == 0) {
			if (parse_num(ctx, o, v, 1, 3600, &a->timeout) != MF_OK)
				return MF_ERROR;
		} else if (strcmp(o, "--password-stdin") == 0)
			a->pass_stdin = true;
		else if (strcmp(o, "--dest-password-stdin") == 0)
			a->dest_pass_stdin = true;
		else if (strcmp(o, "--master-password-stdin") == 0)
			a->master_pass_stdin = true;
		else if (strcmp(o, "--insecure") == 0)
			a->insecure = true;
		else if (strcmp(o, "--plain-append") == 0)
			a->plain_append = true;
		else if (strcmp(o, "--sync-deletes") == 0)
			a->sync_deletes = true;
		else if (strcmp(o, "--uidl-map") == 0)
			a->uidl_map = true;
		else if (strcmp(o, "--source-pop3") == 0)
			a->source_pop3 = v;
		else if (strcmp(o, "--destination-pop3") == 0)
			a->destination_pop3 = v;
		else if (strcmp(o, "--ledger") == 0)
			a->ledger = v;
		else {
			cli_error(ctx, "unknown option '%s'", o);
			return MF_ERROR;
		}
	}
	if (a->source == NULL || a->destination == NULL || a->user == NULL) {
		cli_error(ctx, "--source, --destination and --user are required");
		return MF_ERROR;
	}
	if (a->master != NULL ? !a->master_pass_stdin : !a->pass_stdin) {
		cli_error(ctx, a->master != NULL ? "--master-user needs --master-password-stdin"
						 : "--password-stdin is required");
		return MF_ERROR;
	}
	if (a->master == NULL && a->master_pass_stdin) {
		cli_error(ctx, "--master-password-stdin needs --master-user");
		return MF_ERROR;
	}
	if (!a->uidl_map && (a->source_pop3 != NULL || a->destination_pop3 != NULL ||
			     a->ledger != NULL)) {
		cli_error(ctx, "--source-pop3, --destination-pop3 and --ledger need --uidl-map");
		return MF_ERROR;
	}
	return MF_OK;
}

/* A side's POP3 service: given, or its IMAP URL's host with the POP3
 * scheme of the same TLS. */
static int pop3_url(const char *given, const struct imap_url *imap, struct imap_url *u,
		    char *err, size_t errlen)
{
	if (given != NULL) {
		if (imap_url_parse(given, u, err, errlen) != MF_OK)
			return MF_ERROR;
		if (!u->pop3)
			return mf_err(err, errlen, "%s: not a POP3 URL", given);
		return MF_OK;
	}
	*u = *imap;
	u->pop3 = true;
	snprintf(u->port, sizeof(u->port), "%s", imap->sec == IMAP_SEC_TLS ? "995" : "110");
	return MF_OK;
}

struct uidl_out {
	struct ledger *l;      /* NULL: count only */
	char account[ACCOUNT_NAME_MAX + 1];
};

static int uidl_store(void *arg, const struct uidl_pair *v, size_t n, const char *note,
		      char *err, size_t errlen)
{
	struct uidl_out *u = arg;

	(void)note;
	if (u->l == NULL)
		return MF_OK;
	return ledger_uidl_map_put(u->l, u->account, v, n, err, errlen) == MF_OK ? MF_OK
										 : MF_ERROR;
}

/* --ledger: the account must be there (the map is kept per account). */
static int uidl_ledger(const struct cli_ctx *ctx, const struct args *a, struct uidl_out *u)
{
	struct account acct;
	char err[512];
	int rc;

	if (account_name_normalise(a->user, strlen(a->user), "", false, u->account,
				   sizeof(u->account), err, sizeof(err)) != MF_OK) {
		cli_error(ctx, "--user: %s", err);
		return MF_ERROR;
	}
	if (ledger_open(a->ledger, &u->l, err, sizeof(err)) != MF_OK) {
		cli_error(ctx, "%s", err);
		return MF_ERROR;
	}
	rc = ledger_account_get(u->l, u->account, &acct, err, sizeof(err));
	if (rc == LEDGER_ABSENT)
		cli_error(ctx, "%s is not in the ledger %s", u->account, a->ledger);
	else if (rc != MF_OK)
		cli_error(ctx, "%s", err);
	return rc == MF_OK ? MF_OK : MF_ERROR;
}

int cli_migrate_run(const struct cli_ctx *ctx, char **argv)
{
	struct secret *pw = calloc(3, sizeof(*pw)); /* user, dest user, master */
	struct progress_out po = { .tty = isatty(STDOUT_FILENO) == 1 };
	struct mig_opts o = { .verify = true, .progress = on_progress, .progress_arg = &po };
	struct mig_report rep;
	struct uidl_out uo = { .l = NULL };
	struct args a;
	char err[IMAP_ERR_MAX + 64];
	int rc = CLI_EXIT_USAGE;

	if (pw == NULL) {
		cli_error(ctx, "out of memory");
		return CLI_EXIT_ERROR;
	}
	/* OpenSSL's buffers (a LOGIN over TLS passes through them) are wiped
	 * when freed, as in the daemon. Nothing has used OpenSSL yet. */
	if (tls_init_wiping_allocator() != MF_OK) {
		cli_error(ctx, "cannot make OpenSSL wipe its memory");
		free(pw);
		return CLI_EXIT_ERROR;
	}
	if (parse_args(ctx, argv, &a) != MF_OK) {
		usage();
		goto out;
	}
	if (imap_url_parse(a.source, &o.src.url, err, sizeof(err)) != MF_OK ||
	    imap_url_parse(a.destination, &o.dst.url, err, sizeof(err)) != MF_OK) {
		cli_error(ctx, "%s", err);
		goto out;
	}
	if (o.dst.url.pop3) {
		cli_error(ctx, "the destination must be an IMAP server");
		goto out;
	}
	rc = CLI_EXIT_ERROR;
	if (a.pass_stdin && read_secret(ctx, "user's", &pw[0]) != MF_OK)
		goto out;
	if (a.dest_pass_stdin && read_secret(ctx, "destination user's", &pw[1]) != MF_OK)
		goto out;
	if (a.master_pass_stdin && read_secret(ctx, "master user's", &pw[2]) != MF_OK)
		goto out;
	o.src.user = a.user;
	o.dst.user = a.dest_user != NULL ? a.dest_user : a.user;
	if (a.master != NULL) {
		o.src.master = o.dst.master = a.master;
		o.src.pass = o.dst.pass = pw[2].buf;
		o.src.pass_len = o.dst.pass_len = pw[2].len;
	} else {
		const struct secret *d = a.dest_pass_stdin ? &pw[1] : &pw[0];

		o.src.pass = pw[0].buf;
		o.src.pass_len = pw[0].len;
		o.dst.pass = d->buf;
		o.dst.pass_len = d->len;
	}
	o.state_path = a.state;
	o.ca_file = a.ca;
	o.insecure = a.insecure;
	o.plain_append = a.plain_append;
	o.batch_max = (unsigned int)a.batch;
	o.max_inflight_bytes = (size_t)a.inflight;
	o.timeout_ms = (int)a.timeout * 1000;
	o.verify_sample_pct = (unsigned int)a.sample;
	o.sync_deletes = a.sync_deletes;
	if (a.uidl_map) {
		if ((!o.src.url.pop3 &&
		     pop3_url(a.source_pop3, &o.src.url, &o.uidl_src, err, sizeof(err)) != MF_OK) ||
		    pop3_url(a.destination_pop3, &o.dst.url, &o.uidl_dst, err, sizeof(err)) !=
			    MF_OK) {
			cli_error(ctx, "%s", err);
			rc = CLI_EXIT_USAGE;
			goto out;
		}
		if (a.ledger != NULL && uidl_ledger(ctx, &a, &uo) != MF_OK)
			goto out;
		o.uidl_store = uidl_store;
		o.uidl_store_arg = &uo;
	}
	if (mig_run(&o, &rep, err, sizeof(err)) == MF_OK)
		rc = CLI_EXIT_OK;
	if (po.tty)
		printf("\n");
	if (rc == CLI_EXIT_OK && po.tty) {
		printf("done: %u folders (%u created), %u subscriptions, %llu messages copied "
		       "(%llu bytes), %llu found already there, %llu verified (%llu by SHA-256), "
		       "%llu flag fixes\n",
		       rep.folders, rep.folders_created, rep.subscribed,
		       (unsigned long long)rep.copied, (unsigned long long)rep.bytes,
		       (unsigned long long)rep.reconciled, (unsigned long long)rep.verified,
		       (unsigned long long)rep.verified_hashed, (unsigned long long)rep.flags_fixed);
		if (rep.expunged > 0)
			printf("      %llu messages deleted on the source expunged\n",
			       (unsigned long long)rep.expunged);
		if (rep.uidl_mapped)
			printf("      POP3 UIDL map: %llu of %llu INBOX messages paired%s%s%s\n",
			       (unsigned long long)rep.uidl_pairs,
			       (unsigned long long)rep.uidl_copied, rep.uidl_note[0] ? " (" : "",
			       rep.uidl_note, rep.uidl_note[0] ? ")" : "");
	} else if (!po.tty) {
		printf("{\"event\":\"%s\",\"ok\":%s,\"folders\":%u,\"folders_created\":%u,"
		       "\"subscribed\":%u,\"copied\":%llu,\"bytes\":%llu,\"reconciled\":%llu,"
		       "\"verified\":%llu,\"verified_hashed\":%llu,\"flags_fixed\":%llu,"
		       "\"verify_ok\":%s",
		       rc == CLI_EXIT_OK ? "done" : "error", rc == CLI_EXIT_OK ? "true" : "false",
		       rep.folders, rep.folders_created, rep.subscribed,
		       (unsigned long long)rep.copied, (unsigned long long)rep.bytes,
		       (unsigned long long)rep.reconciled, (unsigned long long)rep.verified,
		       (unsigned long long)rep.verified_hashed, (unsigned long long)rep.flags_fixed,
		       rep.verify_ok ? "true" : "false");
		printf(",\"expunged\":%llu", (unsigned long long)rep.expunged);
		if (rep.uidl_mapped) {
			printf(",\"uidl_pairs\":%llu,\"uidl_copied\":%llu,\"uidl_note\":",
			       (unsigned long long)rep.uidl_pairs,
			       (unsigned long long)rep.uidl_copied);
			json_str(stdout, rep.uidl_note);
		}
		if (rc != CLI_EXIT_OK) {
			printf(",\"error\":");
			json_str(stdout, err);
		}
		printf("}\n");
	}
	fflush(stdout);
	if (rc != CLI_EXIT_OK)
		cli_error(ctx, "%s", err);
out:
	ledger_close(uo.l);
	explicit_bzero(pw, 3 * sizeof(*pw));
	free(pw);
	return rc;
}
