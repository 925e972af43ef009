/* admin_proto.h — the admin socket's wire format: JSON lines.
 *
 * A client sends one request object per line and gets one reply object
 * per line, in order:
 *
 *   {"cmd":"status"}                     -> {"ok":true,"health":"ok",...}
 *   {"cmd":"pin","user":"ann"}           -> {"ok":true,"user":"ann@example.org",...}
 *   anything refused or malformed        -> {"ok":false,"error":"why"}
 *
 * This file holds the two parsers of that input, both free of sockets:
 * a resumable line framer (bytes in any chunks, one at a time included)
 * bounded by ADMIN_LINE_MAX, and the request decoder (libjansson) that
 * accepts exactly the known commands and keys. */
#ifndef MF_ADMIN_PROTO_H
#define MF_ADMIN_PROTO_H

#include "account.h"

#include <stdbool.h>
#include <stddef.h>

/* A request is a command and maybe a user name: 4 KiB is generous, and it
 * bounds what one client can make the daemon hold. */
#define ADMIN_LINE_MAX 4096

/* admin_line_feed: a whole line is in l->buf. */
#define ADMIN_LINE_DONE 1

struct admin_line {
	char buf[ADMIN_LINE_MAX + 1]; /* the line, NUL-terminated when done */
	size_t len;
	bool done;                    /* a line was handed out: reset on the next feed */
};

void admin_line_init(struct admin_line *l);

/* Consumes bytes of in (n of them) up to and including the first LF;
 * *used_r says how many. Returns ADMIN_LINE_DONE with the line (without
 * its LF or a CR before it) in l->buf/l->len, MF_AGAIN when all of in was
 * taken and the line is not complete, or MF_ERROR for a line longer than
 * ADMIN_LINE_MAX or holding a NUL byte (the connection is then closed:
 * there is no resynchronising a stream we no longer trust). */
int admin_line_feed(struct admin_line *l, const char *in, size_t n, size_t *used_r);

enum admin_cmd {
	ADMIN_STATUS = 0,
	ADMIN_MIGRATE,   /* user */
	ADMIN_PIN,       /* user */
	ADMIN_RETRY,     /* user */
	ADMIN_ROLLBACK,  /* user */
	ADMIN_PAUSE,
	ADMIN_RESUME,
};
#define ADMIN_CMD_COUNT (ADMIN_RESUME + 1)

/* "status", "migrate", ... */
const char *admin_cmd_name(enum admin_cmd c);

struct admin_request {
	enum admin_cmd cmd;
	char user[ACCOUNT_NAME_MAX + 1]; /* as sent (not yet normalised); "" if none */
	bool master; /* migrate: copy as the master user when no login is held */
};

/* Decodes one line: a JSON object with "cmd" (a known command) and, for
 * the commands about one account exactly, "user" (a string of 1 to
 * ACCOUNT_NAME_MAX bytes without NUL); migrate may add "master" (a
 * boolean). Any other key, a duplicate key, a
 * wrong type or trailing bytes is MF_ERROR with the reason in err. */
int admin_request_parse(const char *line, size_t len, struct admin_request *r, char *err,
			size_t errlen);

#endif
