/* mig_uidl.h — POP3 UIDL continuity: after a verified copy, which
 * destination POP3 UIDL holds the bytes of which source POP3 UIDL, for the
 * messages of INBOX the copy moved (the gateway then answers UIDL with the
 * source's UIDLs, and a client that leaves mail on the server downloads
 * nothing again; ledger_uidl_map_put keeps the pairs).
 *
 * No UIDL format is assumed (Dovecot's, Courier's, Exchange's differ):
 * a POP3 message is tied to a copied message by position and size, or by
 * its bytes, never by what its UIDL looks like. The matching below is pure
 * (lists in, indices out); mig_uidl.c does the POP3 sessions.
 *
 * Position: on real servers POP3 lists a maildrop in the INBOX's UID order.
 * When a listing has exactly as many messages as were copied and each LIST
 * size equals the copied size in that order, message i is copied message
 * i (the fast path: no message read). Anything else (a count or a size
 * that does not line up) is settled by content: each message is RETRieved
 * and hashed, and tied to a copied message with the same bytes; a message
 * with no such copied message gets no pair (the client fetches it again:
 * costly, never wrong). Messages with the very same bytes are tied in
 * order, which is as good as any order: they cannot be told apart. */
#ifndef MF_MIG_UIDL_H
#define MF_MIG_UIDL_H

#include "ledger.h"
#include "pop3_resp.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "No copied message" in a match. */
#define UIDL_NONE SIZE_MAX

/* One message of a POP3 listing (UIDL and LIST joined by message number),
 * in the server's order. */
struct uidl_msg {
	uint32_t n;
	char uidl[POP3_UIDL_MAX + 1];
	uint64_t size;            /* LIST's */
	bool hashed;              /* RETRieved: the fields below are set */
	uint64_t rsize;           /* the bytes RETR gave */
	uint8_t sha256[32];       /* of those bytes */
	/* They end in CRLF: sha256_trim is of them less it. A server must end
	 * a message with a line end before its ".": one the copy read without
	 * a final CRLF comes out of RETR with one added. */
	bool trim;
	uint8_t sha256_trim[32];
};

/* One copied message of INBOX, as the copy recorded it. */
struct uidl_copied {
	uint64_t size;
	uint8_t sha256[32];
	const char *src_uidl;     /* a POP3 source's UIDL, else NULL */
};

/* true when msgs[i] has copied message c[ord[i]]'s bytes by position: n
 * == m and every LIST size equals the copied size; out[i] = ord[i] then.
 * false (out untouched) otherwise. */
bool uidl_match_zip(const struct uidl_msg *msgs, size_t n, const struct uidl_copied *c,
		    const size_t *ord, size_t m, size_t *out);

/* true when msg's LIST size could be one of the copied sizes (equal, or
 * two more: the CRLF a server adds), i.e. worth a RETR. sizes: the copied
 * sizes, sorted. */
bool uidl_size_plausible(const struct uidl_msg *msg, const uint64_t *sizes, size_t m);

/* By content: out[i] = the index of the first copied message (in ord's
 * order) not tied yet whose bytes msgs[i] has (size and SHA-256, or size
 * and the trimmed SHA-256), or UIDL_NONE (msgs[i] not hashed, or no such
 * message). MF_OK, or MF_ERROR when out of memory. */
int uidl_match_bytes(const struct uidl_msg *msgs, size_t n, const struct uidl_copied *c,
		     const size_t *ord, size_t m, size_t *out);

/* The pairs (destination UIDL -> source UIDL) of every copied message k
 * tied on both sides: dst[j] with dout[j] == k, and src[i] with sout[i] ==
 * k (src NULL: c[k].src_uidl, a POP3 source). A UIDL that its listing
 * names twice gives no pair (a broken server: never a pair that may be
 * wrong), nor does a copied message tied twice on one side. *v_r malloc'd
 * (NULL when *n_r is 0). MF_OK, or MF_ERROR when out of memory. */
int uidl_pairs_make(const struct uidl_msg *src, const size_t *sout, size_t ns,
		    const struct uidl_msg *dst, const size_t *dout, size_t nd,
		    const struct uidl_copied *c, size_t m, struct uidl_pair **v_r, size_t *n_r);

#endif
