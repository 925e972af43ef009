/* ledger.c — picks the backend from the spec and checks, once for every
 * backend, what callers pass in. */
#include "ledger_backend.h"
#include "mf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_owner(const char *owner, char *err, size_t errlen);

static bool is_postgresql(const char *spec)
{
	return strncmp(spec, "postgresql://", 13) == 0 ||
	       strncmp(spec, "postgres://", 11) == 0;
}

bool ledger_spec_is_shared(const char *spec)
{
	return spec != NULL && is_postgresql(spec);
}

int ledger_open(const char *spec, struct ledger **l_r, char *err, size_t errlen)
{
	*l_r = NULL;
	if (spec == NULL || spec[0] == '\0')
		return mf_err(err, errlen, "ledger: empty path");
	if (is_postgresql(spec))
		return ledger_pg_open(spec, l_r, err, errlen);
	return ledger_sqlite_open(spec, l_r, err, errlen);
}

void ledger_close(struct ledger *l)
{
	if (l != NULL)
		l->ops->close(l);
}

int ledger_schema_version(struct ledger *l, int *version_r, char *err,
			  size_t errlen)
{
	return l->ops->schema_version(l, version_r, err, errlen);
}

static int check_name(const char *name, char *err, size_t errlen)
{
	if (!account_name_is_normal(name))
		return mf_err(err, errlen, "ledger: '%.64s' is not a normalised "
			      "account name", name ? name : "(null)");
	return MF_OK;
}

static bool valid_state(enum account_state s)
{
	return (unsigned int)s < ACCOUNT_STATE_COUNT;
}

int ledger_account_get(struct ledger *l, const char *name, struct account *a_r,
		       char *err, size_t errlen)
{
	if (check_name(name, err, errlen) != MF_OK)
		return MF_ERROR;
	return l->ops->account_get(l, name, a_r, err, errlen);
}

int ledger_login_observed(struct ledger *l, const char *name,
			  const char *client, int64_t now,
			  enum account_state *state_r, char *err, size_t errlen)
{
	if (check_name(name, err, errlen) != MF_OK)
		return MF_ERROR;
	if (client == NULL)
		client = "";
	if (strlen(client) >= LEDGER_CLIENT_MAX)
		return mf_err(err, errlen, "ledger: client address too long");
	return l->ops->login_observed(l, name, client, now, state_r, err, errlen);
}

int ledger_account_set_state(struct ledger *l, const char *name,
			     enum account_state state, const char *reason,
			     int64_t now, enum account_state *old_r,
			     char *err, size_t errlen)
{
	if (check_name(name, err, errlen) != MF_OK)
		return MF_ERROR;
	if (!valid_state(state))
		return mf_err(err, errlen, "ledger: bad state %d", (int)state);
	return l->ops->account_set_state(l, name, state, reason ? reason : "",
					 now, old_r, err, errlen);
}

int ledger_account_list(struct ledger *l, int filter,
			int (*fn)(const struct account *a, void *data),
			void *data, char *err, size_t errlen)
{
	if (filter < -1 || filter >= (int)ACCOUNT_STATE_COUNT)
		return mf_err(err, errlen, "ledger: bad state filter %d", filter);
	return l->ops->account_list(l, filter, fn, data, err, errlen);
}

int ledger_account_history(struct ledger *l, const char *name,
			   int (*fn)(const struct account_event *e, void *data),
			   void *data, char *err, size_t errlen)
{
	if (check_name(name, err, errlen) != MF_OK)
		return MF_ERROR;
	return l->ops->account_history(l, name, fn, data, err, errlen);
}

/* Keys and values are shown by the admin tool and written to logs: only
 * printable ASCII, never empty keys. */
static int check_text(const char *what, const char *t, size_t max, char *err,
		      size_t errlen)
{
	size_t n;

	if (t == NULL)
		return mf_err(err, errlen, "ledger: no setting %s", what);
	n = strlen(t);
	if (n >= max || (n == 0 && what[0] == 'k'))
		return mf_err(err, errlen, "ledger: setting %s of %zu bytes", what, n);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)t[i] < 0x20 || (unsigned char)t[i] > 0x7e)
			return mf_err(err, errlen, "ledger: setting %s holds a "
				      "control or non-ASCII byte", what);
	return MF_OK;
}

