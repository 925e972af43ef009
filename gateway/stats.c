#include "stats.h"
#include "mf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A login is a few round trips to a server: milliseconds to seconds. */
const struct stats_hist_spec stats_login_latency_spec = {
	.n = 12,
	.le = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10 },
};

/* A mailbox copy: a second for an empty one to hours for a large one. */
const struct stats_hist_spec stats_copy_duration_spec = {
	.n = 11,
	.le = { 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600 },
};

/* A cutover: the user refused from CUTOVER to MIGRATED (sessions closed,
 * delta, verification): seconds, or minutes if something is wrong. */
const struct stats_hist_spec stats_cutover_duration_spec = {
	.n = 11,
	.le = { 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300 },
};

int stats_init(struct stats *st, unsigned int n_shards, unsigned int n_copy_slots)
{
	size_t size = (size_t)n_shards * sizeof(struct stats_shard);

	memset(st, 0, sizeof(*st));
	if (n_shards == 0)
		return MF_ERROR;
	/* aligned_alloc wants a multiple of the alignment: the shard's
	 * size is one, by its aligned attribute. */
	st->shards = aligned_alloc(_Alignof(struct stats_shard), size);
	if (st->shards == NULL)
		return MF_ERROR;
	memset(st->shards, 0, size);
	if (n_copy_slots > 0) {
		st->copy_slots = calloc(n_copy_slots, sizeof(*st->copy_slots));
		if (st->copy_slots == NULL) {
			free(st->shards);
			st->shards = NULL;
			return MF_ERROR;
		}
		for (unsigned int i = 0; i < n_copy_slots; i++)
			pthread_mutex_init(&st->copy_slots[i].lock, NULL);
	}
	st->n_shards = n_shards;
	st->n_copy_slots = n_copy_slots;
	st->started = (int64_t)time(NULL);
	return MF_OK;
}

void stats_destroy(struct stats *st)
{
	for (unsigned int i = 0; i < st->n_copy_slots; i++)
		pthread_mutex_destroy(&st->copy_slots[i].lock);
	free(st->copy_slots);
	free(st->shards);
	memset(st, 0, sizeof(*st));
}

struct stats_shard *stats_shard(struct stats *st, unsigned int i)
{
	return i < st->n_shards ? &st->shards[i] : NULL;
}

/* --- writers ------------------------------------------------------------ */

void stats_session_open(struct stats_shard *sh, enum stats_proto p)
{
	stats_add(&sh->sessions_total[p], 1);
	stats_gauge_add(&sh->sessions_open[p][STATS_B_NONE], 1);
}

void stats_session_relay(struct stats_shard *sh, enum stats_proto p, enum stats_backend from,
			 enum stats_backend to)
{
	stats_add(&sh->sessions_relayed[p][to], 1);
	if (from == to)
		return;
	stats_gauge_add(&sh->sessions_open[p][from], -1);
	stats_gauge_add(&sh->sessions_open[p][to], 1);
}

void stats_session_close(struct stats_shard *sh, enum stats_proto p, enum stats_backend b)
{
	stats_gauge_add(&sh->sessions_open[p][b], -1);
}

void stats_hist_observe(struct stats_hist *h, const struct stats_hist_spec *spec, uint64_t v_us)
{
	unsigned int i = 0;

	/* Compared in microseconds, so a bound of 0.001 s takes exactly
	 * 1000 µs (le means "less or equal"). */
	while (i < spec->n && v_us > (uint64_t)(spec->le[i] * 1e6 + 0.5))
		i++;
	stats_add(&h->bucket[i], 1);
	stats_add(&h->sum_us, v_us);
	stats_add(&h->count, 1);
}

void stats_login(struct stats_shard *sh, enum stats_proto p, enum stats_backend b,
		 enum stats_login r, uint64_t latency_us)
{
	stats_add(&sh->logins[p][b][r], 1);
	if (r != STATS_L_REFUSED)
		stats_hist_observe(&sh->login_latency[p], &stats_login_latency_spec, latency_us);
}

void stats_smtp_txn(struct stats_shard *sh, enum stats_backend b, bool accepted,
		    unsigned int rcpts, unsigned int refused)
{
	stats_add(&sh->smtp_txns[b][accepted ? 0 : 1], 1);
	stats_add(&sh->smtp_rcpts[b][0], rcpts);
	stats_add(&sh->smtp_rcpts[b][1], refused);
}

static struct stats_copy_slot *copy_slot(struct stats *st, unsigned int slot)
{
	return slot < st->n_copy_slots ? &st->copy_slots[slot] : NULL;
}

