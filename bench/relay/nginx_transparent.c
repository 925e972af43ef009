/* nginx_transparent.so — LD_PRELOAD shim for the benchmark's nginx row.
 *
 * TPROXY hands a diverted connection only to a listening socket that has
 * IP_TRANSPARENT set, and nginx's stream `listen` has no such flag (its
 * `proxy_bind ... transparent` covers only the upstream side). This shim
 * sets IP_TRANSPARENT / IPV6_TRANSPARENT on any socket bound to the port
 * named by NGINX_TRANSPARENT_PORT, just before bind(). Nothing else changes.
 *
 * Build: cc -O2 -shared -fPIC -o nginx_transparent.so nginx_transparent.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>

int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	static int (*real_bind)(int, const struct sockaddr *, socklen_t);
	const char *env = getenv("NGINX_TRANSPARENT_PORT");
	int one = 1;

	if (real_bind == NULL)
		real_bind = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
	if (env != NULL && sa != NULL) {
		unsigned short port = (unsigned short)atoi(env);

		if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in) &&
		    ntohs(((const struct sockaddr_in *)sa)->sin_port) == port)
			(void)setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one));
		else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6) &&
			 ntohs(((const struct sockaddr_in6 *)sa)->sin6_port) == port)
			(void)setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one));
	}
	return real_bind(fd, sa, len);
}
