/* Unit tests: gateway/pop3_backend.c — status classifier and the USER /
 * PASS builder; backend lines through imap_line_feed fed one byte at a
 * time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "imap_backend.h"
#include "mf.h"
#include "pop3_backend.h"

static int st(const char *line, enum pop3_status *s)
{
	return pop3_status_parse(line, strlen(line), s);
}

static void test_status(void **state)
{
	enum pop3_status s;

	(void)state;
	assert_int_equal(st("+OK", &s), MF_OK);
	assert_int_equal(s, POP3_ST_OK);
	assert_int_equal(st("+OK Dovecot ready.", &s), MF_OK);
	assert_int_equal(s, POP3_ST_OK);
	assert_int_equal(st("+ok fine", &s), MF_OK);
	assert_int_equal(st("-ERR [AUTH] Authentication failed.", &s), MF_OK);
	assert_int_equal(s, POP3_ST_ERR);
	assert_int_equal(st("-ERR", &s), MF_OK);
	assert_int_equal(st("-err x", &s), MF_OK);
	assert_int_equal(st("+OKAY", &s), MF_ERROR);
	assert_int_equal(st("-ERROR x", &s), MF_ERROR);
	assert_int_equal(st("+ ", &s), MF_ERROR);
	assert_int_equal(st("+O", &s), MF_ERROR);
	assert_int_equal(st("", &s), MF_ERROR);
	assert_int_equal(st("* OK imap", &s), MF_ERROR);
}

static void test_build(void **state)
{
	char out[POP3_UP_CMD_MAX], big[POP3_UP_FIELD_MAX + 2];
	size_t n;

	(void)state;
	assert_int_equal(pop3_up_cmd_build("USER", "alice", 5, out, &n), MF_OK);
	assert_int_equal(n, 12);
	assert_string_equal(out, "USER alice\r\n");
	assert_int_equal(pop3_up_cmd_build("PASS", "p w", 3, out, &n), MF_OK);
	assert_string_equal(out, "PASS p w\r\n");
	assert_int_equal(pop3_up_cmd_build("PASS", "", 0, out, &n), MF_ERROR);
	assert_int_equal(pop3_up_cmd_build("PASS", "a\r\nDELE 1", 10, out, &n), MF_ERROR);
	assert_int_equal(pop3_up_cmd_build("PASS", "a\nb", 3, out, &n), MF_ERROR);
	assert_int_equal(pop3_up_cmd_build("PASS", "a\0b", 3, out, &n), MF_ERROR);
	memset(big, 'x', sizeof(big));
	assert_int_equal(pop3_up_cmd_build("PASS", big, POP3_UP_FIELD_MAX, out, &n), MF_OK);
	assert_int_equal(n, 5 + POP3_UP_FIELD_MAX + 2);
	assert_int_equal(pop3_up_cmd_build("PASS", big, POP3_UP_FIELD_MAX + 1, out, &n),
			 MF_ERROR);
}

/* A backend conversation split at every byte gives the same lines. */
static void test_lines_bytewise(void **state)
{
	static const char in[] = "+OK Dovecot ready.\r\n+OK\r\n-ERR [AUTH] Authentication failed.\n";
	static const char *const want[] = { "+OK Dovecot ready.", "+OK",
					    "-ERR [AUTH] Authentication failed." };
	static const enum pop3_status want_st[] = { POP3_ST_OK, POP3_ST_OK, POP3_ST_ERR };
	struct imap_line *l = malloc(sizeof(*l));
	unsigned int got = 0;

	(void)state;
	imap_line_init(l);
	for (size_t i = 0; i < sizeof(in) - 1; i++) {
		size_t used = 0;
		int rc = imap_line_feed(l, (const uint8_t *)in + i, 1, &used);
		enum pop3_status s;

		assert_int_equal(used, 1);
		if (rc == MF_AGAIN)
			continue;
		assert_int_equal(rc, MF_OK);
		assert_true(got < 3);
		assert_string_equal(l->buf, want[got]);
		assert_int_equal(pop3_status_parse(l->buf, l->len, &s), MF_OK);
		assert_int_equal(s, want_st[got]);
		got++;
	}
	assert_int_equal(got, 3);
	free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_build),
		cmocka_unit_test(test_lines_bytewise),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
