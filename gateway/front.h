/* front.h — what a pre-authentication front end (IMAP, POP3, SMTP) offers the
 * session core: one const ops table per protocol (STYLE rule 9), chosen by
 * the original destination port when the session starts.
 *
 * A front end owns one allocation (session->front) made by start() and
 * freed by free() the moment relaying starts. Its io_uring ops carry a
 * struct front_op; at most one op is in flight per leg, each with a linked
 * timeout. The plumbing both front ends share (buffers, submissions, CQE
 * dispatch, hand-off to the relay) is front_io.h's. */
#ifndef MF_FRONT_H
#define MF_FRONT_H

#include <stdint.h>
#include <stddef.h>

struct session;

/* Which SASL continuation line a front end's parser was told to expect
 * (AUTHENTICATE / AUTH: PLAIN's one response, LOGIN's user then password). */
enum auth_wait { AW_NONE = 0, AW_PLAIN, AW_LOGIN_USER, AW_LOGIN_PASS };

/* FO_HOLD: a plain timer (no socket) while a login waits for its copy
 * (strategy immediate, front_io_hold()). */
enum front_op_kind { FO_CRECV = 0, FO_CSEND, FO_URECV, FO_USEND, FO_HOLD, FO_COUNT };

struct front_op {
	struct session *s;
	unsigned int kind; /* enum front_op_kind */
} __attribute__((aligned(16)));

struct front_ops {
	const char *name;
	/* The protocol's "too many connections, try later" line (with CRLF),
	 * sent to a connection refused before it became a session. */
	const char *busy_line;
	/* The protocol's line (with CRLF) that ends a session relayed to the
	 * source at a cutover, where the server's framing allows one
	 * (imap_frame.h); NULL: the session is just closed. */
	const char *cutover_line;
	/* The protocol's standard plaintext and implicit-TLS ports: where a
	 * backend leg goes when backend_tls differs from the client's. */
	uint16_t plain_port, tls_port;
	/* Allocates the front end and sends the greeting. MF_OK, or MF_ERROR
	 * (errno set) when the session must be refused. */
	int (*start)(struct session *s);
	/* A CQE of a front-end op (also while closing: then it is only
	 * counted). */
	void (*on_cqe)(struct front_op *op, int res);
	/* The upstream connect of a login attempt completed. */
	void (*on_connect)(struct session *s, int res);
	/* Optional: extra " key=value" fields for the session's conn log
	 * line (written to buf, NUL-terminated), while the front end lives. */
	void (*log_fields)(struct session *s, char *buf, size_t len);
	/* Wipes credentials and frees everything (NULL front is fine).
	 * Nothing of the front end may be in flight. */
	void (*free)(struct session *s);
};

#endif
