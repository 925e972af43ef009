#include "config.h"
#include "mf.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>

struct parse_ctx {
	struct mf_config *cfg;
	char *err;
	size_t errlen;
	bool failed;
	/* List keys replace the defaults on first mention, then append
	 * (a key may be repeated). */
	bool seen_sources, seen_ports, seen_clients, seen_imap_ports, seen_pop3_ports,
	     seen_smtp_ports, seen_submission_ports, seen_dest, seen_imaps_ports,
	     seen_pop3s_ports, seen_smtps_ports;
};

static int parse_uint(const char *v, unsigned long min, unsigned long max,
		      unsigned long *out)
{
	char *end;
	unsigned long x;

	if (*v == '\0' || *v == '-')
		return MF_ERROR;
	errno = 0;
	x = strtoul(v, &end, 0);
	if (errno != 0 || *end != '\0' || x < min || x > max)
		return MF_ERROR;
	*out = x;
	return MF_OK;
}

static int parse_bool(const char *v, bool *out)
{
	if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1")) {
		*out = true;
		return MF_OK;
	}
	if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcmp(v, "0")) {
		*out = false;
		return MF_OK;
	}
	return MF_ERROR;
}

/* Calls fn on each comma- or space-separated item of v. */
static int for_each_item(const char *v, int (*fn)(struct parse_ctx *, const char *),
			 struct parse_ctx *ctx)
{
	char item[MF_ADDRSTRLEN + 8];
	const char *p = v;

	while (*p) {
		size_t n;

		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		n = strcspn(p, ", \t");
		if (n >= sizeof(item))
			return MF_ERROR;
		memcpy(item, p, n);
		item[n] = '\0';
		if (fn(ctx, item) != MF_OK)
			return MF_ERROR;
		p += n;
	}
	return MF_OK;
}

static int add_source(struct parse_ctx *ctx, const char *item)
{
	struct mf_config *c = ctx->cfg;

	struct mf_addr a;

	if (mf_addr_parse(item, &a) != MF_OK)
		return MF_ERROR;
	/* Named already (also by moved_sources): once is enough. */
	for (unsigned int i = 0; i < c->n_sources; i++)
		if (mf_addr_equal(&c->sources[i], &a))
			return MF_OK;
	if (c->n_sources >= MF_MAX_SOURCES)
		return MF_ERROR;
	c->sources[c->n_sources++] = a;
	return MF_OK;
}

/* "OLD=NEW": sources[i] == OLD now answers at NEW (listen mode). A
 * source not (yet) listed gets one; the families must agree. */
static int add_moved(struct parse_ctx *ctx, const char *item)
{
	struct mf_config *c = ctx->cfg;
	char from[MF_ADDRSTRLEN + 8];
	const char *eq = strchr(item, '=');
	struct mf_addr a, b;
	unsigned int i;

	if (eq == NULL || (size_t)(eq - item) >= sizeof(from))
		return MF_ERROR;
	memcpy(from, item, (size_t)(eq - item));
	from[eq - item] = '\0';
	if (mf_addr_parse(from, &a) != MF_OK || mf_addr_parse(eq + 1, &b) != MF_OK ||
	    a.family != b.family || mf_addr_equal(&a, &b))
		return MF_ERROR;
	for (i = 0; i < c->n_sources && !mf_addr_equal(&c->sources[i], &a); i++)
		;
	if (i == c->n_sources) {
		if (c->n_sources >= MF_MAX_SOURCES)
			return MF_ERROR;
		if (!ctx->seen_sources)
			c->n_sources = i = 0;
		ctx->seen_sources = true;
		c->sources[c->n_sources++] = a;
	}
	c->moved[i] = b;
	return MF_OK;
}

static int add_port(struct parse_ctx *ctx, const char *item)
{
	struct mf_config *c = ctx->cfg;
	unsigned long v;

	if (c->n_ports >= MF_MAX_PORTS || parse_uint(item, 1, 65535, &v) != MF_OK)
		return MF_ERROR;
	for (unsigned int i = 0; i < c->n_ports; i++)
		if (c->ports[i] == v)
			return MF_OK;
	c->ports[c->n_ports++] = (uint16_t)v;
	return MF_OK;
}

static int add_port_to(uint16_t *ports, unsigned int *n, const char *item)
{
	unsigned long v;

	if (*n >= MF_MAX_PORTS || parse_uint(item, 1, 65535, &v) != MF_OK)
		return MF_ERROR;
	for (unsigned int i = 0; i < *n; i++)
		if (ports[i] == v)
			return MF_OK;
	ports[(*n)++] = (uint16_t)v;
	return MF_OK;
}

static int add_imap_port(struct parse_ctx *ctx, const char *item)
{
	return add_port_to(ctx->cfg->imap_ports, &ctx->cfg->n_imap_ports, item);
}

static int add_pop3_port(struct parse_ctx *ctx, const char *item)
{
	return add_port_to(ctx->cfg->pop3_ports, &ctx->cfg->n_pop3_ports, item);
}

static int add_imaps_port(struct parse_ctx *ctx, const char *item)
{
	return add_port_to(ctx->cfg->imaps_ports, &ctx->cfg->n_imaps_ports, item);
}

