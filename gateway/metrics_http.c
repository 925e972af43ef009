#include "metrics_http.h"
#include "account_tally.h"
#include "config.h"
#include "http_host.h"
#include "ledger.h"
#include "log.h"
#include "metrics_text.h"
#include "mf.h"
#include "netaddr.h"
#include "stats.h"
#include "status_json.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HTTP_MAX_CONNECTIONS 16
#define HTTP_MAX_PER_ADDRESS 4
#define HTTP_TIMEOUT_S 10
#define SAMPLE_MS 2000
#define SAMPLES 300                /* 10 minutes at SAMPLE_MS */
#define TALLY_MAX_AGE_MS 2000

struct metrics_server {
	struct stats *st;
	char ledger_path[MF_PATH_MAX];
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} addr;
	char addr_text[MF_ADDRSTRLEN];
	struct MHD_Daemon *mhd;        /* NULL until the bind succeeded */
	bool bind_logged;
	/* Set while retrying a bind already reported: libmicrohttpd's own
	 * "address in use" would repeat every 2 s. */
	atomic_bool quiet;

	/* The sampler thread; stop guarded by lock. */
	pthread_t sampler;
	pthread_mutex_t lock;          /* also guards the ring */
	pthread_cond_t wake;
	bool stop;
	struct status_sample ring[SAMPLES];
	size_t ring_head, ring_n;      /* oldest at head */

	/* Only the HTTP thread touches these. */
	struct ledger *ledger;
	struct account_tally tally;
	bool tally_ok;
	uint64_t tally_at_ms;          /* 0: never read */
	uint64_t ledger_warned_ms;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the ledger's accounts, cached briefly ----------------------------- */

static const struct account_tally *tally(struct metrics_server *m)
{
	uint64_t now = mono_ms();
	char err[256];

	if (m->tally_at_ms != 0 && now - m->tally_at_ms < TALLY_MAX_AGE_MS)
		return m->tally_ok ? &m->tally : NULL;
	m->tally_at_ms = now;
	if (m->ledger == NULL && ledger_open(m->ledger_path, &m->ledger, err, sizeof(err)) != MF_OK)
		m->ledger = NULL;
	else if (account_tally_read(m->ledger, &m->tally, err, sizeof(err)) == MF_OK)
		err[0] = '\0';
	m->tally_ok = m->ledger != NULL && err[0] == '\0';
	if (!m->tally_ok) {
		/* A handle that failed may be broken (a lost PostgreSQL
		 * connection): the next scrape opens a fresh one. */
		if (m->ledger != NULL) {
			ledger_close(m->ledger);
			m->ledger = NULL;
		}
		if (m->ledger_warned_ms == 0 || now - m->ledger_warned_ms >= 60000) {
			mf_log_warn("metrics: ledger: %s", err);
			m->ledger_warned_ms = now;
		}
	}
	return m->tally_ok ? &m->tally : NULL;
}

/* --- responses ---------------------------------------------------------- */

static enum MHD_Result send_response(struct MHD_Connection *c, unsigned int code,
				     struct MHD_Response *r, const char *type)
{
	enum MHD_Result rc;

	if (r == NULL)
		return MHD_NO; /* out of memory: MHD closes the connection */
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	/* The page may load nothing from anywhere: its script, style and
	 * chart are inline, and it fetches only its own /api/status. */
	MHD_add_response_header(r, "Content-Security-Policy",
				"default-src 'none'; script-src 'unsafe-inline'; "
				"style-src 'unsafe-inline'; img-src data:; connect-src 'self'; "
				"frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
	rc = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned int code, const char *text)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text,
								 MHD_RESPMEM_PERSISTENT);

	if (r != NULL && code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET");
	return send_response(c, code, r, "text/plain; charset=utf-8");
}

/* A body written by fn into memory, handed to MHD (which frees it). */
static enum MHD_Result send_generated(struct MHD_Connection *c, const char *type,
				      void (*fn)(struct metrics_server *, FILE *),
				      struct metrics_server *m)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct MHD_Response *r;

	if (f == NULL)
		return MHD_NO;
	fn(m, f);
	if (fclose(f) != 0) {
		free(buf);
		return send_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	}
	r = MHD_create_response_from_buffer_with_free_callback(len, buf, free);
	if (r == NULL)
		free(buf);
	return send_response(c, MHD_HTTP_OK, r, type);
}

static void write_metrics(struct metrics_server *m, FILE *f)
{
	struct stats_snapshot s;
	struct stats_copy *copies = calloc(m->st->n_copy_slots + 1, sizeof(*copies));

	stats_snapshot(m->st, &s, copies);
	metrics_text_write(f, &s, tally(m));
	free(copies);
}

static void write_status(struct metrics_server *m, FILE *f)
{
	struct stats_snapshot s;
	struct stats_copy *copies = calloc(m->st->n_copy_slots + 1, sizeof(*copies));
	struct status_sample *ring = malloc(sizeof(m->ring));
	size_t n = 0;

	stats_snapshot(m->st, &s, copies);
	if (ring != NULL) {
		pthread_mutex_lock(&m->lock);
		for (; n < m->ring_n; n++)
			ring[n] = m->ring[(m->ring_head + n) % SAMPLES];
		pthread_mutex_unlock(&m->lock);
	}
	status_json_write(f, &s, tally(m), ring, n, (int64_t)time(NULL));
	free(ring);
	free(copies);
}

/* The Host header names this server by address (http_host.h). Absent:
 * HTTP/1.0. */
