/* libFuzzer target: gateway/syn_packet.c.
 *
 * The input is a queued packet as the kernel would hand it over. The
 * parser must never read outside it (ASan), and what it returns must be
 * consistent with the bytes: the family with the version nibble, the
 * ports with the bytes at the TCP offset it found. The input is copied
 * into a buffer of exactly its size so an overread is caught at once. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mf.h"
#include "syn_packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);
	struct syn_packet p;

	if (copy == NULL)
		abort();
	memcpy(copy, data, size);
	if (syn_packet_parse(size ? copy : NULL, size, &p) == MF_OK) {
		if (size == 0)
			abort();
		if ((copy[0] >> 4) == 4 && (p.family != AF_INET ||
					    memcmp(p.src + 12, copy + 12, 4) != 0))
			abort();
		if ((copy[0] >> 4) == 6 && (p.family != AF_INET6 ||
					    memcmp(p.dst, copy + 24, 16) != 0))
			abort();
		if ((copy[0] >> 4) != 4 && (copy[0] >> 4) != 6)
			abort();
	}
	free(copy);
	return 0;
}