static int add_pop3s_port(struct parse_ctx *ctx, const char *item)
{
	return add_port_to(ctx->cfg->pop3s_ports, &ctx->cfg->n_pop3s_ports, item);
}

static int add_smtps_port(struct parse_ctx *ctx, const char *item)
{
	return add_port_to(ctx->cfg->smtps_ports, &ctx->cfg->n_smtps_ports, item);
}

static int add_smtp_port(struct parse_ctx *ctx, const char *item)
{
	return add_port_to(ctx->cfg->smtp_ports, &ctx->cfg->n_smtp_ports, item);
}

static int add_submission_port(struct parse_ctx *ctx, const char *item)
{
	return add_port_to(ctx->cfg->submission_ports, &ctx->cfg->n_submission_ports, item);
}

/* One address per family: a second of the same family is an error. */
static int add_destination(struct parse_ctx *ctx, const char *item)
{
	struct mf_config *c = ctx->cfg;
	struct mf_addr a, *slot;

	if (mf_addr_parse(item, &a) != MF_OK)
		return MF_ERROR;
	slot = a.family == AF_INET ? &c->dest4 : &c->dest6;
	if (slot->family != 0)
		return MF_ERROR;
	*slot = a;
	return MF_OK;
}

static int add_client(struct parse_ctx *ctx, const char *item)
{
	struct mf_config *c = ctx->cfg;

	if (c->n_clients >= MF_MAX_CLIENTS)
		return MF_ERROR;
	return mf_cidr_parse(item, &c->clients[c->n_clients++]);
}

static int parse_listen(const char *v, int family, struct mf_addr *out)
{
	if (*v == '\0' || !strcasecmp(v, "none")) {
		memset(out, 0, sizeof(*out));
		return MF_OK;
	}
	if (mf_addr_parse(v, out) != MF_OK || out->family != family)
		return MF_ERROR;
	return MF_OK;
}

static int set_gateway(struct parse_ctx *ctx, const char *k, const char *v)
{
	struct mf_config *c = ctx->cfg;
	unsigned long x;

	if (!strcmp(k, "workers")) {
		if (parse_uint(v, 0, 256, &x))
			return MF_ERROR;
		c->workers = (unsigned int)x;
	} else if (!strcmp(k, "listen_port")) {
		if (parse_uint(v, 1, 65535, &x))
			return MF_ERROR;
		c->listen_port = (uint16_t)x;
	} else if (!strcmp(k, "listen4")) {
		return parse_listen(v, AF_INET, &c->listen4);
	} else if (!strcmp(k, "listen6")) {
		return parse_listen(v, AF_INET6, &c->listen6);
	} else if (!strcmp(k, "intercept")) {
		if (!strcmp(v, "tproxy"))
			c->intercept = MF_INTERCEPT_TPROXY;
		else if (!strcmp(v, "listen"))
			c->intercept = MF_INTERCEPT_LISTEN;
		else
			return MF_ERROR;
	} else if (!strcmp(k, "upstream_source")) {
		c->upstream_source_given = true;
		if (!strcmp(v, "client"))
			c->upstream_source = MF_UPSTREAM_CLIENT;
		else if (!strcmp(v, "client-ip"))
			c->upstream_source = MF_UPSTREAM_CLIENT_IP;
		else if (!strcmp(v, "gateway"))
			c->upstream_source = MF_UPSTREAM_GATEWAY;
		else
			return MF_ERROR;
	} else if (!strcmp(k, "connect_timeout")) {
		if (parse_uint(v, 1, 600000, &x))
			return MF_ERROR;
		c->connect_timeout_ms = (unsigned int)x;
	} else if (!strcmp(k, "idle_timeout")) {
		if (parse_uint(v, 1, 86400000, &x))
			return MF_ERROR;
		c->idle_timeout_ms = (unsigned int)x;
	} else if (!strcmp(k, "drain_timeout")) {
		if (parse_uint(v, 0, 86400000, &x))
			return MF_ERROR;
		c->drain_timeout_ms = (unsigned int)x;
	} else if (!strcmp(k, "pipe_size")) {
		if (parse_uint(v, 4096, 16u << 20, &x))
			return MF_ERROR;
		c->pipe_size = (unsigned int)x;
	} else if (!strcmp(k, "max_pipes")) {
		if (parse_uint(v, 1, 1000000, &x))
			return MF_ERROR;
		c->max_pipes = (unsigned int)x;
	} else if (!strcmp(k, "max_sessions")) {
		if (parse_uint(v, 1, 1000000, &x))
			return MF_ERROR;
		c->max_sessions = (unsigned int)x;
	} else if (!strcmp(k, "log")) {
		if (!strcmp(v, "stderr"))
			c->log_target = MF_LOG_STDERR;
		else if (!strcmp(v, "syslog"))
			c->log_target = MF_LOG_SYSLOG;
		else
			return MF_ERROR;
	} else if (!strcmp(k, "log_debug")) {
		return parse_bool(v, &c->log_debug);
	} else if (!strcmp(k, "imap_ports")) {
		if (!ctx->seen_imap_ports)
			c->n_imap_ports = 0;
		ctx->seen_imap_ports = true;
		if (!strcasecmp(v, "none"))
			return MF_OK;
		return for_each_item(v, add_imap_port, ctx);
	} else if (!strcmp(k, "pop3_ports")) {
		if (!ctx->seen_pop3_ports)
			c->n_pop3_ports = 0;
		ctx->seen_pop3_ports = true;
		if (!strcasecmp(v, "none"))
			return MF_OK;
		return for_each_item(v, add_pop3_port, ctx);
	} else if (!strcmp(k, "smtp_ports")) {
		if (!ctx->seen_smtp_ports)
			c->n_smtp_ports = 0;
		ctx->seen_smtp_ports = true;
		if (!strcasecmp(v, "none"))
			return MF_OK;
		return for_each_item(v, add_smtp_port, ctx);
	} else if (!strcmp(k, "submission_ports")) {
		if (!ctx->seen_submission_ports)
			c->n_submission_ports = 0;
		ctx->seen_submission_ports = true;
		if (!strcasecmp(v, "none"))
			return MF_OK;
		return for_each_item(v, add_submission_port, ctx);
	} else if (!strcmp(k, "smtp_xclient")) {
		return parse_bool(v, &c->smtp_xclient);
	} else if (!strcmp(k, "preauth_timeout")) {
		if (parse_uint(v, 100, 3600000, &x))
			return MF_ERROR;
		c->preauth_timeout_ms = (unsigned int)x;
	} else if (!strcmp(k, "preauth_max_errors")) {
		if (parse_uint(v, 1, 1000, &x))
			return MF_ERROR;
		c->preauth_max_errors = (unsigned int)x;
	} else if (!strcmp(k, "preauth_per_client")) {
		if (parse_uint(v, 0, 1000000, &x))
			return MF_ERROR;
		c->preauth_per_client = (unsigned int)x;
	} else if (!strcmp(k, "forward_client_address")) {
		return parse_bool(v, &c->forward_client_address);
	} else if (!strcmp(k, "user")) {
		size_t n = strlen(v);

		if (n >= sizeof(c->user) || strpbrk(v, " \t:/") != NULL)
			return MF_ERROR;
		memcpy(c->user, v, n + 1);
	} else if (!strcmp(k, "syn_rate_per_client")) {
		if (parse_uint(v, 0, 1000000, &x))
			return MF_ERROR;
		c->syn_rate_per_client = (unsigned int)x;
	} else if (!strcmp(k, "max_sessions_per_client")) {
		if (parse_uint(v, 0, 1000000, &x))
			return MF_ERROR;
		c->max_sessions_per_client = (unsigned int)x;
	} else if (!strcmp(k, "syn_burst_per_client")) {
		if (parse_uint(v, 1, 1000000, &x))
			return MF_ERROR;
		c->syn_burst_per_client = (unsigned int)x;
	} else {
		return MF_AGAIN; /* unknown key */
	}
	return MF_OK;
}

