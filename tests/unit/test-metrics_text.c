/* Unit tests: gateway/metrics_text.c (Prometheus exposition: escaping,
 * HELP/TYPE before samples, histogram invariants, exact values),
 * gateway/status_json.c (hostile account names), gateway/http_host.c
 * (Host header values, hostile ones fed byte by byte as prefixes) and
 * gateway/account_tally.c's verdict. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account_tally.h"
#include "http_host.h"
#include "metrics_text.h"
#include "mf.h"
#include "stats.h"
#include "status_json.h"

/* Runs fn into a string the caller frees. */
#define CAPTURE(out, call)                                                   \
	do {                                                                 \
		size_t len_ = 0;                                             \
		FILE *f = open_memstream(&(out), &len_);                     \
		assert_non_null(f);                                          \
		call;                                                        \
		assert_int_equal(fclose(f), 0);                              \
	} while (0)

static void test_label_escape(void **state)
{
	char *out = NULL;

	(void)state;
	CAPTURE(out, metrics_label_value(f, "a\\b\"c\nd{}=,"));
	assert_string_equal(out, "a\\\\b\\\"c\\nd{}=,");
	free(out);
	out = NULL;
	CAPTURE(out, metrics_help_text(f, "x\\y\n\"z\""));
	/* HELP escapes only backslash and newline; quotes stay. */
	assert_string_equal(out, "x\\\\y\\n\"z\"");
	free(out);
}

/* A snapshot with known events in it. */
static void known_snapshot(struct stats *st, struct stats_snapshot *s)
{
	struct stats_shard *a, *b;

	assert_int_equal(stats_init(st, 2, 1), MF_OK);
	a = stats_shard(st, 0);
	b = stats_shard(st, 1);
	stats_session_open(a, STATS_P_IMAP);
	stats_session_relay(a, STATS_P_IMAP, STATS_B_NONE, STATS_B_SOURCE);
	stats_session_open(b, STATS_P_POP3);
	stats_login(a, STATS_P_IMAP, STATS_B_SOURCE, STATS_L_OK, 1000);
	stats_login(b, STATS_P_IMAP, STATS_B_SOURCE, STATS_L_OK, 1001);
	stats_login(b, STATS_P_POP3, STATS_B_DESTINATION, STATS_L_FAIL, 20000000);
	stats_login(b, STATS_P_SUBMISSION, STATS_B_NONE, STATS_L_REFUSED, 0);
	stats_add(&a->bytes[STATS_P_IMAP][0], 41);
	stats_add(&b->bytes[STATS_P_IMAP][1], 512);
	stats_copy_end(st, 9, b, STATS_C_MIGRATED, 3000000);
	stats_smtp_txn(a, STATS_B_DESTINATION, true, 2, 1);
	stats_smtp_txn(b, STATS_B_DESTINATION, false, 1, 0);
	stats_snapshot(st, s, NULL);
}

struct family {
	char name[96];
	char type[16];
};

/* Checks the exposition's grammar and histogram invariants; returns the
 * number of samples. */
