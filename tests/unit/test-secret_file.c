/* Unit tests: lib/secret_file.c — one line read, its final "\n" or "\r\n"
 * dropped; refused (buffer wiped, error without the secret): group- or
 * world-readable, a symlink, a directory, empty, too long by one byte,
 * NUL or a line break inside. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mf.h"
#include "secret_file.h"

static char dir[] = "/tmp/mf-secret-XXXXXX";

static const char *put(const char *name, const void *data, size_t n, mode_t mode)
{
	static char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static void expect_ok(const char *data, size_t n, const char *want)
{
	char buf[16], err[200] = "";
	size_t len = 0;

	assert_int_equal(mf_secret_file_read(put("s", data, n, 0600), buf, sizeof(buf), &len,
					     err, sizeof(err)), MF_OK);
	assert_int_equal(len, strlen(want));
	assert_string_equal(buf, want);
}

static void expect_refused(const char *path, const char *needle)
{
	char buf[16], err[200] = "";
	size_t len = 0;

	memset(buf, 'x', sizeof(buf));
	assert_int_equal(mf_secret_file_read(path, buf, sizeof(buf), &len, err, sizeof(err)),
			 MF_ERROR);
	if (strstr(err, needle) == NULL)
		fail_msg("error '%s' lacks '%s'", err, needle);
	assert_null(strstr(err, "s3cret"));
	for (size_t i = 0; i < sizeof(buf); i++)
		if (buf[i] != 'x' && buf[i] != '\0')
			fail_msg("buffer byte %zu left as %02x", i, (unsigned char)buf[i]);
}

static void test_read(void **state)
{
	(void)state;
	expect_ok("s3cret", 6, "s3cret");
	expect_ok("s3cret\n", 7, "s3cret");
	expect_ok("s3cret\r\n", 8, "s3cret");
	expect_ok("123456789012345\n", 16, "123456789012345"); /* exactly cap - 1 */
}

static void test_refused(void **state)
{
	char path[300];

	(void)state;
	expect_refused(put("g", "s3cret\n", 7, 0640), "readable by others");
	expect_refused(put("w", "s3cret\n", 7, 0604), "readable by others");
	expect_refused(put("e", "", 0, 0600), "empty");
	expect_refused(put("n", "\n", 1, 0600), "empty");
	expect_refused(put("l", "1234567890123456", 16, 0600), "longer than 15");
	expect_refused(put("z", "s3c\0ret", 7, 0600), "one line");
	expect_refused(put("two", "s3cret\nmore\n", 12, 0600), "one line");
	expect_refused(put("cr", "s3\rcret", 7, 0600), "one line");
	snprintf(path, sizeof(path), "%s/missing", dir);
	expect_refused(path, "No such file");
	expect_refused(dir, "not a regular file");
	snprintf(path, sizeof(path), "%s/link", dir);
	put("target", "s3cret", 6, 0600);
	assert_int_equal(symlink("target", path), 0);
	expect_refused(path, "/link");
}

static int cleanup(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_refused),
	};

	if (mkdtemp(dir) == NULL)
		return 1;
	return cmocka_run_group_tests(tests, NULL, cleanup);
}
