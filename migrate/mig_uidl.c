/* mig_uidl.c — POP3 UIDL continuity, the network half (mig_uidl.h): log
 * in to each side by POP3, list it (UIDL and LIST), tie its messages to the
 * copied ones by position or, failing that, by their bytes (RETR, hashed as
 * they stream by, never held), and store the pairs. Where messages are
 * RETRieved, the \Seen marks a POP3 server sets for it are taken back
 * over IMAP: reading for a map must not mark the user's mail read.
 *
 * Run at the end of a verified copy (the daemon's delta at CUTOVER): the
 * user's sessions are closed and new ones refused, so neither maildrop
 * changes between the copy's last look and these listings. */
#include "mf.h"
#include "mig_ctx.h"
#include "mig_uidl.h"
#include "pop3_client.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A POP3 login a server refuses for now, not for good: the copy fails and
 * is retried, rather than going on with no map. */
static bool busy_refusal(const char *err)
{
	return strstr(err, "[IN-USE]") != NULL || strstr(err, "[SYS/TEMP]") != NULL;
}

/* Logs in to side's POP3 service u. MF_OK; LEDGER_ABSENT (not reached,
 * or the login refused: no POP3 service for this account, why in note);
 * MF_ERROR (x->err: a refusal for now). */
static int open_side(struct mig_ctx *x, const struct mig_side *sd, const struct imap_url *u,
		     const char *name, struct pop3_conn **c_r, char *note, size_t notelen)
{
	const struct mig_opts *o = x->o;
	struct imap_client_opts co = {
		.name = name, .ca_file = o->ca_file, .insecure = o->insecure,
		.verify_name = sd->tls_name, .timeout_ms = o->timeout_ms,
	};
	char err[IMAP_ERR_MAX];

	*c_r = NULL;
	if (!u->pop3 || u->port[0] == '\0') {
		snprintf(note, notelen, "%s: no POP3 service configured", name);
		return LEDGER_ABSENT;
	}
	err[0] = '\0';
	if (pop3_connect(u, &co, c_r, err, sizeof(err)) == MF_OK &&
	    pop3_login(*c_r, sd->user, sd->master, sd->pass, sd->pass_len, err, sizeof(err)) ==
		    MF_OK)
		return MF_OK;
	pop3_close(*c_r);
	*c_r = NULL;
	if (busy_refusal(err))
		return mf_err(x->err, sizeof(x->err), "%s", err);
	snprintf(note, notelen, "no POP3 service: %.200s", err);
	return LEDGER_ABSENT;
}

static int cmp_size_n(const void *a, const void *b)
{
	uint32_t x = ((const struct pop3_size *)a)->n, y = ((const struct pop3_size *)b)->n;

	return x < y ? -1 : x > y;
}

/* UIDL and LIST joined by message number, in UIDL's order. A message one
 * of them lists and the other does not is a server fault: an error. */
static int listing(struct mig_ctx *x, struct pop3_conn *c, struct uidl_msg **v_r, size_t *n_r)
{
	struct pop3_msg *u = NULL;
	struct pop3_size *s = NULL;
	struct uidl_msg *v = NULL;
	size_t nu = 0, ns = 0;
	int rc = MF_ERROR;

	*v_r = NULL;
	*n_r = 0;
	if (pop3_uidl(c, &u, &nu, x->err, sizeof(x->err)) != MF_OK ||
	    pop3_list(c, &s, &ns, x->err, sizeof(x->err)) != MF_OK)
		goto out;
	if (nu != ns) {
		mf_err(x->err, sizeof(x->err), "POP3: UIDL lists %zu messages, LIST %zu", nu, ns);
		goto out;
	}
	if (nu == 0) {
		rc = MF_OK;
		goto out;
	}
	v = calloc(nu, sizeof(*v));
	if (v == NULL) {
		mf_err(x->err, sizeof(x->err), "out of memory");
		goto out;
	}
	mig_qsort(s, ns, sizeof(*s), cmp_size_n);
	for (size_t i = 0; i < nu; i++) {
		struct pop3_size key = { .n = u[i].n }, *f;

		f = mig_bsearch(&key, s, ns, sizeof(*s), cmp_size_n);
		if (f == NULL) {
			mf_err(x->err, sizeof(x->err), "POP3: message %u in UIDL, not in LIST",
			       u[i].n);
			goto out;
		}
		v[i].n = u[i].n;
		memcpy(v[i].uidl, u[i].uidl, sizeof(v[i].uidl));
		v[i].size = f->size;
	}
	*v_r = v;
	*n_r = nu;
	v = NULL;
	rc = MF_OK;
out:
	free(v);
	free(s);
	free(u);
	return rc;
}

