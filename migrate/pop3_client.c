/* pop3_client.c — see pop3_client.h. */
#include "pop3_client.h"
#include "mf.h"
#include "mig_net.h"
#include "sasl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define P3_RBUF 65536
#define P3_LISTING_MAX (32u << 20) /* a UIDL listing: ~400,000 messages */
#define P3_MSG_MAX (UINT64_C(1) << 30)

struct pop3_conn {
	struct mig_net net;
	struct pop3_resp p;
	uint8_t rbuf[P3_RBUF];
	size_t rpos, rlen;
};

static struct pop3_conn *conn_new(const struct imap_client_opts *o, const char *host)
{
	struct pop3_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	mig_net_init(&c->net, o->name, host, o->verify_name, o->ca_file, o->insecure,
		     o->timeout_ms, o->busy_r);
	pop3_resp_init(&c->p, P3_MSG_MAX);
	return c;
}

/* More server bytes when the buffered ones are used up. */
static int refill(struct pop3_conn *c, char *err, size_t errlen)
{
	if (c->rpos < c->rlen)
		return MF_OK;
	c->rpos = 0;
	return mig_net_read(&c->net, c->rbuf, sizeof(c->rbuf), &c->rlen, err, errlen);
}

/* One status line; MF_OK only for +OK (a -ERR's text goes to err). */
static int status(struct pop3_conn *c, char *err, size_t errlen)
{
	for (;;) {
		size_t used;
		int rc;

		if (refill(c, err, errlen) != MF_OK)
			return MF_ERROR;
		rc = pop3_resp_status(&c->p, c->rbuf + c->rpos, c->rlen - c->rpos, &used);
		c->rpos += used;
		if (rc == MF_AGAIN)
			continue;
		if (rc == MF_ERROR)
			return mig_net_err(&c->net, err, errlen, "%s", c->p.err);
		if (c->p.ok)
			return MF_OK;
		/* RFC 2449's [IN-USE] and [SYS/TEMP]: come back later. */
		if (strstr(c->p.line, "[IN-USE]") != NULL || strstr(c->p.line, "[SYS/TEMP]") != NULL)
			mig_net_busy(&c->net);
		return mf_err(err, errlen, "%s: %s", c->net.name, c->p.line);
	}
}

/* A multi-line body to data(). */
static int body(struct pop3_conn *c, int (*data)(void *arg, const uint8_t *p, size_t len),
		void *arg, char *err, size_t errlen)
{
	uint8_t out[16384];

	for (;;) {
		size_t used, got;
		int rc;

		if (refill(c, err, errlen) != MF_OK)
			return MF_ERROR;
		rc = pop3_resp_body(&c->p, c->rbuf + c->rpos, c->rlen - c->rpos, &used, out,
				    sizeof(out), &got);
		c->rpos += used;
		if (rc == MF_ERROR)
			return mig_net_err(&c->net, err, errlen, "%s", c->p.err);
		if (got > 0 && data(arg, out, got) != MF_OK) {
			c->net.dead = true; /* the rest of the body is still coming */
			return MF_ERROR;
		}
		if (rc == MF_OK)
			return MF_OK;
	}
}

