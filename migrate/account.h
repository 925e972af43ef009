/* account.h — account states, how each routes, and user-name normalisation.
 *
 * DESIGN.md's account-state table is the contract: this file is the only
 * place that turns a state into a routing decision, so the IMAP, POP3 and
 * SMTP front ends cannot disagree about where a user goes. */
#ifndef MF_ACCOUNT_H
#define MF_ACCOUNT_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

/* RFC 5321: 64 octets of local part, '@', 255 of domain. Longer names are
 * refused rather than truncated: two long names must never collide. */
#define ACCOUNT_NAME_MAX 320

/* Values are stable only in memory: the ledger stores the names below, so
 * reordering this enum never reinterprets data on disk. */
enum account_state {
	AS_UNSEEN = 0, /* never logged in through the gateway */
	AS_SEEN,       /* a login the source accepted was observed */
	AS_COPYING,    /* bulk copy to the destination running */
	AS_CUTOVER,    /* final delta sync: nobody may use the mailbox */
	AS_MIGRATED,   /* lives on the destination from now on */
	AS_FAILED,     /* copy failed; retried with back-off */
	AS_PINNED,     /* admin: never move */
	AS_FORCE,      /* admin: move now with master credentials */
	AS_ROLLBACK    /* admin: back to the source */
};
#define ACCOUNT_STATE_COUNT (AS_ROLLBACK + 1)

enum account_route {
	AR_SOURCE = 0,      /* old server */
	AR_DESTINATION,     /* new server */
	AR_UNAVAILABLE      /* try again shortly: NO [UNAVAILABLE], 451 4.2.0 */
};

/* "UNSEEN", "SEEN", ...; "?" for a value outside the enum. */
const char *account_state_name(enum account_state s);

/* Case-insensitive inverse of account_state_name: MF_OK and *s_r, or
 * MF_ERROR for anything else (including "" and "AS_SEEN"). */
int account_state_parse(const char *text, enum account_state *s_r);

/* Where a login (IMAP/POP3) or a recipient (SMTP RCPT) of an account in
 * state s goes, exactly per DESIGN.md: CUTOVER -> unavailable, MIGRATED ->
 * destination, every other state -> source. An out-of-range value routes to
 * the source (what the gateway does when it knows nothing). */
enum account_route account_state_route(enum account_state s);

/* "source", "destination", "unavailable". */
const char *account_route_name(enum account_route r);

/* Canonical ledger key for a login name as a client sent it.
 *
 * in/inlen: the name as parsed (it may point into a read buffer, so it
 * need not be NUL-terminated and may contain NULs, which are refused).
 * The whole name is lower-cased (ASCII only; bytes >= 0x80 are kept as
 * they are): Dovecot and most IMAP servers treat user names without regard
 * to case, so "Ann" and "ann" must be one account, not two migrations.
 * Refused: empty names, names longer than ACCOUNT_NAME_MAX, NUL, control
 * characters, DEL, space, more than one '@', an empty local part or domain.
 * Nothing is stripped: " ann" is an error, not "ann".
 * When the name has no '@', equivalence is true and default_domain is not
 * empty, "@default_domain" (lower-cased) is appended, so "ann" and
 * "ann@example.org" are one account; with equivalence false they stay two.
 *
 * Writes a NUL-terminated name to out and returns MF_OK, or MF_ERROR with
 * the reason in err (out is then ""). outlen of ACCOUNT_NAME_MAX + 1 always
 * suffices. */
int account_name_normalise(const char *in, size_t inlen,
			   const char *default_domain, bool equivalence,
			   char *out, size_t outlen, char *err, size_t errlen);

/* True when name (NUL-terminated) is already in normal form, i.e. it
 * normalises to itself with no domain added. The ledger accepts only such
 * names, so a caller that forgot to normalise fails loudly. */
bool account_name_is_normal(const char *name);

/* The back-off of failed copies: after n consecutive failures the next
 * attempt waits first_s * 2^(n-1) seconds, never more than max_s; first_s
 * 0 means never (only an admin's set-state retries). */
struct migrate_backoff {
	unsigned int first_s;
	unsigned int max_s;
};

unsigned int migrate_retry_delay(const struct migrate_backoff *b, unsigned int failures);

/* The FAILED reason the migration records: why, then
 * " (attempt N, next in D s)", cut to fit len (the suffix is kept). */
void migrate_failed_reason(char *out, size_t len, const char *why, unsigned int failures,
			   unsigned int delay_s);

/* The consecutive failures a FAILED reason records (its last
 * "(attempt N" ); 1 when it records none (a FAILED set by an admin). */
unsigned int migrate_failures(const char *reason);

/* A FAILED account (failures as migrate_failures() reads them, failed at
 * failed_at) may be copied again at now. */
bool migrate_retry_due(const struct migrate_backoff *b, unsigned int failures,
		       int64_t failed_at, int64_t now);

#endif
