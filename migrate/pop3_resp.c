/* pop3_resp.c — see pop3_resp.h. */
#include "pop3_resp.h"
#include "mf.h"

#include <stdio.h>
#include <string.h>

enum {
	PS_LINE = 0,  /* status line: collecting */
	PS_LINE_CR,   /* status line: CR seen */
	PS_BOL,       /* body: at the start of a line */
	PS_DOT,       /* body: "." at the start of a line */
	PS_DOT_CR,    /* body: ".\r" */
	PS_MID,       /* body: inside a line */
	PS_CR         /* body: CR inside a line */
};

void pop3_resp_init(struct pop3_resp *p, uint64_t body_max)
{
	memset(p, 0, sizeof(*p));
	p->body_max = body_max > 0 ? body_max : UINT64_C(1) << 30;
	p->state = PS_LINE;
}

static int fail(struct pop3_resp *p, const char *why)
{
	snprintf(p->err, sizeof(p->err), "%s", why);
	return MF_ERROR;
}

/* The line in p->line is whole: +OK or -ERR? The next line starts afresh
 * (line_len 0), while p->line keeps this one for the caller. */
static int status_done(struct pop3_resp *p)
{
	p->line[p->line_len] = '\0';
	p->line_len = 0;
	p->state = PS_LINE;
	if (strncmp(p->line, "+OK", 3) == 0 && (p->line[3] == '\0' || p->line[3] == ' '))
		p->ok = true;
	else if (strncmp(p->line, "-ERR", 4) == 0 && (p->line[4] == '\0' || p->line[4] == ' '))
		p->ok = false;
	else
		return fail(p, "not a POP3 status line");
	return MF_OK;
}

int pop3_resp_status(struct pop3_resp *p, const uint8_t *buf, size_t len, size_t *used_r)
{
	size_t i = 0;

	if (p->state != PS_LINE && p->state != PS_LINE_CR) {
		p->state = PS_LINE;
		p->line_len = 0;
	}
	while (i < len) {
		uint8_t c = buf[i++];

		if (c == '\n') {
			*used_r = i;
			return status_done(p);
		}
		if (p->state == PS_LINE_CR) {
			*used_r = i;
			p->line_len = 0;
			p->state = PS_LINE;
			return fail(p, "CR without LF in a status line");
		}
		if (c == '\r') {
			p->state = PS_LINE_CR;
			continue;
		}
		/* Room for the line and its CRLF within the bound; no NUL. */
		if (c == '\0' || p->line_len + 2 >= POP3_RESP_LINE_MAX) {
			*used_r = i;
			p->line_len = 0;
			return fail(p, c == '\0' ? "NUL in a status line" : "status line too long");
		}
		p->line[p->line_len++] = (char)c;
	}
	*used_r = i;
	return MF_AGAIN;
}

const char *pop3_resp_text(const struct pop3_resp *p)
{
	const char *sp = strchr(p->line, ' ');

	return sp != NULL ? sp + 1 : "";
}

int pop3_resp_body(struct pop3_resp *p, const uint8_t *buf, size_t len, size_t *used_r,
		   uint8_t *out, size_t outcap, size_t *outlen_r)
{
	size_t i = 0, o = 0;

	if (p->state == PS_LINE || p->state == PS_LINE_CR) {
		p->state = PS_BOL;
		p->body_len = 0;
	}
	*outlen_r = 0;
	if (outcap < 2) {
		*used_r = 0;
		return fail(p, "body output buffer too small");
	}
	while (i < len) {
		uint8_t c = buf[i];

		/* At most two bytes out per input byte (".\rX" gives "\rX"). */
		if (o + 2 > outcap)
			break;
		switch (p->state) {
		case PS_BOL:
			if (c == '.') {
				p->state = PS_DOT;
				i++;
				continue;
			}
			p->state = PS_MID;
			continue; /* the same byte, as part of the line */
		case PS_DOT:
			if (c == '\r') {
				p->state = PS_DOT_CR;
				i++;
				continue;
			}
			if (c == '\n') /* ".\n": the end, from a bare-LF server */
				goto end;
			p->state = PS_MID; /* a stuffed dot: dropped */
			continue;
		case PS_DOT_CR:
			if (c == '\n')
				goto end;
			/* ".\r" and more: the line was "\r..." stuffed */
			out[o++] = '\r';
			p->body_len++;
			p->state = PS_CR;
			continue;
		case PS_CR:
			out[o++] = c;
			p->body_len++;
			i++;
			p->state = c == '\n' ? PS_BOL : c == '\r' ? PS_CR : PS_MID;
			break;
		default: /* PS_MID */
			out[o++] = c;
			p->body_len++;
			i++;
			if (c == '\r')
				p->state = PS_CR;
			else if (c == '\n')
				p->state = PS_BOL;
			break;
		}
		if (p->body_len > p->body_max) {
			*used_r = i;
			*outlen_r = o;
			return fail(p, "body larger than allowed");
		}
	}
	*used_r = i;
	*outlen_r = o;
	return MF_AGAIN;
end:
	*used_r = i + 1;
	*outlen_r = o;
	p->state = PS_LINE;
	p->line_len = 0;
	return MF_OK;
}

static bool digits(const char *s, size_t len, uint64_t max, uint64_t *v_r)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (v > (max - (uint64_t)(s[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*v_r = v;
	return true;
}

/* "n rest" into n and rest (one space between, nothing after rest). */
static int split(const char *line, size_t len, uint32_t *n_r, const char **rest_r,
		 size_t *rest_len_r)
{
	const char *sp = memchr(line, ' ', len);
	uint64_t n;

	if (sp == NULL || !digits(line, (size_t)(sp - line), UINT32_MAX, &n) || n == 0)
		return MF_ERROR;
	*n_r = (uint32_t)n;
	*rest_r = sp + 1;
	*rest_len_r = len - (size_t)(sp + 1 - line);
	return MF_OK;
}

int pop3_uidl_line(const char *line, size_t len, uint32_t *n_r,
		   char uidl_r[POP3_UIDL_MAX + 1])
{
	const char *u;
	size_t ul;

	if (split(line, len, n_r, &u, &ul) != MF_OK || ul == 0 || ul > POP3_UIDL_MAX)
		return MF_ERROR;
	for (size_t i = 0; i < ul; i++)
		if ((unsigned char)u[i] < 0x21 || (unsigned char)u[i] > 0x7e)
			return MF_ERROR;
	memcpy(uidl_r, u, ul);
	uidl_r[ul] = '\0';
	return MF_OK;
}

int pop3_list_line(const char *line, size_t len, uint32_t *n_r, uint64_t *size_r)
{
	const char *s;
	size_t sl;

	if (split(line, len, n_r, &s, &sl) != MF_OK)
		return MF_ERROR;
	/* Some servers add fields after the size (RFC 1939 allows it). */
	{
		const char *sp = memchr(s, ' ', sl);

		if (sp != NULL)
			sl = (size_t)(sp - s);
	}
	return digits(s, sl, UINT64_MAX, size_r) ? MF_OK : MF_ERROR;
}
