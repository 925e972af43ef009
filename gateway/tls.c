/* tls.c — OpenSSL contexts and memory-BIO connections; see tls.h. */
#include "tls.h"
#include "mf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct tls_ctxs {
	atomic_uint refs;
	SSL_CTX *server[MF_MAX_CERTS];  /* [0] is the default */
	unsigned int n_server;
	SSL_CTX *client;
	char backend_name[MF_DOMAIN_MAX + 1];
};

struct tls_conn {
	struct tls_ctxs *t;
	SSL *ssl;
	BIO *in, *out;                  /* owned by ssl */
	char err[160];
};

static void *wipe_malloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return malloc(n);
}

static void wipe_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	if (p == NULL)
		return;
	explicit_bzero(p, malloc_usable_size(p));
	free(p);
}

/* realloc() could move the block and leave the old copy behind. */
static void *wipe_realloc(void *p, size_t n, const char *file, int line)
{
	void *q;
	size_t old;

	if (p == NULL)
		return malloc(n);
	if (n == 0) {
		wipe_free(p, file, line);
		return NULL;
	}
	q = malloc(n);
	if (q == NULL)
		return NULL;
	old = malloc_usable_size(p);
	memcpy(q, p, old < n ? old : n);
	wipe_free(p, file, line);
	return q;
}

int tls_init_wiping_allocator(void)
{
	return CRYPTO_set_mem_functions(wipe_malloc, wipe_realloc, wipe_free) == 1 ? MF_OK
										   : MF_ERROR;
}

static void save_error(char *buf, size_t len, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char detail[120];

	if (e == 0) {
		snprintf(buf, len, "%s", what);
	} else {
		ERR_error_string_n(e, detail, sizeof(detail));
		snprintf(buf, len, "%s: %s", what, detail);
	}
	ERR_clear_error();
}

/* SNI: the first configured certificate valid for the name the client
 * asked for; the default one when none is (the client then decides). */
