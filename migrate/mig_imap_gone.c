/* mig_imap_gone.c — an IMAP source's deletions brought over: messages of a
 * folder's map (copied before) that the source folder no longer holds (the
 * user expunged or moved them since) are expunged from the destination
 * folder, if still what the copy stored (mig_expunge.c), and forgotten by
 * the map. The daemon's delta at CUTOVER does it (mig_opts.sync_deletes),
 * so the account flips with the same mail on both sides; a message moved
 * to another folder is copied there as a new one.
 *
 * Which source UIDs are still there: "UID FETCH 1:<highest mapped> (UID
 * FLAGS)", one bounded response per message (a SEARCH answer would be one
 * line as long as the folder). A UID the answer names is kept; only UIDs
 * it does not name are gone. The map rows go after the expunge: a crash in
 * between leaves rows whose messages are gone, found gone and forgotten by
 * the next run. */
#include "mf.h"
#include "mig_ctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mig_imap_expunge_gone(struct mig_ctx *x, const struct mig_folder *f, uint32_t dexists)
{
	struct mig_map_entry *map = NULL;
	struct mig_meta_run src = { 0 };
	struct mig_gone_row *rows = NULL;
	size_t n_map = 0, ngone = 0;
	uint32_t highest = 0;
	uint64_t expunged = 0;
	int rc = MF_ERROR;

	if (mig_state_map_load(x->st, f->src, &map, &n_map, x->err, sizeof(x->err)) != MF_OK)
		return MF_ERROR;
	if (n_map == 0) {
		rc = MF_OK;
		goto out;
	}
	for (size_t k = 0; k < n_map; k++)
		highest = map[k].src_uid > highest ? map[k].src_uid : highest;
	if (imap_simple(x->src, mig_meta_on_fetch, &src, x->err, sizeof(x->err),
			"UID FETCH 1:%u (UID FLAGS)", highest) != MF_OK) {
		if (src.oom)
			mf_err(x->err, sizeof(x->err), "out of memory");
		goto out;
	}
	mig_qsort(src.v, src.n, sizeof(*src.v), mig_msg_cmp_uid);
	rows = calloc(n_map, sizeof(*rows));
	if (rows == NULL) {
		mf_err(x->err, sizeof(x->err), "out of memory");
		goto out;
	}
	for (size_t k = 0; k < n_map; k++) {
		struct mig_msg key = { .uid = map[k].src_uid };

		rows[k].dst_uid = map[k].dst_uid;
		rows[k].size = map[k].size;
		memcpy(rows[k].sha256, map[k].sha256, 32);
		rows[k].gone = mig_bsearch(&key, src.v, src.n, sizeof(*src.v), mig_msg_cmp_uid) == NULL;
		ngone += rows[k].gone;
	}
	if (ngone == 0) {
		rc = MF_OK;
		goto out;
	}
	if (mig_expunge_copied(x, rows, n_map, dexists, &expunged) != MF_OK)
		goto out;
	if (mig_state_begin(x->st, x->err, sizeof(x->err)) != MF_OK)
		goto out;
	for (size_t k = 0; k < n_map; k++) {
		if (rows[k].gone && mig_state_map_del(x->st, f->src, map[k].src_uid, x->err,
						      sizeof(x->err)) != MF_OK) {
			mig_state_rollback(x->st);
			goto out;
		}
	}
	if (mig_state_commit(x->st, x->err, sizeof(x->err)) != MF_OK)
		goto out;
	x->rep->expunged += expunged;
	rc = MF_OK;
out:
	free(rows);
	mig_msgs_free(src.v, src.n);
	free(map);
	return rc;
}
