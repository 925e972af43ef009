#include "syn_limit.h"
#include "mf.h"
#include "netaddr.h"

#include <stdlib.h>
#include <string.h>

static uint32_t hash_addr(const struct syn_limit *t, const uint8_t addr[16])
{
	return mf_addr_key_hash(addr, t->seed);
}

int syn_limit_init(struct syn_limit *t, uint32_t cap, uint64_t seed)
{
	uint32_t n = SYN_LIMIT_WINDOW;

	while (n < cap && n < (1u << 30))
		n <<= 1;
	memset(t, 0, sizeof(*t));
	t->slots = calloc(n, sizeof(*t->slots));
	if (t->slots == NULL)
		return MF_ERROR;
	t->cap = n;
	t->seed = seed;
	return MF_OK;
}

void syn_limit_destroy(struct syn_limit *t)
{
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

/* addr's slot: its own, else a free one, else the stalest in the window
 * (reset to a full bucket for addr). */
static struct syn_limit_slot *slot_for(struct syn_limit *t, const uint8_t addr[16],
				       uint64_t full)
{
	uint32_t mask = t->cap - 1, h = hash_addr(t, addr);
	struct syn_limit_slot *victim = NULL;

	for (uint32_t k = 0; k < SYN_LIMIT_WINDOW; k++) {
		struct syn_limit_slot *s = &t->slots[(h + k) & mask];

		if (s->last_ms != 0 && memcmp(s->addr, addr, 16) == 0)
			return s;
		if (victim == NULL || s->last_ms < victim->last_ms)
			victim = s;
	}
	memcpy(victim->addr, addr, 16);
	victim->last_ms = 0;
	victim->milli = full;
	return victim;
}

bool syn_limit_take(struct syn_limit *t, const uint8_t addr[16], uint64_t now_ms,
		    unsigned int rate, unsigned int burst)
{
	uint64_t full = (uint64_t)(burst ? burst : 1) * 1000;
	struct syn_limit_slot *s;

	if (rate == 0)
		return true;
	s = slot_for(t, addr, full);
	if (s->last_ms != 0 && now_ms > s->last_ms) {
		/* Bounded before multiplying: a long-idle address would
		 * otherwise overflow, and it is simply full. */
		uint64_t elapsed = now_ms - s->last_ms;

		if (elapsed >= full / rate + 1)
			s->milli = full;
		else if (s->milli + elapsed * rate >= full)
			s->milli = full;
		else
			s->milli += elapsed * rate;
	}
	if (s->milli > full)
		s->milli = full; /* burst lowered by a reload */
	s->last_ms = now_ms;
	if (s->milli < 1000)
		return false;
	s->milli -= 1000;
	return true;
}
