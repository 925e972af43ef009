/* cmd_accounts.c — `mailferry accounts list|show|set-state`: the ledger as
 * an admin sees it. User names on the command line are normalised exactly
 * as the gateway normalises logins ([ledger] default_domain and
 * domain_equivalence), so "Ann" finds the account "ann@example.org".
 *
 * Output: text in aligned columns for people; --json for scripts, one JSON
 * object per line (JSON Lines): `list` prints one per account, `show` one
 * for the account with its history as an array. Times are Unix seconds in
 * JSON, ISO 8601 UTC in text ("-" for never). */
#include "account.h"
#include "cli.h"
#include "csv.h"
#include "ledger.h"
#include "mf.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct accounts_opts {
	bool json;
	bool csv;
	int state;          /* --state: an enum account_state, or -1 */
	const char *reason; /* --reason */
};

static bool opt_is(const char *name, size_t n, const char *want)
{
	return strlen(want) == n && strncmp(name, want, n) == 0;
}

/* Parses the options after the positional arguments ("--json", "--state S"
 * or "--state=S", "--reason TEXT"); allowed names those this command takes,
 * space-separated. */
static int parse_opts(const struct cli_ctx *ctx, char **argv, const char *allowed,
		      struct accounts_opts *o)
{
	o->json = false;
	o->csv = false;
	o->state = -1;
	o->reason = NULL;
	for (; *argv != NULL; argv++) {
		const char *a = *argv, *name = a + 2, *v = NULL;
		size_t n = strcspn(name, "=");
		bool ok = false;

		for (const char *p = allowed; *p != '\0' && strncmp(a, "--", 2) == 0;) {
			size_t m = strcspn(p, " ");

			if (m == n && strncmp(p, name, n) == 0)
				ok = true;
			p += m + (p[m] == ' ');
		}
		if (!ok) {
			cli_error(ctx, "unknown option '%s'", a);
			return MF_ERROR;
		}
		if (opt_is(name, n, "json") || opt_is(name, n, "csv")) {
			if (name[n] == '=') {
				cli_error(ctx, "%s takes no value", a);
				return MF_ERROR;
			}
			if (name[0] == 'j')
				o->json = true;
			else
				o->csv = true;
			if (o->json && o->csv) {
				cli_error(ctx, "--json or --csv, not both");
				return MF_ERROR;
			}
			continue;
		}
		if (name[n] == '=') {
			v = name + n + 1;
		} else if (argv[1] != NULL) {
			v = *++argv;
		} else {
			cli_error(ctx, "%s needs a value", a);
			return MF_ERROR;
		}
		if (opt_is(name, n, "state")) {
			enum account_state s;

			if (account_state_parse(v, &s) != MF_OK) {
				cli_error(ctx, "unknown state '%s'; states: UNSEEN SEEN "
					  "COPYING CUTOVER MIGRATED FAILED PINNED "
					  "FORCE ROLLBACK", v);
				return MF_ERROR;
			}
			o->state = (int)s;
		} else {
			o->reason = v;
		}
	}
	return MF_OK;
}

/* Config, then the ledger it names. */
static int normalise_user(const struct cli_ctx *ctx, const struct mf_config *cfg,
			  const char *user, char *out, size_t outlen)
{
	char err[200];

	if (account_name_normalise(user, strlen(user), cfg->ledger_default_domain,
				   cfg->ledger_domain_equivalence, out, outlen,
				   err, sizeof(err)) == MF_OK)
		return MF_OK;
	cli_error(ctx, "bad user name: %s", err);
	return MF_ERROR;
}

/* The account USER names (normalised like a login), from the config's
 * ledger, left open in *l_r: CLI_EXIT_OK, or the exit status after saying
 * why (usage for a bad name, error otherwise; *l_r NULL or to close). */
