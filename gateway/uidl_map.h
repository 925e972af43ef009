/* uidl_map.h — the POP3 UIDLs a migrated account's clients already know.
 *
 * After a copy, the destination names each message with a UIDL of its own;
 * a POP3 client that keeps mail on the server knows the source's. The
 * ledger holds, per account, the pairs (destination UIDL -> source UIDL)
 * recorded at cutover (ledger_uidl_map_get()); the POP3 front end rewrites
 * the destination's UIDL answers with them (pop3_txn.c).
 *
 * A message delivered to the destination after the copy keeps its own
 * UIDL, unless that UIDL happens to be one of the source's UIDLs of another
 * message (two servers with the same UIDL scheme): the client would then
 * take the new message for one it already has and never download it. Such
 * a UIDL is replaced by "mf-" and 40 hex digits of its SHA-256, the same in
 * every session.
 *
 * Pure logic, no I/O. Lines are those of a UIDL answer without CRLF. */
#ifndef MF_UIDL_MAP_H
#define MF_UIDL_MAP_H

#include "ledger.h"

#include <stdbool.h>
#include <stddef.h>

#define UIDL_MAX 70             /* RFC 1939 §7: 1 to 70 characters 0x21-0x7E */
#define UIDL_LINE_MAX 128       /* "+OK " + a message number + SP + UIDL, rewritten */

struct uidl_map {
	struct uidl_pair *by_dst;  /* sorted by dst (owned) */
	struct uidl_pair **by_src; /* the same pairs sorted by src */
	size_t n;
};

/* Takes v[0..n) (malloc'd, from ledger_uidl_map_get(); freed by
 * uidl_map_free()), sorts it and indexes it. Pairs whose UIDLs are not
 * valid UIDLs, and second pairs for one dst, are dropped. MF_OK or
 * MF_ERROR (out of memory; v is freed either way). */
int uidl_map_init(struct uidl_map *m, struct uidl_pair *v, size_t n);
void uidl_map_free(struct uidl_map *m);

/* What the client is told for the destination's UIDL dst (dst_len bytes):
 * into out (UIDL_MAX + 1 bytes, NUL-terminated). */
void uidl_map_translate(const struct uidl_map *m, const char *dst, size_t dst_len,
			char out[UIDL_MAX + 1]);

/* Rewrites one line of a UIDL answer: "n uidl" (a listing's line) or, with
 * status true, "+OK n uidl" (UIDL n). out gets the line to send, without
 * CRLF, NUL-terminated (UIDL_LINE_MAX bytes); *len_r its length. A line of
 * any other shape is copied as it is when it fits (MF_OK) — it names no
 * UIDL a client could match — and MF_ERROR when it does not (the caller
 * sends the original). */
int uidl_map_rewrite_line(const struct uidl_map *m, const char *line, size_t len, bool status,
			  char out[UIDL_LINE_MAX], size_t *len_r);

#endif
