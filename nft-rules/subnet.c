/* subnet.c — client subnets toggled at run time in the interval sets
 * clients4 / clients6 (contract in rules.h).
 *
 * Bridge mode has the same sets in table bridge mailferry, which decide
 * which frames go up to the IP stack at all. `add` puts the subnet there
 * too, in the same transaction; `del` leaves it there: the subnet's flows
 * then still go up, and table inet forwards new ones to the source instead
 * of diverting them, while sessions diverted before keep their gateway (as
 * in router mode). Dropping it from the bridge set would bridge their next
 * packets straight to the server, in the middle of the gateway's session.
 * The next `rules install` makes the bridge set the inet one again.
 *
 * The overlap checks are ours, made on a fresh dump of the set, because
 * the admin deserves the name of the subnet in the way; the kernel's own
 * overlap check stays as the backstop against a concurrent change. */
#include "rules.h"
#include "mf.h"
#include "nft_batch.h"
#include "nft_interval.h"
#include "nft_ruleset.h"
#include "nft_set.h"

#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <stdlib.h>
#include <string.h>

#define NOT_INSTALLED "table inet mailferry is not installed (run `mailferry rules install`)"

/* Growable arrays: a set may hold any number of subnets. */
struct elem_vec {
	struct nft_interval_elem *v;
	size_t n, cap;
	int family;
};

struct cidr_vec {
	struct mf_cidr *v;
	size_t n, cap;
};

static void *grow(void *v, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *nv;

	if (n < *cap)
		return v;
	ncap = *cap ? 2 * *cap : 16;
	nv = realloc(v, ncap * size);
	if (nv != NULL)
		*cap = ncap;
	return nv;
}

static int push_elem(const struct nft_elem *e, void *data)
{
	struct elem_vec *ev = data;
	struct nft_interval_elem *v;

	if (e->len != (ev->family == AF_INET ? 4u : 16u))
		return MF_OK; /* cannot be in a set of this key type */
	v = grow(ev->v, &ev->cap, ev->n, sizeof(*ev->v));
	if (v == NULL)
		return MF_ERROR;
	ev->v = v;
	memset(&v[ev->n], 0, sizeof(v[ev->n]));
	v[ev->n].key.family = ev->family;
	memcpy(v[ev->n].key.u.bytes, e->key, e->len);
	v[ev->n].end = e->end;
	ev->n++;
	return MF_OK;
}

static int push_cidr(const struct mf_cidr *c, void *data)
{
	struct cidr_vec *cv = data;
	struct mf_cidr *v = grow(cv->v, &cv->cap, cv->n, sizeof(*cv->v));

	if (v == NULL)
		return MF_ERROR;
	cv->v = v;
	v[cv->n++] = *c;
	return MF_OK;
}

/* The subnets in family's client set of table mailferry of table_family,
 * ascending, into cv (caller frees cv->v). */
static int read_subnets_in(struct nl_sock *s, uint16_t table_family, int family,
			   struct cidr_vec *cv, char *err, size_t errlen)
{
	const char *set = nft_sets[nft_clients_set(family)].name;
	struct elem_vec ev = { .family = family };
	struct nl_error e;
	int rc = MF_ERROR;

	if (nft_set_dump_family(s, table_family, set, push_elem, &ev, &e) != MF_OK) {
		char why[256];

		/* EAFNOSUPPORT: no nftables for bridges, so no bridge table. */
		if (e.error == ENOENT ||
		    (table_family != NFPROTO_INET && e.error == EAFNOSUPPORT)) {
			mf_err(err, errlen, NOT_INSTALLED);
		} else if (e.error == ECANCELED) {
			mf_err(err, errlen, "reading set %s: out of memory", set);
		} else {
			nl_error_format(&e, why, sizeof(why));
			mf_err(err, errlen, "nftables: reading set %s: %s", set, why);
		}
		goto out;
	}
	if (nft_interval_to_cidrs(ev.v, ev.n, push_cidr, cv) != MF_OK) {
		mf_err(err, errlen, "reading set %s: out of memory", set);
		goto out;
	}
	rc = MF_OK;
out:
	free(ev.v);
	return rc;
}

