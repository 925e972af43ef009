/* banner.c — probing the sources' greetings; see banner.h. */
#include "banner.h"
#include "imap_backend.h"
#include "log.h"
#include "mf.h"
#include "netaddr.h"
#include "pop3_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct banner_set {
	atomic_uint refs;
	unsigned int n;
	struct banner b[];
};

/* --- parsing -------------------------------------------------------------- */

/* Keeps printable ASCII only: the text goes into every greeting we send. */
static void set_text(struct banner *b, const char *t, size_t len)
{
	size_t n = 0;

	while (len > 0 && t[len - 1] == ' ')
		len--;
	for (size_t i = 0; i < len && n < BANNER_TEXT_MAX; i++)
		if (t[i] >= 0x20 && t[i] < 0x7f)
			b->text[n++] = t[i];
	b->text[n] = '\0';
}

static bool word_is(const char *w, size_t n, const char *name)
{
	return strlen(name) == n && strncasecmp(w, name, n) == 0;
}

/* Space-separated IMAP capability names in s[0, len). */
static void imap_caps(struct banner *b, const char *s, size_t len)
{
	size_t i = 0;

	b->caps |= BC_CAPS_SEEN;
	while (i < len) {
		size_t j = i;

		while (j < len && s[j] != ' ')
			j++;
		if (word_is(s + i, j - i, "IMAP4rev2"))
			b->caps |= BC_IMAP4REV2;
		else if (word_is(s + i, j - i, "LOGINDISABLED"))
			b->caps |= BC_LOGINDISABLED;
		else if (word_is(s + i, j - i, "STARTTLS"))
			b->caps |= BC_STARTTLS;
		i = j + 1;
	}
}

static int imap_line(struct banner *b, const char *line, size_t len)
{
	struct imap_resp r;
	const char *text;
	size_t tlen;

	if (imap_resp_parse(line, len, &r) != MF_OK)
		return MF_ERROR;
	text = r.text;
	tlen = len - (size_t)(text - line);
	if (!b->ok) {
		if (r.kind != IMAP_RESP_UNTAGGED || r.status != IMAP_ST_OK)
			return MF_ERROR;
		if (tlen > 0 && text[0] == '[') {
			const char *end = memchr(text, ']', tlen);

			if (end == NULL)
				return MF_ERROR;
			if (end - text > 11 && strncasecmp(text + 1, "CAPABILITY ", 11) == 0)
				imap_caps(b, text + 12, (size_t)(end - text - 12));
			tlen -= (size_t)(end + 1 - text);
			text = end + 1;
			if (tlen > 0 && text[0] == ' ') {
				text++;
				tlen--;
			}
		}
		set_text(b, text, tlen);
		b->ok = true;
		return MF_OK;
	}
	if (r.kind == IMAP_RESP_TAGGED)
		return MF_OK;
	if (r.kind == IMAP_RESP_UNTAGGED && r.status == IMAP_ST_OTHER && tlen >= 11 &&
	    strncasecmp(text, "CAPABILITY ", 11) == 0)
		imap_caps(b, text + 11, tlen - 11);
	return MF_AGAIN;
}

static int pop3_line(struct banner *b, const char *line, size_t len, bool in_capa)
{
	enum pop3_status st;

	if (in_capa) {
		if (len == 1 && line[0] == '.')
			return MF_OK;
		if (word_is(line, len, "STLS"))
			b->caps |= BC_STARTTLS;
		else if (word_is(line, len, "USER") ||
			 (len > 5 && strncasecmp(line, "SASL ", 5) == 0))
			b->caps |= BC_PLAIN_LOGIN;
		return MF_AGAIN;
	}
	if (pop3_status_parse(line, len, &st) != MF_OK)
		return MF_ERROR;
	if (!b->ok) {
		const char *t = line + 3, *lt, *gt;
		size_t tlen = len - 3;

		if (st != POP3_ST_OK)
			return MF_ERROR;
		if (tlen > 0 && t[0] == ' ') {
			t++;
			tlen--;
		}
		/* A response code ([XCLIENT] for a trusted prober) offers
		 * something of the source's, not ours. */
		if (tlen > 0 && t[0] == '[') {
			const char *end = memchr(t, ']', tlen);

			if (end != NULL) {
				tlen -= (size_t)(end + 1 - t);
				t = end + 1;
				if (tlen > 0 && t[0] == ' ') {
					t++;
					tlen--;
				}
			}
		}
		/* An APOP timestamp is the source's, and APOP is not offered. */
		lt = memchr(t, '<', tlen);
		gt = lt ? memchr(lt, '>', tlen - (size_t)(lt - t)) : NULL;
		if (lt != NULL && gt != NULL && memchr(lt, '@', (size_t)(gt - lt)) != NULL) {
			char tmp[BANNER_TEXT_MAX * 2 + 2];
			size_t a = (size_t)(lt - t), c = tlen - (size_t)(gt + 1 - t);

			if (a > BANNER_TEXT_MAX)
				a = BANNER_TEXT_MAX;
			if (c > BANNER_TEXT_MAX)
				c = BANNER_TEXT_MAX;
			memcpy(tmp, t, a);
			if (a > 0 && tmp[a - 1] == ' ' && c > 0 && gt[1] == ' ')
				a--;
			memcpy(tmp + a, gt + 1, c);
			set_text(b, tmp, a + c);
		} else {
			set_text(b, t, tlen);
		}
		b->ok = true;
		return MF_OK;
	}
	b->caps |= BC_CAPS_SEEN;
	if (st == POP3_ST_OK)
		return MF_AGAIN;
	/* No CAPA (RFC 1939 only): USER/PASS is all there is. */
	b->caps |= BC_PLAIN_LOGIN;
	return MF_OK;
}

