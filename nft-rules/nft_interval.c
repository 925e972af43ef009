#include "nft_interval.h"
#include "mf.h"

#include <stdlib.h>
#include <string.h>

static int addr_cmp(const struct mf_addr *a, const struct mf_addr *b)
{
	return memcmp(a->u.bytes, b->u.bytes, mf_addr_len(a));
}

unsigned int nft_interval_from_cidr(const struct mf_cidr *c,
				    struct nft_interval_elem elems_r[2])
{
	elems_r[0].key = c->addr;
	elems_r[0].end = false;
	if (!mf_cidr_end(c, &elems_r[1].key))
		return 1;
	elems_r[1].end = true;
	return 2;
}

static int elem_cmp(const void *pa, const void *pb)
{
	const struct nft_interval_elem *a = pa, *b = pb;
	int d = addr_cmp(&a->key, &b->key);

	if (d != 0)
		return d;
	/* An end at X closes the range before X; a start at X opens the
	 * next one: end first. */
	return (int)b->end - (int)a->end;
}

/* Whether addr is the first address of its prefix-long network: no bit
 * set past the first prefix bits. */
static bool aligned(const struct mf_addr *addr, unsigned int prefix)
{
	for (size_t i = 0; i < mf_addr_len(addr); i++) {
		unsigned int first = (unsigned int)i * 8;
		unsigned int keep = prefix > first ? prefix - first : 0;
		uint8_t host = keep >= 8 ? 0 : (uint8_t)(0xffu >> keep);

		if (addr->u.bytes[i] & host)
			return false;
	}
	return true;
}

/* Emits [start, end) as prefixes; end_top: the range runs to the top of
 * the address space and end is unused. */
static int emit_range(struct mf_addr start, const struct mf_addr *end,
		      bool end_top,
		      int (*cb)(const struct mf_cidr *, void *), void *data)
{
	unsigned int bits = (unsigned int)mf_addr_len(&start) * 8;

	while (end_top || addr_cmp(&start, end) < 0) {
		struct mf_cidr c = { .addr = start };
		struct mf_addr next;
		bool has_next = false;
		int rc;

		/* The largest aligned block starting here that fits; a
		 * single address always does. */
		for (c.prefix = 0; c.prefix <= bits; c.prefix++) {
			if (!aligned(&start, c.prefix))
				continue;
			has_next = mf_cidr_end(&c, &next);
			if (!has_next ? end_top :
			    end_top || addr_cmp(&next, end) <= 0)
				break;
		}
		rc = cb(&c, data);
		if (rc != MF_OK)
			return rc;
		if (!has_next)
			break;
		start = next;
	}
	return MF_OK;
}

int nft_interval_to_cidrs(struct nft_interval_elem *elems, size_t n,
			  int (*cb)(const struct mf_cidr *subnet, void *data),
			  void *data)
{
	struct mf_addr start;
	bool open = false;
	int rc;

	if (n > 0)
		qsort(elems, n, sizeof(*elems), elem_cmp);
	for (size_t i = 0; i < n; i++) {
		const struct nft_interval_elem *e = &elems[i];

		if (e->end) {
			if (!open)
				continue; /* nft's marker at address 0 */
			rc = emit_range(start, &e->key, false, cb, data);
			if (rc != MF_OK)
				return rc;
			open = false;
		} else {
			/* Two starts in a row cannot come from the kernel's
			 * tree; if they do, let the second end the first. */
			if (open) {
				rc = emit_range(start, &e->key, false, cb, data);
				if (rc != MF_OK)
					return rc;
			}
			start = e->key;
			open = true;
		}
	}
	if (open)
		return emit_range(start, NULL, true, cb, data);
	return MF_OK;
}

enum nft_overlap nft_interval_overlap(const struct mf_cidr *a,
				      const struct mf_cidr *b)
{
	if (a->addr.family != b->addr.family)
		return NFT_DISJOINT;
	if (a->prefix == b->prefix && mf_addr_equal(&a->addr, &b->addr))
		return NFT_SAME;
	if (mf_cidr_contains(a, &b->addr) || mf_cidr_contains(b, &a->addr))
		return NFT_OVERLAP;
	return NFT_DISJOINT;
}
