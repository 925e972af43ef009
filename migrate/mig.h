/* mig.h — copy one account's mailbox from a source IMAP server to a
 * destination IMAP server, resumably, and verify the result.
 *
 * mig_run() is the whole one-shot: connect and log in to both sides, plan
 * and create the folder tree (delimiters translated, special-use folders
 * mapped to the destination's folder of that use, names kept byte for
 * byte), copy subscriptions, copy every message not yet copied (flags and
 * keywords but \Recent, INTERNALDATE, the exact bytes) in pipelined FETCH
 * -> streamed (MULTI)APPEND batches, checkpointing each batch, then verify
 * every folder: each source message present on the destination with the
 * same size and SHA-256, flags and internal date (flags that changed on
 * the source since the copy are brought over). MF_OK only when
 * verification passed.
 *
 * A POP3 source (src.url.pop3, mig_pop3.c) has one mailbox: it is copied
 * into the destination's INBOX by RETR, byte for byte (POP3 has no flags
 * nor internal dates to carry), each message's UIDL recorded in the state
 * with its destination UID, size and SHA-256; verification finds every
 * source UIDL's bytes on the destination.
 *
 * Memory is bounded whatever the message sizes: a body flows from the
 * source's socket to the destination's socket chunk by chunk and is never
 * held whole; max_inflight_bytes bounds the bytes of one batch (one
 * MULTIAPPEND command) so a crash redoes at most that much. */
#ifndef MF_MIG_H
#define MF_MIG_H

#include "imap_client.h"
#include "ledger.h"
#include "mig_pace.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIG_BATCH_MAX_DEFAULT 100
#define MIG_INFLIGHT_DEFAULT (32u << 20)

struct mig_side {
	struct imap_url url;
	const char *user;
	const char *master;  /* NULL: log in as user */
	const char *tls_name; /* the certificate's name; NULL: url.host */
	const char *pass;    /* not NUL-terminated necessarily: pass_len */
	size_t pass_len;
};

struct mig_progress {
	const char *phase;         /* "folders", "copy", "verify", "done" */
	const char *folder;        /* source name, NULL between folders */
	unsigned int folder_index; /* 1-based */
	unsigned int folder_count;
	uint64_t messages;         /* copied in this run */
	uint64_t bytes;
	uint64_t planned;          /* to copy in this run (estimated at first) */
	uint64_t verified;
	double elapsed;            /* seconds since the start */
};

struct mig_report {
	unsigned int folders;
	unsigned int folders_created;
	unsigned int subscribed;
	uint64_t copied;           /* messages appended in this run */
	uint64_t bytes;
	uint64_t reconciled;       /* found already on the destination */
	uint64_t verified;         /* messages that passed verification */
	uint64_t verified_hashed;  /* of those, compared by SHA-256 */
	uint64_t preverified;      /* hashed back after the copy (preverify) */
	uint64_t flags_fixed;
	uint64_t expunged;         /* gone from the source: expunged (sync_deletes) */
	bool verify_ok;
	bool source_busy;          /* the source shed load (imap_client_opts) */
	/* The destination refused an APPEND (NO: over quota, too large, a
	 * message it cannot parse...). A MULTIAPPEND refuses its whole batch,
	 * so mig_run() then copies on one message per APPEND up to the
	 * refusal, and the message is known (refused_known): its source UID
	 * and folder, size and the response code ("" if none). The copy
	 * stops there: nothing after a refused message is skipped over. */
	/* POP3 UIDL continuity (mig_opts.uidl_store): the map was computed and
	 * stored with uidl_pairs pairs of uidl_copied INBOX messages; why it
	 * is short or empty, if it is, in uidl_note ("" otherwise). */
	bool uidl_mapped;
	uint64_t uidl_pairs, uidl_copied;
	char uidl_note[256];
	bool dst_refused;
	bool refused_known;
	uint32_t refused_uid;
	uint64_t refused_size;
	char refused_folder[256];
	char refused_code[32];
};

