#include "acct_sessions.h"
#include "mf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct acct_entry {
	struct acct_entry *next;
	unsigned int n;
	char name[]; /* NUL-terminated */
};

/* FNV-1a: names come from logins the source accepted, and a bucket's
 * chain is walked under the lock only; no seed needed for that. */
static size_t bucket_of(const struct acct_sessions *as, const char *name)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	return (size_t)(h % as->n_buckets);
}

int acct_sessions_init(struct acct_sessions *as, size_t n_buckets)
{
	memset(as, 0, sizeof(*as));
	as->n_buckets = n_buckets > 0 ? n_buckets : 1;
	as->buckets = calloc(as->n_buckets, sizeof(*as->buckets));
	if (as->buckets == NULL)
		return MF_ERROR;
	pthread_mutex_init(&as->lock, NULL);
	return MF_OK;
}

void acct_sessions_destroy(struct acct_sessions *as)
{
	if (as->buckets == NULL)
		return;
	for (size_t i = 0; i < as->n_buckets; i++) {
		struct acct_entry *e = as->buckets[i];

		while (e != NULL) {
			struct acct_entry *next = e->next;

			free(e);
			e = next;
		}
	}
	free(as->buckets);
	as->buckets = NULL;
	pthread_mutex_destroy(&as->lock);
}

static struct acct_entry **find(struct acct_sessions *as, const char *name)
{
	struct acct_entry **pe = &as->buckets[bucket_of(as, name)];

	while (*pe != NULL && strcmp((*pe)->name, name) != 0)
		pe = &(*pe)->next;
	return pe;
}

int acct_sessions_enter(struct acct_sessions *as, const char *name)
{
	struct acct_entry **pe;
	int rc = MF_OK;

	pthread_mutex_lock(&as->lock);
	pe = find(as, name);
	if (*pe != NULL) {
		(*pe)->n++;
	} else {
		size_t len = strlen(name);
		struct acct_entry *e = malloc(sizeof(*e) + len + 1);

		if (e == NULL) {
			rc = MF_ERROR;
		} else {
			e->next = NULL;
			e->n = 1;
			memcpy(e->name, name, len + 1);
			*pe = e;
			as->n_accounts++;
		}
	}
	pthread_mutex_unlock(&as->lock);
	return rc;
}

void acct_sessions_leave(struct acct_sessions *as, const char *name)
{
	struct acct_entry **pe;

	pthread_mutex_lock(&as->lock);
	pe = find(as, name);
	if (*pe != NULL && --(*pe)->n == 0) {
		struct acct_entry *e = *pe;

		*pe = e->next;
		free(e);
		as->n_accounts--;
	}
	pthread_mutex_unlock(&as->lock);
}

unsigned int acct_sessions_count(struct acct_sessions *as, const char *name)
{
	struct acct_entry **pe;
	unsigned int n;

	pthread_mutex_lock(&as->lock);
	pe = find(as, name);
	n = *pe != NULL ? (*pe)->n : 0;
	pthread_mutex_unlock(&as->lock);
	return n;
}
