/* imap_client.c — blocking IMAP client (contract in imap_client.h). */
#include "imap_client.h"
#include "mf.h"
#include "mig_net.h"
#include "sasl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define RBUF_SIZE (64 * 1024)
#define ITEMS_MAX 100000
#define CMD_MAX 16384

struct imap_conn {
	struct mig_net net;
	unsigned int caps;
	unsigned int tag_seq;
	struct imap_resp p;
	uint8_t *rbuf;
	size_t rpos, rlen;
	/* the response being read */
	struct imap_response r;
	size_t items_cap;
	size_t *offs;        /* item text offsets into arena while reading */
	char *arena;
	size_t arena_len, arena_cap, arena_max;
};

static const struct {
	const char *name;
	enum imap_cap cap;
} cap_names[] = {
	{ "LITERAL+", IMAP_CAP_LITERAL_PLUS }, { "LITERAL-", IMAP_CAP_LITERAL_MINUS },
	{ "UIDPLUS", IMAP_CAP_UIDPLUS }, { "MULTIAPPEND", IMAP_CAP_MULTIAPPEND },
	{ "SPECIAL-USE", IMAP_CAP_SPECIAL_USE }, { "LIST-EXTENDED", IMAP_CAP_LIST_EXTENDED },
	{ "CONDSTORE", IMAP_CAP_CONDSTORE }, { "STARTTLS", IMAP_CAP_STARTTLS },
	{ "LOGINDISABLED", IMAP_CAP_LOGINDISABLED }, { "AUTH=PLAIN", IMAP_CAP_AUTH_PLAIN },
	{ "SASL-IR", IMAP_CAP_SASL_IR }, { "IMAP4rev1", IMAP_CAP_IMAP4REV1 },
	{ "BINARY", IMAP_CAP_BINARY },
};

int imap_url_parse(const char *text, struct imap_url *u, char *err, size_t errlen)
{
	const char *rest, *host, *hend, *port = NULL;
	size_t hlen;

	memset(u, 0, sizeof(*u));
	if (strncmp(text, "imap://", 7) == 0) {
		u->sec = IMAP_SEC_PLAIN;
		rest = text + 7;
	} else if (strncmp(text, "imaps://", 8) == 0) {
		u->sec = IMAP_SEC_TLS;
		rest = text + 8;
	} else if (strncmp(text, "imap+starttls://", 16) == 0) {
		u->sec = IMAP_SEC_STARTTLS;
		rest = text + 16;
	} else if (strncmp(text, "pop3://", 7) == 0) {
		u->pop3 = true;
		u->sec = IMAP_SEC_PLAIN;
		rest = text + 7;
	} else if (strncmp(text, "pop3s://", 8) == 0) {
		u->pop3 = true;
		u->sec = IMAP_SEC_TLS;
		rest = text + 8;
	} else if (strncmp(text, "pop3+stls://", 12) == 0) {
		u->pop3 = true;
		u->sec = IMAP_SEC_STARTTLS;
		rest = text + 12;
	} else {
		return mf_err(err, errlen, "'%s': scheme must be imap, imaps, imap+starttls, pop3, "
			      "pop3s or pop3+stls", text);
	}
	if (*rest == '[') {
		host = rest + 1;
		hend = strchr(host, ']');
		if (hend == NULL)
			return mf_err(err, errlen, "'%s': unclosed '['", text);
		if (hend[1] == ':')
			port = hend + 2;
		else if (hend[1] != '\0' && strcmp(hend + 1, "/") != 0)
			return mf_err(err, errlen, "'%s': junk after the address", text);
	} else {
		host = rest;
		hend = host + strcspn(host, ":/");
		if (*hend == ':')
			port = hend + 1;
		else if (*hend == '/' && hend[1] != '\0')
			return mf_err(err, errlen, "'%s': no path allowed", text);
	}
	hlen = (size_t)(hend - host);
	if (hlen == 0 || hlen >= sizeof(u->host))
		return mf_err(err, errlen, "'%s': bad host", text);
	memcpy(u->host, host, hlen);
	if (port != NULL) {
		size_t plen = strspn(port, "0123456789");
		long v = strtol(port, NULL, 10);

		if (plen == 0 || plen > 5 || (port[plen] != '\0' && strcmp(port + plen, "/") != 0) ||
		    v < 1 || v > 65535)
			return mf_err(err, errlen, "'%s': bad port", text);
		snprintf(u->port, sizeof(u->port), "%ld", v);
	} else {
		snprintf(u->port, sizeof(u->port), "%s",
			 u->pop3 ? (u->sec == IMAP_SEC_TLS ? "995" : "110")
				 : (u->sec == IMAP_SEC_TLS ? "993" : "143"));
	}
	return MF_OK;
}

