/* Unit tests: lib/config.c — defaults, every key, and refusal of typos. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "mf.h"
#include "netaddr.h"

static void test_defaults(void **state)
{
	struct mf_config c;
	char err[200];

	(void)state;
	assert_int_equal(mf_config_parse_string("", &c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.listen_port, 10143);
	assert_int_equal(c.listen4.family, AF_INET);
	assert_int_equal(c.listen6.family, AF_INET6);
	assert_int_equal(c.n_ports, 7);
	assert_int_equal(c.upstream_source, MF_UPSTREAM_CLIENT);
	assert_int_equal(c.fwmark, 0x4d46);
	assert_int_equal(c.n_sources, 0);
}

static void test_full(void **state)
{
	static const char text[] =
		"[gateway]\n"
		"workers = 3\n"
		"listen_port = 20000\n"
		"listen6 = none\n"
		"upstream_source = gateway\n"
		"connect_timeout = 2500 ; ms\n"
		"idle_timeout = 60000\n"
		"drain_timeout = 0\n"
		"pipe_size = 262144\n"
		"max_pipes = 100\n"
		"max_sessions = 50\n"
		"log = syslog\n"
		"log_debug = yes\n"
		"[intercept]\n"
		"sources = 198.18.11.2, 2001:db8:11::2\n"
		"sources = 198.18.11.4\n"
		"ports = 143 993,143\n"
		"clients = 198.18.1.0/24,2001:db8:1::/64\n"
		"fwmark = 0x10\n"
		"route_table = 100\n"
		"rule_priority = 99\n";
	struct mf_config c;
	char err[200];

	(void)state;
	assert_int_equal(mf_config_parse_string(text, &c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.workers, 3);
	assert_int_equal(c.listen_port, 20000);
	assert_int_equal(c.listen6.family, 0);
	assert_int_equal(c.upstream_source, MF_UPSTREAM_GATEWAY);
	assert_int_equal(c.connect_timeout_ms, 2500);
	assert_int_equal(c.drain_timeout_ms, 0);
	assert_int_equal(c.pipe_size, 262144);
	assert_int_equal(c.max_sessions, 50);
	assert_int_equal(c.log_target, MF_LOG_SYSLOG);
	assert_true(c.log_debug);
	assert_int_equal(c.n_sources, 3); /* repeated key appends */
	assert_int_equal(c.n_ports, 2);   /* duplicates folded */
	assert_int_equal(c.ports[0], 143);
	assert_int_equal(c.ports[1], 993);
	assert_int_equal(c.n_clients, 2);
	assert_int_equal(c.clients[1].prefix, 64);
	assert_int_equal(c.fwmark, 0x10);
	assert_int_equal(c.route_table, 100);
	assert_int_equal(c.rule_priority, 99);
}

