/* mig_uidl_match.c — the pure half of POP3 UIDL continuity (mig_uidl.h):
 * tying POP3 listings to copied messages, and the pairs that follow. */
#include "mf.h"
#include "mig_uidl.h"

#include <stdlib.h>
#include <string.h>

bool uidl_match_zip(const struct uidl_msg *msgs, size_t n, const struct uidl_copied *c,
		    const size_t *ord, size_t m, size_t *out)
{
	if (n != m)
		return false;
	for (size_t i = 0; i < n; i++)
		if (msgs[i].size != c[ord[i]].size)
			return false;
	for (size_t i = 0; i < n; i++)
		out[i] = ord[i];
	return true;
}

static bool sizes_have(const uint64_t *sizes, size_t m, uint64_t want)
{
	size_t lo = 0, hi = m;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (sizes[mid] < want)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m && sizes[lo] == want;
}

bool uidl_size_plausible(const struct uidl_msg *msg, const uint64_t *sizes, size_t m)
{
	return sizes_have(sizes, m, msg->size) ||
	       (msg->size >= 2 && sizes_have(sizes, m, msg->size - 2));
}

/* A copied message in the content index: its bytes and its rank in ord. */
struct by_bytes {
	uint64_t size;
	const uint8_t *sha;
	size_t rank, k;
	bool taken;
};

static int cmp_bytes(uint64_t size, const uint8_t *sha, const struct by_bytes *b)
{
	if (size != b->size)
		return size < b->size ? -1 : 1;
	return memcmp(sha, b->sha, 32);
}

static int cmp_by_bytes(const void *pa, const void *pb)
{
	const struct by_bytes *a = pa, *b = pb;
	int d = cmp_bytes(a->size, a->sha, b);

	if (d != 0)
		return d;
	return a->rank < b->rank ? -1 : a->rank > b->rank;
}

/* The first copied message not taken yet with these bytes (in rank
 * order), taken; UIDL_NONE if none. */
static size_t take(struct by_bytes *ix, size_t m, uint64_t size, const uint8_t *sha)
{
	size_t lo = 0, hi = m;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cmp_bytes(size, sha, &ix[mid]) > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < m && cmp_bytes(size, sha, &ix[lo]) == 0; lo++) {
		if (!ix[lo].taken) {
			ix[lo].taken = true;
			return ix[lo].k;
		}
	}
	return UIDL_NONE;
}

int uidl_match_bytes(const struct uidl_msg *msgs, size_t n, const struct uidl_copied *c,
		     const size_t *ord, size_t m, size_t *out)
{
	struct by_bytes *ix = NULL;

	for (size_t i = 0; i < n; i++)
		out[i] = UIDL_NONE;
	if (m == 0 || n == 0)
		return MF_OK;
	ix = calloc(m, sizeof(*ix));
	if (ix == NULL)
		return MF_ERROR;
	for (size_t r = 0; r < m; r++)
		ix[r] = (struct by_bytes){ .size = c[ord[r]].size, .sha = c[ord[r]].sha256,
					   .rank = r, .k = ord[r] };
	qsort(ix, m, sizeof(*ix), cmp_by_bytes);
	/* Full bytes first for every message, trimmed ones after: a message
	 * whose exact bytes were copied never loses them to another's
	 * trimmed look-alike. */
	for (size_t i = 0; i < n; i++)
		if (msgs[i].hashed)
			out[i] = take(ix, m, msgs[i].rsize, msgs[i].sha256);
	for (size_t i = 0; i < n; i++)
		if (msgs[i].hashed && out[i] == UIDL_NONE && msgs[i].trim && msgs[i].rsize >= 2)
			out[i] = take(ix, m, msgs[i].rsize - 2, msgs[i].sha256_trim);
	free(ix);
	return MF_OK;
}

static int cmp_uidl_ptr(const void *a, const void *b)
{
	return strcmp(**(const char *const *const *)a, **(const char *const *const *)b);
}

