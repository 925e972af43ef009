/* cmd_flows.c — `mailferry flows list`: new flows per intercepted client
 * subnet and port, as the SYN gate counted them (observe mode, and what
 * went through the gateway), and per client address the flows that
 * reached a source directly, as the nftables rules counted them. */
#include "cli.h"
#include "config.h"
#include "direct_flows.h"
#include "ledger.h"
#include "mf.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int print_flow(const struct flow_count *c, void *data)
{
	bool json = *(bool *)data;
	char seen[32];

	cli_format_time(c->last_seen, seen, sizeof(seen));
	if (json) {
		fputs("{\"subnet\":", stdout);
		cli_json_string(stdout, c->subnet);
		printf(",\"port\":%u,\"observed\":%llu,\"intercepted\":%llu,\"direct\":%llu,"
		       "\"last_seen\":%lld}\n",
		       c->port, (unsigned long long)c->observed,
		       (unsigned long long)c->intercepted, (unsigned long long)c->direct,
		       (long long)c->last_seen);
	} else {
		printf("%-43s  %5u  %10llu  %11llu  %10llu  %s\n", c->subnet, c->port,
		       (unsigned long long)c->observed, (unsigned long long)c->intercepted,
		       (unsigned long long)c->direct, seen);
	}
	return MF_OK;
}

static int flows_list(const struct cli_ctx *ctx, char **argv)
{
	struct mf_config cfg;
	struct ledger *l = NULL;
	bool json = false;
	char err[512];
	int rc;

	for (char **a = argv; *a != NULL; a++) {
		if (strcmp(*a, "--json") != 0) {
			cli_error(ctx, "unknown option '%s'", *a);
			return CLI_EXIT_USAGE;
		}
		json = true;
	}
	if (cli_open_ledger(ctx, &cfg, &l) != MF_OK)
		return CLI_EXIT_ERROR;
	/* Counts still in the kernel (a daemon stopped, or between its
	 * drains) first; without the rules there is nothing to drain. */
	{
		struct direct_flows df;

		direct_flows_init(&df);
		if (direct_flows_collect(&df, l, (int64_t)time(NULL), NULL, err,
					 sizeof(err)) != MF_OK)
			fprintf(stderr, "mailferry: flows list: direct flows not updated: %s\n",
				err);
		direct_flows_destroy(&df);
	}
	if (!json)
		printf("%-43s  %5s  %10s  %11s  %10s  %s\n", "SUBNET", "PORT", "OBSERVED",
		       "INTERCEPTED", "DIRECT", "LAST SEEN");
	rc = ledger_flow_count_list(l, print_flow, &json, err, sizeof(err));
	ledger_close(l);
	if (rc != MF_OK) {
		cli_error(ctx, "%s", err);
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

const struct cli_cmd cli_flows_cmds[] = {
	{ .name = "list", .args = "[--json]", .more_args = true, .run = flows_list,
	  .help = "new flows per client subnet and port: through the SYN gate, and "
		  "straight to a source (per client address)" },
	{ .name = NULL },
};
