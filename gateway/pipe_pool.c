#include "pipe_pool.h"
#include "mf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

void pipe_pool_init(struct pipe_pool *pp, unsigned int max_total,
		    unsigned int pipe_size)
{
	pp->free = NULL;
	pp->n_free = pp->n_total = pp->peak_used = 0;
	pp->max_total = max_total;
	pp->pipe_size = pipe_size;
}

int pipe_pool_get(struct pipe_pool *pp, struct mf_pipe **p_r)
{
	struct mf_pipe *p = pp->free;
	int fds[2];

	if (p != NULL) {
		pp->free = p->next;
		pp->n_free--;
		*p_r = p;
		goto got;
	}
	if (pp->n_total >= pp->max_total)
		return MF_AGAIN;
	p = malloc(sizeof(*p));
	if (p == NULL)
		return MF_ERROR;
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
		int e = errno;

		free(p);
		errno = e;
		return MF_ERROR;
	}
	/* A larger pipe means fewer splice round trips on bulk transfers; the
	 * kernel may refuse (pipe-user-pages-soft): the default 64 KiB then. */
	if (pp->pipe_size != 65536)
		(void)fcntl(fds[1], F_SETPIPE_SZ, (int)pp->pipe_size);
	{
		int sz = fcntl(fds[1], F_GETPIPE_SZ);

		p->size = sz > 0 ? (unsigned int)sz : 65536;
	}
	p->rfd = fds[0];
	p->wfd = fds[1];
	p->next = NULL;
	pp->n_total++;
	*p_r = p;
got:
	if (pp->n_total - pp->n_free > pp->peak_used)
		pp->peak_used = pp->n_total - pp->n_free;
	return MF_OK;
}

void pipe_pool_put(struct pipe_pool *pp, struct mf_pipe *p, bool empty)
{
	if (!empty) {
		close(p->rfd);
		close(p->wfd);
		free(p);
		pp->n_total--;
		return;
	}
	p->next = pp->free;
	pp->free = p;
	pp->n_free++;
}

void pipe_pool_trim(struct pipe_pool *pp)
{
	unsigned int keep = pp->peak_used;

	pp->peak_used = pp->n_total - pp->n_free;
	while (pp->n_free > keep) {
		struct mf_pipe *p = pp->free;

		pp->free = p->next;
		pp->n_free--;
		pp->n_total--;
		close(p->rfd);
		close(p->wfd);
		free(p);
	}
}

void pipe_pool_destroy(struct pipe_pool *pp)
{
	struct mf_pipe *p, *next;

	for (p = pp->free; p != NULL; p = next) {
		next = p->next;
		close(p->rfd);
		close(p->wfd);
		free(p);
	}
	pp->free = NULL;
	pp->n_total -= pp->n_free;
	pp->n_free = 0;
}