/* Reader stages. */
enum { RS_GREETING = 0, RS_CAPS_STATUS, RS_CAPS };

void banner_reader_init(struct banner_reader *r, struct banner *b, enum banner_proto proto)
{
	r->b = b;
	r->stage = RS_GREETING;
	b->proto = (uint8_t)proto;
}

enum banner_next banner_reader_line(struct banner_reader *r, const char *line, size_t len)
{
	struct banner *b = r->b;
	int rc;

	if (b->proto == BP_IMAP) {
		rc = imap_line(b, line, len);
		if (rc == MF_ERROR)
			return BN_FAIL;
		if (r->stage == RS_GREETING) {
			r->stage = RS_CAPS;
			return (b->caps & BC_CAPS_SEEN) ? BN_DONE : BN_SEND_CAPS;
		}
		return rc == MF_OK ? BN_DONE : BN_READ;
	}
	switch (r->stage) {
	case RS_GREETING:
		if (pop3_line(b, line, len, false) != MF_OK)
			return BN_FAIL;
		r->stage = RS_CAPS_STATUS;
		return BN_SEND_CAPS;
	case RS_CAPS_STATUS:
		rc = pop3_line(b, line, len, false);
		if (rc == MF_ERROR)
			return BN_FAIL;
		r->stage = RS_CAPS;
		return rc == MF_OK ? BN_DONE : BN_READ;
	default:
		return pop3_line(b, line, len, true) == MF_OK ? BN_DONE : BN_READ;
	}
}

/* --- probing -------------------------------------------------------------- */

