/* scripted_imap.h — unit tests' IMAP peer: an imap_conn whose server side
 * is a socketpair holding a whole scripted answer (then EOF), and what the
 * client wrote to it read back, for tests that compare commands sent.
 * Include after cmocka.h. */
#ifndef MF_TEST_SCRIPTED_IMAP_H
#define MF_TEST_SCRIPTED_IMAP_H

#include "imap_client.h"
#include "mf.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

static inline struct imap_conn *scripted(const char *answer, size_t len, int *server_r)
{
	struct imap_client_opts o = { .name = "scripted" };
	struct imap_conn *c;
	char err[256];
	int sp[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_int_equal(write(sp[1], answer, len), (ssize_t)len);
	shutdown(sp[1], SHUT_WR);
	assert_int_equal(imap_attach_fd(sp[0], &o, &c, err, sizeof(err)), MF_OK);
	*server_r = sp[1];
	return c;
}

/* Up to len bytes the client wrote, until it closed. */
static inline size_t read_all(int fd, char *buf, size_t len)
{
	size_t n = 0;
	ssize_t r;

	while (n < len && (r = read(fd, buf + n, len - n)) > 0)
		n += (size_t)r;
	return n;
}

#endif
