#include "login_event.h"
#include "mf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

int login_queue_init(struct login_queue *q, unsigned int cap, char *err, size_t errlen)
{
	memset(q, 0, sizeof(*q));
	if (cap == 0) {
		mf_err(err, errlen, "login queue: capacity 0");
		return MF_ERROR;
	}
	q->slots = calloc(cap, sizeof(*q->slots));
	if (q->slots == NULL) {
		mf_err(err, errlen, "login queue: out of memory");
		return MF_ERROR;
	}
	/* Best effort: RLIMIT_MEMLOCK may be small; the wipes still hold. */
	q->locked_in_ram = mlock(q->slots, cap * sizeof(*q->slots)) == 0;
	q->cap = cap;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	return MF_OK;
}

void login_event_wipe(struct login_event *e)
{
	explicit_bzero(e, sizeof(*e));
}

int login_queue_push(struct login_queue *q, const char *account,
		     const char *login, size_t login_len, const char *pass, size_t pass_len,
		     const struct sockaddr *client, socklen_t client_len,
		     const struct sockaddr *source, socklen_t source_len, int64_t at,
		     bool released)
{
	struct login_event *e;
	size_t alen = strlen(account);

	if (alen > ACCOUNT_NAME_MAX || login_len > ACCOUNT_NAME_MAX ||
	    pass_len > LOGIN_EVENT_PASS_MAX || client_len > sizeof(e->client) ||
	    source_len > sizeof(e->source))
		return MF_ERROR;
	pthread_mutex_lock(&q->lock);
	if (q->stopped || q->n == q->cap) {
		q->dropped++;
		pthread_mutex_unlock(&q->lock);
		return MF_AGAIN;
	}
	e = &q->slots[(q->head + q->n) % q->cap];
	memcpy(e->account, account, alen);
	e->account[alen] = '\0';
	memcpy(e->login, login, login_len);
	e->login[login_len] = '\0';
	memcpy(e->pass, pass, pass_len);
	e->pass[pass_len] = '\0';
	e->pass_len = pass_len;
	memcpy(&e->client, client, client_len);
	memcpy(&e->source, source, source_len);
	e->at = at;
	e->released = released;
	q->n++;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	return MF_OK;
}

/* Index (from head) of the event pop may take now, or q->n for none:
 * the oldest released one (the admin asked for it now), else, unless
 * paused, the oldest. */
static unsigned int next_takeable(const struct login_queue *q)
{
	unsigned int i = 0;

	while (i < q->n && !q->slots[(q->head + i) % q->cap].released)
		i++;
	return i < q->n || q->paused ? i : 0;
}

int login_queue_pop(struct login_queue *q, struct login_event *e_r)
{
	return login_queue_pop_timed(q, e_r, -1);
}

int login_queue_pop_timed(struct login_queue *q, struct login_event *e_r, int timeout_ms)
{
	struct timespec until;
	unsigned int i = 0; /* set by the loop's test whenever it is used */

	if (timeout_ms >= 0) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += timeout_ms / 1000;
		until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&q->lock);
	while (!q->stopped && (i = next_takeable(q)) == q->n) {
		if (timeout_ms < 0) {
			pthread_cond_wait(&q->cond, &q->lock);
		} else if (pthread_cond_timedwait(&q->cond, &q->lock, &until) == ETIMEDOUT &&
			   !q->stopped && (i = next_takeable(q)) == q->n) {
			pthread_mutex_unlock(&q->lock);
			return MF_AGAIN;
		}
	}
	if (q->stopped) {
		pthread_mutex_unlock(&q->lock);
		return MF_ERROR;
	}
	memcpy(e_r, &q->slots[(q->head + i) % q->cap], sizeof(*e_r));
	/* Close the gap, keeping the order of the others; the slot left
	 * free at the end is wiped. */
	for (; i + 1 < q->n; i++)
		memcpy(&q->slots[(q->head + i) % q->cap], &q->slots[(q->head + i + 1) % q->cap],
		       sizeof(q->slots[0]));
	login_event_wipe(&q->slots[(q->head + q->n - 1) % q->cap]);
	q->n--;
	pthread_mutex_unlock(&q->lock);
	return MF_OK;
}

void login_queue_set_paused(struct login_queue *q, bool paused)
{
	pthread_mutex_lock(&q->lock);
	q->paused = paused;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

bool login_queue_wait_unpaused(struct login_queue *q)
{
	bool ok;

	pthread_mutex_lock(&q->lock);
	while (q->paused && !q->stopped)
		pthread_cond_wait(&q->cond, &q->lock);
	ok = !q->stopped;
	pthread_mutex_unlock(&q->lock);
	return ok;
}

bool login_queue_paused(struct login_queue *q)
{
	bool p;

	pthread_mutex_lock(&q->lock);
	p = q->paused;
	pthread_mutex_unlock(&q->lock);
	return p;
}

unsigned int login_queue_release(struct login_queue *q, const char *account)
{
	unsigned int found = 0;

	pthread_mutex_lock(&q->lock);
	for (unsigned int i = 0; i < q->n; i++) {
		struct login_event *e = &q->slots[(q->head + i) % q->cap];

		if (strcmp(e->account, account) == 0) {
			e->released = true;
			found++;
		}
	}
	if (found > 0)
		pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	return found;
}

void login_queue_stop(struct login_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->stopped = true;
	q->dropped += q->n;
	/* Every slot, not only the queued ones: cheap, and sure. */
	explicit_bzero(q->slots, q->cap * sizeof(*q->slots));
	q->n = 0;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

unsigned int login_queue_len(struct login_queue *q)
{
	unsigned int n;

	pthread_mutex_lock(&q->lock);
	n = q->n;
	pthread_mutex_unlock(&q->lock);
	return n;
}

void login_queue_destroy(struct login_queue *q)
{
	if (q->slots == NULL)
		return;
	login_queue_stop(q);
	if (q->locked_in_ram)
		munlock(q->slots, q->cap * sizeof(*q->slots));
	free(q->slots);
	q->slots = NULL;
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
}

struct login_event *login_event_alloc(void)
{
	struct login_event *e = calloc(1, sizeof(*e));

	if (e != NULL)
		(void)mlock(e, sizeof(*e)); /* best effort, as for the queue */
	return e;
}

void login_event_free(struct login_event *e)
{
	if (e == NULL)
		return;
	login_event_wipe(e);
	(void)munlock(e, sizeof(*e));
	free(e);
}
