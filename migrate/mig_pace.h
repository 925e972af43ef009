/* mig_pace.h — politeness toward the source: a global message-rate and
 * bandwidth limit shared by every copy of the process (token buckets),
 * and a limit on the copies reading from one source address at once.
 *
 * The buckets hold one second's worth (at least 256 KiB of bytes) and may
 * go into debt: a caller takes what it moved and then sleeps until the
 * debt would be repaid, so the average rate holds whatever the chunk
 * sizes, and concurrent copies share it. Thread-safe. The clock and the
 * sleep are the caller's to choose (tests use a fake pair). */
#ifndef MF_MIG_PACE_H
#define MF_MIG_PACE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct mig_pace {
	pthread_mutex_t lock;
	double msg_rate, byte_rate;     /* per second; 0: no limit */
	double msg_tokens, byte_tokens;
	double msg_burst, byte_burst;
	double last;                    /* clock of the last refill */
	double slept;                   /* seconds slept in all, for the log */
	double (*now)(void);            /* monotonic seconds */
	void (*sleep)(double seconds);
};

/* Rates 0 mean unlimited. now/sleep NULL: CLOCK_MONOTONIC, nanosleep. */
void mig_pace_init(struct mig_pace *p, double msgs_per_s, double bytes_per_s,
		   double (*now)(void), void (*sleep_fn)(double seconds));
void mig_pace_destroy(struct mig_pace *p);

/* Accounts messages and bytes just moved; sleeps as long as the limits
 * ask. Returns the seconds slept. */
double mig_pace_take(struct mig_pace *p, uint64_t messages, uint64_t bytes);

/* At most limit copies per source at once (0: no limit). */
#define MIG_SLOTS_MAX 64
struct mig_slots {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int limit;
	struct {
		char host[256];
		unsigned int n;
	} v[MIG_SLOTS_MAX];
	bool stopped;
};

void mig_slots_init(struct mig_slots *s, unsigned int limit);
void mig_slots_destroy(struct mig_slots *s);
/* Waits for a free slot of host: true with it taken; false once stopped. */
bool mig_slots_acquire(struct mig_slots *s, const char *host);
void mig_slots_release(struct mig_slots *s, const char *host);
/* Wakes and fails every waiter, now and later. */
void mig_slots_stop(struct mig_slots *s);

#endif