const char *imap_conn_name(const struct imap_conn *c)
{
	return c->net.name;
}

unsigned int imap_caps(const struct imap_conn *c)
{
	return c->caps;
}

bool imap_has(const struct imap_conn *c, enum imap_cap cap)
{
	return (c->caps & (unsigned int)cap) != 0;
}

#define conn_err(c, err, errlen, ...) mig_net_err(&(c)->net, err, errlen, __VA_ARGS__)

static void busy(struct imap_conn *c)
{
	mig_net_busy(&c->net);
}

static int fill(struct imap_conn *c, char *err, size_t errlen)
{
	c->rpos = c->rlen = 0;
	return mig_net_read(&c->net, c->rbuf, RBUF_SIZE, &c->rlen, err, errlen);
}

int imap_write(struct imap_conn *c, const void *buf, size_t len, char *err, size_t errlen)
{
	return mig_net_write(&c->net, buf, len, err, errlen);
}

/* ---- responses ---- */

static int arena_add(struct imap_conn *c, const void *p, size_t n, char *err, size_t errlen)
{
	if (n > c->arena_max - c->arena_len)
		return conn_err(c, err, errlen, "response too large");
	if (c->arena_len + n > c->arena_cap) {
		size_t cap = c->arena_cap * 2;
		char *a;

		while (cap < c->arena_len + n)
			cap *= 2;
		if (cap > c->arena_max)
			cap = c->arena_max;
		a = realloc(c->arena, cap);
		if (a == NULL)
			return conn_err(c, err, errlen, "out of memory");
		c->arena = a;
		c->arena_cap = cap;
	}
	memcpy(c->arena + c->arena_len, p, n);
	c->arena_len += n;
	return MF_OK;
}

static int item_add(struct imap_conn *c, const struct imap_tok *t, char *err, size_t errlen)
{
	struct imap_item *it;

	if (c->r.n >= ITEMS_MAX)
		return conn_err(c, err, errlen, "response has too many items");
	if (c->r.n == c->items_cap) {
		size_t cap = c->items_cap * 2;
		struct imap_item *items = realloc(c->r.items, cap * sizeof(*items));
		size_t *offs;

		if (items == NULL)
			return conn_err(c, err, errlen, "out of memory");
		c->r.items = items;
		offs = realloc(c->offs, cap * sizeof(*offs));
		if (offs == NULL)
			return conn_err(c, err, errlen, "out of memory");
		c->offs = offs;
		c->items_cap = cap;
	}
	it = &c->r.items[c->r.n];
	memset(it, 0, sizeof(*it));
	it->type = t->type;
	it->depth = t->depth;
	it->lit_size = t->lit_size;
	c->offs[c->r.n] = c->arena_len;
	if (t->type != IMAP_TOK_LITERAL) {
		if (arena_add(c, t->text, t->len, err, errlen) != MF_OK ||
		    arena_add(c, "", 1, err, errlen) != MF_OK)
			return MF_ERROR;
		it->len = t->len;
	}
	c->r.n++;
	return MF_OK;
}

/* Points the items' text at the arena (it may have moved). */
static void items_fix(struct imap_conn *c)
{
	for (size_t i = 0; i < c->r.n; i++)
		c->r.items[i].s = c->r.items[i].streamed ? "" : c->arena + c->offs[i];
}

