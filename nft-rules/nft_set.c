#include "nft_set.h"
#include "nft_ruleset.h"
#include "mf.h"

#include <errno.h>
#include <libnftnl/set.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <netinet/in.h>
#include <string.h>

void nft_elem_from_addr(const struct mf_addr *a, struct nft_elem *e_r)
{
	memset(e_r, 0, sizeof(*e_r));
	e_r->len = (uint32_t)mf_addr_len(a);
	memcpy(e_r->key, a->u.bytes, e_r->len);
}

void nft_elem_from_port(uint16_t port, struct nft_elem *e_r)
{
	memset(e_r, 0, sizeof(*e_r));
	e_r->len = 2;
	e_r->key[0] = (uint8_t)(port >> 8);
	e_r->key[1] = (uint8_t)port;
}

void nft_elem_fail_closed(struct nft_elem *e_r)
{
	memset(e_r, 0, sizeof(*e_r));
	e_r->len = 1;
	e_r->key[0] = IPPROTO_TCP;
}

unsigned int nft_elem_from_cidr(const struct mf_cidr *c,
				struct nft_elem elems_r[2])
{
	struct nft_interval_elem iv[2];
	unsigned int n = nft_interval_from_cidr(c, iv);

	for (unsigned int i = 0; i < n; i++) {
		nft_elem_from_addr(&iv[i].key, &elems_r[i]);
		elems_r[i].end = iv[i].end;
	}
	elems_r[0].open = n == 1;
	return n;
}

/* nft's own mark for a range that runs to the top of the address space. */
static int elem_set_open(struct nftnl_set_elem *se)
{
	struct nftnl_udata_buf *ud = nftnl_udata_buf_alloc(16);
	int rc = MF_ERROR;

	if (ud == NULL)
		return MF_ERROR;
	if (nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_ELEM_FLAGS,
				NFTNL_SET_ELEM_F_INTERVAL_OPEN) &&
	    nftnl_set_elem_set(se, NFTNL_SET_ELEM_USERDATA,
			       nftnl_udata_buf_data(ud),
			       nftnl_udata_buf_len(ud)) == 0)
		rc = MF_OK;
	nftnl_udata_buf_free(ud);
	return rc;
}

static struct nftnl_set *set_ref_new(const char *set)
{
	struct nftnl_set *s = nftnl_set_alloc();

	if (s == NULL)
		return NULL;
	if (nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE) < 0 ||
	    nftnl_set_set_str(s, NFTNL_SET_NAME, set) < 0) {
		nftnl_set_free(s);
		return NULL;
	}
	return s;
}

int nft_set_put_elems(struct nft_batch *b, uint16_t type, uint16_t flags,
		      const char *set, uint32_t set_id,
		      const struct nft_elem *elems, size_t n, const char *what)
{
	return nft_set_put_elems_family(b, NFPROTO_INET, type, flags, set, set_id,
					elems, n, what);
}

int nft_set_put_elems_family(struct nft_batch *b, uint16_t family, uint16_t type,
			     uint16_t flags, const char *set, uint32_t set_id,
			     const struct nft_elem *elems, size_t n,
			     const char *what)
{
	struct nftnl_set *s = set_ref_new(set);
	struct nlmsghdr *nlh;

	if (s == NULL)
		return MF_ERROR;
	if (set_id != 0)
		nftnl_set_set_u32(s, NFTNL_SET_ID, set_id);
	for (size_t i = 0; i < n; i++) {
		struct nftnl_set_elem *se = nftnl_set_elem_alloc();

		if (se == NULL)
			goto fail;
		/* Added first so that nftnl_set_free frees it on failure. */
		nftnl_set_elem_add(s, se);
		if (nftnl_set_elem_set(se, NFTNL_SET_ELEM_KEY, elems[i].key,
				       elems[i].len) < 0)
			goto fail;
		if (elems[i].end)
			nftnl_set_elem_set_u32(se, NFTNL_SET_ELEM_FLAGS,
					       NFT_SET_ELEM_INTERVAL_END);
		if (elems[i].open && elem_set_open(se) != MF_OK)
			goto fail;
	}
	nlh = nft_batch_msg_family(b, type, flags, family, what);
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	nft_batch_next(b);
	nftnl_set_free(s);
	return MF_OK;
fail:
	nftnl_set_free(s);
	return MF_ERROR;
}

