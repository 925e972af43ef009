/* cmd_subnet.c — `mailferry subnet add|del CIDR`, `subnet list`: client
 * subnets intercepted, changed at run time. They need no config: the
 * table and set names are fixed. */
#include "cli.h"
#include "mf.h"
#include "netaddr.h"
#include "rules.h"

#include <stdbool.h>
#include <stdio.h>

static int parse_subnet(const struct cli_ctx *ctx, const char *text,
			struct mf_cidr *c_r)
{
	if (mf_cidr_parse(text, c_r) == MF_OK)
		return MF_OK;
	cli_error(ctx, "bad subnet '%s': want ADDRESS/PREFIX with the host "
		  "bits zero, e.g. 198.18.1.0/24 or 2001:db8:1::/64", text);
	return MF_ERROR;
}

static int subnet_change(const struct cli_ctx *ctx, char **argv, bool add)
{
	enum mf_subnet_change change;
	struct mf_cidr subnet;
	char err[512], text[MF_ADDRSTRLEN];
	int rc;

	if (parse_subnet(ctx, argv[0], &subnet) != MF_OK)
		return CLI_EXIT_USAGE;
	rc = add ? mf_subnet_add(&subnet, &change, err, sizeof(err)) :
		   mf_subnet_del(&subnet, &change, err, sizeof(err));
	if (rc != MF_OK) {
		cli_error(ctx, "%s", err);
		return CLI_EXIT_ERROR;
	}
	mf_cidr_format(&subnet, text, sizeof(text));
	if (change == MF_SUBNET_CHANGED)
		printf("%s %s\n", add ? "intercepting" : "no longer intercepting", text);
	else
		printf("%s %s (nothing to do)\n",
		       add ? "already intercepting" : "was not intercepting", text);
	return CLI_EXIT_OK;
}

static int subnet_add(const struct cli_ctx *ctx, char **argv)
{
	return subnet_change(ctx, argv, true);
}

static int subnet_del(const struct cli_ctx *ctx, char **argv)
{
	return subnet_change(ctx, argv, false);
}

static int print_subnet(const struct mf_cidr *subnet, void *data)
{
	char text[MF_ADDRSTRLEN];

	(void)data;
	mf_cidr_format(subnet, text, sizeof(text));
	printf("%s\n", text);
	return MF_OK;
}

static int subnet_list(const struct cli_ctx *ctx, char **argv)
{
	char err[512];

	(void)argv;
	if (mf_subnet_list(print_subnet, NULL, err, sizeof(err)) != MF_OK) {
		cli_error(ctx, "%s", err);
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

const struct cli_cmd cli_subnet_cmds[] = {
	{ .name = "add", .args = "CIDR", .n_args = 1, .run = subnet_add,
	  .help = "intercept clients in CIDR from now on" },
	{ .name = "del", .args = "CIDR", .n_args = 1, .run = subnet_del,
	  .help = "stop intercepting CIDR" },
	{ .name = "list", .args = "", .run = subnet_list,
	  .help = "list intercepted client subnets" },
	{ .name = NULL },
};
