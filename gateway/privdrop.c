#include "privdrop.h"
#include "mf.h"

#include <cap-ng.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int privdrop_lookup(const char *user, uid_t *uid_r, gid_t *gid_r, char *err,
		    size_t errlen)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int rc = getpwnam_r(user, &pw, buf, sizeof(buf), &res);

	if (rc != 0)
		return mf_err(err, errlen, "user %s: %s", user, strerror(rc));
	if (res == NULL)
		return mf_err(err, errlen, "user %s does not exist", user);
	*uid_r = pw.pw_uid;
	*gid_r = pw.pw_gid;
	return MF_OK;
}

int privdrop_give(const char *path, uid_t uid, gid_t gid, char *err,
		  size_t errlen)
{
	static const char *const suffix[] = { "", "-wal", "-shm" };
	char p[4096 + 8];

	for (size_t i = 0; i < MF_ARRAY_LEN(suffix); i++) {
		snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
		if (fchownat(AT_FDCWD, p, uid, gid, AT_SYMLINK_NOFOLLOW) != 0 &&
		    !(errno == ENOENT && i > 0))
			return mf_err(err, errlen, "chown %s: %s", p, strerror(errno));
	}
	return MF_OK;
}

int privdrop_to(uid_t uid, gid_t gid, char *err, size_t errlen)
{
	int rc;

	capng_clear(CAPNG_SELECT_BOTH);
	if (capng_updatev(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED,
			  CAP_NET_ADMIN, CAP_NET_RAW, -1) != 0)
		return mf_err(err, errlen, "capabilities: cannot build the set");
	rc = capng_change_id((int)uid, (int)gid,
			     CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING);
	if (rc != 0)
		return mf_err(err, errlen, "switching to uid %u: libcap-ng error %d (%s)",
			      (unsigned int)uid, rc, strerror(errno));
	/* Trust, then verify: what the kernel now says about this thread. */
	capng_get_caps_process();
	if (getuid() != uid || geteuid() != uid || getgid() != gid ||
	    getegid() != gid ||
	    capng_have_capability(CAPNG_EFFECTIVE, CAP_NET_ADMIN) != 1 ||
	    capng_have_capability(CAPNG_EFFECTIVE, CAP_NET_RAW) != 1 ||
	    capng_have_capability(CAPNG_EFFECTIVE, CAP_SYS_ADMIN) != 0 ||
	    capng_have_capability(CAPNG_EFFECTIVE, CAP_SETUID) != 0 ||
	    capng_have_capability(CAPNG_BOUNDING_SET, CAP_SETUID) != 0)
		return mf_err(err, errlen, "privileges not as expected after the switch");
#if defined(__SANITIZE_ADDRESS__)
	/* The uid change cleared "dumpable", and LeakSanitizer's exit check
	 * attaches to our own threads with ptrace, which that forbids. Only
	 * the sanitizer build turns it back on (the tests' daemon); a
	 * release build stays undumpable: no core with a user's password. */
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0)
		return mf_err(err, errlen, "prctl: %s", strerror(errno));
#endif
	return MF_OK;
}
