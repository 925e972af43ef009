/* front_tls.h — TLS under the pre-auth front ends' two legs.
 *
 * front_io.c asks for a logical RECV (plaintext into a buffer) or SEND
 * (plaintext out) on a leg; when that leg has a TLS connection (s->tls[leg])
 * these functions turn the request into RECVs and SENDs of ciphertext
 * through a stage buffer, run a pending handshake first, send whatever
 * OpenSSL has to say (alerts, tickets) before reading, and finally report
 * the request's result through front_io_deliver() with what a plaintext op
 * would have returned. One raw op per leg is in flight at a time, like the
 * plaintext front end. */
#ifndef MF_FRONT_TLS_H
#define MF_FRONT_TLS_H

#include <stddef.h>
#include <stdint.h>

struct session;

#define FRONT_TLS_STAGE 17408 /* a full TLS record with its header */

enum front_tls_raw { FTR_NONE = 0, FTR_RECV, FTR_SEND };
enum front_tls_req { FTQ_NONE = 0, FTQ_RECV, FTQ_SEND };

/* Gives leg a TLS connection (server side for the client leg, verifying
 * client side for the upstream leg) whose handshake runs before the next
 * request. MF_OK or MF_ERROR (no memory, no certificate). */
int front_tls_start(struct session *s, unsigned int leg);

/* A logical RECV of up to cap plaintext bytes into dst. */
void front_tls_recv(struct session *s, unsigned int leg, uint8_t *dst, size_t cap);

/* A logical SEND of len plaintext bytes; src must live until delivered. */
void front_tls_send(struct session *s, unsigned int leg, const uint8_t *src, size_t len);

/* A raw op of this leg completed. */
void front_tls_on_raw(struct session *s, unsigned int leg, int res);

/* Drops leg's stage buffer and state (not the connection). */
void front_tls_leg_free(struct session *s, unsigned int leg);

#endif