struct dump_ctx {
	int (*cb)(const struct nft_elem *e, void *data);
	void *data;
};

static int dump_elem(struct nftnl_set_elem *se, void *data)
{
	struct dump_ctx *ctx = data;
	struct nft_elem e = { 0 };
	const void *key;
	uint32_t len = 0;

	key = nftnl_set_elem_get(se, NFTNL_SET_ELEM_KEY, &len);
	if (key == NULL || len == 0 || len > sizeof(e.key))
		return 0; /* not one of ours: nothing to say about it */
	memcpy(e.key, key, len);
	e.len = len;
	e.end = nftnl_set_elem_is_set(se, NFTNL_SET_ELEM_FLAGS) &&
		(nftnl_set_elem_get_u32(se, NFTNL_SET_ELEM_FLAGS) &
		 NFT_SET_ELEM_INTERVAL_END);
	return ctx->cb(&e, ctx->data) == MF_OK ? 0 : -1;
}

struct raw_ctx {
	int (*cb)(struct nftnl_set_elem *se, void *data);
	void *data;
};

static int dump_msg(const struct nlmsghdr *nlh, void *data)
{
	struct raw_ctx *ctx = data;
	struct nftnl_set *s = nftnl_set_alloc();
	int rc;

	if (s == NULL) {
		errno = ENOMEM;
		return MNL_CB_ERROR;
	}
	if (nftnl_set_elems_nlmsg_parse(nlh, s) < 0) {
		nftnl_set_free(s);
		errno = EPROTO;
		return MNL_CB_ERROR;
	}
	rc = nftnl_set_elem_foreach(s, ctx->cb, ctx->data);
	nftnl_set_free(s);
	if (rc < 0) {
		errno = ECANCELED;
		return MNL_CB_ERROR;
	}
	return MNL_CB_OK;
}

static int dump_elems(struct nl_sock *s, uint16_t family, const char *set, uint16_t type,
		      int (*cb)(struct nftnl_set_elem *se, void *data), void *data,
		      struct nl_error *e_r)
{
	char buf[NL_REQ_SIZE] = { 0 }; /* no stray bytes in padding */
	struct raw_ctx ctx = { .cb = cb, .data = data };
	struct nftnl_set *ref = set_ref_new(set);
	struct nlmsghdr *nlh;

	if (ref == NULL) {
		memset(e_r, 0, sizeof(*e_r));
		e_r->error = ENOMEM;
		return MF_ERROR;
	}
	nlh = nftnl_nlmsg_build_hdr(buf, type, family, NLM_F_DUMP, nl_sock_next_seq(s));
	nftnl_set_elems_nlmsg_build_payload(nlh, ref);
	nftnl_set_free(ref);
	return nl_sock_dump(s, nlh, dump_msg, &ctx, e_r);
}

int nft_set_dump_elems(struct nl_sock *s, const char *set, uint16_t type,
		       int (*cb)(struct nftnl_set_elem *se, void *data), void *data,
		       struct nl_error *e_r)
{
	return dump_elems(s, NFPROTO_INET, set, type, cb, data, e_r);
}

int nft_set_dump_family(struct nl_sock *s, uint16_t family, const char *set,
			int (*cb)(const struct nft_elem *e, void *data),
			void *data, struct nl_error *e_r)
{
	struct dump_ctx ctx = { .cb = cb, .data = data };

	return dump_elems(s, family, set, NFT_MSG_GETSETELEM, dump_elem, &ctx, e_r);
}

int nft_set_dump(struct nl_sock *s, const char *set,
		 int (*cb)(const struct nft_elem *e, void *data), void *data,
		 struct nl_error *e_r)
{
	return nft_set_dump_family(s, NFPROTO_INET, set, cb, data, e_r);
}
