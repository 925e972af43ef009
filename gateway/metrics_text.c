#include "metrics_text.h"
#include "account_tally.h"
#include "stats.h"

#include <inttypes.h>
#include <string.h>

void metrics_label_value(FILE *f, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

void metrics_help_text(FILE *f, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\')
			fputs("\\\\", f);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s ", name);
	metrics_help_text(f, help);
	fprintf(f, "\n# TYPE %s %s\n", name, type);
}

/* Microseconds as seconds, exactly (no float rounding of large sums). */
static void seconds(FILE *f, uint64_t us)
{
	fprintf(f, "%" PRIu64 ".%06" PRIu64, us / 1000000, us % 1000000);
}

void metrics_histogram(FILE *f, const char *name, const struct stats_hist_spec *spec,
		       const struct stats_hist_snap *h, const char *labels)
{
	const char *sep = labels[0] != '\0' ? "," : "";

	for (unsigned int i = 0; i < spec->n; i++)
		fprintf(f, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, labels, sep,
			spec->le[i], h->bucket[i]);
	fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep,
		h->bucket[spec->n]);
	fprintf(f, "%s_sum%s%s%s ", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "");
	seconds(f, h->sum_us);
	fprintf(f, "\n%s_count%s%s%s %" PRIu64 "\n", name, labels[0] ? "{" : "", labels,
		labels[0] ? "}" : "", h->bucket[spec->n]);
}

static void sessions(FILE *f, const struct stats_snapshot *s)
{
	family(f, "mailferry_sessions_total", "counter",
	       "Client connections accepted, by the protocol of their port (other: relayed blind).");
	for (unsigned int p = 0; p < STATS_PROTO_COUNT; p++)
		fprintf(f, "mailferry_sessions_total{protocol=\"%s\"} %" PRIu64 "\n",
			stats_proto_name(p), s->sessions_total[p]);
	family(f, "mailferry_sessions_open", "gauge",
	       "Client connections open now, by protocol and the backend they are relayed to "
	       "(none: before the login is relayed, and SMTP MTA sessions).");
	for (unsigned int p = 0; p < STATS_PROTO_COUNT; p++)
		for (unsigned int b = 0; b < STATS_BACKEND_COUNT; b++)
			fprintf(f, "mailferry_sessions_open{protocol=\"%s\",backend=\"%s\"} %" PRIu64
				   "\n", stats_proto_name(p), stats_backend_name(b),
				s->sessions_open[p][b]);
	family(f, "mailferry_sessions_relayed_total", "counter",
	       "Sessions that started relaying to a backend, by protocol and backend.");
	for (unsigned int p = 0; p < STATS_PROTO_COUNT; p++)
		for (unsigned int b = STATS_B_SOURCE; b < STATS_BACKEND_COUNT; b++)
			fprintf(f, "mailferry_sessions_relayed_total{protocol=\"%s\",backend=\"%s\"} "
				   "%" PRIu64 "\n", stats_proto_name(p), stats_backend_name(b),
				s->sessions_relayed[p][b]);
	family(f, "mailferry_bytes_total", "counter",
	       "Bytes relayed between clients and servers, by protocol and direction "
	       "(added at least twice a second while a session lives).");
	for (unsigned int p = 0; p < STATS_PROTO_COUNT; p++)
		for (unsigned int d = 0; d < STATS_DIR_COUNT; d++)
			fprintf(f, "mailferry_bytes_total{protocol=\"%s\",direction=\"%s\"} %" PRIu64
				   "\n", stats_proto_name(p), stats_dir_name(d), s->bytes[p][d]);
}

static void logins(FILE *f, const struct stats_snapshot *s)
{
	char labels[64];

	family(f, "mailferry_logins_total", "counter",
	       "Login attempts (IMAP, POP3, submission) by protocol, backend and result: ok and "
	       "fail are the backend's verdict, refused is the gateway's try-again "
	       "(migrating, ledger or backend unavailable).");
	for (unsigned int p = STATS_P_IMAP; p < STATS_PROTO_COUNT; p++) {
		if (p == STATS_P_SMTP || p == STATS_P_OTHER)
			continue; /* no logins on MTA ports or blind relays */
		for (unsigned int b = 0; b < STATS_BACKEND_COUNT; b++)
			for (unsigned int r = 0; r < STATS_LOGIN_COUNT; r++)
				fprintf(f, "mailferry_logins_total{protocol=\"%s\",backend=\"%s\","
					   "result=\"%s\"} %" PRIu64 "\n", stats_proto_name(p),
					stats_backend_name(b), stats_login_name(r),
					s->logins[p][b][r]);
	}
	family(f, "mailferry_login_duration_seconds", "histogram",
	       "From the client's login command to the backend's verdict (ok or fail).");
	for (unsigned int p = STATS_P_IMAP; p < STATS_PROTO_COUNT; p++) {
		if (p == STATS_P_SMTP || p == STATS_P_OTHER)
			continue;
		snprintf(labels, sizeof(labels), "protocol=\"%s\"", stats_proto_name(p));
		metrics_histogram(f, "mailferry_login_duration_seconds", &stats_login_latency_spec,
				  &s->login_latency[p], labels);
	}
}

