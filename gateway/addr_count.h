/* addr_count.h — a count per client IP address (IPv4 and IPv6), for the
 * per-address limit on pre-auth sessions.
 *
 * One table per worker, used only by that worker's thread: no locks, no
 * shared state on the hot path (the price: a limit of N is N per worker).
 * Open addressing with linear probing and backward-shift deletion, keyed
 * by the 16-byte IPv6 form of the address (IPv4 as ::ffff:a.b.c.d, so a
 * v4 client counts the same whether it arrived on a v4 or a dual-stack
 * socket). A slot is live while its count is > 0 and emptied the moment
 * it drops to 0; the table grows at half full and shrinks at one eighth,
 * so memory follows the number of addresses with sessions, not the number
 * ever seen. The hash is keyed by a per-table seed, so a client choosing
 * its addresses cannot aim them at one probe chain. */
#ifndef MF_ADDR_COUNT_H
#define MF_ADDR_COUNT_H

#include <stdint.h>
#include <sys/socket.h>

#define ADDR_COUNT_MIN_CAP 16

struct addr_count_slot {
	uint8_t addr[16];
	uint32_t count; /* 0: empty slot */
};

struct addr_count {
	struct addr_count_slot *slots; /* NULL until the first increment */
	uint32_t cap;                  /* slots, a power of two (0 if none) */
	uint32_t used;                 /* live slots */
	uint64_t seed;
};

/* An empty table; allocates nothing. */
void addr_count_init(struct addr_count *t, uint64_t seed);
void addr_count_destroy(struct addr_count *t);

/* Adds one to sa's address unless its count has reached limit (0: no
 * limit). MF_OK; MF_AGAIN when at the limit (nothing changed); MF_ERROR
 * (errno EAFNOSUPPORT or ENOMEM) when it could not be counted. */
int addr_count_inc(struct addr_count *t, const struct sockaddr *sa, unsigned int limit);

/* Takes one from sa's address; the entry goes away at 0. An address
 * without an entry is left alone. */
void addr_count_dec(struct addr_count *t, const struct sockaddr *sa);

/* The count of sa's address (0 when it has no entry). */
unsigned int addr_count_get(const struct addr_count *t, const struct sockaddr *sa);

#endif
