#include "mig_park.h"
#include "mf.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int mig_park_init(struct mig_park *p, unsigned int cap, char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	if (cap == 0)
		return mf_err(err, errlen, "no parking slots");
	p->slots = calloc(cap, sizeof(*p->slots));
	p->used = calloc(cap, sizeof(*p->used));
	if (p->slots == NULL || p->used == NULL) {
		free(p->slots);
		free(p->used);
		return mf_err(err, errlen, "out of memory");
	}
	/* Best effort: a password should never reach swap. */
	(void)mlock(p->slots, cap * sizeof(*p->slots));
	p->cap = cap;
	pthread_mutex_init(&p->lock, NULL);
	return MF_OK;
}

void mig_park_destroy(struct mig_park *p)
{
	if (p->slots == NULL)
		return;
	explicit_bzero(p->slots, p->cap * sizeof(*p->slots));
	munlock(p->slots, p->cap * sizeof(*p->slots));
	free(p->slots);
	free(p->used);
	p->slots = NULL;
	pthread_mutex_destroy(&p->lock);
}

int mig_park_put(struct mig_park *p, struct login_event *e)
{
	unsigned int free_slot = p->cap, i;
	int rc = MF_OK;

	pthread_mutex_lock(&p->lock);
	for (i = 0; i < p->cap; i++) {
		if (p->used[i] && strcmp(p->slots[i].account, e->account) == 0)
			break;
		if (!p->used[i] && free_slot == p->cap)
			free_slot = i;
	}
	if (i == p->cap)
		i = free_slot;
	if (i == p->cap) {
		rc = MF_AGAIN;
	} else {
		if (!p->used[i])
			p->n++;
		login_event_wipe(&p->slots[i]);
		memcpy(&p->slots[i], e, sizeof(*e));
		p->used[i] = true;
	}
	pthread_mutex_unlock(&p->lock);
	login_event_wipe(e);
	return rc;
}

bool mig_park_take(struct mig_park *p, bool (*ready)(void *arg, const char *account),
		   void *arg, struct login_event *e_r)
{
	bool found = false;

	pthread_mutex_lock(&p->lock);
	for (unsigned int i = 0; i < p->cap && !found; i++) {
		if (!p->used[i] || !ready(arg, p->slots[i].account))
			continue;
		memcpy(e_r, &p->slots[i], sizeof(*e_r));
		login_event_wipe(&p->slots[i]);
		p->used[i] = false;
		p->n--;
		found = true;
	}
	pthread_mutex_unlock(&p->lock);
	return found;
}

unsigned int mig_park_len(struct mig_park *p)
{
	unsigned int n;

	pthread_mutex_lock(&p->lock);
	n = p->n;
	pthread_mutex_unlock(&p->lock);
	return n;
}