static int set_intercept(struct parse_ctx *ctx, const char *k, const char *v)
{
	struct mf_config *c = ctx->cfg;
	unsigned long x;

	if (!strcmp(k, "sources")) {
		if (!ctx->seen_sources)
			c->n_sources = 0;
		ctx->seen_sources = true;
		return for_each_item(v, add_source, ctx);
	} else if (!strcmp(k, "ports")) {
		if (!ctx->seen_ports)
			c->n_ports = 0;
		ctx->seen_ports = true;
		return for_each_item(v, add_port, ctx);
	} else if (!strcmp(k, "clients")) {
		if (!ctx->seen_clients)
			c->n_clients = 0;
		ctx->seen_clients = true;
		return for_each_item(v, add_client, ctx);
	} else if (!strcmp(k, "moved_sources")) {
		return for_each_item(v, add_moved, ctx);
	} else if (!strcmp(k, "destination")) {
		if (!ctx->seen_dest)
			memset(&c->dest4, 0, sizeof(c->dest4)), memset(&c->dest6, 0, sizeof(c->dest6));
		ctx->seen_dest = true;
		return for_each_item(v, add_destination, ctx);
	} else if (!strcmp(k, "fwmark")) {
		if (parse_uint(v, 1, 0xffffffffUL, &x))
			return MF_ERROR;
		c->fwmark = (uint32_t)x;
	} else if (!strcmp(k, "route_table")) {
		/* 253..255 are default/main/local: never ours. */
		if (parse_uint(v, 1, 0xfffffffeUL, &x) || (x >= 253 && x <= 255))
			return MF_ERROR;
		c->route_table = (uint32_t)x;
	} else if (!strcmp(k, "observe")) {
		return parse_bool(v, &c->observe);
	} else if (!strcmp(k, "mode")) {
		if (!strcmp(v, "router"))
			c->mode = MF_MODE_ROUTER;
		else if (!strcmp(v, "bridge"))
			c->mode = MF_MODE_BRIDGE;
		else
			return MF_ERROR;
	} else if (!strcmp(k, "bridge")) {
		size_t n = strlen(v);

		/* What the kernel takes as a device name. */
		if (n == 0 || n >= sizeof(c->bridge) || strpbrk(v, " \t/:") != NULL ||
		    !strcmp(v, ".") || !strcmp(v, ".."))
			return MF_ERROR;
		memcpy(c->bridge, v, n + 1);
	} else if (!strcmp(k, "fail")) {
		if (!strcmp(v, "auto"))
			c->fail = MF_FAIL_AUTO;
		else if (!strcmp(v, "open"))
			c->fail = MF_FAIL_OPEN;
		else if (!strcmp(v, "closed"))
			c->fail = MF_FAIL_CLOSED;
		else
			return MF_ERROR;
	} else if (!strcmp(k, "queue_num")) {
		if (parse_uint(v, 0, 65535, &x))
			return MF_ERROR;
		c->queue_num = (uint16_t)x;
	} else if (!strcmp(k, "gate_mark")) {
		if (parse_uint(v, 1, 0xfffffffeUL, &x))
			return MF_ERROR;
		c->gate_mark = (uint32_t)x;
	} else if (!strcmp(k, "rule_priority")) {
		if (parse_uint(v, 1, 32765, &x))
			return MF_ERROR;
		c->rule_priority = (uint32_t)x;
	} else {
		return MF_AGAIN;
	}
	return MF_OK;
}

