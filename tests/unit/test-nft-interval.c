/* test-nft-interval.c — client subnets <-> interval-set elements. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mf.h"
#include "netaddr.h"
#include "nft_interval.h"

#include <stdio.h>
#include <string.h>

static struct mf_cidr cidr(const char *text)
{
	struct mf_cidr c;

	assert_int_equal(mf_cidr_parse(text, &c), MF_OK);
	return c;
}

static struct nft_interval_elem elem(const char *addr, bool end)
{
	struct nft_interval_elem e;

	assert_int_equal(mf_addr_parse(addr, &e.key), MF_OK);
	e.end = end;
	return e;
}

static void assert_addr(const struct mf_addr *a, const char *want)
{
	char buf[MF_ADDRSTRLEN];

	mf_addr_format(a, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

static void from_cidr_has_start_and_end(void **state)
{
	struct nft_interval_elem e[2];
	struct mf_cidr c = cidr("198.18.1.0/24");

	(void)state;
	assert_int_equal(nft_interval_from_cidr(&c, e), 2);
	assert_addr(&e[0].key, "198.18.1.0");
	assert_false(e[0].end);
	assert_addr(&e[1].key, "198.18.2.0");
	assert_true(e[1].end);

	c = cidr("10.1.2.3");
	assert_int_equal(nft_interval_from_cidr(&c, e), 2);
	assert_addr(&e[1].key, "10.1.2.4");

	c = cidr("10.255.255.255/32");
	assert_int_equal(nft_interval_from_cidr(&c, e), 2);
	assert_addr(&e[1].key, "11.0.0.0");

	c = cidr("2001:db8:1::/64");
	assert_int_equal(nft_interval_from_cidr(&c, e), 2);
	assert_addr(&e[0].key, "2001:db8:1::");
	assert_addr(&e[1].key, "2001:db8:1:1::");
}

static void from_cidr_at_the_top_has_no_end(void **state)
{
	static const char *const tops[] = {
		"0.0.0.0/0", "255.0.0.0/8", "255.255.255.255/32", "128.0.0.0/1",
		"::/0", "ffff::/16", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	};
	struct nft_interval_elem e[2];

	(void)state;
	for (size_t i = 0; i < MF_ARRAY_LEN(tops); i++) {
		struct mf_cidr c = cidr(tops[i]);

		assert_int_equal(nft_interval_from_cidr(&c, e), 1);
		assert_true(mf_addr_equal(&e[0].key, &c.addr));
		assert_false(e[0].end);
	}
}

/* Collects the callback's subnets as "a b c". */
struct collect {
	char text[1024];
	int stop_after; /* 0: never */
	int calls;
};

static int collect_cb(const struct mf_cidr *c, void *data)
{
	struct collect *col = data;
	char buf[MF_ADDRSTRLEN];
	size_t used = strlen(col->text);

	mf_cidr_format(c, buf, sizeof(buf));
	snprintf(col->text + used, sizeof(col->text) - used, "%s%s",
		 used ? " " : "", buf);
	col->calls++;
	if (col->stop_after != 0 && col->calls >= col->stop_after)
		return MF_AGAIN;
	return MF_OK;
}

static const char *rebuild(struct nft_interval_elem *e, size_t n,
			   struct collect *col)
{
	memset(col, 0, sizeof(*col));
	assert_int_equal(nft_interval_to_cidrs(e, n, collect_cb, col), MF_OK);
	return col->text;
}

static void round_trip_any_order(void **state)
{
	static const char *const subnets[] = {
		"198.18.2.0/24", "10.0.0.0/8", "11.0.0.128/25", "11.0.0.0/25",
		"255.0.0.0/8", "192.0.2.7/32",
	};
	struct nft_interval_elem e[16], rev[16];
	struct collect col;
	size_t n = 0;

	(void)state;
	for (size_t i = 0; i < MF_ARRAY_LEN(subnets); i++) {
		struct mf_cidr c = cidr(subnets[i]);

		n += nft_interval_from_cidr(&c, &e[n]);
	}
	/* The kernel dumps its tree in descending order. */
	for (size_t i = 0; i < n; i++)
		rev[i] = e[n - 1 - i];
	assert_string_equal(rebuild(e, n, &col),
			    "10.0.0.0/8 11.0.0.0/25 11.0.0.128/25 192.0.2.7/32 "
			    "198.18.2.0/24 255.0.0.0/8");
	assert_string_equal(rebuild(rev, n, &col),
			    "10.0.0.0/8 11.0.0.0/25 11.0.0.128/25 192.0.2.7/32 "
			    "198.18.2.0/24 255.0.0.0/8");
}

static void round_trip_ipv6(void **state)
{
	struct nft_interval_elem e[4];
	struct mf_cidr a = cidr("2001:db8:1::/64"), b = cidr("ffff::/16");
	struct collect col;
	size_t n;

	(void)state;
	n = nft_interval_from_cidr(&b, e);
	n += nft_interval_from_cidr(&a, &e[n]);
	assert_int_equal(n, 3);
	assert_string_equal(rebuild(e, n, &col), "2001:db8:1::/64 ffff::/16");
}

