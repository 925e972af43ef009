/* Unit tests: lib/netaddr.c — address and CIDR parsing, interval ends. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "mf.h"
#include "netaddr.h"

static void test_addr_parse(void **state)
{
	struct mf_addr a;

	(void)state;
	assert_int_equal(mf_addr_parse("198.18.11.2", &a), MF_OK);
	assert_int_equal(a.family, AF_INET);
	assert_int_equal(mf_addr_parse("2001:db8::1", &a), MF_OK);
	assert_int_equal(a.family, AF_INET6);
	assert_int_equal(mf_addr_parse("198.18.11.2 ", &a), MF_ERROR);
	assert_int_equal(mf_addr_parse("", &a), MF_ERROR);
	assert_int_equal(mf_addr_parse("198.18.11", &a), MF_ERROR);
	assert_int_equal(mf_addr_parse("example.test", &a), MF_ERROR);
}

static void test_cidr_parse(void **state)
{
	struct mf_cidr c;
	char buf[MF_ADDRSTRLEN];

	(void)state;
	assert_int_equal(mf_cidr_parse("198.18.1.0/24", &c), MF_OK);
	assert_int_equal(c.prefix, 24);
	mf_cidr_format(&c, buf, sizeof(buf));
	assert_string_equal(buf, "198.18.1.0/24");
	assert_int_equal(mf_cidr_parse("198.18.1.7", &c), MF_OK);
	assert_int_equal(c.prefix, 32);
	assert_int_equal(mf_cidr_parse("2001:db8:1::/64", &c), MF_OK);
	assert_int_equal(c.prefix, 64);
	/* host bits set, out of range, garbage */
	assert_int_equal(mf_cidr_parse("198.18.1.1/24", &c), MF_ERROR);
	assert_int_equal(mf_cidr_parse("198.18.1.0/33", &c), MF_ERROR);
	assert_int_equal(mf_cidr_parse("2001:db8::/129", &c), MF_ERROR);
	assert_int_equal(mf_cidr_parse("198.18.1.0/", &c), MF_ERROR);
	assert_int_equal(mf_cidr_parse("198.18.1.0/-1", &c), MF_ERROR);
	assert_int_equal(mf_cidr_parse("198.18.1.0/24x", &c), MF_ERROR);
	assert_int_equal(mf_cidr_parse("/24", &c), MF_ERROR);
	assert_int_equal(mf_cidr_parse("2001:db8::1/127", &c), MF_ERROR);
	assert_int_equal(mf_cidr_parse("0.0.0.0/0", &c), MF_OK);
}

static void test_cidr_contains(void **state)
{
	struct mf_cidr c;
	struct mf_addr a;

	(void)state;
	assert_int_equal(mf_cidr_parse("198.18.0.0/15", &c), MF_OK);
	mf_addr_parse("198.19.255.255", &a);
	assert_true(mf_cidr_contains(&c, &a));
	mf_addr_parse("198.20.0.0", &a);
	assert_false(mf_cidr_contains(&c, &a));
	mf_addr_parse("2001:db8::1", &a);
	assert_false(mf_cidr_contains(&c, &a)); /* other family */
	assert_int_equal(mf_cidr_parse("0.0.0.0/0", &c), MF_OK);
	mf_addr_parse("198.18.1.1", &a);
	assert_true(mf_cidr_contains(&c, &a));
}

static void test_cidr_end(void **state)
{
	struct mf_cidr c;
	struct mf_addr end;
	char buf[MF_ADDRSTRLEN];

	(void)state;
	mf_cidr_parse("198.18.1.0/24", &c);
	assert_true(mf_cidr_end(&c, &end));
	mf_addr_format(&end, buf, sizeof(buf));
	assert_string_equal(buf, "198.18.2.0");
	mf_cidr_parse("198.18.1.255/32", &c);
	assert_true(mf_cidr_end(&c, &end));
	mf_addr_format(&end, buf, sizeof(buf));
	assert_string_equal(buf, "198.18.2.0");
	mf_cidr_parse("2001:db8:1::/64", &c);
	assert_true(mf_cidr_end(&c, &end));
	mf_addr_format(&end, buf, sizeof(buf));
	assert_string_equal(buf, "2001:db8:1:1::");
	mf_cidr_parse("255.255.255.0/24", &c);
	assert_false(mf_cidr_end(&c, &end)); /* no "plus one" at the top */
	mf_cidr_parse("0.0.0.0/0", &c);
	assert_false(mf_cidr_end(&c, &end));
}

static void test_sockaddr_format(void **state)
{
	struct sockaddr_in6 s6;
	struct sockaddr_in s4;
	char buf[MF_ADDRSTRLEN];

	(void)state;
	memset(&s4, 0, sizeof(s4));
	s4.sin_family = AF_INET;
	s4.sin_port = htons(143);
	inet_pton(AF_INET, "198.18.11.2", &s4.sin_addr);
	mf_sockaddr_format((struct sockaddr *)&s4, buf, sizeof(buf));
	assert_string_equal(buf, "198.18.11.2:143");
	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	s6.sin6_port = htons(993);
	inet_pton(AF_INET6, "2001:db8:11::2", &s6.sin6_addr);
	mf_sockaddr_format((struct sockaddr *)&s6, buf, sizeof(buf));
	assert_string_equal(buf, "[2001:db8:11::2]:993");
	inet_pton(AF_INET6, "::ffff:198.18.1.2", &s6.sin6_addr);
	mf_sockaddr_format((struct sockaddr *)&s6, buf, sizeof(buf));
	assert_string_equal(buf, "198.18.1.2:993");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_parse),
		cmocka_unit_test(test_cidr_parse),
		cmocka_unit_test(test_cidr_contains),
		cmocka_unit_test(test_cidr_end),
		cmocka_unit_test(test_sockaddr_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