int ledger_setting_get(struct ledger *l, const char *key, char *value_r,
		       size_t len, char *err, size_t errlen)
{
	if (check_text("key", key, LEDGER_SETTING_KEY_MAX, err, errlen) != MF_OK)
		return MF_ERROR;
	if (len == 0)
		return mf_err(err, errlen, "ledger: no room for the setting");
	return l->ops->setting_get(l, key, value_r, len, err, errlen);
}

int ledger_setting_set(struct ledger *l, const char *key, const char *value,
		       int64_t now, char *err, size_t errlen)
{
	if (check_text("key", key, LEDGER_SETTING_KEY_MAX, err, errlen) != MF_OK ||
	    check_text("value", value, LEDGER_SETTING_VALUE_MAX, err, errlen) != MF_OK)
		return MF_ERROR;
	return l->ops->setting_set(l, key, value, now, err, errlen);
}

int ledger_flow_count_add(struct ledger *l, const char *subnet, uint16_t port,
			  uint64_t observed, uint64_t intercepted, int64_t now,
			  char *err, size_t errlen)
{
	if (check_text("subnet", subnet, LEDGER_SUBNET_MAX - 1, err, errlen) != MF_OK)
		return MF_ERROR;
	if (observed > INT64_MAX || intercepted > INT64_MAX)
		return mf_err(err, errlen, "ledger: flow count out of range");
	return l->ops->flow_count_add(l, subnet, port, observed, intercepted, now, err, errlen);
}

int ledger_flow_direct_add(struct ledger *l, const char *subnet, uint16_t port,
			   uint64_t direct, int64_t now, char *err, size_t errlen)
{
	if (check_text("subnet", subnet, LEDGER_SUBNET_MAX - 1, err, errlen) != MF_OK)
		return MF_ERROR;
	if (direct > INT64_MAX)
		return mf_err(err, errlen, "ledger: flow count out of range");
	return l->ops->flow_direct_add(l, subnet, port, direct, now, err, errlen);
}

int ledger_flow_count_list(struct ledger *l,
			   int (*fn)(const struct flow_count *c, void *data),
			   void *data, char *err, size_t errlen)
{
	return l->ops->flow_count_list(l, fn, data, err, errlen);
}

int ledger_logins_observed(struct ledger *l, const struct ledger_login *v, size_t n,
			   char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++)
		if (check_name(v[i].name, err, errlen) != MF_OK ||
		    (v[i].gateway[0] != '\0' && check_owner(v[i].gateway, err, errlen) != MF_OK))
			return MF_ERROR;
	if (n == 0)
		return MF_OK;
	return l->ops->logins_observed(l, v, n, err, errlen);
}

int ledger_account_set_state_if(struct ledger *l, const char *name, unsigned int allowed,
				enum account_state state, const char *reason, int64_t now,
				enum account_state *old_r, char *err, size_t errlen)
{
	if (check_name(name, err, errlen) != MF_OK)
		return MF_ERROR;
	if (!valid_state(state))
		return mf_err(err, errlen, "ledger: bad state %d", (int)state);
	return l->ops->account_set_state_if(l, name, allowed, state, reason ? reason : "", now,
					    old_r, err, errlen);
}

int ledger_account_import(struct ledger *l, const char *name, const char *notes, int64_t now,
			  bool *created_r, char *err, size_t errlen)
{
	bool created = false;

	if (check_name(name, err, errlen) != MF_OK)
		return MF_ERROR;
	if (notes != NULL) {
		/* Free text of people's names: UTF-8 is fine, control bytes
		 * (a line break in a report, an escape sequence) are not. */
		size_t n = strlen(notes);

		if (n >= LEDGER_NOTES_MAX)
			return mf_err(err, errlen, "ledger: notes of %zu bytes (at most %d)", n,
				      LEDGER_NOTES_MAX - 1);
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)notes[i] < 0x20 || notes[i] == 0x7f)
				return mf_err(err, errlen, "ledger: notes hold a control byte");
	}
	if (l->ops->account_import(l, name, notes, now, &created, err, errlen) != MF_OK)
		return MF_ERROR;
	if (created_r != NULL)
		*created_r = created;
	return MF_OK;
}

const char *copy_result_name(enum copy_result r)
{
	static const char *const names[COPY_RESULT_COUNT] = {
		[COPY_RUNNING] = "running", [COPY_MIGRATED] = "migrated",
		[COPY_FAILED] = "failed", [COPY_INTERRUPTED] = "interrupted",
	};

	return (unsigned int)r < COPY_RESULT_COUNT ? names[r] : "?";
}