void stats_copy_begin(struct stats *st, unsigned int slot, struct stats_shard *sh,
		      const char *account, int64_t now)
{
	struct stats_copy_slot *cs = copy_slot(st, slot);

	stats_add(&sh->copies_started, 1);
	if (cs == NULL)
		return;
	pthread_mutex_lock(&cs->lock);
	memset(&cs->c, 0, sizeof(cs->c));
	snprintf(cs->c.account, sizeof(cs->c.account), "%s", account);
	snprintf(cs->c.phase, sizeof(cs->c.phase), "start");
	cs->c.started = now;
	pthread_mutex_unlock(&cs->lock);
}

void stats_copy_phase(struct stats *st, unsigned int slot, const char *phase)
{
	struct stats_copy_slot *cs = copy_slot(st, slot);

	if (cs == NULL)
		return;
	pthread_mutex_lock(&cs->lock);
	snprintf(cs->c.phase, sizeof(cs->c.phase), "%s", phase);
	/* A new mig_run counts from zero. */
	cs->c.run_messages = cs->c.run_bytes = 0;
	cs->c.messages = cs->c.bytes = cs->c.planned = 0;
	cs->c.folder_index = cs->c.folder_count = 0;
	pthread_mutex_unlock(&cs->lock);
}

/* Adds what the run did since its last report to the counters. */
static void run_advance(struct stats_copy *c, struct stats_shard *sh, uint64_t messages,
			uint64_t bytes)
{
	if (messages > c->run_messages) {
		stats_add(&sh->copy_messages, messages - c->run_messages);
		c->run_messages = messages;
	}
	if (bytes > c->run_bytes) {
		stats_add(&sh->copy_bytes, bytes - c->run_bytes);
		c->run_bytes = bytes;
	}
}

/* Where a run stands; folders NULL: keep the last report's plan and folder. */
struct copy_where {
	uint64_t planned;
	unsigned int folder_index, folder_count;
};

static void copy_update(struct stats *st, unsigned int slot, struct stats_shard *sh,
			uint64_t messages, uint64_t bytes, const struct copy_where *where)
{
	struct stats_copy_slot *cs = copy_slot(st, slot);

	if (cs == NULL)
		return;
	pthread_mutex_lock(&cs->lock);
	run_advance(&cs->c, sh, messages, bytes);
	cs->c.messages = messages;
	cs->c.bytes = bytes;
	if (where != NULL) {
		cs->c.planned = where->planned;
		cs->c.folder_index = where->folder_index;
		cs->c.folder_count = where->folder_count;
	}
	pthread_mutex_unlock(&cs->lock);
}

void stats_copy_progress(struct stats *st, unsigned int slot, struct stats_shard *sh,
			 uint64_t messages, uint64_t bytes, uint64_t planned,
			 unsigned int folder_index, unsigned int folder_count)
{
	const struct copy_where where = { planned, folder_index, folder_count };

	copy_update(st, slot, sh, messages, bytes, &where);
}

void stats_copy_run_end(struct stats *st, unsigned int slot, struct stats_shard *sh,
			uint64_t messages, uint64_t bytes)
{
	copy_update(st, slot, sh, messages, bytes, NULL);
}

void stats_copy_end(struct stats *st, unsigned int slot, struct stats_shard *sh,
		    enum stats_copy_result r, uint64_t duration_us)
{
	struct stats_copy_slot *cs = copy_slot(st, slot);

	stats_add(&sh->copies_done[r], 1);
	if (r != STATS_C_INTERRUPTED)
		stats_hist_observe(&sh->copy_duration, &stats_copy_duration_spec, duration_us);
	if (cs == NULL)
		return;
	pthread_mutex_lock(&cs->lock);
	memset(&cs->c, 0, sizeof(cs->c));
	pthread_mutex_unlock(&cs->lock);
}

void stats_cutover_done(struct stats_shard *sh, uint64_t duration_us)
{
	stats_hist_observe(&sh->cutover_duration, &stats_cutover_duration_spec, duration_us);
}

/* --- readers ------------------------------------------------------------ */

