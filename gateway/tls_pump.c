/* tls_pump.c — the user-space relay for TLS sessions; see tls_pump.h. */
#include "tls_pump.h"
#include "front_tls.h"
#include "mf.h"
#include "session.h"
#include "tls.h"
#include "uring_op.h"
#include "worker.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

/* Ciphertext queued for one destination before its source is read again:
 * a few records, so a slow reader holds the writer back. */
#define PUMP_OUT_HIGH (4 * TLS_RECORD_MAX)

struct pump_side {
	int fd;
	struct tls_conn *tls;        /* NULL: plaintext */
	uint8_t *cin;                /* TLS: RECV target */
	uint8_t *cout;               /* TLS: ciphertext being sent */
	size_t cout_off, cout_len;
	bool recv_busy, send_busy;
	bool in_eof;                 /* nothing more comes from this side */
	bool out_eof;                /* the other side's EOF was passed on */
	bool shut_pending;           /* TLS: shutdown(SHUT_WR) after close_notify */
};

/* Direction d carries side d's plaintext to side 1 - d. */
struct pump_dir {
	uint8_t *pb;
	size_t off, len;
};

struct tls_pump {
	struct tls_pump_op ops[2][2]; /* [side][send] */
	struct pump_side side[2];
	struct pump_dir dir[2];
	uint8_t *mem;
};

static void submit(struct session *s, unsigned int i, bool send, void *buf, size_t len)
{
	struct tls_pump *p = s->pump;
	struct io_uring_sqe *sqe = worker_sqe(s->w);

	if (send) {
		io_uring_prep_send(sqe, p->side[i].fd, buf, len, MSG_NOSIGNAL);
		p->side[i].send_busy = true;
	} else {
		io_uring_prep_recv(sqe, p->side[i].fd, buf, len, 0);
		p->side[i].recv_busy = true;
	}
	io_uring_sqe_set_data64(sqe, uop_pack(&p->ops[i][send], UOP_TLS));
	s->inflight++;
}

static void fail(struct session *s, unsigned int side, int err)
{
	enum session_end why = side == 0 ? SE_CLIENT_RESET : SE_SERVER_RESET;

	if (err == EPROTO)
		why = SE_PROTOCOL;
	session_abort(s, why, err, true);
}

/* Direction d got n bytes of plaintext at pd->pb: the server's responses
 * are followed when the session asks for it (session.h: frame_on). */
static void got_plain(struct session *s, unsigned int d, size_t n)
{
	if (d == 1 && s->frame_on)
		imap_frame_feed(&s->frame, s->pump->dir[d].pb, n);
}

/* Passes side d's end of input on to the other side. */
static void pass_eof(struct session *s, unsigned int d)
{
	struct pump_side *dst = &s->pump->side[1 - d];

	if (dst->out_eof)
		return;
	dst->out_eof = true;
	if (dst->tls != NULL) {
		tls_conn_close_notify(dst->tls);
		dst->shut_pending = true;
	} else {
		(void)shutdown(dst->fd, SHUT_WR);
	}
}

/* Moves direction d's plaintext on as far as buffers allow. Returns false
 * when the session was aborted. */
static bool move(struct session *s, unsigned int d)
{
	struct tls_pump *p = s->pump;
	struct pump_side *src = &p->side[d], *dst = &p->side[1 - d];
	struct pump_dir *pd = &p->dir[d];

	for (;;) {
		size_t n;
		int rc;

		if (pd->len > pd->off && dst->tls != NULL) {
			if (tls_conn_write(dst->tls, pd->pb + pd->off, pd->len - pd->off) != MF_OK) {
				fail(s, 1 - d, EPROTO);
				return false;
			}
			s->dir[d].bytes += pd->len - pd->off;
			pd->off = pd->len = 0;
		}
		if (pd->len > pd->off)
			return true; /* a plaintext destination's SEND drains it */
		if (src->in_eof) {
			pass_eof(s, d);
			return true;
		}
		if (dst->tls != NULL &&
		    tls_conn_out_pending(dst->tls) + dst->cout_len - dst->cout_off >= PUMP_OUT_HIGH)
			return true;
		if (src->recv_busy)
			return true;
		if (src->tls == NULL) {
			submit(s, d, false, pd->pb, TLS_RECORD_MAX);
			return true;
		}
		rc = tls_conn_read(src->tls, pd->pb, TLS_RECORD_MAX, &n);
		if (rc == MF_OK) {
			pd->off = 0;
			pd->len = n;
			got_plain(s, d, n);
			continue;
		}
		if (rc == TLS_EOF) {
			src->in_eof = true;
			continue;
		}
		if (rc == MF_ERROR) {
			fail(s, d, EPROTO);
			return false;
		}
		submit(s, d, false, src->cin, FRONT_TLS_STAGE);
		return true;
	}
}

