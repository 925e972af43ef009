#include "secret_file.h"
#include "mf.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int mf_secret_file_read(const char *path, char *buf, size_t cap, size_t *len_r, char *err,
			size_t errlen)
{
	struct stat st;
	size_t n = 0;
	int fd, rc = MF_ERROR;

	if (cap < 2)
		return mf_err(err, errlen, "%s: no room for the secret", path);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return mf_err(err, errlen, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		mf_err(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		mf_err(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		mf_err(err, errlen, "%s: readable by others (mode %03o): chmod 600 it", path,
		       (unsigned int)(st.st_mode & 0777));
		goto out;
	}
	/* One byte more than fits tells "too long" from "exactly full". */
	for (;;) {
		ssize_t r = read(fd, buf + n, cap - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			mf_err(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == cap)
			break;
	}
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n >= cap) {
		mf_err(err, errlen, "%s: longer than %zu bytes", path, cap - 1);
		goto out;
	}
	if (n == 0) {
		mf_err(err, errlen, "%s: empty", path);
		goto out;
	}
	if (memchr(buf, '\0', n) != NULL || memchr(buf, '\n', n) != NULL ||
	    memchr(buf, '\r', n) != NULL) {
		mf_err(err, errlen, "%s: one line expected (NUL or line break inside)", path);
		goto out;
	}
	buf[n] = '\0';
	*len_r = n;
	rc = MF_OK;
out:
	if (rc != MF_OK)
		explicit_bzero(buf, cap);
	close(fd);
	return rc;
}
