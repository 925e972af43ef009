/* http_host.h — is an HTTP Host header value an address, or "localhost"?
 *
 * The metrics server answers only requests that name it by address: a
 * DNS-rebinding page (its own name, re-pointed at 127.0.0.1) sends its
 * name as Host and is refused, so it cannot read the dashboard's data. */
#ifndef MF_HTTP_HOST_H
#define MF_HTTP_HOST_H

#include <stdbool.h>

/* host: the header's value, NUL-terminated (network input, any bytes).
 * true for "198.18.0.1", "198.18.0.1:9473", "[2001:db8::1]",
 * "[2001:db8::1]:9473", "localhost", "localhost:9473" (any case), with
 * a port of 1-5 digits; false for anything else, "" included. */
bool http_host_is_literal(const char *host);

#endif
