/* mig_fetch.c — FETCH response fields, INTERNALDATE, flag sets, SELECT:
 * the small pieces the copy and the verification share. */
#include "mf.h"
#include "mig_ctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

double mig_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void mig_progress_emit(struct mig_ctx *x)
{
	x->prog.elapsed = mig_now() - x->t0;
	if (x->o->progress != NULL)
		x->o->progress(x->o->progress_arg, &x->prog);
}

void mig_msgs_free(struct mig_msg *v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i].flags);
	free(v);
}

/* Joins the flags of the list starting at items[*i] (a LIST_BEGIN). */
static int flags_collect(const struct imap_response *r, size_t *i, char **out_r)
{
	unsigned int depth = r->items[*i].depth;
	size_t len = 0, cap = 64;
	char *s = malloc(cap);

	if (s == NULL)
		return MF_ERROR;
	s[0] = '\0';
	for ((*i)++; *i < r->n; (*i)++) {
		const struct imap_item *it = &r->items[*i];
		size_t n;

		if (it->type == IMAP_TOK_LIST_END && it->depth == depth - 1) {
			*out_r = s;
			return MF_OK;
		}
		if (it->type != IMAP_TOK_ATOM) {
			free(s);
			return MF_ERROR;
		}
		if (strcasecmp(it->s, "\\Recent") == 0)
			continue;
		n = it->len;
		if (len + n + 2 > cap) {
			char *ns;

			while (len + n + 2 > cap)
				cap *= 2;
			ns = realloc(s, cap);
			if (ns == NULL) {
				free(s);
				return MF_ERROR;
			}
			s = ns;
		}
		if (len > 0)
			s[len++] = ' ';
		memcpy(s + len, it->s, n);
		len += n;
		s[len] = '\0';
	}
	free(s);
	return MF_ERROR;
}

/* Skips the value at items[*i] (one item or a whole list). */
static void skip_value(const struct imap_response *r, size_t *i)
{
	if (r->items[*i].type == IMAP_TOK_LIST_BEGIN) {
		unsigned int d = r->items[*i].depth;

		while (*i + 1 < r->n && !(r->items[*i + 1].type == IMAP_TOK_LIST_END &&
					  r->items[*i + 1].depth == d - 1))
			(*i)++;
		(*i)++;
	}
}

int mig_fetch_parse(const struct imap_response *r, struct mig_msg *m)
{
	uint64_t v;
	size_t i;

	memset(m, 0, sizeof(*m));
	if (r->kind != IMAP_KIND_UNTAGGED || r->n < 3 || !imap_item_num(&r->items[0], &v) ||
	    !imap_item_is(&r->items[1], "FETCH"))
		return 0;
	if (v == 0 || v > UINT32_MAX || r->items[2].type != IMAP_TOK_LIST_BEGIN)
		return MF_ERROR;
	m->seq = (uint32_t)v;
	for (i = 3; i + 1 < r->n; i++) {
		const struct imap_item *name = &r->items[i], *val = &r->items[i + 1];

		if (name->type == IMAP_TOK_LIST_END)
			break;
		if (name->type != IMAP_TOK_ATOM || name->depth != 1)
			goto bad;
		i++;
		if (imap_item_is(name, "UID")) {
			if (!imap_item_num(val, &v) || v == 0 || v > UINT32_MAX)
				goto bad;
			m->uid = (uint32_t)v;
		} else if (imap_item_is(name, "RFC822.SIZE")) {
			if (!imap_item_num(val, &v))
				goto bad;
			m->size = v;
		} else if (imap_item_is(name, "INTERNALDATE")) {
			if (val->type != IMAP_TOK_QUOTED || val->len >= sizeof(m->date))
				goto bad;
			memcpy(m->date, val->s, val->len + 1);
		} else if (imap_item_is(name, "FLAGS")) {
			if (val->type != IMAP_TOK_LIST_BEGIN || m->flags != NULL ||
			    flags_collect(r, &i, &m->flags) != MF_OK)
				goto bad;
		} else {
			skip_value(r, &i);
		}
	}
	return 1;
bad:
	free(m->flags);
	m->flags = NULL;
	return MF_ERROR;
}

int mig_date_parse(const char *s, int64_t *t_r)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	char mon[4], sign;
	int d, y, h, mi, sec, zone, n = 0;
	const char *p;
	struct tm tm;

	if (sscanf(s, "%2d-%3s-%4d %2d:%2d:%2d %c%4d%n", &d, mon, &y, &h, &mi, &sec, &sign,
		   &zone, &n) != 8 || s[n] != '\0' || (sign != '+' && sign != '-'))
		return MF_ERROR;
	p = strstr(months, mon);
	if (p == NULL || strlen(mon) != 3 || (p - months) % 3 != 0)
		return MF_ERROR;
	memset(&tm, 0, sizeof(tm));
	tm.tm_mday = d;
	tm.tm_mon = (int)((p - months) / 3);
	tm.tm_year = y - 1900;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*t_r = (int64_t)timegm(&tm) -
	       (sign == '-' ? -1 : 1) * (int64_t)((zone / 100) * 3600 + (zone % 100) * 60);
	return MF_OK;
}

