/* relay.h — one direction of a relayed connection, src socket → dst socket.
 *
 * Bytes move by io_uring splice: socket → pipe → socket, never through user
 * space. While a direction waits for data it holds no pipe and no buffer,
 * only a pending POLL; the pipe is taken from the worker's pool when the
 * source becomes readable and returned as soon as it is empty again. Bulk
 * transfers (a full pipe read) keep the pipe and splice again at once,
 * skipping the poll round trip. */
#ifndef MF_RELAY_H
#define MF_RELAY_H

#include <stdbool.h>
#include <stdint.h>

struct session;
struct mf_pipe;

enum relay_state {
	RS_POLL_IN = 0,  /* waiting for src to become readable */
	RS_WAIT_PIPE,    /* readable, queued for a pipe */
	RS_SPLICE_IN,    /* src → pipe in flight */
	RS_SPLICE_OUT,   /* pipe → dst in flight */
	RS_POLL_OUT,     /* dst's send buffer full */
	RS_DONE,         /* EOF passed on with shutdown(SHUT_WR) */
	RS_STOPPED,      /* session closing; nothing will be submitted */
};

struct relay_dir {
	struct relay_dir *wait_next; /* worker's pipe wait list */
	struct mf_pipe *pipe;        /* only while bytes are in flight */
	uint64_t bytes;              /* delivered to dst */
	uint32_t in_pipe;
	uint8_t state;
	uint8_t idx;                 /* 0: client → server, 1: server → client */
	bool waiting;                /* on the pipe wait list */
};

void relay_start(struct session *s, unsigned int idx);

/* CQE dispatch for relay ops (uring_op.h): op without the direction bit. */
void relay_on_cqe(struct session *s, unsigned int idx, unsigned int op, int res);

/* The worker hands a waiting direction its pipe. */
void relay_pipe_ready(struct session *s, unsigned int idx, struct mf_pipe *p);

/* Session closing: give back an idle or empty pipe. */
void relay_release(struct session *s, unsigned int idx);

#endif
