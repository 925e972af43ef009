/* pop3_parser.h — the POP3 pre-authentication command line parser.
 *
 * Covers what a client may say before it is logged in: RFC 1939 (USER,
 * PASS, APOP, QUIT, NOOP), RFC 2449 CAPA, RFC 2595 STLS and RFC 5034 AUTH
 * with its continuation lines. The parser never touches a socket: it reads
 * the session's own receive buffer in place and makes no copies, so a
 * password exists only in that buffer until pop3_cmd_wipe() clears it.
 *
 * Buffer contract (nginx style, resumable without copying):
 *   - buf starts at the first byte the parser has not consumed yet;
 *   - on MF_AGAIN, *used_r bytes were consumed (often 0: an unfinished line
 *     is left where it is); keep buf[*used_r..len), append what arrives and
 *     call again. The parser remembers how far it looked, so each byte is
 *     examined once however the input is split;
 *   - the caller's buffer must hold p->auth_line_max bytes: the parser
 *     reports POP3_PERR_LINE_TOO_LONG before more than that is unconsumed,
 *     so a 1 MiB line is refused after its first line_max bytes.
 * Pointers in struct pop3_cmd point into buf and live until the caller
 * moves or overwrites those bytes.
 *
 * Line ends: CRLF; a bare LF also ends a line when p->allow_bare_lf (the
 * default: Dovecot and most POP3 servers accept it, and a command line is no
 * smuggling vector). A CR not followed by LF is an error. */
#ifndef MF_POP3_PARSER_H
#define MF_POP3_PARSER_H

#include "line_scan.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POP3_LINE_MAX_DEFAULT 255       /* RFC 2449 §4, including CRLF */
#define POP3_AUTH_LINE_MAX_DEFAULT 8192 /* SASL responses are longer */

enum pop3_cmd_type {
	POP3_CMD_UNKNOWN = 0, /* name holds the keyword as sent */
	POP3_CMD_CAPA,
	POP3_CMD_STLS,
	POP3_CMD_USER,        /* arg: the name (rest of line) */
	POP3_CMD_PASS,        /* arg: the rest of the line, spaces included */
	POP3_CMD_AUTH,        /* arg: mechanism (may be empty: list them);
			       * arg2: initial response if any ("=" is empty) */
	POP3_CMD_APOP,        /* arg: name, arg2: digest; recognised to refuse */
	POP3_CMD_NOOP,
	POP3_CMD_QUIT,
	POP3_CMD_AUTH_DATA,   /* continuation line, arg: the whole line */
	POP3_CMD_AUTH_CANCEL, /* continuation line "*" (RFC 5034 §4) */
};

enum pop3_parse_error {
	POP3_PERR_NONE = 0,
	POP3_PERR_LINE_TOO_LONG, /* resync false: answer, then close */
	POP3_PERR_NUL,           /* resync false: binary input, not a client */
	POP3_PERR_BARE_CR,
	POP3_PERR_BARE_LF,       /* only when !allow_bare_lf */
	POP3_PERR_EMPTY,         /* empty line */
	POP3_PERR_SYNTAX,        /* known command, wrong arguments; type set */
};

struct pop3_cmd {
	enum pop3_cmd_type type;
	enum pop3_parse_error error; /* set when MF_ERROR */
	bool resync; /* with MF_ERROR: the parser skips to the next line, so
		      * answering -ERR and carrying on is safe; false: close */
	const uint8_t *line;   /* whole line, without its terminator */
	size_t line_len;
	size_t raw_len;        /* line_len plus terminator (CRLF or LF) */
	const uint8_t *name;   /* keyword as sent (any case) */
	size_t name_len;
	const uint8_t *arg;
	size_t arg_len;
	const uint8_t *arg2;
	size_t arg2_len;
};

struct pop3_parser {
	/* Settings; pop3_parser_init() sets the defaults, the caller may
	 * change them between lines. Limits count the terminator. */
	size_t line_max;
	size_t auth_line_max;
	bool allow_bare_lf;

	/* State, private. */
	bool auth_data;  /* the next line answers an AUTH challenge */
	struct line_scan scan;
};

void pop3_parser_init(struct pop3_parser *p);

/* The next line is an AUTH continuation (after the front end sent "+ ..."):
 * it is returned whole as POP3_CMD_AUTH_DATA or POP3_CMD_AUTH_CANCEL and
 * may be up to auth_line_max long. Applies to one line only. */
void pop3_parser_expect_auth_data(struct pop3_parser *p);

/* Returns MF_OK with one command in *cmd_r, MF_AGAIN when the line is not
 * complete, or MF_ERROR with cmd_r->error and cmd_r->resync set. In every
 * case *used_r ≤ len bytes were consumed; MF_OK and MF_ERROR always consume
 * at least one byte. Unknown keywords are MF_OK with POP3_CMD_UNKNOWN. */
int pop3_parser_feed(struct pop3_parser *p, const uint8_t *buf, size_t len,
		     size_t *used_r, struct pop3_cmd *cmd_r);

/* Overwrites the command's line in the caller's buffer with zeros
 * (explicit_bzero, so the compiler keeps it) and clears *cmd. Call it for
 * PASS, AUTH and AUTH_DATA once the secret has been used: the buffer must be
 * writable memory, the parser itself only ever reads it. */
void pop3_cmd_wipe(struct pop3_cmd *cmd);

const char *pop3_cmd_type_str(enum pop3_cmd_type t);
const char *pop3_parse_error_str(enum pop3_parse_error e);

#endif
