#include "relay.h"
#include "buf_ring.h"
#include "log.h"
#include "mf.h"
#include "pipe_pool.h"
#include "session.h"
#include "uring_op.h"
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static int dir_src(const struct session *s, unsigned int idx)
{
	return idx == 0 ? s->cfd : s->ufd;
}

static int dir_dst(const struct session *s, unsigned int idx)
{
	return idx == 0 ? s->ufd : s->cfd;
}

/* The server → client direction of a session whose response framing is
 * followed (session.h: frame_on), while it is known. */
static struct imap_frame *framing(struct session *s, unsigned int idx)
{
	if (idx != 1 || !s->frame_on || imap_frame_lost(&s->frame))
		return NULL;
	return &s->frame;
}

static void submit(struct session *s, struct io_uring_sqe *sqe, unsigned int op,
		   unsigned int idx)
{
	io_uring_sqe_set_data64(sqe, uop_pack(&s->dir[idx], op));
	s->inflight++;
}

static void poll_in(struct session *s, unsigned int idx)
{
	struct io_uring_sqe *sqe = worker_sqe(s->w);

	s->dir[idx].state = RS_POLL_IN;
	io_uring_prep_poll_add(sqe, dir_src(s, idx), POLLIN | POLLRDHUP);
	submit(s, sqe, UOP_POLL_IN, idx);
}

/* Wait for the next bytes: RECV into a buffer the kernel picks on arrival,
 * or a poll when this worker has no buffer ring. Unless bytes are likely
 * queued already, the RECV waits for readiness first instead of trying a
 * read that would only say EAGAIN. */
static void wait_in_ex(struct session *s, unsigned int idx, bool likely_ready)
{
	struct io_uring_sqe *sqe;

	if (s->w->bufs.br == NULL) {
		poll_in(s, idx);
		return;
	}
	sqe = worker_sqe(s->w);
	s->dir[idx].state = RS_RECV;
	io_uring_prep_recv(sqe, dir_src(s, idx), NULL, s->w->bufs.size, 0);
	if (!likely_ready)
		sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BUF_RING_GROUP;
	submit(s, sqe, UOP_RECV, idx);
}

static void wait_in(struct session *s, unsigned int idx)
{
	wait_in_ex(s, idx, false);
}

static void send_buf(struct session *s, unsigned int idx)
{
	struct relay_dir *rd = &s->dir[idx];
	struct io_uring_sqe *sqe = worker_sqe(s->w);

	rd->state = RS_SEND;
	io_uring_prep_send(sqe, dir_dst(s, idx),
			   buf_ring_addr(&s->w->bufs, (unsigned int)rd->buf_id) + rd->buf_off,
			   rd->buf_len, MSG_NOSIGNAL);
	submit(s, sqe, UOP_SEND, idx);
}

static void poll_out(struct session *s, unsigned int idx)
{
	struct io_uring_sqe *sqe = worker_sqe(s->w);

	s->dir[idx].state = RS_POLL_OUT;
	io_uring_prep_poll_add(sqe, dir_dst(s, idx), POLLOUT);
	submit(s, sqe, UOP_POLL_OUT, idx);
}