static bool host_ok(struct MHD_Connection *c)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);

	return h == NULL || http_host_is_literal(h);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct metrics_server *m = cls;

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)con_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		return send_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "read-only: GET only\n");
	if (!host_ok(c))
		return send_text(c, MHD_HTTP_FORBIDDEN, "Host must be an address or localhost\n");
	if (strcmp(url, "/metrics") == 0)
		return send_generated(c, METRICS_CONTENT_TYPE, write_metrics, m);
	if (strcmp(url, "/api/status") == 0)
		return send_generated(c, "application/json", write_status, m);
	if (strcmp(url, "/") == 0) {
		size_t len = (size_t)(mf_dashboard_html_end - mf_dashboard_html);
		struct MHD_Response *r = MHD_create_response_from_buffer(
			len, (void *)mf_dashboard_html, MHD_RESPMEM_PERSISTENT);

		return send_response(c, MHD_HTTP_OK, r, "text/html; charset=utf-8");
	}
	return send_text(c, MHD_HTTP_NOT_FOUND, "not found: /, /metrics, /api/status\n");
}

/* libmicrohttpd's own messages, to our log. */
__attribute__((format(printf, 2, 0)))
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct metrics_server *m = cls;
	char buf[256];
	size_t n;

	if (atomic_load(&m->quiet))
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	mf_log_warn("metrics: %s", buf);
}

/* --- the server's start and the sampler -------------------------------- */

static void try_listen(struct metrics_server *m)
{
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG;

	if (m->addr.sa.sa_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	atomic_store(&m->quiet, m->bind_logged);
	m->mhd = MHD_start_daemon(flags, ntohs(m->addr.in.sin_port), NULL, NULL, on_request, m,
				  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, m,
				  MHD_OPTION_SOCK_ADDR, &m->addr.sa,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTP_MAX_CONNECTIONS,
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT,
				  (unsigned int)HTTP_MAX_PER_ADDRESS,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTP_TIMEOUT_S,
				  MHD_OPTION_END);
	atomic_store(&m->quiet, false);
	if (m->mhd != NULL) {
		mf_log_info("metrics listen=%s", m->addr_text);
		m->bind_logged = false;
	} else if (!m->bind_logged) {
		/* Most likely a predecessor still holds it (a hand-over). */
		mf_log_warn("metrics listen=%s: not listening yet, retrying every %u ms",
			    m->addr_text, SAMPLE_MS);
		m->bind_logged = true;
	}
}

static void sample(struct metrics_server *m)
{
	struct stats_snapshot s;
	struct status_sample one;

	stats_snapshot(m->st, &s, NULL);
	status_sample_of(&s, wall_ms(), &one);
	pthread_mutex_lock(&m->lock);
	m->ring[(m->ring_head + m->ring_n) % SAMPLES] = one;
	if (m->ring_n < SAMPLES)
		m->ring_n++;
	else
		m->ring_head = (m->ring_head + 1) % SAMPLES;
	pthread_mutex_unlock(&m->lock);
}

static void *sampler_main(void *arg)
{
	struct metrics_server *m = arg;
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	pthread_mutex_lock(&m->lock);
	while (!m->stop) {
		pthread_mutex_unlock(&m->lock);
		if (m->mhd == NULL)
			try_listen(m);
		sample(m);
		until.tv_sec += SAMPLE_MS / 1000;
		pthread_mutex_lock(&m->lock);
		while (!m->stop && pthread_cond_timedwait(&m->wake, &m->lock, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

int metrics_server_start(const struct mf_config *cfg, struct stats *st,
			 struct metrics_server **m_r, char *err, size_t errlen)
{
	struct metrics_server *m = calloc(1, sizeof(*m));
	pthread_condattr_t ca;

	if (m == NULL)
		return mf_err(err, errlen, "out of memory");
	m->st = st;
	snprintf(m->ledger_path, sizeof(m->ledger_path), "%s", cfg->ledger_path);
	if (cfg->metrics_addr.family == AF_INET) {
		m->addr.in.sin_family = AF_INET;
		m->addr.in.sin_port = htons(cfg->metrics_port);
		m->addr.in.sin_addr = cfg->metrics_addr.u.v4;
	} else {
		m->addr.in6.sin6_family = AF_INET6;
		m->addr.in6.sin6_port = htons(cfg->metrics_port);
		m->addr.in6.sin6_addr = cfg->metrics_addr.u.v6;
	}
	mf_sockaddr_format(&m->addr.sa, m->addr_text, sizeof(m->addr_text));
	pthread_mutex_init(&m->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->wake, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&m->sampler, NULL, sampler_main, m) != 0) {
		pthread_cond_destroy(&m->wake);
		pthread_mutex_destroy(&m->lock);
		free(m);
		return mf_err(err, errlen, "metrics: thread: %s", strerror(errno));
	}
	*m_r = m;
	return MF_OK;
}

void metrics_server_stop(struct metrics_server *m)
{
	if (m == NULL)
		return;
	pthread_mutex_lock(&m->lock);
	m->stop = true;
	pthread_cond_signal(&m->wake);
	pthread_mutex_unlock(&m->lock);
	pthread_join(m->sampler, NULL);
	if (m->mhd != NULL)
		MHD_stop_daemon(m->mhd); /* joins its thread */
	if (m->ledger != NULL)
		ledger_close(m->ledger);
	pthread_cond_destroy(&m->wake);
	pthread_mutex_destroy(&m->lock);
	free(m);
}
