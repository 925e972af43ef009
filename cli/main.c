/* main.c — `mailferry`, the admin tool: options, then the command tree. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static int cmd_help(const struct cli_ctx *ctx, char **argv);

static bool has_option(char **argv, const char *opt)
{
	for (; *argv != NULL; argv++)
		if (strcmp(*argv, opt) == 0)
			return true;
	return false;
}

/* `migrate USER` asks the daemon; `migrate --source ...` is the one-shot;
 * `migrate --user U --master` or `--from-csv FILE --master` without
 * --source is the push through the daemon. */
static int cmd_migrate(const struct cli_ctx *ctx, char **argv)
{
	if (argv[0] != NULL && argv[0][0] != '-')
		return cli_migrate_user_run(ctx, argv);
	if (!has_option(argv, "--source") && !has_option(argv, "--destination") &&
	    (has_option(argv, "--master") || has_option(argv, "--from-csv")))
		return cli_push_run(ctx, argv);
	return cli_migrate_run(ctx, argv);
}

/* The root of the command tree; a new group is one more line here. */
static const struct cli_cmd root_cmds[] = {
	{ .name = "rules", .sub = cli_rules_cmds },
	{ .name = "subnet", .sub = cli_subnet_cmds },
	{ .name = "accounts", .sub = cli_accounts_cmds },
	{ .name = "flows", .sub = cli_flows_cmds },
	{ .name = "report", .sub = cli_report_cmds },
	{ .name = "status", .args = "[--json]", .more_args = true, .run = cli_admin_status,
	  .help = "the running daemon: health, sessions, accounts, copies, errors" },
	{ .name = "migrate", .args = "USER [--master] [--json]  (the running daemon)",
	  .more_args = true, .run = cmd_migrate,
	  .help = "start USER's copy now with a login it holds, or as the master user" },
	{ .name = "migrate", .args = "(--user U | --from-csv FILE) --master [--window N]",
	  .more_args = true, .run = cmd_migrate,
	  .help = "the daemon copies these accounts as the master user; follows to the end" },
	{ .name = "migrate", .args = "--source URL --destination URL --user U ...",
	  .more_args = true, .run = cmd_migrate, .help = "copy one mailbox and verify it" },
	{ .name = "pin", .args = "USER [--json]", .n_args = 1, .more_args = true,
	  .run = cli_admin_pin, .help = "never move USER (stays on the source)" },
	{ .name = "retry", .args = "USER [--json]", .n_args = 1, .more_args = true,
	  .run = cli_admin_retry, .help = "copy a FAILED account again" },
	{ .name = "rollback", .args = "USER [--json]", .n_args = 1, .more_args = true,
	  .run = cli_admin_rollback, .help = "send USER back to the source (before MIGRATED)" },
	{ .name = "pause", .args = "[--json]", .more_args = true, .run = cli_admin_pause,
	  .help = "start no more copies (persisted)" },
	{ .name = "resume", .args = "[--json]", .more_args = true, .run = cli_admin_resume,
	  .help = "start copies again" },
	{ .name = "help", .args = "", .run = cmd_help, .help = "this help" },
	{ .name = NULL },
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mailferry [-c FILE] COMMAND [ARGS]\n"
		"\n"
		"Admin tool of mailferry, the transparent mail-migration gateway.\n"
		"\n"
		"options:\n"
		"  -c, --config FILE      configuration file (default %s)\n"
		"  -h, --help             this help\n"
		"\n"
		"commands:\n",
		CLI_DEFAULT_CONFIG);
	cli_print_commands(f, root_cmds, "");
	fprintf(f,
		"\n"
		"`rules install` builds table inet mailferry and the policy routing\n"
		"from [gateway] listen_port and [intercept] sources, ports, clients,\n"
		"fwmark, route_table, rule_priority, replacing what was installed in\n"
		"one atomic step. It also resets the client subnets to [intercept]\n"
		"clients: `subnet add` / `subnet del` change them at run time only,\n"
		"until the next `rules install`; put lasting ones in the config.\n"
		"Adding a subnet that is already intercepted, or deleting one that\n"
		"is not, does nothing; a subnet overlapping an intercepted one is an\n"
		"error. The subnet commands do not read the config.\n"
		"\n"
		"exit status: 0 ok, 1 error (status: partly installed or not as\n"
		"configured), 2 usage error, 3 status: not installed\n");
}

static int cmd_help(const struct cli_ctx *ctx, char **argv)
{
	(void)ctx;
	(void)argv;
	usage(stdout);
	return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli_ctx ctx = { .config_path = CLI_DEFAULT_CONFIG };
	int c;

	/* '+': options end at the command, its arguments are its own. */
	while ((c = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			ctx.config_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return CLI_EXIT_OK;
		default:
			usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind == argc) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	return cli_dispatch(&ctx, root_cmds, argc - optind, argv + optind);
}
