/* route_cache.h — the account states routing reads, kept for a short
 * while so a login does not cost a ledger round trip (issue 8).
 *
 * Bounded: a fixed table of size entries (4-way sets, the least recently
 * fetched entry of a set replaced), each trusted for ttl_ms. Changes reach
 * it at once through route_cache_update(): from the PostgreSQL change feed
 * (state_watch.h), and from this process's own flips (copy_lease.c).
 * While the feed is down (live = false; always on SQLite, whose file an
 * admin's command changes behind our back) no entry is trusted, so routing
 * reads the ledger; if the ledger cannot answer
 * either, only a final state (MIGRATED, PINNED) may still be used —
 * route_cache_get() reports such an entry as RC_STALE and the caller
 * decides. One cache per daemon, shared by every worker (one mutex). */
#ifndef MF_ROUTE_CACHE_H
#define MF_ROUTE_CACHE_H

#include "account.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum route_cache_hit {
	RC_MISS = 0,  /* nothing known */
	RC_FRESH,     /* trusted: route by it */
	RC_STALE,     /* known but not trusted now (expired, or the feed is down) */
};

struct route_cache_entry {
	char *name;          /* NULL: free */
	enum account_state state;
	int64_t changed;     /* the state's state_changed (FAILED retry rule) */
	uint64_t fetched_ms; /* monotonic */
};

struct route_cache {
	pthread_mutex_t lock;
	struct route_cache_entry *e;
	unsigned int n_sets;  /* 0: the cache is off */
	unsigned int ttl_ms;
	uint64_t seq;         /* bumped by every update, flush and feed change */
	bool live;            /* changes reach the cache (feed up, or no feed needed) */
	/* Set by the change feed while it cannot reach the ledger at all:
	 * the io_uring workers then skip their own (blocking) attempts. */
	atomic_bool ledger_down;
	uint64_t hits, misses, stale_used; /* for logs and benchmarks */
};

#define ROUTE_CACHE_WAYS 4

/* size 0 or ttl_ms 0: off (every lookup is RC_MISS, puts are dropped).
 * live: false when a change feed must first connect. MF_OK or MF_ERROR
 * (out of memory). */
int route_cache_init(struct route_cache *c, unsigned int size, unsigned int ttl_ms, bool live);
void route_cache_destroy(struct route_cache *c);

/* Looks name up at now_ms. *st_r and *changed_r are set unless RC_MISS;
 * *seq_r always (pass it to route_cache_put after reading the ledger). */
enum route_cache_hit route_cache_get(struct route_cache *c, const char *name, uint64_t now_ms,
				     enum account_state *st_r, int64_t *changed_r,
				     uint64_t *seq_r);

/* Stores what the ledger said, unless anything changed in the cache since
 * seq was taken (a change announced while the caller was reading must not
 * be overwritten by the older read). */
void route_cache_put(struct route_cache *c, const char *name, enum account_state st,
		     int64_t changed, uint64_t now_ms, uint64_t seq);

/* A change heard of: the entry now says st (inserted if missing). */
void route_cache_update(struct route_cache *c, const char *name, enum account_state st,
			int64_t changed, uint64_t now_ms);

/* The change feed went down (false) or is back (true: everything cached
 * is dropped, since changes may have been missed). */
void route_cache_set_live(struct route_cache *c, bool live);

struct ledger;

/* The routing read: the cached state when trusted, else the ledger's (l
 * may be NULL: no handle), stored for next time; if the ledger cannot
 * answer, a cached final state (*stale_r = true), else MF_ERROR with the
 * ledger's reason in err: an account whose state could have changed is
 * never guessed. MF_OK with *st_r (UNSEEN for an account the ledger does
 * not know) and *changed_r. */
int route_cache_lookup(struct route_cache *c, struct ledger *l, const char *name,
		       uint64_t now_ms, enum account_state *st_r, int64_t *changed_r,
		       bool *stale_r, char *err, size_t errlen);

/* MIGRATED and PINNED: states routing may keep using from the cache while
 * the ledger is unreachable (they change only by an admin's act). */
bool route_state_final(enum account_state st);

/* Monotonic milliseconds, the cache's clock. */
uint64_t route_cache_now_ms(void);

#endif
