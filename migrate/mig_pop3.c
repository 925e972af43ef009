/* mig_pop3.c — a POP3-only source (contract in mig.h, mig_run()): its one
 * mailbox copied into the destination's INBOX, each message byte for byte,
 * its UIDL recorded with the destination UID, size and SHA-256.
 *
 * POP3 gives neither flags nor internal dates: the destination gets the
 * bytes with no flags and its own arrival time. A message is RETRieved
 * into an unlinked temporary file (memory stays bounded; the APPEND needs
 * the exact size up front, which LIST may get wrong on some servers) while
 * it is hashed, then APPENDed from the file. Its state row is written as
 * pending before the APPEND and completed after: a crash in between is
 * resolved on the next run by content (a pending message the destination
 * holds more copies of than the state accounts for was stored), and a
 * destination holding mail the state does not account for (a lost state
 * file) is matched by content before anything is appended. */
#include "mf.h"
#include "mig_ctx.h"
#include "mig_uidl.h"
#include "pop3_client.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct spool {
	FILE *f;
	EVP_MD_CTX *md;
	uint64_t size;
	struct mig_pace *pace;
};

static int spool_data(void *arg, const uint8_t *p, size_t n)
{
	struct spool *sp = arg;

	if (fwrite(p, 1, n, sp->f) != n || EVP_DigestUpdate(sp->md, p, n) != 1)
		return MF_ERROR;
	sp->size += n;
	if (sp->pace != NULL)
		mig_pace_take(sp->pace, 0, n);
	return MF_OK;
}

static int cmp_uidl(const void *a, const void *b)
{
	return strcmp(((const struct mig_uidl_entry *)a)->uidl,
		      ((const struct mig_uidl_entry *)b)->uidl);
}

static bool same_bytes(const struct mig_hashed *h, uint64_t size, const uint8_t sha[32])
{
	return h->size == size && memcmp(h->sha256, sha, 32) == 0;
}

static bool dst_take(struct mig_hashed_set *hd, uint64_t size, const uint8_t sha[32])
{
	for (size_t i = 0; i < hd->n; i++)
		if (!hd->v[i].used && same_bytes(&hd->v[i], size, sha)) {
			hd->v[i].used = true;
			return true;
		}
	return false;
}

/* Every destination INBOX message hashed (nothing selected: EXISTS 0). */
static int hash_dst(struct mig_ctx *x, uint32_t exists, struct mig_hashed_set *hd)
{
	if (exists == 0)
		return MF_OK;
	return mig_hash_fetch(x->dst, "1:*", hd, x->err, sizeof(x->err));
}

/* What the destination INBOX holds that the state does not account for:
 * *pool_r gets those messages' hashes, to be matched by content before
 * anything is appended (a lost state file, mail put there by someone
 * else, an APPEND a crash left pending). Pending rows are settled here:
 * kept when the destination holds their bytes beyond what the completed
 * rows account for, else forgotten (copied again). Nothing is hashed when
 * the counts show nothing unaccounted for. */
static int unaccounted(struct mig_ctx *x, struct mig_uidl_entry *v, size_t n, uint32_t exists,
		       struct mig_hashed_set *pool_r)
{
	size_t done = 0;
	bool pending = false;

	for (size_t i = 0; i < n; i++) {
		if (v[i].pending)
			pending = true;
		else
			done++;
	}
	if (!pending && exists <= done)
		return MF_OK;
	if (hash_dst(x, exists, pool_r) != MF_OK)
		return MF_ERROR;
	for (size_t i = 0; i < n; i++)
		if (!v[i].pending)
			dst_take(pool_r, v[i].size, v[i].sha256);
	for (size_t i = 0; i < n; i++) {
		if (!v[i].pending)
			continue;
		if (dst_take(pool_r, v[i].size, v[i].sha256)) {
			v[i].pending = false;
			x->rep->reconciled++;
			if (mig_state_uidl_put(x->st, &v[i], x->err, sizeof(x->err)) != MF_OK)
				return MF_ERROR;
		} else {
			/* Stays pending in v: copied again. (Its UIDL stays too:
			 * v is searched by it.) */
			if (mig_state_uidl_del(x->st, v[i].uidl, x->err, sizeof(x->err)) != MF_OK)
				return MF_ERROR;
		}
	}
	return MF_OK;
}

/* The unaccounted destination message with these bytes, taken: its UID,
 * or 0 when there is none. */
static uint32_t pool_take(struct mig_hashed_set *pool, uint64_t size, const uint8_t sha[32])
{
	for (size_t i = 0; i < pool->n; i++)
		if (!pool->v[i].used && same_bytes(&pool->v[i], size, sha)) {
			pool->v[i].used = true;
			return pool->v[i].uid;
		}
	return 0;
}