/* A RETR's bytes hashed twice over: whole, and less their last two bytes
 * (held back until the next chunk or the end shows they were the last). */
struct rhash {
	EVP_MD_CTX *md;
	uint8_t tail[2];
	size_t ntail;
	uint64_t size;
};

static int rhash_data(void *arg, const uint8_t *p, size_t n)
{
	struct rhash *r = arg;
	size_t total = r->ntail + n, feed = total > 2 ? total - 2 : 0;
	size_t ft = feed < r->ntail ? feed : r->ntail, fp = feed - ft, k = 0;
	uint8_t nt[2];

	if ((ft > 0 && EVP_DigestUpdate(r->md, r->tail, ft) != 1) ||
	    (fp > 0 && EVP_DigestUpdate(r->md, p, fp) != 1))
		return MF_ERROR;
	for (size_t i = ft; i < r->ntail; i++)
		nt[k++] = r->tail[i];
	for (size_t i = fp; i < n; i++)
		nt[k++] = p[i];
	memcpy(r->tail, nt, k);
	r->ntail = k;
	r->size += n;
	return MF_OK;
}

static int hash_one(struct mig_ctx *x, struct pop3_conn *c, struct uidl_msg *m)
{
	struct rhash r = { .md = EVP_MD_CTX_new() };
	EVP_MD_CTX *copy = EVP_MD_CTX_new();
	unsigned int len = 0;
	int rc = MF_ERROR;

	if (r.md == NULL || copy == NULL || EVP_DigestInit_ex(r.md, EVP_sha256(), NULL) != 1) {
		mf_err(x->err, sizeof(x->err), "hash: out of resources");
		goto out;
	}
	if (pop3_retr(c, m->n, rhash_data, &r, x->err, sizeof(x->err)) != MF_OK) {
		if (x->err[0] == '\0')
			mf_err(x->err, sizeof(x->err), "hash: failed");
		goto out;
	}
	m->trim = r.ntail == 2 && r.tail[0] == '\r' && r.tail[1] == '\n';
	if (EVP_MD_CTX_copy_ex(copy, r.md) != 1 ||
	    EVP_DigestFinal_ex(copy, m->sha256_trim, &len) != 1 ||
	    (r.ntail > 0 && EVP_DigestUpdate(r.md, r.tail, r.ntail) != 1) ||
	    EVP_DigestFinal_ex(r.md, m->sha256, &len) != 1) {
		mf_err(x->err, sizeof(x->err), "hash: failed");
		goto out;
	}
	m->rsize = r.size;
	m->hashed = true;
	rc = MF_OK;
out:
	EVP_MD_CTX_free(copy);
	EVP_MD_CTX_free(r.md);
	return rc;
}

/* POP3's RETR marks a message \Seen on many servers (Dovecot unless
 * pop3_no_flag_updates): the INBOX messages unseen before our RETRs are
 * made unseen again after the POP3 session, over the copy's IMAP
 * connection to that side (at CUTOVER nobody else changes flags there). */
struct unseen {
	struct imap_conn *imap; /* NULL: no IMAP connection to that side */
	bool noted;
	uint32_t *v;            /* sorted */
	size_t n;
};

