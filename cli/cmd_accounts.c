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
#include "ledger.h"
#include "mf.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct accounts_opts {
	bool json;
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
		if (opt_is(name, n, "json")) {
			if (name[n] == '=') {
				cli_error(ctx, "--json takes no value");
				return MF_ERROR;
			}
			o->json = true;
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
	fputs(",\"last_gateway\":", f);
	cli_json_string(f, a->last_gateway);
}

/* ---- list ---------------------------------------------------------- */

struct list_ctx {
	bool json;
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

	if (parse_opts(ctx, argv, "json state", &o) != MF_OK)
		return CLI_EXIT_USAGE;
	lc.json = o.json;
	if (cli_open_ledger(ctx, &cfg, &l) != MF_OK)
		return CLI_EXIT_ERROR;
	/* Text needs the widest name first; the ledger is read twice rather
	 * than held in memory, whatever its size. */
	if (!o.json && ledger_account_list(l, o.state, measure_account, &lc, err,
					   sizeof(err)) != MF_OK)
		goto fail;
	if (!o.json)
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
	if (cli_load_config(ctx, &cfg) != MF_OK)
		return CLI_EXIT_ERROR;
	if (normalise_user(ctx, &cfg, argv[0], name, sizeof(name)) != MF_OK)
		return CLI_EXIT_USAGE;
	if (ledger_open(cfg.ledger_path, &l, err, sizeof(err)) != MF_OK)
		goto fail;
	r = ledger_account_get(l, name, &a, err, sizeof(err));
	if (r == LEDGER_ABSENT) {
		cli_error(ctx, "no account '%s' in the ledger", name);
		goto out;
	}
	if (r != MF_OK)
		goto fail;
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
	{ .name = "list", .args = "[--state S] [--json]", .more_args = true,
	  .run = accounts_list, .help = "accounts in the ledger" },
	{ .name = "show", .args = "USER [--json]", .n_args = 1, .more_args = true,
	  .run = accounts_show, .help = "one account and its history" },
	{ .name = "set-state", .args = "USER STATE [--reason TEXT]", .n_args = 2,
	  .more_args = true, .run = accounts_set_state,
	  .help = "admin override of an account's state" },
	{ .name = NULL },
};
