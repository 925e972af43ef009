/* metrics_http.h — the read-only HTTP server of [metrics] listen
 * (libmicrohttpd, its own thread): GET /metrics (Prometheus text,
 * metrics_text.h), GET /api/status (JSON, status_json.h) and GET / (the
 * dashboard, one self-contained page: no external resources).
 *
 * Bounded: 16 connections (4 per client address), 10 s per connection,
 * GET only (405 otherwise), Host must be an IP literal or "localhost"
 * (a DNS-rebinding page cannot read it through a name of its own).
 *
 * A thread of its own samples the byte counters every 2 s into a ring
 * (the dashboard's throughput chart, 10 minutes) and, while the address
 * is taken (a predecessor still draining in a restart hand-over), retries
 * the bind every 2 s. The accounts per state are read from the ledger at
 * most once every 2 s, in the server's thread, with its own handle. */
#ifndef MF_METRICS_HTTP_H
#define MF_METRICS_HTTP_H

#include <stddef.h>

struct mf_config;
struct stats;
struct metrics_server;

/* Starts serving cfg's [metrics] listen (the caller checked metrics_on).
 * MF_OK, or MF_ERROR with err (out of memory, thread). A bind that fails
 * is not an error: logged, and retried. */
int metrics_server_start(const struct mf_config *cfg, struct stats *st,
			 struct metrics_server **m_r, char *err, size_t errlen);

/* Stops both threads and frees (NULL is fine). */
void metrics_server_stop(struct metrics_server *m);

/* The dashboard page (dashboard.html, built in). */
extern const char mf_dashboard_html[];
extern const char mf_dashboard_html_end[];

#endif
