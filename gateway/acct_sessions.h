/* acct_sessions.h — how many sessions each account has relayed to the
 * source right now, across all io_uring workers: what strategy
 * after-logout waits on ("copy when the user's last session ends").
 *
 * A chained hash table of names under one mutex; an entry exists only
 * while its count is above zero, so the table is as large as the set of
 * accounts with live sessions. A session counts itself once (enter) and
 * uncounts itself once (leave) when it ends. */
#ifndef MF_ACCT_SESSIONS_H
#define MF_ACCT_SESSIONS_H

#include <pthread.h>
#include <stddef.h>

struct acct_entry;

struct acct_sessions {
	pthread_mutex_t lock;
	struct acct_entry **buckets;
	size_t n_buckets;
	size_t n_accounts;
};

/* MF_OK or MF_ERROR (out of memory). */
int acct_sessions_init(struct acct_sessions *as, size_t n_buckets);
void acct_sessions_destroy(struct acct_sessions *as);

/* One more session of name. MF_OK, or MF_ERROR when out of memory (the
 * session is then not counted: the caller must not call leave). */
int acct_sessions_enter(struct acct_sessions *as, const char *name);

/* One session of name fewer (a name not counted is ignored). */
void acct_sessions_leave(struct acct_sessions *as, const char *name);

/* Live sessions of name now. */
unsigned int acct_sessions_count(struct acct_sessions *as, const char *name);

#endif
