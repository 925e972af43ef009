/* smtp_reply.c — backend SMTP replies, one line at a time, and EHLO. */
#include "smtp_reply.h"

#include <string.h>
#include <strings.h>

#include "mf.h"

void smtp_reply_parser_init(struct smtp_reply_parser *p)
{
	memset(p, 0, sizeof(*p));
	p->line_max = SMTP_REPLY_LINE_MAX_DEFAULT;
	p->lines_max = SMTP_REPLY_LINES_MAX_DEFAULT;
	p->allow_bare_lf = true;
}

static int smtp_reply_fail(struct smtp_reply_parser *p,
			   enum smtp_reply_error e,
			   enum smtp_reply_error *error_r)
{
	p->error = e;
	*error_r = e;
	return MF_ERROR;
}

static bool smtp_reply_is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

/* 1*3DIGIT, returning how many digits were read (0 when none). */
static size_t smtp_reply_digits(const uint8_t *s, size_t n, unsigned int *v_r)
{
	size_t i;

	*v_r = 0;
	for (i = 0; i < n && i < 3 && smtp_reply_is_digit(s[i]); i++)
		*v_r = *v_r * 10 + (unsigned int)(s[i] - '0');
	return i;
}

/* RFC 3463: status-code = class "." subject "." detail, where the class
 * must be the reply code's first digit (RFC 2034 §4); otherwise the text
 * merely starts with digits and is left alone. */
static void smtp_reply_enhanced(struct smtp_reply_line *l)
{
	const uint8_t *s = l->text;
	size_t n = l->text_len, i = 0, k;

	l->msg = s;
	l->msg_len = n;
	if (n < 5 || s[0] != '0' + l->code / 100 || s[1] != '.')
		return;
	i = 2;
	k = smtp_reply_digits(s + i, n - i, &l->enh_subject);
	if (k == 0 || i + k >= n || s[i + k] != '.')
		return;
	i += k + 1;
	k = smtp_reply_digits(s + i, n - i, &l->enh_detail);
	if (k == 0 || (i + k < n && s[i + k] != ' '))
		return;
	i += k;
	l->has_enhanced = true;
	l->enh_class = l->code / 100;
	if (i < n)
		i++;
	l->msg = s + i;
	l->msg_len = n - i;
}

int smtp_reply_feed(struct smtp_reply_parser *p, const uint8_t *buf,
		    size_t len, size_t *used_r, struct smtp_reply_line *line_r,
		    enum smtp_reply_error *error_r)
{
	size_t end, n;
	unsigned int code;
	int rc;

	memset(line_r, 0, sizeof(*line_r));
	*used_r = 0;
	*error_r = p->error;
	if (p->error != SMTP_RERR_NONE)
		return MF_ERROR;
	rc = line_scan_next(&p->scan, buf, len, p->line_max, &end);
	if (rc == MF_AGAIN)
		return MF_AGAIN;
	*used_r = end;
	if (rc == MF_ERROR)
		return smtp_reply_fail(p, SMTP_RERR_LINE_TOO_LONG, error_r);
	n = end - 1;
	if (p->scan.saw_cr)
		n--;
	if (p->scan.bad_nul)
		return smtp_reply_fail(p, SMTP_RERR_NUL, error_r);
	if (p->scan.bad_cr)
		return smtp_reply_fail(p, SMTP_RERR_BARE_CR, error_r);
	if (!p->scan.saw_cr && !p->allow_bare_lf)
		return smtp_reply_fail(p, SMTP_RERR_BARE_LF, error_r);
	line_scan_reset(&p->scan);

	/* Reply-line = Reply-code [ SP / "-" textstring ] CRLF, with the
	 * code's first digit 2-5 and second 0-5 (RFC 5321 §4.2). */
	if (n < 3 || buf[0] < '2' || buf[0] > '5' || buf[1] < '0' ||
	    buf[1] > '5' || !smtp_reply_is_digit(buf[2]) ||
	    (n > 3 && buf[3] != ' ' && buf[3] != '-'))
		return smtp_reply_fail(p, SMTP_RERR_SYNTAX, error_r);
	code = (unsigned int)(buf[0] - '0') * 100 +
	       (unsigned int)(buf[1] - '0') * 10 + (unsigned int)(buf[2] - '0');
	if (p->n_lines > 0 && code != p->code)
		return smtp_reply_fail(p, SMTP_RERR_CODE_MISMATCH, error_r);
	if (p->n_lines >= p->lines_max)
		return smtp_reply_fail(p, SMTP_RERR_TOO_MANY_LINES, error_r);

	line_r->code = code;
	line_r->index = p->n_lines;
	line_r->last = n == 3 || buf[3] == ' ';
	line_r->raw = buf;
	line_r->raw_len = end;
	line_r->text = buf + (n > 3 ? 4 : 3);
	line_r->text_len = n > 3 ? n - 4 : 0;
	smtp_reply_enhanced(line_r);
	if (line_r->last) {
		p->n_lines = 0;
		p->code = 0;
	} else {
		p->n_lines++;
		p->code = code;
	}
	return MF_OK;
}

