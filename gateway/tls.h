/* tls.h — OpenSSL for the gateway: contexts loaded from [tls], and one TLS
 * connection driven through memory BIOs so that io_uring keeps doing every
 * socket read and write (OpenSSL never touches a file descriptor).
 *
 * A tls_conn is fed the ciphertext a RECV brought (tls_conn_feed), gives
 * plaintext (tls_conn_read), takes plaintext to protect (tls_conn_write)
 * and hands out the ciphertext to SEND (tls_conn_out_take). Handshakes,
 * alerts, session tickets and key updates all end up in that output, so a
 * caller that sends tls_conn_out_pending() bytes whenever there are some
 * never stalls the peer.
 *
 * The contexts are shared by all workers (OpenSSL's SSL_CTX is safe to use
 * from several threads) and reference counted: a reload swaps in new ones
 * while connections made from the old ones finish with them. */
#ifndef MF_TLS_H
#define MF_TLS_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* tls_conn_read()'s "the peer closed the TLS stream" (close_notify). */
#define TLS_EOF 1

/* A TLS record's plaintext: the unit the pump and the front ends read. */
#define TLS_RECORD_MAX 16384

struct tls_ctxs;
struct tls_conn;

/* Makes OpenSSL wipe every block it frees: decrypted records (a client's
 * LOGIN and password among them) must not survive in freed heap memory,
 * where a core dump would keep them. Call before anything else uses
 * OpenSSL; MF_ERROR when it is too late. */
int tls_init_wiping_allocator(void);

/* Loads certificates, keys and the backend CA from cfg. *ctxs_r is NULL
 * (and MF_OK) when cfg has no [tls] at all. MF_ERROR with err otherwise. */
int tls_ctxs_load(const struct mf_config *cfg, struct tls_ctxs **ctxs_r, char *err,
		  size_t errlen);
void tls_ctxs_ref(struct tls_ctxs *t);
void tls_ctxs_unref(struct tls_ctxs *t);

/* True when there is a certificate to offer clients. */
bool tls_ctxs_can_serve(const struct tls_ctxs *t);

/* A server-side connection (the gateway plays the source to a client);
 * SNI selects among the configured certificates. NULL on failure. */
struct tls_conn *tls_conn_server(struct tls_ctxs *t);

/* A client-side connection to a backend at addr, verified against the
 * backend CA and backend_name (or addr itself when no name is set). */
struct tls_conn *tls_conn_client(struct tls_ctxs *t, const struct sockaddr *addr);

void tls_conn_free(struct tls_conn *c);

/* Runs the handshake as far as the fed bytes allow: MF_OK once complete,
 * MF_AGAIN for more input (send the pending output first), MF_ERROR when
 * it failed (tls_conn_error() says why; pending output may hold an alert
 * worth sending). */
int tls_conn_handshake(struct tls_conn *c);

/* Ciphertext received from the peer. MF_ERROR only on allocation failure. */
int tls_conn_feed(struct tls_conn *c, const void *buf, size_t len);

/* Plaintext, up to cap bytes: MF_OK with *n_r > 0, MF_AGAIN when more
 * ciphertext is needed, TLS_EOF after the peer's close_notify, MF_ERROR. */
int tls_conn_read(struct tls_conn *c, void *buf, size_t cap, size_t *n_r);

/* Encrypts all of buf into the pending output. MF_OK or MF_ERROR. */
int tls_conn_write(struct tls_conn *c, const void *buf, size_t len);

/* Queues a close_notify. */
void tls_conn_close_notify(struct tls_conn *c);

size_t tls_conn_out_pending(const struct tls_conn *c);

/* Moves up to cap bytes of pending output into buf; returns how many. */
size_t tls_conn_out_take(struct tls_conn *c, void *buf, size_t cap);

/* Plaintext already decrypted inside OpenSSL or ciphertext fed but not
 * yet processed: a reader must call tls_conn_read() before waiting. */
bool tls_conn_has_input(const struct tls_conn *c);

/* Why the last handshake or read failed, for the log. */
const char *tls_conn_error(const struct tls_conn *c);

/* "TLSv1.3" etc., for the log; NULL before the handshake. */
const char *tls_conn_version(const struct tls_conn *c);

#endif
