/* pop3_front.h — the POP3 pre-authentication front end of a session.
 *
 * For a session whose original destination port is in [gateway] pop3_ports
 * (plaintext; no STLS yet): PREAUTH (greeting, CAPA, USER/PASS, AUTH PLAIN
 * with or without an initial response, QUIT; replies through one
 * outstanding SEND) → ROUTE (ledger state of the normalised user name;
 * CUTOVER gets "-ERR [IN-USE]", RFC 3206) → UPSTREAM (connect to the chosen
 * server, read its +OK greeting, replay USER and PASS) → the backend's +OK
 * line goes to the client, pipelined client bytes go upstream, and the
 * front end is freed before session_relay(). A backend -ERR reaches the
 * client unchanged and keeps the session in PREAUTH; an unreachable or
 * garbled backend gets "-ERR [SYS/TEMP]".
 *
 * One allocation (struct pop3_front) made at session start and freed the
 * moment relaying starts. Ops in flight: at most one per leg, each with a
 * linked timeout; their CQEs carry a struct front_op (front.h). */
#ifndef MF_POP3_FRONT_H
#define MF_POP3_FRONT_H

#include "front.h"

extern const struct front_ops pop3_front_ops;

#endif
