#include "br_sysctl.h"
#include "mf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BR_DIR "/proc/sys/net/bridge"

static const char *const names[2] = {
	BR_DIR "/bridge-nf-call-iptables",
	BR_DIR "/bridge-nf-call-ip6tables",
};

static int read_one(const char *path, uint32_t *v_r, char *err, size_t errlen)
{
	char buf[32], *end;
	unsigned long v;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return mf_err(err, errlen, "%s: %s", path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return mf_err(err, errlen, "%s: %s", path,
			      n < 0 ? strerror(errno) : "empty");
	buf[n] = '\0';
	errno = 0;
	v = strtoul(buf, &end, 10);
	if (errno != 0 || end == buf || (*end != '\n' && *end != '\0') || v > 1)
		return mf_err(err, errlen, "%s: unexpected value", path);
	*v_r = (uint32_t)v;
	return MF_OK;
}

int br_sysctl_read(struct br_sysctl *v_r, char *err, size_t errlen)
{
	struct stat st;

	memset(v_r, 0, sizeof(*v_r));
	if (stat(BR_DIR, &st) != 0) {
		if (errno == ENOENT)
			return MF_OK; /* no br_netfilter: the IP hooks never see bridged frames */
		return mf_err(err, errlen, "%s: %s", BR_DIR, strerror(errno));
	}
	v_r->present = true;
	if (read_one(names[0], &v_r->call_iptables, err, errlen) != MF_OK ||
	    read_one(names[1], &v_r->call_ip6tables, err, errlen) != MF_OK)
		return MF_ERROR;
	return MF_OK;
}

static int write_one(const char *path, uint32_t v, char *err, size_t errlen)
{
	char buf[4];
	int n = snprintf(buf, sizeof(buf), "%u\n", v ? 1u : 0u);
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return mf_err(err, errlen, "%s: %s", path, strerror(errno));
	if (write(fd, buf, (size_t)n) != n) {
		int e = errno;

		close(fd);
		return mf_err(err, errlen, "writing %s: %s", path, strerror(e));
	}
	if (close(fd) != 0)
		return mf_err(err, errlen, "writing %s: %s", path, strerror(errno));
	return MF_OK;
}

int br_sysctl_write(const struct br_sysctl *v, char *err, size_t errlen)
{
	if (!v->present)
		return MF_OK;
	if (write_one(names[0], v->call_iptables, err, errlen) != MF_OK ||
	    write_one(names[1], v->call_ip6tables, err, errlen) != MF_OK)
		return MF_ERROR;
	return MF_OK;
}

bool br_sysctl_off(const struct br_sysctl *v)
{
	return !v->present || (v->call_iptables == 0 && v->call_ip6tables == 0);
}