struct mig_opts {
	struct mig_side src, dst;
	const char *state_path;    /* NULL: in memory */
	const char *ca_file;
	bool insecure;
	int timeout_ms;
	size_t max_inflight_bytes; /* 0: MIG_INFLIGHT_DEFAULT */
	unsigned int batch_max;    /* 0: MIG_BATCH_MAX_DEFAULT */
	bool verify;               /* verify at the end (the one-shot: yes) */
	/* Per cent (1..100) of the messages whose bytes verification reads
	 * back and hashes; 0 means 100. Every message is still checked for
	 * presence, size (RFC822.SIZE), INTERNALDATE and flags, and the
	 * counts; the sample is chosen by source UID (mig_verify_sampled), so
	 * a rerun checks the same messages. A folder copied without
	 * destination UIDs (no UIDPLUS) is verified whole. */
	unsigned int verify_sample_pct;
	/* After the copy, the destination's bytes of every message copied and
	 * not yet verified are hashed and compared with what was copied, and
	 * marked verified (mig_preverify_folder): the daemon's bulk pass, while
	 * the user still works on the source (nothing about the source is
	 * checked then: it changes under the user). A mismatch fails. */
	bool preverify;
	/* Verification hashes only messages not marked verified before (the
	 * daemon's delta: its bulk pass hashed the rest); every message is
	 * still checked for presence, size, date and flags, and the counts. */
	bool verify_skip_verified;
	/* Use neither MULTIAPPEND nor LITERAL+ even where offered (servers
	 * that announce them and get them wrong; and tests of the plain path:
	 * one APPEND per message, synchronizing literals). */
	bool plain_append;
	struct mig_pace *pace;     /* rate limits shared with other copies, or NULL */
	/* POP3 UIDL continuity (mig_uidl.h): after a verified copy, INBOX's
	 * destination POP3 UIDLs paired with its source POP3 UIDLs, handed to
	 * uidl_store (NULL: not computed), which returns MF_OK or MF_ERROR
	 * (the run fails: a map that cannot be kept must not be flipped on).
	 * note: why the map is short or empty, "" if it is not. uidl_src,
	 * uidl_dst: the POP3 services of both sides (pop3 set; port "": none),
	 * logged in to with src's and dst's credentials; a side that cannot
	 * be reached or logged in to has no POP3 service: an empty map, noted,
	 * not a failure. A POP3 source's own session answers for its side. */
	struct imap_url uidl_src, uidl_dst;
	/* Messages copied before and gone from the source since (the user
	 * expunged, moved or deleted them there) are expunged from the
	 * destination (mig_imap_gone.c, mig_pop3_gone.c), before the copy
	 * and the verification: the daemon's delta at CUTOVER. */
	bool sync_deletes;
	/* When set, the state file's pair id names this account instead of
	 * the two logins (the daemon: the state file is the account's). */
	const char *pair_account;
	int (*uidl_store)(void *arg, const struct uidl_pair *v, size_t n, const char *note,
			  char *err, size_t errlen);
	void *uidl_store_arg;
	void (*progress)(void *arg, const struct mig_progress *p);
	void *progress_arg;
	/* Set by another thread to stop the run at its next checkpoint (a
	 * daemon shutting down): mig_run then fails with MIG_CANCELLED in
	 * err, having committed everything copied so far. NULL: never. */
	const atomic_bool *cancel;
	/* Asked after each checkpoint is committed (NULL: never): false stops
	 * the copy there (MF_ERROR); it may block, which pauses the copy (the
	 * gateway's copy-job lease while its ledger is unreachable). */
	bool (*proceed)(void *arg);
	void *proceed_arg;
};

#define MIG_CANCELLED "cancelled"

/* MF_OK: copied and (if asked) verified. MF_ERROR with err otherwise;
 * *rep says how far it got either way. */
int mig_run(const struct mig_opts *o, struct mig_report *rep, char *err, size_t errlen);

/* Whether verification hashes the message with source UID uid when it
 * samples pct per cent (0 or >= 100: every message). */
bool mig_verify_sampled(uint32_t uid, unsigned int pct);

#endif
