/* mig_ctx.h — state shared by the steps of one copy (mig_run.c,
 * mig_folders.c, mig_copy.c, mig_verify.c); not a public interface. */
#ifndef MF_MIG_CTX_H
#define MF_MIG_CTX_H

#include "imap_client.h"
#include "mig.h"
#include "mig_state.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

struct mig_ctx;
/* The run was asked to stop (mig_opts.cancel): MF_ERROR with
 * MIG_CANCELLED in x->err, to return right after a checkpoint. */
int mig_check_cancel(struct mig_ctx *x);

/* bsearch and qsort that accept an empty (NULL) array: libc's may not. */
static inline void *mig_bsearch(const void *key, const void *base, size_t n, size_t size,
				int (*cmp)(const void *, const void *))
{
	return n == 0 ? NULL : bsearch(key, base, n, size, cmp);
}

static inline void mig_qsort(void *base, size_t n, size_t size,
			     int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(base, n, size, cmp);
}

/* Special uses we map (RFC 6154). */
enum mig_use {
	MU_NONE = 0,
	MU_SENT = 1u << 0,
	MU_DRAFTS = 1u << 1,
	MU_TRASH = 1u << 2,
	MU_JUNK = 1u << 3,
	MU_ARCHIVE = 1u << 4,
	MU_ALL = 1u << 5,
	MU_FLAGGED = 1u << 6
};

struct mig_folder {
	char *src;        /* source name, exact bytes */
	char *dst;        /* destination name */
	unsigned int use; /* enum mig_use bits on the source */
	bool selectable;
	uint64_t estimate; /* messages to copy as estimated before copying */
};

/* One message's metadata from a FETCH response. */
struct mig_msg {
	uint32_t seq;
	uint32_t uid;
	uint64_t size;
	char *flags;      /* space-separated, \Recent removed; malloc'd */
	char date[64];    /* INTERNALDATE as sent, "" if none */
};

struct mig_ctx {
	const struct mig_opts *o;
	struct imap_conn *src, *dst;
	struct mig_state *st;
	struct mig_report *rep;
	struct mig_progress prog;
	double t0;
	struct mig_folder *folders;
	size_t n_folders;
	char err[IMAP_ERR_MAX];
};

double mig_now(void);

/* o->state_path opened for pair: as the account's file when o names one
 * (mig_state_open_account), else refusing another pair's. */
static inline int mig_state_open_opts(const struct mig_opts *o, const char *pair,
				      struct mig_state **s_r, char *err, size_t errlen)
{
	return o->pair_account != NULL
		       ? mig_state_open_account(o->state_path, pair, s_r, err, errlen)
		       : mig_state_open(o->state_path, pair, s_r, err, errlen);
}

/* Connects to and logs in on one IMAP side (mig_run.c). */
int mig_imap_open(struct mig_ctx *x, const struct mig_side *sd, const char *name,
		  struct imap_conn **c_r);

/* mig_uidl.c: POP3 UIDL continuity after a verified copy (mig_uidl.h),
 * when o->uidl_store is set: c[0..m) INBOX's copied messages; src_ord
 * their indices in source UID order (NULL: a POP3 source, whose side is
 * c[k].src_uidl), dst_ord in destination UID order (NULL: some destination
 * UID unknown, no zip on that side). Stores the map (an empty one, noted,
 * when a side has no POP3 service). MF_OK or MF_ERROR in x->err. */
struct uidl_copied;
int mig_uidl_map(struct mig_ctx *x, const struct uidl_copied *c, const size_t *src_ord,
		 const size_t *dst_ord, size_t m);

/* mig_pop3_gone.c: a POP3 source's messages copied before and listed no
 * more (msgs: the source's listing now) are expunged from the
 * destination's INBOX, if still what was copied, and their rows dropped;
 * *expunged_r: how many messages went. */
struct pop3_msg;
int mig_pop3_expunge_gone(struct mig_ctx *x, const struct pop3_msg *msgs, size_t n,
			  uint64_t *expunged_r);

/* mig_expunge.c: one message the copy stored on the destination. */
struct mig_gone_row {
	uint32_t dst_uid;      /* 0: the destination did not say (no UIDPLUS) */
	uint64_t size;
	uint8_t sha256[32];
	bool gone;             /* gone from the source: expunge it */
	bool skip;             /* not known well enough to take or to keep */
};

/* On the destination's selected folder (exists messages): expunges the
 * message each gone row stands for if it is still what the copy stored,
 * and nothing else; *expunged_r: how many went. MF_OK or MF_ERROR in
 * x->err. */
int mig_expunge_copied(struct mig_ctx *x, const struct mig_gone_row *rows, size_t n,
		       uint32_t exists, uint64_t *expunged_r);

/* mig_copy.c's delta (o->sync_deletes): the source folder's messages in
 * the map that the source no longer holds, expunged on the destination
 * (the folder is selected on both sides) and dropped from the map. */
int mig_imap_expunge_gone(struct mig_ctx *x, const struct mig_folder *f, uint32_t dexists);

/* mig_pop3.c: the whole run for a POP3 source (o->src.url.pop3). */
int mig_pop3_run(const struct mig_opts *o, struct mig_report *rep, char *err, size_t errlen);
void mig_progress_emit(struct mig_ctx *x);

