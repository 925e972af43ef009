/* mig_pop3_gone.c — a POP3 source's deletions brought over: messages the
 * copy stored on the destination whose UIDL the source no longer lists
 * (the user deleted them there, DELE + QUIT, since they were copied) are
 * expunged from the destination's INBOX (mig_opts.sync_deletes: the
 * daemon's delta at CUTOVER), so both hold the same mail when the account
 * flips.
 *
 * Only what the copy stored goes, and only when it still is what the copy
 * stored: a state row's destination UID is expunged when the message
 * there has the row's size and SHA-256 (the UIDVALIDITY may have changed,
 * or someone may have expunged it already); a row without a destination
 * UID (no UIDPLUS) takes a message with its bytes that no remaining row
 * accounts for. Expunged by UID EXPUNGE (UIDPLUS); without it, messages
 * someone else marked \Deleted are unmarked around a plain EXPUNGE and
 * marked again after, so nothing but ours is removed. The rows go after
 * the expunge: a crash in between leaves rows whose messages are gone,
 * which the next run finds gone and forgets. */
#include "mf.h"
#include "mig_ctx.h"
#include "pop3_client.h"

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

static int cmp_str_ptr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_hashed_uid(const void *a, const void *b)
{
	uint32_t x = ((const struct mig_hashed *)a)->uid, y = ((const struct mig_hashed *)b)->uid;

	return x < y ? -1 : x > y;
}

/* "<verb> <set><rest>" over uids (sorted) in as many commands as sets of
 * GONE_SET_MAX bytes take; fn for the untagged answers. */
static int each_set(struct mig_ctx *x, const struct uids *u, const char *verb, const char *rest,
		    int (*fn)(void *arg, const struct imap_response *r), void *arg)
{
	char set[GONE_SET_MAX];
	size_t at = 0, used;

	while (at < u->n) {
		mig_uidset(u->v + at, u->n - at, set, sizeof(set), &used);
		if (used == 0)
			return mf_err(x->err, sizeof(x->err), "UID set: no room");
		if (imap_simple(x->dst, fn, arg, x->err, sizeof(x->err), "%s %s%s", verb, set,
				rest) != MF_OK)
			return MF_ERROR;
		at += used;
	}
	return MF_OK;
}

