/* metrics_text.h — the Prometheus text exposition (format 0.0.4) of a
 * stats snapshot and the ledger's accounts per state.
 *
 * Every family has its HELP and TYPE lines before its samples; every
 * label combination is written, zeros included, so a scraper sees a
 * counter from its first scrape on (rate() needs the zero). Histograms
 * are cumulative _bucket{le=...} lines ending in le="+Inf", then _sum
 * (seconds) and _count, with _count equal to the +Inf bucket. */
#ifndef MF_METRICS_TEXT_H
#define MF_METRICS_TEXT_H

#include <stdio.h>

struct stats_snapshot;
struct stats_hist_snap;
struct stats_hist_spec;
struct account_tally;

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A label value with \, " and newline escaped as the format asks. */
void metrics_label_value(FILE *f, const char *v);

/* A HELP text with \ and newline escaped. */
void metrics_help_text(FILE *f, const char *v);

/* One label set's samples of a histogram (its family's HELP and TYPE
 * come first, from the caller): the cumulative buckets, _sum in seconds
 * and _count. labels is "" or `key="value"` text already escaped (it goes
 * before le). */
void metrics_histogram(FILE *f, const char *name, const struct stats_hist_spec *spec,
		       const struct stats_hist_snap *h, const char *labels);

/* The whole exposition. acc NULL: the ledger could not be read (the
 * accounts family is left out and mailferry_ledger_up is 0). */
void metrics_text_write(FILE *f, const struct stats_snapshot *s, const struct account_tally *acc);

#endif
