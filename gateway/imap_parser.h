/* imap_parser.h — the IMAP pre-authentication command parser.
 *
 * Reads client commands (RFC 3501 / RFC 9051 syntax) from bytes the caller
 * already received; it never touches a socket. It resumes byte by byte:
 * feeding a command whole, one byte at a time or in any split gives the same
 * result at the same byte. It stops after one command, so pipelined bytes
 * stay with the caller (who must discard them after STARTTLS).
 *
 * Arguments are copied once, as they arrive, into an arena the parser owns
 * (max_line + max_literal bytes plus one terminator per argument); every
 * string is NUL-terminated there and NUL is refused in input, so arguments
 * are safe C strings. They stay valid until the next imap_parser_feed() call.
 *
 * Grammar decisions (pre-auth needs no more, and every refusal is a BAD):
 * - a line ends with CRLF or a bare LF (Dovecot accepts bare LF too and
 *   telnet/netcat testing needs it); a CR not followed by LF is an error;
 * - empty lines between commands are ignored;
 * - one SP between arguments; a trailing SP before the line end is allowed;
 * - tag: 1*ASTRING-CHAR except "+" (so "*", "+", "{", "(", "%", "\"" and
 *   "\\" are bad tags);
 * - atoms also accept "]", "%" and "*" (astring / list-mailbox chars), so an
 *   unknown command with such arguments still parses to a clean BAD;
 * - quoted strings accept only \" and \\ escapes; 8-bit bytes only when
 *   limits.utf8 is set (IMAP4rev2 / UTF8=ACCEPT), and then only valid UTF-8;
 * - literals {n} and {n+} (LITERAL+ / LITERAL-) carry any byte but NUL; ~{n}
 *   (literal8) is refused;
 * - max_line counts every byte of a command outside literal data, over all
 *   its lines; max_literal counts all literal bytes of one command.
 */
#ifndef MF_IMAP_PARSER_H
#define MF_IMAP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMAP_DEFAULT_MAX_LINE 8192
#define IMAP_DEFAULT_MAX_LITERAL 65536
#define IMAP_DEFAULT_MAX_NONSYNC 4096
/* RFC 2971 allows 30 field/value pairs in ID: 61 arguments with the list. */
#define IMAP_ARGS_MAX 64
#define IMAP_DEPTH_MAX 8

struct imap_limits {
	size_t max_line;       /* bytes of a command outside literal data */
	size_t max_literal;    /* literal bytes of one command, all literals */
	size_t max_nonsync;    /* largest {n+}: 4096 for LITERAL- (RFC 7888),
				* max_literal when LITERAL+ is advertised */
	unsigned int max_args; /* 1..IMAP_ARGS_MAX, lists and their items count */
	unsigned int max_depth; /* 1..IMAP_DEPTH_MAX nested parentheses */
	bool utf8;             /* UTF-8 allowed in quoted strings */
};

enum imap_cmd_kind {
	IMAP_CMD_UNKNOWN = 0, /* name holds the (upper-cased) command name */
	IMAP_CMD_CAPABILITY,
	IMAP_CMD_NOOP,
	IMAP_CMD_LOGOUT,
	IMAP_CMD_ID,
	IMAP_CMD_STARTTLS,
	IMAP_CMD_LOGIN,
	IMAP_CMD_AUTHENTICATE,
	IMAP_CMD_SASL_LINE, /* the line asked for by imap_parser_expect_sasl_line() */
};

enum imap_arg_type {
	IMAP_ARG_ATOM = 0,
	IMAP_ARG_QUOTED,
	IMAP_ARG_LITERAL,
	IMAP_ARG_NIL,  /* the atom NIL; str keeps it as typed (an astring "nil") */
	IMAP_ARG_LIST, /* "(" ... ")": its items follow it in the array */
};

struct imap_arg {
	enum imap_arg_type type;
	const char *str;    /* NUL-terminated, in the arena; "" for a list */
	size_t len;
	unsigned int items; /* IMAP_ARG_LIST: direct items */
	unsigned int span;  /* IMAP_ARG_LIST: items at every depth; the list's
			     * next sibling is at index i + 1 + span */
	bool nonsync;       /* IMAP_ARG_LITERAL: announced as {n+} */
};

enum imap_err {
	IMAP_ERR_NONE = 0,
	IMAP_ERR_LINE_TOO_LONG,
	IMAP_ERR_LITERAL_TOO_BIG, /* answer BAD [TOOBIG] (RFC 4469 / 7888) */
	IMAP_ERR_SYNTAX,
	IMAP_ERR_NUL,
	IMAP_ERR_BAD_TAG,
	IMAP_ERR_BAD_CRLF,      /* CR not followed by LF */
	IMAP_ERR_BAD_CHAR,      /* 8-bit or control byte where not allowed */
	IMAP_ERR_BAD_ESCAPE,    /* "\" not followed by "\"" or "\\" */
	IMAP_ERR_TOO_MANY_ARGS,
	IMAP_ERR_TOO_DEEP,
	IMAP_ERR_LITERAL_SKIPPED, /* a discarded line announced {n+} */
	IMAP_ERR_STATE,         /* API misuse (expect_sasl_line mid-command) */
};

