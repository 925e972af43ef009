/* config.h — mailferry's configuration file (INI, parsed by libinih).
 *
 * One struct for the daemon and the admin CLI: the CLI reads the same file
 * to know which addresses and ports the nftables rules must name. Every key
 * is documented in mailferry.conf.example at the top of the repository. */
#ifndef MF_CONFIG_H
#define MF_CONFIG_H

#include "netaddr.h"

#include <stdbool.h>
#include <stdint.h>

#define MF_MAX_SOURCES 32
#define MF_MAX_CLIENTS 256
#define MF_MAX_PORTS 32
#define MF_PATH_MAX 256
#define MF_DOMAIN_MAX 253 /* RFC 1035 name, without the final dot */
#define MF_ADMIN_SOCKET_MAX 108 /* sun_path, NUL included */
#define MF_MASTER_USER_MAX 255 /* a SASL authcid */

/* Source of the gateway's upstream leg: the client's address and port (the
 * server sees exactly the client's socket), the client's address with a port
 * the kernel picks, or the router's own address. */
enum mf_upstream_source { MF_UPSTREAM_CLIENT = 0, MF_UPSTREAM_CLIENT_IP, MF_UPSTREAM_GATEWAY };
/* How flows reach mailferryd: TPROXY on a router or bridge, or (listen)
 * the gateway box has taken over the old server's address and listens on
 * it like any server; the old server answers at a new address
 * ([intercept] moved_sources). */
enum mf_intercept { MF_INTERCEPT_TPROXY = 0, MF_INTERCEPT_LISTEN };
/* Listen mode: one listener per source address and mail port. */
#define MF_LISTEN_MAX 256
enum mf_log_target { MF_LOG_STDERR = 0, MF_LOG_SYSLOG };
/* How the gateway talks to a backend after routing a login: plaintext on
 * the protocol's plaintext port, STARTTLS/STLS there, or implicit TLS on
 * the protocol's TLS port (tls_front.h says which ports). */
/* When the in-daemon copy runs (DESIGN.md "Strategies"). live: bulk copy
 * while the user works on the source, then a CUTOVER of seconds;
 * immediate: the login that starts the copy waits (bounded) and is served
 * by the destination; after-logout: the copy starts once the user's last
 * session on the source has ended. */
enum mf_migrate_strategy {
	MF_STRATEGY_LIVE = 0,
	MF_STRATEGY_IMMEDIATE,
	MF_STRATEGY_AFTER_LOGOUT
};

enum mf_backend_tls { MF_BACKEND_TLS_NONE = 0, MF_BACKEND_TLS_STARTTLS, MF_BACKEND_TLS_IMPLICIT };

#define MF_MAX_CERTS 8

/* What a diverted flow's SYN meets when mailferryd is down (DESIGN.md,
 * "Failure semantics"): the source (open), a drop the client retransmits
 * through (closed), or open until the first account reaches CUTOVER or
 * MIGRATED and closed from then on, as recorded in the ledger (auto). */
enum mf_fail_mode { MF_FAIL_AUTO = 0, MF_FAIL_OPEN, MF_FAIL_CLOSED };

/* Where the gateway sits (issue 7): on the router in front of the old
 * server, or as a transparent L2 bridge in the cable to it. In bridge mode
 * `rules install` adds table bridge mailferry, which sends the mail flows
 * crossing [intercept] bridge up to the IP stack, where router mode's
 * rules divert them. */
enum mf_intercept_mode { MF_MODE_ROUTER = 0, MF_MODE_BRIDGE };

#define MF_IFNAME_MAX 16 /* IFNAMSIZ, with the NUL */