const char *smtp_reply_error_str(enum smtp_reply_error e)
{
	static const char *const names[] = {
		[SMTP_RERR_NONE] = "no error",
		[SMTP_RERR_LINE_TOO_LONG] = "reply line too long",
		[SMTP_RERR_NUL] = "NUL byte in reply",
		[SMTP_RERR_BARE_CR] = "CR not followed by LF",
		[SMTP_RERR_BARE_LF] = "reply line ended by bare LF",
		[SMTP_RERR_SYNTAX] = "malformed reply line",
		[SMTP_RERR_CODE_MISMATCH] = "reply lines with different codes",
		[SMTP_RERR_TOO_MANY_LINES] = "too many reply lines",
	};

	return (unsigned int)e < MF_ARRAY_LEN(names) ? names[e] : "?";
}

/* --- EHLO -------------------------------------------------------------- */

struct smtp_ehlo_word {
	const char *name;
	unsigned int bit;
};

static const struct smtp_ehlo_word smtp_auth_words[] = {
	{ "PLAIN", SMTP_AUTH_PLAIN },
	{ "LOGIN", SMTP_AUTH_LOGIN },
	{ "CRAM-MD5", SMTP_AUTH_CRAM_MD5 },
	{ "XOAUTH2", SMTP_AUTH_XOAUTH2 },
};

static const struct smtp_ehlo_word smtp_xclient_words[] = {
	{ "NAME", SMTP_XCLIENT_NAME },   { "ADDR", SMTP_XCLIENT_ADDR },
	{ "PORT", SMTP_XCLIENT_PORT },   { "PROTO", SMTP_XCLIENT_PROTO },
	{ "HELO", SMTP_XCLIENT_HELO },   { "LOGIN", SMTP_XCLIENT_LOGIN },
	{ "DESTADDR", SMTP_XCLIENT_DESTADDR },
	{ "DESTPORT", SMTP_XCLIENT_DESTPORT },
};

static bool smtp_ehlo_word_is(const uint8_t *s, size_t n, const char *w)
{
	return n == strlen(w) && strncasecmp((const char *)s, w, n) == 0;
}

/* ORs together the bits of the space-separated words in [s, s+n). */
static unsigned int smtp_ehlo_words(const uint8_t *s, size_t n,
				    const struct smtp_ehlo_word *words,
				    size_t n_words, unsigned int other)
{
	unsigned int bits = 0;
	size_t i = 0;

	while (i < n) {
		size_t start, w;
		unsigned int bit = other;

		while (i < n && s[i] == ' ')
			i++;
		start = i;
		while (i < n && s[i] != ' ')
			i++;
		if (i == start)
			break;
		for (w = 0; w < n_words; w++)
			if (smtp_ehlo_word_is(s + start, i - start, words[w].name))
				bit = words[w].bit;
		bits |= bit;
	}
	return bits;
}

int smtp_ehlo_add_line(struct smtp_ehlo *e, const struct smtp_reply_line *line)
{
	const uint8_t *s = line->text;
	size_t n = line->text_len, k;
	uint64_t v = 0;
	bool ok = true;

	if (line->code != 250)
		return MF_ERROR;
	if (line->index == 0)
		return MF_OK;
	/* ehlo-keyword, then " params"; old servers also write "AUTH=". */
	for (k = 0; k < n && s[k] != ' ' && s[k] != '='; k++)
		;
	if (smtp_ehlo_word_is(s, k, "PIPELINING"))
		e->pipelining = true;
	else if (smtp_ehlo_word_is(s, k, "8BITMIME"))
		e->eightbitmime = true;
	else if (smtp_ehlo_word_is(s, k, "SMTPUTF8"))
		e->smtputf8 = true;
	else if (smtp_ehlo_word_is(s, k, "CHUNKING"))
		e->chunking = true;
	else if (smtp_ehlo_word_is(s, k, "BINARYMIME"))
		e->binarymime = true;
	else if (smtp_ehlo_word_is(s, k, "STARTTLS"))
		e->starttls = true;
	else if (smtp_ehlo_word_is(s, k, "DSN"))
		e->dsn = true;
	else if (smtp_ehlo_word_is(s, k, "ENHANCEDSTATUSCODES"))
		e->enhancedstatuscodes = true;
	else if (smtp_ehlo_word_is(s, k, "SIZE")) {
		size_t i;

		/* "SIZE" alone: SIZE supported, no fixed limit (RFC 1870). */
		for (i = k + 1; i < n; i++) {
			unsigned int d = (unsigned int)(s[i] - '0');

			if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - d) / 10) {
				ok = false;
				break;
			}
			v = v * 10 + d;
		}
		/* A limit we cannot read is no limit we can honour. */
		e->has_size = true;
		e->size = ok ? v : 0;
	} else if (smtp_ehlo_word_is(s, k, "AUTH")) {
		e->has_auth = true;
		if (k < n)
			e->auth |= smtp_ehlo_words(s + k + 1, n - k - 1,
						   smtp_auth_words,
						   MF_ARRAY_LEN(smtp_auth_words),
						   SMTP_AUTH_OTHER);
	} else if (smtp_ehlo_word_is(s, k, "XCLIENT")) {
		e->has_xclient = true;
		if (k < n)
			e->xclient |= smtp_ehlo_words(
				s + k + 1, n - k - 1, smtp_xclient_words,
				MF_ARRAY_LEN(smtp_xclient_words),
				SMTP_XCLIENT_OTHER);
	} else {
		e->n_unknown++;
	}
	return MF_OK;
}
