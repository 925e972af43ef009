#include "netaddr.h"
#include "mf.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mf_addr_parse(const char *text, struct mf_addr *a_r)
{
	memset(a_r, 0, sizeof(*a_r));
	if (inet_pton(AF_INET, text, &a_r->u.v4) == 1) {
		a_r->family = AF_INET;
		return MF_OK;
	}
	if (inet_pton(AF_INET6, text, &a_r->u.v6) == 1) {
		a_r->family = AF_INET6;
		return MF_OK;
	}
	return MF_ERROR;
}

size_t mf_addr_len(const struct mf_addr *a)
{
	return a->family == AF_INET ? 4 : 16;
}

bool mf_addr_equal(const struct mf_addr *a, const struct mf_addr *b)
{
	return a->family == b->family &&
	       memcmp(a->u.bytes, b->u.bytes, mf_addr_len(a)) == 0;
}

static bool host_bits_zero(const struct mf_addr *a, unsigned int prefix)
{
	size_t len = mf_addr_len(a);

	for (size_t i = 0; i < len; i++) {
		unsigned int first = (unsigned int)i * 8;
		uint8_t mask;

		if (first + 8 <= prefix)
			continue;
		mask = first >= prefix ? 0xff : (uint8_t)(0xffu >> (prefix - first));
		if (a->u.bytes[i] & mask)
			return false;
	}
	return true;
}

int mf_cidr_parse(const char *text, struct mf_cidr *c_r)
{
	char buf[MF_ADDRSTRLEN];
	const char *slash = strchr(text, '/');
	size_t alen = slash ? (size_t)(slash - text) : strlen(text);
	unsigned int max;

	if (alen == 0 || alen >= sizeof(buf))
		return MF_ERROR;
	memcpy(buf, text, alen);
	buf[alen] = '\0';
	if (mf_addr_parse(buf, &c_r->addr) != MF_OK)
		return MF_ERROR;
	max = c_r->addr.family == AF_INET ? 32 : 128;
	if (slash == NULL) {
		c_r->prefix = max;
		return MF_OK;
	}
	{
		const char *p = slash + 1;
		char *end;
		unsigned long v;

		if (*p < '0' || *p > '9')
			return MF_ERROR;
		v = strtoul(p, &end, 10);
		if (*end != '\0' || v > max)
			return MF_ERROR;
		c_r->prefix = (unsigned int)v;
	}
	return host_bits_zero(&c_r->addr, c_r->prefix) ? MF_OK : MF_ERROR;
}

bool mf_cidr_contains(const struct mf_cidr *c, const struct mf_addr *a)
{
	unsigned int full = c->prefix / 8, rest = c->prefix % 8;

	if (a->family != c->addr.family)
		return false;
	if (memcmp(a->u.bytes, c->addr.u.bytes, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a->u.bytes[full] ^ c->addr.u.bytes[full]) &
		(uint8_t)(0xff00u >> rest)) == 0;
}

bool mf_cidr_end(const struct mf_cidr *c, struct mf_addr *end_r)
{
	size_t len = mf_addr_len(&c->addr);
	int i;

	*end_r = c->addr;
	/* Set the host bits, then add one with carry. */
	for (size_t b = 0; b < len; b++) {
		unsigned int first = (unsigned int)b * 8;

		if (first + 8 <= c->prefix)
			continue;
		end_r->u.bytes[b] |= first >= c->prefix ?
			0xff : (uint8_t)(0xffu >> (c->prefix - first));
	}
	for (i = (int)len - 1; i >= 0; i--) {
		if (++end_r->u.bytes[i] != 0)
			return true;
	}
	return false;
}

void mf_addr_format(const struct mf_addr *a, char *buf, size_t len)
{
	if (inet_ntop(a->family, a->u.bytes, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "?");
}

void mf_cidr_format(const struct mf_cidr *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	mf_addr_format(&c->addr, a, sizeof(a));
	snprintf(buf, len, "%s/%u", a, c->prefix);
}

void mf_sockaddr_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(s4->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], a, sizeof(a));
			snprintf(buf, len, "%s:%u", a, ntohs(s6->sin6_port));
		} else {
			inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
			snprintf(buf, len, "[%s]:%u", a, ntohs(s6->sin6_port));
		}
	} else {
		snprintf(buf, len, "?");
	}
}

void mf_sockaddr_format_ip(const struct sockaddr *sa, char *buf, size_t len)
{
	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf, (socklen_t)len);
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, buf, (socklen_t)len);
	} else {
		snprintf(buf, len, "?");
	}
}

unsigned int mf_sockaddr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

static uint64_t mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

uint32_t mf_addr_key_hash(const uint8_t key[16], uint64_t seed)
{
	uint64_t a, b;

	memcpy(&a, key, 8);
	memcpy(&b, key + 8, 8);
	return (uint32_t)mix64(mix64(a ^ seed) ^ b ^ (seed >> 1));
}
