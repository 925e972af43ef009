/* mig_net.c — see mig_net.h. */
#include "mig_net.h"
#include "mf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define NET_ERR_MAX 512

void mig_net_init(struct mig_net *n, const char *name, const char *host,
		  const char *verify_name, const char *ca_file, bool insecure, int timeout_ms,
		  bool *busy_r)
{
	memset(n, 0, sizeof(*n));
	n->fd = -1;
	snprintf(n->name, sizeof(n->name), "%s", name != NULL ? name : "server");
	snprintf(n->host, sizeof(n->host), "%s", host);
	snprintf(n->verify_name, sizeof(n->verify_name), "%s",
		 verify_name != NULL ? verify_name : "");
	n->ca_file = ca_file;
	n->insecure = insecure;
	n->timeout_ms = timeout_ms > 0 ? timeout_ms : 60000;
	n->busy_r = busy_r;
}

int mig_net_err(struct mig_net *n, char *err, size_t errlen, const char *fmt, ...)
{
	char msg[NET_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n->dead = true;
	return mf_err(err, errlen, "%s: %s", n->name, msg);
}

void mig_net_busy(struct mig_net *n)
{
	if (n->busy_r != NULL)
		*n->busy_r = true;
}

static void ssl_reason(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(buf, len, "unknown TLS error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
}

int mig_net_read(struct mig_net *n, uint8_t *buf, size_t cap, size_t *got_r, char *err,
		 size_t errlen)
{
	ssize_t r;

	if (n->ssl != NULL) {
		int s = SSL_read(n->ssl, buf, cap > INT32_MAX ? INT32_MAX : (int)cap);

		if (s <= 0) {
			int e = SSL_get_error(n->ssl, s);
			char why[160];

			if (e == SSL_ERROR_ZERO_RETURN ||
			    (e == SSL_ERROR_SYSCALL && (errno == ECONNRESET || s == 0))) {
				mig_net_busy(n);
				return mig_net_err(n, err, errlen, "connection closed by the server");
			}
			if (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK))
				return mig_net_err(n, err, errlen, "timed out waiting for the server");
			ssl_reason(why, sizeof(why));
			return mig_net_err(n, err, errlen, "TLS read failed: %s", why);
		}
		*got_r = (size_t)s;
		return MF_OK;
	}
	do
		r = recv(n->fd, buf, cap, 0);
	while (r < 0 && errno == EINTR);
	if (r == 0 || (r < 0 && errno == ECONNRESET)) {
		mig_net_busy(n);
		return mig_net_err(n, err, errlen, "connection closed by the server");
	}
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return mig_net_err(n, err, errlen, "timed out waiting for the server");
		return mig_net_err(n, err, errlen, "recv: %s", strerror(errno));
	}
	*got_r = (size_t)r;
	return MF_OK;
}

int mig_net_write(struct mig_net *n, const void *buf, size_t len, char *err, size_t errlen)
{
	const uint8_t *b = buf;

	if (n->dead)
		return mig_net_err(n, err, errlen, "connection is closed");
	while (len > 0) {
		if (n->ssl != NULL) {
			int r = SSL_write(n->ssl, b, len > INT32_MAX ? INT32_MAX : (int)len);

			if (r <= 0) {
				char why[160];

				ssl_reason(why, sizeof(why));
				return mig_net_err(n, err, errlen, "TLS write failed: %s", why);
			}
			b += r;
			len -= (size_t)r;
		} else {
			ssize_t w = send(n->fd, b, len, MSG_NOSIGNAL);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return mig_net_err(n, err, errlen, "send: %s",
						   errno == EAGAIN ? "timed out" : strerror(errno));
			b += w;
			len -= (size_t)w;
		}
	}
	return MF_OK;
}

