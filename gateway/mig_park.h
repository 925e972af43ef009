/* mig_park.h — login events set aside until their account may be copied
 * (strategy after-logout: until the user's last session on the source
 * has ended).
 *
 * A fixed number of slots in one allocation, mlock'ed when the limit
 * allows, like the login queue's: a parked password lives in exactly one
 * slot and is wiped when the event is taken, replaced by a newer event of
 * the same account, or the set is destroyed. Thread-safe. */
#ifndef MF_MIG_PARK_H
#define MF_MIG_PARK_H

#include "login_event.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct mig_park {
	pthread_mutex_t lock;
	struct login_event *slots;
	bool *used;
	unsigned int cap, n;
};

/* cap >= 1 slots. MF_OK, or MF_ERROR with err. */
int mig_park_init(struct mig_park *p, unsigned int cap, char *err, size_t errlen);

/* Wipes every slot and frees. */
void mig_park_destroy(struct mig_park *p);

/* Moves *e into a slot (the one of the same account if there is one: the
 * newer login wins) and wipes *e. MF_OK, or MF_AGAIN when every slot is
 * taken (*e is wiped too: the account waits for its next login). */
int mig_park_put(struct mig_park *p, struct login_event *e);

/* Moves the first parked event whose account ready() accepts into *e_r
 * (its slot wiped): true; false when there is none. ready() runs under
 * the set's lock and must not call back into it. */
bool mig_park_take(struct mig_park *p, bool (*ready)(void *arg, const char *account),
		   void *arg, struct login_event *e_r);

unsigned int mig_park_len(struct mig_park *p);

#endif