static void test_upstream_sources(void **state)
{
	struct mf_config c;
	char err[200];

	(void)state;
	assert_int_equal(mf_config_parse_string("[gateway]\nupstream_source = client-ip\n",
						&c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.upstream_source, MF_UPSTREAM_CLIENT_IP);
	assert_int_equal(mf_config_parse_string("[gateway]\nupstream_source = client\n",
						&c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.upstream_source, MF_UPSTREAM_CLIENT);
}

static void expect_error(const char *text, const char *needle)
{
	struct mf_config c;
	char err[200] = "";

	assert_int_equal(mf_config_parse_string(text, &c, err, sizeof(err)), MF_ERROR);
	if (strstr(err, needle) == NULL)
		fail_msg("error '%s' lacks '%s'", err, needle);
}

/* intercept = listen: every source needs its moved address; moved_sources
 * alone names the sources; upstream_source defaults to gateway. */
static void test_listen_mode(void **state)
{
	struct mf_config c;
	struct mf_addr a;
	char err[200], text[MF_ADDRSTRLEN];

	(void)state;
	assert_int_equal(mf_config_parse_string(
		"[gateway]\nintercept = listen\n[intercept]\n"
		"moved_sources = 198.18.11.30=198.18.11.2, 2001:db8:11::30=2001:db8:11::2\n"
		"sources = 198.18.11.30\n", &c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.intercept, MF_INTERCEPT_LISTEN);
	assert_int_equal(c.n_sources, 2);
	assert_int_equal(c.upstream_source, MF_UPSTREAM_GATEWAY);
	mf_addr_format(mf_config_real_source(&c, &c.sources[1]), text, sizeof(text));
	assert_string_equal(text, "2001:db8:11::2");
	assert_int_equal(mf_addr_parse("198.18.99.1", &a), MF_OK);
	assert_ptr_equal(mf_config_real_source(&c, &a), &a);
	assert_int_equal(mf_config_parse_string(
		"[gateway]\nintercept = listen\nupstream_source = client\n[intercept]\n"
		"sources = 198.18.11.30\nmoved_sources = 198.18.11.30=198.18.11.2\n",
		&c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.n_sources, 1);
	assert_int_equal(c.upstream_source, MF_UPSTREAM_CLIENT);
	/* tproxy mode ignores moved addresses for routing. */
	assert_int_equal(mf_config_parse_string(
		"[intercept]\nmoved_sources = 198.18.11.30=198.18.11.2\n", &c, err, sizeof(err)),
		MF_OK);
	assert_ptr_equal(mf_config_real_source(&c, &c.sources[0]), &c.sources[0]);
	expect_error("[gateway]\nintercept = listen\n[intercept]\nsources = 198.18.11.30\n",
		     "no [intercept] moved_sources entry");
	expect_error("[gateway]\nintercept = listen\n", "needs [intercept] moved_sources");
	expect_error("[gateway]\nintercept = bridge\n", "bad value for intercept");
	expect_error("[intercept]\nmoved_sources = 198.18.11.30\n", "bad value");
	expect_error("[intercept]\nmoved_sources = 198.18.11.30=2001:db8::2\n", "bad value");
	expect_error("[intercept]\nmoved_sources = 198.18.11.30=198.18.11.30\n", "bad value");
	expect_error("[intercept]\nmoved_sources = =198.18.11.2\n", "bad value");
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("[gateway]\nlisten_prot = 1\n", "unknown key 'listen_prot'");
	expect_error("[gateweay]\nworkers = 1\n", "unknown section");
	expect_error("[gateway]\nlisten_port = 0\n", "bad value for listen_port");
	expect_error("[gateway]\nlisten_port = 65536\n", "bad value");
	expect_error("[gateway]\nlisten_port = -5\n", "bad value");
	expect_error("[gateway]\nlisten_port = 12x\n", "bad value");
	expect_error("[gateway]\nlisten4 = 2001:db8::1\n", "bad value for listen4");
	expect_error("[gateway]\nlisten4 = none\nlisten6 = none\n", "both off");
	expect_error("[gateway]\nupstream_source = server\n", "bad value");
	expect_error("[gateway]\nupstream_source = client_ip\n", "bad value");
	expect_error("[gateway]\nlog_debug = maybe\n", "bad value");
	expect_error("[intercept]\nsources = 198.18.11.300\n", "bad value for sources");
	expect_error("[intercept]\nclients = 198.18.1.1/24\n", "bad value for clients");
	expect_error("[intercept]\nports = 0\n", "bad value for ports");
	expect_error("[intercept]\nroute_table = 254\n", "bad value for route_table");
	expect_error("[intercept]\nports = \n", "ports is empty");
	expect_error("[gateway]\nworkers\n", "syntax error");
}

static void test_ledger(void **state)
{
	struct mf_config c;
	char err[200];

	(void)state;
	assert_int_equal(mf_config_parse_string("", &c, err, sizeof(err)), MF_OK);
	assert_string_equal(c.ledger_path, "/var/lib/mailferry/ledger.db");
	assert_string_equal(c.ledger_default_domain, "");
	assert_true(c.ledger_domain_equivalence);
	assert_int_equal(mf_config_parse_string("[ledger]\n"
						"path = /tmp/l.db\n"
						"default_domain = Example.org\n"
						"domain_equivalence = no\n",
						&c, err, sizeof(err)), MF_OK);
	assert_string_equal(c.ledger_path, "/tmp/l.db");
	assert_string_equal(c.ledger_default_domain, "Example.org");
	assert_false(c.ledger_domain_equivalence);
	expect_error("[ledger]\npath =\n", "bad value for path");
	expect_error("[ledger]\ndefault_domain = a@b\n", "bad value for default_domain");
	expect_error("[ledger]\ndomain_equivalence = perhaps\n", "bad value");
	expect_error("[ledger]\nfile = x\n", "unknown key 'file'");
	/* several gateways */
	assert_int_equal(mf_config_parse_string("", &c, err, sizeof(err)), MF_OK);
	assert_true(c.gateway_id[0] != '\0');
	assert_int_equal(c.route_cache_size, 65536);
	assert_int_equal(c.route_cache_ttl_ms, 2000);
	assert_int_equal(c.lease_ms, 30000);
	assert_int_equal(mf_config_parse_string("[ledger]\n"
						"gateway_id = gw-2.example\n"
						"cache_size = 0\n"
						"cache_ttl_ms = 500\n"
						"lease_ms = 3000\n"
						"cutover_settle_ms = 0\n",
						&c, err, sizeof(err)), MF_OK);
	assert_string_equal(c.gateway_id, "gw-2.example");
	assert_int_equal(c.route_cache_size, 0);
	assert_int_equal(c.route_cache_ttl_ms, 500);
	assert_int_equal(c.lease_ms, 3000);
	assert_int_equal(c.cutover_settle_ms, 0);
	expect_error("[ledger]\ngateway_id = gw 2\n", "bad value for gateway_id");
	expect_error("[ledger]\ngateway_id =\n", "bad value for gateway_id");
	expect_error("[ledger]\nlease_ms = 999\n", "bad value for lease_ms");
}

static void test_admin(void **state)
{
	struct mf_config c;
	char err[200], text[300];

	(void)state;
	assert_int_equal(mf_config_parse_string("", &c, err, sizeof(err)), MF_OK);
	assert_string_equal(c.admin_socket, "/run/mailferry/admin.sock");
	assert_int_equal(mf_config_parse_string("[admin]\nsocket = /tmp/x/a.sock\n", &c, err,
						sizeof(err)), MF_OK);
	assert_string_equal(c.admin_socket, "/tmp/x/a.sock");
	expect_error("[admin]\nsocket = run/a.sock\n", "bad value for socket");
	expect_error("[admin]\nsocket =\n", "bad value for socket");
	expect_error("[admin]\nmode = 0666\n", "unknown key 'mode'");
	/* sun_path holds 107 bytes and a NUL. */
	snprintf(text, sizeof(text), "[admin]\nsocket = /%0106d\n", 0);
	assert_int_equal(mf_config_parse_string(text, &c, err, sizeof(err)), MF_OK);
	assert_int_equal(strlen(c.admin_socket), 107);
	snprintf(text, sizeof(text), "[admin]\nsocket = /%0107d\n", 0);
	expect_error(text, "bad value for socket");
}

static void test_imap_front(void **state)
{
	struct mf_config c;
	char err[200];

	(void)state;
	assert_int_equal(mf_config_parse_string("", &c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.n_imap_ports, 1);
	assert_int_equal(c.imap_ports[0], 143);
	assert_int_equal(c.preauth_timeout_ms, 60000);
	assert_int_equal(c.preauth_max_errors, 10);
	assert_int_equal(c.preauth_per_client, 20);
	assert_int_equal(c.dest4.family, 0);
	assert_int_equal(c.dest6.family, 0);
	assert_int_equal(mf_config_parse_string("[gateway]\n"
						"imap_ports = 143, 1143\n"
						"preauth_timeout = 5000\n"
						"preauth_max_errors = 3\n"
						"preauth_per_client = 5\n"
						"[intercept]\n"
						"destination = 198.18.11.3, 2001:db8:11::3\n",
						&c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.n_imap_ports, 2);
	assert_int_equal(c.imap_ports[1], 1143);
	assert_int_equal(c.preauth_timeout_ms, 5000);
	assert_int_equal(c.preauth_max_errors, 3);
	assert_int_equal(c.preauth_per_client, 5);
	assert_int_equal(c.dest4.family, AF_INET);
	assert_int_equal(c.dest6.family, AF_INET6);
	assert_int_equal(mf_config_parse_string("[gateway]\npreauth_per_client = 0\n",
						&c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.preauth_per_client, 0);
	expect_error("[gateway]\npreauth_per_client = -1\n", "bad value");
	expect_error("[gateway]\npreauth_per_client = lots\n", "bad value");
	assert_int_equal(mf_config_parse_string("[gateway]\nimap_ports =\n",
						&c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.n_imap_ports, 0);
	assert_int_equal(mf_config_parse_string("[gateway]\nimap_ports = none\n",
						&c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.n_imap_ports, 0);
	expect_error("[gateway]\nimap_ports = 0\n", "bad value for imap_ports");
	assert_int_equal(mf_config_parse_string("", &c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.n_pop3_ports, 1);
	assert_int_equal(c.pop3_ports[0], 110);
	assert_int_equal(mf_config_parse_string("[gateway]\npop3_ports = 110, 1110, 110\n",
						&c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.n_pop3_ports, 2);
	assert_int_equal(c.pop3_ports[1], 1110);
	assert_int_equal(mf_config_parse_string("[gateway]\npop3_ports =\n",
						&c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.n_pop3_ports, 0);
	assert_int_equal(mf_config_parse_string("[gateway]\npop3_ports = none\n",
						&c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.n_pop3_ports, 0);
	expect_error("[gateway]\npop3_ports = 65536\n", "bad value for pop3_ports");
	expect_error("[gateway]\npop3_ports = 143\n", "both imap_ports and pop3_ports");
	assert_int_equal(mf_config_parse_string("", &c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.n_smtp_ports, 1);
	assert_int_equal(c.smtp_ports[0], 25);
	assert_int_equal(c.n_submission_ports, 0);
	assert_false(c.smtp_xclient);
	assert_int_equal(mf_config_parse_string("[gateway]\nsmtp_ports = 25, 2525\n"
						"submission_ports = 587\nsmtp_xclient = yes\n",
						&c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.n_smtp_ports, 2);
	assert_int_equal(c.smtp_ports[1], 2525);
	assert_int_equal(c.n_submission_ports, 1);
	assert_int_equal(c.submission_ports[0], 587);
	assert_true(c.smtp_xclient);
	assert_int_equal(mf_config_parse_string("[gateway]\nsmtp_ports = none\n",
						&c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.n_smtp_ports, 0);
	expect_error("[gateway]\nsubmission_ports = 25\n", "both smtp_ports and submission_ports");
	expect_error("[gateway]\nsmtp_ports = 110\n", "both pop3_ports and smtp_ports");
	expect_error("[gateway]\nsmtp_xclient = maybe\n", "bad value");
	expect_error("[gateway]\npreauth_max_errors = 0\n", "bad value");
	expect_error("[intercept]\ndestination = 198.18.11.3, 198.18.11.4\n",
		     "bad value for destination");
	expect_error("[intercept]\ndestination = new.example\n", "bad value");
}

static void test_tls(void **state)
{
	static const char text[] =
		"[tls]\n"
		"cert = /etc/mailferry/a.pem\n"
		"key = /etc/mailferry/a.key\n"
		"cert = /etc/mailferry/b.pem\n"
		"key = /etc/mailferry/b.key\n"
		"imaps_ports = 993, 1993\n"
		"pop3s_ports = none\n"
		"backend_tls = starttls\n"
		"backend_ca = /etc/ssl/certs/ca.pem\n"
		"backend_name = mail.example.org\n";
	struct mf_config c;
	char err[200];

	(void)state;
	assert_int_equal(mf_config_parse_string("", &c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.n_tls_certs, 0);
	assert_int_equal(c.n_imaps_ports, 1);
	assert_int_equal(c.imaps_ports[0], 993);
	assert_int_equal(c.pop3s_ports[0], 995);
	assert_int_equal(c.backend_tls, MF_BACKEND_TLS_NONE);

	assert_int_equal(mf_config_parse_string(text, &c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.n_tls_certs, 2);
	assert_string_equal(c.tls_cert[1], "/etc/mailferry/b.pem");
	assert_string_equal(c.tls_key[0], "/etc/mailferry/a.key");
	assert_int_equal(c.n_imaps_ports, 2);
	assert_int_equal(c.imaps_ports[1], 1993);
	assert_int_equal(c.n_pop3s_ports, 0);
	assert_int_equal(c.backend_tls, MF_BACKEND_TLS_STARTTLS);
	assert_string_equal(c.backend_ca, "/etc/ssl/certs/ca.pem");
	assert_string_equal(c.backend_name, "mail.example.org");

	expect_error("[tls]\ncert = a.pem\n", "pairs");
	expect_error("[tls]\nbackend_tls = sometimes\n", "backend_tls");
	expect_error("[tls]\nimaps_ports = 143\n", "imap_ports and imaps_ports");
	expect_error("[tls]\ncert = \n", "cert");
	expect_error("[tls]\nbackend_name = a b\n", "backend_name");
}

static void test_migrate(void **state)
{
	struct mf_config c;
	char err[200] = "";

	(void)state;
	assert_int_equal(mf_config_parse_string("", &c, err, sizeof(err)), MF_OK);
	assert_false(c.migrate_enabled);
	assert_int_equal(c.migrate_workers, 1);
	assert_int_equal(c.migrate_queue, 64);
	assert_int_equal(c.migrate_source_port, 143);
	assert_int_equal(c.migrate_destination_port, 143);
	assert_string_equal(c.migrate_state_dir, "/var/lib/mailferry/migrate");
	assert_int_equal(mf_config_parse_string("[migrate]\nenabled = yes\nstrategy = live\n"
						"workers = 3\nqueue = 8\n"
						"state_dir = /srv/mf/state\nsource_port = 1143\n"
						"destination_port = 2143\ntimeout_ms = 5000\n"
						"cutover_wait_ms = 700\n", &c, err, sizeof(err)),
			 MF_OK);
	assert_true(c.migrate_enabled);
	assert_int_equal(c.migrate_workers, 3);
	assert_int_equal(c.migrate_queue, 8);
	assert_string_equal(c.migrate_state_dir, "/srv/mf/state");
	assert_int_equal(c.migrate_source_port, 1143);
	assert_int_equal(c.migrate_destination_port, 2143);
	assert_int_equal(c.migrate_timeout_ms, 5000);
	assert_int_equal(c.migrate_cutover_wait_ms, 700);

	assert_int_equal(c.migrate_strategy, MF_STRATEGY_LIVE);
	assert_int_equal(mf_config_parse_string("[migrate]\nstrategy = immediate\n"
						"immediate_wait = 90\n", &c, err, sizeof(err)),
			 MF_OK);
	assert_int_equal(c.migrate_strategy, MF_STRATEGY_IMMEDIATE);
	assert_int_equal(c.migrate_immediate_wait_ms, 90000);
	assert_int_equal(mf_config_parse_string("[migrate]\nstrategy = after-logout\n", &c, err,
						sizeof(err)), MF_OK);
	assert_int_equal(c.migrate_strategy, MF_STRATEGY_AFTER_LOGOUT);
	assert_int_equal(c.migrate_immediate_wait_ms, 60000);
	assert_int_equal(c.migrate_source_connections, 4);
	assert_int_equal(c.migrate_max_messages_per_s, 0);
	assert_int_equal(c.migrate_max_bytes_per_s, 0);
	assert_int_equal(c.migrate_busy_retries, 5);
	assert_int_equal(c.migrate_busy_wait_max_s, 300);
	assert_int_equal(c.migrate_retry_max_s, 7 * 86400);
	assert_int_equal(mf_config_parse_string("[migrate]\nsource_connections = 1\n"
						"max_messages_per_second = 200\n"
						"max_bytes_per_second = 10000000000\n"
						"busy_retries = 0\nbusy_wait_max = 60\n"
						"retry_max = 86400\n", &c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.migrate_source_connections, 1);
	assert_int_equal(c.migrate_max_messages_per_s, 200);
	assert_int_equal(c.migrate_max_bytes_per_s, 10000000000ULL);
	assert_int_equal(c.migrate_busy_retries, 0);
	assert_int_equal(c.migrate_busy_wait_max_s, 60);
	assert_int_equal(c.migrate_retry_max_s, 86400);
	assert_int_equal(c.migrate_verify_sample, 100);
	assert_int_equal(mf_config_parse_string("[migrate]\nverify_sample = 5\n", &c, err,
						sizeof(err)), MF_OK);
	assert_int_equal(c.migrate_verify_sample, 5);
	assert_int_equal(c.migrate_max_inflight_bytes, 32ul << 20);
	assert_int_equal(c.migrate_batch, 100);
	assert_int_equal(mf_config_parse_string("[migrate]\nmax_inflight_bytes = 1048576\n"
						"batch = 7\n", &c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.migrate_max_inflight_bytes, 1048576);
	assert_int_equal(c.migrate_batch, 7);
	expect_error("[migrate]\nmax_inflight_bytes = 65535\n", "max_inflight_bytes");
	expect_error("[migrate]\nmax_inflight_bytes = 1073741825\n", "max_inflight_bytes");
	expect_error("[migrate]\nbatch = 0\n", "batch");
	expect_error("[migrate]\nbatch = 1025\n", "batch");
	expect_error("[migrate]\nverify_sample = 0\n", "verify_sample");
	expect_error("[migrate]\nverify_sample = 101\n", "verify_sample");
	expect_error("[migrate]\nretry_max = 0\n", "retry_max");
	expect_error("[migrate]\nbusy_wait_max = 86401\n", "busy_wait_max");
	expect_error("[migrate]\nmax_bytes_per_second = -1\n", "max_bytes_per_second");
	expect_error("[migrate]\nstrategy = eventually\n", "strategy");
	expect_error("[migrate]\nimmediate_wait = 0\n", "immediate_wait");
	expect_error("[migrate]\nimmediate_wait = 601\n", "immediate_wait");
	expect_error("[migrate]\nworkers = 0\n", "workers");
	expect_error("[migrate]\nworkers = 65\n", "workers");
	expect_error("[migrate]\nqueue = 0\n", "queue");
	expect_error("[migrate]\nstate_dir = relative\n", "state_dir");
	expect_error("[migrate]\nsource_port = 70000\n", "source_port");
	expect_error("[migrate]\nmaster = x\n", "master");
}

static void test_metrics(void **state)
{
	struct mf_config c;
	char err[200] = "", text[64];

	(void)state;
	assert_int_equal(mf_config_parse_string("", &c, err, sizeof(err)), MF_OK);
	assert_true(c.metrics_on);
	mf_addr_format(&c.metrics_addr, text, sizeof(text));
	assert_string_equal(text, "127.0.0.1");
	assert_int_equal(c.metrics_port, 9473);
	assert_int_equal(mf_config_parse_string("[metrics]\nlisten = off\n", &c, err, sizeof(err)),
			 MF_OK);
	assert_false(c.metrics_on);
	assert_int_equal(mf_config_parse_string("[metrics]\nlisten = [::1]:9100\n", &c, err,
						sizeof(err)), MF_OK);
	assert_true(c.metrics_on);
	mf_addr_format(&c.metrics_addr, text, sizeof(text));
	assert_string_equal(text, "::1");
	assert_int_equal(c.metrics_port, 9100);
	assert_int_equal(mf_config_parse_string("[metrics]\nlisten = 198.18.0.1:80\n", &c, err,
						sizeof(err)), MF_OK);
	assert_int_equal(c.metrics_port, 80);
	expect_error("[metrics]\nlisten = ::1:9473\n", "listen");
	expect_error("[metrics]\nlisten = 127.0.0.1\n", "listen");
	expect_error("[metrics]\nlisten = 127.0.0.1:0\n", "listen");
	expect_error("[metrics]\nlisten = 127.0.0.1:65536\n", "listen");
	expect_error("[metrics]\nlisten = localhost:9473\n", "listen");
	expect_error("[metrics]\nlisten = :9473\n", "listen");
	expect_error("[metrics]\nlisten = []:9473\n", "listen");
	expect_error("[metrics]\nport = 9473\n", "port");
}

static void test_migrate_tls_master(void **state)
{
	struct mf_config c;
	char err[200] = "";

	(void)state;
	assert_int_equal(mf_config_parse_string("", &c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.migrate_source_tls, MF_BACKEND_TLS_NONE);
	assert_int_equal(c.migrate_destination_tls, MF_BACKEND_TLS_NONE);
	assert_string_equal(c.migrate_master_user, "");
	assert_int_equal(mf_config_parse_string("[migrate]\nsource_tls = starttls\n"
						"destination_tls = implicit\n"
						"tls_ca = /etc/ssl/lab-ca.pem\n"
						"source_name = old.example.org\n"
						"destination_name = new.example.org\n"
						"master_user = mfmaster\n"
						"master_password_file = /etc/mailferry/master\n",
						&c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.migrate_source_tls, MF_BACKEND_TLS_STARTTLS);
	assert_int_equal(c.migrate_destination_tls, MF_BACKEND_TLS_IMPLICIT);
	assert_string_equal(c.migrate_tls_ca, "/etc/ssl/lab-ca.pem");
	assert_string_equal(c.migrate_source_name, "old.example.org");
	assert_string_equal(c.migrate_destination_name, "new.example.org");
	assert_string_equal(c.migrate_master_user, "mfmaster");
	assert_string_equal(c.migrate_master_password_file, "/etc/mailferry/master");

	expect_error("[migrate]\nsource_tls = maybe\n", "source_tls");
	expect_error("[migrate]\ndestination_name = a b\n", "destination_name");
	expect_error("[migrate]\nmaster_user = a b\n", "master_user");
	expect_error("[migrate]\nmaster_password_file = relative\n", "master_password_file");
	/* One without the other would fail only at the first copy. */
	expect_error("[migrate]\nmaster_user = m\n", "go together");
	expect_error("[migrate]\nmaster_password_file = /x\n", "go together");
	assert_false(c.migrate_source_pop3);
	assert_int_equal(mf_config_parse_string("[migrate]\nsource_protocol = pop3\n", &c, err,
						sizeof(err)), MF_OK);
	assert_true(c.migrate_source_pop3);
	expect_error("[migrate]\nsource_protocol = smtp\n", "source_protocol");
}

static void test_mode(void **state)
{
	struct mf_config c;
	char err[200] = "";

	(void)state;
	assert_int_equal(mf_config_parse_string("", &c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.mode, MF_MODE_ROUTER);
	assert_string_equal(c.bridge, "br0");
	assert_int_equal(mf_config_parse_string("[intercept]\nmode = bridge\nbridge = brmail\n",
						&c, err, sizeof(err)), MF_OK);
	assert_int_equal(c.mode, MF_MODE_BRIDGE);
	assert_string_equal(c.bridge, "brmail");
	assert_int_equal(mf_config_parse_string("[intercept]\nmode = router\n", &c, err,
						sizeof(err)), MF_OK);
	assert_int_equal(c.mode, MF_MODE_ROUTER);
	/* 15 characters is the kernel's limit for a device name. */
	assert_int_equal(mf_config_parse_string("[intercept]\nbridge = abcdefghijklmno\n",
						&c, err, sizeof(err)), MF_OK);
	expect_error("[intercept]\nbridge = abcdefghijklmnop\n", "bridge");
	expect_error("[intercept]\nmode = switch\n", "mode");
	expect_error("[intercept]\nmode = Bridge\n", "mode");
	expect_error("[intercept]\nbridge = \n", "bridge");
	expect_error("[intercept]\nbridge = br/0\n", "bridge");
	expect_error("[intercept]\nbridge = ..\n", "bridge");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_upstream_sources),
		cmocka_unit_test(test_listen_mode),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_ledger),
		cmocka_unit_test(test_admin),
		cmocka_unit_test(test_imap_front),
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_migrate),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_migrate_tls_master),
		cmocka_unit_test(test_mode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
