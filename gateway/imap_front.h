/* imap_front.h — the IMAP pre-authentication front end of a session.
 *
 * For a session whose original destination port is in [gateway] imap_ports:
 * PREAUTH (greeting, CAPABILITY, NOOP, LOGOUT, ID, LOGIN, AUTHENTICATE
 * PLAIN; replies through one outstanding SEND) → ROUTE (ledger state of
 * the normalised user name) → UPSTREAM (connect to the chosen server, read
 * its greeting, replay the login under our own tag, read the tagged reply)
 * → the backend's OK goes back under the client's tag, pipelined client
 * bytes go upstream, and the front end is freed before session_relay().
 * A backend NO (or an unreachable backend) keeps the session in PREAUTH.
 *
 * Everything here lives in one allocation (struct imap_front, plus the
 * parser's arena) made at session start and freed the moment relaying
 * starts: "the pre-auth arena dies when relaying starts". Ops in flight:
 * at most one on the client leg and one on the upstream leg, each with a
 * linked timeout; their CQEs carry a struct front_op and are dispatched by
 * front_io_on_cqe() (front_io.h). */
#ifndef MF_IMAP_FRONT_H
#define MF_IMAP_FRONT_H

#include "front.h"

extern const struct front_ops imap_front_ops;

/* Allocates the front end and sends the greeting. MF_OK, or MF_ERROR
 * (errno set) when the session must be refused. */
int imap_front_start(struct session *s);

/* The upstream connect of a login attempt completed. */
void imap_front_on_connect(struct session *s, int res);

/* Wipes credentials and frees everything (NULL front is fine). Nothing of
 * the front end may be in flight. */
void imap_front_free(struct session *s);

#endif
