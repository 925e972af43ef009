/* pop3_txn.h — a POP3 session that stays in the front end after login, so
 * that the destination's UIDL answers reach the client rewritten with the
 * source's UIDLs (uidl_map.h): a client that keeps mail on the server
 * downloads nothing again after its account moved.
 *
 * Only sessions that need it take this path: a login routed to the
 * destination whose account has a UIDL map. Every other session is
 * relayed (relay.h) as before.
 *
 * Commands are passed on one at a time, each as the client sent it (the
 * server's own answer is what the client hears, RFC 3206 codes and all):
 * a client that pipelines is served in order, from the front end's
 * receive buffer. Listings other than UIDL's stream through unchanged
 * (a 50 MiB RETR is never held whole), bounded by the front end's output
 * buffer; UIDL listings are read line by line and rewritten. */
#ifndef MF_POP3_TXN_H
#define MF_POP3_TXN_H

#include "front_io.h"
#include "ledger.h"
#include "session.h"

#include <stddef.h>

struct pop3_txn;

/* Enters the transaction state after the destination's +OK (line, without
 * CRLF) to the login, with the account's UIDL pairs v[0..n) (taken over,
 * freed with the session). MF_ERROR when out of memory (v freed; the
 * caller answers the client). *t_r belongs to the protocol's front end,
 * which passes it to pop3_txn_free(). */
int pop3_txn_start(struct session *s, const char *line, struct uidl_pair *v, size_t n,
		   struct pop3_txn **t_r);
void pop3_txn_free(struct pop3_txn *t);

/* The front end's accessor for its transaction (pop3_front.c). */
struct pop3_txn *pop3_front_txn(struct session *s);

#endif
