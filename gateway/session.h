/* session.h — one intercepted connection: client leg, upstream leg, relay.
 *
 * Phases: CONNECT (upstream connect with a linked timeout) → RELAY (two
 * directions, relay.c) → CLOSING (cancel what is in flight) → freed once no
 * io_uring operation refers to it. A session never frees itself while the
 * kernel may still complete an operation carrying its pointer. */
#ifndef MF_SESSION_H
#define MF_SESSION_H

#include "imap_frame.h"
#include "relay.h"

#include <linux/time_types.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct worker;
struct front_ops;
struct tls_conn;
struct tls_pump;

/* SP_PREAUTH and SP_UPSTREAM only for front-end (IMAP, POP3, SMTP) sessions. */
enum session_phase { SP_CONNECT = 0, SP_RELAY, SP_CLOSING, SP_PREAUTH, SP_UPSTREAM };

enum session_end {
	SE_EOF = 0,         /* both sides closed in order */
	SE_CLIENT_RESET,
	SE_SERVER_RESET,
	SE_CONNECT_FAILED,
	SE_CONNECT_TIMEOUT,
	SE_IDLE_TIMEOUT,
	SE_SHUTDOWN,        /* drain bound reached at SIGTERM */
	SE_LOCAL_ERROR,     /* out of pipes, fds, memory */
	SE_REFUSED,         /* not a diverted flow, or session limit */
	SE_PREAUTH_TIMEOUT, /* front end: pre-auth phase took too long */
	SE_PROTOCOL,        /* front end: too many errors, or unparsable input */
	SE_LOGOUT,          /* front end: LOGOUT before login */
	SE_CUTOVER,         /* the account's mailbox is being moved (cutover.h) */
};

union mf_sockaddr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

struct session {
	struct worker *w;
	struct session *lru_prev, *lru_next;
	int cfd, ufd;
	uint16_t inflight;        /* SQEs whose CQE has not been seen */
	uint8_t phase;
	uint8_t end;              /* enum session_end */
	int end_errno;
	struct relay_dir dir[2];  /* [0] client → server, [1] server → client */
	uint64_t start_ms, last_ms;
	union mf_sockaddr client, orig_dst;
	/* Where the source behind orig_dst really is: orig_dst, or in listen
	 * mode its moved address (same port). */
	union mf_sockaddr source;
	struct __kernel_timespec connect_ts;
	const struct front_ops *fops; /* front-end sessions only, else NULL */
	void *front;              /* pre-auth state; NULL once relaying */
	char *user;               /* front end: normalised login name, or NULL */
	int8_t route;             /* front end: enum account_route, -1 none */
	bool preauth_counted;     /* in w->preauth until relaying or closing */
	bool implicit_tls;        /* front end: the client's port speaks TLS first */
	bool client_counted;      /* in the daemon's sessions-per-client table */
	bool acct_counted;        /* in the daemon's acct_sessions under user */
	/* [0] client leg, [1] upstream leg when it speaks TLS; they outlive
	 * the front end and are then driven by the pump (tls_pump.h). */
	struct tls_conn *tls[2];
	struct tls_pump *pump;
	/* Metrics (stats.h): what it speaks, where it relays now, and the
	 * bytes of dir[] already added to the worker's shard. */
	uint8_t st_proto;         /* enum stats_proto */
	uint8_t st_backend;       /* enum stats_backend */
	uint64_t st_bytes[2];
	/* Front end with a cutover_line, relayed to the source: where the
	 * server's responses stand (dir[1]'s bytes seen by the relay), so
	 * that a cutover ends the session with that line only at a response
	 * boundary (session_cutover). */
	struct imap_frame frame;
	bool frame_on;
} __attribute__((aligned(16)));

static inline struct session *session_of_dir(struct relay_dir *rd)
{
	return (struct session *)((char *)(rd - rd->idx) - offsetof(struct session, dir));
}

/* Takes ownership of fd (an accepted, diverted connection). */
void session_start(struct worker *w, int fd);

void session_on_connect(struct session *s, int res);

/* Both legs connected (front end: login done): relay both directions. */
void session_relay(struct session *s);

/* Ends the session: records why (the first reason wins), cancels
 * everything in flight, and with reset set makes both sockets close with
 * RST so a reset on one side reaches the other. */
void session_abort(struct session *s, enum session_end why, int err, bool reset);

/* The account is in cutover: ends a session relayed to the source, with
 * the front end's cutover_line first when the server → client direction
 * is at a response boundary with nothing in flight, else plainly. */
void session_cutover(struct session *s);

/* A relay direction finished (EOF passed on); closes when both have. */
void session_dir_done(struct session *s);

/* Adds the bytes relayed since the last call to the worker's counters
 * (on each tick, and when the session ends). */
void session_stats_flush(struct session *s);

/* Called for every CQE that carried this session's pointer. */
void session_put(struct session *s);

#endif
