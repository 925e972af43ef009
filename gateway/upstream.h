/* upstream.h — the gateway's leg towards the original destination.
 *
 * With MF_UPSTREAM_CLIENT the socket is bound to the client's own address
 * and port (IP_TRANSPARENT), so the mail server sees exactly the client's
 * socket, and the router needs no ephemeral port of its own: the client
 * already made the 4-tuple unique, and connect() has no port range to
 * search (that search dominated the gateway's CPU at high connection rates
 * once TIME_WAIT legs piled up). If that port is still held here by an
 * earlier leg, the kernel picks one (as MF_UPSTREAM_CLIENT_IP always does,
 * with IP_BIND_ADDRESS_NO_PORT deferring the choice to connect()). The socket is non-blocking from the start:
 * io_uring's connect waits for the handshake by itself, and the relay's
 * splices must never block an io-wq worker. */
#ifndef MF_UPSTREAM_H
#define MF_UPSTREAM_H

#include "config.h"

#include <sys/socket.h>

/* Returns the new socket fd, or MF_ERROR with errno set. */
int upstream_socket(const struct sockaddr *client, const struct sockaddr *orig_dst,
		    enum mf_upstream_source source);

/* After a successful connect: no Nagle. MF_OK or MF_ERROR. */
int upstream_connected(int fd);

/* Socket options every relayed socket gets. MF_OK or MF_ERROR. */
int relay_socket_tune(int fd);

#endif
