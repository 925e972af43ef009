/* mig_verify.c — after the copy, per folder: every source message is on
 * the destination (by the map's destination UID, or by size and SHA-256
 * where the destination gave no UID) with the same size, the same SHA-256
 * (of the source bytes, taken while copying, against the destination's
 * bytes hashed now), the same INTERNALDATE (as an instant: servers may
 * print another zone) and the same flags; the counts are equal. Flags
 * changed on the source since the copy are stored on the destination
 * (an incremental rerun brings them over); everything else that differs
 * fails the verification. With a sample (mig_opts.verify_sample_pct) only
 * the sampled messages' bytes are read back; the others are compared by
 * RFC822.SIZE. */
#include "mf.h"
#include "mig_ctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_map(const void *a, const void *b)
{
	uint32_t x = ((const struct mig_map_entry *)a)->src_uid;
	uint32_t y = ((const struct mig_map_entry *)b)->src_uid;

	return x < y ? -1 : x > y;
}

static int cmp_hashed_uid(const void *a, const void *b)
{
	uint32_t x = ((const struct mig_hashed *)a)->uid, y = ((const struct mig_hashed *)b)->uid;

	return x < y ? -1 : x > y;
}

/* hd is sorted by UID: the map's destination UID is found by bisection;
 * without one (no UIDPLUS) the first unused message with the same bytes. */
static struct mig_hashed *find_dst(struct mig_hashed_set *hd, const struct mig_map_entry *e)
{
	if (e->dst_uid != 0) {
		struct mig_hashed key = { .uid = e->dst_uid }, *d;

		d = mig_bsearch(&key, hd->v, hd->n, sizeof(*hd->v), cmp_hashed_uid);
		return d != NULL && !d->used ? d : NULL;
	}
	for (size_t i = 0; i < hd->n; i++) {
		struct mig_hashed *d = &hd->v[i];

		if (d->used)
			continue;
		if (e->dst_uid != 0 ? d->uid == e->dst_uid
				    : d->size == e->size && memcmp(d->sha256, e->sha256, 32) == 0)
			return d;
	}
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

bool mig_verify_sampled(uint32_t uid, unsigned int pct)
{
	if (pct == 0 || pct >= 100)
		return true;
	/* Fibonacci hashing spreads consecutive UIDs over the residues. */
	return (uint32_t)(uid * 2654435761u) % 100u < pct;
}

/* Whether verification reads e's bytes back: in the sample, and not
 * verified before when the caller says those need not be again. */
static bool to_hash(const struct mig_ctx *x, const struct mig_map_entry *e)
{
	return mig_verify_sampled(e->src_uid, x->o->verify_sample_pct) &&
	       !(x->o->verify_skip_verified && e->verified);
}

/* Whether some message of the map is not to be hashed. */
static bool partial(const struct mig_ctx *x, const struct mig_map_entry *map, size_t n_map)
{
	for (size_t i = 0; i < n_map; i++)
		if (!to_hash(x, &map[i]))
			return true;
	return false;
}

/* The destination's messages, the sampled ones hashed: every message's
 * metadata, then the bodies of the sample by UID sets. false in
 * *sampled_r when the folder is hashed whole (no sample asked, or a map
 * entry without a destination UID: those are found by their bytes). */
static int dst_sampled(struct mig_ctx *x, const struct mig_map_entry *map, size_t n_map,
		       struct mig_hashed_set *hd, bool *sampled_r)
{
	struct mig_meta_run dm = { 0 };
	struct mig_hashed_set hs = { 0 };
	uint32_t *uids = NULL;
	size_t nu = 0;
	int rc = MF_ERROR;