static void smtp(FILE *f, const struct stats_snapshot *s)
{
	static const char *const txn[] = { "accepted", "rejected" };
	static const char *const rcpt[] = { "routed", "refused" };

	family(f, "mailferry_smtp_transactions_total", "counter",
	       "SMTP transactions on MTA ports by backend and final reply (accepted: 2xx).");
	for (unsigned int b = 0; b < STATS_BACKEND_COUNT; b++)
		for (unsigned int i = 0; i < 2; i++)
			fprintf(f, "mailferry_smtp_transactions_total{backend=\"%s\",result=\"%s\"} "
				   "%" PRIu64 "\n", stats_backend_name(b), txn[i], s->smtp_txns[b][i]);
	family(f, "mailferry_smtp_recipients_total", "counter",
	       "Recipients of those transactions by backend: routed, or refused (the other "
	       "backend's, CUTOVER, or the backend's own refusal).");
	for (unsigned int b = 0; b < STATS_BACKEND_COUNT; b++)
		for (unsigned int i = 0; i < 2; i++)
			fprintf(f, "mailferry_smtp_recipients_total{backend=\"%s\",result=\"%s\"} "
				   "%" PRIu64 "\n", stats_backend_name(b), rcpt[i], s->smtp_rcpts[b][i]);
}

static void copies(FILE *f, const struct stats_snapshot *s)
{
	family(f, "mailferry_copies_started_total", "counter",
	       "Account copies started (bulk copy, cutover, delta).");
	fprintf(f, "mailferry_copies_started_total %" PRIu64 "\n", s->copies_started);
	family(f, "mailferry_copies_total", "counter",
	       "Account copies ended, by result (interrupted: a shutdown, or another daemon "
	       "holds the account's copy; it resumes at the next login).");
	for (unsigned int r = 0; r < STATS_COPY_RESULT_COUNT; r++)
		fprintf(f, "mailferry_copies_total{result=\"%s\"} %" PRIu64 "\n",
			stats_copy_result_name(r), s->copies_done[r]);
	family(f, "mailferry_copy_errors_total", "counter",
	       "Account copies that ended FAILED (the user stays on the source).");
	fprintf(f, "mailferry_copy_errors_total %" PRIu64 "\n", s->copies_done[STATS_C_FAILED]);
	family(f, "mailferry_copies_running", "gauge", "Account copies in progress now.");
	fprintf(f, "mailferry_copies_running %u\n", s->n_copies);
	family(f, "mailferry_copy_messages_total", "counter",
	       "Messages appended to the destination by the copies.");
	fprintf(f, "mailferry_copy_messages_total %" PRIu64 "\n", s->copy_messages);
	family(f, "mailferry_copy_bytes_total", "counter",
	       "Message bytes appended to the destination by the copies.");
	fprintf(f, "mailferry_copy_bytes_total %" PRIu64 "\n", s->copy_bytes);
	family(f, "mailferry_copy_duration_seconds", "histogram",
	       "Duration of a whole account copy, from taking the account to MIGRATED or FAILED "
	       "(interrupted copies are not observed).");
	metrics_histogram(f, "mailferry_copy_duration_seconds", &stats_copy_duration_spec,
			  &s->copy_duration, "");
	family(f, "mailferry_cutover_duration_seconds", "histogram",
	       "How long a user was refused at a cutover that ended MIGRATED: from CUTOVER "
	       "(sessions on the source closed, delta, verification) to MIGRATED.");
	metrics_histogram(f, "mailferry_cutover_duration_seconds", &stats_cutover_duration_spec,
			  &s->cutover_duration, "");
}

static void accounts(FILE *f, const struct account_tally *acc)
{
	family(f, "mailferry_ledger_up", "gauge",
	       "1 when the ledger could be read for this scrape (accounts below), else 0.");
	fprintf(f, "mailferry_ledger_up %d\n", acc != NULL);
	if (acc == NULL)
		return;
	family(f, "mailferry_accounts", "gauge", "Accounts in the ledger by state.");
	for (unsigned int st = 0; st < ACCOUNT_STATE_COUNT; st++) {
		fputs("mailferry_accounts{state=\"", f);
		metrics_label_value(f, account_state_name(st));
		fprintf(f, "\"} %" PRIu64 "\n", acc->by_state[st]);
	}
	family(f, "mailferry_accounts_on_source", "gauge",
	       "Accounts the source still serves (every state but MIGRATED).");
	fprintf(f, "mailferry_accounts_on_source %" PRIu64 "\n", account_tally_on_source(acc));
	family(f, "mailferry_gateway_up", "gauge",
	       "Gateways sharing the ledger: 1 while one beats (heartbeat at most "
	       "20 s old, not stopped), else 0.");
	for (unsigned int i = 0; i < acc->n_gateways; i++) {
		const struct gateway_beat *b = &acc->gateways[i];

		fputs("mailferry_gateway_up{gateway=\"", f);
		metrics_label_value(f, b->id);
		fprintf(f, "\"} %d\n",
			strcmp(ledger_gateway_health(b, acc->read_at), "running") == 0);
	}
	family(f, "mailferry_gateway_heartbeat_time_seconds", "gauge",
	       "A gateway's last heartbeat in the ledger, seconds since the Unix epoch.");
	for (unsigned int i = 0; i < acc->n_gateways; i++) {
		fputs("mailferry_gateway_heartbeat_time_seconds{gateway=\"", f);
		metrics_label_value(f, acc->gateways[i].id);
		fprintf(f, "\"} %lld\n", (long long)acc->gateways[i].last_beat);
	}
}

void metrics_text_write(FILE *f, const struct stats_snapshot *s, const struct account_tally *acc)
{
	family(f, "mailferry_start_time_seconds", "gauge",
	       "When the daemon started, seconds since the Unix epoch.");
	fprintf(f, "mailferry_start_time_seconds %lld\n", (long long)s->started);
	sessions(f, s);
	logins(f, s);
	smtp(f, s);
	copies(f, s);
	accounts(f, acc);
}
