#include "nft_ruleset.h"
#include "nft_chain.h"
#include "nft_interval.h"
#include "nft_set.h"
#include "mf.h"

#include <libnftnl/expr.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* nft's datatype numbers (nftables src/datatype.h) and its byte-order
 * user-data value: without them `nft list` cannot print the keys. */
enum { NFT_TYPE_IPADDR = 7, NFT_TYPE_IP6ADDR = 8, NFT_TYPE_INET_PROTOCOL = 12,
       NFT_TYPE_INET_SERVICE = 13 };
enum { NFT_BYTEORDER_BIG_ENDIAN = 2 };
/* A concatenated key's type: the parts' types, 6 bits each (nft's
 * TYPE_BITS); nft's expression type number of a concatenation, which it
 * records as the key's "typeof" in the set's user data. */
#define NFT_TYPE_CONCAT(a, b) (((uint32_t)(a) << 6) | (uint32_t)(b))
enum { NFT_EXPR_CONCAT = 13 };
/* Flows a client made to a source directly are counted for a day after
 * its last one; the daemon drains the counters far more often. */
#define NFT_DIRECT_TIMEOUT_MS (24ULL * 3600 * 1000)
#define NFT_DIRECT_SIZE 65536

const struct nft_set_def nft_sets[NFT_SET_COUNT] = {
	[NFT_SET_SOURCES4] = { "sources4", NFT_TYPE_IPADDR, 4, 0, AF_INET, 0, 0 },
	[NFT_SET_SOURCES6] = { "sources6", NFT_TYPE_IP6ADDR, 16, 0, AF_INET6, 0, 0 },
	[NFT_SET_CLIENTS4] = { "clients4", NFT_TYPE_IPADDR, 4, NFT_SET_INTERVAL, AF_INET, 0, 0 },
	[NFT_SET_CLIENTS6] = { "clients6", NFT_TYPE_IP6ADDR, 16, NFT_SET_INTERVAL, AF_INET6, 0, 0 },
	[NFT_SET_PORTS] = { "ports", NFT_TYPE_INET_SERVICE, 2, 0, 0, 0, 0 },
	[NFT_SET_FAIL_CLOSED] = { "fail_closed", NFT_TYPE_INET_PROTOCOL, 1, 0, 0, 0, 0 },
	/* Keys are padded to 4-byte registers: address . 2-byte port + 2. */
	[NFT_SET_DIRECT4] = { "direct4",
			      NFT_TYPE_CONCAT(NFT_TYPE_IPADDR, NFT_TYPE_INET_SERVICE), 8,
			      NFT_SET_EVAL | NFT_SET_TIMEOUT, AF_INET, NFT_DIRECT_SIZE,
			      NFT_DIRECT_TIMEOUT_MS },
	[NFT_SET_DIRECT6] = { "direct6",
			      NFT_TYPE_CONCAT(NFT_TYPE_IP6ADDR, NFT_TYPE_INET_SERVICE), 20,
			      NFT_SET_EVAL | NFT_SET_TIMEOUT, AF_INET6, NFT_DIRECT_SIZE,
			      NFT_DIRECT_TIMEOUT_MS },
};

/* Descriptions for error messages; the batch keeps only pointers. */
static const char *const set_what[NFT_SET_COUNT] = {
	"creating set sources4", "creating set sources6",
	"creating set clients4", "creating set clients6", "creating set ports",
	"creating set fail_closed", "creating set direct4 (dynamic set, counter)",
	"creating set direct6 (dynamic set, counter)",
};
static const char *const elems_what[NFT_SET_COUNT] = {
	"adding elements to sources4", "adding elements to sources6",
	"adding elements to clients4", "adding elements to clients6",
	"adding elements to ports", "adding tcp to fail_closed",
	"adding elements to direct4", "adding elements to direct6",
};

/* Our own user-data types in the table, well clear of nft's (comment = 0):
 * nft skips types it does not know. */
