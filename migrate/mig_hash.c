/* mig_hash.c — SHA-256 of message bodies streamed from a FETCH, and UID
 * sets: what reconciliation and verification compare. */
#include "mf.h"
#include "mig_ctx.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hash_run {
	struct mig_hashed_set *hs;
	EVP_MD_CTX *md;
	bool pending;       /* a body was hashed, its FETCH not ended yet */
	uint64_t size;
	uint8_t sha[32];
	bool oom;
};

static int h_begin(void *arg, const struct imap_response *r, uint64_t size)
{
	struct hash_run *h = arg;

	if (r->n == 0 || !imap_item_is(&r->items[r->n - 1], "BODY[]"))
		return 0;
	if (EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1)
		return MF_ERROR;
	h->size = size;
	return 1;
}

static int h_data(void *arg, const uint8_t *p, size_t n)
{
	struct hash_run *h = arg;

	return EVP_DigestUpdate(h->md, p, n) == 1 ? MF_OK : MF_ERROR;
}

static int h_end(void *arg)
{
	struct hash_run *h = arg;
	unsigned int len = 0;

	if (EVP_DigestFinal_ex(h->md, h->sha, &len) != 1 || len != 32)
		return MF_ERROR;
	h->pending = true;
	return MF_OK;
}

static int h_fetch(void *arg, const struct imap_response *r)
{
	struct hash_run *h = arg;
	struct mig_msg m;
	struct mig_hashed *e;
	int rc = mig_fetch_parse(r, &m);

	if (rc == 0)
		return MF_OK;
	if (rc < 0)
		return MF_ERROR;
	if (!h->pending || m.uid == 0) {
		/* a FETCH of flags only (another session changed them) */
		free(m.flags);
		h->pending = false;
		return MF_OK;
	}
	h->pending = false;
	if (h->hs->n == h->hs->cap) {
		size_t cap = h->hs->cap ? h->hs->cap * 2 : 256;
		struct mig_hashed *v = realloc(h->hs->v, cap * sizeof(*v));

		if (v == NULL) {
			free(m.flags);
			h->oom = true;
			return MF_ERROR;
		}
		h->hs->v = v;
		h->hs->cap = cap;
	}
	e = &h->hs->v[h->hs->n++];
	memset(e, 0, sizeof(*e));
	e->uid = m.uid;
	e->hashed = true;
	e->size = h->size;
	memcpy(e->sha256, h->sha, 32);
	e->flags = m.flags;
	memcpy(e->date, m.date, sizeof(e->date));
	return MF_OK;
}

int mig_hash_fetch(struct imap_conn *c, const char *set, struct mig_hashed_set *hs,
		   char *err, size_t errlen)
{
	struct hash_run h = { .hs = hs };
	struct imap_sink sink = { .begin = h_begin, .data = h_data, .end = h_end, .arg = &h };
	char tag[16];
	int rc;

	h.md = EVP_MD_CTX_new();
	if (h.md == NULL)
		return mf_err(err, errlen, "out of memory");
	rc = imap_cmd(c, tag, err, errlen, "UID FETCH %s (UID FLAGS INTERNALDATE BODY.PEEK[])",
		      set);
	if (rc == MF_OK)
		rc = imap_wait(c, tag, &sink, h_fetch, &h, NULL, err, errlen);
	if (h.oom)
		rc = mf_err(err, errlen, "out of memory");
	EVP_MD_CTX_free(h.md);
	return rc;
}

void mig_hashed_free(struct mig_hashed_set *hs)
{
	for (size_t i = 0; i < hs->n; i++)
		free(hs->v[i].flags);
	free(hs->v);
	memset(hs, 0, sizeof(*hs));
}

void mig_uidset(const uint32_t *uids, size_t n, char *out, size_t outlen, size_t *used_r)
{
	size_t i = 0, o = 0;

	out[0] = '\0';
	while (i < n) {
		size_t j = i;
		char piece[32];
		int len;

		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		if (j == i)
			len = snprintf(piece, sizeof(piece), "%s%u", o ? "," : "", uids[i]);
		else
			len = snprintf(piece, sizeof(piece), "%s%u:%u", o ? "," : "", uids[i], uids[j]);
		if (o + (size_t)len + 1 > outlen)
			break;
		memcpy(out + o, piece, (size_t)len + 1);
		o += (size_t)len;
		i = j + 1;
	}
	*used_r = i;
}

int mig_hash_fetch_uids(struct imap_conn *c, const uint32_t *uids, size_t n,
			struct mig_hashed_set *hs, char *err, size_t errlen)
{
	char set[8192];

	while (n > 0) {
		size_t used;

		mig_uidset(uids, n, set, sizeof(set), &used);
		if (used == 0)
			return mf_err(err, errlen, "internal: empty UID set");
		if (mig_hash_fetch(c, set, hs, err, errlen) != MF_OK)
			return MF_ERROR;
		uids += used;
		n -= used;
	}
	return MF_OK;
}
