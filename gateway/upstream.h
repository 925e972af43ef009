/* upstream.h — the gateway's leg towards the original destination.
 *
 * With MF_UPSTREAM_CLIENT the socket is bound to the client's own address
 * (IP_TRANSPARENT), so the mail server's logs and anti-abuse see the real
 * client. IP_BIND_ADDRESS_NO_PORT defers the port choice to connect(), where
 * the kernel picks a port unique for the full 4-tuple instead of reserving
 * one per address at bind time. The socket is non-blocking from the start:
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