static void splice_in(struct session *s, unsigned int idx)
{
	struct relay_dir *rd = &s->dir[idx];
	struct io_uring_sqe *sqe = worker_sqe(s->w);
	struct imap_frame *f = framing(s, idx);
	uint32_t len = rd->pipe->size;

	/* Followed framing: splice only literal octets, never past the
	 * literal, so the lines around it go through RECV and are seen. A
	 * splice forced elsewhere (no buffer left) gives the framing up. */
	if (f != NULL) {
		uint64_t lit = imap_frame_literal_left(f);

		if (lit == 0)
			imap_frame_lose(f);
		else if (lit < len)
			len = (uint32_t)lit;
	}
	rd->state = RS_SPLICE_IN;
	io_uring_prep_splice(sqe, dir_src(s, idx), -1, rd->pipe->wfd, -1,
			     len, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
	submit(s, sqe, UOP_SPLICE_IN, idx);
}

static void splice_out(struct session *s, unsigned int idx)
{
	struct relay_dir *rd = &s->dir[idx];
	struct io_uring_sqe *sqe = worker_sqe(s->w);

	rd->state = RS_SPLICE_OUT;
	io_uring_prep_splice(sqe, rd->pipe->rfd, -1, dir_dst(s, idx), -1,
			     rd->in_pipe, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
	submit(s, sqe, UOP_SPLICE_OUT, idx);
}

static void give_back_pipe(struct session *s, unsigned int idx)
{
	struct relay_dir *rd = &s->dir[idx];
	struct mf_pipe *p = rd->pipe;

	rd->pipe = NULL;
	worker_pipe_put(s->w, p, rd->in_pipe == 0);
	rd->in_pipe = 0;
}

static void give_back_buf(struct session *s, unsigned int idx)
{
	struct relay_dir *rd = &s->dir[idx];

	buf_ring_recycle(&s->w->bufs, (unsigned int)rd->buf_id);
	rd->buf_id = -1;
}

/* A reset read on one side is passed on as a reset to the other. */
static void fail(struct session *s, unsigned int idx, bool src_side, int err)
{
	bool client_side = (idx == 0) == src_side;

	session_abort(s, client_side ? SE_CLIENT_RESET : SE_SERVER_RESET, err, true);
}

static void eof(struct session *s, unsigned int idx)
{
	/* ENOTCONN: the peer reset meanwhile; the other direction sees it. */
	(void)shutdown(dir_dst(s, idx), SHUT_WR);
	s->dir[idx].state = RS_DONE;
	session_dir_done(s);
}

static void start_splice(struct session *s, unsigned int idx)
{
	struct relay_dir *rd = &s->dir[idx];
	struct mf_pipe *p;
	int rc = worker_pipe_get(s->w, rd, &p);

	if (rc == MF_AGAIN) {
		rd->state = RS_WAIT_PIPE;
		return;
	}
	if (rc != MF_OK) {
		session_abort(s, SE_LOCAL_ERROR, errno, true);
		return;
	}
	relay_pipe_ready(s, idx, p);
}

void relay_pipe_ready(struct session *s, unsigned int idx, struct mf_pipe *p)
{
	struct relay_dir *rd = &s->dir[idx];

	rd->pipe = p;
	rd->in_pipe = 0;
	splice_in(s, idx);
}

static void on_recv(struct session *s, unsigned int idx, int res, unsigned int flags)
{
	struct relay_dir *rd = &s->dir[idx];

	if (res > 0) {
		struct imap_frame *f = framing(s, idx);

		rd->buf_id = (int16_t)(flags >> IORING_CQE_BUFFER_SHIFT);
		rd->buf_off = 0;
		rd->buf_len = (uint32_t)res;
		if (f != NULL)
			imap_frame_feed(f, buf_ring_addr(&s->w->bufs, (unsigned int)rd->buf_id),
					(size_t)res);
		send_buf(s, idx);
		return;
	}
	if (res == 0) {
		eof(s, idx);
		return;
	}
	if (res == -ENOBUFS) {
		/* Every buffer is busy: this burst goes by splice. */
		poll_in(s, idx);
		return;
	}
	fail(s, idx, true, -res);
}

static void on_send(struct session *s, unsigned int idx, int res)
{
	struct relay_dir *rd = &s->dir[idx];
	struct imap_frame *f;
	bool bulk;

	if (res <= 0) {
		fail(s, idx, false, res == 0 ? EPIPE : -res);
		return;
	}
	rd->bytes += (uint64_t)res;
	rd->buf_off += (uint32_t)res;
	rd->buf_len -= (uint32_t)res;
	worker_lru_touch(s->w, s);
	if (rd->buf_len > 0) {
		send_buf(s, idx); /* short send: the rest, in order */
		return;
	}
	/* A full buffer means more is queued: a bulk transfer, so splice;
	 * with followed framing only inside a literal worth a splice. */
	bulk = rd->buf_off == s->w->bufs.size;
	give_back_buf(s, idx);
	f = framing(s, idx);
	if (bulk && (f == NULL || imap_frame_literal_left(f) >= s->w->bufs.size))
		start_splice(s, idx);
	else
		wait_in_ex(s, idx, bulk);
}

static void on_splice_in(struct session *s, unsigned int idx, int res)
{
	struct relay_dir *rd = &s->dir[idx];

	if (res > 0) {
		struct imap_frame *f = framing(s, idx);

		if (f != NULL)
			imap_frame_skip(f, (uint64_t)res);
		rd->in_pipe = (uint32_t)res;
		splice_out(s, idx);
		return;
	}
	if (res == -EAGAIN) {
		/* The source ran dry: back to waiting without a pipe. */
		give_back_pipe(s, idx);
		wait_in(s, idx);
		return;
	}
	if (res == 0) {
		give_back_pipe(s, idx);
		eof(s, idx);
		return;
	}
	fail(s, idx, true, -res);
}

static void on_splice_out(struct session *s, unsigned int idx, int res)
{
	struct relay_dir *rd = &s->dir[idx];

	if (res > 0) {
		/* Full pipe read = still bulk: read again at once rather than
		 * paying a wait round trip per pipe-full. With followed
		 * framing a full read is the length asked (at most what the
		 * literal had left), and bulk goes on only inside a literal. */
		struct imap_frame *f = framing(s, idx);
		uint64_t want = rd->pipe->size, lit = 0;
		bool bulk;

		if (f != NULL) {
			lit = imap_frame_literal_left(f);
			if (lit + rd->in_pipe < want)
				want = lit + rd->in_pipe;
		}
		bulk = rd->in_pipe == want && (f == NULL || lit >= s->w->bufs.size);
		rd->bytes += (uint64_t)res;
		rd->in_pipe -= (uint32_t)res;
		worker_lru_touch(s->w, s);
		if (rd->in_pipe > 0) {
			poll_out(s, idx);
		} else if (bulk) {
			splice_in(s, idx);
		} else {
			give_back_pipe(s, idx);
			/* A literal just ended: the rest of its line is likely
			 * queued already. */
			wait_in_ex(s, idx, f != NULL && lit == 0);
		}
		return;
	}
	if (res == -EAGAIN) {
		poll_out(s, idx);
		return;
	}
	fail(s, idx, false, res == 0 ? EPIPE : -res);
}

void relay_on_cqe(struct session *s, unsigned int idx, unsigned int op, int res,
		  unsigned int cqe_flags)
{
	if (s->phase == SP_CLOSING) {
		/* The kernel may have picked a buffer just before the cancel. */
		if (op == UOP_RECV && (cqe_flags & IORING_CQE_F_BUFFER))
			buf_ring_recycle(&s->w->bufs, cqe_flags >> IORING_CQE_BUFFER_SHIFT);
		return;
	}
	switch (op) {
	case UOP_RECV:
		on_recv(s, idx, res, cqe_flags);
		break;
	case UOP_SEND:
		on_send(s, idx, res);
		break;
	case UOP_POLL_IN:
		if (res < 0)
			fail(s, idx, true, -res);
		else
			start_splice(s, idx);
		break;
	case UOP_SPLICE_IN:
		on_splice_in(s, idx, res);
		break;
	case UOP_SPLICE_OUT:
		on_splice_out(s, idx, res);
		break;
	case UOP_POLL_OUT:
		if (res < 0)
			fail(s, idx, false, -res);
		else
			splice_out(s, idx);
		break;
	}
}

void relay_init(struct relay_dir *rd, unsigned int idx)
{
	rd->idx = (uint8_t)idx;
	rd->buf_id = -1;
}

void relay_start(struct session *s, unsigned int idx)
{
	/* A client often sends right after its connect returned, while we
	 * were still connecting upstream: its first bytes are waiting. */
	wait_in_ex(s, idx, idx == 0);
}

bool relay_say(struct session *s, const char *line, size_t len)
{
	const struct relay_dir *rd = &s->dir[1];

	/* Only while nothing of the server's is held or in flight to the
	 * client: then the line lands right after what the client has. */
	if ((rd->state != RS_RECV && rd->state != RS_POLL_IN && rd->state != RS_WAIT_PIPE) ||
	    rd->buf_id >= 0 || rd->in_pipe > 0)
		return false;
	return send(s->cfd, line, len, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len;
}

void relay_release(struct session *s, unsigned int idx)
{
	struct relay_dir *rd = &s->dir[idx];
	int queued = 0;

	if (rd->waiting)
		worker_pipe_unwait(s->w, rd);
	if (rd->buf_id >= 0)
		give_back_buf(s, idx);
	if (rd->pipe == NULL)
		return;
	/* After an abort the cancelled splices' results were not counted:
	 * ask the pipe itself whether it is empty. */
	if (ioctl(rd->pipe->rfd, FIONREAD, &queued) < 0)
		queued = 1;
	rd->in_pipe = (uint32_t)queued;
	give_back_pipe(s, idx);
}
