/* listener.h — transparent TCP listeners for TPROXY-diverted flows.
 *
 * Each worker opens its own listener per family with SO_REUSEPORT, so the
 * kernel spreads new flows across workers and no accept lock exists.
 * IP_TRANSPARENT lets the socket accept connections addressed to the old
 * server (a non-local address); getsockname() of an accepted socket is then
 * the flow's original destination. */
#ifndef MF_LISTENER_H
#define MF_LISTENER_H

#include "netaddr.h"

#include <stddef.h>
#include <stdint.h>

/* Returns the listening fd, or MF_ERROR with err filled. */
int listener_open(const struct mf_addr *addr, uint16_t port, char *err,
		  size_t errlen);

#endif