static int read_subnets(struct nl_sock *s, int family, struct cidr_vec *cv,
			char *err, size_t errlen)
{
	return read_subnets_in(s, NFPROTO_INET, family, cv, err, errlen);
}

/* Bridge mode: adds to b what puts subnet into the bridge table's client
 * set: nothing when it is there already, else the removal of subnets a
 * `del` left there that overlap it, then the subnet. Nothing without a
 * bridge table. */
static int put_bridge_add(struct nft_batch *b, struct nl_sock *s,
			  const struct mf_cidr *subnet, char *err, size_t errlen)
{
	const char *set = nft_sets[nft_clients_set(subnet->addr.family)].name;
	struct cidr_vec cv = { 0 };
	struct nft_elem elems[2];
	unsigned int n;
	bool same = false;
	int rc = MF_ERROR;

	if (read_subnets_in(s, NFPROTO_BRIDGE, subnet->addr.family, &cv, err,
			    errlen) != MF_OK) {
		free(cv.v);
		/* No bridge table (router mode): nothing to do. */
		return strcmp(err, NOT_INSTALLED) == 0 ? MF_OK : MF_ERROR;
	}
	for (size_t i = 0; i < cv.n; i++) {
		enum nft_overlap ov = nft_interval_overlap(subnet, &cv.v[i]);

		same = same || ov == NFT_SAME;
		if (ov != NFT_OVERLAP)
			continue;
		n = nft_elem_from_cidr(&cv.v[i], elems);
		elems[0].open = false;
		if (nft_set_put_elems_family(b, NFPROTO_BRIDGE, NFT_MSG_DELSETELEM, 0,
					     set, 0, elems, n,
					     "deleting overlapping bridge subnet") != MF_OK)
			goto oom;
	}
	n = nft_elem_from_cidr(subnet, elems);
	if (!same && nft_set_put_elems_family(b, NFPROTO_BRIDGE, NFT_MSG_NEWSETELEM,
					      NLM_F_CREATE, set, 0, elems, n,
					      "adding bridge subnet") != MF_OK)
		goto oom;
	rc = MF_OK;
	goto out;
oom:
	mf_err(err, errlen, "nftables: out of memory");
out:
	free(cv.v);
	return rc;
}

/* The subnet in cv that subnet is SAME as or OVERLAPs, or NULL. */
static const struct mf_cidr *find_related(const struct cidr_vec *cv,
					  const struct mf_cidr *subnet,
					  enum nft_overlap *ov_r)
{
	for (size_t i = 0; i < cv->n; i++) {
		*ov_r = nft_interval_overlap(subnet, &cv->v[i]);
		if (*ov_r != NFT_DISJOINT)
			return &cv->v[i];
	}
	*ov_r = NFT_DISJOINT;
	return NULL;
}