static bool has_seen(const char *flags)
{
	const char *p = flags;

	while (p != NULL && *p != '\0') {
		size_t len = strcspn(p, " ");

		if (len == 5 && strncasecmp(p, "\\Seen", 5) == 0)
			return true;
		p += len;
		p += strspn(p, " ");
	}
	return false;
}

static int unseen_note(struct mig_ctx *x, struct unseen *u)
{
	struct mig_meta_run m;
	uint32_t uv, exists;

	u->noted = true;
	if (mig_select(u->imap, "INBOX", false, &uv, &exists, x->err, sizeof(x->err)) != MF_OK)
		return MF_ERROR;
	if (exists == 0)
		return MF_OK;
	if (mig_meta_fetch(u->imap, 0, &m, x->err, sizeof(x->err)) != MF_OK)
		return MF_ERROR;
	u->v = calloc(m.n + 1, sizeof(*u->v));
	if (u->v == NULL) {
		mig_msgs_free(m.v, m.n);
		return mf_err(x->err, sizeof(x->err), "out of memory");
	}
	for (size_t i = 0; i < m.n; i++)
		if (!has_seen(m.v[i].flags))
			u->v[u->n++] = m.v[i].uid;
	mig_msgs_free(m.v, m.n);
	return MF_OK;
}

static int unseen_restore(struct mig_ctx *x, const struct unseen *u)
{
	char set[4000];
	size_t at = 0, used;

	while (at < u->n) {
		mig_uidset(u->v + at, u->n - at, set, sizeof(set), &used);
		if (used == 0)
			return mf_err(x->err, sizeof(x->err), "UID set: no room");
		if (imap_simple(u->imap, NULL, NULL, x->err, sizeof(x->err),
				"UID STORE %s -FLAGS.SILENT (\\Seen)", set) != MF_OK)
			return MF_ERROR;
		at += used;
	}
	return MF_OK;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Ties one side's listing to the copied messages: by position (ord, if
 * given) or else by content, RETRieving only messages whose LIST size
 * one of the copied messages could have. *zipped_r: by position. */
static int match_side(struct mig_ctx *x, struct pop3_conn *conn, struct uidl_msg *v, size_t n,
		      const struct uidl_copied *c, const size_t *ord, size_t m, size_t *out,
		      bool *zipped_r, struct unseen *un)
{
	size_t *seq = NULL;
	uint64_t *sizes = NULL;
	int rc = MF_ERROR;

	*zipped_r = ord != NULL && uidl_match_zip(v, n, c, ord, m, out);
	if (*zipped_r)
		return MF_OK;
	seq = malloc((m + 1) * sizeof(*seq));
	sizes = malloc((m + 1) * sizeof(*sizes));
	if (seq == NULL || sizes == NULL) {
		mf_err(x->err, sizeof(x->err), "out of memory");
		goto out;
	}
	for (size_t k = 0; k < m; k++) {
		seq[k] = ord != NULL ? ord[k] : k;
		sizes[k] = c[k].size;
	}
	mig_qsort(sizes, m, sizeof(*sizes), cmp_u64);
	for (size_t i = 0; i < n; i++) {
		if (!uidl_size_plausible(&v[i], sizes, m))
			continue;
		if (un->imap != NULL && !un->noted && unseen_note(x, un) != MF_OK)
			goto out;
		if (mig_check_cancel(x) != MF_OK || hash_one(x, conn, &v[i]) != MF_OK)
			goto out;
	}
	if (uidl_match_bytes(v, n, c, seq, m, out) != MF_OK) {
		mf_err(x->err, sizeof(x->err), "out of memory");
		goto out;
	}
	rc = MF_OK;
out:
	free(sizes);
	free(seq);
	return rc;
}

