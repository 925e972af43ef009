#include "http_host.h"
#include "mf.h"
#include "netaddr.h"

#include <string.h>
#include <strings.h>

/* "" or ":" and 1-5 digits, then the end. */
static bool port_ok(const char *p)
{
	size_t n = 0;

	if (*p == '\0')
		return true;
	if (*p++ != ':')
		return false;
	while (p[n] >= '0' && p[n] <= '9')
		n++;
	return n >= 1 && n <= 5 && p[n] == '\0';
}

bool http_host_is_literal(const char *host)
{
	char name[INET6_ADDRSTRLEN + 1];
	struct mf_addr a;
	const char *start = host, *end;
	size_t n;

	if (host[0] == '[') {
		start = host + 1;
		end = strchr(start, ']');
		if (end == NULL || !port_ok(end + 1))
			return false;
	} else {
		end = strchr(host, ':');
		if (end == NULL)
			end = host + strlen(host);
		if (!port_ok(end))
			return false;
	}
	n = (size_t)(end - start);
	if (n == 0 || n >= sizeof(name))
		return false;
	memcpy(name, start, n);
	name[n] = '\0';
	if (mf_addr_parse(name, &a) != MF_OK)
		return strcasecmp(name, "localhost") == 0 && host[0] != '[';
	/* An IPv6 address only in brackets (RFC 7230), IPv4 never in them. */
	return (a.family == AF_INET6) == (host[0] == '[');
}
