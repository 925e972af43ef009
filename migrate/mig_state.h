/* mig_state.h — checkpoints of one account's copy, in a small SQLite file
 * of its own (`mailferry migrate --state FILE`; the ledger's schema is not
 * touched).
 *
 * Per source folder: the source UIDVALIDITY the checkpoint belongs to, the
 * destination folder's UIDVALIDITY, the highest source UID copied and a
 * "dirty" mark that is set (and synced) before an APPEND is sent and
 * cleared in the same transaction that records what the APPEND stored:
 * found set on restart, it means an APPEND may have stored messages that
 * were never recorded, and the folder is reconciled by content.
 * Per message: source UID -> destination UID (0: the destination did not
 * say, no UIDPLUS), size and SHA-256 of the source bytes.
 *
 * The file names the source and destination it belongs to; opening it for
 * another pair is refused, so one state file can never mix two accounts.
 * With path NULL the state lives in memory (a one-shot without --state). */
#ifndef MF_MIG_STATE_H
#define MF_MIG_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mig_state;

struct mig_folder_state {
	bool known;             /* a checkpoint exists */
	uint32_t uidvalidity;
	uint32_t dst_uidvalidity;
	uint32_t last_uid;
	bool dirty;
};

struct mig_map_entry {
	uint32_t src_uid;
	uint32_t dst_uid;
	uint64_t size;
	uint8_t sha256[32];
	/* The destination's bytes were hashed and matched since it was
	 * copied (mig_state_map_verified); a rewritten row is not. */
	bool verified;
};

/* pair_id: e.g. "imap://old/alice -> imap://new/alice". MF_OK or MF_ERROR. */
int mig_state_open(const char *path, const char *pair_id, struct mig_state **s_r,
		   char *err, size_t errlen);
/* The same for a file that is one account's whatever the logins (the
 * daemon's <state_dir>/<account>.state): a file of another pair id (an
 * older version's, a login of another form) is taken over, its pair
 * rewritten and every folder marked dirty, instead of refused. */
int mig_state_open_account(const char *path, const char *pair_id, struct mig_state **s_r,
			   char *err, size_t errlen);
void mig_state_close(struct mig_state *s);

/* Transactions group a batch's map entries with its checkpoint. */
int mig_state_begin(struct mig_state *s, char *err, size_t errlen);
int mig_state_commit(struct mig_state *s, char *err, size_t errlen);
void mig_state_rollback(struct mig_state *s);

/* f_r->known is false when folder has no checkpoint yet. */
int mig_state_folder_get(struct mig_state *s, const char *folder,
			 struct mig_folder_state *f_r, char *err, size_t errlen);
int mig_state_folder_put(struct mig_state *s, const char *folder,
			 const struct mig_folder_state *f, char *err, size_t errlen);

int mig_state_map_add(struct mig_state *s, const char *folder,
		      const struct mig_map_entry *e, char *err, size_t errlen);
/* Forgets folder's map (its source UIDVALIDITY changed). */
int mig_state_map_drop(struct mig_state *s, const char *folder, char *err, size_t errlen);
/* Forgets one message of folder's map (gone from the source). */
int mig_state_map_del(struct mig_state *s, const char *folder, uint32_t src_uid, char *err,
		      size_t errlen);
/* Marks these messages of folder's map verified, in one transaction. */
int mig_state_map_verified(struct mig_state *s, const char *folder, const uint32_t *src_uids,
			   size_t n, char *err, size_t errlen);
/* How many messages folder's map holds. */
int mig_state_map_count(struct mig_state *s, const char *folder, uint64_t *n_r, char *err,
			size_t errlen);

/* POP3 sources (mig_pop3.c): one row per source message by its UIDL.
 * pending is set (and committed) before the APPEND and cleared with the
 * destination UID it got: found set on restart, the APPEND may or may not
 * have stored the message, and the destination is searched by content. */
struct mig_uidl_entry {
	char uidl[71];
	uint32_t dst_uid;      /* 0: the destination did not say (no UIDPLUS) */
	uint64_t size;
	uint8_t sha256[32];
	bool pending;
};

int mig_state_uidl_put(struct mig_state *s, const struct mig_uidl_entry *e, char *err,
		       size_t errlen);
int mig_state_uidl_del(struct mig_state *s, const char *uidl, char *err, size_t errlen);
/* Every row, sorted by UIDL (byte order), into a malloc'd array. */
int mig_state_uidl_load(struct mig_state *s, struct mig_uidl_entry **v_r, size_t *n_r,
			char *err, size_t errlen);

/* The whole state of path as bytes (a consistent snapshot, taken under a
 * read transaction while the copy may be writing): *buf_r malloc'd. For
 * handing an interrupted copy to another gateway. MF_OK or MF_ERROR. */
int mig_state_snapshot(const char *path, void **buf_r, size_t *len_r, char *err,
		       size_t errlen);

/* Makes buf (from mig_state_snapshot) path's state, replacing any file
 * there (and its -wal/-shm), mode 0600, with every folder marked dirty:
 * whatever the previous owner appended after the snapshot is on the
 * destination without being in the map, so the rest of each folder is
 * reconciled by content before anything is copied — never twice. */
int mig_state_restore(const char *path, const void *buf, size_t len, char *err,
		      size_t errlen);

/* Loads folder's map, sorted by source UID, into a malloc'd array. */
int mig_state_map_load(struct mig_state *s, const char *folder,
		       struct mig_map_entry **v_r, size_t *n_r, char *err, size_t errlen);

#endif
