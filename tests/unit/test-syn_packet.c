/* Unit tests: gateway/syn_packet.c and gateway/syn_limit.c — the SYN
 * gate's parser on real and hostile packets (every truncation, every
 * single-byte corruption, IPv6 extension headers, fragments) and the
 * per-client token buckets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mf.h"
#include "syn_limit.h"
#include "syn_packet.h"

/* 198.18.1.2:40000 -> 198.18.11.2:143, SYN, with 4 bytes of IP options
 * (ihl 6) so the TCP offset is not the usual 20. */
static const uint8_t syn4[] = {
	0x46, 0x00, 0x00, 0x30, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00,
	198, 18, 1, 2, 198, 18, 11, 2,
	0x01, 0x01, 0x01, 0x00, /* options: NOP NOP NOP EOL */
	0x9c, 0x40, 0x00, 0x8f, 0, 0, 0, 1, 0, 0, 0, 0,
	0x50, 0x02, 0xfa, 0xf0, 0, 0, 0, 0,
};

/* 2001:db8:1::2:40001 -> 2001:db8:11::2:993, SYN, behind a hop-by-hop
 * header (8 bytes) and a first-fragment header. */
static const uint8_t syn6[] = {
	0x60, 0, 0, 0, 0, 36, 0 /* hop-by-hop */, 64,
	0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
	0x20, 0x01, 0x0d, 0xb8, 0, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
	44 /* fragment */, 0, 1, 4, 0, 0, 0, 0,
	6 /* tcp */, 0, 0x00, 0x01 /* offset 0, more */, 0, 0, 0, 7,
	0x9c, 0x41, 0x03, 0xe1, 0, 0, 0, 1, 0, 0, 0, 0,
	0x50, 0x02, 0xfa, 0xf0, 0, 0, 0, 0,
};

static void ipv4_with_options(void **state)
{
	struct syn_packet p;
	static const uint8_t src[16] = { [10] = 0xff, [11] = 0xff, 198, 18, 1, 2 };
	static const uint8_t dst[16] = { [10] = 0xff, [11] = 0xff, 198, 18, 11, 2 };

	(void)state;
	assert_int_equal(syn_packet_parse(syn4, sizeof(syn4), &p), MF_OK);
	assert_int_equal(p.family, AF_INET);
	assert_memory_equal(p.src, src, 16);
	assert_memory_equal(p.dst, dst, 16);
	assert_int_equal(p.sport, 40000);
	assert_int_equal(p.dport, 143);
	assert_int_equal(p.tcp_flags, 0x02);
}

static void ipv6_with_extension_headers(void **state)
{
	struct syn_packet p;

	(void)state;
	assert_int_equal(syn_packet_parse(syn6, sizeof(syn6), &p), MF_OK);
	assert_int_equal(p.family, AF_INET6);
	assert_memory_equal(p.src, syn6 + 8, 16);
	assert_memory_equal(p.dst, syn6 + 24, 16);
	assert_int_equal(p.sport, 40001);
	assert_int_equal(p.dport, 993);
	assert_int_equal(p.tcp_flags, 0x02);
}

/* Every prefix shorter than "through the TCP flags" is refused, each in a
 * buffer of exactly its own size (ASan catches a read one byte over). */
static void every_truncation_is_refused(void **state)
{
	const struct { const uint8_t *p; size_t len, need; } cases[] = {
		{ syn4, sizeof(syn4), 24 + 14 },
		{ syn6, sizeof(syn6), 56 + 14 },
	};
	struct syn_packet p;

	(void)state;
	for (size_t c = 0; c < MF_ARRAY_LEN(cases); c++) {
		for (size_t n = 0; n <= cases[c].len; n++) {
			uint8_t *copy = malloc(n ? n : 1);

			assert_non_null(copy);
			memcpy(copy, cases[c].p, n);
			assert_int_equal(syn_packet_parse(n ? copy : NULL, n, &p),
					 n >= cases[c].need ? MF_OK : MF_ERROR);
			free(copy);
		}
	}
}

static int parse_modified(const uint8_t *orig, size_t len, size_t at, uint8_t v)
{
	uint8_t *copy = malloc(len);
	struct syn_packet p;
	int rc;

	assert_non_null(copy);
	memcpy(copy, orig, len);
	copy[at] = v;
	rc = syn_packet_parse(copy, len, &p);
	free(copy);
	return rc;
}