struct imap_cmd {
	enum imap_cmd_kind kind;
	const char *tag;  /* NULL until a valid tag was read */
	size_t tag_len;
	const char *name; /* upper-cased; NULL until read (and for SASL lines) */
	size_t name_len;
	const struct imap_arg *args; /* the parser's array */
	unsigned int n_args;
	const char *line; /* IMAP_CMD_SASL_LINE: the line without CRLF */
	size_t line_len;
	/* MF_ERROR only: */
	enum imap_err err;
	bool must_close; /* false: answer BAD and keep reading, the parser
			  * drops the rest of the bad line by itself;
			  * true: bytes that cannot be parsed will follow
			  * (a refused {n+} literal): answer BYE and close */
};

enum imap_state {
	IMAP_S_START = 0, IMAP_S_START_CR, IMAP_S_TAG, IMAP_S_NAME_START, IMAP_S_NAME,
	IMAP_S_AFTER_NAME, IMAP_S_ARG_START, IMAP_S_AFTER_ARG, IMAP_S_ATOM,
	IMAP_S_QUOTED, IMAP_S_QUOTED_ESC, IMAP_S_LIT_OPEN, IMAP_S_LIT_NUM,
	IMAP_S_LIT_PLUS, IMAP_S_LIT_CLOSE, IMAP_S_LIT_CR, IMAP_S_LIT_DATA,
	IMAP_S_END_CR, IMAP_S_SASL, IMAP_S_SASL_CR, IMAP_S_SKIP_LIT,
	IMAP_S_SKIP_LINE, IMAP_S_CLOSED,
};

/* Embedded by the session; everything below is private to imap_parser.c. */
struct imap_parser {
	struct imap_limits lim;
	enum imap_state state;
	uint8_t *arena;
	size_t arena_size, arena_len;
	size_t arena_peak;    /* most of the arena written since the last wipe */
	size_t line_len;      /* non-literal bytes of the current command */
	size_t lit_total;     /* literal bytes of the current command */
	uint64_t lit_len;     /* announced size, saturated above max_literal */
	size_t lit_left;      /* data bytes still to come (or to skip) */
	size_t str_start;     /* arena offset of the token being read */
	unsigned int depth;
	unsigned int stack[IMAP_DEPTH_MAX]; /* arg index of each open list */
	unsigned int utf8_left;  /* continuation bytes still expected */
	uint8_t utf8_lo, utf8_hi; /* range of the next continuation byte */
	uint8_t skip_tail;    /* how a discarded line ends: see skip_byte() */
	bool lit_nonsync;
	bool cont_due;        /* a {n} was announced: send "+" now */
	bool done;            /* last call returned a command or an error */
	struct imap_cmd cmd;  /* built in place, copied out */
	struct imap_arg args[IMAP_ARGS_MAX];
	enum imap_err closed_err;
};

/* Fills lim_r with the defaults: 8 KiB line, 64 KiB literal, {n+} up to
 * 4 KiB (LITERAL-, which IMAP4rev2 requires), 64 arguments, depth 2 (ID's
 * list inside nothing else needs no more), no UTF-8. */
void imap_limits_get_default(struct imap_limits *lim_r);

/* lim may be NULL for the defaults. Returns MF_OK, or MF_ERROR on bad
 * limits or when the arena cannot be allocated. */
int imap_parser_init(struct imap_parser *p, const struct imap_limits *lim);

/* Wipes the arena (it held passwords) and frees it. */
void imap_parser_free(struct imap_parser *p);

/* Consumes bytes of buf in place; *used_r says how many.
 * Returns
 *   MF_OK     with a complete command in *cmd_r; *used_r ends just after
 *             its line end (the rest of buf belongs to the next command);
 *   MF_AGAIN  when more input is needed; *used_r == len, except when a
 *             synchronizing literal was just announced: then
 *             imap_parser_continuation_due() is true, the caller sends
 *             "+ OK" and feeds buf + *used_r afterwards;
 *   MF_ERROR  with cmd_r->err, cmd_r->must_close and the tag if one was
 *             read. The offending byte is consumed. After an error without
 *             must_close, feed on: the parser discards the rest of the line
 *             (and of a literal being read) silently. After must_close,
 *             every call returns MF_ERROR again with *used_r == 0.
 * *cmd_r and the strings it points to are valid until the next call. */
int imap_parser_feed(struct imap_parser *p, const uint8_t *buf, size_t len,
		     size_t *used_r, struct imap_cmd *cmd_r);

/* True after an MF_AGAIN that stopped at a {n} announcement; false again
 * from the next imap_parser_feed() call. */
bool imap_parser_continuation_due(const struct imap_parser *p);

/* After "+ challenge" of AUTHENTICATE: the next line is returned raw (NUL
 * refused, bounded by max_line) as IMAP_CMD_SASL_LINE; "*" is a cancel and
 * is the caller's to test. Only between commands: MF_ERROR otherwise. */
int imap_parser_expect_sasl_line(struct imap_parser *p);

/* Overwrites the arena (LOGIN passwords, SASL responses) once the caller
 * has used the command; the parser stays usable. */
void imap_parser_wipe(struct imap_parser *p);

/* Short English text for a BAD response. */
const char *imap_err_str(enum imap_err err);

#endif
