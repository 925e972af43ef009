/* front_io.h — the I/O plumbing the pre-auth front ends (imap_front.c,
 * pop3_front.c, smtp_front.c) share, so that those files hold only protocol
 * logic. (An SMTP MTA session never leaves its front end: it uses the same
 * plumbing for its whole life, with one upstream connect per backend.)
 *
 * A front end's allocation starts with a struct front_io (first member, so
 * session->front points at both). It owns the client receive buffer, the
 * queued replies, the backend receive buffer, the deadlines and the
 * front_op of each leg. The protocol side supplies a const struct
 * front_io_ops: how to parse buffered client bytes, how to read one backend
 * line, how to fail a login attempt and what to do after a backend send.
 *
 * Ops in flight: at most one on the client leg (CRECV or CSEND) and one on
 * the upstream leg (connect, URECV or USEND), each with a linked timeout.
 * Completions arrive through front_io_on_cqe(). */
#ifndef MF_FRONT_IO_H
#define MF_FRONT_IO_H

#include "account.h"
#include "banner.h"
#include "front.h"
#include "imap_backend.h"
#include "session.h"

#include <linux/time_types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FRONT_IO_RBUF 8192   /* client bytes buffered (a whole command line) */
#define FRONT_IO_OBUF 16384  /* queued replies (backend lines are <= 8 KiB) */
#define FRONT_IO_UBUF 4096   /* backend bytes per RECV */

/* What happens once everything queued in obuf has been sent. */
enum front_after { FA_RUN = 0, FA_CLOSE, FA_RELAY, FA_STARTTLS };

/* One leg's TLS state while the front end runs (front_tls.c). The
 * connection itself is the session's (s->tls[leg]): it outlives the front
 * end and goes on into the relay. */
struct front_leg_tls {
	uint8_t *stage;         /* ciphertext being received or sent */
	size_t off, len;        /* stage[off, len): ciphertext left to send */
	const uint8_t *psrc;    /* REQ_SEND: plaintext to protect */
	uint8_t *pdst;          /* REQ_RECV: where plaintext goes */
	size_t plen;            /* REQ_SEND: its length; REQ_RECV: room */
	uint8_t raw;            /* enum front_tls_raw: the op in flight */
	uint8_t req;            /* enum front_tls_req: what the caller asked */
	bool encrypted;         /* REQ_SEND's plaintext is in the TLS stream */
	bool handshaking;
};

/* Why a login could not be routed and connected (front_io_route_connect).
 * The protocol turns each into its own reply. */
enum front_route_fail {
	FRF_OK = 0,
	FRF_LEDGER,    /* account database unavailable */
	FRF_MIGRATING, /* AR_UNAVAILABLE: the account is being cut over */
	FRF_NO_DEST,   /* AR_DESTINATION but no destination of this family */
	FRF_SOCKET,    /* upstream_socket() failed (logged) */
};

struct front_io_ops {
	/* Parses and answers buffered client bytes; ends by submitting an
	 * op (see front_io_wait()) or by leaving the pre-auth phase. */
	void (*run)(struct session *s);
	/* One backend line is in io->line. Returns false when it was handled
	 * by sending or by leaving the upstream phase (stop reading lines). */
	bool (*up_line)(struct session *s);
	/* Called before each backend line is read: true when the protocol
	 * took the backend's bytes (ubuf) itself, as they are, not as lines
	 * (a listing streamed through). NULL: always lines. */
	bool (*up_bytes)(struct session *s);
	/* The login attempt failed on the backend side: reply, go back to
	 * PREAUTH (front_io_back_to_preauth()). */
	void (*up_fail)(struct session *s, const char *why);
	/* A login USEND sent n > 0 bytes: send the rest or read the reply. */
	void (*up_sent)(struct session *s, size_t n);
	/* The reply to the first pre-auth timeout, sent before closing. */
	const char *timeout_reply;
	/* A held login's wait is over (front_io_hold()): route the login in
	 * progress again, with the credentials still kept, by the account's
	 * state now. NULL: the protocol never holds. */
	void (*resume)(struct session *s);
};

