/* banner.h — what each source server says before login, so the front ends
 * can greet like it (the same greeting text, the same stance on plaintext
 * logins) while advertising only what they handle themselves.
 *
 * The daemon probes every source address on every IMAP and POP3 front-end
 * port at start and at each reload, in a thread of its own (a dead source
 * must not delay the start; until a probe answers, the front end uses its
 * own greeting). A probe reads the greeting, asks CAPABILITY / CAPA and
 * leaves with LOGOUT / QUIT. The result is an immutable, reference-counted
 * set that workers pick up like the TLS contexts.
 *
 * The line parsers are pure, bounded and fuzzed (tests/fuzz/fuzz-banner.c):
 * a source is network input like any other. */
#ifndef MF_BANNER_H
#define MF_BANNER_H

#include "config.h"
#include "session.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BANNER_TEXT_MAX 160

enum banner_proto { BP_IMAP = 0, BP_POP3 };

enum banner_cap {
	BC_IMAP4REV2 = 1u << 0,     /* IMAP: RFC 9051 offered */
	BC_LOGINDISABLED = 1u << 1, /* IMAP: no LOGIN before TLS */
	BC_STARTTLS = 1u << 2,      /* IMAP STARTTLS / POP3 STLS */
	BC_PLAIN_LOGIN = 1u << 3,   /* POP3: USER or SASL offered before TLS */
	BC_CAPS_SEEN = 1u << 4,     /* a capability list was read */
};

struct banner {
	union mf_sockaddr addr;     /* source address and the port probed */
	uint8_t proto;              /* enum banner_proto */
	bool ok;                    /* the probe got a greeting */
	uint32_t caps;              /* enum banner_cap */
	char text[BANNER_TEXT_MAX + 1]; /* greeting text, printable ASCII */
};

struct banner_set;

/* The pre-login conversation with a source as a pure state machine over
 * its lines (without CRLF): the greeting, then what CAPABILITY / CAPA
 * brought. After each line: read another, send the capability command
 * (BN_SEND_CAPS; then read), or stop — with the banner filled in (BN_DONE)
 * or with a line the protocol does not allow there (BN_FAIL; b->ok tells
 * whether the greeting at least was good). */
enum banner_next { BN_READ = 0, BN_SEND_CAPS, BN_DONE, BN_FAIL };

struct banner_reader {
	struct banner *b;
	uint8_t stage;
};

void banner_reader_init(struct banner_reader *r, struct banner *b, enum banner_proto proto);
enum banner_next banner_reader_line(struct banner_reader *r, const char *line, size_t len);

/* Probes one source: connect, greeting, capabilities, goodbye, each step
 * bounded by timeout_ms. b->ok says whether a greeting came. */
void banner_probe(struct banner *b, const union mf_sockaddr *addr, enum banner_proto proto,
		  unsigned int timeout_ms);

/* Probes every source on every front-end port of cfg. NULL without memory. */
struct banner_set *banner_set_probe(const struct mf_config *cfg, unsigned int timeout_ms);
void banner_set_ref(struct banner_set *set);
void banner_set_unref(struct banner_set *set);
unsigned int banner_set_count(const struct banner_set *set, unsigned int *ok_r);

/* The banner of the source at addr (port included) for proto, or NULL. */
const struct banner *banner_find(const struct banner_set *set, const union mf_sockaddr *addr,
				 enum banner_proto proto);

#endif