enum {
	NFT_UDATA_MF_FWMARK = 0xe0,
	NFT_UDATA_MF_TABLE,
	NFT_UDATA_MF_PRIORITY,
	NFT_UDATA_MF_MAX = NFT_UDATA_MF_PRIORITY,
	/* Only when the gate's queue rules went to iptables-nft: their mark
	 * and queue, so a later install or remove finds them after the
	 * config changed. */
	NFT_UDATA_MF_XT_MARK = 0xe8,
	NFT_UDATA_MF_XT_QUEUE,
	NFT_UDATA_MF_XT_MAX = NFT_UDATA_MF_XT_QUEUE
};

uint32_t nft_set_id(enum nft_set_idx i)
{
	return (uint32_t)i + 1;
}

enum nft_set_idx nft_clients_set(int family)
{
	return family == AF_INET ? NFT_SET_CLIENTS4 : NFT_SET_CLIENTS6;
}

static int record_attr_cb(const struct nftnl_udata *attr, void *data)
{
	const struct nftnl_udata **tb = data;
	uint8_t type = nftnl_udata_type(attr);

	if (type < NFT_UDATA_MF_FWMARK || type > NFT_UDATA_MF_MAX)
		return 0;
	if (nftnl_udata_len(attr) != sizeof(uint32_t))
		return -1;
	tb[type - NFT_UDATA_MF_FWMARK] = attr;
	return 0;
}

int nft_record_decode(const void *data, uint32_t len, struct policy_route *pr_r)
{
	const struct nftnl_udata *tb[3] = { NULL, NULL, NULL };

	if (nftnl_udata_parse(data, len, record_attr_cb, tb) < 0)
		return MF_ERROR;
	if (tb[0] == NULL || tb[1] == NULL || tb[2] == NULL)
		return MF_ERROR;
	pr_r->fwmark = nftnl_udata_get_u32(tb[0]);
	pr_r->table = nftnl_udata_get_u32(tb[1]);
	pr_r->priority = nftnl_udata_get_u32(tb[2]);
	return MF_OK;
}

static int xt_attr_cb(const struct nftnl_udata *attr, void *data)
{
	const struct nftnl_udata **tb = data;
	uint8_t type = nftnl_udata_type(attr);

	if (type < NFT_UDATA_MF_XT_MARK || type > NFT_UDATA_MF_XT_MAX)
		return 0;
	if (nftnl_udata_len(attr) != sizeof(uint32_t))
		return -1;
	tb[type - NFT_UDATA_MF_XT_MARK] = attr;
	return 0;
}

int nft_record_decode_xt(const void *data, uint32_t len, struct nft_xt_record *r)
{
	const struct nftnl_udata *tb[2] = { NULL, NULL };

	if (nftnl_udata_parse(data, len, xt_attr_cb, tb) < 0)
		return MF_ERROR;
	if (tb[0] == NULL || tb[1] == NULL)
		return MF_ERROR;
	r->gate_mark = nftnl_udata_get_u32(tb[0]);
	r->queue_num = nftnl_udata_get_u32(tb[1]);
	return MF_OK;
}

static int table_set_record(struct nftnl_table *t, const struct policy_route *rec,
			    const struct nft_xt_record *xt)
{
	struct nftnl_udata_buf *ud = nftnl_udata_buf_alloc(64);
	int rc = MF_ERROR;

	if (ud == NULL)
		return MF_ERROR;
	if (nftnl_udata_put_u32(ud, NFT_UDATA_MF_FWMARK, rec->fwmark) &&
	    nftnl_udata_put_u32(ud, NFT_UDATA_MF_TABLE, rec->table) &&
	    nftnl_udata_put_u32(ud, NFT_UDATA_MF_PRIORITY, rec->priority) &&
	    (xt == NULL ||
	     (nftnl_udata_put_u32(ud, NFT_UDATA_MF_XT_MARK, xt->gate_mark) &&
	      nftnl_udata_put_u32(ud, NFT_UDATA_MF_XT_QUEUE, xt->queue_num))) &&
	    nftnl_table_set_data(t, NFTNL_TABLE_USERDATA, nftnl_udata_buf_data(ud),
				 nftnl_udata_buf_len(ud)) == 0)
		rc = MF_OK;
	nftnl_udata_buf_free(ud);
	return rc;
}