struct mf_config {
	/* [gateway] */
	unsigned int workers;          /* 0: one per online CPU */
	uint16_t listen_port;          /* TPROXY listener, v4 and v6 */
	struct mf_addr listen4;        /* family 0: no IPv4 listener */
	struct mf_addr listen6;        /* family 0: no IPv6 listener */
	enum mf_upstream_source upstream_source;
	bool upstream_source_given;    /* else listen mode's default: gateway */
	enum mf_intercept intercept;
	unsigned int connect_timeout_ms;
	unsigned int idle_timeout_ms;
	unsigned int drain_timeout_ms;
	unsigned int pipe_size;        /* bytes, per relay pipe */
	unsigned int max_pipes;        /* per worker, pooled + in use */
	unsigned int max_sessions;     /* per worker; beyond, new clients are closed */
	enum mf_log_target log_target;
	bool log_debug;
	/* Original-destination ports served by the IMAP pre-auth front end;
	 * every other port is relayed protocol-blind. */
	uint16_t imap_ports[MF_MAX_PORTS];
	unsigned int n_imap_ports;
	/* Original-destination ports served by the POP3 pre-auth front end. */
	uint16_t pop3_ports[MF_MAX_PORTS];
	unsigned int n_pop3_ports;
	/* SMTP front end: MTA ports (no login; each RCPT routed by the
	 * recipient's account) and submission ports (AUTH required, routed by
	 * the authenticated account). */
	uint16_t smtp_ports[MF_MAX_PORTS];
	unsigned int n_smtp_ports;
	uint16_t submission_ports[MF_MAX_PORTS];
	unsigned int n_submission_ports;
	bool smtp_xclient; /* XCLIENT to backends that offer it */
	unsigned int preauth_timeout_ms; /* whole pre-auth phase of a session */
	unsigned int preauth_max_errors; /* BADs tolerated, then BYE */
	/* Pre-auth sessions per client address, per worker; 0: no limit. */
	unsigned int preauth_per_client;
	/* IMAP: tell the backend the client's address and port with ID
	 * (x-originating-ip/-port), for backends that trust the gateway. */
	bool forward_client_address;
	/* SYN gate: new flows per client address and second (token bucket
	 * refill) and the bucket's size; rate 0: no limit. */
	unsigned int syn_rate_per_client;
	unsigned int syn_burst_per_client;
	/* Sessions one client address may hold at once, whole daemon; the SYN
	 * gate drops its new flows beyond (0: no limit). */
	unsigned int max_sessions_per_client;
	/* Run as this user with CAP_NET_ADMIN + CAP_NET_RAW only, once set
	 * up; "" keeps root (and every capability). */
	char user[64];

	/* [intercept] */
	struct mf_addr sources[MF_MAX_SOURCES];
	unsigned int n_sources;
	/* Listen mode: where sources[i] really is now (family 0 in tproxy
	 * mode). */
	struct mf_addr moved[MF_MAX_SOURCES];
	uint16_t ports[MF_MAX_PORTS];
	unsigned int n_ports;
	struct mf_cidr clients[MF_MAX_CLIENTS]; /* intercepted at `rules install` */
	unsigned int n_clients;
	uint32_t fwmark;
	uint32_t route_table;
	uint32_t rule_priority;
	/* The new server (destination): MIGRATED accounts are sent here, on
	 * the original destination's port. family 0: none of that family. */
	struct mf_addr dest4, dest6;
	enum mf_fail_mode fail;
	uint16_t queue_num;  /* NFQUEUE of the SYN gate */
	/* Marks the gate chain gives new-flow SYNs for the iptables-nft
	 * fallback: gate_mark while fail-open, gate_mark + 1 while closed. */
	uint32_t gate_mark;
	/* Observe mode: the SYN gate counts new flows per client subnet and
	 * port (flow_tally.h) and lets them through to the source untouched. */
	bool observe;
	enum mf_intercept_mode mode;
	char bridge[MF_IFNAME_MAX]; /* bridge mode: the bridge device */

	/* [ledger] */
	char ledger_path[MF_PATH_MAX];       /* SQLite file */
	char ledger_default_domain[MF_DOMAIN_MAX + 1]; /* "" for none */
	bool ledger_domain_equivalence; /* "user" is "user@default_domain" */
	/* Several gateways on one PostgreSQL ledger: this one's name (in the
	 * ledger's login records and copy-job leases; default: the host name). */
	char gateway_id[64];
	unsigned int route_cache_size;    /* accounts whose state routing keeps; 0: off */
	unsigned int route_cache_ttl_ms;  /* a cached state is read again after this */
	unsigned int lease_ms;            /* a copy job's lease, renewed at a third */
	/* PostgreSQL: after CUTOVER commits, wait this long before the delta
	 * so that every gateway has heard (NOTIFY) and closed its sessions. */
	unsigned int cutover_settle_ms;

	/* [tls] — no certificate: no STARTTLS offered, implicit-TLS ports
	 * relayed protocol-blind. The first certificate is the default; SNI
	 * picks another whose names match. */
	char tls_cert[MF_MAX_CERTS][MF_PATH_MAX];
	char tls_key[MF_MAX_CERTS][MF_PATH_MAX];
	unsigned int n_tls_certs, n_tls_keys;
	uint16_t imaps_ports[MF_MAX_PORTS]; /* IMAP front end, implicit TLS */
	unsigned int n_imaps_ports;
	uint16_t pop3s_ports[MF_MAX_PORTS]; /* POP3 front end, implicit TLS */
	unsigned int n_pop3s_ports;
	uint16_t smtps_ports[MF_MAX_PORTS]; /* SMTP submission, implicit TLS (465) */
	unsigned int n_smtps_ports;
	enum mf_backend_tls backend_tls;
	char backend_ca[MF_PATH_MAX];   /* "" : the system's CA store */
	char backend_name[MF_DOMAIN_MAX + 1]; /* "" : verify the backend's address */

