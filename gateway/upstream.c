#include "upstream.h"
#include "mf.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static int bind_source(int fd, const struct sockaddr *client, bool keep_port)
{
	struct sockaddr_storage src;
	socklen_t len;
	int one = 1;

	memset(&src, 0, sizeof(src));
	if (client->sa_family == AF_INET) {
		len = sizeof(struct sockaddr_in);
		memcpy(&src, client, len);
		if (!keep_port)
			((struct sockaddr_in *)&src)->sin_port = 0;
		if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) < 0)
			return MF_ERROR;
	} else {
		len = sizeof(struct sockaddr_in6);
		memcpy(&src, client, len);
		if (!keep_port)
			((struct sockaddr_in6 *)&src)->sin6_port = 0;
		if (setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one)) < 0)
			return MF_ERROR;
	}
	if (keep_port) {
		/* The client's port may be bound here already by another of
		 * its flows (to another server); the 4-tuples still differ. */
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
			return MF_ERROR;
	} else if (setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) < 0) {
		return MF_ERROR;
	}
	if (bind(fd, (struct sockaddr *)&src, len) < 0)
		return MF_ERROR;
	return MF_OK;
}

int upstream_socket(const struct sockaddr *client, const struct sockaddr *orig_dst,
		    enum mf_upstream_source source)
{
	int fd, e;

	fd = socket(orig_dst->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return MF_ERROR;
	if (source == MF_UPSTREAM_GATEWAY)
		return fd;
	if (client->sa_family != orig_dst->sa_family) {
		errno = EAFNOSUPPORT;
		goto fail;
	}
	if (bind_source(fd, client, source == MF_UPSTREAM_CLIENT) == MF_OK)
		return fd;
	if (source != MF_UPSTREAM_CLIENT || errno != EADDRINUSE)
		goto fail;
	/* The client's port is taken here (one of our own legs lingering in
	 * TIME_WAIT): keep the address, let the kernel pick a port. */
	close(fd);
	fd = socket(orig_dst->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return MF_ERROR;
	if (bind_source(fd, client, false) == MF_OK)
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