static int flag_cmp(const void *a, const void *b)
{
	return strcasecmp(*(const char *const *)a, *(const char *const *)b);
}

/* Splits a flag list into sorted words (s is modified). */
static size_t flags_split(char *s, char **w, size_t max)
{
	size_t n = 0;

	for (char *tok = strtok(s, " "); tok != NULL && n < max; tok = strtok(NULL, " "))
		w[n++] = tok;
	mig_qsort(w, n, sizeof(*w), flag_cmp);
	return n;
}

bool mig_flags_equal(const char *a, const char *b)
{
	char *ca = strdup(a ? a : ""), *cb = strdup(b ? b : "");
	char *wa[256], *wb[256];
	size_t na, nb;
	bool eq = false;

	if (ca == NULL || cb == NULL)
		goto out;
	na = flags_split(ca, wa, MF_ARRAY_LEN(wa));
	nb = flags_split(cb, wb, MF_ARRAY_LEN(wb));
	if (na != nb)
		goto out;
	for (size_t i = 0; i < na; i++)
		if (strcasecmp(wa[i], wb[i]) != 0)
			goto out;
	eq = true;
out:
	free(ca);
	free(cb);
	return eq;
}

struct select_info {
	uint32_t uidvalidity;
	uint32_t exists;
};

static int on_select(void *arg, const struct imap_response *r)
{
	struct select_info *si = arg;
	uint64_t v;
	int k;

	if (r->n >= 2 && imap_item_num(&r->items[0], &v) && imap_item_is(&r->items[1], "EXISTS"))
		si->exists = (uint32_t)v;
	k = imap_resp_code(r, "UIDVALIDITY");
	if (k >= 0 && (size_t)k + 1 < r->n && imap_item_num(&r->items[k + 1], &v))
		si->uidvalidity = (uint32_t)v;
	return MF_OK;
}

int mig_mbox(struct imap_conn *c, const char *name, char *out, size_t outlen, char *err,
	     size_t errlen)
{
	if (imap_quote(c, name, strlen(name), out, outlen) != MF_OK)
		return mf_err(err, errlen, "%s: folder name '%s' cannot be sent", imap_conn_name(c),
			      name);
	return MF_OK;
}

int mig_select(struct imap_conn *c, const char *name, bool readonly, uint32_t *uidvalidity_r,
	       uint32_t *exists_r, char *err, size_t errlen)
{
	struct select_info si = { 0 };
	char q[2048];

	if (mig_mbox(c, name, q, sizeof(q), err, errlen) != MF_OK)
		return MF_ERROR;
	if (imap_simple(c, on_select, &si, err, errlen, "%s %s", readonly ? "EXAMINE" : "SELECT",
			q) != MF_OK)
		return MF_ERROR;
	if (si.uidvalidity == 0)
		return mf_err(err, errlen, "%s: %s: no UIDVALIDITY", imap_conn_name(c), name);
	*uidvalidity_r = si.uidvalidity;
	*exists_r = si.exists;
	return MF_OK;
}

int mig_msg_cmp_uid(const void *a, const void *b)
{
	uint32_t x = ((const struct mig_msg *)a)->uid, y = ((const struct mig_msg *)b)->uid;

	return x < y ? -1 : x > y;
}

/* ---- metadata ---- */

int mig_meta_on_fetch(void *arg, const struct imap_response *r)
{
	struct mig_meta_run *m = arg;
	struct mig_msg msg;
	int rc = mig_fetch_parse(r, &msg);

	if (rc <= 0)
		return rc;
	if (msg.uid <= m->above || msg.flags == NULL) {
		free(msg.flags);
		return MF_OK;
	}
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 256;
		struct mig_msg *v = realloc(m->v, cap * sizeof(*v));

		if (v == NULL) {
			free(msg.flags);
			m->oom = true;
			return MF_ERROR;
		}
		m->v = v;
		m->cap = cap;
	}
	m->v[m->n++] = msg;
	return MF_OK;
}

int mig_meta_fetch(struct imap_conn *c, uint32_t above, struct mig_meta_run *m, char *err,
		   size_t errlen)
{
	memset(m, 0, sizeof(*m));
	m->above = above;
	if (imap_simple(c, mig_meta_on_fetch, m, err, errlen,
			"UID FETCH %u:* (UID FLAGS INTERNALDATE RFC822.SIZE)", above + 1) != MF_OK) {
		if (m->oom)
			mf_err(err, errlen, "out of memory");
		mig_msgs_free(m->v, m->n);
		memset(m, 0, sizeof(*m));
		return MF_ERROR;
	}
	mig_qsort(m->v, m->n, sizeof(*m->v), mig_msg_cmp_uid);
	return MF_OK;
}

