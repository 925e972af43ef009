/* relay.h — one direction of a relayed connection, src socket → dst socket.
 *
 * Two ways to move bytes, chosen per burst:
 *  - small exchanges: RECV into a provided buffer (buf_ring.h), SEND it on.
 *    While waiting the direction holds no buffer and no pipe, only the
 *    pending RECV. Both complete inline in the ring, without io-wq.
 *  - bulk: when a RECV fills its whole buffer, the direction switches to
 *    io_uring splice socket → pipe → socket, never through user space, with
 *    a pipe from the worker's pool held only while bytes are in flight; it
 *    goes back to RECV as soon as the source runs dry.
 * If the buffer ring is empty (ENOBUFS) or absent, a POLL for readability
 * followed by splice does the job. */
#ifndef MF_RELAY_H
#define MF_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct session;
struct mf_pipe;

enum relay_state {
	RS_RECV = 0,     /* RECV with a provided buffer pending */
	RS_SEND,         /* SEND of a received buffer in flight */
	RS_POLL_IN,      /* waiting for src to become readable (no buffers) */
	RS_WAIT_PIPE,    /* readable, queued for a pipe */
	RS_SPLICE_IN,    /* src → pipe in flight */
	RS_SPLICE_OUT,   /* pipe → dst in flight */
	RS_POLL_OUT,     /* dst's send buffer full */
	RS_DONE,         /* EOF passed on with shutdown(SHUT_WR) */
};

struct relay_dir {
	struct relay_dir *wait_next; /* worker's pipe wait list */
	struct mf_pipe *pipe;        /* only while bytes are in flight */
	uint64_t bytes;              /* delivered to dst */
	uint32_t in_pipe;
	uint32_t buf_off, buf_len;   /* unsent part of the held buffer */
	int16_t buf_id;              /* provided buffer held, or -1 */
	uint8_t state;
	uint8_t idx;                 /* 0: client → server, 1: server → client */
	bool waiting;                /* on the pipe wait list */
} __attribute__((aligned(16)));

void relay_init(struct relay_dir *rd, unsigned int idx);
void relay_start(struct session *s, unsigned int idx);

/* CQE dispatch for relay ops (uring_op.h). Also called while the session
 * is closing, so that buffers the kernel picked are given back. */
void relay_on_cqe(struct session *s, unsigned int idx, unsigned int op, int res,
		  unsigned int cqe_flags);

/* The worker hands a waiting direction its pipe. */
void relay_pipe_ready(struct session *s, unsigned int idx, struct mf_pipe *p);

/* Sends line to the client now, when nothing the server sent is held or
 * in flight towards it (else false, nothing sent). The caller ends the
 * session right after. */
bool relay_say(struct session *s, const char *line, size_t len);

/* Session closing, nothing in flight: give back pipe and buffer. */
void relay_release(struct session *s, unsigned int idx);

#endif
