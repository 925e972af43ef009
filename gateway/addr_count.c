#include "addr_count.h"
#include "mf.h"
#include "netaddr.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The 16-byte key of sa: IPv6 as is, IPv4 mapped. false: not IP. */
static bool key_of(const struct sockaddr *sa, uint8_t key[16])
{
	if (sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
		return true;
	}
	if (sa->sa_family == AF_INET) {
		memset(key, 0, 10);
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return true;
	}
	return false;
}

static uint32_t hash_key(const struct addr_count *t, const uint8_t key[16])
{
	return mf_addr_key_hash(key, t->seed);
}

/* The slot holding key, or the empty slot where it would go. */
static uint32_t probe(const struct addr_count *t, const uint8_t key[16])
{
	uint32_t mask = t->cap - 1, i = hash_key(t, key) & mask;

	while (t->slots[i].count != 0 && memcmp(t->slots[i].addr, key, 16) != 0)
		i = (i + 1) & mask;
	return i;
}

/* Moves every entry into a table of cap slots. MF_ERROR (ENOMEM) leaves
 * the table as it was. */
static int resize(struct addr_count *t, uint32_t cap)
{
	struct addr_count_slot *old = t->slots;
	uint32_t old_cap = t->cap;
	struct addr_count_slot *slots = calloc(cap, sizeof(*slots));

	if (slots == NULL)
		return MF_ERROR;
	t->slots = slots;
	t->cap = cap;
	for (uint32_t i = 0; i < old_cap; i++)
		if (old[i].count != 0)
			t->slots[probe(t, old[i].addr)] = old[i];
	free(old);
	return MF_OK;
}

void addr_count_init(struct addr_count *t, uint64_t seed)
{
	memset(t, 0, sizeof(*t));
	t->seed = seed;
}

void addr_count_destroy(struct addr_count *t)
{
	free(t->slots);
	t->slots = NULL;
	t->cap = t->used = 0;
}

int addr_count_inc(struct addr_count *t, const struct sockaddr *sa, unsigned int limit)
{
	uint8_t key[16];
	uint32_t i;

	if (!key_of(sa, key)) {
		errno = EAFNOSUPPORT;
		return MF_ERROR;
	}
	if (t->cap == 0 && resize(t, ADDR_COUNT_MIN_CAP) != MF_OK)
		return MF_ERROR;
	i = probe(t, key);
	if (t->slots[i].count != 0) {
		if (limit != 0 && t->slots[i].count >= limit)
			return MF_AGAIN;
		if (t->slots[i].count == UINT32_MAX)
			return MF_AGAIN;
		t->slots[i].count++;
		return MF_OK;
	}
	/* A new entry: keep the load at or under one half. */
	if ((t->used + 1) * 2 > t->cap) {
		if (resize(t, t->cap * 2) != MF_OK)
			return MF_ERROR;
		i = probe(t, key);
	}
	memcpy(t->slots[i].addr, key, 16);
	t->slots[i].count = 1;
	t->used++;
	return MF_OK;
}

void addr_count_dec(struct addr_count *t, const struct sockaddr *sa)
{
	uint8_t key[16];
	uint32_t mask, i, j;

	if (t->cap == 0 || !key_of(sa, key))
		return;
	i = probe(t, key);
	if (t->slots[i].count == 0)
		return;
	if (--t->slots[i].count != 0)
		return;
	/* Backward-shift deletion: pull later members of the probe chain
	 * into the hole, so no tombstones are left behind. */
	mask = t->cap - 1;
	j = i;
	for (;;) {
		uint32_t home;

		j = (j + 1) & mask;
		if (t->slots[j].count == 0)
			break;
		home = hash_key(t, t->slots[j].addr) & mask;
		/* j stays if its home lies cyclically in (i, j]. */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		t->slots[i] = t->slots[j];
		i = j;
	}
	t->slots[i].count = 0;
	t->used--;
	if (t->cap > ADDR_COUNT_MIN_CAP && t->used * 8 < t->cap)
		(void)resize(t, t->cap / 2); /* on ENOMEM simply stay larger */
}

unsigned int addr_count_get(const struct addr_count *t, const struct sockaddr *sa)
{
	uint8_t key[16];

	if (t->cap == 0 || !key_of(sa, key))
		return 0;
	return t->slots[probe(t, key)].count;
}
