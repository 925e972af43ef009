/* buf_ring.h — a worker's provided-buffer ring for small exchanges.
 *
 * An idle direction waits in a RECV that names this buffer group instead
 * of a buffer: the kernel picks a buffer only when bytes arrive, so waiting
 * costs no memory. Small messages (IMAP commands and their answers) then
 * go recv → send without the two io-wq hand-offs a splice pair costs; a
 * full buffer signals a bulk transfer and the direction switches to splice.
 * Buffers go back to the ring as soon as their send completes. */
#ifndef MF_BUF_RING_H
#define MF_BUF_RING_H

#include <liburing.h>
#include <stdint.h>

#define BUF_RING_GROUP 0

struct buf_ring {
	struct io_uring_buf_ring *br;
	uint8_t *mem;
	unsigned int count; /* power of two */
	unsigned int size;  /* bytes per buffer */
};

/* Registers count buffers of size bytes with ring. MF_OK, or MF_ERROR
 * (negative errno in *err_r): the relay then works with splice alone. */
int buf_ring_setup(struct buf_ring *b, struct io_uring *ring, unsigned int count,
		   unsigned int size, int *err_r);

static inline uint8_t *buf_ring_addr(const struct buf_ring *b, unsigned int bid)
{
	return b->mem + (size_t)bid * b->size;
}

/* Hands buffer bid back to the kernel. */
void buf_ring_recycle(struct buf_ring *b, unsigned int bid);

/* After the ring is gone (io_uring_queue_exit), so no request can still
 * write into a buffer. */
void buf_ring_destroy(struct buf_ring *b);

#endif
