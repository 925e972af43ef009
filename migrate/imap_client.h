/* imap_client.h — a blocking IMAP client for the migration engine.
 *
 * One connection to one server: plaintext, STARTTLS or implicit TLS (with
 * certificate verification against a CA file or the system store, unless
 * insecure), LOGIN or AUTHENTICATE PLAIN (with an authzid for master-user
 * logins), capabilities tracked from every CAPABILITY response and code.
 * Every socket wait is bounded by the connection's timeout (poll for the
 * connect, SO_RCVTIMEO/SO_SNDTIMEO after), so a dead server is an error,
 * never a hang. Not thread-safe: one thread per connection.
 *
 * Responses are read whole with imap_read(): tokens (imap_resp.h) become
 * items in conn-owned memory valid until the next read. A literal is
 * either collected inline (small: names, headers) or, when the caller's
 * sink asks for it, streamed through the sink in the chunks the socket
 * brought (message bodies), so memory stays bounded whatever the size.
 *
 * Passwords are only ever in the caller's buffer and in a command buffer
 * that is wiped as soon as it is sent; they are never logged, and no
 * error text contains them. */
#ifndef MF_IMAP_CLIENT_H
#define MF_IMAP_CLIENT_H

#include "imap_resp.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMAP_INLINE_LITERAL_MAX (64 * 1024)
#define IMAP_ERR_MAX 512

enum imap_security {
	IMAP_SEC_PLAIN = 0, /* imap:// */
	IMAP_SEC_STARTTLS,  /* imap+starttls:// */
	IMAP_SEC_TLS        /* imaps:// */
};

struct imap_url {
	enum imap_security sec;
	bool pop3;          /* pop3://, pop3s://, pop3+stls:// (pop3_client.h) */
	char host[256];
	char port[8];
};

/* "imap://host[:port]", "imaps://...", "imap+starttls://..."; IPv6 as
 * "[2001:db8::1]:143". Default ports 143 and 993. Also the POP3 sources'
 * "pop3://", "pop3s://", "pop3+stls://" (pop3 set; ports 110 and 995).
 * MF_OK or MF_ERROR. */
int imap_url_parse(const char *text, struct imap_url *u_r, char *err, size_t errlen);

enum imap_cap {
	IMAP_CAP_LITERAL_PLUS = 1u << 0,
	IMAP_CAP_LITERAL_MINUS = 1u << 1,
	IMAP_CAP_UIDPLUS = 1u << 2,
	IMAP_CAP_MULTIAPPEND = 1u << 3,
	IMAP_CAP_SPECIAL_USE = 1u << 4,
	IMAP_CAP_LIST_EXTENDED = 1u << 5,
	IMAP_CAP_CONDSTORE = 1u << 6,
	IMAP_CAP_STARTTLS = 1u << 7,
	IMAP_CAP_LOGINDISABLED = 1u << 8,
	IMAP_CAP_AUTH_PLAIN = 1u << 9,
	IMAP_CAP_SASL_IR = 1u << 10,
	IMAP_CAP_IMAP4REV1 = 1u << 11,
	IMAP_CAP_BINARY = 1u << 12
};

struct imap_client_opts {
	const char *name;      /* "source", "destination": for errors */
	const char *ca_file;   /* NULL: the system's store */
	bool insecure;         /* skip certificate verification */
	/* The name the certificate must carry (and SNI); NULL: the URL's host
	 * (an address is checked against the certificate's IP entries). */
	const char *verify_name;
	/* Set to true (never cleared) when the server sheds load: it closes
	 * or resets the connection, says BYE, or answers with [LIMIT],
	 * [UNAVAILABLE] or [INUSE]; the caller may come back later. NULL: not
	 * wanted. */
	bool *busy_r;
	int timeout_ms;        /* every wait; 0: 60 s */
	size_t line_max;       /* response line bound; 0: default */
	uint64_t literal_max;  /* largest literal accepted; 0: 1 GiB */
};

/* One item of a response: a token, with literal data collected inline or
 * (type IMAP_TOK_LITERAL, streamed true) handed to the sink. */
struct imap_item {
	enum imap_tok_type type; /* never START, END, LITERAL_DATA/_END */
	unsigned int depth;
	const char *s;           /* NUL-terminated copy ("" for lists) */
	size_t len;
	bool streamed;           /* literal sent to the sink; s is "" */
	uint64_t lit_size;
};

struct imap_response {
	enum imap_resp_kind kind;
	char tag[IMAP_RESP_TAG_MAX + 1];
	size_t n;
	struct imap_item *items; /* items[0] is the status word or number */
};