struct front_io {
	struct front_op ops[FO_COUNT];
	const struct front_io_ops *iops;
	uint64_t deadline_ms;           /* end of the pre-auth phase */
	struct __kernel_timespec cts;   /* client op's linked timeout */
	unsigned int errors;            /* protocol errors, vs preauth_max_errors */
	uint8_t after;                  /* enum front_after, once obuf is sent */
	uint8_t close_why;              /* enum session_end for FA_CLOSE */
	uint8_t handoff_step;
	uint8_t connects;               /* upstream connects so far (saturates) */
	bool handoff_send;              /* USEND carries pipelined client bytes */
	bool timed_out;
	bool copy_queued;               /* this login's credentials went to a copy */
	bool held;                      /* the login waited for its copy already */
	uint64_t hold_until_ms, hold_start_ms;
	struct __kernel_timespec hts;   /* FO_HOLD's timer */
	enum account_route route;       /* of the login in progress */
	enum account_state acct_state;  /* the ledger's, when it was routed */
	bool login_pending;             /* a login awaits its verdict (metrics) */
	uint64_t login_t0_us;           /* when the client's login command was routed */
	int64_t acct_changed;           /* when that state was set (0: never) */
	unsigned int acct_failures;     /* FAILED: failures in a row (account.h) */
	union mf_sockaddr up_addr;

	size_t rpos, rlen;              /* rbuf: parsed up to rpos, filled to rlen */
	size_t ooff, olen;              /* obuf: sent up to ooff, queued to olen */
	size_t upos, ulen;              /* ubuf: read up to upos, filled to ulen */
	struct imap_line line;          /* backend line reader (protocol-neutral) */
	struct front_leg_tls tls[2];    /* [0] client, [1] upstream */
	uint8_t rbuf[FRONT_IO_RBUF];
	char obuf[FRONT_IO_OBUF];
	uint8_t ubuf[FRONT_IO_UBUF];
};

/* Sets up io (the first member of the calloc'ed front end f), makes it
 * s->front, enters PREAUTH and sends the greeting (after the TLS handshake
 * on an implicit-TLS port). MF_ERROR when TLS could not be set up. */
int front_io_start(struct session *s, struct front_io *io, const struct front_io_ops *iops,
		   const char *greeting, size_t greeting_len);

/* Submits one io_uring op of kind on the leg's socket, with the linked
 * timeout that kind gets (the pre-auth deadline for the client leg). */
void front_io_submit(struct session *s, unsigned int kind, void *buf, size_t len);

/* The logical completion of an op of kind: what a RECV or SEND would have
 * returned without TLS (plaintext bytes, 0 at EOF, negative errno). */
void front_io_deliver(struct session *s, unsigned int kind, int res);

/* The client may start TLS now: true when a certificate is configured and
 * the client leg is still plaintext. */
bool front_io_can_starttls(const struct session *s);

/* The front end accepted STARTTLS/STLS and queued its answer: bytes the
 * client pipelined after the command are dropped (they were sent in
 * plaintext and must not be read as if protected, the CVE-2011-0411
 * class), and the handshake starts once the answer is sent. */
void front_io_starttls(struct session *s);

/* The backend accepted STARTTLS/STLS: its bytes after that answer are
 * dropped and the next upstream op starts with the handshake. MF_ERROR
 * (after iops->up_fail()) when TLS could not be set up. */
int front_io_upstream_starttls(struct session *s);

/* What the source this client wanted says before login (banner.h), on
 * the protocol's plaintext port for an implicit-TLS client; NULL until a
 * probe of it succeeded. */
const struct banner *front_io_banner(const struct session *s, enum banner_proto proto);

/* How the backend leg of this session is protected (config backend_tls). */
enum mf_backend_tls front_io_backend_tls(const struct session *s);

/* Wipes the buffers that may have held credentials. */
void front_io_wipe(struct front_io *io);

/* Strategy immediate: when the source just accepted a login whose
 * credentials were queued for a copy, the login waits for it. Returns
 * true when the session now holds: the source leg is closed (nothing was
 * said to the client yet), the credentials stay with the protocol, and
 * every 250 ms the ledger is read: at MIGRATED, FAILED, after [migrate]
 * immediate_wait or at a stop iops->resume() routes the login again (to
 * the destination once MIGRATED, else to the source, or "try again"
 * during CUTOVER). A session holds at most once. false: go on as usual. */
