#include "buf_ring.h"
#include "mf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int buf_ring_setup(struct buf_ring *b, struct io_uring *ring, unsigned int count,
		   unsigned int size, int *err_r)
{
	struct io_uring_buf_reg reg;
	size_t ring_bytes = count * sizeof(struct io_uring_buf);
	int rc;

	memset(b, 0, sizeof(*b));
	b->br = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE,
		     MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (b->br == MAP_FAILED) {
		*err_r = -errno;
		b->br = NULL;
		return MF_ERROR;
	}
	b->mem = malloc((size_t)count * size);
	if (b->mem == NULL) {
		*err_r = -ENOMEM;
		goto fail_ring;
	}
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (unsigned long)b->br;
	reg.ring_entries = count;
	reg.bgid = BUF_RING_GROUP;
	rc = io_uring_register_buf_ring(ring, &reg, 0);
	if (rc < 0) {
		*err_r = rc;
		goto fail_mem;
	}
	b->count = count;
	b->size = size;
	io_uring_buf_ring_init(b->br);
	for (unsigned int i = 0; i < count; i++)
		io_uring_buf_ring_add(b->br, buf_ring_addr(b, i), size, (unsigned short)i,
				      io_uring_buf_ring_mask(count), (int)i);
	io_uring_buf_ring_advance(b->br, (int)count);
	return MF_OK;

fail_mem:
	free(b->mem);
	b->mem = NULL;
fail_ring:
	munmap(b->br, ring_bytes);
	b->br = NULL;
	return MF_ERROR;
}

void buf_ring_recycle(struct buf_ring *b, unsigned int bid)
{
	io_uring_buf_ring_add(b->br, buf_ring_addr(b, bid), b->size, (unsigned short)bid,
			      io_uring_buf_ring_mask(b->count), 0);
	io_uring_buf_ring_advance(b->br, 1);
}

void buf_ring_destroy(struct buf_ring *b)
{
	if (b->br == NULL)
		return;
	munmap(b->br, b->count * sizeof(struct io_uring_buf));
	free(b->mem);
	memset(b, 0, sizeof(*b));
}
