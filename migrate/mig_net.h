/* mig_net.h — the blocking connection under the migration's clients
 * (imap_client.c, pop3_client.c): TCP connect bounded by a timeout, then
 * SO_RCVTIMEO/SO_SNDTIMEO on every read and write; TLS (implicit or after
 * the protocol's STARTTLS/STLS) with the certificate verified against a CA
 * file or the system store and the configured name, or the address the
 * connection went to; "busy" reporting when the server drops the
 * connection under us. One thread per connection. */
#ifndef MF_MIG_NET_H
#define MF_MIG_NET_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mig_net {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	bool dead;              /* I/O failed or the protocol ended it */
	char name[32];          /* "source", "destination": for errors */
	char host[256];
	char verify_name[256];  /* "" : verify host */
	const char *ca_file;    /* NULL: the system's store */
	bool insecure;
	int timeout_ms;
	bool *busy_r;           /* the caller's: set when the server sheds load */
};

/* Fills n (no socket yet: fd -1). timeout_ms 0: 60 s. */
void mig_net_init(struct mig_net *n, const char *name, const char *host,
		  const char *verify_name, const char *ca_file, bool insecure, int timeout_ms,
		  bool *busy_r);

/* Marks n dead and writes "<name>: <text>" to err; returns MF_ERROR. */
int mig_net_err(struct mig_net *n, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* The server sheds load (tells *busy_r). */
void mig_net_busy(struct mig_net *n);

/* TCP to host:port (numeric port), bounded by the timeout. */
int mig_net_connect(struct mig_net *n, const char *host, const char *port, char *err,
		    size_t errlen);

/* The TLS handshake on the connected socket, verified unless insecure. */
int mig_net_tls(struct mig_net *n, char *err, size_t errlen);

/* Reads what is there (at least one byte) into buf: MF_OK with *got_r;
 * MF_ERROR on EOF, reset (both "busy"), timeout or failure. */
int mig_net_read(struct mig_net *n, uint8_t *buf, size_t cap, size_t *got_r, char *err,
		 size_t errlen);

/* Writes all of buf. */
int mig_net_write(struct mig_net *n, const void *buf, size_t len, char *err, size_t errlen);

/* Shorter receive timeout (the goodbye of a closing connection). */
void mig_net_rcvtimeo(struct mig_net *n, int ms);

/* TLS shutdown when still healthy, frees, closes the socket. */
void mig_net_close(struct mig_net *n);

#endif