static int send_change(struct nl_sock *s, const struct mf_cidr *subnet,
		       uint16_t type, char *err, size_t errlen)
{
	const char *set = nft_sets[nft_clients_set(subnet->addr.family)].name;
	struct nft_elem elems[2];
	unsigned int n = nft_elem_from_cidr(subnet, elems);
	struct nft_batch b;
	struct nl_error e;
	int failed, rc;

	if (type == NFT_MSG_DELSETELEM)
		elems[0].open = false; /* user data only matters when adding */
	if (nft_batch_start(&b, s, err, errlen) != MF_OK)
		return MF_ERROR;
	if (nft_set_put_elems(&b, type, type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0,
			      set, 0, elems, n,
			      type == NFT_MSG_NEWSETELEM ? "adding subnet" :
			      "deleting subnet") != MF_OK) {
		nft_batch_free(&b);
		return mf_err(err, errlen, "nftables: out of memory");
	}
	if (type == NFT_MSG_NEWSETELEM &&
	    put_bridge_add(&b, s, subnet, err, errlen) != MF_OK) {
		nft_batch_free(&b);
		return MF_ERROR;
	}
	rc = nft_batch_send_detail(&b, true, &failed, &e);
	nft_batch_free(&b);
	if (rc == MF_OK)
		return MF_OK;
	{
		char what[MF_ADDRSTRLEN], why[256];

		mf_cidr_format(subnet, what, sizeof(what));
		nl_error_format(&e, why, sizeof(why));
		if (e.error == ENOENT && type == NFT_MSG_NEWSETELEM)
			return mf_err(err, errlen, NOT_INSTALLED);
		/* Only a change made between our dump and our batch gets
		 * here: the kernel's own overlap check. */
		if (e.error == EEXIST || e.error == ENOTEMPTY)
			return mf_err(err, errlen,
				      "%s overlaps a subnet added meanwhile: %s",
				      what, why);
		return mf_err(err, errlen, "nftables: %s %s in set %s: %s",
			      type == NFT_MSG_NEWSETELEM ? "adding" : "deleting",
			      what, set, why);
	}
}

static int change(const struct mf_cidr *subnet, bool add,
		  enum mf_subnet_change *change_r, char *err, size_t errlen)
{
	struct cidr_vec cv = { 0 };
	const struct mf_cidr *rel;
	enum nft_overlap ov;
	struct nl_sock s;
	char a[MF_ADDRSTRLEN], b[MF_ADDRSTRLEN];
	int rc = MF_ERROR;

	*change_r = MF_SUBNET_UNCHANGED;
	if (nl_sock_open(&s, NETLINK_NETFILTER, err, errlen) != MF_OK)
		return MF_ERROR;
	if (read_subnets(&s, subnet->addr.family, &cv, err, errlen) != MF_OK)
		goto out;
	rel = find_related(&cv, subnet, &ov);
	if (ov == NFT_OVERLAP) {
		mf_cidr_format(subnet, a, sizeof(a));
		mf_cidr_format(rel, b, sizeof(b));
		if (add)
			mf_err(err, errlen, "%s overlaps intercepted subnet %s", a, b);
		else
			mf_err(err, errlen, "%s is not an intercepted subnet but "
			       "overlaps %s; delete exactly that", a, b);
		goto out;
	}
	/* Present and adding, or absent and deleting: nothing to do. */
	if ((ov == NFT_SAME) == add) {
		rc = MF_OK;
		goto out;
	}
	rc = send_change(&s, subnet, add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM,
			 err, errlen);
	if (rc == MF_OK)
		*change_r = MF_SUBNET_CHANGED;
out:
	free(cv.v);
	nl_sock_close(&s);
	return rc;
}

int mf_subnet_add(const struct mf_cidr *subnet,
		  enum mf_subnet_change *change_r, char *err, size_t errlen)
{
	return change(subnet, true, change_r, err, errlen);
}

int mf_subnet_del(const struct mf_cidr *subnet,
		  enum mf_subnet_change *change_r, char *err, size_t errlen)
{
	return change(subnet, false, change_r, err, errlen);
}

int mf_subnet_list(int (*cb)(const struct mf_cidr *subnet, void *data),
		   void *data, char *err, size_t errlen)
{
	static const int families[2] = { AF_INET, AF_INET6 };
	struct nl_sock s;
	int rc = MF_OK;

	if (nl_sock_open(&s, NETLINK_NETFILTER, err, errlen) != MF_OK)
		return MF_ERROR;
	for (int f = 0; f < 2 && rc == MF_OK; f++) {
		struct cidr_vec cv = { 0 };

		rc = read_subnets(&s, families[f], &cv, err, errlen);
		for (size_t i = 0; rc == MF_OK && i < cv.n; i++)
			rc = cb(&cv.v[i], data);
		free(cv.v);
	}
	nl_sock_close(&s);
	return rc;
}
