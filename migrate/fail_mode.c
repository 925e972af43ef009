#include "fail_mode.h"
#include "mf.h"

#include <string.h>

const char *fail_mode_name(enum mf_fail_mode m)
{
	switch (m) {
	case MF_FAIL_OPEN:
		return "open";
	case MF_FAIL_CLOSED:
		return "closed";
	case MF_FAIL_AUTO:
		break;
	}
	return "auto";
}

/* Stops the walk at the first account: its existence is the answer. */
static int found(const struct account *a, void *data)
{
	(void)a;
	*(bool *)data = true;
	return MF_AGAIN;
}

static int any_in_state(struct ledger *l, enum account_state st, bool *any_r,
			char *err, size_t errlen)
{
	int rc;

	*any_r = false;
	rc = ledger_account_list(l, (int)st, found, any_r, err, errlen);
	return rc == MF_AGAIN || rc == MF_OK ? MF_OK : MF_ERROR;
}

int fail_mode_effective(const struct mf_config *cfg, struct ledger *l,
			int64_t now, bool *closed_r, bool *switched_r,
			char *err, size_t errlen)
{
	char value[LEDGER_SETTING_VALUE_MAX];
	bool cutover, migrated;
	int rc;

	*switched_r = false;
	if (cfg->fail != MF_FAIL_AUTO) {
		*closed_r = cfg->fail == MF_FAIL_CLOSED;
		return MF_OK;
	}
	rc = ledger_setting_get(l, FAIL_MODE_KEY, value, sizeof(value), err, errlen);
	if (rc == MF_ERROR)
		return MF_ERROR;
	if (rc == MF_OK && strcmp(value, "closed") == 0) {
		*closed_r = true;
		return MF_OK;
	}
	if (any_in_state(l, AS_CUTOVER, &cutover, err, errlen) != MF_OK ||
	    any_in_state(l, AS_MIGRATED, &migrated, err, errlen) != MF_OK)
		return MF_ERROR;
	if (!cutover && !migrated) {
		*closed_r = false;
		return MF_OK;
	}
	if (ledger_setting_set(l, FAIL_MODE_KEY, "closed", now, err, errlen) != MF_OK)
		return MF_ERROR;
	*closed_r = true;
	*switched_r = true;
	return MF_OK;
}