/* The inverse, for the backends reading rows back. */
int copy_result_parse(const char *t, enum copy_result *r_r)
{
	for (unsigned int i = 0; i < COPY_RESULT_COUNT; i++)
		if (strcmp(t, copy_result_name((enum copy_result)i)) == 0) {
			*r_r = (enum copy_result)i;
			return MF_OK;
		}
	return MF_ERROR;
}

int ledger_copy_run_begin(struct ledger *l, const char *name, int64_t now, int64_t *id_r,
			  char *err, size_t errlen)
{
	if (check_name(name, err, errlen) != MF_OK)
		return MF_ERROR;
	return l->ops->copy_run_begin(l, name, now, id_r, err, errlen);
}

int ledger_copy_run_end(struct ledger *l, int64_t id, int64_t now, enum copy_result result,
			uint64_t messages, uint64_t bytes, const char *error, char *err,
			size_t errlen)
{
	if (result == COPY_RUNNING || (unsigned int)result >= COPY_RESULT_COUNT)
		return mf_err(err, errlen, "ledger: bad copy result %d", (int)result);
	if (messages > INT64_MAX || bytes > INT64_MAX)
		return mf_err(err, errlen, "ledger: copy totals out of range");
	return l->ops->copy_run_end(l, id, now, result, messages, bytes, error ? error : "",
				    err, errlen);
}

int ledger_copy_runs_interrupt(struct ledger *l, const char *name, int64_t now,
			       unsigned int *n_r, char *err, size_t errlen)
{
	unsigned int n = 0;

	if (name != NULL && check_name(name, err, errlen) != MF_OK)
		return MF_ERROR;
	if (l->ops->copy_runs_interrupt(l, name, now, &n, err, errlen) != MF_OK)
		return MF_ERROR;
	if (n_r != NULL)
		*n_r = n;
	return MF_OK;
}

int ledger_copy_run_list(struct ledger *l, const char *name,
			 int (*fn)(const struct copy_run *r, void *data), void *data,
			 char *err, size_t errlen)
{
	if (name != NULL && check_name(name, err, errlen) != MF_OK)
		return MF_ERROR;
	return l->ops->copy_run_list(l, name, fn, data, err, errlen);
}

const char *ledger_gateway_health(const struct gateway_beat *b, int64_t now)
{
	if (b->stopped != 0)
		return "stopped";
	return now - b->last_beat > LEDGER_GATEWAY_SILENT_S ? "silent" : "running";
}

int ledger_gateway_beat(struct ledger *l, const struct gateway_beat *b, char *err,
			size_t errlen)
{
	if (check_text("gateway id", b->id, LEDGER_GATEWAY_MAX - 1, err, errlen) != MF_OK)
		return MF_ERROR;
	if (b->sessions > INT64_MAX || b->copies > INT64_MAX)
		return mf_err(err, errlen, "ledger: gateway counts out of range");
	return l->ops->gateway_beat(l, b, err, errlen);
}

int ledger_gateway_list(struct ledger *l, int (*fn)(const struct gateway_beat *b, void *data),
			void *data, char *err, size_t errlen)
{
	return l->ops->gateway_list(l, fn, data, err, errlen);
}

int ledger_account_gateways(struct ledger *l, const char *name,
			    int (*fn)(const struct account_gateway *g, void *data),
			    void *data, char *err, size_t errlen)
{
	if (check_name(name, err, errlen) != MF_OK)
		return MF_ERROR;
	return l->ops->account_gateways(l, name, fn, data, err, errlen);
}

/* Gateway ids name lease holders in logs and the admin tool. */
static int check_owner(const char *owner, char *err, size_t errlen)
{
	return check_text("key", owner, LEDGER_GATEWAY_MAX, err, errlen) == MF_OK
		? MF_OK : mf_err(err, errlen, "ledger: bad gateway id");
}

bool ledger_job_claimable(enum account_state st, int64_t changed, unsigned int retry_after_s,
			  int64_t now_s)
{
	/* retry_after_s is the wait this account's failures ask for (the
	 * migrator grows it: migrate_retry_delay()). */
	struct migrate_backoff once = { .first_s = retry_after_s, .max_s = retry_after_s };

	return st == AS_UNSEEN || st == AS_SEEN ||
	       (st == AS_FAILED && migrate_retry_due(&once, 1, changed, now_s));
}

