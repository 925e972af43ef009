/* pipe_pool.h — a worker's pool of pipes for splice relaying.
 *
 * A relay direction holds a pipe only while bytes are in flight: an idle
 * session (IMAP IDLE, a parked POP3 client) holds none. Pipes come back to
 * the pool empty; a pipe that still holds bytes (an aborted transfer) is
 * closed instead, because those bytes belong to nobody. One pool per worker
 * thread: no locking. */
#ifndef MF_PIPE_POOL_H
#define MF_PIPE_POOL_H

#include <stdbool.h>

struct mf_pipe {
	int rfd, wfd;
	unsigned int size; /* capacity in bytes, as the kernel granted it */
	struct mf_pipe *next; /* free list */
};

struct pipe_pool {
	struct mf_pipe *free;
	unsigned int n_free, n_total;
	unsigned int peak_used; /* most pipes in use at once since the last trim */
	unsigned int max_total;
	unsigned int pipe_size; /* requested F_SETPIPE_SZ */
};

void pipe_pool_init(struct pipe_pool *pp, unsigned int max_total,
		    unsigned int pipe_size);

/* Returns MF_OK with *p_r set, MF_AGAIN when max_total pipes are in use
 * (the caller waits for a release), or MF_ERROR (errno set) when the
 * kernel refuses a new pipe. */
int pipe_pool_get(struct pipe_pool *pp, struct mf_pipe **p_r);

/* empty: the caller knows the pipe holds no bytes. */
void pipe_pool_put(struct pipe_pool *pp, struct mf_pipe *p, bool empty);

/* Called periodically: keeps only as many free pipes as were in use at the
 * peak since the last call, so a burst does not pin its pipes forever and
 * an idle gateway converges to no pipes at all. */
void pipe_pool_trim(struct pipe_pool *pp);

void pipe_pool_destroy(struct pipe_pool *pp);

#endif
