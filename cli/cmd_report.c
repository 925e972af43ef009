/* placeholder replaced below */
#include "cli.h"
const struct cli_cmd cli_report_cmds[] = { { .name = NULL } };