static void hostile_fields_are_refused(void **state)
{
	(void)state;
	/* IPv4: version, ihl below 5 or past the buffer, total length below
	 * the header, a later fragment, not TCP, a TCP data offset < 5. */
	assert_int_equal(parse_modified(syn4, sizeof(syn4), 0, 0x56), MF_ERROR);
	assert_int_equal(parse_modified(syn4, sizeof(syn4), 0, 0x44), MF_ERROR);
	assert_int_equal(parse_modified(syn4, sizeof(syn4), 0, 0x4f), MF_ERROR);
	assert_int_equal(parse_modified(syn4, sizeof(syn4), 3, 0x10), MF_ERROR);
	assert_int_equal(parse_modified(syn4, sizeof(syn4), 7, 0x01), MF_ERROR);
	assert_int_equal(parse_modified(syn4, sizeof(syn4), 9, 17), MF_ERROR);
	assert_int_equal(parse_modified(syn4, sizeof(syn4), 24 + 12, 0x40), MF_ERROR);
	/* IPv6: a later fragment, an unknown next header, a hop-by-hop
	 * length pointing past the end. */
	assert_int_equal(parse_modified(syn6, sizeof(syn6), 50, 0x08), MF_ERROR);
	assert_int_equal(parse_modified(syn6, sizeof(syn6), 6, 17), MF_ERROR);
	assert_int_equal(parse_modified(syn6, sizeof(syn6), 41, 200), MF_ERROR);
}

/* Every byte of both packets set to every value: never a crash or an
 * overread (ASan build), and the answer always one of the two. */
static void every_byte_every_value(void **state)
{
	const struct { const uint8_t *p; size_t len; } cases[] = {
		{ syn4, sizeof(syn4) }, { syn6, sizeof(syn6) },
	};

	(void)state;
	for (size_t c = 0; c < MF_ARRAY_LEN(cases); c++)
		for (size_t at = 0; at < cases[c].len; at++)
			for (unsigned int v = 0; v < 256; v++) {
				int rc = parse_modified(cases[c].p, cases[c].len,
							at, (uint8_t)v);

				assert_true(rc == MF_OK || rc == MF_ERROR);
			}
}

/* A chain of hop-by-hop headers longer than the limit is refused even
 * when every header fits in the buffer. */
static void too_many_extension_headers(void **state)
{
	uint8_t pkt[40 + 8 * (SYN_PACKET_MAX_EXT + 1) + 20];
	struct syn_packet p;

	(void)state;
	memset(pkt, 0, sizeof(pkt));
	pkt[0] = 0x60;
	pkt[6] = IPPROTO_DSTOPTS;
	for (int i = 0; i <= SYN_PACKET_MAX_EXT; i++)
		pkt[40 + 8 * i] = i == SYN_PACKET_MAX_EXT ? IPPROTO_TCP : IPPROTO_DSTOPTS;
	pkt[40 + 8 * (SYN_PACKET_MAX_EXT + 1) + 12] = 0x50;
	assert_int_equal(syn_packet_parse(pkt, sizeof(pkt), &p), MF_ERROR);
}

static const uint8_t addr_a[16] = { [10] = 0xff, [11] = 0xff, 198, 18, 1, 2 };
static const uint8_t addr_b[16] = { [10] = 0xff, [11] = 0xff, 198, 18, 1, 3 };

static void buckets_burst_then_rate(void **state)
{
	struct syn_limit t;
	unsigned int ok = 0;

	(void)state;
	assert_int_equal(syn_limit_init(&t, 64, 42), MF_OK);
	/* Burst of 10 at 5/s: 10 at once, then one per 200 ms. */
	for (int i = 0; i < 50; i++)
		ok += syn_limit_take(&t, addr_a, 1000, 5, 10);
	assert_int_equal(ok, 10);
	/* Another address is not affected. */
	for (int i = 0; i < 10; i++)
		assert_true(syn_limit_take(&t, addr_b, 1000, 5, 10));
	assert_false(syn_limit_take(&t, addr_a, 1199, 5, 10));
	assert_true(syn_limit_take(&t, addr_a, 1200, 5, 10));
	assert_false(syn_limit_take(&t, addr_a, 1200, 5, 10));
	/* Idle for an hour: full again, never more than the burst. */
	ok = 0;
	for (int i = 0; i < 50; i++)
		ok += syn_limit_take(&t, addr_a, 3601200, 5, 10);
	assert_int_equal(ok, 10);
	/* rate 0: no limit. */
	for (int i = 0; i < 1000; i++)
		assert_true(syn_limit_take(&t, addr_a, 3601200, 0, 10));
	syn_limit_destroy(&t);
}

/* Far more addresses than slots: the table never grows, and an address
 * that keeps sending keeps its (empty) bucket against a flood of others
 * only while it is not the stalest — what it can gain is one burst. */
static void table_is_bounded(void **state)
{
	struct syn_limit t;
	uint8_t a[16];

	(void)state;
	assert_int_equal(syn_limit_init(&t, 10, 7), MF_OK);
	assert_int_equal(t.cap, 16);
	memset(a, 0, sizeof(a));
	for (uint32_t i = 0; i < 100000; i++) {
		memcpy(a, &i, sizeof(i));
		assert_true(syn_limit_take(&t, a, 5000 + i, 1, 1));
	}
	assert_int_equal(t.cap, 16);
	syn_limit_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ipv4_with_options),
		cmocka_unit_test(ipv6_with_extension_headers),
		cmocka_unit_test(every_truncation_is_refused),
		cmocka_unit_test(hostile_fields_are_refused),
		cmocka_unit_test(every_byte_every_value),
		cmocka_unit_test(too_many_extension_headers),
		cmocka_unit_test(buckets_burst_then_rate),
		cmocka_unit_test(table_is_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