static int open_account(const struct cli_ctx *ctx, const char *user, struct mf_config *cfg,
			char name[ACCOUNT_NAME_MAX + 1], struct ledger **l_r, struct account *a)
{
	char err[512];
	int r;

	*l_r = NULL;
	if (cli_load_config(ctx, cfg) != MF_OK)
		return CLI_EXIT_ERROR;
	if (normalise_user(ctx, cfg, user, name, ACCOUNT_NAME_MAX + 1) != MF_OK)
		return CLI_EXIT_USAGE;
	if (ledger_open(cfg->ledger_path, l_r, err, sizeof(err)) != MF_OK) {
		cli_error(ctx, "%s", err);
		return CLI_EXIT_ERROR;
	}
	r = ledger_account_get(*l_r, name, a, err, sizeof(err));
	if (r == LEDGER_ABSENT)
		cli_error(ctx, "no account '%s' in the ledger", name);
	else if (r != MF_OK)
		cli_error(ctx, "%s", err);
	return r == MF_OK ? CLI_EXIT_OK : CLI_EXIT_ERROR;
}

static void json_account(FILE *f, const struct account *a)
{
	fputs("{\"name\":", f);
	cli_json_string(f, a->name);
	fprintf(f, ",\"state\":\"%s\",\"route\":\"%s\"", account_state_name(a->state),
		account_route_name(account_state_route(a->state)));
	fprintf(f, ",\"first_seen\":%lld,\"last_seen\":%lld,\"last_client\":",
		(long long)a->first_seen, (long long)a->last_seen);
	cli_json_string(f, a->last_client);
	fprintf(f, ",\"logins\":%llu,\"state_changed\":%lld,\"reason\":",
		(unsigned long long)a->logins, (long long)a->state_changed);
	cli_json_string(f, a->reason);
	fprintf(f, ",\"imported\":%lld,\"notes\":", (long long)a->imported);
	cli_json_string(f, a->notes);
	fputs(",\"last_gateway\":", f);
	cli_json_string(f, a->last_gateway);
}

/* ---- list ---------------------------------------------------------- */

struct list_ctx {
	bool json;
	bool csv;
	int name_width;
	unsigned int count;
};

static int measure_account(const struct account *a, void *data)
{
	struct list_ctx *lc = data;
	int n = (int)strlen(a->name);

	if (n > lc->name_width)
		lc->name_width = n;
	return MF_OK;
}

static int print_account(const struct account *a, void *data)
{
	struct list_ctx *lc = data;
	char seen[32];

	lc->count++;
	if (lc->json) {
		json_account(stdout, a);
		fputs("}\n", stdout);
		return MF_OK;
	}
	if (lc->csv) {
		char n[24], t[3][32];

		snprintf(n, sizeof(n), "%llu", (unsigned long long)a->logins);
		cli_format_time(a->first_seen, t[0], sizeof(t[0]));
		cli_format_time(a->last_seen, t[1], sizeof(t[1]));
		cli_format_time(a->state_changed, t[2], sizeof(t[2]));
		csv_write_field(stdout, a->name, false);
		csv_write_field(stdout, account_state_name(a->state), false);
		csv_write_field(stdout, account_route_name(account_state_route(a->state)), false);
		csv_write_field(stdout, n, false);
		csv_write_field(stdout, t[0], false);
		csv_write_field(stdout, t[1], false);
		csv_write_field(stdout, a->last_client, false);
		csv_write_field(stdout, t[2], false);
		csv_write_field(stdout, a->reason, false);
		csv_write_field(stdout, a->notes, true);
		return MF_OK;
	}
	cli_format_time(a->last_seen, seen, sizeof(seen));
	printf("%-*s  %-8s  %-11s  %6llu  %-20s  %s\n", lc->name_width, a->name,
	       account_state_name(a->state),
	       account_route_name(account_state_route(a->state)),
	       (unsigned long long)a->logins, seen,
	       a->last_client[0] ? a->last_client : "-");
	return MF_OK;
}

