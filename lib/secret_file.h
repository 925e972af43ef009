/* secret_file.h — a password kept in a file (the migration's master user):
 * read once, at start, into the caller's (locked) buffer.
 *
 * The file must be a regular file, not a symlink, readable by its owner
 * only (mode & 077 == 0: a secret anyone on the box can read is refused
 * rather than used), at most cap - 1 bytes, with no NUL and no line break
 * but one optional final "\n" or "\r\n". Nothing read is left anywhere but
 * in buf; nothing is logged. */
#ifndef MF_SECRET_FILE_H
#define MF_SECRET_FILE_H

#include <stddef.h>

/* MF_OK with buf NUL-terminated and *len_r its length (>= 1); MF_ERROR
 * with err (which never holds the secret), buf wiped. */
int mf_secret_file_read(const char *path, char *buf, size_t cap, size_t *len_r, char *err,
			size_t errlen);

#endif
