/* netaddr.h — IPv4/IPv6 addresses, CIDR prefixes and socket addresses.
 *
 * Parsers here read configuration and command-line text, never network
 * input; they are strict (no trailing garbage, host bits of a prefix must be
 * zero) so that what the admin typed is exactly what ends up in the kernel. */
#ifndef MF_NETADDR_H
#define MF_NETADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct mf_addr {
	int family; /* AF_INET or AF_INET6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
		uint8_t bytes[16];
	} u;
};

struct mf_cidr {
	struct mf_addr addr; /* network address, host bits zero */
	unsigned int prefix; /* 0..32 or 0..128 */
};

/* Longest text mf_addr_format / mf_cidr_format / mf_sockaddr_format write. */
#define MF_ADDRSTRLEN (INET6_ADDRSTRLEN + 8)

/* Returns MF_OK and fills *a_r, or MF_ERROR for anything but a plain
 * IPv4 dotted quad or IPv6 address. */
int mf_addr_parse(const char *text, struct mf_addr *a_r);

/* "198.18.1.0/24", "2001:db8::/32"; a bare address means a host prefix.
 * MF_ERROR if the prefix is out of range or host bits are set. */
int mf_cidr_parse(const char *text, struct mf_cidr *c_r);

size_t mf_addr_len(const struct mf_addr *a); /* 4 or 16 */
bool mf_addr_equal(const struct mf_addr *a, const struct mf_addr *b);
bool mf_cidr_contains(const struct mf_cidr *c, const struct mf_addr *a);

/* Last address of the prefix plus one, for nftables interval ends.
 * Returns false when the prefix reaches the top of the address space
 * (there is no "plus one"). */
bool mf_cidr_end(const struct mf_cidr *c, struct mf_addr *end_r);

void mf_addr_format(const struct mf_addr *a, char *buf, size_t len);
void mf_cidr_format(const struct mf_cidr *c, char *buf, size_t len);
/* "198.18.1.2:143" or "[2001:db8::2]:143"; an IPv4-mapped IPv6 address is
 * printed as IPv4. */
void mf_sockaddr_format(const struct sockaddr *sa, char *buf, size_t len);

/* A seeded hash of a 16-byte address key (IPv6, or IPv4-mapped) for the
 * per-address tables; the random seed keeps clients from choosing
 * collisions. */
uint32_t mf_addr_key_hash(const uint8_t key[16], uint64_t seed);

/* The address alone ("198.51.100.7", "2001:db8::1"), and the port. */
void mf_sockaddr_format_ip(const struct sockaddr *sa, char *buf, size_t len);
unsigned int mf_sockaddr_port(const struct sockaddr *sa);

#endif