static void caps_from(struct imap_conn *c, const struct imap_item *it, size_t n)
{
	c->caps = 0;
	for (size_t i = 0; i < n; i++) {
		if (it[i].type != IMAP_TOK_ATOM)
			continue;
		for (size_t k = 0; k < MF_ARRAY_LEN(cap_names); k++)
			if (strcasecmp(it[i].s, cap_names[k].name) == 0)
				c->caps |= (unsigned int)cap_names[k].cap;
	}
}

/* Learns capabilities from "* CAPABILITY ..." and "[CAPABILITY ...]". */
static void caps_learn(struct imap_conn *c, const struct imap_response *r)
{
	int k;

	if (r->kind == IMAP_KIND_UNTAGGED && r->n > 0 && imap_item_is(&r->items[0], "CAPABILITY")) {
		caps_from(c, r->items + 1, r->n - 1);
		return;
	}
	k = imap_resp_code(r, "CAPABILITY");
	if (k >= 0) {
		size_t end = (size_t)k + 1;

		while (end < r->n && r->items[end].type != IMAP_TOK_CODE_END)
			end++;
		caps_from(c, r->items + k + 1, end - (size_t)k - 1);
	}
}

/* The consumer failed mid-response: the stream cannot be resumed. Its
 * reason is its own to report; err gets a generic one only if empty. */
static int sink_failed(struct imap_conn *c, char *err, size_t errlen)
{
	c->net.dead = true;
	if (errlen > 0 && err[0] == '\0')
		return mf_err(err, errlen, "%s: aborted by the consumer", c->net.name);
	return MF_ERROR;
}

int imap_read(struct imap_conn *c, const struct imap_sink *sink,
	      const struct imap_response **r_r, char *err, size_t errlen)
{
	bool streaming = false, started = false;

	if (c->net.dead)
		return conn_err(c, err, errlen, "connection is closed");
	c->r.n = 0;
	c->arena_len = 0;
	for (;;) {
		struct imap_tok t;
		size_t used;
		int rc;

		if (c->rpos == c->rlen && fill(c, err, errlen) != MF_OK)
			return MF_ERROR;
		rc = imap_resp_next(&c->p, c->rbuf + c->rpos, c->rlen - c->rpos, &used, &t);
		c->rpos += used;
		if (rc == MF_ERROR)
			return conn_err(c, err, errlen, "bad response: %s", c->p.err);
		if (rc == MF_AGAIN)
			continue;
		switch (t.type) {
		case IMAP_TOK_START:
			c->r.kind = t.kind;
			snprintf(c->r.tag, sizeof(c->r.tag), "%s", t.text);
			started = true;
			break;
		case IMAP_TOK_LITERAL:
			if (item_add(c, &t, err, errlen) != MF_OK)
				return MF_ERROR;
			streaming = false;
			if (sink != NULL) {
				int b;

				c->r.n--; /* the view shows what came before */
				items_fix(c);
				b = sink->begin(sink->arg, &c->r, t.lit_size);
				c->r.n++;
				if (b < 0)
					return sink_failed(c, err, errlen);
				streaming = b == 1;
			}
			if (streaming) {
				c->r.items[c->r.n - 1].streamed = true;
			} else if (t.lit_size > IMAP_INLINE_LITERAL_MAX) {
				return conn_err(c, err, errlen, "unexpected literal of %llu bytes",
						(unsigned long long)t.lit_size);
			}
			break;
		case IMAP_TOK_LITERAL_DATA:
			if (streaming) {
				if (sink->data(sink->arg, (const uint8_t *)t.text, t.len) != MF_OK)
					return sink_failed(c, err, errlen);
			} else {
				if (arena_add(c, t.text, t.len, err, errlen) != MF_OK)
					return MF_ERROR;
				c->r.items[c->r.n - 1].len += t.len;
			}
			break;
		case IMAP_TOK_LITERAL_END:
			if (streaming) {
				if (sink->end(sink->arg) != MF_OK)
					return sink_failed(c, err, errlen);
			} else if (arena_add(c, "", 1, err, errlen) != MF_OK) {
				return MF_ERROR;
			}
			streaming = false;
			break;
		case IMAP_TOK_END:
			if (!started)
				return conn_err(c, err, errlen, "internal: response without start");
			items_fix(c);
			caps_learn(c, &c->r);
			if (c->r.kind == IMAP_KIND_UNTAGGED && c->r.n > 0 &&
			    imap_item_is(&c->r.items[0], "BYE"))
				c->net.dead = true;
			*r_r = &c->r;
			return MF_OK;
		default:
			if (item_add(c, &t, err, errlen) != MF_OK)
				return MF_ERROR;
			break;
		}
	}
}

