#include "syn_packet.h"
#include "mf.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define IPV4_MIN_HLEN 20
#define IPV6_HLEN 40
#define TCP_FLAGS_OFF 13
#define TCP_MIN_HLEN 20

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* TCP at off: ports and flags, and a data offset that at least covers
 * the fixed header (a shorter one is no TCP the kernel would accept). */
static int parse_tcp(const uint8_t *p, size_t len, size_t off,
		     struct syn_packet *pkt)
{
	if (off > len || len - off < TCP_FLAGS_OFF + 1)
		return MF_ERROR;
	if ((p[off + 12] >> 4) * 4 < TCP_MIN_HLEN)
		return MF_ERROR;
	pkt->sport = be16(p + off);
	pkt->dport = be16(p + off + 2);
	pkt->tcp_flags = p[off + TCP_FLAGS_OFF];
	return MF_OK;
}

static int parse_ipv4(const uint8_t *p, size_t len, struct syn_packet *pkt)
{
	size_t hlen;

	if (len < IPV4_MIN_HLEN)
		return MF_ERROR;
	hlen = (size_t)(p[0] & 0x0f) * 4;
	if (hlen < IPV4_MIN_HLEN || hlen > len)
		return MF_ERROR;
	/* The total length may exceed len (copy range), never the header. */
	if (be16(p + 2) < hlen)
		return MF_ERROR;
	if ((be16(p + 6) & 0x1fff) != 0) /* not the first fragment */
		return MF_ERROR;
	if (p[9] != IPPROTO_TCP)
		return MF_ERROR;
	pkt->family = AF_INET;
	memset(pkt->src, 0, 10);
	pkt->src[10] = pkt->src[11] = 0xff;
	memcpy(pkt->src + 12, p + 12, 4);
	memset(pkt->dst, 0, 10);
	pkt->dst[10] = pkt->dst[11] = 0xff;
	memcpy(pkt->dst + 12, p + 16, 4);
	return parse_tcp(p, len, hlen, pkt);
}

static int parse_ipv6(const uint8_t *p, size_t len, struct syn_packet *pkt)
{
	size_t off = IPV6_HLEN;
	uint8_t next;

	if (len < IPV6_HLEN)
		return MF_ERROR;
	next = p[6];
	for (int n = 0; next != IPPROTO_TCP; n++) {
		size_t ext;

		if (n == SYN_PACKET_MAX_EXT || off > len || len - off < 8)
			return MF_ERROR;
		switch (next) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			ext = ((size_t)p[off + 1] + 1) * 8;
			break;
		case IPPROTO_FRAGMENT:
			if ((be16(p + off + 2) & 0xfff8) != 0)
				return MF_ERROR; /* not the first fragment */
			ext = 8;
			break;
		default:
			return MF_ERROR;
		}
		next = p[off];
		off += ext; /* checked against len at the top or in parse_tcp */
	}
	pkt->family = AF_INET6;
	memcpy(pkt->src, p + 8, 16);
	memcpy(pkt->dst, p + 24, 16);
	return parse_tcp(p, len, off, pkt);
}

int syn_packet_parse(const uint8_t *p, size_t len, struct syn_packet *pkt_r)
{
	memset(pkt_r, 0, sizeof(*pkt_r));
	if (p == NULL || len == 0)
		return MF_ERROR;
	switch (p[0] >> 4) {
	case 4:
		return parse_ipv4(p, len, pkt_r);
	case 6:
		return parse_ipv6(p, len, pkt_r);
	default:
		return MF_ERROR;
	}
}