static unsigned int check_exposition(const char *text)
{
	struct family fam[64];
	unsigned int n_fam = 0, samples = 0;
	char line[512], prev_le[32] = "", hist_labels[256] = "";
	uint64_t prev_bucket = 0, inf_bucket = 0;
	bool in_buckets = false, have_inf = false;
	const char *p = text;

	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t n;

		assert_non_null(nl); /* every line ends with \n, the last too */
		n = (size_t)(nl - p);
		assert_true(n < sizeof(line));
		memcpy(line, p, n);
		line[n] = '\0';
		p = nl + 1;
		if (strncmp(line, "# HELP ", 7) == 0) {
			char type_line[512];
			const char *nl2 = strchr(p, '\n');

			assert_true(n_fam < 64);
			assert_int_equal(sscanf(line + 7, "%95s", fam[n_fam].name), 1);
			for (unsigned int i = 0; i < n_fam; i++)
				assert_string_not_equal(fam[i].name, fam[n_fam].name);
			/* TYPE follows HELP at once. */
			assert_non_null(nl2);
			memcpy(type_line, p, (size_t)(nl2 - p));
			type_line[nl2 - p] = '\0';
			p = nl2 + 1;
			{
				char tname[96];

				assert_int_equal(sscanf(type_line, "# TYPE %95s %15s", tname,
							fam[n_fam].type), 2);
				assert_string_equal(tname, fam[n_fam].name);
			}
			assert_true(strcmp(fam[n_fam].type, "counter") == 0 ||
				    strcmp(fam[n_fam].type, "gauge") == 0 ||
				    strcmp(fam[n_fam].type, "histogram") == 0);
			n_fam++;
			assert_false(in_buckets);
			continue;
		}
		assert_true(line[0] != '#');
		assert_true(n_fam > 0);
		samples++;
		{
			const struct family *cur = &fam[n_fam - 1];
			size_t fl = strlen(cur->name);
			char name[128], labels[256] = "", value[64];
			const char *brace = strchr(line, '{'), *space = strrchr(line, ' ');

			assert_non_null(space);
			snprintf(value, sizeof(value), "%s", space + 1);
			if (brace != NULL && brace < space) {
				const char *close = strrchr(line, '}');

				assert_non_null(close);
				snprintf(name, sizeof(name), "%.*s", (int)(brace - line), line);
				snprintf(labels, sizeof(labels), "%.*s", (int)(close - brace - 1),
					 brace + 1);
			} else {
				snprintf(name, sizeof(name), "%.*s", (int)(space - line), line);
			}
			/* A sample belongs to the family declared last. */
			assert_int_equal(strncmp(name, cur->name, fl), 0);
			if (strcmp(cur->type, "histogram") != 0) {
				assert_string_equal(name, cur->name);
				continue;
			}
			if (strcmp(name + fl, "_bucket") == 0) {
				char *le = strstr(labels, "le=\"");
				uint64_t v = strtoull(value, NULL, 10);
				char base[256];

				assert_non_null(le);
				/* le is the last label */
				assert_int_equal(le[strlen(le) - 1], '"');
				snprintf(base, sizeof(base), "%.*s", (int)(le - labels), labels);
				if (!in_buckets) {
					in_buckets = true;
					have_inf = false;
					prev_bucket = 0;
					prev_le[0] = '\0';
					snprintf(hist_labels, sizeof(hist_labels), "%s", base);
				}
				assert_string_equal(base, hist_labels);
				assert_false(have_inf);
				assert_true(v >= prev_bucket);
				if (prev_le[0] != '\0' && strcmp(le, "le=\"+Inf\"") != 0)
					assert_true(strtod(le + 4, NULL) > strtod(prev_le + 4, NULL));
				snprintf(prev_le, sizeof(prev_le), "%s", le);
				prev_bucket = v;
				if (strcmp(le, "le=\"+Inf\"") == 0) {
					have_inf = true;
					inf_bucket = v;
				}
			} else if (strcmp(name + fl, "_sum") == 0) {
				assert_true(in_buckets && have_inf);
			} else {
				assert_string_equal(name + fl, "_count");
				assert_true(in_buckets && have_inf);
				assert_int_equal(strtoull(value, NULL, 10), inf_bucket);
				in_buckets = false;
			}
		}
	}
	assert_false(in_buckets);
	return samples;
}

