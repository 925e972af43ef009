/* smtp_parser.h — the SMTP command parser of the SMTP front end.
 *
 * RFC 5321 commands with the ESMTP parameters the gateway must understand
 * to route a transaction: SIZE (RFC 1870), BODY=8BITMIME (6152), SMTPUTF8
 * (6531), BDAT (3030), AUTH (4954), STARTTLS (3207). XCLIENT is something
 * the gateway sends to a backend, never accepts from a client.
 *
 * Same buffer contract as pop3_parser.h: buf starts at the first unconsumed
 * byte; on MF_AGAIN keep buf[*used_r..len) and call again with more bytes
 * appended; the parser examines each byte once; the caller's buffer must
 * hold p->auth_line_max bytes; pointers in struct smtp_cmd point into buf.
 * Pipelined commands (RFC 2920) come back one per call with *used_r bytes
 * consumed: call again on the rest before reading the socket.
 *
 * The bytes that follow DATA (up to CRLF.CRLF) and BDAT (exactly
 * bdat_size octets) are message content, not commands: the front end
 * relays them itself and feeds only what follows.
 *
 * Line ends: CRLF only by default. A line ended by a bare LF is consumed and
 * reported as SMTP_PERR_BARE_LF (RFC 5321 §2.3.8; Postfix ≥ 3.9 rejects it
 * too, and anything we accept is relayed to a backend that might read the
 * line differently). p->allow_bare_lf = true accepts it. */
#ifndef MF_SMTP_PARSER_H
#define MF_SMTP_PARSER_H

#include "line_scan.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_LINE_MAX_DEFAULT 512       /* RFC 5321 §4.5.3.1.4, with CRLF */
#define SMTP_AUTH_LINE_MAX_DEFAULT 12288 /* RFC 4954 §4 */
#define SMTP_PATH_MAX 256               /* §4.5.3.1.3, with the <> */
#define SMTP_LOCAL_MAX 64               /* §4.5.3.1.1 */
#define SMTP_DOMAIN_MAX 255             /* §4.5.3.1.2 */
#define SMTP_MAX_PARAMS 16

enum smtp_cmd_type {
	SMTP_CMD_UNKNOWN = 0, /* name holds the verb as sent */
	SMTP_CMD_EHLO,        /* arg: domain or address literal */
	SMTP_CMD_HELO,
	SMTP_CMD_MAIL,        /* path, params */
	SMTP_CMD_RCPT,        /* path, params */
	SMTP_CMD_DATA,
	SMTP_CMD_BDAT,        /* bdat_size, bdat_last */
	SMTP_CMD_RSET,
	SMTP_CMD_NOOP,        /* arg: optional string, ignored */
	SMTP_CMD_QUIT,
	SMTP_CMD_STARTTLS,
	SMTP_CMD_AUTH,        /* arg: mechanism, arg2: initial response */
	SMTP_CMD_VRFY,        /* arg: the string */
	SMTP_CMD_EXPN,
	SMTP_CMD_HELP,        /* arg: optional topic */
	SMTP_CMD_AUTH_DATA,   /* continuation line, arg: the whole line */
	SMTP_CMD_AUTH_CANCEL, /* continuation line "*" (RFC 4954 §4) */
};

enum smtp_parse_error {
	SMTP_PERR_NONE = 0,
	SMTP_PERR_LINE_TOO_LONG,   /* resync false: 500 5.5.6, then close */
	SMTP_PERR_NUL,             /* resync false: binary input */
	SMTP_PERR_BARE_CR,
	SMTP_PERR_BARE_LF,
	SMTP_PERR_EMPTY,
	SMTP_PERR_SYNTAX,          /* known verb, bad arguments; type set */
	SMTP_PERR_PATH_SYNTAX,     /* 501 5.1.3 / 5.1.7 */
	SMTP_PERR_PATH_TOO_LONG,   /* 501 5.1.3 (path or domain) */
	SMTP_PERR_LOCAL_TOO_LONG,  /* 501 5.1.3 */
	SMTP_PERR_PARAM_SYNTAX,    /* 501 5.5.4 */
	SMTP_PERR_PARAM_VALUE,     /* SIZE/BODY value bad or repeated: 501 5.5.4 */
	SMTP_PERR_TOO_MANY_PARAMS, /* 501 5.5.4 */
	SMTP_PERR_BDAT_SIZE,       /* not a number or beyond 2^64-1 */
};

enum smtp_body {
	SMTP_BODY_NONE = 0, /* no BODY parameter */
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
	SMTP_BODY_BINARYMIME,
};

struct smtp_param {
	const uint8_t *key; /* esmtp-keyword, as sent */
	size_t key_len;
	const uint8_t *value; /* NULL when the keyword had no "=" */
	size_t value_len;
};

struct smtp_path {
	bool null_path;        /* <> */
	bool postmaster;       /* RCPT TO:<Postmaster>, no domain (§4.1.1.3) */
	bool quoted_local;     /* local part is a quoted string, kept quoted */
	const uint8_t *addr;   /* mailbox as sent, source route stripped */
	size_t addr_len;
	const uint8_t *local;
	size_t local_len;
	const uint8_t *domain; /* after '@'; a [literal] keeps its brackets */
	size_t domain_len;
};

struct smtp_cmd {
	enum smtp_cmd_type type;
	enum smtp_parse_error error; /* set when MF_ERROR */
	bool resync; /* with MF_ERROR: safe to answer 5xx and carry on */
	/* The exact command as received, terminator included: relay these
	 * bytes unchanged to the backend. line_len leaves the terminator out. */
	const uint8_t *raw;
	size_t raw_len;
	size_t line_len;
	const uint8_t *name;
	size_t name_len;
	const uint8_t *arg;
	size_t arg_len;
	const uint8_t *arg2;
	size_t arg2_len;
	struct smtp_path path;
	struct smtp_param params[SMTP_MAX_PARAMS];
	unsigned int n_params;
	bool has_size;
	uint64_t size;          /* SIZE=n of MAIL FROM */
	enum smtp_body body;
	bool smtputf8;
	uint64_t bdat_size;
	bool bdat_last;
};

struct smtp_parser {
	/* Settings; smtp_parser_init() sets the defaults. Limits count the
	 * terminator. */
	size_t line_max;
	size_t auth_line_max;
	bool allow_bare_lf;

	/* State, private. */
	bool auth_data;
	struct line_scan scan;
};

void smtp_parser_init(struct smtp_parser *p);

/* The next line answers a 334 challenge: returned whole as
 * SMTP_CMD_AUTH_DATA or SMTP_CMD_AUTH_CANCEL, up to auth_line_max long.
 * Applies to one line only. */
void smtp_parser_expect_auth_data(struct smtp_parser *p);

/* Returns MF_OK with one command in *cmd_r, MF_AGAIN when the line is not
 * complete, or MF_ERROR with cmd_r->error and cmd_r->resync set (and
 * cmd_r->type when the verb was known). *used_r ≤ len always; MF_OK and
 * MF_ERROR consume at least one byte. Unknown verbs are MF_OK with
 * SMTP_CMD_UNKNOWN: the front end answers 500 5.5.1. */
int smtp_parser_feed(struct smtp_parser *p, const uint8_t *buf, size_t len,
		     size_t *used_r, struct smtp_cmd *cmd_r);

/* Zeroes the command's line in the caller's (writable) buffer and *cmd:
 * for AUTH and AUTH_DATA once the credentials have been used. */
void smtp_cmd_wipe(struct smtp_cmd *cmd);

const char *smtp_cmd_type_str(enum smtp_cmd_type t);
const char *smtp_parse_error_str(enum smtp_parse_error e);

#endif