/* unique[i]: msgs[i]'s UIDL appears once in the listing. */
static int uidl_unique(const struct uidl_msg *msgs, size_t n, bool *unique)
{
	const char **p;
	const char ***v;

	for (size_t i = 0; i < n; i++)
		unique[i] = true;
	if (n < 2)
		return MF_OK;
	p = malloc(n * sizeof(*p));
	v = malloc(n * sizeof(*v));
	if (p == NULL || v == NULL) {
		free(p);
		free(v);
		return MF_ERROR;
	}
	for (size_t i = 0; i < n; i++) {
		p[i] = msgs[i].uidl;
		v[i] = &p[i];
	}
	qsort(v, n, sizeof(*v), cmp_uidl_ptr);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(*v[i - 1], *v[i]) == 0) {
			unique[v[i - 1] - p] = false;
			unique[v[i] - p] = false;
		}
	}
	free(v);
	free(p);
	return MF_OK;
}

/* of[k] = the index i of the one message tied to copied message k
 * (UIDL_NONE: none; twice: none either). */
static void tie(const size_t *out, const bool *unique, size_t n, size_t *of, bool *twice,
		size_t m)
{
	for (size_t k = 0; k < m; k++) {
		of[k] = UIDL_NONE;
		twice[k] = false;
	}
	for (size_t i = 0; i < n; i++) {
		size_t k = out[i];

		if (k == UIDL_NONE || k >= m)
			continue;
		if (of[k] != UIDL_NONE)
			twice[k] = true;
		of[k] = unique[i] ? i : UIDL_NONE;
	}
}

int uidl_pairs_make(const struct uidl_msg *src, const size_t *sout, size_t ns,
		    const struct uidl_msg *dst, const size_t *dout, size_t nd,
		    const struct uidl_copied *c, size_t m, struct uidl_pair **v_r, size_t *n_r)
{
	size_t *src_of = NULL, *dst_of = NULL, n = 0;
	bool *su = NULL, *du = NULL, *s2 = NULL, *d2 = NULL;
	struct uidl_pair *v = NULL;
	int rc = MF_ERROR;

	*v_r = NULL;
	*n_r = 0;
	if (m == 0 || nd == 0)
		return MF_OK;
	src_of = calloc(m, sizeof(*src_of));
	dst_of = calloc(m, sizeof(*dst_of));
	s2 = calloc(m, sizeof(*s2));
	d2 = calloc(m, sizeof(*d2));
	su = calloc(ns + 1, sizeof(*su));
	du = calloc(nd, sizeof(*du));
	v = calloc(m < nd ? m : nd, sizeof(*v));
	if (src_of == NULL || dst_of == NULL || s2 == NULL || d2 == NULL || su == NULL ||
	    du == NULL || v == NULL)
		goto out;
	if (uidl_unique(dst, nd, du) != MF_OK)
		goto out;
	tie(dout, du, nd, dst_of, d2, m);
	if (src != NULL) {
		if (uidl_unique(src, ns, su) != MF_OK)
			goto out;
		tie(sout, su, ns, src_of, s2, m);
	}
	for (size_t j = 0; j < nd; j++) {
		size_t k = dout[j];
		const char *s;

		if (k == UIDL_NONE || k >= m || dst_of[k] != j || d2[k])
			continue;
		if (src != NULL) {
			if (src_of[k] == UIDL_NONE || s2[k])
				continue;
			s = src[src_of[k]].uidl;
		} else {
			s = c[k].src_uidl;
		}
		if (s == NULL || !ledger_uidl_valid(s, strlen(s) + 1) ||
		    !ledger_uidl_valid(dst[j].uidl, sizeof(dst[j].uidl)))
			continue;
		memcpy(v[n].dst, dst[j].uidl, sizeof(v[n].dst));
		memcpy(v[n].src, s, strlen(s) + 1);
		n++;
	}
	rc = MF_OK;
out:
	if (rc == MF_OK && n > 0) {
		*v_r = v;
		*n_r = n;
		v = NULL;
	}
	free(v);
	free(du);
	free(su);
	free(d2);
	free(s2);
	free(dst_of);
	free(src_of);
	return rc;
}