/* rec NULL: a bare reference (create-if-missing, delete). */
static int put_table(struct nft_batch *b, uint16_t type, uint16_t flags,
		     const struct policy_route *rec, const struct nft_xt_record *xt,
		     const char *what)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	if (t == NULL)
		return MF_ERROR;
	if (nftnl_table_set_str(t, NFTNL_TABLE_NAME, NFT_TABLE) < 0)
		goto fail;
	/* Flags only on the real table: on an existing table they would
	 * turn "create if missing" into an update. */
	if (rec != NULL) {
		nftnl_table_set_u32(t, NFTNL_TABLE_FLAGS, 0);
		if (table_set_record(t, rec, xt) != MF_OK)
			goto fail;
	}
	nlh = nft_batch_msg(b, type, flags, what);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nft_batch_next(b);
	nftnl_table_free(t);
	return MF_OK;
fail:
	nftnl_table_free(t);
	return MF_ERROR;
}

void nft_ruleset_build_delete(struct nft_batch *b)
{
	/* Only out of memory can fail here; the batch then lacks messages
	 * and the kernel's reply count gives it away. */
	put_table(b, NFT_MSG_NEWTABLE, NLM_F_CREATE, NULL, NULL, "creating table");
	put_table(b, NFT_MSG_DELTABLE, 0, NULL, NULL, "deleting old table");
}

/* What nft sends for `size N; flags dynamic,timeout; timeout T; counter`
 * with a concatenated key: a key byte order of 0 (none for a
 * concatenation), the key's typeof as an empty concatenation, the bound,
 * the timeout and a counter expression every element gets. */
static int put_dynamic(struct nftnl_set *s, struct nftnl_udata_buf *ud,
		       const struct nft_set_def *d)
{
	struct nftnl_udata *outer, *inner;
	struct nftnl_expr *counter;

	if (!nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_KEYBYTEORDER, 0))
		return MF_ERROR;
	outer = nftnl_udata_nest_start(ud, NFTNL_UDATA_SET_KEY_TYPEOF);
	if (outer == NULL ||
	    !nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_TYPEOF_EXPR, NFT_EXPR_CONCAT))
		return MF_ERROR;
	inner = nftnl_udata_nest_start(ud, NFTNL_UDATA_SET_TYPEOF_DATA);
	if (inner == NULL)
		return MF_ERROR;
	nftnl_udata_nest_end(ud, inner);
	nftnl_udata_nest_end(ud, outer);
	nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, d->size);
	nftnl_set_set_u64(s, NFTNL_SET_TIMEOUT, d->timeout_ms);
	counter = nftnl_expr_alloc("counter");
	if (counter == NULL)
		return MF_ERROR;
	nftnl_set_add_expr(s, counter); /* the set owns it from here */
	return MF_OK;
}

/* Set ids are per batch; the bridge table's sets get their own range so
 * no kernel can confuse them with the inet table's. */
static uint32_t family_set_id(uint16_t family, enum nft_set_idx i)
{
	return nft_set_id(i) + (family == NFPROTO_BRIDGE ? 32 : 0);
}

