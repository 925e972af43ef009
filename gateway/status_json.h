/* status_json.h — the dashboard's data as one JSON object (GET
 * /api/status): accounts per state and the ledger's retire verdict,
 * running copies with their progress, sessions open, totals, and a ring
 * of recent samples of the byte counters for the throughput chart.
 *
 * Account names come from clients' logins: they are escaped here as JSON
 * strings, and the page puts them in with textContent, never as HTML. */
#ifndef MF_STATUS_JSON_H
#define MF_STATUS_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct stats_snapshot;
struct account_tally;

/* One point of the throughput chart: the counters at t_ms (unix ms). */
struct status_sample {
	int64_t t_ms;
	uint64_t c2s, s2c;        /* bytes relayed, all protocols */
	uint64_t copy_bytes;
	uint64_t logins;          /* every result */
};

/* s as a JSON string; <, > and & escaped too. */
void status_json_string(FILE *f, const char *s);

/* Fills a sample from a snapshot. */
void status_sample_of(const struct stats_snapshot *s, int64_t t_ms, struct status_sample *out);

/* acc NULL: the ledger could not be read ("accounts": null).
 * samples[0..n) oldest first. now: unix seconds. */
void status_json_write(FILE *f, const struct stats_snapshot *s, const struct account_tally *acc,
		       const struct status_sample *samples, size_t n, int64_t now);

#endif
