/* smtp_front.h — the SMTP front end of a session (plaintext for now).
 *
 * Two ops tables, chosen by the original destination port:
 *
 * smtp_front_ops ([gateway] smtp_ports, port 25 behaviour: MTA to MTA, no
 * login). The front end stays in the loop for the whole SMTP session,
 * because each transaction may belong to another backend:
 *   - greeting, EHLO/HELO, MAIL FROM, NOOP, RSET, VRFY, HELP answered here;
 *   - RCPT TO: the recipient's account (account_name_normalise, the
 *     ledger) picks the backend: MIGRATED → destination, CUTOVER →
 *     "451 4.2.0", anything else (unknown included) → source; a ledger that
 *     cannot answer → "451 4.3.0". The first routed recipient chooses the
 *     transaction's backend (connect, 220, EHLO/HELO with the client's
 *     name, XCLIENT when configured and offered, MAIL FROM as the client
 *     sent it, RCPT); the backend's RCPT reply reaches the client
 *     unchanged. A recipient of another backend gets "451 4.3.0", so the
 *     sending MTA retries it in a separate transaction;
 *   - DATA: the backend's 354, then the content relayed byte for byte
 *     (smtp_data.h finds the end; no dot unstuffing) and the backend's
 *     final reply relayed back; then commands again. A later transaction
 *     for another backend QUITs the old connection and opens a new one;
 *   - a backend that cannot be reached or fails mid-way: "421 4.3.2" and
 *     close. The sending MTA then retries the whole transaction later;
 *     nothing was acknowledged that the backend did not store.
 *
 * submission_front_ops ([gateway] submission_ports, port 587 behaviour):
 * AUTH PLAIN (with or without initial response) and AUTH LOGIN are read
 * here and routed by the authenticated account like an IMAP login
 * (CUTOVER: "454 4.7.0", RFC 4954's temporary authentication failure); the
 * backend gets EHLO and AUTH PLAIN, its reply reaches the client unchanged,
 * and after 235 the session is relayed (front_io_login_done(): a login on
 * the source is recorded in the ledger).
 *
 * What EHLO advertises (the same whichever backend a transaction will
 * reach, since the EHLO comes before any recipient): PIPELINING (commands
 * are taken one at a time from the buffer and answered in order, so a
 * pipelining client is served correctly), 8BITMIME and ENHANCEDSTATUSCODES
 * (every server we relay to offers both; MAIL FROM's parameters are passed
 * through unchanged, so a backend that refuses one answers for itself),
 * CHUNKING on MTA ports (smtp_bdat.c carries BDAT to any backend: passed
 * through where the backend's EHLO offers CHUNKING, turned into DATA where
 * it does not), and on submission ports AUTH PLAIN LOGIN. Not advertised:
 * SIZE (the backend's limit is only known once it is chosen; an oversized
 * message gets the backend's own 552), SMTPUTF8, DSN, BINARYMIME (DATA
 * could not carry it), STARTTLS (comes with the TLS layer; smtp_starttls()
 * is where it will be wired).
 *
 * Bounds are front_io's: command lines (512 bytes), AUTH lines (8 KiB),
 * preauth_max_errors protocol errors, preauth_timeout per command (the
 * timeout restarts at each command and each block of message content). */
#ifndef MF_SMTP_FRONT_H
#define MF_SMTP_FRONT_H

#include "front.h"

extern const struct front_ops smtp_front_ops;
extern const struct front_ops submission_front_ops;

#endif