static void start_send(struct session *s, unsigned int i)
{
	struct tls_pump *p = s->pump;
	struct pump_side *side = &p->side[i];
	struct pump_dir *pd = &p->dir[1 - i];

	if (side->send_busy)
		return;
	if (side->tls == NULL) {
		if (pd->off < pd->len)
			submit(s, i, true, pd->pb + pd->off, pd->len - pd->off);
		return;
	}
	if (side->cout_off == side->cout_len) {
		side->cout_len = tls_conn_out_take(side->tls, side->cout, FRONT_TLS_STAGE);
		side->cout_off = 0;
	}
	if (side->cout_off < side->cout_len) {
		submit(s, i, true, side->cout + side->cout_off, side->cout_len - side->cout_off);
		return;
	}
	if (side->shut_pending) {
		side->shut_pending = false;
		(void)shutdown(side->fd, SHUT_WR);
	}
}

static bool side_idle(const struct pump_side *side)
{
	return !side->recv_busy && !side->send_busy && !side->shut_pending &&
	       side->cout_off == side->cout_len &&
	       (side->tls == NULL || tls_conn_out_pending(side->tls) == 0);
}

static void kick(struct session *s)
{
	struct tls_pump *p = s->pump;

	for (unsigned int d = 0; d < 2; d++)
		if (!move(s, d))
			return;
	for (unsigned int i = 0; i < 2; i++)
		start_send(s, i);
	if (p->side[0].out_eof && p->side[1].out_eof && side_idle(&p->side[0]) &&
	    side_idle(&p->side[1])) {
		s->dir[0].state = RS_DONE;
		s->dir[1].state = RS_DONE;
		session_dir_done(s);
	}
}

void tls_pump_on_cqe(struct tls_pump_op *op, int res)
{
	struct session *s = op->s;
	struct tls_pump *p = s->pump;
	struct pump_side *side;

	if (s->phase == SP_CLOSING || p == NULL)
		return;
	side = &p->side[op->side];
	if (op->send) {
		side->send_busy = false;
		if (res <= 0) {
			fail(s, op->side, res == 0 ? EPIPE : -res);
			return;
		}
		if (side->tls != NULL) {
			side->cout_off += (size_t)res;
		} else {
			struct pump_dir *pd = &p->dir[1 - op->side];

			pd->off += (size_t)res;
			s->dir[1 - op->side].bytes += (uint64_t)res;
			if (pd->off == pd->len)
				pd->off = pd->len = 0;
		}
	} else {
		side->recv_busy = false;
		if (res < 0) {
			fail(s, op->side, -res);
			return;
		}
		if (res == 0) {
			side->in_eof = true;
		} else if (side->tls != NULL) {
			if (tls_conn_feed(side->tls, side->cin, (size_t)res) != MF_OK) {
				session_abort(s, SE_LOCAL_ERROR, ENOMEM, true);
				return;
			}
		} else {
			p->dir[op->side].off = 0;
			p->dir[op->side].len = (size_t)res;
			got_plain(s, op->side, (size_t)res);
		}
	}
	worker_lru_touch(s->w, s);
	kick(s);
}

bool tls_pump_say(struct session *s, const char *line, size_t len)
{
	struct tls_pump *p = s->pump;
	struct pump_side *c;
	size_t n;

	if (p == NULL)
		return false;
	c = &p->side[0];
	/* Nothing of the server's held for, or queued to, the client. */
	if (p->dir[1].off < p->dir[1].len || c->send_busy || c->out_eof ||
	    c->cout_off != c->cout_len)
		return false;
	if (c->tls == NULL)
		return send(c->fd, line, len, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len;
	if (tls_conn_out_pending(c->tls) != 0 || tls_conn_write(c->tls, line, len) != MF_OK)
		return false;
	/* The session ends right after: say so in TLS too, so the client
	 * sees an orderly end rather than a truncated stream. */
	tls_conn_close_notify(c->tls);
	n = tls_conn_out_take(c->tls, c->cout, FRONT_TLS_STAGE);
	return n > 0 && send(c->fd, c->cout, n, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)n;
}

int tls_pump_start(struct session *s)
{
	struct tls_pump *p = calloc(1, sizeof(*p));
	size_t need = 2 * TLS_RECORD_MAX;
	uint8_t *m;

	if (p == NULL)
		return MF_ERROR;
	for (unsigned int i = 0; i < 2; i++)
		if (s->tls[i] != NULL)
			need += 2 * FRONT_TLS_STAGE;
	p->mem = m = malloc(need);
	if (m == NULL) {
		free(p);
		return MF_ERROR;
	}
	for (unsigned int i = 0; i < 2; i++) {
		struct pump_side *side = &p->side[i];

		p->ops[i][0] = (struct tls_pump_op){ .s = s, .side = (uint8_t)i, .send = 0 };
		p->ops[i][1] = (struct tls_pump_op){ .s = s, .side = (uint8_t)i, .send = 1 };
		side->fd = i == 0 ? s->cfd : s->ufd;
		side->tls = s->tls[i];
		p->dir[i].pb = m;
		m += TLS_RECORD_MAX;
		if (side->tls != NULL) {
			side->cin = m;
			side->cout = m + FRONT_TLS_STAGE;
			m += 2 * FRONT_TLS_STAGE;
		}
	}
	s->pump = p;
	kick(s);
	return MF_OK;
}

void tls_pump_free(struct session *s)
{
	if (s->pump == NULL)
		return;
	free(s->pump->mem);
	free(s->pump);
	s->pump = NULL;
}
