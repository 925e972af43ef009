/* smtp_state.h — the state smtp_front.c (client side: commands, content)
 * and smtp_backend.c (the conversation with the chosen backend) share.
 * Private to those two files. */
#ifndef MF_SMTP_STATE_H
#define MF_SMTP_STATE_H

#include "account.h"
#include "front.h"
#include "front_io.h"
#include "sasl.h"
#include "smtp_data.h"
#include "smtp_parser.h"
#include "smtp_reply.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_CMD_COPY (SMTP_LINE_MAX_DEFAULT + 2)
/* "AUTH PLAIN " + base64 of the largest PLAIN message + CRLF. */
#define SMTP_UCMD_MAX 1200

/* What the client side is doing with the bytes it receives. */
enum smtp_cstate {
	CS_CMD = 0,  /* commands */
	CS_DATA,     /* message content relayed to the backend */
	CS_DISCARD,  /* message content dropped up to its end */
	CS_SKIP,     /* the octets of a refused BDAT dropped */
	CS_CHUNK,    /* the octets of a BDAT relayed to the backend */
};

/* The step of the backend conversation; UP_IDLE waits for the client. */
enum smtp_ustate {
	UP_NONE = 0,  /* no backend connection */
	UP_IDLE,
	UP_GREETING,
	UP_EHLO,
	UP_STARTTLS,  /* backend_tls = starttls: STARTTLS sent, then EHLO again */
	UP_XCLIENT,   /* XCLIENT sent: a new 220, then EHLO again */
	UP_RSET_QUIET, /* the backend's stale transaction is reset */
	UP_MAIL,
	UP_RCPT,
	UP_DATA,      /* DATA sent, waiting for 354 */
	UP_CONTENT,   /* content being sent */
	UP_DATA_END,  /* content sent, waiting for the final reply */
	UP_RSET,      /* the client's RSET */
	UP_BDAT_HDR,  /* the client's BDAT line being sent (backend has CHUNKING) */
	UP_BDAT_DATA, /* DATA sent for a BDAT transaction (backend without CHUNKING) */
	UP_CHUNK,     /* a BDAT's octets being sent */
	UP_BDAT_REPLY, /* octets sent, waiting for the backend's BDAT reply */
	UP_AUTH,      /* submission: AUTH PLAIN sent */
	UP_QUIT_SWITCH, /* QUIT before connecting another backend */
	UP_QUIT_CLOSE,  /* QUIT before closing the session */
};

struct smtp_front {
	struct front_io io;           /* first: s->front points at both */
	struct smtp_parser parser;
	struct smtp_reply_parser rp;  /* backend replies, line by line */
	struct smtp_data_scan data;
	struct smtp_ehlo ehlo;        /* what the connected backend offers */
	bool submission;
	uint8_t cstate;               /* enum smtp_cstate */
	uint8_t ustate;               /* enum smtp_ustate */
	uint8_t auth_pending;         /* enum auth_wait */
	bool esmtp;                   /* the client said EHLO (not HELO) */
	bool xclient_done;
	bool up_mail;                 /* the backend accepted this transaction's MAIL */
	bool up_dirty;                /* the backend may hold a stale transaction */
	int8_t up_route;              /* enum account_route of the connection, -1 */
	int8_t txn_route;             /* of the transaction, -1 before its first RCPT */
	int8_t next_route;            /* to connect after UP_QUIT_SWITCH */

	char helo[SMTP_DOMAIN_MAX + 3]; /* the client's EHLO/HELO argument, "" none */
	char mail_cmd[SMTP_CMD_COPY];   /* MAIL FROM as the client sent it */
	size_t mail_len;
	char rcpt_cmd[SMTP_CMD_COPY];   /* the RCPT being replayed */
	size_t rcpt_len;
	unsigned int rcpts_ok, rcpts_refused;
	uint64_t skip_left;             /* CS_SKIP */
	/* BDAT: the transaction uses it; xlate: the backend lacks CHUNKING and
	 * gets DATA with the chunks dot-stuffed (it is then inside DATA
	 * between chunks). */
	bool bdat, xlate, chunk_last;
	struct smtp_stuff stuff;
	uint64_t chunk_left;
	size_t xoff, xlen;
	uint8_t xbuf[FRONT_IO_RBUF];    /* a dot-stuffed piece of a chunk */
	size_t data_end;                /* CS_DATA: rbuf index the send reaches */
	bool data_last;                 /* ... and the message ends there */

	/* Transactions of the session and their recipients, for its log line. */
	unsigned int txns, txns_ok, rcpts_total, refused_total;

	/* Submission credentials until AUTH PLAIN is sent, then wiped. */
	struct sasl_plain plain;
	char luser[SASL_FIELD_MAX + 1];
	size_t luser_len;

	char ucmd[SMTP_UCMD_MAX];       /* the command being sent upstream */
	size_t ucmd_len, ucmd_off;
	uint8_t rline[SMTP_REPLY_LINE_MAX_DEFAULT]; /* one backend line, re-framed */
};

/* --- smtp_front.c ---------------------------------------------------------- */

/* Parses and answers client bytes (front_io_ops.run). */
void smtp_run(struct session *s);

/* The transaction is over (final reply relayed, RSET, refused content):
 * forget its envelope. */
void smtp_txn_reset(struct smtp_front *f);

/* The session's counters and the transaction's, logged at its end. */
void smtp_log_txn(struct session *s, unsigned int code, uint64_t size);

/* One error answer (line without CRLF) that counts against
 * preauth_max_errors; beyond it the session closes with a 421. */
void smtp_err_reply(struct session *s, const char *line);

/* Wipes the submission credentials held in f. */
void smtp_wipe_creds(struct smtp_front *f);

/* --- smtp_bdat.c ---------------------------------------------------------- */

/* BDAT from the client. Returns true when the backend conversation was
 * started (the client is answered when it completes). */
bool smtp_bdat(struct session *s, const struct smtp_cmd *c);

/* CS_CHUNK: relays buffered octets of the current chunk. Returns true when
 * a send was started. */
bool smtp_chunk(struct session *s);

/* A USEND of UP_BDAT_HDR (whole line) or UP_CHUNK completed with n bytes. */
void smtp_bdat_sent(struct session *s, size_t n);

/* UP_BDAT_DATA and UP_BDAT_REPLY lines; false when handled (see
 * smtp_up_line). */
bool smtp_bdat_line(struct session *s, const struct smtp_reply_line *l);

/* --- smtp_auth.c ----------------------------------------------------------- */

/* AUTH and its continuation lines (refused on MTA ports). Returns true when
 * the backend conversation was started; the command's bytes are wiped
 * before it returns. */
bool smtp_auth(struct session *s, struct smtp_cmd *c);

/* --- smtp_backend.c -------------------------------------------------------- */

/* A recipient routed to route: reuse, replace or open the backend
 * connection and send RCPT (with EHLO, MAIL, ... first as needed). The
 * reply comes back through smtp_up_line(). */
void smtp_up_rcpt(struct session *s, enum account_route route);

/* Sends a command line (with CRLF) to the connected backend and reads its
 * reply in state st. */
void smtp_up_send(struct session *s, enum smtp_ustate st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Sends rbuf[rpos, data_end) of message content to the backend. */
void smtp_up_content(struct session *s);

/* Drops the backend connection (no QUIT: used when its state is unknown). */
void smtp_up_drop(struct session *s);


/* front_io_ops hooks. */
bool smtp_up_line(struct session *s);
void smtp_up_fail(struct session *s, const char *why);
void smtp_up_sent(struct session *s, size_t n);
void smtp_on_connect(struct session *s, int res);

#endif
