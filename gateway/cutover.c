#include "cutover.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void cutover_init(struct cutover_board *b, unsigned int n_workers)
{
	pthread_condattr_t ca;

	memset(b, 0, sizeof(*b));
	pthread_mutex_init(&b->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->acked, &ca);
	pthread_condattr_destroy(&ca);
	b->n_workers = n_workers < CUTOVER_WORKERS_MAX ? n_workers : CUTOVER_WORKERS_MAX;
}

void cutover_destroy(struct cutover_board *b)
{
	pthread_cond_destroy(&b->acked);
	pthread_mutex_destroy(&b->lock);
}

unsigned int cutover_begin(struct cutover_board *b, unsigned int slot, const char *name)
{
	unsigned int gen;

	pthread_mutex_lock(&b->lock);
	if (slot < CUTOVER_SLOTS_MAX)
		snprintf(b->names[slot], sizeof(b->names[slot]), "%s", name);
	/* 0 means "nothing changed" to cutover_poll(): skip it on wrap. */
	if (++b->gen == 0)
		b->gen = 1;
	gen = b->gen;
	pthread_mutex_unlock(&b->lock);
	return gen;
}

void cutover_end(struct cutover_board *b, unsigned int slot)
{
	pthread_mutex_lock(&b->lock);
	if (slot < CUTOVER_SLOTS_MAX)
		b->names[slot][0] = '\0';
	pthread_mutex_unlock(&b->lock);
}

bool cutover_wait(struct cutover_board *b, unsigned int gen, unsigned int timeout_ms)
{
	struct timespec until;
	bool all = false;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&b->lock);
	for (;;) {
		unsigned int i;

		/* A later generation acknowledged covers ours (its snapshot
		 * held our name too): two cutovers at once (a copy here and one
		 * heard from another gateway) must not wait for each other. */
		for (i = 0; i < b->n_workers; i++)
			if ((int)(b->seen[i] - gen) < 0)
				break;
		if (i == b->n_workers) {
			all = true;
			break;
		}
		if (pthread_cond_timedwait(&b->acked, &b->lock, &until) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&b->lock);
	return all;
}

unsigned int cutover_poll(struct cutover_board *b, unsigned int worker,
			  char (*names_r)[ACCOUNT_NAME_MAX + 1], unsigned int *n_r)
{
	unsigned int gen = 0;

	*n_r = 0;
	pthread_mutex_lock(&b->lock);
	if (worker < b->n_workers && b->seen[worker] != b->gen) {
		gen = b->gen;
		for (unsigned int i = 0; i < CUTOVER_SLOTS_MAX; i++)
			if (b->names[i][0] != '\0')
				memcpy(names_r[(*n_r)++], b->names[i], sizeof(b->names[i]));
	}
	pthread_mutex_unlock(&b->lock);
	return gen;
}

void cutover_ack(struct cutover_board *b, unsigned int worker, unsigned int gen)
{
	pthread_mutex_lock(&b->lock);
	if (worker < b->n_workers)
		b->seen[worker] = gen;
	pthread_cond_broadcast(&b->acked);
	pthread_mutex_unlock(&b->lock);
}