static void test_exposition(void **state)
{
	struct stats st;
	struct stats_snapshot s;
	struct account_tally acc = { .total = 3 };
	char *out = NULL;

	(void)state;
	known_snapshot(&st, &s);
	acc.by_state[AS_UNSEEN] = 1;
	acc.by_state[AS_MIGRATED] = 2;
	CAPTURE(out, metrics_text_write(f, &s, &acc));
	assert_true(check_exposition(out) > 100);
	assert_non_null(strstr(out, "\nmailferry_logins_total{protocol=\"imap\",backend=\"source\","
				    "result=\"ok\"} 2\n"));
	assert_non_null(strstr(out, "\nmailferry_logins_total{protocol=\"pop3\",backend=\"destination\","
				    "result=\"fail\"} 1\n"));
	assert_non_null(strstr(out, "\nmailferry_logins_total{protocol=\"submission\",backend=\"none\","
				    "result=\"refused\"} 1\n"));
	/* No logins on MTA ports or blind relays, so no such series. */
	assert_null(strstr(out, "mailferry_logins_total{protocol=\"smtp\""));
	assert_non_null(strstr(out, "\nmailferry_login_duration_seconds_bucket{protocol=\"imap\","
				    "le=\"0.001\"} 1\n"));
	assert_non_null(strstr(out, "\nmailferry_login_duration_seconds_bucket{protocol=\"imap\","
				    "le=\"0.0025\"} 2\n"));
	assert_non_null(strstr(out, "\nmailferry_login_duration_seconds_sum{protocol=\"imap\"} 0.002001\n"));
	assert_non_null(strstr(out, "\nmailferry_login_duration_seconds_count{protocol=\"imap\"} 2\n"));
	assert_non_null(strstr(out, "\nmailferry_login_duration_seconds_bucket{protocol=\"pop3\","
				    "le=\"10\"} 0\n"));
	assert_non_null(strstr(out, "\nmailferry_login_duration_seconds_bucket{protocol=\"pop3\","
				    "le=\"+Inf\"} 1\n"));
	assert_non_null(strstr(out, "\nmailferry_copy_duration_seconds_bucket{le=\"5\"} 1\n"));
	assert_non_null(strstr(out, "\nmailferry_copy_duration_seconds_sum 3.000000\n"));
	assert_non_null(strstr(out, "\nmailferry_copies_total{result=\"migrated\"} 1\n"));
	assert_non_null(strstr(out, "\nmailferry_sessions_open{protocol=\"imap\",backend=\"source\"} 1\n"));
	assert_non_null(strstr(out, "\nmailferry_sessions_open{protocol=\"pop3\",backend=\"none\"} 1\n"));
	assert_non_null(strstr(out, "\nmailferry_bytes_total{protocol=\"imap\",direction=\"client_to_server\"} 41\n"));
	assert_non_null(strstr(out, "\nmailferry_bytes_total{protocol=\"imap\",direction=\"server_to_client\"} 512\n"));
	assert_non_null(strstr(out, "\nmailferry_smtp_transactions_total{backend=\"destination\","
				    "result=\"accepted\"} 1\n"));
	assert_non_null(strstr(out, "\nmailferry_smtp_transactions_total{backend=\"destination\","
				    "result=\"rejected\"} 1\n"));
	assert_non_null(strstr(out, "\nmailferry_smtp_recipients_total{backend=\"destination\","
				    "result=\"routed\"} 3\n"));
	assert_non_null(strstr(out, "\nmailferry_smtp_recipients_total{backend=\"destination\","
				    "result=\"refused\"} 1\n"));
	assert_non_null(strstr(out, "\nmailferry_accounts{state=\"MIGRATED\"} 2\n"));
	assert_non_null(strstr(out, "\nmailferry_accounts_on_source 1\n"));
	assert_non_null(strstr(out, "\nmailferry_ledger_up 1\n"));
	free(out);
	out = NULL;
	/* Without the ledger: no accounts family, ledger_up 0, still valid. */
	CAPTURE(out, metrics_text_write(f, &s, NULL));
	check_exposition(out);
	assert_non_null(strstr(out, "\nmailferry_ledger_up 0\n"));
	assert_null(strstr(out, "mailferry_accounts"));
	free(out);
	stats_destroy(&st);
}

/* The histogram writer alone, with a label set that needed escaping. */
static void test_histogram_labels(void **state)
{
	struct stats_hist_snap h = { .bucket = { 0 } };
	struct stats_hist_spec spec = { .n = 2, .le = { 0.5, 2 } };
	char *out = NULL, *head = NULL;
	char text[512];

	(void)state;
	h.bucket[0] = 1;
	h.bucket[1] = 1;
	h.bucket[2] = 4;
	h.count = 4;
	h.sum_us = 12345678;
	CAPTURE(head, metrics_label_value(f, "a\"b"));
	snprintf(text, sizeof(text), "k=\"%s\"", head);
	CAPTURE(out, (fputs("# HELP h x\n# TYPE h histogram\n", f),
		      metrics_histogram(f, "h", &spec, &h, text)));
	assert_string_equal(out, "# HELP h x\n# TYPE h histogram\n"
				 "h_bucket{k=\"a\\\"b\",le=\"0.5\"} 1\n"
				 "h_bucket{k=\"a\\\"b\",le=\"2\"} 1\n"
				 "h_bucket{k=\"a\\\"b\",le=\"+Inf\"} 4\n"
				 "h_sum{k=\"a\\\"b\"} 12.345678\n"
				 "h_count{k=\"a\\\"b\"} 4\n");
	check_exposition(out);
	free(out);
	free(head);
}

