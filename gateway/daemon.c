#include "daemon.h"
#include "worker.h"

#include <stdint.h>
#include <unistd.h>

void daemon_wake_workers(struct mf_daemon *d)
{
	uint64_t one = 1;

	for (unsigned int i = 0; i < d->n_workers; i++) {
		if (write(d->workers[i]->wake_fd, &one, sizeof(one)) < 0) {
			/* eventfd counter full: the worker is already woken. */
		}
	}
}
