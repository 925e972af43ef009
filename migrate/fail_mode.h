/* fail_mode.h — the fail mode in force, from the config and the ledger.
 *
 * fail = open and fail = closed are what they say. fail = auto is open
 * until the first account reaches CUTOVER or MIGRATED, then closed for
 * good: from then on a flow reaching the source behind the gateway's back
 * could read a stale mailbox or leave mail where nobody reads it. The
 * switch is recorded in the ledger (setting FAIL_MODE_KEY = "closed"), so
 * that it holds after a restart or a reboot even if the account later
 * moves back (ROLLBACK) — an admin who wants open again says fail = open. */
#ifndef MF_FAIL_MODE_H
#define MF_FAIL_MODE_H

#include "config.h"
#include "ledger.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FAIL_MODE_KEY "fail_mode"

/* *closed_r: whether fail-closed is in force. For fail = auto it reads the
 * ledger, and when the recorded mode is still open but an account is in
 * CUTOVER or MIGRATED, records "closed" first (so *switched_r is true only
 * for the call that made the switch). l may be NULL unless cfg->fail is
 * auto. MF_OK, or MF_ERROR (err) when the ledger could not be read or
 * written: the caller keeps the mode it had. */
int fail_mode_effective(const struct mf_config *cfg, struct ledger *l,
			int64_t now, bool *closed_r, bool *switched_r,
			char *err, size_t errlen);

/* "open", "closed" or "auto" for logs. */
const char *fail_mode_name(enum mf_fail_mode m);

#endif