/* One side: log in, list, match. LEDGER_ABSENT: no POP3 service (note). */
static int side(struct mig_ctx *x, const struct mig_side *sd, const struct imap_url *u,
		struct imap_conn *imap, const char *name, const struct uidl_copied *c,
		const size_t *ord, size_t m, struct uidl_msg **v_r, size_t *n_r, size_t **out_r,
		bool *zipped_r, char *note, size_t notelen)
{
	struct pop3_conn *conn = NULL;
	struct unseen un = { .imap = imap };
	int rc;

	*v_r = NULL;
	*out_r = NULL;
	*n_r = 0;
	rc = open_side(x, sd, u, name, &conn, note, notelen);
	if (rc != MF_OK)
		return rc;
	rc = listing(x, conn, v_r, n_r);
	if (rc == MF_OK) {
		*out_r = calloc(*n_r + 1, sizeof(**out_r));
		if (*out_r == NULL)
			rc = mf_err(x->err, sizeof(x->err), "out of memory");
	}
	if (rc == MF_OK)
		rc = match_side(x, conn, *v_r, *n_r, c, ord, m, *out_r, zipped_r, &un);
	/* QUIT first: a server may set \Seen only then. */
	pop3_close(conn);
	if (rc == MF_OK && un.noted)
		rc = unseen_restore(x, &un);
	free(un.v);
	return rc;
}

int mig_uidl_map(struct mig_ctx *x, const struct uidl_copied *c, const size_t *src_ord,
		 const size_t *dst_ord, size_t m)
{
	const struct mig_opts *o = x->o;
	struct uidl_msg *sv = NULL, *dv = NULL;
	size_t ns = 0, nd = 0, *sout = NULL, *dout = NULL, np = 0;
	struct uidl_pair *pairs = NULL;
	bool szip = true, dzip = false;
	char note[256] = "";
	int rc;

	if (o->uidl_store == NULL)
		return MF_OK;
	if (m == 0) { /* nothing copied into INBOX: nothing to pair, no login */
		if (o->uidl_store(o->uidl_store_arg, NULL, 0, "", x->err, sizeof(x->err)) != MF_OK)
			return MF_ERROR;
		x->rep->uidl_mapped = true;
		return MF_OK;
	}
	x->prog.phase = "uidl";
	x->prog.folder = "INBOX";
	mig_progress_emit(x);
	rc = MF_OK;
	if (src_ord != NULL) {
		rc = side(x, &o->src, &o->uidl_src, x->src, "source POP3", c, src_ord, m, &sv,
			  &ns, &sout, &szip, note, sizeof(note));
		if (rc == MF_ERROR)
			goto out;
	}
	if (rc != LEDGER_ABSENT) {
		rc = side(x, &o->dst, &o->uidl_dst, x->dst, "destination POP3", c, dst_ord, m,
			  &dv, &nd, &dout, &dzip, note, sizeof(note));
		if (rc == MF_ERROR)
			goto out;
	}
	if (rc == MF_OK &&
	    uidl_pairs_make(src_ord != NULL ? sv : NULL, sout, ns, dv, dout, nd, c, m, &pairs,
			    &np) != MF_OK) {
		rc = mf_err(x->err, sizeof(x->err), "out of memory");
		goto out;
	}
	if (rc == MF_OK && np < m)
		snprintf(note, sizeof(note), "%zu of %zu copied INBOX messages paired (%s, %s)", np,
			 m, src_ord == NULL ? "POP3 source" : szip ? "source by position"
								    : "source by content",
			 dzip ? "destination by position" : "destination by content");
	rc = o->uidl_store(o->uidl_store_arg, pairs, np, note, x->err, sizeof(x->err));
	if (rc != MF_OK)
		goto out;
	x->rep->uidl_mapped = true;
	x->rep->uidl_pairs = np;
	x->rep->uidl_copied = m;
	snprintf(x->rep->uidl_note, sizeof(x->rep->uidl_note), "%s", note);
out:
	free(pairs);
	free(dout);
	free(sout);
	free(dv);
	free(sv);
	return rc == MF_OK ? MF_OK : MF_ERROR;
}