	*sampled_r = false;
	for (size_t i = 0; i < n_map; i++)
		if (map[i].dst_uid == 0)
			return MF_OK;
	if (!partial(x, map, n_map))
		return MF_OK;
	*sampled_r = true;
	if (mig_meta_fetch(x->dst, 0, &dm, x->err, sizeof(x->err)) != MF_OK)
		return MF_ERROR;
	hd->v = calloc(dm.n ? dm.n : 1, sizeof(*hd->v));
	uids = calloc(n_map ? n_map : 1, sizeof(*uids));
	if (hd->v == NULL || uids == NULL) {
		mf_err(x->err, sizeof(x->err), "out of memory");
		goto out;
	}
	hd->cap = dm.n;
	for (size_t i = 0; i < dm.n; i++) {
		struct mig_hashed *d = &hd->v[hd->n++];

		d->uid = dm.v[i].uid;
		d->size = dm.v[i].size;
		d->flags = dm.v[i].flags;
		dm.v[i].flags = NULL;
		memcpy(d->date, dm.v[i].date, sizeof(d->date));
	}
	for (size_t i = 0; i < n_map; i++)
		if (to_hash(x, &map[i]))
			uids[nu++] = map[i].dst_uid;
	mig_qsort(uids, nu, sizeof(*uids), cmp_u32);
	if (mig_hash_fetch_uids(x->dst, uids, nu, &hs, x->err, sizeof(x->err)) != MF_OK)
		goto out;
	/* hd is in UID order (mig_meta_fetch sorts): the hashed ones replace
	 * their metadata-only entries. */
	for (size_t i = 0; i < hs.n; i++) {
		struct mig_hashed key = { .uid = hs.v[i].uid }, *d;

		d = mig_bsearch(&key, hd->v, hd->n, sizeof(*hd->v), cmp_hashed_uid);
		if (d == NULL)
			continue; /* expunged between the two FETCHes: the count fails */
		d->size = hs.v[i].size;
		memcpy(d->sha256, hs.v[i].sha256, 32);
		d->hashed = true;
	}
	rc = MF_OK;
out:
	free(uids);
	mig_hashed_free(&hs);
	mig_msgs_free(dm.v, dm.n);
	return rc;
}

static int fix_flags(struct mig_ctx *x, uint32_t uid, const char *flags)
{
	return imap_simple(x->dst, NULL, NULL, x->err, sizeof(x->err),
			   "UID STORE %u FLAGS.SILENT (%s)", uid, flags);
}

/* The map's messages whose bytes were just hashed and matched (by their
 * destination UID), not marked before: marked verified now. */
static int mark_hashed(struct mig_ctx *x, const struct mig_folder *f,
		       const struct mig_map_entry *map, size_t n_map, struct mig_hashed_set *hd)
{
	uint32_t *uids = calloc(n_map ? n_map : 1, sizeof(*uids));
	size_t n = 0;
	int rc;

	if (uids == NULL)
		return mf_err(x->err, sizeof(x->err), "out of memory");
	for (size_t i = 0; i < n_map; i++) {
		struct mig_hashed key = { .uid = map[i].dst_uid }, *d;

		if (map[i].verified || map[i].dst_uid == 0)
			continue;
		d = mig_bsearch(&key, hd->v, hd->n, sizeof(*hd->v), cmp_hashed_uid);
		if (d != NULL && d->hashed)
			uids[n++] = map[i].src_uid;
	}
	rc = mig_state_map_verified(x->st, f->src, uids, n, x->err, sizeof(x->err));
	free(uids);
	return rc;
}

static int cmp_map_dst(const void *a, const void *b)
{
	uint32_t x = (*(const struct mig_map_entry *const *)a)->dst_uid;
	uint32_t y = (*(const struct mig_map_entry *const *)b)->dst_uid;

	return x < y ? -1 : x > y;
}

/* One slice of the read-back: e[0..n) (sorted by destination UID) hashed
 * on the destination, matches marked verified in one commit. */
static int preverify_slice(struct mig_ctx *x, const struct mig_folder *f,
			   struct mig_map_entry *const *e, size_t n, uint32_t *uids,
			   uint32_t *src)
{
	struct mig_hashed_set hs = { 0 };
	size_t nok = 0;
	int rc = MF_ERROR;

	for (size_t i = 0; i < n; i++)
		uids[i] = e[i]->dst_uid;
	if (mig_hash_fetch_uids(x->dst, uids, n, &hs, x->err, sizeof(x->err)) != MF_OK)
		goto out;
	mig_qsort(hs.v, hs.n, sizeof(*hs.v), cmp_hashed_uid);
	for (size_t i = 0; i < n; i++) {
		struct mig_hashed key = { .uid = e[i]->dst_uid }, *d;

		d = mig_bsearch(&key, hs.v, hs.n, sizeof(*hs.v), cmp_hashed_uid);
		if (d == NULL)
			continue; /* gone meanwhile? the final verification says */
		if (d->size != e[i]->size || memcmp(d->sha256, e[i]->sha256, 32) != 0) {
			mf_err(x->err, sizeof(x->err),
			       "verify %s: source UID %u differs on the destination (UID %u): "
			       "size %llu vs %llu or SHA-256", f->src, e[i]->src_uid, d->uid,
			       (unsigned long long)e[i]->size, (unsigned long long)d->size);
			goto out;
		}
		src[nok++] = e[i]->src_uid;
	}
	if (mig_state_map_verified(x->st, f->src, src, nok, x->err, sizeof(x->err)) != MF_OK)
		goto out;
	x->rep->preverified += nok;
	rc = MF_OK;
out:
	mig_hashed_free(&hs);
	return rc;
}

int mig_preverify_folder(struct mig_ctx *x, const struct mig_folder *f)
{
	struct mig_map_entry *map = NULL, **todo = NULL;
	uint32_t *uids = NULL, *src = NULL, duv, dexists;
	size_t n_map = 0, nt = 0;
	int rc = MF_ERROR;

	if (mig_state_map_load(x->st, f->src, &map, &n_map, x->err, sizeof(x->err)) != MF_OK)
		return MF_ERROR;
	todo = calloc(n_map ? n_map : 1, sizeof(*todo));
	uids = calloc(MIG_PREVERIFY_SLICE_MSGS, sizeof(*uids));
	src = calloc(MIG_PREVERIFY_SLICE_MSGS, sizeof(*src));
	if (todo == NULL || uids == NULL || src == NULL) {
		mf_err(x->err, sizeof(x->err), "out of memory");
		goto out;
	}
	/* Without a destination UID a message is found by its bytes: the
	 * final verification does that. */
	for (size_t i = 0; i < n_map; i++)
		if (!map[i].verified && map[i].dst_uid != 0)
			todo[nt++] = &map[i];
	if (nt == 0) {
		rc = MF_OK;
		goto out;
	}
	if (mig_select(x->dst, f->dst, true, &duv, &dexists, x->err, sizeof(x->err)) != MF_OK)
		goto out;
	mig_qsort(todo, nt, sizeof(*todo), cmp_map_dst);
	/* In slices of a bounded size, each committed: a stop waits for one
	 * slice, not for the folder, and a resumed copy does not read back
	 * again what was verified before it. */
	for (size_t a = 0; a < nt;) {
		uint64_t bytes = 0;
		size_t b = a;

		while (b < nt && b - a < MIG_PREVERIFY_SLICE_MSGS &&
		       (b == a || bytes + todo[b]->size <= MIG_PREVERIFY_SLICE_BYTES))
			bytes += todo[b++]->size;
		if (mig_check_cancel(x) != MF_OK ||
		    preverify_slice(x, f, todo + a, b - a, uids, src) != MF_OK)
			goto out;
		a = b;
	}
	rc = MF_OK;
out:
	free(src);
	free(uids);
	free(todo);
	free(map);
	return rc;
}

int mig_verify_folder(struct mig_ctx *x, const struct mig_folder *f)
{
	struct mig_folder_state fs;
	struct mig_meta_run src = { 0 };
	struct mig_hashed_set hd = { 0 };
	struct mig_map_entry *map = NULL;
	uint32_t suv, duv, sexists, dexists;
	size_t n_map = 0;
	bool sampled = false;
	int rc = MF_ERROR;

	if (mig_state_folder_get(x->st, f->src, &fs, x->err, sizeof(x->err)) != MF_OK ||
	    mig_select(x->src, f->src, true, &suv, &sexists, x->err, sizeof(x->err)) != MF_OK ||
	    mig_select(x->dst, f->dst, false, &duv, &dexists, x->err, sizeof(x->err)) != MF_OK)
		return MF_ERROR;
	if (!fs.known || fs.uidvalidity != suv || fs.dst_uidvalidity != duv)
		return mf_err(x->err, sizeof(x->err), "verify %s: UIDVALIDITY changed during the copy",
			      f->src);
	if (sexists > 0 && mig_meta_fetch(x->src, 0, &src, x->err, sizeof(x->err)) != MF_OK)
		return MF_ERROR;
	if (mig_state_map_load(x->st, f->src, &map, &n_map, x->err, sizeof(x->err)) != MF_OK)
		goto out;
	if (dexists > 0 && dst_sampled(x, map, n_map, &hd, &sampled) != MF_OK)
		goto out;
	if (dexists > 0 && !sampled &&
	    mig_hash_fetch(x->dst, "1:*", &hd, x->err, sizeof(x->err)) != MF_OK)
		goto out;
	mig_qsort(hd.v, hd.n, sizeof(*hd.v), cmp_hashed_uid);
	for (size_t i = 0; i < src.n; i++) {
		const struct mig_msg *m = &src.v[i];
		struct mig_map_entry key = { .src_uid = m->uid }, *e;
		struct mig_hashed *d;
		int64_t ts, td;

		e = mig_bsearch(&key, map, n_map, sizeof(*map), cmp_map);
		if (e == NULL) {
			mf_err(x->err, sizeof(x->err), "verify %s: source UID %u was not copied",
			       f->src, m->uid);
			goto out;
		}
		d = find_dst(&hd, e);
		if (d == NULL) {
			mf_err(x->err, sizeof(x->err),
			       "verify %s: source UID %u is not on the destination (UID %u)", f->src,
			       m->uid, e->dst_uid);
			goto out;
		}
		d->used = true;
		/* Sizes are the literals' (RFC822.SIZE may be computed otherwise
		 * by some servers): the bytes copied against the bytes stored. */
		if (d->size != e->size || (d->hashed && memcmp(d->sha256, e->sha256, 32) != 0)) {
			mf_err(x->err, sizeof(x->err),
			       "verify %s: source UID %u differs on the destination (UID %u): "
			       "size %llu vs %llu or SHA-256", f->src, m->uid, d->uid,
			       (unsigned long long)e->size, (unsigned long long)d->size);
			goto out;
		}
		if (m->date[0] != '\0' &&
		    (mig_date_parse(m->date, &ts) != MF_OK || mig_date_parse(d->date, &td) != MF_OK ||
		     ts != td)) {
			mf_err(x->err, sizeof(x->err),
			       "verify %s: source UID %u: INTERNALDATE \"%s\" became \"%s\"", f->src,
			       m->uid, m->date, d->date);
			goto out;
		}
		if (!mig_flags_equal(m->flags, d->flags)) {
			if (fix_flags(x, d->uid, m->flags) != MF_OK)
				goto out;
			x->rep->flags_fixed++;
		}
		x->rep->verified++;
		x->rep->verified_hashed += d->hashed;
		x->prog.verified++;
	}
	if (hd.n != src.n) {
		mf_err(x->err, sizeof(x->err),
		       "verify %s: %zu messages on the source, %zu on the destination (%s)", f->src,
		       src.n, hd.n, f->dst);
		goto out;
	}
	rc = mark_hashed(x, f, map, n_map, &hd);
out:
	free(map);
	mig_hashed_free(&hd);
	mig_msgs_free(src.v, src.n);
	return rc;
}