int ledger_job_claim(struct ledger *l, const char *name, const char *owner, int64_t now_ms,
		     int64_t lease_ms, unsigned int retry_after_s, const char *reason,
		     enum account_state *state_r, char *holder_r, char *err, size_t errlen)
{
	if (holder_r != NULL)
		holder_r[0] = '\0';
	if (check_name(name, err, errlen) != MF_OK || check_owner(owner, err, errlen) != MF_OK)
		return MF_ERROR;
	if (lease_ms <= 0)
		return mf_err(err, errlen, "ledger: lease of %lld ms", (long long)lease_ms);
	return l->ops->job_claim(l, name, owner, now_ms, lease_ms, retry_after_s,
				 reason ? reason : "", state_r, holder_r, err, errlen);
}

int ledger_job_renew(struct ledger *l, const char *name, const char *owner, int64_t now_ms,
		     int64_t lease_ms, char *err, size_t errlen)
{
	if (check_name(name, err, errlen) != MF_OK || check_owner(owner, err, errlen) != MF_OK)
		return MF_ERROR;
	return l->ops->job_renew(l, name, owner, now_ms, lease_ms, err, errlen);
}

int ledger_job_set_state(struct ledger *l, const char *name, const char *owner,
			 enum account_state state, const char *reason, int64_t now,
			 bool release, char *err, size_t errlen)
{
	if (check_name(name, err, errlen) != MF_OK || check_owner(owner, err, errlen) != MF_OK)
		return MF_ERROR;
	if (!valid_state(state))
		return mf_err(err, errlen, "ledger: bad state %d", (int)state);
	return l->ops->job_set_state(l, name, owner, state, reason ? reason : "", now, release,
				     err, errlen);
}

int ledger_jobs_reap(struct ledger *l, int64_t now_ms, const char *owner,
		     void (*fn)(const char *name, const char *former_owner, void *data),
		     void *data, char *err, size_t errlen)
{
	if (owner != NULL && check_owner(owner, err, errlen) != MF_OK)
		return MF_ERROR;
	return l->ops->jobs_reap(l, now_ms, owner, fn, data, err, errlen);
}

int ledger_changes_listen(struct ledger *l, char *err, size_t errlen)
{
	if (l->ops->changes_listen == NULL)
		return LEDGER_UNSUPPORTED;
	return l->ops->changes_listen(l, err, errlen);
}

int ledger_changes_wait(struct ledger *l, int timeout_ms,
			void (*fn)(const char *name, enum account_state state, void *data),
			void *data, char *err, size_t errlen)
{
	if (l->ops->changes_wait == NULL)
		return LEDGER_UNSUPPORTED;
	return l->ops->changes_wait(l, timeout_ms, fn, data, err, errlen);
}

int ledger_job_checkpoint_put(struct ledger *l, const char *name, const char *owner,
			      const void *buf, size_t len, char *err, size_t errlen)
{
	if (check_name(name, err, errlen) != MF_OK || check_owner(owner, err, errlen) != MF_OK)
		return MF_ERROR;
	if (buf == NULL || len == 0 || len > LEDGER_CHECKPOINT_MAX)
		return mf_err(err, errlen, "ledger: checkpoints of %zu bytes", len);
	return l->ops->checkpoint_put(l, name, owner, buf, len, err, errlen);
}

int ledger_job_checkpoint_get(struct ledger *l, const char *name, void **buf_r,
			      size_t *len_r, char *from_r, char *err, size_t errlen)
{
	*buf_r = NULL;
	*len_r = 0;
	from_r[0] = '\0';
	if (check_name(name, err, errlen) != MF_OK)
		return MF_ERROR;
	return l->ops->checkpoint_get(l, name, buf_r, len_r, from_r, err, errlen);
}

/* ---- POP3 UIDL maps -------------------------------------------------- */

bool ledger_uidl_valid(const char *u, size_t len)
{
	size_t i;

	for (i = 0; i < len && u[i] != '\0'; i++)
		if ((unsigned char)u[i] < 0x21 || (unsigned char)u[i] > 0x7e)
			return false;
	return i < len && i >= 1 && i <= LEDGER_UIDL_MAX;
}