/* A domain name as typed by an admin: no '@', no space or control
 * character (it becomes part of every account key). Empty is "none". */
static int parse_domain(const char *v, char *out, size_t outlen)
{
	size_t n = strlen(v);

	if (n >= outlen)
		return MF_ERROR;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] <= 0x20 || v[i] == 0x7f || v[i] == '@')
			return MF_ERROR;
	memcpy(out, v, n + 1);
	return MF_OK;
}

static int set_path(char *out, size_t outlen, const char *v);

static int set_ledger(struct parse_ctx *ctx, const char *k, const char *v)
{
	struct mf_config *c = ctx->cfg;

	if (!strcmp(k, "path")) {
		size_t n = strlen(v);

		if (n == 0 || n >= sizeof(c->ledger_path))
			return MF_ERROR;
		memcpy(c->ledger_path, v, n + 1);
	} else if (!strcmp(k, "default_domain")) {
		return parse_domain(v, c->ledger_default_domain,
				    sizeof(c->ledger_default_domain));
	} else if (!strcmp(k, "domain_equivalence")) {
		return parse_bool(v, &c->ledger_domain_equivalence);
	} else if (!strcmp(k, "gateway_id")) {
		/* shown in logs and the admin tool: printable, no spaces */
		for (const char *q = v; *q != '\0'; q++)
			if (*q <= ' ' || *q > '~')
				return MF_ERROR;
		return v[0] != '\0' ? set_path(c->gateway_id, sizeof(c->gateway_id), v) : MF_ERROR;
	} else if (!strcmp(k, "cache_size") || !strcmp(k, "cache_ttl_ms") ||
		   !strcmp(k, "lease_ms") || !strcmp(k, "cutover_settle_ms")) {
		unsigned long x;
		bool lease = !strcmp(k, "lease_ms");

		if (parse_uint(v, lease ? 1000 : 0, !strcmp(k, "cache_size") ? 1u << 24 : 3600000,
			       &x) != MF_OK)
			return MF_ERROR;
		if (!strcmp(k, "cache_size"))
			c->route_cache_size = (unsigned int)x;
		else if (!strcmp(k, "cache_ttl_ms"))
			c->route_cache_ttl_ms = (unsigned int)x;
		else if (lease)
			c->lease_ms = (unsigned int)x;
		else
			c->cutover_settle_ms = (unsigned int)x;
	} else {
		return MF_AGAIN;
	}
	return MF_OK;
}

static int set_path(char *out, size_t outlen, const char *v)
{
	size_t n = strlen(v);

	if (n >= outlen)
		return MF_ERROR;
	memcpy(out, v, n + 1);
	return MF_OK;
}

static int parse_backend_tls(const char *v, enum mf_backend_tls *out)
{
	if (!strcmp(v, "none"))
		*out = MF_BACKEND_TLS_NONE;
	else if (!strcmp(v, "starttls"))
		*out = MF_BACKEND_TLS_STARTTLS;
	else if (!strcmp(v, "implicit"))
		*out = MF_BACKEND_TLS_IMPLICIT;
	else
		return MF_ERROR;
	return MF_OK;
}