/* The destination's answer to our APPEND: a NO is a refusal of this
 * message, named. */
static int append_refused(struct mig_ctx *x, const struct imap_response *r,
			  const struct pop3_msg *m, uint64_t size)
{
	int k = imap_resp_code(r, NULL);

	x->rep->dst_refused = x->rep->refused_known = true;
	x->rep->refused_uid = m->n;
	x->rep->refused_size = size;
	snprintf(x->rep->refused_folder, sizeof(x->rep->refused_folder), "INBOX (POP3 UIDL %s)",
		 m->uidl);
	snprintf(x->rep->refused_code, sizeof(x->rep->refused_code), "%s",
		 k >= 0 ? r->items[k].s : "");
	return mf_err(x->err, sizeof(x->err),
		      "destination refused POP3 message %u (UIDL %s, %llu bytes): NO %s%s%s%s",
		      m->n, m->uidl, (unsigned long long)size, k >= 0 ? "[" : "",
		      x->rep->refused_code, k >= 0 ? "] " : "", imap_resp_text(r));
}

static bool is_no(const struct imap_response *r)
{
	return r != NULL && r->kind == IMAP_KIND_TAGGED && r->n > 0 &&
	       imap_item_is(&r->items[0], "NO");
}

static int append_file(struct mig_ctx *x, const struct pop3_msg *m, struct spool *sp,
		       uint32_t *dst_uid_r)
{
	bool lplus = imap_has(x->dst, IMAP_CAP_LITERAL_PLUS) && !x->o->plain_append;
	const struct imap_response *r = NULL;
	uint8_t buf[65536];
	uint64_t left = sp->size, v;
	char tag[16];
	int k;

	*dst_uid_r = 0;
	if (imap_cmd(x->dst, tag, x->err, sizeof(x->err), "APPEND INBOX {%llu%s}",
		     (unsigned long long)sp->size, lplus ? "+" : "") != MF_OK)
		return MF_ERROR;
	while (!lplus) {
		if (imap_read(x->dst, NULL, &r, x->err, sizeof(x->err)) != MF_OK)
			return MF_ERROR;
		if (r->kind == IMAP_KIND_CONTINUE)
			break;
		if (is_no(r))
			return append_refused(x, r, m, sp->size);
		if (r->kind == IMAP_KIND_TAGGED)
			return mf_err(x->err, sizeof(x->err), "destination: APPEND refused: %s",
				      imap_resp_text(r));
	}
	rewind(sp->f);
	while (left > 0) {
		size_t n = fread(buf, 1, left < sizeof(buf) ? (size_t)left : sizeof(buf), sp->f);

		if (n == 0)
			return mf_err(x->err, sizeof(x->err), "spool file: short read");
		if (imap_write(x->dst, buf, n, x->err, sizeof(x->err)) != MF_OK)
			return MF_ERROR;
		left -= n;
	}
	if (imap_write(x->dst, "\r\n", 2, x->err, sizeof(x->err)) != MF_OK)
		return MF_ERROR;
	r = NULL;
	if (imap_wait(x->dst, tag, NULL, NULL, NULL, &r, x->err, sizeof(x->err)) != MF_OK)
		return is_no(r) ? append_refused(x, r, m, sp->size) : MF_ERROR;
	k = imap_resp_code(r, "APPENDUID");
	if (k >= 0 && (size_t)k + 2 < r->n && imap_item_num(&r->items[k + 2], &v) &&
	    v <= UINT32_MAX)
		*dst_uid_r = (uint32_t)v;
	return MF_OK;
}

static int copy_one(struct mig_ctx *x, struct pop3_conn *src, const struct pop3_msg *m,
		    struct mig_hashed_set *pool)
{
	struct spool sp = { .pace = x->o->pace };
	struct mig_uidl_entry e = { 0 };
	unsigned int len = 0;
	int rc = MF_ERROR;

