/* tls_pump.h — relaying a logged-in session when either leg speaks TLS.
 *
 * Splice cannot move bytes that OpenSSL must decrypt or encrypt, and this
 * kernel has no kTLS to hand the record layer to, so the pump moves them
 * through user space: per side one RECV (ciphertext into a stage buffer
 * for a TLS side, plaintext straight into the direction's buffer for a
 * plaintext side) and one SEND, each direction bounded by one plaintext
 * record plus a high-water mark on the ciphertext queued for its
 * destination. Half-close is passed on (close_notify then shutdown for a
 * TLS side), resets and TLS errors end the session. */
#ifndef MF_TLS_PUMP_H
#define MF_TLS_PUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct session;

struct tls_pump_op {
	struct session *s;
	uint8_t side;   /* 0: client leg, 1: upstream leg */
	uint8_t send;   /* 0: RECV, 1: SEND */
} __attribute__((aligned(16)));

/* Starts pumping s (both legs connected, front end freed). MF_OK, or
 * MF_ERROR without memory. */
int tls_pump_start(struct session *s);

/* A CQE of a pump op (also while closing: then it is only counted). */
void tls_pump_on_cqe(struct tls_pump_op *op, int res);

/* Sends line to the client now (through its TLS leg if it has one, with
 * a close_notify after it), when nothing the server sent is held or
 * queued towards the client; else false, nothing sent. The caller ends
 * the session right after. */
bool tls_pump_say(struct session *s, const char *line, size_t len);

void tls_pump_free(struct session *s);

#endif
