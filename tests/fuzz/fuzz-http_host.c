/* libFuzzer target: gateway/http_host.c — any bytes as a Host header
 * value (NUL-terminated, as libmicrohttpd hands it over). Checked: no
 * out-of-bounds read, and an accepted value has no byte outside what an
 * address literal, brackets, a port and "localhost" are made of. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (http_host_is_literal(s))
		for (size_t i = 0; s[i] != '\0'; i++)
			if (strchr("0123456789abcdefABCDEF.:[]localhostLOCALHOST", s[i]) == NULL)
				abort();
	free(s);
	return 0;
}
