#include "upstream.h"
#include "mf.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

int upstream_socket(const struct sockaddr *client, const struct sockaddr *orig_dst,
		    enum mf_upstream_source source)
{
	int one = 1, fd, e;

	fd = socket(orig_dst->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return MF_ERROR;
	if (source == MF_UPSTREAM_CLIENT) {
		struct sockaddr_storage src;
		socklen_t len;

		if (client->sa_family != orig_dst->sa_family) {
			errno = EAFNOSUPPORT;
			goto fail;
		}
		memset(&src, 0, sizeof(src));
		if (client->sa_family == AF_INET) {
			memcpy(&src, client, sizeof(struct sockaddr_in));
			((struct sockaddr_in *)&src)->sin_port = 0;
			len = sizeof(struct sockaddr_in);
			if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) < 0)
				goto fail;
		} else {
			memcpy(&src, client, sizeof(struct sockaddr_in6));
			((struct sockaddr_in6 *)&src)->sin6_port = 0;
			len = sizeof(struct sockaddr_in6);
			if (setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one)) < 0)
				goto fail;
		}
		if (setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) < 0)
			goto fail;
		if (bind(fd, (struct sockaddr *)&src, len) < 0)
			goto fail;
	}
	return fd;
fail:
	e = errno;
	close(fd);
	errno = e;
	return MF_ERROR;
}

int relay_socket_tune(int fd)
{
	int one = 1;

	/* The relay forwards whatever arrived at once; Nagle would add a
	 * round trip to every small IMAP/SMTP command crossing us. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		return MF_ERROR;
	return MF_OK;
}

int upstream_connected(int fd)
{
	return relay_socket_tune(fd);
}