static int accounts_list(const struct cli_ctx *ctx, char **argv)
{
	struct list_ctx lc = { .name_width = 4 };
	struct accounts_opts o;
	struct mf_config cfg;
	struct ledger *l = NULL;
	char err[512];
	int rc = CLI_EXIT_ERROR;

	if (parse_opts(ctx, argv, "json csv state", &o) != MF_OK)
		return CLI_EXIT_USAGE;
	lc.json = o.json;
	lc.csv = o.csv;
	if (cli_open_ledger(ctx, &cfg, &l) != MF_OK)
		return CLI_EXIT_ERROR;
	/* Text needs the widest name first; the ledger is read twice rather
	 * than held in memory, whatever its size. */
	if (!o.json && !o.csv &&
	    ledger_account_list(l, o.state, measure_account, &lc, err, sizeof(err)) != MF_OK)
		goto fail;
	if (o.csv)
		fputs("name,state,route,logins,first_seen,last_seen,last_client,state_changed,"
		      "reason,notes\r\n", stdout);
	else if (!o.json)
		printf("%-*s  %-8s  %-11s  %6s  %-20s  %s\n", lc.name_width, "NAME",
		       "STATE", "ROUTE", "LOGINS", "LAST SEEN", "LAST CLIENT");
	if (ledger_account_list(l, o.state, print_account, &lc, err,
				sizeof(err)) != MF_OK)
		goto fail;
	rc = CLI_EXIT_OK;
	goto out;

fail:
	cli_error(ctx, "%s", err);
out:
	ledger_close(l);
	return rc;
}

/* ---- show ---------------------------------------------------------- */

struct show_ctx {
	bool json;
	bool first;
};

static int print_event(const struct account_event *e, void *data)
{
	struct show_ctx *sc = data;
	char at[32];

	if (sc->json) {
		fprintf(stdout, "%s{\"at\":%lld,\"from\":\"%s\",\"to\":\"%s\",\"reason\":",
			sc->first ? "" : ",", (long long)e->at,
			account_state_name(e->from), account_state_name(e->to));
		cli_json_string(stdout, e->reason);
		fputc('}', stdout);
		sc->first = false;
		return MF_OK;
	}
	cli_format_time(e->at, at, sizeof(at));
	printf("  %-20s  %-8s -> %-8s  %s\n", at, account_state_name(e->from),
	       account_state_name(e->to), e->reason);
	return MF_OK;
}

static int print_run(const struct copy_run *r, void *data)
{
	struct show_ctx *sc = data;
	char start[32], end[32];

	if (sc->json) {
		fprintf(stdout, "%s{\"started\":%lld,\"ended\":%lld,\"result\":\"%s\","
			"\"messages\":%llu,\"bytes\":%llu,\"error\":",
			sc->first ? "" : ",", (long long)r->started, (long long)r->ended,
			copy_result_name(r->result), (unsigned long long)r->messages,
			(unsigned long long)r->bytes);
		cli_json_string(stdout, r->error);
		fputc('}', stdout);
		sc->first = false;
		return MF_OK;
	}
	cli_format_time(r->started, start, sizeof(start));
	cli_format_time(r->ended, end, sizeof(end));
	printf("  %-20s  %-20s  %-11s  %6llu messages  %10llu bytes  %s\n", start, end,
	       copy_result_name(r->result), (unsigned long long)r->messages,
	       (unsigned long long)r->bytes, r->error);
	return MF_OK;
}

static void print_account_text(const struct account *a)
{
	char first[32], last[32], changed[32];

	cli_format_time(a->first_seen, first, sizeof(first));
	cli_format_time(a->last_seen, last, sizeof(last));
	cli_format_time(a->state_changed, changed, sizeof(changed));
	printf("name:           %s\n", a->name);
	printf("state:          %s\n", account_state_name(a->state));
	printf("route:          %s\n", account_route_name(account_state_route(a->state)));
	printf("first seen:     %s\n", first);
	printf("last seen:      %s\n", last);
	printf("last client:    %s\n", a->last_client[0] ? a->last_client : "-");
	printf("logins:         %llu\n", (unsigned long long)a->logins);
	printf("state changed:  %s\n", changed);
	printf("reason:         %s\n", a->reason[0] ? a->reason : "-");
	cli_format_time(a->imported, changed, sizeof(changed));
	printf("imported:       %s\n", changed);
	printf("notes:          %s\n", a->notes[0] ? a->notes : "-");
	printf("last gateway:   %s\n", a->last_gateway[0] ? a->last_gateway : "-");
}