bool imap_item_is(const struct imap_item *it, const char *word)
{
	return it->type == IMAP_TOK_ATOM && strcasecmp(it->s, word) == 0;
}

bool imap_item_num(const struct imap_item *it, uint64_t *v_r)
{
	uint64_t v = 0;

	if (it->type != IMAP_TOK_ATOM || it->len == 0 || it->len > 19)
		return false;
	for (size_t i = 0; i < it->len; i++) {
		if (it->s[i] < '0' || it->s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(it->s[i] - '0');
	}
	*v_r = v;
	return true;
}

bool imap_item_string(const struct imap_item *it)
{
	return it->type == IMAP_TOK_ATOM || it->type == IMAP_TOK_QUOTED ||
	       (it->type == IMAP_TOK_LITERAL && !it->streamed);
}

int imap_resp_code(const struct imap_response *r, const char *name)
{
	for (size_t i = 0; i + 1 < r->n; i++)
		if (r->items[i].type == IMAP_TOK_CODE_BEGIN)
			return name == NULL || imap_item_is(&r->items[i + 1], name) ? (int)i + 1
									    : -1;
	return -1;
}

const char *imap_resp_text(const struct imap_response *r)
{
	if (r->n > 0 && r->items[r->n - 1].type == IMAP_TOK_TEXT)
		return r->items[r->n - 1].s;
	return "";
}

/* ---- commands ---- */

int imap_cmd(struct imap_conn *c, char tag_r[16], char *err, size_t errlen,
	     const char *fmt, ...)
{
	char buf[CMD_MAX];
	va_list ap;
	int n, m;

	snprintf(tag_r, 16, "m%u", ++c->tag_seq);
	n = snprintf(buf, sizeof(buf), "%s ", tag_r);
	va_start(ap, fmt);
	m = vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	if (m < 0 || (size_t)n + (size_t)m + 2 >= sizeof(buf))
		return conn_err(c, err, errlen, "command too long");
	n += m;
	buf[n++] = '\r';
	buf[n++] = '\n';
	m = imap_write(c, buf, (size_t)n, err, errlen);
	/* A LOGIN or AUTHENTICATE line holds a credential. */
	explicit_bzero(buf, (size_t)n);
	return m;
}

static int status_error(struct imap_conn *c, const struct imap_response *r, char *err,
			size_t errlen)
{
	const char *word = r->n > 0 ? r->items[0].s : "?";
	char code[96] = "";
	int k = -1;

	for (size_t i = 0; i + 1 < r->n; i++)
		if (r->items[i].type == IMAP_TOK_CODE_BEGIN) {
			k = (int)i + 1;
			break;
		}
	if (k >= 0)
		snprintf(code, sizeof(code), "[%s] ", r->items[k].s);
	/* The server asks us to come back later: a BYE, or one of the codes
	 * servers use for load and connection limits (RFC 5530). */
	if (imap_item_is(&r->items[0], "BYE") ||
	    (k >= 0 && (imap_item_is(&r->items[k], "LIMIT") ||
			imap_item_is(&r->items[k], "UNAVAILABLE") ||
			imap_item_is(&r->items[k], "INUSE"))))
		busy(c);
	return mf_err(err, errlen, "%s: %s %s%s", c->net.name, word, code, imap_resp_text(r));
}

int imap_wait(struct imap_conn *c, const char *tag, const struct imap_sink *sink,
	      int (*fn)(void *arg, const struct imap_response *r), void *arg,
	      const struct imap_response **done_r, char *err, size_t errlen)
{
	for (unsigned long guard = 0;; guard++) {
		const struct imap_response *r;

		if (imap_read(c, sink, &r, err, errlen) != MF_OK)
			return MF_ERROR;
		if (r->kind == IMAP_KIND_TAGGED) {
			if (strcmp(r->tag, tag) != 0)
				return conn_err(c, err, errlen, "unexpected tag %s", r->tag);
			if (done_r != NULL)
				*done_r = r;
			if (r->n > 0 && imap_item_is(&r->items[0], "OK"))
				return MF_OK;
			return status_error(c, r, err, errlen);
		}
		if (r->kind == IMAP_KIND_CONTINUE)
			return conn_err(c, err, errlen, "unexpected continuation request");
		if (c->net.dead)
			return status_error(c, r, err, errlen);
		if (fn != NULL && fn(arg, r) != MF_OK)
			return MF_ERROR;
	}
}

int imap_simple(struct imap_conn *c, int (*fn)(void *arg, const struct imap_response *r),
		void *arg, char *err, size_t errlen, const char *fmt, ...)
{
	char buf[CMD_MAX], tag[16];
	va_list ap;
	int m;

	va_start(ap, fmt);
	m = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (m < 0 || (size_t)m >= sizeof(buf)) {
		explicit_bzero(buf, sizeof(buf));
		return conn_err(c, err, errlen, "command too long");
	}
	m = imap_cmd(c, tag, err, errlen, "%s", buf);
	explicit_bzero(buf, sizeof(buf));
	if (m != MF_OK)
		return MF_ERROR;
	return imap_wait(c, tag, NULL, fn, arg, NULL, err, errlen);
}

int imap_quote(const struct imap_conn *c, const char *s, size_t len, char *out, size_t outlen)
{
	bool literal = len == 0 ? false : false;
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '\0' || ch == '\r' || ch == '\n' || ch >= 0x80)
			literal = true;
	}
	if (literal) {
		int n;

		if (!imap_has(c, IMAP_CAP_LITERAL_PLUS) &&
		    !(imap_has(c, IMAP_CAP_LITERAL_MINUS) && len <= 4096))
			return MF_ERROR;
		n = snprintf(out, outlen, "{%zu+}\r\n", len);
		if (n < 0 || (size_t)n + len + 1 > outlen)
			return MF_ERROR;
		memcpy(out + n, s, len);
		out[(size_t)n + len] = '\0';
		return MF_OK;
	}
	if (outlen < 3)
		return MF_ERROR;
	out[o++] = '"';
	for (size_t i = 0; i < len; i++) {
		if (o + 4 > outlen)
			return MF_ERROR;
		if (s[i] == '"' || s[i] == '\\')
			out[o++] = '\\';
		out[o++] = s[i];
	}
	out[o++] = '"';
	out[o] = '\0';
	return MF_OK;
}

