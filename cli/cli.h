/* cli.h — the mailferry admin tool: command tables and their dispatch.
 *
 * Commands form a tree of const tables: a node either runs (leaf) or has
 * subcommands. `mailferry rules install` walks "rules" then "install".
 * A new command group is one more table and one line in main.c's root. */
#ifndef MF_CLI_H
#define MF_CLI_H

#include "config.h"

#include <stdbool.h>
#include <stdio.h>

#define CLI_DEFAULT_CONFIG "/etc/mailferry/mailferry.conf"

enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_ERROR = 1,
	CLI_EXIT_USAGE = 2,
	CLI_EXIT_ABSENT = 3 /* rules status: nothing installed */
};

struct cli_ctx {
	const char *config_path;
	char cmd[96]; /* "rules install": set by cli_dispatch, for errors */
};

struct cli_cmd {
	const char *name;
	const char *args;  /* leaf: argument synopsis ("CIDR"), "" for none */
	unsigned int n_args; /* leaf: exactly this many arguments */
	/* leaf: n_args or more (options follow); run finds the end of argv
	 * by its NULL terminator */
	bool more_args;
	/* Leaf: argv holds the n_args arguments. Returns an enum cli_exit. */
	int (*run)(const struct cli_ctx *ctx, char **argv);
	const struct cli_cmd *sub; /* group: subcommands, ended by { NULL } */
	const char *help;  /* one line */
};

/* Finds argv[0] in cmds (descending into groups), checks the argument
 * count and runs it. Unknown or incomplete commands print the usage of
 * the level they stopped at and return CLI_EXIT_USAGE. */
int cli_dispatch(struct cli_ctx *ctx, const struct cli_cmd *cmds, int argc,
		 char **argv);

/* One line per leaf: "  rules install          install the ...". */
void cli_print_commands(FILE *f, const struct cli_cmd *cmds, const char *prefix);

/* "mailferry: rules install: ..." on stderr. */
void cli_error(const struct cli_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Loads ctx->config_path; on failure prints why and returns MF_ERROR. */
int cli_load_config(const struct cli_ctx *ctx, struct mf_config *cfg);

struct ledger;

/* Loads the config and opens its ledger; MF_ERROR after saying why. */
int cli_open_ledger(const struct cli_ctx *ctx, struct mf_config *cfg, struct ledger **l_r);

/* "2026-11-28T04:00:00Z", or "-" for 0. */
void cli_format_time(int64_t t, char *out, size_t outlen);

/* A JSON string literal (free text from admins and engines). */
void cli_json_string(FILE *f, const char *s);

extern const struct cli_cmd cli_rules_cmds[];
extern const struct cli_cmd cli_subnet_cmds[];
extern const struct cli_cmd cli_accounts_cmds[];
extern const struct cli_cmd cli_flows_cmds[];

/* `mailferry migrate ...` (cmd_migrate.c): a leaf taking options only. */
int cli_migrate_run(const struct cli_ctx *ctx, char **argv);

/* cmd_admin.c: commands answered by the running daemon over its admin
 * socket. cli_admin_call sends one request and returns the reply object
 * (json_decref it): MF_OK, or MF_ERROR after saying why on stderr. */
struct json_t;
int cli_admin_call(const struct cli_ctx *ctx, struct json_t *request, struct json_t **reply_r);
/* A reply's string member key ("" when absent or not a string) and its
 * integer member (0 likewise). */
const char *cli_reply_str(struct json_t *o, const char *key);
long long cli_reply_num(struct json_t *o, const char *key);
int cli_admin_status(const struct cli_ctx *ctx, char **argv);
int cli_admin_pin(const struct cli_ctx *ctx, char **argv);
int cli_admin_retry(const struct cli_ctx *ctx, char **argv);
int cli_admin_rollback(const struct cli_ctx *ctx, char **argv);
int cli_admin_pause(const struct cli_ctx *ctx, char **argv);
int cli_admin_resume(const struct cli_ctx *ctx, char **argv);
/* `mailferry migrate USER`: start USER's copy in the running daemon. */
int cli_migrate_user_run(const struct cli_ctx *ctx, char **argv);

/* csv_file.c: every record of the CSV file f (named path in errors) to
 * fn, in order. MF_OK at the end of the file; MF_ERROR after saying why
 * when f is not CSV or cannot be read, or when fn returned other than
 * MF_OK (fn says why). */
struct csv_reader;
int cli_csv_walk(const struct cli_ctx *ctx, FILE *f, const char *path,
		 int (*fn)(void *arg, const struct csv_reader *r), void *arg);

/* `mailferry migrate --user U --master` and `--from-csv FILE --master`
 * with no --source (cmd_push.c): the running daemon copies the accounts
 * as the master user; progress followed until each is MIGRATED or
 * FAILED. */
int cli_push_run(const struct cli_ctx *ctx, char **argv);

/* `mailferry accounts import FILE.csv` (cmd_import.c). */
int cli_accounts_import(const struct cli_ctx *ctx, char **argv);

/* `mailferry report retire` (cmd_report.c). */
extern const struct cli_cmd cli_report_cmds[];

#endif