/* Which gateways saw the account (several gateways on one ledger). */
static int print_gateway(const struct account_gateway *g, void *data)
{
	struct show_ctx *sc = data;
	char last[32];

	if (sc->json) {
		fputs(sc->first ? "" : ",", stdout);
		fputs("{\"gateway\":", stdout);
		cli_json_string(stdout, g->gateway);
		printf(",\"logins\":%llu,\"first_seen\":%lld,\"last_seen\":%lld}",
		       (unsigned long long)g->logins, (long long)g->first_seen,
		       (long long)g->last_seen);
		sc->first = false;
		return MF_OK;
	}
	cli_format_time(g->last_seen, last, sizeof(last));
	printf("  %-20s  %llu logins, last %s\n", g->gateway, (unsigned long long)g->logins,
	       last);
	return MF_OK;
}

static int accounts_show(const struct cli_ctx *ctx, char **argv)
{
	struct show_ctx sc = { .first = true };
	char name[ACCOUNT_NAME_MAX + 1], err[512];
	struct accounts_opts o;
	struct mf_config cfg;
	struct ledger *l = NULL;
	struct account a;
	int rc = CLI_EXIT_ERROR, r;

	if (parse_opts(ctx, argv + 1, "json", &o) != MF_OK)
		return CLI_EXIT_USAGE;
	sc.json = o.json;
	rc = open_account(ctx, argv[0], &cfg, name, &l, &a);
	if (rc != CLI_EXIT_OK)
		goto out;
	rc = CLI_EXIT_ERROR;
	if (o.json) {
		json_account(stdout, &a);
		fputs(",\"gateways\":[", stdout);
	} else {
		print_account_text(&a);
		printf("gateways:\n");
	}
	r = ledger_account_gateways(l, name, print_gateway, &sc, err, sizeof(err));
	if (r != MF_OK)
		goto fail;
	sc.first = true;
	if (o.json)
		fputs("],\"history\":[", stdout);
	else
		printf("history:\n");
	r = ledger_account_history(l, name, print_event, &sc, err, sizeof(err));
	if (r != MF_OK) {
		if (o.json)
			fputs("]}\n", stdout);
		goto fail;
	}
	if (o.json)
		fputs("],\"copy_runs\":[", stdout);
	else
		printf("copy runs:\n");
	sc.first = true;
	r = ledger_copy_run_list(l, name, print_run, &sc, err, sizeof(err));
	if (o.json)
		fputs("]}\n", stdout);
	if (r != MF_OK)
		goto fail;
	rc = CLI_EXIT_OK;
	goto out;

fail:
	cli_error(ctx, "%s", err);
out:
	ledger_close(l);
	return rc;
}

/* ---- uidl ---------------------------------------------------------- */

/* The POP3 UIDL map the copy stored for USER (destination UIDL -> source
 * UIDL, what the gateway's POP3 front end answers with after MIGRATED):
 * for an admin checking a POP3 user's complaint of mail downloaded twice. */
