#include "admin_proto.h"
#include "mf.h"

#include <jansson.h>
#include <string.h>

void admin_line_init(struct admin_line *l)
{
	l->len = 0;
	l->done = false;
	l->buf[0] = '\0';
}

int admin_line_feed(struct admin_line *l, const char *in, size_t n, size_t *used_r)
{
	size_t i;

	if (l->done)
		admin_line_init(l);
	for (i = 0; i < n; i++) {
		char c = in[i];

		if (c == '\n') {
			if (l->len > 0 && l->buf[l->len - 1] == '\r')
				l->len--;
			l->buf[l->len] = '\0';
			l->done = true;
			*used_r = i + 1;
			return ADMIN_LINE_DONE;
		}
		/* At most ADMIN_LINE_MAX bytes before the LF, a CR included. */
		if (c == '\0' || l->len == ADMIN_LINE_MAX) {
			*used_r = i;
			return MF_ERROR;
		}
		l->buf[l->len++] = c;
	}
	*used_r = n;
	return MF_AGAIN;
}

static const char *const cmd_names[ADMIN_CMD_COUNT] = {
	[ADMIN_STATUS] = "status",	[ADMIN_MIGRATE] = "migrate", [ADMIN_PIN] = "pin",
	[ADMIN_RETRY] = "retry",	[ADMIN_ROLLBACK] = "rollback", [ADMIN_PAUSE] = "pause",
	[ADMIN_RESUME] = "resume",
};

const char *admin_cmd_name(enum admin_cmd c)
{
	return (unsigned int)c < ADMIN_CMD_COUNT ? cmd_names[c] : "?";
}

static bool cmd_takes_user(enum admin_cmd c)
{
	return c == ADMIN_MIGRATE || c == ADMIN_PIN || c == ADMIN_RETRY || c == ADMIN_ROLLBACK;
}

int admin_request_parse(const char *line, size_t len, struct admin_request *r, char *err,
			size_t errlen)
{
	json_error_t jerr;
	json_t *root, *v;
	const char *key, *cmd;
	size_t ulen;
	int rc = MF_ERROR;
	unsigned int i;

	memset(r, 0, sizeof(*r));
	if (len > ADMIN_LINE_MAX)
		return mf_err(err, errlen, "request longer than %d bytes", ADMIN_LINE_MAX);
	/* Duplicate keys refused: {"user":"a","user":"b"} has no one meaning.
	 * json_loadb also refuses NUL in strings unless told otherwise. */
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return mf_err(err, errlen, "not JSON: %s", jerr.text);
	if (!json_is_object(root)) {
		mf_err(err, errlen, "a request is a JSON object");
		goto out;
	}
	v = json_object_get(root, "cmd");
	if (!json_is_string(v)) {
		mf_err(err, errlen, "\"cmd\" (a string) is missing");
		goto out;
	}
	cmd = json_string_value(v);
	for (i = 0; i < ADMIN_CMD_COUNT; i++)
		if (strlen(cmd_names[i]) == json_string_length(v) && strcmp(cmd, cmd_names[i]) == 0)
			break;
	if (i == ADMIN_CMD_COUNT) {
		mf_err(err, errlen, "unknown command");
		goto out;
	}
	r->cmd = (enum admin_cmd)i;
	json_object_foreach(root, key, v) {
		if (strcmp(key, "cmd") == 0)
			continue;
		if (strcmp(key, "master") == 0 && r->cmd == ADMIN_MIGRATE) {
			if (!json_is_boolean(v)) {
				mf_err(err, errlen, "\"master\" must be true or false");
				goto out;
			}
			r->master = json_is_true(v);
			continue;
		}
		if (strcmp(key, "user") != 0 || !cmd_takes_user(r->cmd)) {
			mf_err(err, errlen, "%s takes no key \"%.32s\"", cmd_names[r->cmd], key);
			goto out;
		}
	}
	if (cmd_takes_user(r->cmd)) {
		v = json_object_get(root, "user");
		if (!json_is_string(v)) {
			mf_err(err, errlen, "%s needs \"user\" (a string)", cmd_names[r->cmd]);
			goto out;
		}
		ulen = json_string_length(v);
		if (ulen == 0 || ulen > ACCOUNT_NAME_MAX ||
		    memchr(json_string_value(v), '\0', ulen) != NULL) {
			mf_err(err, errlen, "\"user\" must be 1 to %d bytes, no NUL",
			       ACCOUNT_NAME_MAX);
			goto out;
		}
		memcpy(r->user, json_string_value(v), ulen);
		r->user[ulen] = '\0';
	}
	rc = MF_OK;
out:
	json_decref(root);
	if (rc != MF_OK)
		memset(r, 0, sizeof(*r));
	return rc;
}