	sp.f = tmpfile();
	sp.md = EVP_MD_CTX_new();
	if (sp.f == NULL || sp.md == NULL || EVP_DigestInit_ex(sp.md, EVP_sha256(), NULL) != 1) {
		mf_err(x->err, sizeof(x->err), "spool file: out of resources");
		goto out;
	}
	if (pop3_retr(src, m->n, spool_data, &sp, x->err, sizeof(x->err)) != MF_OK) {
		if (x->err[0] == '\0')
			mf_err(x->err, sizeof(x->err), "spool file: write failed");
		goto out;
	}
	if (fflush(sp.f) != 0 || EVP_DigestFinal_ex(sp.md, e.sha256, &len) != 1) {
		mf_err(x->err, sizeof(x->err), "spool file: write failed");
		goto out;
	}
	snprintf(e.uidl, sizeof(e.uidl), "%s", m->uidl);
	e.size = sp.size;
	e.dst_uid = pool_take(pool, e.size, e.sha256);
	if (e.dst_uid != 0) {
		/* Already there: recorded, not appended twice. */
		x->rep->reconciled++;
		rc = mig_state_uidl_put(x->st, &e, x->err, sizeof(x->err));
		goto out;
	}
	e.pending = true;
	if (mig_state_uidl_put(x->st, &e, x->err, sizeof(x->err)) != MF_OK ||
	    append_file(x, m, &sp, &e.dst_uid) != MF_OK)
		goto out;
	e.pending = false;
	if (mig_state_uidl_put(x->st, &e, x->err, sizeof(x->err)) != MF_OK)
		goto out;
	if (x->o->pace != NULL)
		mig_pace_take(x->o->pace, 1, 0);
	x->rep->copied++;
	x->rep->bytes += sp.size;
	x->prog.messages++;
	x->prog.bytes += sp.size;
	rc = MF_OK;
out:
	EVP_MD_CTX_free(sp.md);
	if (sp.f != NULL)
		fclose(sp.f);
	return rc;
}

/* Every source message has its row, and the destination holds a message
 * with each row's bytes (distinct ones for equal rows). */
static int verify(struct mig_ctx *x, const struct pop3_msg *msgs, size_t n)
{
	struct mig_uidl_entry *v = NULL;
	struct mig_hashed_set hd = { 0 };
	uint32_t uv, exists;
	size_t nv = 0;
	int rc = MF_ERROR;

	if (mig_select(x->dst, "INBOX", true, &uv, &exists, x->err, sizeof(x->err)) != MF_OK ||
	    mig_state_uidl_load(x->st, &v, &nv, x->err, sizeof(x->err)) != MF_OK ||
	    hash_dst(x, exists, &hd) != MF_OK)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct mig_uidl_entry key, *e;

		snprintf(key.uidl, sizeof(key.uidl), "%s", msgs[i].uidl);
		e = mig_bsearch(&key, v, nv, sizeof(*v), cmp_uidl);
		if (e == NULL || e->pending) {
			mf_err(x->err, sizeof(x->err), "verify: POP3 message %u (UIDL %s) not copied",
			       msgs[i].n, msgs[i].uidl);
			goto out;
		}
		if (!dst_take(&hd, e->size, e->sha256)) {
			mf_err(x->err, sizeof(x->err), "verify: POP3 message %u (UIDL %s, %llu "
			       "bytes) missing or altered on the destination", msgs[i].n,
			       msgs[i].uidl, (unsigned long long)e->size);
			goto out;
		}
		x->rep->verified++;
	}
	x->rep->verify_ok = true;
	rc = MF_OK;
out:
	mig_hashed_free(&hd);
	free(v);
	return rc;
}

/* Indices ordered by the UIDs they index in arg. */
static int cmp_ord_uid(const void *a, const void *b, void *arg)
{
	const uint32_t *uid = arg;
	uint32_t x = uid[*(const size_t *)a], y = uid[*(const size_t *)b];

	return x < y ? -1 : x > y;
}

/* POP3 UIDL continuity (mig_uidl.h), after verification: the copied rows
 * the source still lists are the source side (their own UIDLs); sorted by
 * destination UID (when every one is known), the destination's order. */