static int cmd(struct pop3_conn *c, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int cmd(struct pop3_conn *c, char *err, size_t errlen, const char *fmt, ...)
{
	char line[600];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		return mf_err(err, errlen, "%s: command too long", c->net.name);
	memcpy(line + n, "\r\n", 2);
	n = mig_net_write(&c->net, line, (size_t)n + 2, err, errlen);
	explicit_bzero(line, sizeof(line));
	return n == MF_OK ? status(c, err, errlen) : MF_ERROR;
}

static int start(struct pop3_conn *c, enum imap_security sec, char *err, size_t errlen)
{
	if (sec == IMAP_SEC_TLS && mig_net_tls(&c->net, err, errlen) != MF_OK)
		return MF_ERROR;
	if (status(c, err, errlen) != MF_OK)
		return MF_ERROR;
	if (sec == IMAP_SEC_STARTTLS) {
		if (cmd(c, err, errlen, "STLS") != MF_OK)
			return MF_ERROR;
		if (c->rpos != c->rlen)
			return mig_net_err(&c->net, err, errlen,
					   "bytes after STLS's +OK (injection?)");
		if (mig_net_tls(&c->net, err, errlen) != MF_OK)
			return MF_ERROR;
	}
	return MF_OK;
}

int pop3_connect(const struct imap_url *u, const struct imap_client_opts *o,
		 struct pop3_conn **c_r, char *err, size_t errlen)
{
	struct pop3_conn *c = conn_new(o, u->host);

	*c_r = NULL;
	if (c == NULL)
		return mf_err(err, errlen, "out of memory");
	if (mig_net_connect(&c->net, u->host, u->port, err, errlen) != MF_OK ||
	    start(c, u->sec, err, errlen) != MF_OK) {
		c->net.dead = true;
		pop3_close(c);
		return MF_ERROR;
	}
	*c_r = c;
	return MF_OK;
}

int pop3_attach_fd(int fd, const struct imap_client_opts *o, struct pop3_conn **c_r,
		   char *err, size_t errlen)
{
	struct pop3_conn *c = conn_new(o, "attached");

	*c_r = NULL;
	if (c == NULL) {
		close(fd);
		return mf_err(err, errlen, "out of memory");
	}
	c->net.fd = fd;
	if (start(c, IMAP_SEC_PLAIN, err, errlen) != MF_OK) {
		c->net.dead = true;
		pop3_close(c);
		return MF_ERROR;
	}
	*c_r = c;
	return MF_OK;
}

int pop3_login(struct pop3_conn *c, const char *user, const char *master, const char *pass,
	       size_t pass_len, char *err, size_t errlen)
{
	uint8_t raw[1100];
	char b64[1500];
	size_t ul = strlen(user), ml, blen;
	int rc;

	if (memchr(pass, '\r', pass_len) != NULL || memchr(pass, '\n', pass_len) != NULL ||
	    memchr(pass, '\0', pass_len) != NULL || strpbrk(user, "\r\n") != NULL)
		return mf_err(err, errlen, "%s: credentials a POP3 line cannot carry",
			      c->net.name);
	if (master == NULL) {
		if (cmd(c, err, errlen, "USER %s", user) != MF_OK)
			return MF_ERROR;
		if (pass_len > 500)
			return mf_err(err, errlen, "%s: password too long", c->net.name);
		return cmd(c, err, errlen, "PASS %.*s", (int)pass_len, pass);
	}
	ml = strlen(master);
	if (ul + ml + pass_len + 2 > sizeof(raw))
		return mf_err(err, errlen, "%s: credentials too long", c->net.name);
	memcpy(raw, user, ul);
	raw[ul] = '\0';
	memcpy(raw + ul + 1, master, ml);
	raw[ul + 1 + ml] = '\0';
	memcpy(raw + ul + ml + 2, pass, pass_len);
	rc = sasl_b64_encode(raw, ul + ml + 2 + pass_len, b64, sizeof(b64), &blen);
	explicit_bzero(raw, sizeof(raw));
	if (rc != MF_OK)
		return mf_err(err, errlen, "%s: credentials too long", c->net.name);
	rc = cmd(c, err, errlen, "AUTH PLAIN %s", b64);
	explicit_bzero(b64, sizeof(b64));
	return rc;
}

struct listing {
	char *buf;
	size_t len, cap;
};

static int collect(void *arg, const uint8_t *p, size_t n)
{
	struct listing *l = arg;

	if (l->len + n > P3_LISTING_MAX)
		return MF_ERROR;
	if (l->len + n > l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 65536;
		char *b;

		while (cap < l->len + n)
			cap *= 2;
		b = realloc(l->buf, cap);
		if (b == NULL)
			return MF_ERROR;
		l->buf = b;
		l->cap = cap;
	}
	memcpy(l->buf + l->len, p, n);
	l->len += n;
	return MF_OK;
}

/* A multi-line listing ("UIDL", "LIST") split into lines, each handed to
 * line() (which grows its array); *n counted by line(). */
static int listing(struct pop3_conn *c, const char *what,
		   int (*line)(void *arg, const char *s, size_t len), void *arg, char *err,
		   size_t errlen)
{
	struct listing l = { 0 };
	size_t pos = 0;
	int rc = MF_ERROR;

	if (cmd(c, err, errlen, "%s", what) != MF_OK)
		return MF_ERROR;
	if (body(c, collect, &l, err, errlen) != MF_OK) {
		if (err[0] == '\0' || !c->net.dead)
			mf_err(err, errlen, "%s: %s listing too large", c->net.name, what);
		goto out;
	}
	while (pos < l.len) {
		char *eol = memchr(l.buf + pos, '\n', l.len - pos);
		size_t ll = eol != NULL ? (size_t)(eol - (l.buf + pos)) : l.len - pos;
		size_t next = eol != NULL ? ll + 1 : ll;
		int lr;

		if (ll > 0 && l.buf[pos + ll - 1] == '\r')
			ll--;
		if (ll + 2 > POP3_RESP_LINE_MAX) {
			mf_err(err, errlen, "%s: bad %s line", c->net.name, what);
			goto out;
		}
		lr = line(arg, l.buf + pos, ll);
		if (lr == MF_AGAIN) {
			mf_err(err, errlen, "out of memory");
			goto out;
		}
		if (lr != MF_OK) {
			mf_err(err, errlen, "%s: bad %s line", c->net.name, what);
			goto out;
		}
		pos += next;
	}
	rc = MF_OK;
out:
	free(l.buf);
	return rc;
}

/* Room for one more element in a growing array: MF_OK or MF_ERROR (the
 * caller's line() answers MF_AGAIN for it: out of memory, not a bad line). */
static int grow(void **v, size_t n, size_t *cap, size_t size)
{
	size_t nc;
	void *nv;

	if (n < *cap)
		return MF_OK;
	nc = *cap ? *cap * 2 : 256;
	nv = realloc(*v, nc * size);
	if (nv == NULL)
		return MF_ERROR;
	*v = nv;
	*cap = nc;
	return MF_OK;
}

struct uidl_acc {
	struct pop3_msg *v;
	size_t n, cap;
};

static int uidl_one(void *arg, const char *s, size_t len)
{
	struct uidl_acc *a = arg;
	struct pop3_msg m;

	if (pop3_uidl_line(s, len, &m.n, m.uidl) != MF_OK)
		return MF_ERROR;
	if (grow((void **)&a->v, a->n, &a->cap, sizeof(*a->v)) != MF_OK)
		return MF_AGAIN;
	a->v[a->n++] = m;
	return MF_OK;
}

int pop3_uidl(struct pop3_conn *c, struct pop3_msg **v_r, size_t *n_r, char *err,
	      size_t errlen)
{
	struct uidl_acc a = { 0 };

	if (listing(c, "UIDL", uidl_one, &a, err, errlen) != MF_OK) {
		free(a.v);
		return MF_ERROR;
	}
	*v_r = a.v;
	*n_r = a.n;
	return MF_OK;
}

struct list_acc {
	struct pop3_size *v;
	size_t n, cap;
};

static int list_one(void *arg, const char *s, size_t len)
{
	struct list_acc *a = arg;
	struct pop3_size m;

	if (pop3_list_line(s, len, &m.n, &m.size) != MF_OK)
		return MF_ERROR;
	if (grow((void **)&a->v, a->n, &a->cap, sizeof(*a->v)) != MF_OK)
		return MF_AGAIN;
	a->v[a->n++] = m;
	return MF_OK;
}

int pop3_list(struct pop3_conn *c, struct pop3_size **v_r, size_t *n_r, char *err,
	      size_t errlen)
{
	struct list_acc a = { 0 };

	if (listing(c, "LIST", list_one, &a, err, errlen) != MF_OK) {
		free(a.v);
		return MF_ERROR;
	}
	*v_r = a.v;
	*n_r = a.n;
	return MF_OK;
}

int pop3_retr(struct pop3_conn *c, uint32_t n,
	      int (*data)(void *arg, const uint8_t *p, size_t len), void *arg, char *err,
	      size_t errlen)
{
	if (cmd(c, err, errlen, "RETR %u", n) != MF_OK)
		return MF_ERROR;
	return body(c, data, arg, err, errlen);
}

void pop3_close(struct pop3_conn *c)
{
	if (c == NULL)
		return;
	c->net.busy_r = NULL; /* our QUIT's answer is no load shedding */
	if (!c->net.dead && c->net.fd >= 0) {
		char err[64];

		mig_net_rcvtimeo(&c->net, 5000);
		(void)cmd(c, err, sizeof(err), "QUIT");
	}
	mig_net_close(&c->net);
	explicit_bzero(c->rbuf, sizeof(c->rbuf));
	free(c);
}
