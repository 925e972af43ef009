/* cmd_report.c — `mailferry report retire [--json|--csv] [--window DAYS]`:
 * is the source safe to switch off (migrate/retire.h)? Reads the ledger;
 * the daemon need not run. Exit status 0 when safe, 1 when not (or on an
 * error), so a script can wait for it.
 *
 * --csv: one header row, then one row per account still on the source
 * (section never_seen, not_migrated, failed or pinned), per direct flow
 * (section direct_flow: name = client subnet or address, state = port,
 * count = flows), and a last row (section verdict: name = safe|not_safe,
 * detail = the verdict line). */
#include "cli.h"
#include "csv.h"
#include "ledger.h"
#include "mf.h"
#include "retire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WINDOW_DAYS_DEFAULT 7

static const char *const kind_title[RETIRE_KIND_COUNT] = {
	[RETIRE_NEVER_SEEN] = "Never seen (no login through the gateway)",
	[RETIRE_NOT_MIGRATED] = "Seen, not migrated",
	[RETIRE_FAILED] = "FAILED (with the reason)",
	[RETIRE_PINNED] = "PINNED (kept on the source by the admin)",
};

static void print_text(const struct retire_report *r)
{
	char t[32];
	size_t i = 0;

	cli_format_time(r->generated, t, sizeof(t));
	printf("Retire report, %s: %llu accounts, %llu MIGRATED\n", t,
	       (unsigned long long)r->total, (unsigned long long)r->migrated);
	for (unsigned int k = 0; k < RETIRE_KIND_COUNT; k++) {
		printf("\n%s: %llu\n", kind_title[k], (unsigned long long)r->n[k]);
		if (r->n[k] > 0)
			printf("  %-32s  %-8s  %-20s  %-24s  %-16s  %s\n", "ACCOUNT", "STATE",
			       "LAST LOGIN (SOURCE)", "LAST CLIENT", "LAST GATEWAY",
			       "REASON / NOTES");
		for (; i < r->n_accounts && r->kinds[i] == k; i++) {
			const struct account *a = &r->accounts[i];

			cli_format_time(a->last_seen, t, sizeof(t));
			printf("  %-32s  %-8s  %-20s  %-24s  %-16s  %s%s%s\n", a->name,
			       account_state_name(a->state), t,
			       a->last_client[0] ? a->last_client : "-",
			       a->last_gateway[0] ? a->last_gateway : "-",
			       k == RETIRE_NEVER_SEEN ? "" : a->reason,
			       a->notes[0] && k != RETIRE_NEVER_SEEN ? " / " : "", a->notes);
		}
	}
	printf("\nClients reaching the source directly (last %lld days): %zu\n",
	       (long long)(r->window_s / 86400), r->n_flows);
	if (r->n_flows > 0)
		printf("  %-43s  %5s  %10s  %s\n", "CLIENT SUBNET/ADDRESS", "PORT", "FLOWS",
		       "LAST SEEN");
	for (size_t f = 0; f < r->n_flows; f++) {
		cli_format_time(r->flows[f].last_seen, t, sizeof(t));
		printf("  %-43s  %5u  %10llu  %s\n", r->flows[f].subnet, r->flows[f].port,
		       (unsigned long long)(r->flows[f].observed + r->flows[f].direct), t);
	}
	printf("\nGateways on this ledger: %zu\n", r->n_gateways);
	for (size_t g = 0; g < r->n_gateways; g++) {
		cli_format_time(r->gateways[g].last_beat, t, sizeof(t));
		printf("  %-24s  %-8s  last heartbeat %s\n", r->gateways[g].id,
		       ledger_gateway_health(&r->gateways[g], r->generated), t);
	}
	printf("\nVerdict: %s\n", r->verdict);
}

static void json_account(const struct account *a, enum retire_kind k, bool first)
{
	printf("%s{\"name\":", first ? "" : ",");
	cli_json_string(stdout, a->name);
	printf(",\"kind\":\"%s\",\"state\":\"%s\",\"last_seen\":%lld,\"last_client\":",
	       retire_kind_name(k), account_state_name(a->state), (long long)a->last_seen);
	cli_json_string(stdout, a->last_client);
	printf(",\"last_gateway\":");
	cli_json_string(stdout, a->last_gateway);
	printf(",\"imported\":%lld,\"reason\":", (long long)a->imported);
	cli_json_string(stdout, a->reason);
	printf(",\"notes\":");
	cli_json_string(stdout, a->notes);
	printf("}");
}