/* A consumer of streamed literals. begin() sees the response so far (the
 * item before the literal names it: "BODY[]") and returns 1 to take the
 * literal through data()/end(), 0 to have it collected inline (refused
 * above IMAP_INLINE_LITERAL_MAX), MF_ERROR to abort the connection. */
struct imap_sink {
	int (*begin)(void *arg, const struct imap_response *r, uint64_t size);
	int (*data)(void *arg, const uint8_t *p, size_t n);
	int (*end)(void *arg);
	void *arg;
};

struct imap_conn;

/* Connects, reads the greeting (PREAUTH is an error: we want to log in as
 * the user we were given), does STARTTLS or the TLS handshake as u says
 * and learns the capabilities. MF_OK or MF_ERROR with err. */
int imap_connect(const struct imap_url *u, const struct imap_client_opts *o,
		 struct imap_conn **c_r, char *err, size_t errlen);

/* The same over a connected plaintext socket the caller made (a scripted
 * server in tests, a socket handed over); fd is owned by the connection
 * from then on, closed on failure too. The timeout is not applied to it. */
int imap_attach_fd(int fd, const struct imap_client_opts *o, struct imap_conn **c_r,
		   char *err, size_t errlen);

/* Sends LOGOUT when the connection is still healthy, then closes. NULL ok. */
void imap_close(struct imap_conn *c);

/* Logs in as user, or as master on behalf of user when master is not NULL
 * (AUTHENTICATE PLAIN with authzid user, authcid master). Without a master,
 * AUTHENTICATE PLAIN when offered, else LOGIN. pass is not kept. The
 * server's refusal text is in err. */
int imap_login(struct imap_conn *c, const char *user, const char *master,
	       const char *pass, size_t pass_len, char *err, size_t errlen);

unsigned int imap_caps(const struct imap_conn *c);
bool imap_has(const struct imap_conn *c, enum imap_cap cap);

/* Starts a command: writes "<tag> " + the formatted text + CRLF. The tag
 * (fits in 16 bytes) goes to tag_r. Arguments that are strings must be
 * formatted with imap_quote(). */
int imap_cmd(struct imap_conn *c, char tag_r[16], char *err, size_t errlen,
	     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Writes raw bytes (a literal's data, a command's pieces). */
int imap_write(struct imap_conn *c, const void *buf, size_t len, char *err, size_t errlen);

/* Reads one whole response. sink may be NULL (every literal inline).
 * A sink that fails writes its reason into err itself (when err is not
 * empty it is left as is); the connection is then unusable.
 * *r_r is valid until the next read on c. An untagged BYE marks c closed
 * (and is returned). MF_OK or MF_ERROR (socket, TLS, protocol, sink). */
int imap_read(struct imap_conn *c, const struct imap_sink *sink,
	      const struct imap_response **r_r, char *err, size_t errlen);

/* Reads until the tagged response of tag, passing every untagged one to
 * fn (may be NULL). MF_OK for OK; MF_ERROR for NO/BAD (err gets the
 * server's text), for fn's MF_ERROR, or any failure. A tagged response
 * with another tag is an error. The tagged response is in *done_r if
 * not NULL. */
int imap_wait(struct imap_conn *c, const char *tag, const struct imap_sink *sink,
	      int (*fn)(void *arg, const struct imap_response *r), void *arg,
	      const struct imap_response **done_r, char *err, size_t errlen);

/* imap_cmd + imap_wait. */
int imap_simple(struct imap_conn *c, int (*fn)(void *arg, const struct imap_response *r),
		void *arg, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* An astring argument: quoted ("a\"b"), or a non-synchronizing literal
 * {n+}CRLF... when it must be and the server offers LITERAL+ (or LITERAL-
 * and n <= 4096). MF_ERROR when it would need a synchronizing literal or
 * does not fit in out. */
int imap_quote(const struct imap_conn *c, const char *s, size_t len, char *out,
	       size_t outlen);

/* Helpers over a response's items. */
bool imap_item_is(const struct imap_item *it, const char *word); /* atom, case-insens. */
bool imap_item_num(const struct imap_item *it, uint64_t *v_r);   /* atom of digits */
bool imap_item_string(const struct imap_item *it);               /* atom/quoted/inline literal */
/* The resp-text code of a tagged or status response: index of its name
 * atom (name NULL: whatever code it is), or -1. */
int imap_resp_code(const struct imap_response *r, const char *name);
/* The human text of a status response ("" if none). */
const char *imap_resp_text(const struct imap_response *r);

const char *imap_conn_name(const struct imap_conn *c);

#endif
