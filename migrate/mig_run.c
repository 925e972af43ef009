/* mig_run.c — the one-shot copy of an account (contract in mig.h):
 * connect and log in to both sides, plan the folders, copy each folder,
 * verify each folder. */
#include "mf.h"
#include "mig_ctx.h"
#include "mig_uidl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int mig_imap_open(struct mig_ctx *x, const struct mig_side *sd, const char *name,
		  struct imap_conn **c_r)
{
	struct imap_client_opts co = {
		.name = name,
		.ca_file = x->o->ca_file,
		.insecure = x->o->insecure,
		.verify_name = sd->tls_name,
		.timeout_ms = x->o->timeout_ms,
		.busy_r = sd == &x->o->src ? &x->rep->source_busy : NULL,
	};

	if (imap_connect(&sd->url, &co, c_r, x->err, sizeof(x->err)) != MF_OK)
		return MF_ERROR;
	return imap_login(*c_r, sd->user, sd->master, sd->pass, sd->pass_len, x->err,
			  sizeof(x->err));
}

int mig_check_cancel(struct mig_ctx *x)
{
	if (x->o->cancel == NULL || !atomic_load(x->o->cancel))
		return MF_OK;
	return mf_err(x->err, sizeof(x->err), "%s", MIG_CANCELLED);
}

static void phase(struct mig_ctx *x, const char *name, const struct mig_folder *f,
		  unsigned int index)
{
	x->prog.phase = name;
	x->prog.folder = f != NULL ? f->src : NULL;
	x->prog.folder_index = index;
	x->prog.folder_count = (unsigned int)x->n_folders;
	mig_progress_emit(x);
}

static int on_status(void *arg, const struct imap_response *r)
{
	uint64_t *messages = arg, v;

	if (r->n < 3 || !imap_item_is(&r->items[0], "STATUS"))
		return MF_OK;
	for (size_t i = 2; i + 1 < r->n; i++)
		if (imap_item_is(&r->items[i], "MESSAGES") && imap_item_num(&r->items[i + 1], &v))
			*messages = v;
	return MF_OK;
}

/* What is left to copy, for the progress display's ETA: each folder's
 * message count less what the state says is copied (corrected as each
 * folder is really planned). */
static int estimate(struct mig_ctx *x)
{
	for (size_t i = 0; i < x->n_folders; i++) {
		struct mig_folder *f = &x->folders[i];
		uint64_t messages = 0, mapped = 0;
		char q[2048];

		if (mig_mbox(x->src, f->src, q, sizeof(q), x->err, sizeof(x->err)) != MF_OK ||
		    imap_simple(x->src, on_status, &messages, x->err, sizeof(x->err),
				"STATUS %s (MESSAGES)", q) != MF_OK ||
		    mig_state_map_count(x->st, f->src, &mapped, x->err, sizeof(x->err)) != MF_OK)
			return MF_ERROR;
		f->estimate = messages > mapped ? messages - mapped : 0;
		x->prog.planned += f->estimate;
	}
	return MF_OK;
}

static int cmp_dst_uid(const void *a, const void *b, void *arg)
{
	const struct mig_map_entry *map = arg;
	uint32_t x = map[*(const size_t *)a].dst_uid, y = map[*(const size_t *)b].dst_uid;

	return x < y ? -1 : x > y;
}

/* POP3 UIDL continuity (mig_uidl.h) for INBOX, after verification: its
 * map, loaded sorted by source UID, is the source side's order; sorted by
 * destination UID (when every one is known), the destination's. */