	/* [migrate] — the in-daemon copy started by an observed login
	 * (DESIGN.md's strategies: enum mf_migrate_strategy). */
	bool migrate_enabled;
	enum mf_migrate_strategy migrate_strategy;
	/* immediate: how long the observed login waits for MIGRATED before
	 * it is served by the source after all. */
	unsigned int migrate_immediate_wait_ms;
	unsigned int migrate_workers;      /* copy threads */
	unsigned int migrate_queue;        /* login events waiting, beyond: dropped */
	char migrate_state_dir[MF_PATH_MAX]; /* <dir>/<account>.state checkpoints */
	uint16_t migrate_source_port;      /* plaintext IMAP on the source address */
	uint16_t migrate_destination_port; /* plaintext IMAP on [intercept] destination */
	unsigned int migrate_timeout_ms;   /* per IMAP command of the copy */
	unsigned int migrate_cutover_wait_ms; /* bound on closing the user's sessions */
	/* A FAILED account's next observed login copies again once this long
	 * has passed since the failure; 0: only an admin's set-state does. */
	unsigned int migrate_retry_after_s;
	/* Per cent of the messages verification hashes (mig_opts). */
	unsigned int migrate_verify_sample;
	/* Bytes of message bodies a copy has read and not yet had stored
	 * (mig_opts.max_inflight_bytes: a copy's memory bound, whatever the
	 * message size), and messages per MULTIAPPEND batch. */
	unsigned long migrate_max_inflight_bytes;
	unsigned int migrate_batch;

	/* [admin] — the admin socket (JSON lines, root only) that `mailferry
	 * status`, pin, pause, ... talk to. */
	char admin_socket[MF_ADMIN_SOCKET_MAX];

	/* [metrics] — Prometheus exposition and dashboard (HTTP, read-only). */
	bool metrics_on;                   /* listen = off: false */
	struct mf_addr metrics_addr;       /* default 127.0.0.1 */
	uint16_t metrics_port;             /* default 9473 */
	/* Each further failure doubles the wait, up to this. */
	unsigned int migrate_retry_max_s;
	/* Politeness toward the source: copies reading one source address at
	 * once (0: no limit); messages and bytes per second over all copies
	 * (0: no limit); a copy the source sheds (BYE, [LIMIT],
	 * [UNAVAILABLE], [INUSE], a dropped connection) is resumed up to
	 * busy_retries times after 1, 2, 4... s, at most busy_wait_max_s. */
	unsigned int migrate_source_connections;
	unsigned int migrate_max_messages_per_s;
	uint64_t migrate_max_bytes_per_s;
	unsigned int migrate_busy_retries;
	unsigned int migrate_busy_wait_max_s;
	/* TLS of the copy's two legs (none, STARTTLS, implicit), verified
	 * against tls_ca (""= the system's store) and the name given, or the
	 * server's address when the name is "". */
	enum mf_backend_tls migrate_source_tls, migrate_destination_tls;
	bool migrate_source_pop3;          /* the source speaks POP3 only */
	char migrate_tls_ca[MF_PATH_MAX];
	char migrate_source_name[MF_DOMAIN_MAX + 1];
	char migrate_destination_name[MF_DOMAIN_MAX + 1];
	/* A master user (SASL PLAIN authcid, the account as authzid) for
	 * copies with no observed password; its password is read from the
	 * file at start. "" : none. */
	char migrate_master_user[MF_MASTER_USER_MAX + 1];
	char migrate_master_password_file[MF_PATH_MAX];
};

/* Defaults for every key (see mailferry.conf.example). */
void mf_config_defaults(struct mf_config *cfg);

/* Parse path over the defaults. MF_OK, or MF_ERROR with "file:line: why"
 * in err. Unknown sections and keys are errors: a typo must not silently
 * leave a default in force. */
/* Where the source a client reached at addr really is: its moved address
 * in listen mode, addr itself otherwise (and for any other address). */
const struct mf_addr *mf_config_real_source(const struct mf_config *cfg,
					    const struct mf_addr *addr);

int mf_config_load(const char *path, struct mf_config *cfg, char *err,
		   size_t errlen);

/* Same for a config held in memory (used by tests). */
int mf_config_parse_string(const char *text, struct mf_config *cfg, char *err,
			   size_t errlen);

#endif
