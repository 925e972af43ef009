/* pop3_client.h — a blocking POP3 client for POP3-only sources (RFC 1939,
 * RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH PLAIN).
 *
 * One connection: plaintext, STLS or implicit TLS through mig_net (same
 * verification and timeouts as the IMAP client); USER/PASS, or AUTH PLAIN
 * with an authorization identity for a master user. Responses are parsed
 * by pop3_resp.c, bounded; a message body is handed to the caller's sink
 * unstuffed, chunk by chunk, never held whole. Passwords are only in the
 * caller's buffer and in a command buffer wiped once sent. */
#ifndef MF_POP3_CLIENT_H
#define MF_POP3_CLIENT_H

#include "imap_client.h"
#include "pop3_resp.h"

#include <stddef.h>
#include <stdint.h>

struct pop3_conn;

struct pop3_msg {
	uint32_t n;                  /* message number in this session */
	char uidl[POP3_UIDL_MAX + 1];
};

/* Connects to u (u->pop3), reads the greeting, does STLS or TLS as u
 * says. o as for imap_connect (name, CA, verify_name, timeout, busy_r). */
int pop3_connect(const struct imap_url *u, const struct imap_client_opts *o,
		 struct pop3_conn **c_r, char *err, size_t errlen);

/* The same over a connected plaintext socket (tests); fd is owned. */
int pop3_attach_fd(int fd, const struct imap_client_opts *o, struct pop3_conn **c_r,
		   char *err, size_t errlen);

/* USER/PASS as user, or with master: AUTH PLAIN authzid=user
 * authcid=master. The server's refusal is in err. */
int pop3_login(struct pop3_conn *c, const char *user, const char *master, const char *pass,
	       size_t pass_len, char *err, size_t errlen);

/* UIDL of every message, in message-number order (malloc'd *v_r). A
 * server without UIDL is an error: a copy could not tell what it did. */
int pop3_uidl(struct pop3_conn *c, struct pop3_msg **v_r, size_t *n_r, char *err,
	      size_t errlen);

/* One LIST line: a message's number and size (as the server counts it:
 * with CRLF line ends, usually the bytes RETR gives). */
struct pop3_size {
	uint32_t n;
	uint64_t size;
};

/* LIST of every message, in the order the server lists them (malloc'd
 * *v_r; NULL when there are none). */
int pop3_list(struct pop3_conn *c, struct pop3_size **v_r, size_t *n_r, char *err,
	      size_t errlen);

/* RETR n: the message's bytes (unstuffed) go to data() in chunks; returns
 * data()'s MF_ERROR as is. */
int pop3_retr(struct pop3_conn *c, uint32_t n,
	      int (*data)(void *arg, const uint8_t *p, size_t len), void *arg, char *err,
	      size_t errlen);

/* QUIT when healthy (no message is deleted: nothing was marked), close. */
void pop3_close(struct pop3_conn *c);

#endif
