/* front_tls.c — TLS under the front ends' legs; see front_tls.h. */
#include "front_tls.h"
#include "front_io.h"
#include "log.h"
#include "mf.h"
#include "session.h"
#include "tls.h"
#include "worker.h"

#include <errno.h>
#include <stdlib.h>

static struct front_io *io_of(struct session *s)
{
	return s->front;
}

static unsigned int kind_of(unsigned int leg, bool send)
{
	if (leg == 0)
		return send ? FO_CSEND : FO_CRECV;
	return send ? FO_USEND : FO_URECV;
}

int front_tls_start(struct session *s, unsigned int leg)
{
	struct front_leg_tls *lt = &io_of(s)->tls[leg];
	struct tls_conn *c;

	if (lt->stage == NULL) {
		lt->stage = malloc(FRONT_TLS_STAGE);
		if (lt->stage == NULL)
			return MF_ERROR;
	}
	c = leg == 0 ? tls_conn_server(s->w->tls) : tls_conn_client(s->w->tls, &io_of(s)->up_addr.sa);
	if (c == NULL)
		return MF_ERROR;
	tls_conn_free(s->tls[leg]);
	s->tls[leg] = c;
	lt->off = lt->len = 0;
	lt->raw = FTR_NONE;
	lt->req = FTQ_NONE;
	lt->handshaking = true;
	return MF_OK;
}

void front_tls_leg_free(struct session *s, unsigned int leg)
{
	struct front_leg_tls *lt = &io_of(s)->tls[leg];

	free(lt->stage);
	*lt = (struct front_leg_tls){ 0 };
}

/* Completes the caller's request with what a plaintext op would return. */
static void deliver(struct session *s, unsigned int leg, int res)
{
	struct front_leg_tls *lt = &io_of(s)->tls[leg];
	bool send = lt->req == FTQ_SEND;

	lt->req = FTQ_NONE;
	front_io_deliver(s, kind_of(leg, send), res);
}

static void fail(struct session *s, unsigned int leg, const char *what)
{
	char peer[MF_ADDRSTRLEN];

	mf_sockaddr_format(leg == 0 ? &s->client.sa : &io_of(s)->up_addr.sa, peer, sizeof(peer));
	mf_log_warn("%s tls %s=%s: %s: %s", s->fops->name, leg == 0 ? "client" : "up", peer, what,
		    tls_conn_error(s->tls[leg]));
	deliver(s, leg, -EPROTO);
}

/* Moves the request on until it needs the kernel (a raw op is submitted)
 * or it is complete (delivered). */
static void step(struct session *s, unsigned int leg)
{
	struct front_leg_tls *lt = &io_of(s)->tls[leg];
	struct tls_conn *c = s->tls[leg];

	for (;;) {
		int rc;
		size_t n;

		/* What OpenSSL wants to say goes out before anything else. */
		if (lt->off == lt->len && tls_conn_out_pending(c) > 0) {
			lt->len = tls_conn_out_take(c, lt->stage, FRONT_TLS_STAGE);
			lt->off = 0;
		}
		if (lt->off < lt->len) {
			lt->raw = FTR_SEND;
			front_io_submit(s, kind_of(leg, true), lt->stage + lt->off, lt->len - lt->off);
			return;
		}
		if (lt->handshaking) {
			rc = tls_conn_handshake(c);
			if (rc == MF_ERROR) {
				fail(s, leg, "handshake failed");
				return;
			}
			if (rc == MF_AGAIN) {
				if (tls_conn_out_pending(c) > 0)
					continue;
				lt->raw = FTR_RECV;
				front_io_submit(s, kind_of(leg, false), lt->stage, FRONT_TLS_STAGE);
				return;
			}
			lt->handshaking = false;
			mf_log_debug("%s tls leg=%u %s", s->fops->name, leg, tls_conn_version(c));
			continue;
		}
		if (lt->req == FTQ_SEND) {
			if (!lt->encrypted) {
				if (tls_conn_write(c, lt->psrc, lt->plen) != MF_OK) {
					fail(s, leg, "write failed");
					return;
				}
				lt->encrypted = true;
				continue;
			}
			deliver(s, leg, (int)lt->plen);
			return;
		}
		if (lt->req != FTQ_RECV)
			return;
		rc = tls_conn_read(c, lt->pdst, lt->plen, &n);
		if (rc == MF_OK) {
			deliver(s, leg, (int)n);
			return;
		}
		if (rc == TLS_EOF) {
			deliver(s, leg, 0);
			return;
		}
		if (rc == MF_ERROR) {
			fail(s, leg, "read failed");
			return;
		}
		if (tls_conn_out_pending(c) > 0)
			continue;
		lt->raw = FTR_RECV;
		front_io_submit(s, kind_of(leg, false), lt->stage, FRONT_TLS_STAGE);
		return;
	}
}

void front_tls_recv(struct session *s, unsigned int leg, uint8_t *dst, size_t cap)
{
	struct front_leg_tls *lt = &io_of(s)->tls[leg];

	lt->req = FTQ_RECV;
	lt->pdst = dst;
	lt->plen = cap;
	step(s, leg);
}

void front_tls_send(struct session *s, unsigned int leg, const uint8_t *src, size_t len)
{
	struct front_leg_tls *lt = &io_of(s)->tls[leg];

	lt->req = FTQ_SEND;
	lt->psrc = src;
	lt->plen = len;
	lt->encrypted = false;
	step(s, leg);
}

void front_tls_on_raw(struct session *s, unsigned int leg, int res)
{
	struct front_leg_tls *lt = &io_of(s)->tls[leg];
	unsigned int raw = lt->raw;

	lt->raw = FTR_NONE;
	if (res <= 0) {
		/* EOF, reset or timeout: the request fails the way a plaintext op
		 * would have (a SEND that meets EOF is a broken pipe). */
		deliver(s, leg, res == 0 && lt->req == FTQ_SEND ? -EPIPE : res);
		return;
	}
	if (raw == FTR_SEND) {
		lt->off += (size_t)res;
	} else if (tls_conn_feed(s->tls[leg], lt->stage, (size_t)res) != MF_OK) {
		deliver(s, leg, -ENOMEM);
		return;
	}
	step(s, leg);
}
