/* imap_backend.h — the gateway's side of an IMAP backend conversation
 * before relaying: a bounded response-line reader, a response classifier,
 * and the LOGIN command the front end replays under its own tag.
 *
 * Pure logic: nothing here reads a socket or allocates. The line reader
 * resumes byte by byte (any split of the input gives the same lines at the
 * same bytes); a backend that sends a line longer than IMAP_RESP_LINE_MAX
 * or a NUL byte is garbage, and the caller answers its client
 * NO [UNAVAILABLE]. */
#ifndef MF_IMAP_BACKEND_H
#define MF_IMAP_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMAP_RESP_LINE_MAX 8192

/* A tag of ours, a LOGIN verb, two literals of at most 255 bytes (SASL
 * field bound) or quoted strings of at most twice that, and line ends. */
#define IMAP_LOGIN_CMD_MAX 1200
#define IMAP_LOGIN_FIELD_MAX 255

struct imap_line {
	char buf[IMAP_RESP_LINE_MAX + 1]; /* line without CRLF, NUL-terminated */
	size_t len;
	bool done; /* last feed returned a line: the next feed starts afresh */
};

void imap_line_init(struct imap_line *l);

/* Consumes bytes of buf; *used_r says how many. Returns
 *   MF_OK    a whole line is in l->buf / l->len (CRLF or bare LF removed);
 *            *used_r ends just after its LF, the rest belongs to later lines;
 *   MF_AGAIN all of buf was consumed, the line goes on;
 *   MF_ERROR the line exceeds IMAP_RESP_LINE_MAX or holds a NUL. */
int imap_line_feed(struct imap_line *l, const uint8_t *buf, size_t len,
		   size_t *used_r);

enum imap_resp_kind {
	IMAP_RESP_UNTAGGED = 0, /* "* ..." */
	IMAP_RESP_CONTINUE,     /* "+ ..." */
	IMAP_RESP_TAGGED,
};

enum imap_resp_status {
	IMAP_ST_OTHER = 0, /* untagged data (CAPABILITY, ...) or continuation */
	IMAP_ST_OK,
	IMAP_ST_NO,
	IMAP_ST_BAD,
	IMAP_ST_PREAUTH,
	IMAP_ST_BYE,
};

struct imap_resp {
	enum imap_resp_kind kind;
	enum imap_resp_status status;
	const char *tag;  /* into the line; NULL unless TAGGED */
	size_t tag_len;
	const char *text; /* after "<status> " (resp-text), "" if none; for
			   * OTHER, after "* " or "+ " */
};

/* Classifies one response line (without CRLF). MF_OK, or MF_ERROR for a
 * line that is no IMAP response (empty, no SP after the tag, a tagged line
 * whose status is not OK/NO/BAD). */
int imap_resp_parse(const char *line, size_t len, struct imap_resp *r);

/* True when text (a resp-text) starts with a "[CAPABILITY ...]" code
 * naming cap (case-insensitive, whole word). */
bool imap_resp_text_has_cap(const char *text, const char *cap);

/* The LOGIN command, in one to three segments: with more than one, the
 * backend's "+" continuation must be read before each next segment. */
struct imap_login_cmd {
	char buf[IMAP_LOGIN_CMD_MAX];
	size_t seg_end[3]; /* segment i is buf[i ? seg_end[i-1] : 0 .. seg_end[i]] */
	unsigned int n_seg;
};

/* Builds "<tag> LOGIN user pass\r\n": with literal_plus as {n+} literals
 * (one segment); else as quoted strings when both values are 7-bit without
 * CR, LF or NUL (one segment); else as synchronizing literals (three).
 * user and pass are 1..IMAP_LOGIN_FIELD_MAX bytes without NUL. MF_OK or
 * MF_ERROR (bad lengths, NUL). Wipe cmd with explicit_bzero after use. */
int imap_login_build(const char *tag, const char *user, size_t user_len,
		     const char *pass, size_t pass_len, bool literal_plus,
		     struct imap_login_cmd *cmd);

#endif