static int set_migrate(struct parse_ctx *ctx, const char *k, const char *v)
{
	struct mf_config *c = ctx->cfg;
	unsigned long x;

	if (!strcmp(k, "enabled"))
		return parse_bool(v, &c->migrate_enabled);
	if (!strcmp(k, "strategy")) {
		if (!strcmp(v, "live"))
			c->migrate_strategy = MF_STRATEGY_LIVE;
		else if (!strcmp(v, "immediate"))
			c->migrate_strategy = MF_STRATEGY_IMMEDIATE;
		else if (!strcmp(v, "after-logout"))
			c->migrate_strategy = MF_STRATEGY_AFTER_LOGOUT;
		else
			return MF_ERROR;
		return MF_OK;
	}
	if (!strcmp(k, "immediate_wait")) {
		if (parse_uint(v, 1, 600, &x) != MF_OK)
			return MF_ERROR;
		c->migrate_immediate_wait_ms = (unsigned int)x * 1000;
		return MF_OK;
	}
	if (!strcmp(k, "max_bytes_per_second")) {
		if (parse_uint(v, 0, 100000000000UL, &x) != MF_OK)
			return MF_ERROR;
		c->migrate_max_bytes_per_s = x;
		return MF_OK;
	}
	if (!strcmp(k, "source_connections") || !strcmp(k, "max_messages_per_second") ||
	    !strcmp(k, "busy_retries") || !strcmp(k, "busy_wait_max")) {
		if (parse_uint(v, 0, !strcmp(k, "busy_wait_max") ? 86400 : 1000000, &x) != MF_OK)
			return MF_ERROR;
		if (!strcmp(k, "source_connections"))
			c->migrate_source_connections = (unsigned int)x;
		else if (!strcmp(k, "max_messages_per_second"))
			c->migrate_max_messages_per_s = (unsigned int)x;
		else if (!strcmp(k, "busy_retries"))
			c->migrate_busy_retries = (unsigned int)x;
		else
			c->migrate_busy_wait_max_s = (unsigned int)x;
		return MF_OK;
	}
	if (!strcmp(k, "retry_max")) {
		if (parse_uint(v, 1, 30 * 86400, &x) != MF_OK)
			return MF_ERROR;
		c->migrate_retry_max_s = (unsigned int)x;
		return MF_OK;
	}
	if (!strcmp(k, "max_inflight_bytes")) {
		if (parse_uint(v, 65536, 1ul << 30, &x) != MF_OK)
			return MF_ERROR;
		c->migrate_max_inflight_bytes = x;
		return MF_OK;
	}
	if (!strcmp(k, "batch")) {
		if (parse_uint(v, 1, 1024, &x) != MF_OK)
			return MF_ERROR;
		c->migrate_batch = (unsigned int)x;
		return MF_OK;
	}
	if (!strcmp(k, "verify_sample")) {
		if (parse_uint(v, 1, 100, &x) != MF_OK)
			return MF_ERROR;
		c->migrate_verify_sample = (unsigned int)x;
		return MF_OK;
	}
	if (!strcmp(k, "retry_after")) {
		if (parse_uint(v, 0, 30 * 86400, &x) != MF_OK)
			return MF_ERROR;
		c->migrate_retry_after_s = (unsigned int)x;
		return MF_OK;
	}
	if (!strcmp(k, "state_dir"))
		return v[0] == '/' ? set_path(c->migrate_state_dir,
					      sizeof(c->migrate_state_dir), v) : MF_ERROR;
	if (!strcmp(k, "source_protocol")) {
		if (strcmp(v, "imap") != 0 && strcmp(v, "pop3") != 0)
			return MF_ERROR;
		c->migrate_source_pop3 = strcmp(v, "pop3") == 0;
		return MF_OK;
	}
	if (!strcmp(k, "source_tls"))
		return parse_backend_tls(v, &c->migrate_source_tls);
	if (!strcmp(k, "destination_tls"))
		return parse_backend_tls(v, &c->migrate_destination_tls);
	if (!strcmp(k, "tls_ca"))
		return set_path(c->migrate_tls_ca, sizeof(c->migrate_tls_ca), v);
	if (!strcmp(k, "source_name"))
		return parse_domain(v, c->migrate_source_name, sizeof(c->migrate_source_name));
	if (!strcmp(k, "destination_name"))
		return parse_domain(v, c->migrate_destination_name,
				    sizeof(c->migrate_destination_name));
	if (!strcmp(k, "master_user")) {
		/* Goes into a SASL PLAIN message: no NUL, no control bytes. */
		for (const char *p = v; *p != '\0'; p++)
			if ((unsigned char)*p < 0x21 || *p == 0x7f)
				return MF_ERROR;
		return set_path(c->migrate_master_user, sizeof(c->migrate_master_user), v);
	}
	if (!strcmp(k, "master_password_file"))
		return v[0] == '/' || v[0] == '\0'
			       ? set_path(c->migrate_master_password_file,
					  sizeof(c->migrate_master_password_file), v)
			       : MF_ERROR;
	if (!strcmp(k, "workers") || !strcmp(k, "queue") || !strcmp(k, "source_port") ||
	    !strcmp(k, "destination_port") || !strcmp(k, "timeout_ms") ||
	    !strcmp(k, "cutover_wait_ms")) {
		bool port = !strcmp(k, "source_port") || !strcmp(k, "destination_port");

		if (parse_uint(v, 1, port ? 65535 : !strcmp(k, "workers") ? 64 :
			       !strcmp(k, "queue") ? 65536 : 3600000, &x) != MF_OK)
			return MF_ERROR;
		if (!strcmp(k, "workers"))
			c->migrate_workers = (unsigned int)x;
		else if (!strcmp(k, "queue"))
			c->migrate_queue = (unsigned int)x;
		else if (!strcmp(k, "source_port"))
			c->migrate_source_port = (uint16_t)x;
		else if (!strcmp(k, "destination_port"))
			c->migrate_destination_port = (uint16_t)x;
		else if (!strcmp(k, "timeout_ms"))
			c->migrate_timeout_ms = (unsigned int)x;
		else
			c->migrate_cutover_wait_ms = (unsigned int)x;
		return MF_OK;
	}
	return MF_AGAIN;
}

