/* syn_packet.h — the addresses, ports and flags of a queued SYN.
 *
 * The SYN gate gets each packet from the kernel as raw bytes starting at
 * the IP header, cut to the queue's copy range (only the headers are
 * copied). This parser reads IPv4 (with options) or IPv6 (walking the
 * hop-by-hop, routing, destination-options and fragment headers, at most
 * SYN_PACKET_MAX_EXT of them) up to the TCP flags, and trusts nothing:
 * every length is checked against len before it is used, so a truncated
 * or hostile buffer is MF_ERROR, never a read past its end. The kernel's
 * own checks make bad input unlikely here; the parser does not rely on
 * them. */
#ifndef MF_SYN_PACKET_H
#define MF_SYN_PACKET_H

#include <stddef.h>
#include <stdint.h>

#define SYN_PACKET_MAX_EXT 8

struct syn_packet {
	int family;       /* AF_INET or AF_INET6 */
	/* 16-byte form: IPv6 as is, IPv4 mapped (::ffff:a.b.c.d), the key
	 * of the per-client table whichever family the flow came in on. */
	uint8_t src[16], dst[16];
	uint16_t sport, dport; /* host order */
	uint8_t tcp_flags;     /* byte 13 of the TCP header */
};

/* MF_OK with *pkt_r filled when p[0..len) holds an IPv4 or IPv6 header
 * and TCP through its flags byte, in the first fragment; MF_ERROR for
 * anything else (other protocols, later fragments, truncation, bad
 * lengths or versions). */
int syn_packet_parse(const uint8_t *p, size_t len, struct syn_packet *pkt_r);

#endif
