/* mig_expunge.c — the copy's own messages removed from the destination,
 * and nothing else: what a source's deletions become there (a POP3
 * source's, mig_pop3_gone.c; an IMAP source's, mig_copy.c's delta).
 *
 * A row is one message the copy stored: its destination UID (0 when the
 * destination did not say, no UIDPLUS), size and SHA-256 of the bytes
 * copied. A gone row's message is expunged only when it is still what the
 * copy stored: by UID, the message there with the row's size and SHA-256
 * (the UIDVALIDITY may have changed, or someone may have expunged it
 * already); without a UID, a message with its bytes that no kept row
 * accounts for. Expunged by UID EXPUNGE (UIDPLUS); without it, messages
 * someone else marked \Deleted are unmarked around a plain EXPUNGE and
 * marked again after, so nothing but ours is removed. */
#include "mf.h"
#include "mig_ctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GONE_SET_MAX 4000 /* bytes of one UID set in a command */

struct uids {
	uint32_t *v;
	size_t n, cap;
	bool oom;
};

static void uids_add(struct uids *u, uint32_t uid)
{
	if (u->n == u->cap) {
		size_t nc = u->cap ? u->cap * 2 : 64;
		uint32_t *nv = realloc(u->v, nc * sizeof(*nv));

		if (nv == NULL) {
			u->oom = true;
			return;
		}
		u->v = nv;
		u->cap = nc;
	}
	u->v[u->n++] = uid;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_hashed_uid(const void *a, const void *b)
{
	uint32_t x = ((const struct mig_hashed *)a)->uid, y = ((const struct mig_hashed *)b)->uid;

	return x < y ? -1 : x > y;
}

/* "<verb> <set><rest>" on the destination over uids (sorted), in as many
 * commands as their UID sets of at most GONE_SET_MAX bytes take. */
static int each_set(struct mig_ctx *x, const struct uids *u, const char *verb, const char *rest)
{
	char set[GONE_SET_MAX];
	size_t at = 0, used;

	while (at < u->n) {
		mig_uidset(u->v + at, u->n - at, set, sizeof(set), &used);
		if (used == 0)
			return mf_err(x->err, sizeof(x->err), "UID set: no room");
		if (imap_simple(x->dst, NULL, NULL, x->err, sizeof(x->err), "%s %s%s", verb, set,
				rest) != MF_OK)
			return MF_ERROR;
		at += used;
	}
	return MF_OK;
}

static int on_search(void *arg, const struct imap_response *r)
{
	struct uids *u = arg;
	uint64_t v;

	if (r->n < 1 || !imap_item_is(&r->items[0], "SEARCH"))
		return MF_OK;
	for (size_t i = 1; i < r->n; i++)
		if (imap_item_num(&r->items[i], &v) && v > 0 && v <= UINT32_MAX)
			uids_add(u, (uint32_t)v);
	return MF_OK;
}

/* Expunges exactly the messages at uids (sorted, not empty). */
static int expunge_uids(struct mig_ctx *x, const struct uids *targets)
{
	struct uids others = { 0 };
	int rc = MF_ERROR;

	if (each_set(x, targets, "UID STORE", " +FLAGS.SILENT (\\Deleted)") != MF_OK)
		return MF_ERROR;
	if (imap_has(x->dst, IMAP_CAP_UIDPLUS))
		return each_set(x, targets, "UID EXPUNGE", "");
	/* No UIDPLUS: EXPUNGE takes every \Deleted message; the ones that
	 * are not ours keep their mark around it, unmarked meanwhile. */
	if (imap_simple(x->dst, on_search, &others, x->err, sizeof(x->err), "UID SEARCH DELETED") !=
	    MF_OK)
		goto out;
	if (others.oom) {
		mf_err(x->err, sizeof(x->err), "out of memory");
		goto out;
	}
	mig_qsort(others.v, others.n, sizeof(*others.v), cmp_u32);
	{
		/* ours are \Deleted by now too: keep only the others */
		size_t k = 0;

		for (size_t i = 0; i < others.n; i++)
			if (mig_bsearch(&others.v[i], targets->v, targets->n, sizeof(uint32_t),
					cmp_u32) == NULL)
				others.v[k++] = others.v[i];
		others.n = k;
	}
	if (each_set(x, &others, "UID STORE", " -FLAGS.SILENT (\\Deleted)") != MF_OK ||
	    imap_simple(x->dst, NULL, NULL, x->err, sizeof(x->err), "EXPUNGE") != MF_OK ||
	    each_set(x, &others, "UID STORE", " +FLAGS.SILENT (\\Deleted)") != MF_OK)
		goto out;
	rc = MF_OK;
out:
	free(others.v);
	return rc;
}

static bool same_bytes(const struct mig_hashed *h, const struct mig_gone_row *r)
{
	return h->size == r->size && memcmp(h->sha256, r->sha256, 32) == 0;
}

int mig_expunge_copied(struct mig_ctx *x, const struct mig_gone_row *rows, size_t n,
		       uint32_t exists, uint64_t *expunged_r)
{
	struct mig_hashed_set hd = { 0 };
	struct uids want = { 0 }, targets = { 0 };
	bool by_content = false;
	size_t ngone = 0;
	int rc = MF_ERROR;

	*expunged_r = 0;
	for (size_t k = 0; k < n; k++) {
		if (!rows[k].gone || rows[k].skip)
			continue;
		ngone++;
		if (rows[k].dst_uid == 0)
			by_content = true;
		else
			uids_add(&want, rows[k].dst_uid);
	}
	if (ngone == 0 || exists == 0) {
		rc = MF_OK;
		goto out;
	}
	mig_qsort(want.v, want.n, sizeof(*want.v), cmp_u32);
	/* Rows with UIDs: just those messages. Rows without: the whole
	 * folder, with what the remaining rows account for set aside first. */
	if (by_content ? mig_hash_fetch(x->dst, "1:*", &hd, x->err, sizeof(x->err)) != MF_OK
		       : mig_hash_fetch_uids(x->dst, want.v, want.n, &hd, x->err,
					     sizeof(x->err)) != MF_OK)
		goto out;
	mig_qsort(hd.v, hd.n, sizeof(*hd.v), cmp_hashed_uid);
	for (int pass = 0; pass < 3; pass++) {
		/* 0: every row with a UID, its message; 1: (whole folder hashed)
		 * the kept rows without one set their bytes aside; 2: the gone
		 * rows without one take what is left with their bytes. */
		for (size_t k = 0; k < n; k++) {
			const struct mig_gone_row *r = &rows[k];
			struct mig_hashed key = { .uid = r->dst_uid }, *h = NULL;
			int p = r->dst_uid != 0 ? 0 : r->gone ? 2 : 1;

			if (r->skip || p != pass || (p > 0 && !by_content))
				continue;
			if (r->dst_uid != 0) {
				h = mig_bsearch(&key, hd.v, hd.n, sizeof(*hd.v), cmp_hashed_uid);
				if (h != NULL && (h->used || !same_bytes(h, r)))
					h = NULL;
			} else {
				for (size_t i = 0; i < hd.n && h == NULL; i++)
					if (!hd.v[i].used && same_bytes(&hd.v[i], r))
						h = &hd.v[i];
			}
			if (h == NULL)
				continue; /* not there (any more): nothing to expunge */
			h->used = true;
			if (r->gone)
				uids_add(&targets, h->uid);
		}
	}
	if (want.oom || targets.oom) {
		mf_err(x->err, sizeof(x->err), "out of memory");
		goto out;
	}
	mig_qsort(targets.v, targets.n, sizeof(*targets.v), cmp_u32);
	if (targets.n > 0 && expunge_uids(x, &targets) != MF_OK)
		goto out;
	*expunged_r = targets.n;
	rc = MF_OK;
out:
	mig_hashed_free(&hd);
	free(targets.v);
	free(want.v);
	return rc;
}