static int uidl_map(struct mig_ctx *x, const struct pop3_msg *msgs, size_t n)
{
	struct mig_uidl_entry *v = NULL;
	struct uidl_copied *c = NULL;
	uint32_t *dst_uid = NULL;
	size_t nv = 0, m = 0, *ord = NULL;
	bool dst_known = true;
	int rc = MF_ERROR;

	if (x->o->uidl_store == NULL)
		return MF_OK;
	if (mig_state_uidl_load(x->st, &v, &nv, x->err, sizeof(x->err)) != MF_OK)
		return MF_ERROR;
	c = calloc(n + 1, sizeof(*c));
	ord = calloc(n + 1, sizeof(*ord));
	dst_uid = calloc(n + 1, sizeof(*dst_uid));
	if (c == NULL || ord == NULL || dst_uid == NULL) {
		mf_err(x->err, sizeof(x->err), "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct mig_uidl_entry key, *e;

		snprintf(key.uidl, sizeof(key.uidl), "%s", msgs[i].uidl);
		e = mig_bsearch(&key, v, nv, sizeof(*v), cmp_uidl);
		if (e == NULL || e->pending)
			continue;
		c[m].size = e->size;
		memcpy(c[m].sha256, e->sha256, 32);
		c[m].src_uidl = e->uidl;
		dst_uid[m] = e->dst_uid;
		dst_known = dst_known && e->dst_uid != 0;
		ord[m] = m;
		m++;
	}
	if (m > 1)
		qsort_r(ord, m, sizeof(*ord), cmp_ord_uid, dst_uid);
	rc = mig_uidl_map(x, c, NULL, dst_known ? ord : NULL, m);
out:
	free(dst_uid);
	free(ord);
	free(c);
	free(v);
	return rc;
}

static int run(struct mig_ctx *x, struct pop3_conn **src_r)
{
	const struct mig_opts *o = x->o;
	struct imap_client_opts co = {
		.name = "source", .ca_file = o->ca_file, .insecure = o->insecure,
		.verify_name = o->src.tls_name, .timeout_ms = o->timeout_ms,
		.busy_r = &x->rep->source_busy,
	};
	struct mig_uidl_entry *v = NULL;
	struct mig_hashed_set pool = { 0 };
	struct pop3_msg *msgs = NULL;
	size_t nv = 0, n = 0;
	uint32_t uv, exists;
	char pair[1200];
	int rc = MF_ERROR;

	if (pop3_connect(&o->src.url, &co, src_r, x->err, sizeof(x->err)) != MF_OK ||
	    pop3_login(*src_r, o->src.user, o->src.master, o->src.pass, o->src.pass_len, x->err,
		       sizeof(x->err)) != MF_OK ||
	    mig_imap_open(x, &o->dst, "destination", &x->dst) != MF_OK)
		return MF_ERROR;
	snprintf(pair, sizeof(pair), "pop3 %s:%s/%s -> %s:%s/%s", o->src.url.host,
		 o->src.url.port, o->pair_account ? o->pair_account : o->src.user,
		 o->dst.url.host, o->dst.url.port, o->pair_account ? o->pair_account : o->dst.user);
	if (mig_state_open_opts(o, pair, &x->st, x->err, sizeof(x->err)) != MF_OK ||
	    mig_select(x->dst, "INBOX", false, &uv, &exists, x->err, sizeof(x->err)) != MF_OK ||
	    mig_state_uidl_load(x->st, &v, &nv, x->err, sizeof(x->err)) != MF_OK ||
	    unaccounted(x, v, nv, exists, &pool) != MF_OK ||
	    pop3_uidl(*src_r, &msgs, &n, x->err, sizeof(x->err)) != MF_OK)
		goto out;
	x->prog.phase = "copy";
	x->prog.folder = "INBOX";
	x->prog.folder_index = x->prog.folder_count = 1;
	for (size_t i = 0; i < n; i++) {
		struct mig_uidl_entry key, *e;

		snprintf(key.uidl, sizeof(key.uidl), "%s", msgs[i].uidl);
		e = mig_bsearch(&key, v, nv, sizeof(*v), cmp_uidl);
		if (e == NULL || e->pending)
			x->prog.planned++;
	}
	for (size_t i = 0; i < n; i++) {
		struct mig_uidl_entry key, *e;

		snprintf(key.uidl, sizeof(key.uidl), "%s", msgs[i].uidl);
		e = mig_bsearch(&key, v, nv, sizeof(*v), cmp_uidl);
		if (e != NULL && !e->pending)
			continue; /* copied before */
		if (copy_one(x, *src_r, &msgs[i], &pool) != MF_OK)
			goto out;
		mig_progress_emit(x);
	}
	if (o->sync_deletes && mig_pop3_expunge_gone(x, msgs, n, &x->rep->expunged) != MF_OK)
		goto out;
	if (o->verify) {
		x->prog.phase = "verify";
		mig_progress_emit(x);
		if (verify(x, msgs, n) != MF_OK || uidl_map(x, msgs, n) != MF_OK)
			goto out;
	}
	x->rep->folders = 1;
	rc = MF_OK;
out:
	mig_hashed_free(&pool);
	free(msgs);
	free(v);
	return rc;
}

int mig_pop3_run(const struct mig_opts *o, struct mig_report *rep, char *err, size_t errlen)
{
	struct mig_ctx x = { .o = o, .rep = rep };
	struct pop3_conn *src = NULL;
	int rc;

	memset(rep, 0, sizeof(*rep));
	x.t0 = mig_now();
	rc = run(&x, &src);
	if (rc == MF_OK) {
		x.prog.phase = "done";
		mig_progress_emit(&x);
	} else {
		mf_err(err, errlen, "%s", x.err);
	}
	pop3_close(src);
	imap_close(x.dst);
	mig_state_close(x.st);
	return rc;
}