bool front_io_hold(struct session *s);

/* The ops table's on_cqe for both front ends. */
void front_io_on_cqe(struct front_op *op, int res);

/* Ends the login attempt's upstream leg (socket and TLS). */
void front_io_upstream_close(struct session *s);

/* Receives client bytes after rlen. An unfinished line moves to the front
 * of rbuf first, so the parser resumes where it stopped looking; a buffer
 * full of one line ends the session (parsers refuse a line before that). */
void front_io_client_recv(struct session *s);

/* Sends obuf[ooff, olen), bounded by the pre-auth deadline but given at
 * least a second: a closing reply should still get out. */
void front_io_flush(struct session *s);

/* Receives backend bytes into ubuf (discarding what was there). */
void front_io_upstream_recv(struct session *s);

/* Sends len bytes of buf upstream; buf must live until the completion. */
void front_io_upstream_send(struct session *s, const void *buf, size_t len);

/* Queues a reply; one that does not fit is cut to fit, keeping CRLF. */
void front_io_reply(struct session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Ends the session with why once the queued replies are sent. */
void front_io_close_after_reply(struct session *s, enum session_end why);

/* The common head of a protocol's run loop. Returns true when the front
 * end now waits (queued replies are being sent, the session was closed,
 * or a RECV was submitted because rbuf is consumed); false when rbuf holds
 * bytes to parse. */
bool front_io_wait(struct session *s);

/* Sets s->user to name, routes the account by its ledger state and, on
 * FRF_OK, starts the upstream connect (SP_UPSTREAM; its completion comes
 * to the ops table's on_connect). */
enum front_route_fail front_io_route_connect(struct session *s, const char *name);

/* The account's route by its ledger state (an account the ledger does not
 * know is UNSEEN). MF_OK with *route_r, or MF_ERROR (logged) when the
 * ledger cannot answer. Used alone by the SMTP front end, which routes
 * recipients, not logins. */
int front_io_route(struct session *s, const char *name, enum account_route *route_r);

/* Starts the upstream connect for route (as front_io_route_connect() does
 * after its lookup); s->user, if set, only names the account in logs. */
enum front_route_fail front_io_connect(struct session *s, enum account_route route);

/* The upstream connect completed: MF_OK with the line reader reset (the
 * caller reads the greeting), or MF_ERROR after iops->up_fail(). */
int front_io_on_connect(struct session *s, int res);

/* Feeds ubuf to the line reader, one iops->up_line() per line, and reads
 * more when ubuf is used up. */
void front_io_upstream_process(struct session *s);

/* Logs why the login attempt failed on the backend side (counted as a
 * refused login when one was in progress). */
void front_io_log_up_fail(struct session *s, const char *why);

/* The backend answered the login in progress with a refusal (a wrong
 * password): counts it, with its latency. */
void front_io_login_rejected(struct session *s);

/* Drops the upstream leg and goes back to parsing client commands. The
 * caller has wiped the credentials. */
void front_io_back_to_preauth(struct session *s);

/* The backend accepted the login; the caller has queued the client's
 * answer. Records a login on the source, then sends the answer, the
 * backend's bytes after its reply, the client's pipelined bytes, and
 * starts relaying (s->fops->free() first). */
void front_io_login_done(struct session *s);

/* The backend accepted the login and the session stays in its front end
 * (pop3_txn.h), which has queued the client's answer and switched its
 * ops: counts the login and sends the answer; the front end's run op
 * follows. */
void front_io_login_stay(struct session *s);

/* true when the source's OK to the login in progress would make
 * front_io_login_creds() queue an event: the front end then keeps the
 * credentials until the backend's answer instead of wiping them once
 * the replay is sent. */
bool front_io_creds_wanted(struct session *s);

/* The source accepted the login (its OK is in hand; the front end has not
 * wiped its credentials yet): when [migrate] is on and the account was
 * UNSEEN or SEEN, hands the migration workers a "login observed" event
 * with the login name as typed and the password (login_event.h copies
 * them; the caller still wipes its own). Anything else: nothing. */
void front_io_login_creds(struct session *s, const char *login, size_t login_len,
			  const char *pass, size_t pass_len);

#endif