static int accounts_uidl(const struct cli_ctx *ctx, char **argv)
{
	char name[ACCOUNT_NAME_MAX + 1], err[512];
	struct uidl_pair *v = NULL;
	struct accounts_opts o;
	struct mf_config cfg;
	struct ledger *l = NULL;
	struct account a;
	size_t n = 0;
	int rc = CLI_EXIT_ERROR;

	if (parse_opts(ctx, argv + 1, "json", &o) != MF_OK)
		return CLI_EXIT_USAGE;
	rc = open_account(ctx, argv[0], &cfg, name, &l, &a);
	if (rc != CLI_EXIT_OK)
		goto out;
	rc = CLI_EXIT_ERROR;
	if (ledger_uidl_map_get(l, name, &v, &n, err, sizeof(err)) != MF_OK)
		goto fail;
	if (o.json) {
		fputs("{\"name\":", stdout);
		cli_json_string(stdout, name);
		printf(",\"state\":\"%s\",\"pairs\":[", account_state_name(a.state));
		for (size_t i = 0; i < n; i++) {
			fputs(i ? ",{\"destination\":" : "{\"destination\":", stdout);
			cli_json_string(stdout, v[i].dst);
			fputs(",\"source\":", stdout);
			cli_json_string(stdout, v[i].src);
			fputc('}', stdout);
		}
		fputs("]}\n", stdout);
	} else {
		printf("%s (%s): %zu UIDL pair%s%s\n", name, account_state_name(a.state), n,
		       n == 1 ? "" : "s", n ? " (destination -> source)" : "");
		for (size_t i = 0; i < n; i++)
			printf("  %s -> %s\n", v[i].dst, v[i].src);
	}
	rc = CLI_EXIT_OK;
	goto out;

fail:
	cli_error(ctx, "%s", err);
out:
	free(v);
	ledger_close(l);
	return rc;
}

/* ---- set-state ----------------------------------------------------- */

static int accounts_set_state(const struct cli_ctx *ctx, char **argv)
{
	char name[ACCOUNT_NAME_MAX + 1], err[512];
	enum account_state state, old;
	struct accounts_opts o;
	struct mf_config cfg;
	struct ledger *l = NULL;
	int rc = CLI_EXIT_ERROR;

	if (parse_opts(ctx, argv + 2, "reason", &o) != MF_OK)
		return CLI_EXIT_USAGE;
	if (account_state_parse(argv[1], &state) != MF_OK) {
		cli_error(ctx, "unknown state '%s'; states: UNSEEN SEEN COPYING "
			  "CUTOVER MIGRATED FAILED PINNED FORCE ROLLBACK", argv[1]);
		return CLI_EXIT_USAGE;
	}
	if (cli_load_config(ctx, &cfg) != MF_OK)
		return CLI_EXIT_ERROR;
	if (normalise_user(ctx, &cfg, argv[0], name, sizeof(name)) != MF_OK)
		return CLI_EXIT_USAGE;
	if (ledger_open(cfg.ledger_path, &l, err, sizeof(err)) != MF_OK)
		goto fail;
	if (ledger_account_set_state(l, name, state,
				     o.reason ? o.reason : "admin override",
				     (int64_t)time(NULL), &old, err,
				     sizeof(err)) != MF_OK)
		goto fail;
	printf("%s: %s -> %s\n", name, account_state_name(old),
	       account_state_name(state));
	rc = CLI_EXIT_OK;
	goto out;

fail:
	cli_error(ctx, "%s", err);
out:
	ledger_close(l);
	return rc;
}

const struct cli_cmd cli_accounts_cmds[] = {
	{ .name = "list", .args = "[--state S] [--json|--csv]", .more_args = true,
	  .run = accounts_list, .help = "accounts in the ledger" },
	{ .name = "show", .args = "USER [--json]", .n_args = 1, .more_args = true,
	  .run = accounts_show, .help = "one account, its history and copy runs" },
	{ .name = "uidl", .args = "USER [--json]", .n_args = 1, .more_args = true,
	  .run = accounts_uidl, .help = "the POP3 UIDL map the copy stored (destination -> source)" },
	{ .name = "import", .args = "FILE.csv", .n_args = 1, .run = cli_accounts_import,
	  .help = "the admin's list of accounts (user[,pin][,notes])" },
	{ .name = "set-state", .args = "USER STATE [--reason TEXT]", .n_args = 2,
	  .more_args = true, .run = accounts_set_state,
	  .help = "admin override of an account's state" },
	{ .name = NULL },
};
