#include "imap_backend.h"
#include "mf.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

void imap_line_init(struct imap_line *l)
{
	l->len = 0;
	l->done = false;
	l->buf[0] = '\0';
}

int imap_line_feed(struct imap_line *l, const uint8_t *buf, size_t len,
		   size_t *used_r)
{
	size_t i;

	if (l->done)
		imap_line_init(l);
	for (i = 0; i < len; i++) {
		uint8_t c = buf[i];

		if (c == '\n') {
			if (l->len > 0 && l->buf[l->len - 1] == '\r')
				l->len--;
			l->buf[l->len] = '\0';
			l->done = true;
			*used_r = i + 1;
			return MF_OK;
		}
		/* One byte of slack for the CR that precedes LF. */
		if (c == '\0' || l->len > IMAP_RESP_LINE_MAX ||
		    (l->len == IMAP_RESP_LINE_MAX && c != '\r')) {
			*used_r = i + 1;
			return MF_ERROR;
		}
		l->buf[l->len++] = (char)c;
	}
	*used_r = len;
	return MF_AGAIN;
}

static const struct {
	const char *name;
	enum imap_resp_status st;
} statuses[] = {
	{ "OK", IMAP_ST_OK }, { "NO", IMAP_ST_NO }, { "BAD", IMAP_ST_BAD },
	{ "PREAUTH", IMAP_ST_PREAUTH }, { "BYE", IMAP_ST_BYE },
};

/* Status word at p: sets *st and returns the resp-text after it. */
static const char *status_of(const char *p, enum imap_resp_status *st)
{
	*st = IMAP_ST_OTHER;
	for (size_t i = 0; i < MF_ARRAY_LEN(statuses); i++) {
		size_t n = strlen(statuses[i].name);

		if (strncasecmp(p, statuses[i].name, n) == 0 &&
		    (p[n] == ' ' || p[n] == '\0')) {
			*st = statuses[i].st;
			return p[n] == ' ' ? p + n + 1 : p + n;
		}
	}
	return p;
}

int imap_resp_parse(const char *line, size_t len, struct imap_resp *r)
{
	const char *sp;

	memset(r, 0, sizeof(*r));
	r->text = "";
	if (len == 0 || strlen(line) != len)
		return MF_ERROR;
	if (line[0] == '+' && (len == 1 || line[1] == ' ')) {
		r->kind = IMAP_RESP_CONTINUE;
		r->text = len == 1 ? line + 1 : line + 2;
		return MF_OK;
	}
	sp = strchr(line, ' ');
	if (sp == NULL || sp == line)
		return MF_ERROR;
	if (sp - line == 1 && line[0] == '*') {
		r->kind = IMAP_RESP_UNTAGGED;
		r->text = status_of(sp + 1, &r->status);
		return MF_OK;
	}
	r->kind = IMAP_RESP_TAGGED;
	r->tag = line;
	r->tag_len = (size_t)(sp - line);
	r->text = status_of(sp + 1, &r->status);
	if (r->status != IMAP_ST_OK && r->status != IMAP_ST_NO && r->status != IMAP_ST_BAD)
		return MF_ERROR;
	return MF_OK;
}

bool imap_resp_text_has_cap(const char *text, const char *cap)
{
	static const char code[] = "[CAPABILITY ";
	size_t n = strlen(cap);
	const char *p, *end;

	if (strncasecmp(text, code, sizeof(code) - 1) != 0)
		return false;
	p = text + sizeof(code) - 1;
	end = strchr(p, ']');
	if (end == NULL)
		return false;
	while (p < end) {
		const char *w = p;

		while (p < end && *p != ' ')
			p++;
		if ((size_t)(p - w) == n && strncasecmp(w, cap, n) == 0)
			return true;
		while (p < end && *p == ' ')
			p++;
	}
	return false;
}

static bool quotable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\0' || c == '\r' || c == '\n' || c >= 0x80)
			return false;
	}
	return true;
}

static size_t put_quoted(char *out, const char *s, size_t n)
{
	size_t o = 0;

	out[o++] = '"';
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			out[o++] = '\\';
		out[o++] = s[i];
	}
	out[o++] = '"';
	return o;
}

int imap_login_build(const char *tag, const char *user, size_t user_len,
		     const char *pass, size_t pass_len, bool literal_plus,
		     struct imap_login_cmd *cmd)
{
	size_t tag_len = strlen(tag), o;
	char *b = cmd->buf;
	int n;

	memset(cmd, 0, sizeof(*cmd));
	if (tag_len == 0 || tag_len > 32 || user_len == 0 || pass_len == 0 ||
	    user_len > IMAP_LOGIN_FIELD_MAX || pass_len > IMAP_LOGIN_FIELD_MAX ||
	    memchr(user, '\0', user_len) || memchr(pass, '\0', pass_len))
		return MF_ERROR;
	if (literal_plus) {
		n = snprintf(b, sizeof(cmd->buf), "%s LOGIN {%zu+}\r\n", tag, user_len);
		o = (size_t)n;
		memcpy(b + o, user, user_len);
		o += user_len;
		o += (size_t)snprintf(b + o, sizeof(cmd->buf) - o, " {%zu+}\r\n", pass_len);
		memcpy(b + o, pass, pass_len);
		o += pass_len;
		memcpy(b + o, "\r\n", 2);
		cmd->seg_end[0] = o + 2;
		cmd->n_seg = 1;
		return MF_OK;
	}
	if (quotable(user, user_len) && quotable(pass, pass_len)) {
		o = (size_t)snprintf(b, sizeof(cmd->buf), "%s LOGIN ", tag);
		o += put_quoted(b + o, user, user_len);
		b[o++] = ' ';
		o += put_quoted(b + o, pass, pass_len);
		memcpy(b + o, "\r\n", 2);
		cmd->seg_end[0] = o + 2;
		cmd->n_seg = 1;
		return MF_OK;
	}
	o = (size_t)snprintf(b, sizeof(cmd->buf), "%s LOGIN {%zu}\r\n", tag, user_len);
	cmd->seg_end[0] = o;
	memcpy(b + o, user, user_len);
	o += user_len;
	o += (size_t)snprintf(b + o, sizeof(cmd->buf) - o, " {%zu}\r\n", pass_len);
	cmd->seg_end[1] = o;
	memcpy(b + o, pass, pass_len);
	o += pass_len;
	memcpy(b + o, "\r\n", 2);
	cmd->seg_end[2] = o + 2;
	cmd->n_seg = 3;
	return MF_OK;
}
