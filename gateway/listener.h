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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A restart starts the new mailferryd beside the old one: both listen in
 * one SO_REUSEPORT group until the old one closes its listeners to drain.
 * With net.ipv4.tcp_migrate_req = 1 (this network namespace) the
 * connections still queued on the closed listeners, and handshakes in
 * progress, move to the successor's instead of being reset. MF_OK or
 * MF_ERROR with err (then a restart may reset a few queued clients). */
int listener_enable_migration(char *err, size_t errlen);

/* net.ipv4.ip_early_demux = 0 (this network namespace, IPv4 and IPv6).
 * Early demux hands an incoming packet to a local socket of its 4-tuple
 * before routing; a gateway that speaks with the client's own address and
 * port leaves TIME_WAIT sockets of such tuples behind, so for a minute a
 * client reusing the port for a flow that is not intercepted (its subnet
 * off, observe mode, the daemon stopped fail-open) would have its packets
 * swallowed by the router. Diverted flows do not need it: the rules mark
 * them and policy routing delivers them. MF_OK or MF_ERROR with err. */
int listener_disable_early_demux(char *err, size_t errlen);

/* Returns the listening fd, or MF_ERROR with err filled. transparent:
 * IP_TRANSPARENT (TPROXY); else an ordinary listener on a local address
 * (listen mode). */
int listener_open(const struct mf_addr *addr, uint16_t port, bool transparent, char *err,
		  size_t errlen);

#endif