int mig_net_connect(struct mig_net *n, const char *host, const char *port, char *err,
		    size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	struct timeval tv = { .tv_sec = n->timeout_ms / 1000,
			      .tv_usec = (n->timeout_ms % 1000) * 1000 };
	struct pollfd pfd;
	int rc, soerr = 0;
	socklen_t sl = sizeof(soerr);

	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0)
		return mf_err(err, errlen, "%s: %s: %s", n->name, host, gai_strerror(rc));
	n->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (n->fd < 0) {
		freeaddrinfo(ai);
		return mf_err(err, errlen, "%s: socket: %s", n->name, strerror(errno));
	}
	rc = connect(n->fd, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (rc < 0 && errno != EINPROGRESS)
		return mf_err(err, errlen, "%s: connect to %s:%s: %s", n->name, host, port,
			      strerror(errno));
	pfd.fd = n->fd;
	pfd.events = POLLOUT;
	do
		rc = poll(&pfd, 1, n->timeout_ms);
	while (rc < 0 && errno == EINTR);
	if (rc == 0)
		return mf_err(err, errlen, "%s: connect to %s:%s timed out", n->name, host, port);
	if (rc < 0 || getsockopt(n->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0)
		return mf_err(err, errlen, "%s: connect to %s:%s: %s", n->name, host, port,
			      strerror(soerr ? soerr : errno));
	if (fcntl(n->fd, F_SETFL, 0) < 0 ||
	    setsockopt(n->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(n->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return mf_err(err, errlen, "%s: socket options: %s", n->name, strerror(errno));
	return MF_OK;
}

int mig_net_tls(struct mig_net *n, char *err, size_t errlen)
{
	unsigned char ip[16];
	char why[200];
	int ok;

	n->ctx = SSL_CTX_new(TLS_client_method());
	if (n->ctx == NULL)
		goto ssl_fail;
	SSL_CTX_set_min_proto_version(n->ctx, TLS1_2_VERSION);
	if (!n->insecure) {
		SSL_CTX_set_verify(n->ctx, SSL_VERIFY_PEER, NULL);
		ok = n->ca_file != NULL ? SSL_CTX_load_verify_locations(n->ctx, n->ca_file, NULL)
					: SSL_CTX_set_default_verify_paths(n->ctx);
		if (ok != 1) {
			ssl_reason(why, sizeof(why));
			return mig_net_err(n, err, errlen, "CA file %s: %s",
					   n->ca_file ? n->ca_file : "(system)", why);
		}
	}
	n->ssl = SSL_new(n->ctx);
	if (n->ssl == NULL || SSL_set_fd(n->ssl, n->fd) != 1)
		goto ssl_fail;
	if (!n->insecure && n->verify_name[0] != '\0') {
		ok = SSL_set1_host(n->ssl, n->verify_name) == 1 &&
		     SSL_set_tlsext_host_name(n->ssl, n->verify_name) == 1;
		if (!ok)
			goto ssl_fail;
	} else if (!n->insecure) {
		if (inet_pton(AF_INET, n->host, ip) == 1)
			ok = X509_VERIFY_PARAM_set1_ip(SSL_get0_param(n->ssl), ip, 4);
		else if (inet_pton(AF_INET6, n->host, ip) == 1)
			ok = X509_VERIFY_PARAM_set1_ip(SSL_get0_param(n->ssl), ip, 16);
		else
			ok = SSL_set1_host(n->ssl, n->host) == 1 &&
			     SSL_set_tlsext_host_name(n->ssl, n->host) == 1;
		if (!ok)
			goto ssl_fail;
	}
	if (SSL_connect(n->ssl) != 1) {
		long v = SSL_get_verify_result(n->ssl);

		if (v != X509_V_OK)
			return mig_net_err(n, err, errlen, "certificate verify failed: %s",
					   X509_verify_cert_error_string(v));
		ssl_reason(why, sizeof(why));
		return mig_net_err(n, err, errlen, "TLS handshake failed: %s", why);
	}
	return MF_OK;
ssl_fail:
	ssl_reason(why, sizeof(why));
	return mig_net_err(n, err, errlen, "TLS set-up: %s", why);
}

void mig_net_rcvtimeo(struct mig_net *n, int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	if (n->fd >= 0)
		setsockopt(n->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

void mig_net_close(struct mig_net *n)
{
	if (n->ssl != NULL) {
		if (!n->dead)
			SSL_shutdown(n->ssl);
		SSL_free(n->ssl);
		n->ssl = NULL;
	}
	SSL_CTX_free(n->ctx);
	n->ctx = NULL;
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
}
