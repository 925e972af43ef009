#include "cli.h"
#include "ledger.h"
#include "mf.h"
#include "utf8.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void cli_error(const struct cli_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mailferry: ");
	if (ctx != NULL && ctx->cmd[0] != '\0')
		fprintf(stderr, "%s: ", ctx->cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_load_config(const struct cli_ctx *ctx, struct mf_config *cfg)
{
	char err[512];

	if (mf_config_load(ctx->config_path, cfg, err, sizeof(err)) == MF_OK)
		return MF_OK;
	cli_error(ctx, "%s", err);
	return MF_ERROR;
}

void cli_print_commands(FILE *f, const struct cli_cmd *cmds, const char *prefix)
{
	for (const struct cli_cmd *c = cmds; c->name != NULL; c++) {
		char path[128];

		snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? " " : "",
			 c->name);
		if (c->sub != NULL) {
			cli_print_commands(f, c->sub, path);
			continue;
		}
		if (c->args[0] != '\0') {
			char full[160];

			snprintf(full, sizeof(full), "%s %s", path, c->args);
			fprintf(f, "  %-22s %s\n", full, c->help);
		} else {
			fprintf(f, "  %-22s %s\n", path, c->help);
		}
	}
}

/* Usage of the level reached: "usage: mailferry [-c FILE] rules ..." */
static void level_usage(const char *path, const struct cli_cmd *cmds)
{
	fprintf(stderr, "usage: mailferry [-c FILE] %s%sCOMMAND ...\ncommands:\n",
		path, path[0] ? " " : "");
	cli_print_commands(stderr, cmds, path);
}

int cli_dispatch(struct cli_ctx *ctx, const struct cli_cmd *cmds, int argc,
		 char **argv)
{
	char *path = ctx->cmd;
	const struct cli_cmd *c;
	size_t used = 0;

	path[0] = '\0';
	for (;;) {
		if (argc == 0) {
			cli_error(NULL, "%s%smissing command", path,
				  path[0] ? ": " : "");
			level_usage(path, cmds);
			return CLI_EXIT_USAGE;
		}
		for (c = cmds; c->name != NULL; c++)
			if (strcmp(c->name, argv[0]) == 0)
				break;
		if (c->name == NULL) {
			cli_error(NULL, "unknown command '%s%s%s'", path,
				  path[0] ? " " : "", argv[0]);
			level_usage(path, cmds);
			return CLI_EXIT_USAGE;
		}
		used += (size_t)snprintf(path + used, sizeof(ctx->cmd) - used,
					 "%s%s", used ? " " : "", c->name);
		if (used >= sizeof(ctx->cmd))
			used = sizeof(ctx->cmd) - 1;
		argc--;
		argv++;
		if (c->sub == NULL)
			break;
		cmds = c->sub;
	}
	if ((unsigned int)argc != c->n_args &&
	    !(c->more_args && (unsigned int)argc > c->n_args)) {
		cli_error(ctx, "expected %s%s", c->n_args ? c->args : "no arguments",
			  (unsigned int)argc > c->n_args ? ", got more" : "");
		fprintf(stderr, "usage: mailferry [-c FILE] %s%s%s\n", path,
			c->args[0] ? " " : "", c->args);
		return CLI_EXIT_USAGE;
	}
	return c->run(ctx, argv);
}

int cli_open_ledger(const struct cli_ctx *ctx, struct mf_config *cfg,
		    struct ledger **l_r)
{
	char err[512];

	if (cli_load_config(ctx, cfg) != MF_OK)
		return MF_ERROR;
	if (ledger_open(cfg->ledger_path, l_r, err, sizeof(err)) != MF_OK) {
		cli_error(ctx, "%s", err);
		return MF_ERROR;
	}
	return MF_OK;
}

void cli_format_time(int64_t t, char *out, size_t outlen)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outlen, "-");
}

void cli_json_string(FILE *f, const char *s)
{
	/* JSON strings are UTF-8: a name or reason that is not gets U+FFFD
	 * for each stray byte rather than making the whole line invalid. */
	size_t cap = 3 * strlen(s) + 1;
	char *clean = malloc(cap);

	if (clean != NULL) {
		mf_utf8_clean(s, clean, cap);
		s = clean;
	}
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
	free(clean);
}