static int put_set(struct nft_batch *b, uint16_t family, enum nft_set_idx i)
{
	const struct nft_set_def *d = &nft_sets[i];
	struct nftnl_udata_buf *ud = nftnl_udata_buf_alloc(16);
	struct nftnl_set *s = nftnl_set_alloc();
	struct nlmsghdr *nlh;
	int rc = MF_ERROR;

	if (ud == NULL || s == NULL)
		goto out;
	if (nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE) < 0 ||
	    nftnl_set_set_str(s, NFTNL_SET_NAME, d->name) < 0)
		goto out;
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, d->flags);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, d->key_type);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, d->key_len);
	nftnl_set_set_u32(s, NFTNL_SET_ID, family_set_id(family, i));
	if (d->flags & NFT_SET_EVAL) {
		if (put_dynamic(s, ud, d) != MF_OK)
			goto out;
	} else if (!nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_KEYBYTEORDER,
					NFT_BYTEORDER_BIG_ENDIAN)) {
		goto out;
	}
	if (nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud),
			       nftnl_udata_buf_len(ud)) < 0)
		goto out;
	nlh = nft_batch_msg_family(b, NFT_MSG_NEWSET, NLM_F_CREATE, family, set_what[i]);
	nftnl_set_nlmsg_build_payload(nlh, s);
	nft_batch_next(b);
	rc = MF_OK;
out:
	if (s != NULL)
		nftnl_set_free(s);
	if (ud != NULL)
		nftnl_udata_buf_free(ud);
	return rc;
}

static int put_elems(struct nft_batch *b, uint16_t family, enum nft_set_idx i,
		     const struct nft_elem *elems, size_t n)
{
	if (n == 0)
		return MF_OK; /* an empty element list is an error to the kernel */
	return nft_set_put_elems_family(b, family, NFT_MSG_NEWSETELEM, NLM_F_CREATE,
					nft_sets[i].name, family_set_id(family, i),
					elems, n, elems_what[i]);
}

static int put_sources(struct nft_batch *b, uint16_t family,
		       const struct mf_config *cfg, enum nft_set_idx i)
{
	struct nft_elem elems[MF_MAX_SOURCES];
	size_t n = 0;

	for (unsigned int k = 0; k < cfg->n_sources; k++) {
		const struct mf_addr *a = &cfg->sources[k];
		bool dup = false;

		if (a->family != nft_sets[i].family)
			continue;
		for (unsigned int j = 0; j < k; j++)
			dup = dup || mf_addr_equal(a, &cfg->sources[j]);
		if (!dup)
			nft_elem_from_addr(a, &elems[n++]);
	}
	return put_elems(b, family, i, elems, n);
}

static int put_ports(struct nft_batch *b, uint16_t family, const struct mf_config *cfg)
{
	struct nft_elem elems[MF_MAX_PORTS];

	for (unsigned int k = 0; k < cfg->n_ports; k++)
		nft_elem_from_port(cfg->ports[k], &elems[k]);
	return put_elems(b, family, NFT_SET_PORTS, elems, cfg->n_ports);
}

static int cidr_cmp(const void *pa, const void *pb)
{
	const struct mf_cidr *a = pa, *b = pb;
	int d = memcmp(a->addr.u.bytes, b->addr.u.bytes, mf_addr_len(&a->addr));

	if (d != 0)
		return d;
	return (int)a->prefix - (int)b->prefix;
}

int nft_ruleset_clients(const struct mf_config *cfg, int family,
			struct mf_cidr *out_r, unsigned int *n_r, char *err,
			size_t errlen)
{
	unsigned int n = 0;

	for (unsigned int k = 0; k < cfg->n_clients; k++)
		if (cfg->clients[k].addr.family == family)
			out_r[n++] = cfg->clients[k];
	qsort(out_r, n, sizeof(*out_r), cidr_cmp);
	*n_r = 0;
	for (unsigned int k = 0; k < n; k++) {
		enum nft_overlap ov = NFT_DISJOINT;
		unsigned int j;

		for (j = 0; j < *n_r && ov == NFT_DISJOINT; j++)
			ov = nft_interval_overlap(&out_r[j], &out_r[k]);
		if (ov == NFT_SAME)
			continue;
		if (ov == NFT_OVERLAP) {
			char a[MF_ADDRSTRLEN], o[MF_ADDRSTRLEN];

			mf_cidr_format(&out_r[k], a, sizeof(a));
			mf_cidr_format(&out_r[j - 1], o, sizeof(o));
			return mf_err(err, errlen,
				      "[intercept] clients: %s overlaps %s", a, o);
		}
		out_r[(*n_r)++] = out_r[k];
	}
	return MF_OK;
}

