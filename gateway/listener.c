#include "listener.h"
#include "mf.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LISTEN_BACKLOG 4096

int listener_open(const struct mf_addr *addr, uint16_t port, bool transparent, char *err,
		  size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int one = 1, fd;
	char text[MF_ADDRSTRLEN];

	memset(&ss, 0, sizeof(ss));
	if (addr->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		s4->sin_addr = addr->u.v4;
		sslen = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		s6->sin6_addr = addr->u.v6;
		sslen = sizeof(*s6);
	}
	mf_sockaddr_format((struct sockaddr *)&ss, text, sizeof(text));

	fd = socket(addr->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return mf_err(err, errlen, "listener %s: socket: %s", text, strerror(errno));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	if (addr->family == AF_INET) {
		if (transparent && setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) < 0)
			goto fail;
	} else {
		if (setsockopt(fd, SOL_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0 ||
		    (transparent &&
		     setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one)) < 0))
			goto fail;
	}
	if (bind(fd, (struct sockaddr *)&ss, sslen) < 0 ||
	    listen(fd, LISTEN_BACKLOG) < 0)
		goto fail;
	return fd;
fail:
	mf_err(err, errlen, "listener %s: %s%s", text, strerror(errno),
	       errno == EPERM ? " (IP_TRANSPARENT needs CAP_NET_ADMIN)" : "");
	close(fd);
	return MF_ERROR;
}

static int write_sysctl(const char *path, const char *value, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	size_t len = strlen(value);
	ssize_t n;

	if (fd < 0)
		return mf_err(err, errlen, "%s: %s", path, strerror(errno));
	n = write(fd, value, len);
	close(fd);
	if (n < 0 || (size_t)n != len)
		return mf_err(err, errlen, "%s: %s", path, n < 0 ? strerror(errno) : "short write");
	return MF_OK;
}

int listener_enable_migration(char *err, size_t errlen)
{
	return write_sysctl("/proc/sys/net/ipv4/tcp_migrate_req", "1\n", err, errlen);
}

int listener_disable_early_demux(char *err, size_t errlen)
{
	return write_sysctl("/proc/sys/net/ipv4/ip_early_demux", "0\n", err, errlen);
}