/* The messages at uids, hashed (mig_hash_fetch per UID set). */
static int hash_uids(struct mig_ctx *x, const struct uids *u, struct mig_hashed_set *hs)
{
	char set[GONE_SET_MAX];
	size_t at = 0, used;

	while (at < u->n) {
		mig_uidset(u->v + at, u->n - at, set, sizeof(set), &used);
		if (used == 0)
			return mf_err(x->err, sizeof(x->err), "UID set: no room");
		if (mig_hash_fetch(x->dst, set, hs, x->err, sizeof(x->err)) != MF_OK)
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

	if (each_set(x, targets, "UID STORE", " +FLAGS.SILENT (\\Deleted)", NULL, NULL) != MF_OK)
		return MF_ERROR;
	if (imap_has(x->dst, IMAP_CAP_UIDPLUS))
		return each_set(x, targets, "UID EXPUNGE", "", NULL, NULL);
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
	if (each_set(x, &others, "UID STORE", " -FLAGS.SILENT (\\Deleted)", NULL, NULL) != MF_OK ||
	    imap_simple(x->dst, NULL, NULL, x->err, sizeof(x->err), "EXPUNGE") != MF_OK ||
	    each_set(x, &others, "UID STORE", " +FLAGS.SILENT (\\Deleted)", NULL, NULL) != MF_OK)
		goto out;
	rc = MF_OK;
out:
	free(others.v);
	return rc;
}

static bool same_bytes(const struct mig_hashed *h, const struct mig_uidl_entry *e)
{
	return h->size == e->size && memcmp(h->sha256, e->sha256, 32) == 0;
}

int mig_pop3_expunge_gone(struct mig_ctx *x, const struct pop3_msg *msgs, size_t n,
			  uint64_t *expunged_r)
{
	struct mig_uidl_entry *v = NULL;
	struct mig_hashed_set hd = { 0 };
	struct uids want = { 0 }, targets = { 0 };
	const char **listed = NULL;
	bool *gone = NULL, by_content = false;
	size_t nv = 0, ngone = 0;
	uint32_t uv, exists;
	int rc = MF_ERROR;

	*expunged_r = 0;
	if (mig_state_uidl_load(x->st, &v, &nv, x->err, sizeof(x->err)) != MF_OK)
		return MF_ERROR;
	listed = calloc(n + 1, sizeof(*listed));
	gone = calloc(nv + 1, sizeof(*gone));
	if (listed == NULL || gone == NULL) {
		mf_err(x->err, sizeof(x->err), "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		listed[i] = msgs[i].uidl;
	mig_qsort(listed, n, sizeof(*listed), cmp_str_ptr);
	for (size_t k = 0; k < nv; k++) {
		const char *key = v[k].uidl;

		gone[k] = mig_bsearch(&key, listed, n, sizeof(*listed), cmp_str_ptr) == NULL;
		if (!gone[k])
			continue;
		ngone++;
		if (v[k].pending || v[k].dst_uid == 0)
			by_content = by_content || !v[k].pending;
		else
			uids_add(&want, v[k].dst_uid);
	}
	if (ngone == 0) {
		rc = MF_OK;
		goto out;
	}
	if (mig_select(x->dst, "INBOX", false, &uv, &exists, x->err, sizeof(x->err)) != MF_OK)
		goto out;
	mig_qsort(want.v, want.n, sizeof(*want.v), cmp_u32);
	/* Rows with UIDs: just those messages. Rows without: the whole INBOX,
	 * with what the remaining rows account for set aside first. */
	if (exists > 0 && (by_content ? mig_hash_fetch(x->dst, "1:*", &hd, x->err,
							sizeof(x->err))
				      : hash_uids(x, &want, &hd)) != MF_OK)
		goto out;
	mig_qsort(hd.v, hd.n, sizeof(*hd.v), cmp_hashed_uid);
	for (int pass = 0; pass < 3; pass++) {
		/* 0: every row with a UID, its message; 1: (whole INBOX hashed)
		 * the kept rows without one set their bytes aside; 2: the gone
		 * rows without one take what is left with their bytes. */
		for (size_t k = 0; k < nv; k++) {
			struct mig_hashed key = { .uid = v[k].dst_uid }, *h = NULL;
			int p = v[k].dst_uid != 0 ? 0 : gone[k] ? 2 : 1;

			if (v[k].pending || p != pass || (p > 0 && !by_content))
				continue;
			if (v[k].dst_uid != 0) {
				h = mig_bsearch(&key, hd.v, hd.n, sizeof(*hd.v), cmp_hashed_uid);
				if (h != NULL && (h->used || !same_bytes(h, &v[k])))
					h = NULL;
			} else {
				for (size_t i = 0; i < hd.n && h == NULL; i++)
					if (!hd.v[i].used && same_bytes(&hd.v[i], &v[k]))
						h = &hd.v[i];
			}
			if (h == NULL)
				continue; /* not there (any more): nothing to expunge */
			h->used = true;
			if (gone[k])
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
	if (mig_state_begin(x->st, x->err, sizeof(x->err)) != MF_OK)
		goto out;
	for (size_t k = 0; k < nv; k++) {
		if (gone[k] && mig_state_uidl_del(x->st, v[k].uidl, x->err, sizeof(x->err)) != MF_OK) {
			mig_state_rollback(x->st);
			goto out;
		}
	}
	if (mig_state_commit(x->st, x->err, sizeof(x->err)) != MF_OK)
		goto out;
	*expunged_r = targets.n;
	rc = MF_OK;
out:
	mig_hashed_free(&hd);
	free(targets.v);
	free(want.v);
	free(gone);
	free(listed);
	free(v);
	return rc;
}
