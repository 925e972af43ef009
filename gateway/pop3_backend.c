#include "pop3_backend.h"
#include "mf.h"

#include <string.h>
#include <strings.h>

int pop3_status_parse(const char *line, size_t len, enum pop3_status *st_r)
{
	size_t n;

	if (len >= 3 && strncasecmp(line, "+OK", 3) == 0) {
		*st_r = POP3_ST_OK;
		n = 3;
	} else if (len >= 4 && strncasecmp(line, "-ERR", 4) == 0) {
		*st_r = POP3_ST_ERR;
		n = 4;
	} else {
		return MF_ERROR;
	}
	if (len > n && line[n] != ' ')
		return MF_ERROR;
	return MF_OK;
}

int pop3_up_cmd_build(const char *verb, const char *value, size_t value_len,
		      char out[POP3_UP_CMD_MAX], size_t *len_r)
{
	size_t vl = strlen(verb);

	if (value_len == 0 || value_len > POP3_UP_FIELD_MAX ||
	    vl + 1 + value_len + 3 > POP3_UP_CMD_MAX)
		return MF_ERROR;
	for (size_t i = 0; i < value_len; i++)
		if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
			return MF_ERROR;
	memcpy(out, verb, vl);
	out[vl] = ' ';
	memcpy(out + vl + 1, value, value_len);
	memcpy(out + vl + 1 + value_len, "\r\n", 3);
	*len_r = vl + 1 + value_len + 2;
	return MF_OK;
}