static int on_servername(SSL *ssl, int *alert, void *arg)
{
	struct tls_ctxs *t = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)alert;
	if (name == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	for (unsigned int i = 0; i < t->n_server; i++) {
		X509 *x = SSL_CTX_get0_certificate(t->server[i]);

		if (x != NULL && X509_check_host(x, name, 0, 0, NULL) == 1) {
			if (i > 0 && SSL_set_SSL_CTX(ssl, t->server[i]) == NULL)
				return SSL_TLSEXT_ERR_ALERT_FATAL;
			return SSL_TLSEXT_ERR_OK;
		}
	}
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *server_ctx(const char *cert, const char *key, char *err, size_t errlen)
{
	static const unsigned char sid_ctx[] = "mailferry";
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		save_error(err, errlen, "SSL_CTX_new");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* Client-initiated renegotiation only costs us CPU. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Idle sessions (IMAP IDLE) should not hold 2×16 KiB of buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		save_error(err, errlen, cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		save_error(err, errlen, key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		save_error(err, errlen, "key does not match certificate");
		goto fail;
	}
	return ctx;

fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static SSL_CTX *client_ctx(const struct mf_config *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	int ok;

	if (ctx == NULL) {
		save_error(err, errlen, "SSL_CTX_new");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (cfg->backend_ca[0] != '\0')
		ok = SSL_CTX_load_verify_locations(ctx, cfg->backend_ca, NULL);
	else
		ok = SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		save_error(err, errlen, cfg->backend_ca[0] ? cfg->backend_ca : "system CA store");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int tls_ctxs_load(const struct mf_config *cfg, struct tls_ctxs **ctxs_r, char *err,
		  size_t errlen)
{
	struct tls_ctxs *t;
	char why[200];

	*ctxs_r = NULL;
	if (cfg->n_tls_certs == 0 && cfg->backend_tls == MF_BACKEND_TLS_NONE)
		return MF_OK;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return mf_err(err, errlen, "out of memory");
	atomic_init(&t->refs, 1);
	for (unsigned int i = 0; i < cfg->n_tls_certs; i++) {
		t->server[i] = server_ctx(cfg->tls_cert[i], cfg->tls_key[i], why, sizeof(why));
		if (t->server[i] == NULL) {
			tls_ctxs_unref(t);
			return mf_err(err, errlen, "[tls] %s", why);
		}
		t->n_server = i + 1;
	}
	if (t->n_server > 0) {
		SSL_CTX_set_tlsext_servername_callback(t->server[0], on_servername);
		SSL_CTX_set_tlsext_servername_arg(t->server[0], t);
	}
	if (cfg->backend_tls != MF_BACKEND_TLS_NONE) {
		t->client = client_ctx(cfg, why, sizeof(why));
		if (t->client == NULL) {
			tls_ctxs_unref(t);
			return mf_err(err, errlen, "[tls] backend_ca %s", why);
		}
	}
	memcpy(t->backend_name, cfg->backend_name, sizeof(t->backend_name));
	*ctxs_r = t;
	return MF_OK;
}

void tls_ctxs_ref(struct tls_ctxs *t)
{
	if (t != NULL)
		atomic_fetch_add(&t->refs, 1);
}

void tls_ctxs_unref(struct tls_ctxs *t)
{
	if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	for (unsigned int i = 0; i < t->n_server; i++)
		SSL_CTX_free(t->server[i]);
	SSL_CTX_free(t->client);
	free(t);
}

bool tls_ctxs_can_serve(const struct tls_ctxs *t)
{
	return t != NULL && t->n_server > 0;
}

static struct tls_conn *conn_new(struct tls_ctxs *t, SSL_CTX *ctx)
{
	struct tls_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->ssl = SSL_new(ctx);
	c->in = BIO_new(BIO_s_mem());
	c->out = BIO_new(BIO_s_mem());
	if (c->ssl == NULL || c->in == NULL || c->out == NULL) {
		BIO_free(c->in);
		BIO_free(c->out);
		SSL_free(c->ssl);
		free(c);
		ERR_clear_error();
		return NULL;
	}
	/* An empty input BIO means "wait for the next RECV", not EOF. */
	BIO_set_mem_eof_return(c->in, -1);
	SSL_set_bio(c->ssl, c->in, c->out);
	c->t = t;
	tls_ctxs_ref(t);
	return c;
}

struct tls_conn *tls_conn_server(struct tls_ctxs *t)
{
	struct tls_conn *c;

	if (!tls_ctxs_can_serve(t))
		return NULL;
	c = conn_new(t, t->server[0]);
	if (c != NULL)
		SSL_set_accept_state(c->ssl);
	return c;
}

struct tls_conn *tls_conn_client(struct tls_ctxs *t, const struct sockaddr *addr)
{
	struct tls_conn *c;
	int ok;

	if (t == NULL || t->client == NULL)
		return NULL;
	c = conn_new(t, t->client);
	if (c == NULL)
		return NULL;
	SSL_set_connect_state(c->ssl);
	if (t->backend_name[0] != '\0') {
		ok = SSL_set1_host(c->ssl, t->backend_name) == 1 &&
		     SSL_set_tlsext_host_name(c->ssl, t->backend_name) == 1;
	} else {
		X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);

		if (addr->sa_family == AF_INET)
			ok = X509_VERIFY_PARAM_set1_ip(
				vp, (const unsigned char *)&((const struct sockaddr_in *)addr)->sin_addr, 4);
		else
			ok = X509_VERIFY_PARAM_set1_ip(
				vp, (const unsigned char *)&((const struct sockaddr_in6 *)addr)->sin6_addr,
				16);
	}
	if (!ok) {
		tls_conn_free(c);
		ERR_clear_error();
		return NULL;
	}
	return c;
}

void tls_conn_free(struct tls_conn *c)
{
	if (c == NULL)
		return;
	SSL_free(c->ssl); /* frees both BIOs */
	tls_ctxs_unref(c->t);
	free(c);
}

int tls_conn_handshake(struct tls_conn *c)
{
	int r;

	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r == 1)
		return MF_OK;
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return MF_AGAIN;
	case SSL_ERROR_SSL: {
		long v = SSL_get_verify_result(c->ssl);

		if (v != X509_V_OK)
			snprintf(c->err, sizeof(c->err), "certificate verify failed: %s",
				 X509_verify_cert_error_string(v));
		else
			save_error(c->err, sizeof(c->err), "handshake");
		ERR_clear_error();
		return MF_ERROR;
	}
	default:
		save_error(c->err, sizeof(c->err), "handshake");
		return MF_ERROR;
	}
}

int tls_conn_feed(struct tls_conn *c, const void *buf, size_t len)
{
	size_t done;

	if (len == 0)
		return MF_OK;
	if (BIO_write_ex(c->in, buf, len, &done) != 1 || done != len) {
		save_error(c->err, sizeof(c->err), "BIO_write");
		return MF_ERROR;
	}
	return MF_OK;
}

int tls_conn_read(struct tls_conn *c, void *buf, size_t cap, size_t *n_r)
{
	int err;

	*n_r = 0;
	ERR_clear_error();
	if (SSL_read_ex(c->ssl, buf, cap, n_r) == 1)
		return MF_OK;
	err = SSL_get_error(c->ssl, 0);
	switch (err) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return MF_AGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return TLS_EOF;
	default:
		save_error(c->err, sizeof(c->err), "read");
		return MF_ERROR;
	}
}

int tls_conn_write(struct tls_conn *c, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	ERR_clear_error();
	while (len > 0) {
		size_t n = 0;

		if (SSL_write_ex(c->ssl, p, len, &n) != 1) {
			save_error(c->err, sizeof(c->err), "write");
			return MF_ERROR;
		}
		p += n;
		len -= n;
	}
	return MF_OK;
}

void tls_conn_close_notify(struct tls_conn *c)
{
	ERR_clear_error();
	(void)SSL_shutdown(c->ssl);
	ERR_clear_error();
}

size_t tls_conn_out_pending(const struct tls_conn *c)
{
	return BIO_ctrl_pending(c->out);
}

size_t tls_conn_out_take(struct tls_conn *c, void *buf, size_t cap)
{
	size_t n = 0;

	if (cap == 0 || BIO_read_ex(c->out, buf, cap, &n) != 1)
		return 0;
	return n;
}

bool tls_conn_has_input(const struct tls_conn *c)
{
	return SSL_has_pending(c->ssl) || BIO_ctrl_pending(c->in) > 0;
}

const char *tls_conn_error(const struct tls_conn *c)
{
	return c->err[0] ? c->err : "unknown";
}

const char *tls_conn_version(const struct tls_conn *c)
{
	return SSL_is_init_finished(c->ssl) ? SSL_get_version(c->ssl) : NULL;
}
