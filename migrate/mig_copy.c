/* mig_copy.c — copies the messages of one folder that are not copied yet.
 *
 * Plan: the source folder's checkpoint says up to which UID everything is
 * copied; the metadata (UID FLAGS INTERNALDATE RFC822.SIZE) of every later
 * message is fetched in one command. If the checkpoint is dirty (a crash
 * between an APPEND and its record) or a UIDVALIDITY changed, the folder
 * is first reconciled: source messages not in the map are matched by size
 * and SHA-256 against destination messages not in the map, and matches
 * are recorded instead of copied again.
 *
 * Copy: batches of at most batch_max messages and max_inflight_bytes. A
 * batch is one "UID FETCH set (UID BODY.PEEK[])" on the source (the next
 * one is sent once this batch's APPEND is written, so the source reads
 * while the destination stores) and one MULTIAPPEND on the destination (one
 * APPEND per message without MULTIAPPEND), whose literals are written
 * while the source's literals arrive: a body is never held whole. The
 * checkpoint is marked dirty (synced) before the APPEND is sent and the
 * batch's map entries, new last UID and clean mark are committed together
 * after the destination's OK. */
#include "mf.h"
#include "mig_ctx.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct stream {
	struct mig_ctx *x;
	const struct mig_folder *f;
	struct mig_msg *msgs;  /* the folder's plan, sorted by UID */
	size_t n_msgs;
	size_t b0, b1;         /* this batch: msgs[b0..b1) */
	bool multi, lplus;
	bool started;          /* the APPEND command is open */
	char tag[16];
	unsigned int tag_seq;
	char qbox[2048];
	EVP_MD_CTX *md;
	struct mig_map_entry cur;
	const struct mig_msg *cur_msg; /* the message of the last APPEND part */
	struct mig_map_entry *done; /* stored, in APPEND order */
	size_t n_done;
	double last_emit;
};

static int cmp_uid(const void *a, const void *b)
{
	uint32_t x = ((const struct mig_msg *)a)->uid, y = ((const struct mig_msg *)b)->uid;

	return x < y ? -1 : x > y;
}

static struct mig_msg *find_uid(struct mig_msg *v, size_t n, uint32_t uid)
{
	struct mig_msg key = { .uid = uid };

