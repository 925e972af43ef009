#include "route_cache.h"
#include "ledger.h"
#include "mf.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t route_cache_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool route_state_final(enum account_state st)
{
	return st == AS_MIGRATED || st == AS_PINNED;
}

int route_cache_init(struct route_cache *c, unsigned int size, unsigned int ttl_ms, bool live)
{
	memset(c, 0, sizeof(*c));
	atomic_init(&c->ledger_down, false);
	pthread_mutex_init(&c->lock, NULL);
	c->ttl_ms = ttl_ms;
	c->live = live;
	if (size == 0 || ttl_ms == 0)
		return MF_OK;
	c->n_sets = (size + ROUTE_CACHE_WAYS - 1) / ROUTE_CACHE_WAYS;
	c->e = calloc((size_t)c->n_sets * ROUTE_CACHE_WAYS, sizeof(*c->e));
	if (c->e == NULL) {
		pthread_mutex_destroy(&c->lock);
		return MF_ERROR;
	}
	return MF_OK;
}

static void drop_all(struct route_cache *c)
{
	for (size_t i = 0; i < (size_t)c->n_sets * ROUTE_CACHE_WAYS; i++) {
		free(c->e[i].name);
		c->e[i].name = NULL;
	}
}

void route_cache_destroy(struct route_cache *c)
{
	if (c->e != NULL)
		drop_all(c);
	free(c->e);
	c->e = NULL;
	pthread_mutex_destroy(&c->lock);
}

/* FNV-1a: names are short, and the set only needs spreading. */
static struct route_cache_entry *set_of(struct route_cache *c, const char *name)
{
	uint64_t h = 1469598103934665603ull;

	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++)
		h = (h ^ *p) * 1099511628211ull;
	return &c->e[(h % c->n_sets) * ROUTE_CACHE_WAYS];
}

static struct route_cache_entry *find(struct route_cache *c, const char *name)
{
	struct route_cache_entry *set = set_of(c, name);

	for (unsigned int i = 0; i < ROUTE_CACHE_WAYS; i++)
		if (set[i].name != NULL && strcmp(set[i].name, name) == 0)
			return &set[i];
	return NULL;
}

/* The entry for name: its own, a free one, or the oldest of its set. */
static struct route_cache_entry *slot(struct route_cache *c, const char *name)
{
	struct route_cache_entry *set = set_of(c, name), *old = &set[0];

	for (unsigned int i = 0; i < ROUTE_CACHE_WAYS; i++) {
		if (set[i].name != NULL && strcmp(set[i].name, name) == 0)
			return &set[i];
		if (set[i].name == NULL)
			old = &set[i];
		else if (old->name != NULL && set[i].fetched_ms < old->fetched_ms)
			old = &set[i];
	}
	return old;
}

enum route_cache_hit route_cache_get(struct route_cache *c, const char *name, uint64_t now_ms,
				     enum account_state *st_r, int64_t *changed_r,
				     uint64_t *seq_r)
{
	struct route_cache_entry *e;
	enum route_cache_hit hit = RC_MISS;

	pthread_mutex_lock(&c->lock);
	*seq_r = c->seq;
	e = c->n_sets > 0 ? find(c, name) : NULL;
	if (e != NULL) {
		*st_r = e->state;
		*changed_r = e->changed;
		hit = c->live && now_ms - e->fetched_ms < c->ttl_ms ? RC_FRESH : RC_STALE;
	}
	if (hit == RC_FRESH)
		c->hits++;
	else
		c->misses++;
	pthread_mutex_unlock(&c->lock);
	return hit;
}

static void store(struct route_cache *c, const char *name, enum account_state st,
		  int64_t changed, uint64_t now_ms)
{
	struct route_cache_entry *e = slot(c, name);

	if (e->name == NULL || strcmp(e->name, name) != 0) {
		char *copy = strdup(name);

		if (copy == NULL)
			return; /* not cached: the next lookup reads the ledger */
		free(e->name);
		e->name = copy;
	}
	e->state = st;
	e->changed = changed;
	e->fetched_ms = now_ms;
}

void route_cache_put(struct route_cache *c, const char *name, enum account_state st,
		     int64_t changed, uint64_t now_ms, uint64_t seq)
{
	pthread_mutex_lock(&c->lock);
	if (c->n_sets > 0 && c->seq == seq)
		store(c, name, st, changed, now_ms);
	pthread_mutex_unlock(&c->lock);
}

void route_cache_update(struct route_cache *c, const char *name, enum account_state st,
			int64_t changed, uint64_t now_ms)
{
	pthread_mutex_lock(&c->lock);
	c->seq++;
	if (c->n_sets > 0)
		store(c, name, st, changed, now_ms);
	pthread_mutex_unlock(&c->lock);
}

void route_cache_set_live(struct route_cache *c, bool live)
{
	pthread_mutex_lock(&c->lock);
	c->seq++;
	/* Back from a gap: what we hold may have changed meanwhile. Going
	 * down keeps the entries: final states still route from them. */
	if (live && !c->live && c->n_sets > 0)
		drop_all(c);
	c->live = live;
	pthread_mutex_unlock(&c->lock);
}

int route_cache_lookup(struct route_cache *c, struct ledger *l, const char *name,
		       uint64_t now_ms, enum account_state *st_r, int64_t *changed_r,
		       bool *stale_r, char *err, size_t errlen)
{
	enum route_cache_hit hit;
	enum account_state st = AS_UNSEEN;
	int64_t changed = 0;
	struct account a;
	uint64_t seq;
	int rc;

	*stale_r = false;
	hit = route_cache_get(c, name, now_ms, &st, &changed, &seq);
	if (hit != RC_FRESH) {
		rc = l != NULL ? ledger_account_get(l, name, &a, err, errlen)
			       : mf_err(err, errlen, "no ledger");
		if (rc == MF_OK || rc == LEDGER_ABSENT) {
			st = rc == LEDGER_ABSENT ? AS_UNSEEN : a.state;
			changed = rc == LEDGER_ABSENT ? 0 : a.state_changed;
			route_cache_put(c, name, st, changed, now_ms, seq);
		} else if (hit == RC_STALE && route_state_final(st)) {
			pthread_mutex_lock(&c->lock);
			c->stale_used++;
			pthread_mutex_unlock(&c->lock);
			*stale_r = true;
		} else {
			return MF_ERROR;
		}
	}
	*st_r = st;
	*changed_r = changed;
	return MF_OK;
}
