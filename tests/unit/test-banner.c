/* Unit tests: gateway/banner.c — the source's greeting and capabilities,
 * read through the backend line reader one byte at a time, and hostile
 * sources. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "banner.h"
#include "imap_backend.h"
#include "mf.h"

/* Feeds text byte by byte; returns the last verdict and how many times
 * the reader asked for the capability command. */
static enum banner_next run_n(enum banner_proto proto, const char *text, size_t len,
			      struct banner *b, unsigned int *sends_r)
{
	struct banner_reader r;
	struct imap_line l;
	enum banner_next next = BN_READ;

	memset(b, 0, sizeof(*b));
	banner_reader_init(&r, b, proto);
	imap_line_init(&l);
	*sends_r = 0;
	for (size_t i = 0; i < len && (next == BN_READ || next == BN_SEND_CAPS); i++) {
		size_t used;
		int rc = imap_line_feed(&l, (const uint8_t *)text + i, 1, &used);

		assert_int_equal(used, 1);
		if (rc == MF_AGAIN)
			continue;
		if (rc == MF_ERROR)
			return BN_FAIL;
		next = banner_reader_line(&r, l.buf, l.len);
		*sends_r += next == BN_SEND_CAPS;
	}
	return next;
}

static enum banner_next run(enum banner_proto proto, const char *text, struct banner *b,
			    unsigned int *sends_r)
{
	return run_n(proto, text, strlen(text), b, sends_r);
}

static void test_imap_dovecot(void **state)
{
	struct banner b;
	unsigned int sends;

	(void)state;
	assert_int_equal(run(BP_IMAP,
			     "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE "
			     "LITERAL+ STARTTLS AUTH=PLAIN AUTH=LOGIN] Dovecot ready (old.lab.test).\r\n",
			     &b, &sends), BN_DONE);
	assert_int_equal(sends, 0);
	assert_true(b.ok);
	assert_string_equal(b.text, "Dovecot ready (old.lab.test).");
	assert_int_equal(b.caps, BC_CAPS_SEEN | BC_STARTTLS);
}

static void test_imap_caps_asked(void **state)
{
	struct banner b;
	unsigned int sends;

	(void)state;
	assert_int_equal(run(BP_IMAP,
			     "* OK Courier ready\r\n"
			     "* CAPABILITY IMAP4rev1 imap4REV2 LOGINDISABLED STARTTLS\r\n"
			     "mf OK done\r\n", &b, &sends), BN_DONE);
	assert_int_equal(sends, 1);
	assert_string_equal(b.text, "Courier ready");
	assert_int_equal(b.caps, BC_CAPS_SEEN | BC_IMAP4REV2 | BC_LOGINDISABLED | BC_STARTTLS);
}

static void test_pop3(void **state)
{
	struct banner b;
	unsigned int sends;

	(void)state;
	assert_int_equal(run(BP_POP3,
			     "+OK [XCLIENT] Dovecot ready <1.2@old.lab.test> now.\r\n"
			     "+OK\r\nTOP\r\nUSER\r\nSTLS\r\n.\r\n", &b, &sends), BN_DONE);
	assert_int_equal(sends, 1);
	assert_string_equal(b.text, "Dovecot ready now.");
	assert_int_equal(b.caps, BC_CAPS_SEEN | BC_PLAIN_LOGIN | BC_STARTTLS);

	/* RFC 1939 server without CAPA: USER/PASS is what it has */
	assert_int_equal(run(BP_POP3, "+OK old pop\r\n-ERR what?\r\n", &b, &sends), BN_DONE);
	assert_int_equal(b.caps, BC_CAPS_SEEN | BC_PLAIN_LOGIN);

	/* STLS only: plaintext login refused before TLS */
	assert_int_equal(run(BP_POP3, "+OK x\r\n+OK\r\nSTLS\r\nSASL\r\n.\r\n", &b, &sends), BN_DONE);
	assert_int_equal(b.caps, BC_CAPS_SEEN | BC_STARTTLS);
}

static void test_hostile(void **state)
{
	char big[600];
	struct banner b;
	unsigned int sends;

	(void)state;
	assert_int_equal(run(BP_IMAP, "* BYE go away\r\n", &b, &sends), BN_FAIL);
	assert_false(b.ok);
	assert_int_equal(run(BP_IMAP, "garbage\r\n", &b, &sends), BN_FAIL);
	assert_int_equal(run(BP_IMAP, "* OK [CAPABILITY IMAP4rev1 no end\r\n", &b, &sends), BN_FAIL);
	assert_int_equal(run(BP_POP3, "-ERR busy\r\n", &b, &sends), BN_FAIL);
	assert_int_equal(run(BP_POP3, "+OK a\r\n+ go on\r\n", &b, &sends), BN_FAIL);
	assert_true(b.ok);
	/* NUL: the line reader refuses it */
	assert_int_equal(run_n(BP_IMAP, "* OK a\0b\r\n", 10, &b, &sends), BN_FAIL);
	/* control characters and ESC never reach our greeting */
	assert_int_equal(run(BP_IMAP, "* OK [CAPABILITY IMAP4rev1] a\x1b[2Jb\tc\x7f\r\n", &b, &sends),
			 BN_DONE);
	assert_string_equal(b.text, "a[2Jbc");
	/* an overlong text is cut to BANNER_TEXT_MAX */
	memset(big, 'x', sizeof(big));
	memcpy(big, "+OK ", 4);
	memcpy(big + sizeof(big) - 3, "\r\n", 3);
	assert_int_equal(run(BP_POP3, big, &b, &sends), BN_SEND_CAPS);
	assert_int_equal(strlen(b.text), BANNER_TEXT_MAX);
	/* an APOP-looking stamp without its end is text */
	assert_int_equal(run(BP_POP3, "+OK <a@b\r\n+OK\r\n.\r\n", &b, &sends), BN_DONE);
	assert_string_equal(b.text, "<a@b");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_imap_dovecot),
		cmocka_unit_test(test_imap_caps_asked),
		cmocka_unit_test(test_pop3),
		cmocka_unit_test(test_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
