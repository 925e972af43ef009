#include "xt_queue.h"
#include "mf.h"
#include "nl_sock.h"
#include "nft_batch.h"

#include <errno.h>
#include <fcntl.h>
#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Bounded: a duplicate left by hand is removed, a runaway loop is not. */
#define XT_MAX_COPIES 16

static const char *const programs[2] = { "iptables-nft", "ip6tables-nft" };
static const char *const dirs[] = { "/usr/sbin", "/sbin", "/usr/bin" };

/* Absolute path of prog: no PATH lookup, so an admin's PATH cannot swap
 * in another program under our privileges. */
static int find_program(const char *prog, char *path, size_t len, char *err,
			size_t errlen)
{
	for (size_t i = 0; i < MF_ARRAY_LEN(dirs); i++) {
		snprintf(path, len, "%s/%s", dirs[i], prog);
		if (access(path, X_OK) == 0)
			return MF_OK;
	}
	return mf_err(err, errlen, "%s not found (Debian package iptables): the "
		      "kernel lacks the nft queue statement and the SYN gate "
		      "needs it for its queue rule", prog);
}

/* Runs argv; *status_r gets the exit code. Its stderr (first line) goes
 * to err, so iptables' own reason reaches the admin. */
static int run(char *const argv[], int *status_r, char *err, size_t errlen)
{
	int pipefd[2], st;
	char out[256];
	ssize_t n;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) != 0)
		return mf_err(err, errlen, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return mf_err(err, errlen, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
		}
		dup2(pipefd[1], STDERR_FILENO);
		execv(argv[0], argv);
		_exit(127);
	}
	close(pipefd[1]);
	n = read(pipefd[0], out, sizeof(out) - 1);
	out[n > 0 ? n : 0] = '\0';
	out[strcspn(out, "\n")] = '\0';
	/* Drain the rest so the child never blocks on a full pipe. */
	while (n > 0) {
		char sink[256];

		n = read(pipefd[0], sink, sizeof(sink));
	}
	close(pipefd[0]);
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return mf_err(err, errlen, "waitpid: %s", strerror(errno));
	}
	*status_r = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
	if (*status_r != 0)
		mf_err(err, errlen, "%s: %s", argv[0], out[0] ? out : "failed");
	return MF_OK;
}

/* op is "-C", "-A" or "-D"; rule 0 is the fail-open (bypass) one. */
static int xt_spec(uint32_t gate_mark, uint16_t queue_num, int family,
		   const char *op, int rule, int *status_r, char *err, size_t errlen)
{
	char path[64], mark[16], num[8];
	char *argv[16];
	int n = 0;

	if (find_program(programs[family], path, sizeof(path), err, errlen) != MF_OK)
		return MF_ERROR;
	snprintf(mark, sizeof(mark), "0x%x", gate_mark + (unsigned int)rule);
	snprintf(num, sizeof(num), "%u", queue_num);
	argv[n++] = path;
	argv[n++] = (char *)"-w";
	argv[n++] = (char *)"-t";
	argv[n++] = (char *)"raw";
	argv[n++] = (char *)op;
	argv[n++] = (char *)"PREROUTING";
	argv[n++] = (char *)"-m";
	argv[n++] = (char *)"mark";
	argv[n++] = (char *)"--mark";
	argv[n++] = mark;
	argv[n++] = (char *)"-j";
	argv[n++] = (char *)"NFQUEUE";
	argv[n++] = (char *)"--queue-num";
	argv[n++] = num;
	if (rule == 0)
		argv[n++] = (char *)"--queue-bypass";
	argv[n] = NULL;
	return run(argv, status_r, err, errlen);
}

static int xt(const struct mf_config *cfg, int family, const char *op, int rule,
	      int *status_r, char *err, size_t errlen)
{
	return xt_spec(cfg->gate_mark, cfg->queue_num, family, op, rule, status_r,
		       err, errlen);
}

int xt_queue_install(const struct mf_config *cfg, char *err, size_t errlen)
{
	bool added[2][2] = { { false, false }, { false, false } };
	char ignored[256];
	int st;

	for (int f = 0; f < 2; f++) {
		for (int r = 0; r < 2; r++) {
			if (xt(cfg, f, "-C", r, &st, err, errlen) != MF_OK)
				goto undo;
			if (st == 0)
				continue; /* present already */
			if (xt(cfg, f, "-A", r, &st, err, errlen) != MF_OK)
				goto undo;
			if (st != 0)
				goto undo;
			added[f][r] = true;
		}
	}
	return MF_OK;
undo:
	for (int f = 1; f >= 0; f--)
		for (int r = 1; r >= 0; r--)
			if (added[f][r])
				(void)xt(cfg, f, "-D", r, &st, ignored, sizeof(ignored));
	return MF_ERROR;
}

int xt_queue_check(const struct mf_config *cfg, bool *present_r, char *err,
		   size_t errlen)
{
	int st;

	*present_r = false;
	for (int f = 0; f < 2; f++)
		for (int r = 0; r < 2; r++) {
			if (xt(cfg, f, "-C", r, &st, err, errlen) != MF_OK)
				return MF_ERROR;
			if (st != 0)
				return MF_OK;
		}
	*present_r = true;
	return MF_OK;
}