static int cmp_dst(const void *a, const void *b)
{
	return strcmp(((const struct uidl_pair *)a)->dst, ((const struct uidl_pair *)b)->dst);
}

static int cmp_src_ptr(const void *a, const void *b)
{
	return strcmp((*(const struct uidl_pair *const *)a)->src,
		      (*(const struct uidl_pair *const *)b)->src);
}

/* Every UIDL valid, no dst and no src twice: checked on sorted views so a
 * map of a million pairs costs n log n, not n squared. */
static int check_uidl_map(const struct uidl_pair *v, size_t n, char *err, size_t errlen)
{
	const struct uidl_pair **by_src = NULL;
	struct uidl_pair *by_dst = NULL;
	int rc = MF_ERROR;

	if (n > LEDGER_UIDL_MAP_MAX)
		return mf_err(err, errlen, "ledger: UIDL map of %zu pairs (at most %u)", n,
			      LEDGER_UIDL_MAP_MAX);
	for (size_t i = 0; i < n; i++)
		if (!ledger_uidl_valid(v[i].dst, sizeof(v[i].dst)) ||
		    !ledger_uidl_valid(v[i].src, sizeof(v[i].src)))
			return mf_err(err, errlen, "ledger: UIDL pair %zu is not two valid UIDLs", i);
	if (n < 2)
		return MF_OK;
	by_dst = malloc(n * sizeof(*by_dst));
	by_src = malloc(n * sizeof(*by_src));
	if (by_dst == NULL || by_src == NULL) {
		mf_err(err, errlen, "ledger: out of memory");
		goto out;
	}
	memcpy(by_dst, v, n * sizeof(*by_dst));
	for (size_t i = 0; i < n; i++)
		by_src[i] = &v[i];
	qsort(by_dst, n, sizeof(*by_dst), cmp_dst);
	qsort(by_src, n, sizeof(*by_src), cmp_src_ptr);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(by_dst[i - 1].dst, by_dst[i].dst) == 0) {
			mf_err(err, errlen, "ledger: UIDL map names dst '%s' twice", by_dst[i].dst);
			goto out;
		}
		if (strcmp(by_src[i - 1]->src, by_src[i]->src) == 0) {
			mf_err(err, errlen, "ledger: UIDL map names src '%s' twice", by_src[i]->src);
			goto out;
		}
	}
	rc = MF_OK;
out:
	free(by_src);
	free(by_dst);
	return rc;
}

int ledger_uidl_map_put(struct ledger *l, const char *name, const struct uidl_pair *v, size_t n,
			char *err, size_t errlen)
{
	if (check_name(name, err, errlen) != MF_OK)
		return MF_ERROR;
	if (n > 0 && v == NULL)
		return mf_err(err, errlen, "ledger: UIDL map of %zu pairs without pairs", n);
	if (check_uidl_map(v, n, err, errlen) != MF_OK)
		return MF_ERROR;
	return l->ops->uidl_map_put(l, name, v, n, err, errlen);
}

int ledger_uidl_map_get(struct ledger *l, const char *name, struct uidl_pair **v_r, size_t *n_r,
			char *err, size_t errlen)
{
	int rc;

	*v_r = NULL;
	*n_r = 0;
	if (check_name(name, err, errlen) != MF_OK)
		return MF_ERROR;
	rc = l->ops->uidl_map_get(l, name, v_r, n_r, err, errlen);
	if (rc != MF_OK) {
		free(*v_r);
		*v_r = NULL;
		*n_r = 0;
		return rc;
	}
	if (*n_r == 0) {
		free(*v_r);
		*v_r = NULL;
		return MF_OK;
	}
	for (size_t i = 0; i < *n_r; i++) {
		/* a row written by hand: better no map than a wrong UIDL */
		if (!ledger_uidl_valid((*v_r)[i].dst, sizeof((*v_r)[i].dst)) ||
		    !ledger_uidl_valid((*v_r)[i].src, sizeof((*v_r)[i].src))) {
			free(*v_r);
			*v_r = NULL;
			*n_r = 0;
			return mf_err(err, errlen, "ledger: %s's UIDL map holds an invalid UIDL", name);
		}
	}
	/* Byte order whatever the database's collation: the gateway
	 * bsearches with strcmp. */
	qsort(*v_r, *n_r, sizeof(**v_r), cmp_dst);
	return MF_OK;
}