/* ---- connect, TLS, login ---- */

static int need_caps(struct imap_conn *c, char *err, size_t errlen)
{
	if (c->caps != 0)
		return MF_OK;
	return imap_simple(c, NULL, NULL, err, errlen, "CAPABILITY");
}

static struct imap_conn *conn_new(const struct imap_client_opts *o, const char *host,
				  char *err, size_t errlen)
{
	struct imap_conn *c = calloc(1, sizeof(*c));
	struct imap_resp_limits lim = { .line_max = o->line_max, .literal_max = o->literal_max };

	if (c == NULL) {
		mf_err(err, errlen, "out of memory");
		return NULL;
	}
	mig_net_init(&c->net, o->name, host, o->verify_name, o->ca_file, o->insecure,
		     o->timeout_ms, o->busy_r);
	if (lim.literal_max == 0)
		lim.literal_max = UINT64_C(1) << 30;
	c->items_cap = 64;
	c->arena_cap = 4096;
	c->arena_max = (lim.line_max ? lim.line_max : IMAP_RESP_LINE_MAX_DEFAULT) * 2 +
		       4 * IMAP_INLINE_LITERAL_MAX;
	c->rbuf = malloc(RBUF_SIZE);
	c->r.items = malloc(c->items_cap * sizeof(*c->r.items));
	c->offs = malloc(c->items_cap * sizeof(*c->offs));
	c->arena = malloc(c->arena_cap);
	c->p.tok = NULL;
	if (c->rbuf == NULL || c->r.items == NULL || c->offs == NULL || c->arena == NULL ||
	    imap_resp_init(&c->p, &lim) != MF_OK) {
		mf_err(err, errlen, "out of memory");
		c->net.dead = true;
		imap_close(c);
		return NULL;
	}
	return c;
}