struct probe {
	int fd;
	uint64_t deadline_ms;
	struct imap_line line;
	uint8_t buf[1024];
	size_t pos, len;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int wait_fd(struct probe *p, short events)
{
	struct pollfd pfd = { .fd = p->fd, .events = events };
	uint64_t now = now_ms();
	int rc;

	if (now >= p->deadline_ms)
		return MF_ERROR;
	do
		rc = poll(&pfd, 1, (int)(p->deadline_ms - now));
	while (rc < 0 && errno == EINTR);
	return rc > 0 ? MF_OK : MF_ERROR;
}

/* The next line into p->line. */
static int read_line(struct probe *p)
{
	for (;;) {
		size_t used;
		ssize_t n;
		int rc;

		if (p->pos < p->len) {
			rc = imap_line_feed(&p->line, p->buf + p->pos, p->len - p->pos, &used);
			p->pos += used;
			if (rc != MF_AGAIN)
				return rc;
			continue;
		}
		if (wait_fd(p, POLLIN) != MF_OK)
			return MF_ERROR;
		n = recv(p->fd, p->buf, sizeof(p->buf), 0);
		if (n <= 0)
			return MF_ERROR;
		p->pos = 0;
		p->len = (size_t)n;
	}
}

static int send_all(struct probe *p, const char *s)
{
	size_t len = strlen(s), off = 0;

	while (off < len) {
		ssize_t n;

		if (wait_fd(p, POLLOUT) != MF_OK)
			return MF_ERROR;
		n = send(p->fd, s + off, len - off, MSG_NOSIGNAL);
		if (n <= 0)
			return MF_ERROR;
		off += (size_t)n;
	}
	return MF_OK;
}

static int probe_connect(struct probe *p, const union mf_sockaddr *addr)
{
	socklen_t alen = addr->sa.sa_family == AF_INET ? sizeof(addr->in) : sizeof(addr->in6);
	int err = 0;
	socklen_t elen = sizeof(err);

	p->fd = socket(addr->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0)
		return MF_ERROR;
	if (connect(p->fd, &addr->sa, alen) < 0 && errno != EINPROGRESS)
		return MF_ERROR;
	if (wait_fd(p, POLLOUT) != MF_OK ||
	    getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err != 0)
		return MF_ERROR;
	return MF_OK;
}

/* Greeting, capabilities, goodbye. */
static void converse(struct probe *p, struct banner *b, enum banner_proto proto)
{
	struct banner_reader r;
	enum banner_next next = BN_READ;

	banner_reader_init(&r, b, proto);
	while (next == BN_READ || next == BN_SEND_CAPS) {
		if (next == BN_SEND_CAPS &&
		    send_all(p, proto == BP_IMAP ? "mf CAPABILITY\r\n" : "CAPA\r\n") != MF_OK)
			return;
		if (read_line(p) != MF_OK)
			return;
		next = banner_reader_line(&r, p->line.buf, p->line.len);
	}
	if (next == BN_DONE)
		(void)send_all(p, proto == BP_IMAP ? "mf LOGOUT\r\n" : "QUIT\r\n");
}

void banner_probe(struct banner *b, const union mf_sockaddr *addr, enum banner_proto proto,
		  unsigned int timeout_ms)
{
	struct probe *p = calloc(1, sizeof(*p));

	memset(b, 0, sizeof(*b));
	b->addr = *addr;
	b->proto = (uint8_t)proto;
	if (p == NULL)
		return;
	p->fd = -1;
	p->deadline_ms = now_ms() + timeout_ms;
	imap_line_init(&p->line);
	if (probe_connect(p, addr) == MF_OK)
		converse(p, b, proto);
	if (p->fd >= 0)
		close(p->fd);
	free(p);
}

static void sockaddr_of(const struct mf_addr *a, uint16_t port, union mf_sockaddr *sa)
{
	memset(sa, 0, sizeof(*sa));
	if (a->family == AF_INET) {
		sa->in.sin_family = AF_INET;
		sa->in.sin_addr = a->u.v4;
		sa->in.sin_port = htons(port);
	} else {
		sa->in6.sin6_family = AF_INET6;
		sa->in6.sin6_addr = a->u.v6;
		sa->in6.sin6_port = htons(port);
	}
}

struct banner_set *banner_set_probe(const struct mf_config *cfg, unsigned int timeout_ms)
{
	unsigned int n = cfg->n_sources * (cfg->n_imap_ports + cfg->n_pop3_ports);
	struct banner_set *set = calloc(1, sizeof(*set) + n * sizeof(set->b[0]));

	if (set == NULL)
		return NULL;
	atomic_init(&set->refs, 1);
	for (unsigned int i = 0; i < cfg->n_sources; i++) {
		union mf_sockaddr sa;

		for (unsigned int j = 0; j < cfg->n_imap_ports; j++) {
			sockaddr_of(mf_config_real_source(cfg, &cfg->sources[i]), cfg->imap_ports[j],
				    &sa);
			banner_probe(&set->b[set->n++], &sa, BP_IMAP, timeout_ms);
		}
		for (unsigned int j = 0; j < cfg->n_pop3_ports; j++) {
			sockaddr_of(mf_config_real_source(cfg, &cfg->sources[i]), cfg->pop3_ports[j],
				    &sa);
			banner_probe(&set->b[set->n++], &sa, BP_POP3, timeout_ms);
		}
	}
	return set;
}

void banner_set_ref(struct banner_set *set)
{
	if (set != NULL)
		atomic_fetch_add(&set->refs, 1);
}

void banner_set_unref(struct banner_set *set)
{
	if (set != NULL && atomic_fetch_sub(&set->refs, 1) == 1)
		free(set);
}

unsigned int banner_set_count(const struct banner_set *set, unsigned int *ok_r)
{
	unsigned int ok = 0;

	for (unsigned int i = 0; i < set->n; i++)
		ok += set->b[i].ok;
	*ok_r = ok;
	return set->n;
}

static bool same_addr(const union mf_sockaddr *a, const union mf_sockaddr *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return false;
	if (a->sa.sa_family == AF_INET)
		return a->in.sin_port == b->in.sin_port &&
		       a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
	return a->in6.sin6_port == b->in6.sin6_port &&
	       memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof(a->in6.sin6_addr)) == 0;
}

const struct banner *banner_find(const struct banner_set *set, const union mf_sockaddr *addr,
				 enum banner_proto proto)
{
	if (set == NULL)
		return NULL;
	for (unsigned int i = 0; i < set->n; i++)
		if (set->b[i].ok && set->b[i].proto == proto && same_addr(&set->b[i].addr, addr))
			return &set->b[i];
	return NULL;
}
