/* ledger_backend.h — what a ledger backend provides (private to
 * migrate/ledger*.c). A backend embeds struct ledger as its first member
 * and fills ops; ledger.c checks arguments common to every backend and
 * then calls through the table, so each backend only does storage. */
#ifndef MF_LEDGER_BACKEND_H
#define MF_LEDGER_BACKEND_H

#include "ledger.h"

struct ledger_ops {
	const char *name; /* "sqlite", "postgresql" */
	void (*close)(struct ledger *l);
	int (*schema_version)(struct ledger *l, int *version_r, char *err,
			      size_t errlen);
	int (*account_get)(struct ledger *l, const char *name,
			   struct account *a_r, char *err, size_t errlen);
	int (*logins_observed)(struct ledger *l, const struct ledger_login *v, size_t n,
			       char *err, size_t errlen);
	int (*login_observed)(struct ledger *l, const char *name,
			      const char *client, int64_t now,
			      enum account_state *state_r, char *err,
			      size_t errlen);
	int (*account_set_state)(struct ledger *l, const char *name,
				 enum account_state state, const char *reason,
				 int64_t now, enum account_state *old_r,
				 char *err, size_t errlen);
	int (*account_set_state_if)(struct ledger *l, const char *name, unsigned int allowed,
				    enum account_state state, const char *reason, int64_t now,
				    enum account_state *old_r, char *err, size_t errlen);
	int (*account_import)(struct ledger *l, const char *name, const char *notes,
			      int64_t now, bool *created_r, char *err, size_t errlen);
	int (*copy_run_begin)(struct ledger *l, const char *name, int64_t now, int64_t *id_r,
			      char *err, size_t errlen);
	int (*copy_run_end)(struct ledger *l, int64_t id, int64_t now, enum copy_result result,
			    uint64_t messages, uint64_t bytes, const char *error, char *err,
			    size_t errlen);
	int (*copy_runs_interrupt)(struct ledger *l, const char *name, int64_t now,
				   unsigned int *n_r, char *err, size_t errlen);
	int (*copy_run_list)(struct ledger *l, const char *name,
			     int (*fn)(const struct copy_run *r, void *data), void *data,
			     char *err, size_t errlen);
	int (*account_list)(struct ledger *l, int filter,
			    int (*fn)(const struct account *a, void *data),
			    void *data, char *err, size_t errlen);
	int (*account_history)(struct ledger *l, const char *name,
			       int (*fn)(const struct account_event *e, void *data),
			       void *data, char *err, size_t errlen);
	int (*setting_get)(struct ledger *l, const char *key, char *value_r,
			   size_t len, char *err, size_t errlen);
	int (*setting_set)(struct ledger *l, const char *key, const char *value,
			   int64_t now, char *err, size_t errlen);
	int (*flow_count_add)(struct ledger *l, const char *subnet, uint16_t port,
			      uint64_t observed, uint64_t intercepted, int64_t now,
			      char *err, size_t errlen);
	int (*flow_direct_add)(struct ledger *l, const char *subnet, uint16_t port,
			       uint64_t direct, int64_t now, char *err, size_t errlen);
	int (*flow_count_list)(struct ledger *l,
			       int (*fn)(const struct flow_count *c, void *data),
			       void *data, char *err, size_t errlen);
	int (*gateway_beat)(struct ledger *l, const struct gateway_beat *b, char *err,
			    size_t errlen);
	int (*gateway_list)(struct ledger *l, int (*fn)(const struct gateway_beat *b, void *data),
			    void *data, char *err, size_t errlen);
	int (*account_gateways)(struct ledger *l, const char *name,
				int (*fn)(const struct account_gateway *g, void *data),
				void *data, char *err, size_t errlen);
	int (*job_claim)(struct ledger *l, const char *name, const char *owner, int64_t now_ms,
			 int64_t lease_ms, unsigned int retry_after_s, const char *reason,
			 enum account_state *state_r, char *holder_r, char *err, size_t errlen);
	int (*job_renew)(struct ledger *l, const char *name, const char *owner, int64_t now_ms,
			 int64_t lease_ms, char *err, size_t errlen);
	int (*job_set_state)(struct ledger *l, const char *name, const char *owner,
			     enum account_state state, const char *reason, int64_t now,
			     bool release, char *err, size_t errlen);
	int (*jobs_reap)(struct ledger *l, int64_t now_ms, const char *owner,
			 void (*fn)(const char *name, const char *former_owner, void *data),
			 void *data, char *err, size_t errlen);
	int (*checkpoint_put)(struct ledger *l, const char *name, const char *owner,
			      const void *buf, size_t len, char *err, size_t errlen);
	int (*checkpoint_get)(struct ledger *l, const char *name, void **buf_r, size_t *len_r,
			      char *from_r, char *err, size_t errlen);
	/* v already checked (valid, unique); get may return any order */
	int (*uidl_map_put)(struct ledger *l, const char *name, const struct uidl_pair *v,
			    size_t n, char *err, size_t errlen);
	int (*uidl_map_get)(struct ledger *l, const char *name, struct uidl_pair **v_r,
			    size_t *n_r, char *err, size_t errlen);
	/* NULL: LEDGER_UNSUPPORTED */
	int (*changes_listen)(struct ledger *l, char *err, size_t errlen);
	int (*changes_wait)(struct ledger *l, int timeout_ms,
			    void (*fn)(const char *name, enum account_state state, void *data),
			    void *data, char *err, size_t errlen);
};

/* The claim's rule, the same on every backend: may a copy start on an
 * account in state st that last changed at changed (seconds)? */
bool ledger_job_claimable(enum account_state st, int64_t changed, unsigned int retry_after_s,
			  int64_t now_s);

struct ledger {
	const struct ledger_ops *ops;
};

/* copy_result_name's inverse: MF_OK or MF_ERROR. */
int copy_result_parse(const char *t, enum copy_result *r_r);

/* PostgreSQL backend: spec is a libpq connection URI. */
int ledger_pg_open(const char *spec, struct ledger **l_r, char *err, size_t errlen);

/* SQLite backend: path is a file name. */
int ledger_sqlite_open(const char *path, struct ledger **l_r, char *err,
		       size_t errlen);

#endif