/* "127.0.0.1:9473", "[::1]:9473" or "off". */
static int set_metrics(struct parse_ctx *ctx, const char *k, const char *v)
{
	struct mf_config *c = ctx->cfg;
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(v, ':');
	size_t hlen;
	unsigned long port;

	if (strcmp(k, "listen") != 0)
		return MF_AGAIN;
	if (!strcmp(v, "off")) {
		c->metrics_on = false;
		return MF_OK;
	}
	if (colon == NULL || parse_uint(colon + 1, 1, 65535, &port) != MF_OK)
		return MF_ERROR;
	hlen = (size_t)(colon - v);
	if (hlen >= 2 && v[0] == '[' && v[hlen - 1] == ']') {
		v++;
		hlen -= 2;
	} else if (memchr(v, ':', hlen) != NULL) {
		return MF_ERROR; /* an IPv6 address needs its brackets */
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return MF_ERROR;
	memcpy(host, v, hlen);
	host[hlen] = '\0';
	if (mf_addr_parse(host, &c->metrics_addr) != MF_OK)
		return MF_ERROR;
	c->metrics_port = (uint16_t)port;
	c->metrics_on = true;
	return MF_OK;
}

/* A port list key: the first mention replaces the default, "none" empties. */
static int set_port_list(struct parse_ctx *ctx, bool *seen, unsigned int *n, const char *v,
			 int (*add)(struct parse_ctx *, const char *))
{
	if (!*seen)
		*n = 0;
	*seen = true;
	if (!strcasecmp(v, "none"))
		return MF_OK;
	return for_each_item(v, add, ctx);
}

static int set_tls(struct parse_ctx *ctx, const char *k, const char *v)
{
	struct mf_config *c = ctx->cfg;

	/* cert and key repeat, in pairs, one path per line. */
	if (!strcmp(k, "cert")) {
		if (c->n_tls_certs >= MF_MAX_CERTS || *v == '\0')
			return MF_ERROR;
		return set_path(c->tls_cert[c->n_tls_certs++], sizeof(c->tls_cert[0]), v);
	} else if (!strcmp(k, "key")) {
		if (c->n_tls_keys >= MF_MAX_CERTS || *v == '\0')
			return MF_ERROR;
		return set_path(c->tls_key[c->n_tls_keys++], sizeof(c->tls_key[0]), v);
	} else if (!strcmp(k, "imaps_ports")) {
		return set_port_list(ctx, &ctx->seen_imaps_ports, &c->n_imaps_ports, v,
				     add_imaps_port);
	} else if (!strcmp(k, "pop3s_ports")) {
		return set_port_list(ctx, &ctx->seen_pop3s_ports, &c->n_pop3s_ports, v,
				     add_pop3s_port);
	} else if (!strcmp(k, "smtps_ports")) {
		return set_port_list(ctx, &ctx->seen_smtps_ports, &c->n_smtps_ports, v,
				     add_smtps_port);
	} else if (!strcmp(k, "backend_tls")) {
		return parse_backend_tls(v, &c->backend_tls);
	} else if (!strcmp(k, "backend_ca")) {
		return set_path(c->backend_ca, sizeof(c->backend_ca), v);
	} else if (!strcmp(k, "backend_name")) {
		return parse_domain(v, c->backend_name, sizeof(c->backend_name));
	} else {
		return MF_AGAIN;
	}
	return MF_OK;
}

/* [admin]: the admin socket (admin_server.h). 108 bytes is the most a
 * UNIX socket path may have, NUL included. */
static int set_admin(struct parse_ctx *ctx, const char *k, const char *v)
{
	struct mf_config *c = ctx->cfg;

	if (!strcmp(k, "socket"))
		return v[0] == '/' && strlen(v) < MF_ADMIN_SOCKET_MAX
			       ? set_path(c->admin_socket, sizeof(c->admin_socket), v) : MF_ERROR;
	return MF_AGAIN;
}

/* libinih stops at the first handler failure and returns its line. */
static int on_entry(void *user, const char *section, const char *name,
		    const char *value)
{
	struct parse_ctx *ctx = user;
	int rc;

	if (ctx->failed)
		return 0;
	if (!strcmp(section, "gateway")) {
		rc = set_gateway(ctx, name, value);
	} else if (!strcmp(section, "intercept")) {
		rc = set_intercept(ctx, name, value);
	} else if (!strcmp(section, "ledger")) {
		rc = set_ledger(ctx, name, value);
	} else if (!strcmp(section, "tls")) {
		rc = set_tls(ctx, name, value);
	} else if (!strcmp(section, "migrate")) {
		rc = set_migrate(ctx, name, value);
	} else if (!strcmp(section, "admin")) {
		rc = set_admin(ctx, name, value);
	} else if (!strcmp(section, "metrics")) {
		rc = set_metrics(ctx, name, value);
	} else {
		mf_err(ctx->err, ctx->errlen, "unknown section [%s]", section);
		ctx->failed = true;
		return 0;
	}
	if (rc == MF_AGAIN) {
		mf_err(ctx->err, ctx->errlen, "unknown key '%s' in [%s]", name,
		       section);
		ctx->failed = true;
		return 0;
	}
	if (rc != MF_OK) {
		mf_err(ctx->err, ctx->errlen, "bad value for %s: '%s'", name, value);
		ctx->failed = true;
		return 0;
	}
	return 1;
}

void mf_config_defaults(struct mf_config *cfg)
{
	static const uint16_t mail_ports[] = { 25, 110, 143, 465, 587, 993, 995 };

	memset(cfg, 0, sizeof(*cfg));
	cfg->workers = 0;
	cfg->listen_port = 10143;
	mf_addr_parse("0.0.0.0", &cfg->listen4);
	mf_addr_parse("::", &cfg->listen6);
	cfg->upstream_source = MF_UPSTREAM_CLIENT;
	cfg->connect_timeout_ms = 5000;
	cfg->idle_timeout_ms = 31 * 60 * 1000; /* IMAP IDLE re-issues every 29 min */
	cfg->drain_timeout_ms = 30000;
	cfg->pipe_size = 1 << 20; /* fewer splice round trips per MiB */
	cfg->max_pipes = 4096;
	cfg->max_sessions = 8192;
	cfg->log_target = MF_LOG_STDERR;
	cfg->imap_ports[0] = 143;
	cfg->n_imap_ports = 1;
	cfg->pop3_ports[0] = 110;
	cfg->n_pop3_ports = 1;
	cfg->smtp_ports[0] = 25;
	cfg->n_smtp_ports = 1;
	cfg->n_submission_ports = 0; /* until backend TLS: see the example config */
	cfg->preauth_timeout_ms = 60000;
	cfg->preauth_max_errors = 10;
	cfg->preauth_per_client = 20;
	cfg->syn_rate_per_client = 0; /* a whole office behind NAT is one address */
	cfg->syn_burst_per_client = 40;
	memcpy(cfg->ports, mail_ports, sizeof(mail_ports));
	cfg->n_ports = MF_ARRAY_LEN(mail_ports);
	cfg->fwmark = 0x4d46; /* "MF" */
	cfg->route_table = 1846;
	cfg->rule_priority = 1846;
	cfg->fail = MF_FAIL_AUTO;
	cfg->queue_num = 4242;
	cfg->gate_mark = 0x4d470000; /* "MG" */
	cfg->mode = MF_MODE_ROUTER;
	snprintf(cfg->bridge, sizeof(cfg->bridge), "%s", "br0");
	snprintf(cfg->ledger_path, sizeof(cfg->ledger_path), "%s",
		 "/var/lib/mailferry/ledger.db");
	snprintf(cfg->admin_socket, sizeof(cfg->admin_socket), "%s", "/run/mailferry/admin.sock");
	cfg->migrate_enabled = false;
	cfg->migrate_workers = 1;
	cfg->migrate_queue = 64;
	snprintf(cfg->migrate_state_dir, sizeof(cfg->migrate_state_dir), "%s",
		 "/var/lib/mailferry/migrate");
	cfg->migrate_source_port = 143;
	cfg->migrate_destination_port = 143;
	cfg->migrate_timeout_ms = 60000;
	cfg->migrate_retry_after_s = 3600;
	cfg->migrate_verify_sample = 100;
	cfg->migrate_max_inflight_bytes = 32ul << 20; /* MIG_INFLIGHT_DEFAULT */
	cfg->migrate_batch = 100;                     /* MIG_BATCH_MAX_DEFAULT */
	cfg->migrate_retry_max_s = 7 * 86400;
	cfg->migrate_source_connections = 4;
	cfg->migrate_busy_retries = 5;
	cfg->migrate_busy_wait_max_s = 300;
	cfg->migrate_strategy = MF_STRATEGY_LIVE;
	cfg->migrate_immediate_wait_ms = 60000;
	cfg->migrate_cutover_wait_ms = 2000;
	cfg->metrics_on = true;
	mf_addr_parse("127.0.0.1", &cfg->metrics_addr);
	cfg->metrics_port = 9473;
	cfg->ledger_domain_equivalence = true;
	if (gethostname(cfg->gateway_id, sizeof(cfg->gateway_id) - 1) != 0 ||
	    cfg->gateway_id[0] == '\0')
		snprintf(cfg->gateway_id, sizeof(cfg->gateway_id), "%s", "gateway");
	cfg->route_cache_size = 65536;
	cfg->route_cache_ttl_ms = 2000;
	cfg->lease_ms = 30000;
	cfg->cutover_settle_ms = 500;
	cfg->imaps_ports[0] = 993;
	cfg->n_imaps_ports = 1;
	cfg->pop3s_ports[0] = 995;
	cfg->n_pop3s_ports = 1;
	cfg->smtps_ports[0] = 465;
	cfg->n_smtps_ports = 1;
	cfg->backend_tls = MF_BACKEND_TLS_NONE;
}

/* A port served by two front ends: the first list it is in (the second in
 * *other_r), or NULL. */
static const char *port_twice(const struct mf_config *cfg, uint16_t *port_r,
			      const char **other_r)
{
	const struct {
		const char *name;
		const uint16_t *ports;
		unsigned int n;
	} lists[] = {
		{ "imap_ports", cfg->imap_ports, cfg->n_imap_ports },
		{ "pop3_ports", cfg->pop3_ports, cfg->n_pop3_ports },
		{ "smtp_ports", cfg->smtp_ports, cfg->n_smtp_ports },
		{ "submission_ports", cfg->submission_ports, cfg->n_submission_ports },
		{ "imaps_ports", cfg->imaps_ports, cfg->n_imaps_ports },
		{ "pop3s_ports", cfg->pop3s_ports, cfg->n_pop3s_ports },
		{ "smtps_ports", cfg->smtps_ports, cfg->n_smtps_ports },
	};

	for (size_t a = 0; a < MF_ARRAY_LEN(lists); a++)
		for (size_t b = a + 1; b < MF_ARRAY_LEN(lists); b++)
			for (unsigned int i = 0; i < lists[a].n; i++)
				for (unsigned int j = 0; j < lists[b].n; j++)
					if (lists[a].ports[i] == lists[b].ports[j]) {
						*port_r = lists[a].ports[i];
						*other_r = lists[b].name;
						return lists[a].name;
					}
	return NULL;
}

static int check(struct mf_config *cfg, const char *where, char *err, size_t errlen)
{
	const char *list, *other;
	uint16_t port;

	if (cfg->listen4.family == 0 && cfg->listen6.family == 0)
		return mf_err(err, errlen, "%s: listen4 and listen6 are both off", where);
	/* Policy routing matches fwmark exactly: a gate mark equal to it
	 * would deliver passed-through SYNs to the local listener. */
	if (cfg->fwmark - cfg->gate_mark <= 2)
		return mf_err(err, errlen, "%s: gate_mark 0x%x (and +1, +2) must differ "
			      "from fwmark 0x%x", where, cfg->gate_mark, cfg->fwmark);
	if (cfg->n_ports == 0)
		return mf_err(err, errlen, "%s: [intercept] ports is empty", where);
	list = port_twice(cfg, &port, &other);
	if (list != NULL)
		return mf_err(err, errlen, "%s: port %u is in both %s and %s", where, port, list,
			      other);
	if (cfg->intercept == MF_INTERCEPT_LISTEN) {
		for (unsigned int i = 0; i < cfg->n_sources; i++)
			if (cfg->moved[i].family == 0) {
				char a[MF_ADDRSTRLEN];

				mf_addr_format(&cfg->sources[i], a, sizeof(a));
				return mf_err(err, errlen, "%s: intercept = listen: source %s has no "
					      "[intercept] moved_sources entry (OLD=NEW)", where, a);
			}
		if (cfg->n_sources == 0)
			return mf_err(err, errlen, "%s: intercept = listen needs [intercept] "
				      "moved_sources", where);
		if (cfg->n_sources * cfg->n_ports > MF_LISTEN_MAX)
			return mf_err(err, errlen, "%s: intercept = listen: %u sources x %u ports "
				      "is more than %u listeners", where, cfg->n_sources,
				      cfg->n_ports, MF_LISTEN_MAX);
		/* The old server answers at its new address, whose replies do
		 * not come back through us: speak with our own. */
		if (!cfg->upstream_source_given)
			cfg->upstream_source = MF_UPSTREAM_GATEWAY;
	}
	if (cfg->n_tls_certs != cfg->n_tls_keys)
		return mf_err(err, errlen, "%s: [tls] has %u cert and %u key lines; they go in pairs",
			      where, cfg->n_tls_certs, cfg->n_tls_keys);
	if ((cfg->migrate_master_user[0] == '\0') != (cfg->migrate_master_password_file[0] == '\0'))
		return mf_err(err, errlen, "%s: [migrate] master_user and master_password_file "
			      "go together", where);
	return MF_OK;
}

const struct mf_addr *mf_config_real_source(const struct mf_config *cfg,
					    const struct mf_addr *addr)
{
	if (cfg->intercept != MF_INTERCEPT_LISTEN)
		return addr;
	for (unsigned int i = 0; i < cfg->n_sources; i++)
		if (cfg->moved[i].family != 0 && mf_addr_equal(&cfg->sources[i], addr))
			return &cfg->moved[i];
	return addr;
}

int mf_config_load(const char *path, struct mf_config *cfg, char *err, size_t errlen)
{
	struct parse_ctx ctx = { .cfg = cfg, .err = err, .errlen = errlen };
	char inner[200] = "";
	int rc;

	mf_config_defaults(cfg);
	ctx.err = inner;
	ctx.errlen = sizeof(inner);
	rc = ini_parse(path, on_entry, &ctx);
	if (rc == -1)
		return mf_err(err, errlen, "%s: %s", path, strerror(errno));
	if (ctx.failed)
		return mf_err(err, errlen, "%s:%d: %s", path, rc, inner);
	if (rc != 0)
		return mf_err(err, errlen, "%s:%d: syntax error", path, rc);
	return check(cfg, path, err, errlen);
}

int mf_config_parse_string(const char *text, struct mf_config *cfg, char *err,
			   size_t errlen)
{
	struct parse_ctx ctx = { .cfg = cfg };
	char inner[200] = "";
	int rc;

	mf_config_defaults(cfg);
	ctx.err = inner;
	ctx.errlen = sizeof(inner);
	rc = ini_parse_string(text, on_entry, &ctx);
	if (ctx.failed)
		return mf_err(err, errlen, "config:%d: %s", rc, inner);
	if (rc != 0)
		return mf_err(err, errlen, "config:%d: syntax error", rc);
	return check(cfg, "config", err, errlen);
}