/* Greeting, STARTTLS or TLS as sec says, capabilities. */
static int conn_start(struct imap_conn *c, enum imap_security sec, char *err, size_t errlen)
{
	const struct imap_response *r;

	if (sec == IMAP_SEC_TLS && mig_net_tls(&c->net, err, errlen) != MF_OK)
		return MF_ERROR;
	if (imap_read(c, NULL, &r, err, errlen) != MF_OK)
		return MF_ERROR;
	if (r->kind != IMAP_KIND_UNTAGGED || r->n == 0 || !imap_item_is(&r->items[0], "OK")) {
		status_error(c, r, err, errlen);
		c->net.dead = true;
		return MF_ERROR;
	}
	if (sec == IMAP_SEC_STARTTLS) {
		if (need_caps(c, err, errlen) != MF_OK)
			return MF_ERROR;
		if (!imap_has(c, IMAP_CAP_STARTTLS))
			return mf_err(err, errlen, "%s: STARTTLS not offered", c->net.name);
		if (imap_simple(c, NULL, NULL, err, errlen, "STARTTLS") != MF_OK)
			return MF_ERROR;
		if (c->rpos != c->rlen)
			return conn_err(c, err, errlen, "bytes after STARTTLS's OK (injection?)");
		if (mig_net_tls(&c->net, err, errlen) != MF_OK)
			return MF_ERROR;
		c->caps = 0;
	}
	return need_caps(c, err, errlen);
}

int imap_connect(const struct imap_url *u, const struct imap_client_opts *o,
		 struct imap_conn **c_r, char *err, size_t errlen)
{
	struct imap_conn *c = conn_new(o, u->host, err, errlen);

	*c_r = NULL;
	if (c == NULL)
		return MF_ERROR;
	if (mig_net_connect(&c->net, u->host, u->port, err, errlen) != MF_OK || conn_start(c, u->sec, err, errlen) != MF_OK) {
		c->net.dead = true;
		imap_close(c);
		return MF_ERROR;
	}
	*c_r = c;
	return MF_OK;
}

int imap_attach_fd(int fd, const struct imap_client_opts *o, struct imap_conn **c_r,
		   char *err, size_t errlen)
{
	struct imap_conn *c = conn_new(o, "attached", err, errlen);

	*c_r = NULL;
	if (c == NULL) {
		close(fd);
		return MF_ERROR;
	}
	c->net.fd = fd;
	if (conn_start(c, IMAP_SEC_PLAIN, err, errlen) != MF_OK) {
		c->net.dead = true;
		imap_close(c);
		return MF_ERROR;
	}
	*c_r = c;
	return MF_OK;
}

void imap_close(struct imap_conn *c)
{
	if (c == NULL)
		return;
	c->net.busy_r = NULL; /* the BYE that answers our LOGOUT is no load shedding */
	if (!c->net.dead && c->net.fd >= 0) {
		char err[64];

		mig_net_rcvtimeo(&c->net, 5000);
		(void)imap_simple(c, NULL, NULL, err, sizeof(err), "LOGOUT");
	}
	mig_net_close(&c->net);
	imap_resp_free(&c->p);
	free(c->rbuf);
	free(c->r.items);
	free(c->offs);
	free(c->arena);
	free(c);
}

