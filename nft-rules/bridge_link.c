#include "bridge_link.h"
#include "mf.h"
#include "nl_sock.h"

#include <errno.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

struct link_ctx {
	struct bridge_link *br;
	bool have_mac;
	char kind[32];
};

static int linkinfo_cb(const struct nlattr *attr, void *data)
{
	struct link_ctx *ctx = data;

	if (mnl_attr_get_type(attr) == IFLA_INFO_KIND &&
	    mnl_attr_validate(attr, MNL_TYPE_STRING) >= 0)
		snprintf(ctx->kind, sizeof(ctx->kind), "%s", mnl_attr_get_str(attr));
	return MNL_CB_OK;
}

static int attr_cb(const struct nlattr *attr, void *data)
{
	struct link_ctx *ctx = data;

	switch (mnl_attr_get_type(attr)) {
	case IFLA_ADDRESS:
		if (mnl_attr_get_payload_len(attr) == sizeof(ctx->br->mac)) {
			memcpy(ctx->br->mac, mnl_attr_get_payload(attr),
			       sizeof(ctx->br->mac));
			ctx->have_mac = true;
		}
		break;
	case IFLA_LINKINFO:
		if (mnl_attr_validate(attr, MNL_TYPE_NESTED) >= 0)
			mnl_attr_parse_nested(attr, linkinfo_cb, ctx);
		break;
	default:
		break;
	}
	return MNL_CB_OK;
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	struct link_ctx *ctx = data;
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);

	if (nlh->nlmsg_type != RTM_NEWLINK ||
	    mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifi))
		return MNL_CB_OK;
	ctx->br->ifindex = (unsigned int)ifi->ifi_index;
	return mnl_attr_parse(nlh, sizeof(*ifi), attr_cb, ctx);
}

int bridge_link_get(const char *name, struct bridge_link *br_r, char *err,
		    size_t errlen)
{
	char buf[NL_REQ_SIZE] = { 0 };
	struct link_ctx ctx = { .br = br_r };
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	struct nl_sock s;
	struct nl_error e;
	int rc;

	memset(br_r, 0, sizeof(*br_r));
	if (nl_sock_open(&s, NETLINK_ROUTE, err, errlen) != MF_OK)
		return MF_ERROR;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = nl_sock_next_seq(&s);
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	rc = nl_sock_dump(&s, nlh, link_cb, &ctx, &e);
	nl_sock_close(&s);
	if (rc != MF_OK) {
		char why[256];

		if (e.error == ENODEV)
			return mf_err(err, errlen, "bridge mode: no device %s "
				      "([intercept] bridge)", name);
		nl_error_format(&e, why, sizeof(why));
		return mf_err(err, errlen, "bridge mode: asking for device %s: %s",
			      name, why);
	}
	if (strcmp(ctx.kind, "bridge") != 0)
		return mf_err(err, errlen, "bridge mode: %s is not a bridge (kind %s)",
			      name, ctx.kind[0] ? ctx.kind : "none");
	if (!ctx.have_mac)
		return mf_err(err, errlen, "bridge mode: %s has no MAC address", name);
	return MF_OK;
}

void bridge_mac_format(const uint8_t mac[6], char *buf, size_t len)
{
	snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1],
		 mac[2], mac[3], mac[4], mac[5]);
}
