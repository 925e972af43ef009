/* uidl_map.c — see uidl_map.h. */
#include "uidl_map.h"
#include "mf.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_dst(const void *a, const void *b)
{
	return strcmp(((const struct uidl_pair *)a)->dst, ((const struct uidl_pair *)b)->dst);
}

static int cmp_src(const void *a, const void *b)
{
	return strcmp((*(struct uidl_pair *const *)a)->src, (*(struct uidl_pair *const *)b)->src);
}

int uidl_map_init(struct uidl_map *m, struct uidl_pair *v, size_t n)
{
	size_t k = 0;

	*m = (struct uidl_map){ 0 };
	for (size_t i = 0; i < n; i++) {
		/* The ledger's rows are trusted no more than a server's. */
		v[i].dst[sizeof(v[i].dst) - 1] = '\0';
		v[i].src[sizeof(v[i].src) - 1] = '\0';
		if (ledger_uidl_valid(v[i].dst, sizeof(v[i].dst)) &&
		    ledger_uidl_valid(v[i].src, sizeof(v[i].src)))
			v[k++] = v[i];
	}
	if (k == 0) {
		free(v);
		return MF_OK;
	}
	qsort(v, k, sizeof(*v), cmp_dst);
	n = 1;
	for (size_t i = 1; i < k; i++)
		if (strcmp(v[i].dst, v[n - 1].dst) != 0)
			v[n++] = v[i];
	m->by_src = calloc(n, sizeof(*m->by_src));
	if (m->by_src == NULL) {
		free(v);
		return MF_ERROR;
	}
	for (size_t i = 0; i < n; i++)
		m->by_src[i] = &v[i];
	qsort(m->by_src, n, sizeof(*m->by_src), cmp_src);
	m->by_dst = v;
	m->n = n;
	return MF_OK;
}

void uidl_map_free(struct uidl_map *m)
{
	free(m->by_dst);
	free(m->by_src);
	*m = (struct uidl_map){ 0 };
}

static void hashed(const char *s, size_t len, char out[UIDL_MAX + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(s, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 20) {
		/* Cannot happen with a working libcrypto; still a UIDL no
		 * source message has (they are at most 70 bytes, this is 3
		 * plus a fixed tail). */
		snprintf(out, UIDL_MAX + 1, "mf-%.*s", 40, "0000000000000000000000000000000000000000");
		return;
	}
	memcpy(out, "mf-", 3);
	for (unsigned int i = 0; i < 20; i++) {
		out[3 + 2 * i] = hex[md[i] >> 4];
		out[4 + 2 * i] = hex[md[i] & 15];
	}
	out[43] = '\0';
}

void uidl_map_translate(const struct uidl_map *m, const char *dst, size_t dst_len,
			char out[UIDL_MAX + 1])
{
	struct uidl_pair key, *kp = &key, *e;
	struct uidl_pair **src_hit;

	if (dst_len > UIDL_MAX)
		dst_len = UIDL_MAX;
	memcpy(key.dst, dst, dst_len);
	key.dst[dst_len] = '\0';
	memcpy(key.src, dst, dst_len);
	key.src[dst_len] = '\0';
	e = m->n ? bsearch(&key, m->by_dst, m->n, sizeof(*m->by_dst), cmp_dst) : NULL;
	if (e != NULL) {
		snprintf(out, UIDL_MAX + 1, "%s", e->src);
		return;
	}
	src_hit = m->n ? bsearch(&kp, m->by_src, m->n, sizeof(*m->by_src), cmp_src) : NULL;
	if (src_hit != NULL) {
		hashed(dst, dst_len, out);
		return;
	}
	memcpy(out, dst, dst_len);
	out[dst_len] = '\0';
}

static bool is_sp(char c)
{
	return c == ' ' || c == '\t';
}

int uidl_map_rewrite_line(const struct uidl_map *m, const char *line, size_t len, bool status,
			  char out[UIDL_LINE_MAX], size_t *len_r)
{
	char uidl[UIDL_MAX + 1];
	size_t i = 0, num_start, num_end, u_start, u_end;
	int n;

	if (status) {
		if (len < 3 || (line[0] != '+') || (line[1] != 'O' && line[1] != 'o') ||
		    (line[2] != 'K' && line[2] != 'k'))
			goto as_is;
		i = 3;
		if (i >= len || !is_sp(line[i]))
			goto as_is;
		while (i < len && is_sp(line[i]))
			i++;
	}
	num_start = i;
	while (i < len && line[i] >= '0' && line[i] <= '9' && i - num_start < 10)
		i++;
	num_end = i;
	if (num_end == num_start || i >= len || !is_sp(line[i]))
		goto as_is;
	while (i < len && is_sp(line[i]))
		i++;
	u_start = i;
	while (i < len && !is_sp(line[i]))
		i++;
	u_end = i;
	while (i < len && is_sp(line[i]))
		i++;
	if (i != len || u_end - u_start > UIDL_MAX)
		goto as_is;
	memcpy(uidl, line + u_start, u_end - u_start);
	uidl[u_end - u_start] = '\0';
	if (!ledger_uidl_valid(uidl, sizeof(uidl)))
		goto as_is;
	uidl_map_translate(m, line + u_start, u_end - u_start, uidl);
	n = snprintf(out, UIDL_LINE_MAX, "%s%.*s %s", status ? "+OK " : "",
		     (int)(num_end - num_start), line + num_start, uidl);
	if (n < 0 || (size_t)n >= UIDL_LINE_MAX)
		goto as_is;
	*len_r = (size_t)n;
	return MF_OK;
as_is:
	if (len >= UIDL_LINE_MAX)
		return MF_ERROR;
	memcpy(out, line, len);
	out[len] = '\0';
	*len_r = len;
	return MF_OK;
}