/* AUTHENTICATE PLAIN: authzid NUL authcid NUL passwd, base64. */
static int login_plain(struct imap_conn *c, const char *authzid, const char *authcid,
		       const char *pass, size_t pass_len, char *err, size_t errlen)
{
	size_t zl = strlen(authzid), cl = strlen(authcid), n = zl + cl + pass_len + 2, blen;
	uint8_t raw[3 * SASL_FIELD_MAX + 2];
	char b64[4 * (sizeof(raw) + 2) / 3 + 8], tag[16];
	const struct imap_response *r;
	int rc = MF_ERROR;

	if (zl > SASL_FIELD_MAX || cl > SASL_FIELD_MAX || pass_len > SASL_FIELD_MAX)
		return mf_err(err, errlen, "%s: user or password too long for PLAIN", c->net.name);
	memcpy(raw, authzid, zl);
	raw[zl] = '\0';
	memcpy(raw + zl + 1, authcid, cl);
	raw[zl + 1 + cl] = '\0';
	memcpy(raw + zl + cl + 2, pass, pass_len);
	if (sasl_b64_encode(raw, n, b64, sizeof(b64) - 2, &blen) != MF_OK) {
		mf_err(err, errlen, "%s: internal: base64", c->net.name);
		goto out;
	}
	if (imap_has(c, IMAP_CAP_SASL_IR)) {
		if (imap_cmd(c, tag, err, errlen, "AUTHENTICATE PLAIN %s", b64) != MF_OK)
			goto out;
	} else {
		if (imap_cmd(c, tag, err, errlen, "AUTHENTICATE PLAIN") != MF_OK ||
		    imap_read(c, NULL, &r, err, errlen) != MF_OK)
			goto out;
		if (r->kind != IMAP_KIND_CONTINUE) {
			status_error(c, r, err, errlen);
			goto out;
		}
		b64[blen++] = '\r';
		b64[blen++] = '\n';
		if (imap_write(c, b64, blen, err, errlen) != MF_OK)
			goto out;
	}
	rc = imap_wait(c, tag, NULL, NULL, NULL, NULL, err, errlen);
out:
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(b64, sizeof(b64));
	return rc;
}

static int login_login(struct imap_conn *c, const char *user, const char *pass,
		       size_t pass_len, char *err, size_t errlen)
{
	char qu[1100], qp[1100];
	int rc = MF_ERROR;

	if (imap_quote(c, user, strlen(user), qu, sizeof(qu)) != MF_OK ||
	    imap_quote(c, pass, pass_len, qp, sizeof(qp)) != MF_OK) {
		mf_err(err, errlen, "%s: user or password cannot be sent with LOGIN", c->net.name);
		goto out;
	}
	rc = imap_simple(c, NULL, NULL, err, errlen, "LOGIN %s %s", qu, qp);
out:
	explicit_bzero(qp, sizeof(qp));
	return rc;
}

int imap_login(struct imap_conn *c, const char *user, const char *master,
	       const char *pass, size_t pass_len, char *err, size_t errlen)
{
	unsigned int before;
	int rc;

	if (imap_has(c, IMAP_CAP_LOGINDISABLED))
		return mf_err(err, errlen, "%s: login disabled (use imaps or imap+starttls)",
			      c->net.name);
	if (master != NULL) {
		if (!imap_has(c, IMAP_CAP_AUTH_PLAIN))
			return mf_err(err, errlen, "%s: master login needs AUTH=PLAIN", c->net.name);
		rc = login_plain(c, user, master, pass, pass_len, err, errlen);
	} else if (imap_has(c, IMAP_CAP_AUTH_PLAIN)) {
		rc = login_plain(c, "", user, pass, pass_len, err, errlen);
	} else {
		rc = login_login(c, user, pass, pass_len, err, errlen);
	}
	if (rc != MF_OK)
		return rc;
	/* Capabilities change after login; most servers say so in the OK. */
	before = c->caps;
	c->caps = 0;
	if (imap_simple(c, NULL, NULL, err, errlen, "CAPABILITY") != MF_OK)
		return MF_ERROR;
	if (c->caps == 0)
		c->caps = before;
	return MF_OK;
}