static uint64_t rd(const _Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static void hist_add(struct stats_hist_snap *out, const struct stats_hist *h)
{
	for (unsigned int i = 0; i <= STATS_HIST_MAX; i++)
		out->bucket[i] += rd(&h->bucket[i]);
	out->sum_us += rd(&h->sum_us);
}

/* Per-bucket counts to cumulative ones; count is the +Inf bucket, so
 * the exposition's invariants hold whatever a writer did meanwhile. */
static void hist_finish(struct stats_hist_snap *h, const struct stats_hist_spec *spec)
{
	for (unsigned int i = 1; i <= spec->n; i++)
		h->bucket[i] += h->bucket[i - 1];
	h->count = h->bucket[spec->n];
}

void stats_snapshot(const struct stats *st, struct stats_snapshot *out,
		    struct stats_copy *copies)
{
	memset(out, 0, sizeof(*out));
	out->started = st->started;
	for (unsigned int s = 0; s < st->n_shards; s++) {
		const struct stats_shard *sh = &st->shards[s];

		for (unsigned int p = 0; p < STATS_PROTO_COUNT; p++) {
			out->sessions_total[p] += rd(&sh->sessions_total[p]);
			for (unsigned int b = 0; b < STATS_BACKEND_COUNT; b++) {
				/* Summed signed: a shard's gauge is >= 0 only
				 * once its own open and close are both seen. */
				out->sessions_open[p][b] += (uint64_t)atomic_load_explicit(
					&sh->sessions_open[p][b], memory_order_relaxed);
				out->sessions_relayed[p][b] += rd(&sh->sessions_relayed[p][b]);
				for (unsigned int r = 0; r < STATS_LOGIN_COUNT; r++)
					out->logins[p][b][r] += rd(&sh->logins[p][b][r]);
			}
			for (unsigned int d = 0; d < STATS_DIR_COUNT; d++)
				out->bytes[p][d] += rd(&sh->bytes[p][d]);
			hist_add(&out->login_latency[p], &sh->login_latency[p]);
		}
		for (unsigned int b = 0; b < STATS_BACKEND_COUNT; b++)
			for (unsigned int i = 0; i < 2; i++) {
				out->smtp_txns[b][i] += rd(&sh->smtp_txns[b][i]);
				out->smtp_rcpts[b][i] += rd(&sh->smtp_rcpts[b][i]);
			}
		out->copies_started += rd(&sh->copies_started);
		for (unsigned int r = 0; r < STATS_COPY_RESULT_COUNT; r++)
			out->copies_done[r] += rd(&sh->copies_done[r]);
		out->copy_messages += rd(&sh->copy_messages);
		out->copy_bytes += rd(&sh->copy_bytes);
		hist_add(&out->copy_duration, &sh->copy_duration);
		hist_add(&out->cutover_duration, &sh->cutover_duration);
	}
	for (unsigned int p = 0; p < STATS_PROTO_COUNT; p++) {
		hist_finish(&out->login_latency[p], &stats_login_latency_spec);
		for (unsigned int b = 0; b < STATS_BACKEND_COUNT; b++)
			if ((int64_t)out->sessions_open[p][b] < 0)
				out->sessions_open[p][b] = 0;
	}
	hist_finish(&out->copy_duration, &stats_copy_duration_spec);
	hist_finish(&out->cutover_duration, &stats_cutover_duration_spec);
	out->copies = copies;
	if (copies == NULL)
		return;
	for (unsigned int i = 0; i < st->n_copy_slots; i++) {
		struct stats_copy_slot *cs = &st->copy_slots[i];

		pthread_mutex_lock(&cs->lock);
		if (cs->c.account[0] != '\0')
			copies[out->n_copies++] = cs->c;
		pthread_mutex_unlock(&cs->lock);
	}
}

/* --- names -------------------------------------------------------------- */

const char *stats_proto_name(enum stats_proto p)
{
	static const char *const n[] = { "imap", "pop3", "smtp", "submission", "other" };

	return (unsigned int)p < STATS_PROTO_COUNT ? n[p] : "?";
}

const char *stats_backend_name(enum stats_backend b)
{
	static const char *const n[] = { "none", "source", "destination" };

	return (unsigned int)b < STATS_BACKEND_COUNT ? n[b] : "?";
}

const char *stats_login_name(enum stats_login r)
{
	static const char *const n[] = { "ok", "fail", "refused" };

	return (unsigned int)r < STATS_LOGIN_COUNT ? n[r] : "?";
}

const char *stats_copy_result_name(enum stats_copy_result r)
{
	static const char *const n[] = { "migrated", "failed", "interrupted" };

	return (unsigned int)r < STATS_COPY_RESULT_COUNT ? n[r] : "?";
}

const char *stats_dir_name(unsigned int dir)
{
	return dir == 0 ? "client_to_server" : dir == 1 ? "server_to_client" : "?";
}