static int put_clients(struct nft_batch *b, uint16_t table_family,
		       const struct mf_config *cfg, int family, char *err,
		       size_t errlen)
{
	struct mf_cidr cidrs[MF_MAX_CLIENTS];
	struct nft_elem elems[2 * MF_MAX_CLIENTS];
	unsigned int n_cidrs;
	size_t n = 0;

	if (nft_ruleset_clients(cfg, family, cidrs, &n_cidrs, err, errlen) != MF_OK)
		return MF_ERROR;
	for (unsigned int k = 0; k < n_cidrs; k++)
		n += nft_elem_from_cidr(&cidrs[k], &elems[n]);
	if (put_elems(b, table_family, nft_clients_set(family), elems, n) != MF_OK)
		return mf_err(err, errlen, "nftables: out of memory");
	return MF_OK;
}

int nft_ruleset_put_sets(struct nft_batch *b, uint16_t family,
			 const struct mf_config *cfg, char *err, size_t errlen)
{
	for (int i = 0; i < NFT_SET_FAIL_CLOSED; i++)
		if (put_set(b, family, (enum nft_set_idx)i) != MF_OK)
			goto oom;
	if (put_sources(b, family, cfg, NFT_SET_SOURCES4) != MF_OK ||
	    put_sources(b, family, cfg, NFT_SET_SOURCES6) != MF_OK ||
	    put_ports(b, family, cfg) != MF_OK)
		goto oom;
	if (put_clients(b, family, cfg, AF_INET, err, errlen) != MF_OK ||
	    put_clients(b, family, cfg, AF_INET6, err, errlen) != MF_OK)
		return MF_ERROR;
	return MF_OK;
oom:
	return mf_err(err, errlen, "nftables: out of memory");
}

uint32_t nft_ruleset_set_id(uint16_t family, enum nft_set_idx i)
{
	return family_set_id(family, i);
}

int nft_ruleset_build(struct nft_batch *b, const struct mf_config *cfg,
		      const struct nft_gate_opts *gate, char *err, size_t errlen)
{
	struct nft_xt_record xt = { cfg->gate_mark, cfg->queue_num };
	struct policy_route rec;

	policy_route_from_config(cfg, &rec);
	nft_ruleset_build_delete(b);
	if (put_table(b, NFT_MSG_NEWTABLE, NLM_F_CREATE, &rec,
		      gate->native_queue ? NULL : &xt, "creating table") != MF_OK)
		goto oom;
	if (nft_ruleset_put_sets(b, NFPROTO_INET, cfg, err, errlen) != MF_OK)
		return MF_ERROR;
	if (put_set(b, NFPROTO_INET, NFT_SET_FAIL_CLOSED) != MF_OK ||
	    put_set(b, NFPROTO_INET, NFT_SET_DIRECT4) != MF_OK ||
	    put_set(b, NFPROTO_INET, NFT_SET_DIRECT6) != MF_OK)
		goto oom;
	if (gate->closed) {
		struct nft_elem tcp;

		nft_elem_fail_closed(&tcp);
		if (put_elems(b, NFPROTO_INET, NFT_SET_FAIL_CLOSED, &tcp, 1) != MF_OK)
			goto oom;
	}
	if (nft_chain_build(b, cfg) != MF_OK || nft_gate_build(b, cfg, gate) != MF_OK)
		goto oom;
	return MF_OK;
oom:
	return mf_err(err, errlen, "nftables: out of memory");
}

const struct nft_family nft_families[2] = {
	{ NFPROTO_IPV4, 12, 16, 4, NFT_SET_SOURCES4, NFT_SET_CLIENTS4, NFT_SET_DIRECT4 },
	{ NFPROTO_IPV6, 8, 24, 16, NFT_SET_SOURCES6, NFT_SET_CLIENTS6, NFT_SET_DIRECT6 },
};