static void print_json(const struct retire_report *r)
{
	printf("{\"generated\":%lld,\"window_s\":%lld,\"total\":%llu,\"migrated\":%llu",
	       (long long)r->generated, (long long)r->window_s, (unsigned long long)r->total,
	       (unsigned long long)r->migrated);
	for (unsigned int k = 0; k < RETIRE_KIND_COUNT; k++)
		printf(",\"%s\":%llu", retire_kind_name((enum retire_kind)k),
		       (unsigned long long)r->n[k]);
	printf(",\"accounts\":[");
	for (size_t i = 0; i < r->n_accounts; i++)
		json_account(&r->accounts[i], r->kinds[i], i == 0);
	printf("],\"direct_flows\":[");
	for (size_t f = 0; f < r->n_flows; f++) {
		printf("%s{\"client\":", f ? "," : "");
		cli_json_string(stdout, r->flows[f].subnet);
		printf(",\"port\":%u,\"flows\":%llu,\"observed\":%llu,\"direct\":%llu,"
		       "\"last_seen\":%lld}", r->flows[f].port,
		       (unsigned long long)(r->flows[f].observed + r->flows[f].direct),
		       (unsigned long long)r->flows[f].observed,
		       (unsigned long long)r->flows[f].direct, (long long)r->flows[f].last_seen);
	}
	printf("],\"gateways\":[");
	for (size_t g = 0; g < r->n_gateways; g++) {
		printf("%s{\"id\":", g ? "," : "");
		cli_json_string(stdout, r->gateways[g].id);
		printf(",\"health\":\"%s\",\"last_beat\":%lld}",
		       ledger_gateway_health(&r->gateways[g], r->generated),
		       (long long)r->gateways[g].last_beat);
	}
	printf("],\"direct_flow_count\":%llu,\"safe\":%s,\"verdict\":",
	       (unsigned long long)r->direct_flows, r->safe ? "true" : "false");
	cli_json_string(stdout, r->verdict);
	printf("}\n");
}

static void csv_row(const char *section, const char *name, const char *state,
		    const char *last_seen, const char *client, const char *count,
		    const char *detail)
{
	csv_write_field(stdout, section, false);
	csv_write_field(stdout, name, false);
	csv_write_field(stdout, state, false);
	csv_write_field(stdout, last_seen, false);
	csv_write_field(stdout, client, false);
	csv_write_field(stdout, count, false);
	csv_write_field(stdout, detail, true);
}

static void print_csv(const struct retire_report *r)
{
	char t[32], n[24], port[8];

	csv_row("section", "name", "state", "last_seen", "last_client", "count", "detail");
	for (size_t i = 0; i < r->n_accounts; i++) {
		const struct account *a = &r->accounts[i];

		cli_format_time(a->last_seen, t, sizeof(t));
		csv_row(retire_kind_name(r->kinds[i]), a->name, account_state_name(a->state), t,
			a->last_client, "", a->state == AS_UNSEEN ? a->notes : a->reason);
	}
	for (size_t f = 0; f < r->n_flows; f++) {
		cli_format_time(r->flows[f].last_seen, t, sizeof(t));
		snprintf(n, sizeof(n), "%llu",
			 (unsigned long long)(r->flows[f].observed + r->flows[f].direct));
		snprintf(port, sizeof(port), "%u", r->flows[f].port);
		csv_row("direct_flow", r->flows[f].subnet, port, t, "", n, "");
	}
	for (size_t g = 0; g < r->n_gateways; g++) {
		cli_format_time(r->gateways[g].last_beat, t, sizeof(t));
		csv_row("gateway", r->gateways[g].id,
			ledger_gateway_health(&r->gateways[g], r->generated), t, "", "", "");
	}
	csv_row("verdict", r->safe ? "safe" : "not_safe", "", "", "", "", r->verdict);
}

static int report_retire(const struct cli_ctx *ctx, char **argv)
{
	struct retire_report r;
	struct mf_config cfg;
	struct ledger *l = NULL;
	long days = WINDOW_DAYS_DEFAULT;
	bool json = false, csv = false;
	char err[512];
	int rc;

	for (; *argv != NULL; argv++) {
		if (strcmp(*argv, "--json") == 0) {
			json = true;
		} else if (strcmp(*argv, "--csv") == 0) {
			csv = true;
		} else if (strcmp(*argv, "--window") == 0 && argv[1] != NULL) {
			char *end;

			days = strtol(*++argv, &end, 10);
			if (*end != '\0' || days < 1 || days > 3650) {
				cli_error(ctx, "--window takes 1 to 3650 days");
				return CLI_EXIT_USAGE;
			}
		} else {
			cli_error(ctx, "unknown option '%s'", *argv);
			return CLI_EXIT_USAGE;
		}
	}
	if (json && csv) {
		cli_error(ctx, "--json or --csv, not both");
		return CLI_EXIT_USAGE;
	}
	if (cli_open_ledger(ctx, &cfg, &l) != MF_OK)
		return CLI_EXIT_ERROR;
	rc = retire_report_build(l, (int64_t)time(NULL), (int64_t)days * 86400, &r, err,
				 sizeof(err));
	ledger_close(l);
	if (rc != MF_OK) {
		cli_error(ctx, "%s", err);
		return CLI_EXIT_ERROR;
	}
	if (json)
		print_json(&r);
	else if (csv)
		print_csv(&r);
	else
		print_text(&r);
	rc = r.safe ? CLI_EXIT_OK : CLI_EXIT_ERROR;
	retire_report_free(&r);
	return rc;
}

const struct cli_cmd cli_report_cmds[] = {
	{ .name = "retire", .args = "[--json|--csv] [--window DAYS]", .more_args = true,
	  .run = report_retire, .help = "is the source safe to switch off? (exit 0: yes)" },
	{ .name = NULL },
};