/* What table raw of a family holds, from a dump over netlink. */
struct raw_state {
	unsigned int rules;
	bool drop_policy;
};

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	(void)nlh;
	((struct raw_state *)data)->rules++;
	return MNL_CB_OK;
}

static int chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_chain *c = nftnl_chain_alloc();

	if (c == NULL) {
		errno = ENOMEM;
		return MNL_CB_ERROR;
	}
	if (nftnl_chain_nlmsg_parse(nlh, c) < 0) {
		nftnl_chain_free(c);
		errno = EPROTO;
		return MNL_CB_ERROR;
	}
	if (nftnl_chain_is_set(c, NFTNL_CHAIN_POLICY) &&
	    nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY) != NF_ACCEPT)
		((struct raw_state *)data)->drop_policy = true;
	nftnl_chain_free(c);
	return MNL_CB_OK;
}

static int dump_raw(struct nl_sock *s, uint16_t type, int nfproto, mnl_cb_t cb,
		    struct raw_state *rs, struct nl_error *e)
{
	char buf[NL_REQ_SIZE] = { 0 };
	struct nlmsghdr *nlh;

	nlh = nftnl_nlmsg_build_hdr(buf, type, (uint16_t)nfproto, NLM_F_DUMP,
				    nl_sock_next_seq(s));
	mnl_attr_put_strz(nlh, type == NFT_MSG_GETRULE ? NFTA_RULE_TABLE :
			  NFTA_CHAIN_TABLE, "raw");
	return nl_sock_dump(s, nlh, cb, rs, e);
}

/* Deletes table raw of nfproto when nothing in it affects a packet. */
static int drop_empty_raw(struct nl_sock *s, int nfproto, char *err, size_t errlen)
{
	struct raw_state rs = { 0, false };
	struct nftnl_table *t;
	struct nft_batch b;
	struct nl_error e;
	int failed, rc;

	if (dump_raw(s, NFT_MSG_GETRULE, nfproto, rule_cb, &rs, &e) != MF_OK ||
	    dump_raw(s, NFT_MSG_GETCHAIN, nfproto, chain_cb, &rs, &e) != MF_OK) {
		char why[256];

		if (e.error == ENOENT)
			return MF_OK; /* no table raw: nothing to tidy */
		nl_error_format(&e, why, sizeof(why));
		return mf_err(err, errlen, "nftables: reading table raw: %s", why);
	}
	if (rs.rules != 0 || rs.drop_policy)
		return MF_OK;
	t = nftnl_table_alloc();
	if (t == NULL || nftnl_table_set_str(t, NFTNL_TABLE_NAME, "raw") < 0) {
		if (t != NULL)
			nftnl_table_free(t);
		return mf_err(err, errlen, "nftables: out of memory");
	}
	if (nft_batch_start(&b, s, err, errlen) != MF_OK) {
		nftnl_table_free(t);
		return MF_ERROR;
	}
	nftnl_table_nlmsg_build_payload(nft_batch_msg_family(&b, NFT_MSG_DELTABLE,
							     0, (uint16_t)nfproto,
							     "deleting empty table raw"), t);
	nft_batch_next(&b);
	nftnl_table_free(t);
	rc = nft_batch_send_detail(&b, true, &failed, &e);
	nft_batch_free(&b);
	if (rc == MF_OK || e.error == ENOENT) /* no table raw: nothing to tidy */
		return MF_OK;
	{
		char why[256];

		nl_error_format(&e, why, sizeof(why));
		return mf_err(err, errlen, "nftables: deleting empty table raw: %s", why);
	}
}

int xt_queue_remove(const struct mf_config *cfg, char *err, size_t errlen)
{
	return xt_queue_remove_spec(cfg->gate_mark, cfg->queue_num, err, errlen);
}

int xt_queue_remove_spec(uint32_t gate_mark, uint16_t queue_num, char *err,
			 size_t errlen)
{
	static const int nfprotos[2] = { NFPROTO_IPV4, NFPROTO_IPV6 };
	struct nl_sock s;
	char path[64], ignored[256];
	int st, rc = MF_OK;

	for (int f = 0; f < 2; f++) {
		/* Without the program nothing of ours can be there. */
		if (find_program(programs[f], path, sizeof(path), ignored,
				 sizeof(ignored)) != MF_OK)
			continue;
		for (int r = 0; r < 2; r++) {
			for (int k = 0; k < XT_MAX_COPIES; k++) {
				if (xt_spec(gate_mark, queue_num, f, "-D", r, &st,
					    err, errlen) != MF_OK)
					return MF_ERROR;
				if (st != 0)
					break; /* no (more) copies */
			}
		}
	}
	if (nl_sock_open(&s, NETLINK_NETFILTER, err, errlen) != MF_OK)
		return MF_ERROR;
	for (int f = 0; f < 2 && rc == MF_OK; f++)
		rc = drop_empty_raw(&s, nfprotos[f], err, errlen);
	nl_sock_close(&s);
	return rc;
}
