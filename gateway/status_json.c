#include "status_json.h"
#include "account_tally.h"
#include "stats.h"

#include <inttypes.h>

void status_sample_of(const struct stats_snapshot *s, int64_t t_ms, struct status_sample *out)
{
	*out = (struct status_sample){ .t_ms = t_ms, .copy_bytes = s->copy_bytes };
	for (unsigned int p = 0; p < STATS_PROTO_COUNT; p++) {
		out->c2s += s->bytes[p][0];
		out->s2c += s->bytes[p][1];
		for (unsigned int b = 0; b < STATS_BACKEND_COUNT; b++)
			for (unsigned int r = 0; r < STATS_LOGIN_COUNT; r++)
				out->logins += s->logins[p][b][r];
	}
}

/* A JSON string that is also inert in HTML: <, > and & as \u escapes
 * as well, so no consumer of the API can mistake a hostile account
 * name for markup. */
void status_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f || *p == '<' || *p == '>' || *p == '&')
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void accounts(FILE *f, const struct account_tally *acc)
{
	char verdict[256];

	if (acc == NULL) {
		fputs("\"accounts\":null,\"retire\":null,\"gateways\":null", f);
		return;
	}
	fputs("\"accounts\":{", f);
	for (unsigned int st = 0; st < ACCOUNT_STATE_COUNT; st++)
		fprintf(f, "%s\"%s\":%" PRIu64, st ? "," : "", account_state_name(st),
			acc->by_state[st]);
	fprintf(f, "},\"accounts_total\":%" PRIu64 ",\"last_login\":%lld,", acc->total,
		(long long)acc->last_seen);
	account_tally_verdict(acc, verdict, sizeof(verdict));
	fprintf(f, "\"retire\":{\"safe\":%s,\"on_source\":%" PRIu64 ",\"from\":\"ledger\",\"text\":",
		account_tally_retire_safe(acc) ? "true" : "false", account_tally_on_source(acc));
	status_json_string(f, verdict);
	fputs("},\"gateways\":[", f);
	for (unsigned int i = 0; i < acc->n_gateways; i++) {
		const struct gateway_beat *b = &acc->gateways[i];

		fprintf(f, "%s{\"id\":", i ? "," : "");
		status_json_string(f, b->id);
		fprintf(f, ",\"health\":\"%s\",\"last_beat\":%lld,\"sessions\":%" PRIu64
			   ",\"copies\":%" PRIu64 "}",
			ledger_gateway_health(b, acc->read_at), (long long)b->last_beat,
			b->sessions, b->copies);
	}
	fputc(']', f);
}

static void copies(FILE *f, const struct stats_snapshot *s)
{
	fputs("\"copies\":[", f);
	for (unsigned int i = 0; i < s->n_copies; i++) {
		const struct stats_copy *c = &s->copies[i];

		fprintf(f, "%s{\"account\":", i ? "," : "");
		status_json_string(f, c->account);
		fputs(",\"phase\":", f);
		status_json_string(f, c->phase);
		fprintf(f, ",\"messages\":%" PRIu64 ",\"planned\":%" PRIu64 ",\"bytes\":%" PRIu64
			   ",\"folder\":%u,\"folders\":%u,\"started\":%lld}",
			c->messages, c->planned, c->bytes, c->folder_index, c->folder_count,
			(long long)c->started);
	}
	fputc(']', f);
}

static void sessions(FILE *f, const struct stats_snapshot *s)
{
	fputs("\"sessions_open\":{", f);
	for (unsigned int p = 0; p < STATS_PROTO_COUNT; p++) {
		fprintf(f, "%s\"%s\":{", p ? "," : "", stats_proto_name(p));
		for (unsigned int b = 0; b < STATS_BACKEND_COUNT; b++)
			fprintf(f, "%s\"%s\":%" PRIu64, b ? "," : "", stats_backend_name(b),
				s->sessions_open[p][b]);
		fputc('}', f);
	}
	fputc('}', f);
}

static void totals(FILE *f, const struct stats_snapshot *s)
{
	uint64_t by_result[STATS_LOGIN_COUNT] = { 0 };
	struct status_sample now;

	status_sample_of(s, 0, &now);
	for (unsigned int p = 0; p < STATS_PROTO_COUNT; p++)
		for (unsigned int b = 0; b < STATS_BACKEND_COUNT; b++)
			for (unsigned int r = 0; r < STATS_LOGIN_COUNT; r++)
				by_result[r] += s->logins[p][b][r];
	fprintf(f, "\"totals\":{\"bytes_c2s\":%" PRIu64 ",\"bytes_s2c\":%" PRIu64
		   ",\"logins_ok\":%" PRIu64 ",\"logins_fail\":%" PRIu64
		   ",\"logins_refused\":%" PRIu64 ",\"copies_migrated\":%" PRIu64
		   ",\"copies_failed\":%" PRIu64 ",\"copy_messages\":%" PRIu64
		   ",\"copy_bytes\":%" PRIu64 "}",
		now.c2s, now.s2c, by_result[STATS_L_OK], by_result[STATS_L_FAIL],
		by_result[STATS_L_REFUSED], s->copies_done[STATS_C_MIGRATED],
		s->copies_done[STATS_C_FAILED], s->copy_messages, s->copy_bytes);
}

void status_json_write(FILE *f, const struct stats_snapshot *s, const struct account_tally *acc,
		       const struct status_sample *samples, size_t n, int64_t now)
{
	fprintf(f, "{\"now\":%lld,\"started\":%lld,", (long long)now, (long long)s->started);
	accounts(f, acc);
	fputc(',', f);
	copies(f, s);
	fputc(',', f);
	sessions(f, s);
	fputc(',', f);
	totals(f, s);
	fputs(",\"samples\":[", f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s[%lld,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "]", i ? "," : "",
			(long long)samples[i].t_ms, samples[i].c2s, samples[i].s2c,
			samples[i].copy_bytes, samples[i].logins);
	fputs("]}\n", f);
}
