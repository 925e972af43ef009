#include "mig_pace.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void mono_sleep(double seconds)
{
	struct timespec ts = { .tv_sec = (time_t)seconds,
			       .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9) };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

void mig_pace_init(struct mig_pace *p, double msgs_per_s, double bytes_per_s,
		   double (*now)(void), void (*sleep_fn)(double seconds))
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	p->now = now != NULL ? now : mono_now;
	p->sleep = sleep_fn != NULL ? sleep_fn : mono_sleep;
	p->msg_rate = msgs_per_s > 0 ? msgs_per_s : 0;
	p->byte_rate = bytes_per_s > 0 ? bytes_per_s : 0;
	p->msg_burst = p->msg_rate;
	p->byte_burst = p->byte_rate > 262144 ? p->byte_rate : 262144;
	p->msg_tokens = p->msg_burst;
	p->byte_tokens = p->byte_burst;
	p->last = p->now();
}

void mig_pace_destroy(struct mig_pace *p)
{
	pthread_mutex_destroy(&p->lock);
}

/* What one bucket asks the caller to wait after taking n. */
static double bucket(double *tokens, double rate, double burst, double elapsed, double n)
{
	if (rate <= 0)
		return 0;
	*tokens += elapsed * rate;
	if (*tokens > burst)
		*tokens = burst;
	*tokens -= n;
	return *tokens < 0 ? -*tokens / rate : 0;
}

double mig_pace_take(struct mig_pace *p, uint64_t messages, uint64_t bytes)
{
	double now, elapsed, w1, w2, wait;

	if (p->msg_rate <= 0 && p->byte_rate <= 0)
		return 0;
	pthread_mutex_lock(&p->lock);
	now = p->now();
	elapsed = now > p->last ? now - p->last : 0;
	p->last = now;
	w1 = bucket(&p->msg_tokens, p->msg_rate, p->msg_burst, elapsed, (double)messages);
	w2 = bucket(&p->byte_tokens, p->byte_rate, p->byte_burst, elapsed, (double)bytes);
	wait = w1 > w2 ? w1 : w2;
	p->slept += wait;
	pthread_mutex_unlock(&p->lock);
	if (wait > 0)
		p->sleep(wait);
	return wait;
}

void mig_slots_init(struct mig_slots *s, unsigned int limit)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->limit = limit;
}

void mig_slots_destroy(struct mig_slots *s)
{
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
}

static int slot_of(struct mig_slots *s, const char *host, bool add)
{
	int empty = -1;

	for (int i = 0; i < MIG_SLOTS_MAX; i++) {
		if (s->v[i].n > 0 && strcmp(s->v[i].host, host) == 0)
			return i;
		if (s->v[i].n == 0 && empty < 0)
			empty = i;
	}
	if (add && empty >= 0)
		snprintf(s->v[empty].host, sizeof(s->v[empty].host), "%s", host);
	return add ? empty : -1;
}

bool mig_slots_acquire(struct mig_slots *s, const char *host)
{
	int i;

	if (s->limit == 0)
		return true;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		if (s->stopped) {
			pthread_mutex_unlock(&s->lock);
			return false;
		}
		i = slot_of(s, host, true);
		/* No entry free: as many sources as copies in flight, each
		 * below its limit would still fit; wait like a full one. */
		if (i >= 0 && s->v[i].n < s->limit)
			break;
		pthread_cond_wait(&s->cond, &s->lock);
	}
	s->v[i].n++;
	pthread_mutex_unlock(&s->lock);
	return true;
}

void mig_slots_release(struct mig_slots *s, const char *host)
{
	int i;

	if (s->limit == 0)
		return;
	pthread_mutex_lock(&s->lock);
	i = slot_of(s, host, false);
	if (i >= 0)
		s->v[i].n--;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

void mig_slots_stop(struct mig_slots *s)
{
	pthread_mutex_lock(&s->lock);
	s->stopped = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}