static void test_status_json_hostile_names(void **state)
{
	struct stats st;
	struct stats_snapshot s;
	struct stats_copy copies[1];
	struct status_sample ring[2] = { { 1000, 1, 2, 3, 4 }, { 3000, 11, 22, 33, 44 } };
	struct account_tally acc = { .total = 1 };
	char *out = NULL;

	(void)state;
	assert_int_equal(stats_init(&st, 1, 1), MF_OK);
	stats_copy_begin(&st, 0, stats_shard(&st, 0), "x\"</script><b>&\\\n\x01", 5);
	stats_snapshot(&st, &s, copies);
	acc.by_state[AS_PINNED] = 1;
	CAPTURE(out, status_json_write(f, &s, &acc, ring, 2, 99));
	assert_non_null(strstr(out, "\"account\":\"x\\\"\\u003c/script\\u003e\\u003cb\\u003e"
				    "\\u0026\\\\\\u000a\\u0001\""));
	assert_null(strchr(out, '<'));
	assert_non_null(strstr(out, "\"PINNED\":1"));
	assert_non_null(strstr(out, "\"safe\":false"));
	assert_non_null(strstr(out, "\"samples\":[[1000,1,2,3,4],[3000,11,22,33,44]]"));
	free(out);
	out = NULL;
	CAPTURE(out, status_json_write(f, &s, NULL, NULL, 0, 99));
	assert_non_null(strstr(out, "\"accounts\":null,\"retire\":null"));
	free(out);
	stats_destroy(&st);
}

static void test_verdict(void **state)
{
	struct account_tally t = { .total = 0 };
	char buf[256];

	(void)state;
	assert_false(account_tally_retire_safe(&t));
	account_tally_verdict(&t, buf, sizeof(buf));
	assert_non_null(strstr(buf, "no accounts"));
	t.total = 2;
	t.by_state[AS_MIGRATED] = 2;
	assert_true(account_tally_retire_safe(&t));
	account_tally_verdict(&t, buf, sizeof(buf));
	assert_string_equal(buf, "every account the ledger knows is migrated (2)");
	t.total = 6;
	t.by_state[AS_PINNED] = 1;
	t.by_state[AS_UNSEEN] = 1;
	t.by_state[AS_COPYING] = 1;
	t.by_state[AS_FAILED] = 1;
	assert_false(account_tally_retire_safe(&t));
	assert_int_equal(account_tally_on_source(&t), 4);
	account_tally_verdict(&t, buf, sizeof(buf));
	assert_string_equal(buf, "source still needed: 4 of 6 accounts not migrated (1 never seen, "
				 "1 seen or copying, 1 failed, 1 pinned)");
}

static void test_http_host(void **state)
{
	static const char *const good[] = {
		"127.0.0.1", "127.0.0.1:9473", "198.18.0.1:1", "[::1]", "[::1]:9473",
		"[2001:db8::1]:65535", "localhost", "LocalHost:9473",
	};
	static const char *const bad[] = {
		"", ":", ":9473", "[]", "[]:1", "[::1", "::1", "::1:9473", "[127.0.0.1]",
		"[localhost]", "127.0.0.1:", "127.0.0.1:123456", "127.0.0.1:94a3",
		"127.0.0.1:9473:1", "127.0.0.1 ", " 127.0.0.1", "evil.example",
		"evil.example:9473", "localhost.evil.example", "127.0.0.1.nip.io",
		"[::1]x", "[::1]:", "0x7f.1", "127.1",
		"[aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa]",
	};
	char buf[128];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!http_host_is_literal(good[i]))
			fail_msg("refused '%s'", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (http_host_is_literal(bad[i]))
			fail_msg("accepted '%s'", bad[i]);
	/* Every prefix of the hostile values, byte by byte: read within
	 * bounds (ASan) whatever the cut. */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		for (size_t n = 0; n <= strlen(bad[i]); n++) {
			snprintf(buf, sizeof(buf), "%.*s", (int)n, bad[i]);
			(void)http_host_is_literal(buf);
		}
	memset(buf, '1', sizeof(buf) - 1);
	buf[sizeof(buf) - 1] = '\0';
	assert_false(http_host_is_literal(buf));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_escape),
		cmocka_unit_test(test_exposition),
		cmocka_unit_test(test_histogram_labels),
		cmocka_unit_test(test_status_json_hostile_names),
		cmocka_unit_test(test_verdict),
		cmocka_unit_test(test_http_host),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