static int uidl_map(struct mig_ctx *x)
{
	struct mig_map_entry *map = NULL;
	struct uidl_copied *c = NULL;
	size_t n = 0, *src_ord = NULL, *dst_ord = NULL;
	bool dst_known = true;
	const char *inbox = NULL;
	int rc = MF_ERROR;

	if (x->o->uidl_store == NULL)
		return MF_OK;
	for (size_t i = 0; i < x->n_folders && inbox == NULL; i++)
		if (strcasecmp(x->folders[i].src, "INBOX") == 0)
			inbox = x->folders[i].src;
	if (inbox != NULL &&
	    mig_state_map_load(x->st, inbox, &map, &n, x->err, sizeof(x->err)) != MF_OK)
		return MF_ERROR;
	c = calloc(n + 1, sizeof(*c));
	src_ord = calloc(n + 1, sizeof(*src_ord));
	dst_ord = calloc(n + 1, sizeof(*dst_ord));
	if (c == NULL || src_ord == NULL || dst_ord == NULL) {
		mf_err(x->err, sizeof(x->err), "out of memory");
		goto out;
	}
	for (size_t k = 0; k < n; k++) {
		c[k].size = map[k].size;
		memcpy(c[k].sha256, map[k].sha256, 32);
		src_ord[k] = dst_ord[k] = k;
		dst_known = dst_known && map[k].dst_uid != 0;
	}
	if (n > 1)
		qsort_r(dst_ord, n, sizeof(*dst_ord), cmp_dst_uid, map);
	rc = mig_uidl_map(x, c, src_ord, dst_known ? dst_ord : NULL, n);
out:
	free(dst_ord);
	free(src_ord);
	free(c);
	free(map);
	return rc;
}

static int run(struct mig_ctx *x)
{
	const struct mig_opts *o = x->o;
	char pair[1200];

	if (mig_imap_open(x, &o->src, "source", &x->src) != MF_OK ||
	    mig_imap_open(x, &o->dst, "destination", &x->dst) != MF_OK)
		return MF_ERROR;
	snprintf(pair, sizeof(pair), "%s:%s/%s -> %s:%s/%s", o->src.url.host, o->src.url.port,
		 o->pair_account ? o->pair_account : o->src.user, o->dst.url.host, o->dst.url.port,
		 o->pair_account ? o->pair_account : o->dst.user);
	if (mig_state_open_opts(o, pair, &x->st, x->err, sizeof(x->err)) != MF_OK)
		return MF_ERROR;
	phase(x, "folders", NULL, 0);
	if (mig_folders_plan(x) != MF_OK || estimate(x) != MF_OK)
		return MF_ERROR;
	for (size_t i = 0; i < x->n_folders; i++) {
		phase(x, "copy", &x->folders[i], (unsigned int)i + 1);
		if (mig_check_cancel(x) != MF_OK || mig_copy_folder(x, &x->folders[i]) != MF_OK)
			return MF_ERROR;
	}
	for (size_t i = 0; o->preverify && i < x->n_folders; i++) {
		phase(x, "verify", &x->folders[i], (unsigned int)i + 1);
		if (mig_check_cancel(x) != MF_OK || mig_preverify_folder(x, &x->folders[i]) != MF_OK)
			return MF_ERROR;
	}
	if (!o->verify)
		return MF_OK;
	for (size_t i = 0; i < x->n_folders; i++) {
		phase(x, "verify", &x->folders[i], (unsigned int)i + 1);
		if (mig_check_cancel(x) != MF_OK || mig_verify_folder(x, &x->folders[i]) != MF_OK)
			return MF_ERROR;
	}
	x->rep->verify_ok = true;
	return uidl_map(x);
}

static int run_once(const struct mig_opts *o, struct mig_report *rep, char *err,
		    size_t errlen)
{
	struct mig_ctx x = { .o = o, .rep = rep };
	int rc;

	x.t0 = mig_now();
	rc = run(&x);
	if (rc == MF_OK)
		phase(&x, "done", NULL, 0);
	else
		mf_err(err, errlen, "%s", x.err);
	imap_close(x.src);
	imap_close(x.dst);
	mig_state_close(x.st);
	mig_folders_free(&x);
	return rc;
}

int mig_run(const struct mig_opts *o, struct mig_report *rep, char *err, size_t errlen)
{
	struct mig_opts one;
	int rc;

	if (o->dst.url.pop3) {
		memset(rep, 0, sizeof(*rep));
		return mf_err(err, errlen, "the destination must be an IMAP server");
	}
	if (o->src.url.pop3)
		return mig_pop3_run(o, rep, err, errlen);
	memset(rep, 0, sizeof(*rep));
	rc = run_once(o, rep, err, errlen);
	if (rc == MF_OK || !rep->dst_refused || rep->refused_known)
		return rc;
	/* A MULTIAPPEND batch was refused as a whole: from the checkpoint
	 * on, one message per APPEND, so the refusal names its message. */
	one = *o;
	one.plain_append = true;
	one.batch_max = 1;
	rep->dst_refused = false;
	return run_once(&one, rep, err, errlen);
}
