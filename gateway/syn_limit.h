/* syn_limit.h — per-client-address token buckets for the SYN gate.
 *
 * Each address may start `rate` new flows per second on average, with
 * bursts of up to `burst`. The table has a fixed number of slots, chosen
 * at init, so a flood from many (spoofed) addresses costs no memory: an
 * address probes SYN_LIMIT_WINDOW slots from its hash, and when none is
 * its own or free it takes the one touched longest ago. Losing such an
 * entry only forgets a bucket that had (nearly) refilled, i.e. grants at
 * most one extra burst to an address that was idle longest. The hash is
 * keyed by a per-table seed, so addresses cannot be chosen to collide.
 * One thread (the gate's) uses a table: no locks. */
#ifndef MF_SYN_LIMIT_H
#define MF_SYN_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

#define SYN_LIMIT_WINDOW 8

struct syn_limit_slot {
	uint8_t addr[16];
	uint64_t last_ms;  /* when the bucket was last refilled; 0: free */
	uint64_t milli;    /* tokens x 1000 */
};

struct syn_limit {
	struct syn_limit_slot *slots;
	uint32_t cap; /* a power of two */
	uint64_t seed;
};

/* cap is rounded up to a power of two (at least SYN_LIMIT_WINDOW). MF_OK
 * or MF_ERROR (no memory). */
int syn_limit_init(struct syn_limit *t, uint32_t cap, uint64_t seed);
void syn_limit_destroy(struct syn_limit *t);

/* Takes one token from addr's bucket (a new address starts full): true if
 * there was one, false if the SYN is over the limit. now_ms must not go
 * backwards (CLOCK_MONOTONIC) and must be > 0. rate 0 means no limit. */
bool syn_limit_take(struct syn_limit *t, const uint8_t addr[16], uint64_t now_ms,
		    unsigned int rate, unsigned int burst);

#endif