	return mig_bsearch(&key, v, n, sizeof(*v), cmp_uid);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* By size, then SHA-256 (UID does not count: equal bytes are equal). */
static int cmp_hashed(const void *a, const void *b)
{
	const struct mig_hashed *x = a, *y = b;

	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	return memcmp(x->sha256, y->sha256, 32);
}

static size_t hashed_lower_bound(const struct mig_hashed_set *hs, const struct mig_hashed *key)
{
	size_t lo = 0, hi = hs->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cmp_hashed(&hs->v[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int cmp_map(const void *a, const void *b)
{
	uint32_t x = ((const struct mig_map_entry *)a)->src_uid;
	uint32_t y = ((const struct mig_map_entry *)b)->src_uid;

	return x < y ? -1 : x > y;
}

/* ---- reconciliation ---- */

struct size_run {
	struct mig_msg *v;
	size_t n, cap;
	bool oom;
};

/* Matches the planned source messages against destination messages not
 * in the map; matched ones are recorded and dropped from the plan. */
static int reconcile(struct mig_ctx *x, const struct mig_folder *f, struct mig_meta_run *plan,
		     struct mig_map_entry *map, size_t n_map)
{
	struct mig_meta_run dst = { 0 };
	struct mig_hashed_set hs = { 0 }, hd = { 0 };
	uint32_t *su = NULL, *du = NULL, *claimed = NULL;
	uint64_t *dsz = NULL, *psz = NULL;
	size_t ns = 0, nd = 0, nds = 0, kept = 0;
	int rc = MF_ERROR;

	/* Destination messages nobody in the map claims. */
	if (imap_simple(x->dst, mig_meta_on_fetch, &dst, x->err, sizeof(x->err),
			"UID FETCH 1:* (UID FLAGS RFC822.SIZE)") != MF_OK)
		goto out;
	su = calloc(plan->n + 1, sizeof(*su));
	du = calloc(dst.n + 1, sizeof(*du));
	if (su == NULL || du == NULL) {
		mf_err(x->err, sizeof(x->err), "out of memory");
		goto out;
	}
	claimed = calloc(n_map + 1, sizeof(*claimed));
	dsz = calloc(dst.n + 1, sizeof(*dsz));
	psz = calloc(plan->n + 1, sizeof(*psz));
	if (claimed == NULL || dsz == NULL || psz == NULL) {
		mf_err(x->err, sizeof(x->err), "out of memory");
		goto out;
	}
	/* Sorted keys, so that this stays n log n for big folders. */
	for (size_t k = 0; k < n_map; k++)
		claimed[k] = map[k].dst_uid;
	mig_qsort(claimed, n_map, sizeof(*claimed), cmp_u32);
	for (size_t k = 0; k < plan->n; k++)
		psz[k] = plan->v[k].size;
	mig_qsort(psz, plan->n, sizeof(*psz), cmp_u64);
	for (size_t i = 0; i < dst.n; i++) {
		if (mig_bsearch(&dst.v[i].uid, claimed, n_map, sizeof(*claimed), cmp_u32) != NULL)
			continue;
		dsz[nds++] = dst.v[i].size;
		if (mig_bsearch(&dst.v[i].size, psz, plan->n, sizeof(*psz), cmp_u64) != NULL)
			du[nd++] = dst.v[i].uid;
	}
	if (nd == 0) {
		rc = MF_OK;
		goto out;
	}
	mig_qsort(dsz, nds, sizeof(*dsz), cmp_u64);
	for (size_t k = 0; k < plan->n; k++)
		if (mig_bsearch(&plan->v[k].size, dsz, nds, sizeof(*dsz), cmp_u64) != NULL)
			su[ns++] = plan->v[k].uid;
	mig_qsort(du, nd, sizeof(*du), cmp_u32);
	if (mig_hash_fetch_uids(x->src, su, ns, &hs, x->err, sizeof(x->err)) != MF_OK ||
	    mig_hash_fetch_uids(x->dst, du, nd, &hd, x->err, sizeof(x->err)) != MF_OK)
		goto out;
	mig_qsort(hd.v, hd.n, sizeof(*hd.v), cmp_hashed);
	if (mig_state_begin(x->st, x->err, sizeof(x->err)) != MF_OK)
		goto out;
	for (size_t k = 0; k < hs.n; k++) {
		struct mig_hashed *s = &hs.v[k];
		size_t i = hashed_lower_bound(&hd, s);
		struct mig_map_entry e;
		struct mig_msg *m;

		/* The first unused destination copy of these bytes: two equal
		 * messages on the source pair with two on the destination. */
		while (i < hd.n && cmp_hashed(&hd.v[i], s) == 0 && hd.v[i].used)
			i++;
		if (i == hd.n || cmp_hashed(&hd.v[i], s) != 0)
			continue;
		hd.v[i].used = true;
		e.src_uid = s->uid;
		e.dst_uid = hd.v[i].uid;
		e.size = s->size;
		memcpy(e.sha256, s->sha256, 32);
		if (mig_state_map_add(x->st, f->src, &e, x->err, sizeof(x->err)) != MF_OK) {
			mig_state_rollback(x->st);
			goto out;
		}
		m = find_uid(plan->v, plan->n, s->uid);
		if (m != NULL)
			m->size = UINT64_MAX; /* drop from the plan below */
		x->rep->reconciled++;
	}
	if (mig_state_commit(x->st, x->err, sizeof(x->err)) != MF_OK)
		goto out;
	for (size_t k = 0; k < plan->n; k++) {
		if (plan->v[k].size == UINT64_MAX) {
			free(plan->v[k].flags);
			continue;
		}
		plan->v[kept++] = plan->v[k];
	}
	plan->n = kept;
	rc = MF_OK;
out:
	free(su);
	free(du);
	free(claimed);
	free(dsz);
	free(psz);
	mig_hashed_free(&hs);
	mig_hashed_free(&hd);
	mig_msgs_free(dst.v, dst.n);
	return rc;
}

/* ---- streaming APPEND ---- */

/* The destination said NO to the APPEND in flight (r: its answer). With
 * one message per APPEND, m names the message; a MULTIAPPEND batch names
 * none (mig_run() narrows it down). */
static int refused(struct stream *s, const struct imap_response *r, const struct mig_msg *m)
{
	struct mig_report *rep = s->x->rep;
	char text[200];
	int k = imap_resp_code(r, NULL);

	snprintf(text, sizeof(text), "%s", imap_resp_text(r));
	rep->dst_refused = true;
	rep->refused_code[0] = '\0';
	if (k >= 0)
		snprintf(rep->refused_code, sizeof(rep->refused_code), "%s", r->items[k].s);
	if (m == NULL)
		return mf_err(s->x->err, sizeof(s->x->err),
			      "destination refused a batch of %zu messages of %s: NO %s%s%s%s",
			      s->b1 - s->b0, s->f->src, k >= 0 ? "[" : "", rep->refused_code,
			      k >= 0 ? "] " : "", text);
	rep->refused_known = true;
	rep->refused_uid = m->uid;
	rep->refused_size = m->size;
	snprintf(rep->refused_folder, sizeof(rep->refused_folder), "%s", s->f->src);
	return mf_err(s->x->err, sizeof(s->x->err),
		      "destination refused message UID %u of %s (%llu bytes): NO %s%s%s%s",
		      m->uid, s->f->src, (unsigned long long)m->size, k >= 0 ? "[" : "",
		      rep->refused_code, k >= 0 ? "] " : "", text);
}

/* A tagged NO (not BAD, not a broken connection) is a refusal. */
static bool is_no(const struct imap_response *r)
{
	return r != NULL && r->kind == IMAP_KIND_TAGGED && r->n > 0 &&
	       imap_item_is(&r->items[0], "NO");
}

static int dst_continue(struct stream *s, const struct mig_msg *m)
{
	for (unsigned int guard = 0; guard < 10000; guard++) {
		const struct imap_response *r;

		if (imap_read(s->x->dst, NULL, &r, s->x->err, sizeof(s->x->err)) != MF_OK)
			return MF_ERROR;
		if (r->kind == IMAP_KIND_CONTINUE)
			return MF_OK;
		if (is_no(r))
			return refused(s, r, s->multi ? NULL : m);
		if (r->kind == IMAP_KIND_TAGGED || imap_item_is(&r->items[0], "BYE"))
			return mf_err(s->x->err, sizeof(s->x->err),
				      "destination: APPEND refused: %s", imap_resp_text(r));
	}
	return mf_err(s->x->err, sizeof(s->x->err), "destination: no continuation");
}

/* Which planned message a FETCH response is about: its UID if it came
 * before the body, else its sequence number. */
static struct mig_msg *resp_msg(struct stream *s, const struct imap_response *r)
{
	uint64_t v;

	for (size_t i = 3; i + 1 < r->n; i++)
		if (r->items[i].depth == 1 && imap_item_is(&r->items[i], "UID") &&
		    imap_item_num(&r->items[i + 1], &v))
			return find_uid(s->msgs + s->b0, s->b1 - s->b0, (uint32_t)v);
	if (imap_item_num(&r->items[0], &v))
		for (size_t i = s->b0; i < s->b1; i++)
			if (s->msgs[i].seq == v)
				return &s->msgs[i];
	return NULL;
}

static int s_begin(void *arg, const struct imap_response *r, uint64_t size)
{
	struct stream *s = arg;
	struct mig_ctx *x = s->x;
	struct mig_msg *m;
	char head[4096];
	int n;

	if (r->n < 4 || !imap_item_is(&r->items[r->n - 1], "BODY[]"))
		return 0;
	m = resp_msg(s, r);
	if (m == NULL || m->seq == 0) {
		mf_err(x->err, sizeof(x->err), "source: FETCH of a message not asked for");
		return MF_ERROR;
	}
	m->seq = 0; /* taken: a second body for it is an error */
	if (s->started)
		n = snprintf(head, sizeof(head), " (%s)", m->flags);
	else
		n = snprintf(head, sizeof(head), "%s APPEND %s (%s)", s->tag, s->qbox, m->flags);
	if (n > 0 && (size_t)n < sizeof(head) && m->date[0] != '\0')
		n += snprintf(head + n, sizeof(head) - (size_t)n, " \"%s\"", m->date);
	if (n > 0 && (size_t)n < sizeof(head))
		n += snprintf(head + n, sizeof(head) - (size_t)n, " {%llu%s}\r\n",
			      (unsigned long long)size, s->lplus ? "+" : "");
	if (n <= 0 || (size_t)n >= sizeof(head)) {
		mf_err(x->err, sizeof(x->err), "message %u: flags too long", m->uid);
		return MF_ERROR;
	}
	s->cur_msg = m;
	if (imap_write(x->dst, head, (size_t)n, x->err, sizeof(x->err)) != MF_OK)
		return MF_ERROR;
	s->started = true;
	if (!s->lplus && dst_continue(s, m) != MF_OK)
		return MF_ERROR;
	if (EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1)
		return MF_ERROR;
	memset(&s->cur, 0, sizeof(s->cur));
	s->cur.src_uid = m->uid;
	s->cur.size = size;
	return 1;
}

static int s_data(void *arg, const uint8_t *p, size_t n)
{
	struct stream *s = arg;

	if (EVP_DigestUpdate(s->md, p, n) != 1)
		return MF_ERROR;
	if (imap_write(s->x->dst, p, n, s->x->err, sizeof(s->x->err)) != MF_OK)
		return MF_ERROR;
	s->x->prog.bytes += n;
	if (s->x->o->pace != NULL)
		mig_pace_take(s->x->o->pace, 0, n);
	return MF_OK;
}

/* APPENDUID uidvalidity set: the destination UIDs, in APPEND order. */
static void appenduid(struct stream *s, const struct imap_response *r, size_t first)
{
	int k = imap_resp_code(r, "APPENDUID");
	uint32_t got[1024];
	size_t n = 0;
	const char *p;

	if (k < 0 || (size_t)k + 2 >= r->n || r->items[k + 2].type != IMAP_TOK_ATOM)
		return;
	p = r->items[k + 2].s;
	while (*p != '\0' && n < MF_ARRAY_LEN(got)) {
		char *end;
		unsigned long a = strtoul(p, &end, 10), b = a;

		if (end == p)
			return;
		p = end;
		if (*p == ':') {
			b = strtoul(p + 1, &end, 10);
			if (end == p + 1)
				return;
			p = end;
		}
		for (unsigned long u = a; n < MF_ARRAY_LEN(got); u += a <= b ? 1 : (unsigned long)-1) {
			got[n++] = (uint32_t)u;
			if (u == b)
				break;
		}
		if (*p == ',')
			p++;
		else if (*p != '\0')
			return;
	}
	if (n != s->n_done - first)
		return; /* not what we appended: record nothing rather than wrong */
	for (size_t i = 0; i < n; i++)
		s->done[first + i].dst_uid = got[i];
}

/* The APPEND command ends with its CRLF ... */
static int finish_write(struct stream *s)
{
	return imap_write(s->x->dst, "\r\n", 2, s->x->err, sizeof(s->x->err));
}

/* ... and is answered with the destination UIDs (UIDPLUS). */
static int finish_wait(struct stream *s, size_t first)
{
	const struct imap_response *r = NULL;

	if (imap_wait(s->x->dst, s->tag, NULL, NULL, NULL, &r, s->x->err, sizeof(s->x->err)) !=
	    MF_OK)
		return is_no(r) ? refused(s, r, s->multi ? NULL : s->cur_msg) : MF_ERROR;
	appenduid(s, r, first);
	s->started = false;
	return MF_OK;
}

static int s_end(void *arg)
{
	struct stream *s = arg;
	unsigned int len = 0;
	double now;

	if (EVP_DigestFinal_ex(s->md, s->cur.sha256, &len) != 1)
		return MF_ERROR;
	s->done[s->n_done++] = s->cur;
	s->x->prog.messages++;
	s->x->rep->copied++;
	s->x->rep->bytes += s->cur.size;
	if (s->x->o->pace != NULL)
		mig_pace_take(s->x->o->pace, 1, 0);
	if (!s->multi) {
		if (finish_write(s) != MF_OK || finish_wait(s, s->n_done - 1) != MF_OK)
			return MF_ERROR;
		snprintf(s->tag, sizeof(s->tag), "a%u", ++s->tag_seq);
	}
	now = mig_now();
	if (now - s->last_emit >= 0.2) {
		s->last_emit = now;
		mig_progress_emit(s->x);
	}
	return MF_OK;
}

/* Untagged responses on the source during a batch: EXPUNGE shifts the
 * sequence numbers we may need to identify a body by. */
static int on_src(void *arg, const struct imap_response *r)
{
	struct stream *s = arg;
	uint64_t v;

	if (r->n >= 2 && imap_item_num(&r->items[0], &v) && imap_item_is(&r->items[1], "EXPUNGE"))
		for (size_t i = s->b0; i < s->b1; i++)
			if (s->msgs[i].seq > v)
				s->msgs[i].seq--;
	return MF_OK;
}

static int send_fetch(struct stream *s, size_t b0, size_t b1, char tag_r[16])
{
	uint32_t uids[1024];
	char set[16384];
	size_t used, n = b1 - b0;

	for (size_t i = 0; i < n; i++)
		uids[i] = s->msgs[b0 + i].uid;
	mig_uidset(uids, n, set, sizeof(set), &used);
	if (used != n)
		return mf_err(s->x->err, sizeof(s->x->err), "internal: UID set too long");
	return imap_cmd(s->x->src, tag_r, s->x->err, sizeof(s->x->err),
			"UID FETCH %s (UID BODY.PEEK[])", set);
}

/* The end of the batch starting at b0. */
static size_t batch_end(const struct stream *s, size_t b0)
{
	const struct mig_opts *o = s->x->o;
	size_t max_n = o->batch_max ? o->batch_max : MIG_BATCH_MAX_DEFAULT;
	size_t max_b = o->max_inflight_bytes ? o->max_inflight_bytes : MIG_INFLIGHT_DEFAULT;
	uint64_t bytes = 0;
	size_t e = b0;

	if (max_n > 1024)
		max_n = 1024;
	while (e < s->n_msgs && e - b0 < max_n &&
	       (e == b0 || bytes + s->msgs[e].size <= max_b))
		bytes += s->msgs[e++].size;
	return e;
}

static int copy_batches(struct stream *s, struct mig_folder_state *fs)
{
	struct mig_ctx *x = s->x;
	struct imap_sink sink = { .begin = s_begin, .data = s_data, .end = s_end, .arg = s };
	char tag[16];
	size_t b0 = 0, b1 = batch_end(s, 0);

	/* One FETCH in flight at a time (a server may interleave the untagged
	 * data of pipelined FETCHes, and a body must go into the APPEND of its
	 * own batch), but the next one is sent as soon as this batch's APPEND
	 * is written: the source reads while the destination stores. */
	if (s->n_msgs > 0 && send_fetch(s, b0, b1, tag) != MF_OK)
		return MF_ERROR;
	while (b0 < s->n_msgs) {
		size_t next = b1 < s->n_msgs ? batch_end(s, b1) : b1;

		fs->dirty = true;
		if (mig_state_folder_put(x->st, s->f->src, fs, x->err, sizeof(x->err)) != MF_OK)
			return MF_ERROR;
		s->b0 = b0;
		s->b1 = b1;
		s->started = false;
		s->n_done = 0;
		snprintf(s->tag, sizeof(s->tag), "a%u", ++s->tag_seq);
		if (imap_wait(x->src, tag, &sink, on_src, s, NULL, x->err, sizeof(x->err)) != MF_OK)
			return MF_ERROR;
		if (s->multi && s->started && finish_write(s) != MF_OK)
			return MF_ERROR;
		if (b1 < s->n_msgs && send_fetch(s, b1, next, tag) != MF_OK)
			return MF_ERROR;
		if (s->multi && s->started && finish_wait(s, 0) != MF_OK)
			return MF_ERROR;
		if (mig_state_begin(x->st, x->err, sizeof(x->err)) != MF_OK)
			return MF_ERROR;
		for (size_t i = 0; i < s->n_done; i++)
			if (mig_state_map_add(x->st, s->f->src, &s->done[i], x->err,
					      sizeof(x->err)) != MF_OK)
				goto rollback;
		/* Messages of the batch that did not come (expunged meanwhile)
		 * are gone: the checkpoint moves past them too. */
		fs->last_uid = s->msgs[b1 - 1].uid;
		fs->dirty = false;
		if (mig_state_folder_put(x->st, s->f->src, fs, x->err, sizeof(x->err)) != MF_OK ||
		    mig_state_commit(x->st, x->err, sizeof(x->err)) != MF_OK)
			goto rollback;
		mig_progress_emit(x);
		/* Checkpoint committed: a stop asked for now loses nothing. The
		 * next FETCH may be on its way; closing the connection ends it. */
		if (mig_check_cancel(x) != MF_OK)
			return MF_ERROR;
		if (x->o->proceed != NULL && !x->o->proceed(x->o->proceed_arg))
			return mf_err(x->err, sizeof(x->err), "stopped after a checkpoint");
		b0 = b1;
		b1 = next;
	}
	return MF_OK;
rollback:
	mig_state_rollback(x->st);
	return MF_ERROR;
}

int mig_copy_folder(struct mig_ctx *x, const struct mig_folder *f)
{
	struct mig_folder_state fs;
	struct mig_meta_run plan = { 0 };
	struct mig_map_entry *map = NULL;
	struct stream s = { .x = x, .f = f };
	uint32_t suv, duv, sexists, dexists;
	size_t n_map = 0;
	bool need_reconcile;
	int rc = MF_ERROR;

	if (mig_state_folder_get(x->st, f->src, &fs, x->err, sizeof(x->err)) != MF_OK ||
	    mig_select(x->src, f->src, true, &suv, &sexists, x->err, sizeof(x->err)) != MF_OK ||
	    mig_select(x->dst, f->dst, false, &duv, &dexists, x->err, sizeof(x->err)) != MF_OK)
		return MF_ERROR;
	need_reconcile = fs.known && (fs.dirty || fs.uidvalidity != suv || fs.dst_uidvalidity != duv);
	if (fs.known && (fs.uidvalidity != suv || fs.dst_uidvalidity != duv)) {
		/* The UIDs the map speaks of mean nothing any more. */
		if (mig_state_map_drop(x->st, f->src, x->err, sizeof(x->err)) != MF_OK)
			return MF_ERROR;
		fs.last_uid = 0;
	}
	/* The delta: what the user expunged on the source since it was
	 * copied goes from the destination too (before the copy, so the
	 * counts the verification compares are the source's). */
	if (fs.known && x->o->sync_deletes && mig_imap_expunge_gone(x, f, dexists) != MF_OK)
		return MF_ERROR;
	if (!fs.known && dexists > 0)
		need_reconcile = true; /* a destination filled by someone else, or a lost state */
	fs.known = true;
	fs.uidvalidity = suv;
	fs.dst_uidvalidity = duv;
	if (sexists > 0 && mig_meta_fetch(x->src, fs.last_uid, &plan, x->err, sizeof(x->err)) != MF_OK)
		return MF_ERROR;
	if (mig_state_map_load(x->st, f->src, &map, &n_map, x->err, sizeof(x->err)) != MF_OK)
		goto out;
	/* Already in the map (a reconciled message above last_uid): skip. */
	{
		size_t kept = 0;

		for (size_t i = 0; i < plan.n; i++) {
			struct mig_map_entry key = { .src_uid = plan.v[i].uid };

			if (mig_bsearch(&key, map, n_map, sizeof(*map), cmp_map) != NULL) {
				free(plan.v[i].flags);
				continue;
			}
			plan.v[kept++] = plan.v[i];
		}
		plan.n = kept;
	}
	if (need_reconcile && plan.n > 0 && dexists > 0 &&
	    reconcile(x, f, &plan, map, n_map) != MF_OK)
		goto out;
	/* The estimate made before the copy gives way to the plan. */
	x->prog.planned = x->prog.planned - f->estimate + plan.n;
	s.msgs = plan.v;
	s.n_msgs = plan.n;
	s.multi = imap_has(x->dst, IMAP_CAP_MULTIAPPEND) && !x->o->plain_append;
	s.lplus = imap_has(x->dst, IMAP_CAP_LITERAL_PLUS) && !x->o->plain_append;
	s.md = EVP_MD_CTX_new();
	s.done = calloc(1024, sizeof(*s.done));
	if (s.md == NULL || s.done == NULL) {
		mf_err(x->err, sizeof(x->err), "out of memory");
		goto out;
	}
	if (mig_mbox(x->dst, f->dst, s.qbox, sizeof(s.qbox), x->err, sizeof(x->err)) != MF_OK)
		goto out;
	if (copy_batches(&s, &fs) != MF_OK)
		goto out;
	/* Nothing to copy still leaves a checkpoint (UIDVALIDITY, clean). */
	fs.dirty = false;
	if (mig_state_folder_put(x->st, f->src, &fs, x->err, sizeof(x->err)) != MF_OK)
		goto out;
	rc = MF_OK;
out:
	EVP_MD_CTX_free(s.md);
	free(s.done);
	free(map);
	mig_msgs_free(plan.v, plan.n);
	return rc;
}
