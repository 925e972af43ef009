/* libFuzzer target: migrate/imap_client.c reading a hostile server, and the
 * migration engine's interpreters of what it read (mig_fetch_parse,
 * mig_date_parse, response codes and text).
 *
 * Input: the server's bytes after a fixed greeting, written into a
 * socketpair that is then half-closed; byte 0 picks whether BODY[]
 * literals are streamed to a consumer or collected inline. Responses are
 * read until the client fails (at the latest at the end of the input).
 * Checks: every response's items are NUL-terminated and inside bounds, a
 * streamed literal's bytes add up to its announced size, a parsed FETCH
 * has sane fields, and the client never reads past the input or hangs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "imap_client.h"
#include "mf.h"
#include "mig_ctx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(ok) check_at((ok), __LINE__)

static void check_at(int ok, int line)
{
	if (!ok) {
		fprintf(stderr, "fuzz-imap_client: invariant at line %d failed\n", line);
		abort();
	}
}

struct lit {
	uint64_t want, got;
	int open;
	int stream;
};

static int l_begin(void *arg, const struct imap_response *r, uint64_t size)
{
	struct lit *l = arg;

	check(!l->open);
	if (r->n == 0 || !imap_item_is(&r->items[r->n - 1], "BODY[]") || !l->stream)
		return 0;
	l->open = 1;
	l->want = size;
	l->got = 0;
	return 1;
}

static int l_data(void *arg, const uint8_t *p, size_t n)
{
	struct lit *l = arg;

	check(l->open && n > 0 && p != NULL);
	l->got += n;
	check(l->got <= l->want);
	return MF_OK;
}

static int l_end(void *arg)
{
	struct lit *l = arg;

	check(l->open && l->got == l->want);
	l->open = 0;
	return MF_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char greet[] = "* OK [CAPABILITY IMAP4rev1 LITERAL+] fuzz\r\n";
	struct imap_client_opts o = { .name = "fuzz", .line_max = 512, .literal_max = 100000 };
	struct lit l = { 0 };
	struct imap_sink sink = { .begin = l_begin, .data = l_data, .end = l_end, .arg = &l };
	struct imap_conn *c;
	char err[IMAP_ERR_MAX];
	int sp[2];

	if (size < 1 || size > 60000)
		return 0;
	l.stream = data[0] & 1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0)
		return 0;
	if (send(sp[1], greet, sizeof(greet) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(greet) - 1 ||
	    send(sp[1], data + 1, size - 1, MSG_NOSIGNAL) != (ssize_t)(size - 1)) {
		close(sp[0]);
		close(sp[1]);
		return 0;
	}
	shutdown(sp[1], SHUT_WR);
	if (imap_attach_fd(sp[0], &o, &c, err, sizeof(err)) != MF_OK) {
		close(sp[1]);
		return 0;
	}
	for (size_t guard = 0; guard < size + 2; guard++) {
		const struct imap_response *r;
		struct mig_msg m;
		int rc;

		err[0] = '\0';
		if (imap_read(c, &sink, &r, err, sizeof(err)) != MF_OK) {
			check(err[0] != '\0');
			break;
		}
		check(!l.open);
		for (size_t i = 0; i < r->n; i++) {
			const struct imap_item *it = &r->items[i];

			check(it->s != NULL && it->s[it->len] == '\0');
			check(it->type != IMAP_TOK_START && it->type != IMAP_TOK_END);
			check(!it->streamed || it->type == IMAP_TOK_LITERAL);
		}
		(void)imap_resp_code(r, "APPENDUID");
		check(imap_resp_text(r) != NULL);
		rc = mig_fetch_parse(r, &m);
		check(rc == 0 || rc == 1 || rc == MF_ERROR);
		if (rc == 1) {
			int64_t t;

			check(m.seq > 0);
			check(strlen(m.date) < sizeof(m.date));
			if (m.date[0] != '\0')
				(void)mig_date_parse(m.date, &t);
			if (m.flags != NULL) {
				char *copy = strdup(m.flags), *save = NULL;

				check(copy != NULL);
				for (char *w = strtok_r(copy, " ", &save); w != NULL;
				     w = strtok_r(NULL, " ", &save))
					check(strcasecmp(w, "\\Recent") != 0);
				free(copy);
			}
			free(m.flags);
		}
	}
	imap_close(c);
	close(sp[1]);
	return 0;
}