static void whole_space(void **state)
{
	struct nft_interval_elem e4 = elem("0.0.0.0", false);
	struct nft_interval_elem e6 = elem("::", false);
	struct collect col;

	(void)state;
	assert_string_equal(rebuild(&e4, 1, &col), "0.0.0.0/0");
	assert_string_equal(rebuild(&e6, 1, &col), "::/0");
}

static void nft_zero_end_marker_is_skipped(void **state)
{
	/* What `nft -f` leaves in the set: a lone end at address 0. */
	struct nft_interval_elem e[] = {
		elem("198.18.2.0", true), elem("198.18.1.0", false),
		elem("0.0.0.0", true),
	};
	struct collect col;

	(void)state;
	assert_string_equal(rebuild(e, MF_ARRAY_LEN(e), &col), "198.18.1.0/24");
}

static void empty_and_lone_end(void **state)
{
	struct nft_interval_elem e = elem("10.0.0.0", true);
	struct collect col;

	(void)state;
	assert_string_equal(rebuild(NULL, 0, &col), "");
	assert_string_equal(rebuild(&e, 1, &col), "");
}

static void ranges_become_fewest_prefixes(void **state)
{
	/* 10.0.0.1 - 10.0.0.6, as `nft add element ... { 10.0.0.1-10.0.0.6 }` */
	struct nft_interval_elem odd[] = {
		elem("10.0.0.1", false), elem("10.0.0.7", true),
	};
	/* 10.0.0.0 to the top of the space. */
	struct nft_interval_elem top = elem("10.0.0.0", false);
	/* 2001:db8::1 - 2001:db8::2 */
	struct nft_interval_elem v6[] = {
		elem("2001:db8::3", true), elem("2001:db8::1", false),
	};
	struct collect col;

	(void)state;
	assert_string_equal(rebuild(odd, 2, &col),
			    "10.0.0.1/32 10.0.0.2/31 10.0.0.4/31 10.0.0.6/32");
	assert_string_equal(rebuild(&top, 1, &col),
			    "10.0.0.0/7 12.0.0.0/6 16.0.0.0/4 32.0.0.0/3 "
			    "64.0.0.0/2 128.0.0.0/1");
	assert_string_equal(rebuild(v6, 2, &col), "2001:db8::1/128 2001:db8::2/128");
}

static void start_without_end_is_closed_by_next_start(void **state)
{
	struct nft_interval_elem e[] = {
		elem("10.0.0.0", false), elem("10.0.0.4", false),
		elem("10.0.0.8", true),
	};
	struct collect col;

	(void)state;
	assert_string_equal(rebuild(e, 3, &col), "10.0.0.0/30 10.0.0.4/30");
}

static void callback_result_stops_the_walk(void **state)
{
	struct nft_interval_elem e[4];
	struct mf_cidr a = cidr("10.0.0.0/8"), b = cidr("11.0.0.0/8");
	struct collect col = { .stop_after = 1 };
	size_t n;

	(void)state;
	n = nft_interval_from_cidr(&a, e);
	n += nft_interval_from_cidr(&b, &e[n]);
	assert_int_equal(nft_interval_to_cidrs(e, n, collect_cb, &col), MF_AGAIN);
	assert_int_equal(col.calls, 1);
	assert_string_equal(col.text, "10.0.0.0/8");
}

static void overlap(void **state)
{
	static const struct {
		const char *a, *b;
		enum nft_overlap want;
	} cases[] = {
		{ "198.18.1.0/24", "198.18.1.0/24", NFT_SAME },
		{ "198.18.1.0/24", "198.18.0.0/16", NFT_OVERLAP },
		{ "198.18.0.0/16", "198.18.1.0/25", NFT_OVERLAP },
		{ "198.18.1.0/24", "198.18.2.0/24", NFT_DISJOINT },
		{ "11.0.0.0/25", "11.0.0.128/25", NFT_DISJOINT },
		{ "0.0.0.0/0", "203.0.113.9", NFT_OVERLAP },
		{ "0.0.0.0/0", "0.0.0.0/0", NFT_SAME },
		{ "0.0.0.0/0", "::/0", NFT_DISJOINT },
		{ "::/0", "2001:db8::/32", NFT_OVERLAP },
		{ "2001:db8:1::/64", "2001:db8:2::/64", NFT_DISJOINT },
		{ "10.0.0.0/8", "10.0.0.0/9", NFT_OVERLAP },
	};

	(void)state;
	for (size_t i = 0; i < MF_ARRAY_LEN(cases); i++) {
		struct mf_cidr a = cidr(cases[i].a), b = cidr(cases[i].b);

		assert_int_equal(nft_interval_overlap(&a, &b), cases[i].want);
		assert_int_equal(nft_interval_overlap(&b, &a), cases[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(from_cidr_has_start_and_end),
		cmocka_unit_test(from_cidr_at_the_top_has_no_end),
		cmocka_unit_test(round_trip_any_order),
		cmocka_unit_test(round_trip_ipv6),
		cmocka_unit_test(whole_space),
		cmocka_unit_test(nft_zero_end_marker_is_skipped),
		cmocka_unit_test(empty_and_lone_end),
		cmocka_unit_test(ranges_become_fewest_prefixes),
		cmocka_unit_test(start_without_end_is_closed_by_next_start),
		cmocka_unit_test(callback_result_stops_the_walk),
		cmocka_unit_test(overlap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
