/* mig_pop3_gone.c — a POP3 source's deletions brought over: messages the
 * copy stored on the destination whose UIDL the source no longer lists
 * (the user deleted them there, DELE + QUIT, since they were copied) are
 * expunged from the destination's INBOX (mig_opts.sync_deletes: the
 * daemon's delta at CUTOVER), so both hold the same mail when the account
 * flips.
 *
 * Only what the copy stored goes, and only when it still is what the copy
 * stored (mig_expunge.c). The rows go after the expunge: a crash in between
 * leaves rows whose messages are gone, which the next run finds gone and
 * forgets. */
#include "mf.h"
#include "mig_ctx.h"
#include "pop3_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_str_ptr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int mig_pop3_expunge_gone(struct mig_ctx *x, const struct pop3_msg *msgs, size_t n,
			  uint64_t *expunged_r)
{
	struct mig_uidl_entry *v = NULL;
	struct mig_gone_row *rows = NULL;
	const char **listed = NULL;
	size_t nv = 0, ngone = 0;
	uint32_t uv, exists;
	int rc = MF_ERROR;

	*expunged_r = 0;
	if (mig_state_uidl_load(x->st, &v, &nv, x->err, sizeof(x->err)) != MF_OK)
		return MF_ERROR;
	listed = calloc(n + 1, sizeof(*listed));
	rows = calloc(nv + 1, sizeof(*rows));
	if (listed == NULL || rows == NULL) {
		mf_err(x->err, sizeof(x->err), "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		listed[i] = msgs[i].uidl;
	mig_qsort(listed, n, sizeof(*listed), cmp_str_ptr);
	for (size_t k = 0; k < nv; k++) {
		const char *key = v[k].uidl;

		rows[k].dst_uid = v[k].dst_uid;
		rows[k].size = v[k].size;
		memcpy(rows[k].sha256, v[k].sha256, 32);
		/* A pending row's APPEND may or may not have stored it: its
		 * message is not known well enough to take or to keep. */
		rows[k].skip = v[k].pending;
		rows[k].gone = mig_bsearch(&key, listed, n, sizeof(*listed), cmp_str_ptr) == NULL;
		ngone += rows[k].gone;
	}
	if (ngone == 0) {
		rc = MF_OK;
		goto out;
	}
	if (mig_select(x->dst, "INBOX", false, &uv, &exists, x->err, sizeof(x->err)) != MF_OK ||
	    mig_expunge_copied(x, rows, nv, exists, expunged_r) != MF_OK)
		goto out;
	/* The rows go after the expunge: a crash in between leaves rows
	 * whose messages are gone, which the next run finds gone and forgets. */
	if (mig_state_begin(x->st, x->err, sizeof(x->err)) != MF_OK)
		goto out;
	for (size_t k = 0; k < nv; k++) {
		if (rows[k].gone &&
		    mig_state_uidl_del(x->st, v[k].uidl, x->err, sizeof(x->err)) != MF_OK) {
			mig_state_rollback(x->st);
			goto out;
		}
	}
	if (mig_state_commit(x->st, x->err, sizeof(x->err)) != MF_OK)
		goto out;
	rc = MF_OK;
out:
	free(rows);
	free(listed);
	free(v);
	return rc;
}