/* A LIST or LSUB answer. */
struct mig_list_entry {
	char *name;
	char delim;      /* '\0': NIL (flat) */
	unsigned int use;
	bool noselect;
};

struct mig_list {
	struct mig_list_entry *v;
	size_t n, cap;
	char delim;      /* the hierarchy delimiter seen */
	bool oom;
};

/* Where source folder name (of special use bits use) goes on the
 * destination: INBOX stays INBOX; a \Sent, \Drafts, \Trash, \Junk or
 * \Archive folder goes to the destination's folder of that use, and its
 * subfolders under it; everything else keeps its name with the source's
 * delimiter replaced by the destination's. malloc'd; NULL with err when
 * the name cannot be represented (it holds the destination's delimiter). */
char *mig_map_name(const struct mig_list *src, const struct mig_list *dst,
		   const char *name, unsigned int use, char *err, size_t errlen);

/* mig_folders.c: lists both sides, fills x->folders, creates what is
 * missing on the destination and copies subscriptions. */
int mig_folders_plan(struct mig_ctx *x);
void mig_folders_free(struct mig_ctx *x);

/* mig_copy.c: copies the messages of one folder not copied yet. */
int mig_copy_folder(struct mig_ctx *x, const struct mig_folder *f);

/* mig_verify.c: the destination's bytes of one folder's copied messages
 * not verified yet, hashed and compared with the map, marked verified
 * (mig_opts.preverify); MF_ERROR on a mismatch, or a stop (MIG_CANCELLED)
 * between slices of at most this many messages and bytes (one message
 * larger than the byte bound is a slice of its own). */
#define MIG_PREVERIFY_SLICE_MSGS 1000
#define MIG_PREVERIFY_SLICE_BYTES (32u << 20)
int mig_preverify_folder(struct mig_ctx *x, const struct mig_folder *f);

/* mig_verify.c: checks one folder; fixes flags; MF_ERROR on a mismatch. */
int mig_verify_folder(struct mig_ctx *x, const struct mig_folder *f);

/* mig_fetch.c: shared helpers. */
/* 1 and *m_r filled when r is "* n FETCH (...)", 0 if r is something else,
 * MF_ERROR when it is a FETCH but malformed. m_r->flags is malloc'd (free
 * it) when the response had FLAGS, else NULL. */
int mig_fetch_parse(const struct imap_response *r, struct mig_msg *m_r);
/* Parses an INTERNALDATE ("17-Jul-1996 02:44:25 -0700") to Unix time. */
int mig_date_parse(const char *s, int64_t *t_r);
/* Flag lists equal as sets (case-insensitive for system flags). */
bool mig_flags_equal(const char *a, const char *b);
/* SELECT/EXAMINE name; *uidvalidity_r, *exists_r. */
int mig_select(struct imap_conn *c, const char *name, bool readonly,
	       uint32_t *uidvalidity_r, uint32_t *exists_r, char *err, size_t errlen);
/* Quotes a mailbox name for c (imap_quote into out). */
int mig_mbox(struct imap_conn *c, const char *name, char *out, size_t outlen,
	     char *err, size_t errlen);
void mig_msgs_free(struct mig_msg *v, size_t n);
int mig_msg_cmp_uid(const void *a, const void *b);

/* Metadata of the messages with UID > above (and FLAGS), sorted by UID. */
struct mig_meta_run {
	struct mig_msg *v;
	size_t n, cap;
	uint32_t above;
	bool oom;
};
int mig_meta_on_fetch(void *arg, const struct imap_response *r);
int mig_meta_fetch(struct imap_conn *c, uint32_t above, struct mig_meta_run *m, char *err,
		   size_t errlen);

/* mig_hash.c: a message's bytes as seen on one side. */
struct mig_hashed {
	uint32_t uid;
	uint64_t size;
	uint8_t sha256[32];
	char *flags;     /* malloc'd, may be NULL */
	char date[64];
	bool used;       /* matched already (reconciliation, verification) */
	bool hashed;     /* size and sha256 are of the bytes; else size is RFC822.SIZE */
};

struct mig_hashed_set {
	struct mig_hashed *v;
	size_t n, cap;
};

/* "UID FETCH set (UID FLAGS INTERNALDATE BODY.PEEK[])" on the selected
 * folder of c; every body is hashed as it streams by (never held) and the
 * results are appended to hs. */
int mig_hash_fetch(struct imap_conn *c, const char *set, struct mig_hashed_set *hs,
		   char *err, size_t errlen);
void mig_hashed_free(struct mig_hashed_set *hs);
/* mig_hash_fetch over the sorted uids, in as many commands as their UID
 * sets take (a command line stays bounded). */
int mig_hash_fetch_uids(struct imap_conn *c, const uint32_t *uids, size_t n,
			struct mig_hashed_set *hs, char *err, size_t errlen);

/* Writes as many of the sorted uids as fit as an IMAP set ("1:5,7") into
 * out; *used_r gets how many were written. */
void mig_uidset(const uint32_t *uids, size_t n, char *out, size_t outlen, size_t *used_r);

#endif
