/* Unit tests: migrate/mig_folders.c's name mapping (mig_map_name): INBOX,
 * special use across different names, subfolders of a special-use folder,
 * delimiter translation, names kept byte for byte, unrepresentable names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mf.h"
#include "mig_ctx.h"

static struct mig_list_entry src_v[] = {
	{ .name = "INBOX", .delim = '/' },
	{ .name = "Sent Items", .delim = '/', .use = MU_SENT },
	{ .name = "Deleted Items", .delim = '/', .use = MU_TRASH },
	{ .name = "Junk", .delim = '/', .use = MU_JUNK },
	{ .name = "Projects/2024", .delim = '/' },
	{ .name = "Re&AwE-sum&AOk-", .delim = '/' },
};

static struct mig_list_entry dst_v[] = {
	{ .name = "INBOX", .delim = '.' },
	{ .name = "Sent", .delim = '.', .use = MU_SENT },
	{ .name = "Trash", .delim = '.', .use = MU_TRASH },
};

static void expect(const struct mig_list *s, const struct mig_list *d, const char *name,
		   unsigned int use, const char *want)
{
	char err[256] = "";
	char *got = mig_map_name(s, d, name, use, err, sizeof(err));

	if (want == NULL) {
		assert_null(got);
		assert_true(err[0] != '\0');
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_map(void **state)
{
	struct mig_list s = { .v = src_v, .n = MF_ARRAY_LEN(src_v), .delim = '/' };
	struct mig_list d = { .v = dst_v, .n = MF_ARRAY_LEN(dst_v), .delim = '.' };

	(void)state;
	expect(&s, &d, "INBOX", 0, "INBOX");
	/* Special use wins over the name; the destination's name is used. */
	expect(&s, &d, "Sent Items", MU_SENT, "Sent");
	expect(&s, &d, "Deleted Items", MU_TRASH, "Trash");
	expect(&s, &d, "Sent Items/2019", 0, "Sent.2019");
	expect(&s, &d, "Sent Items/2019/Q1", 0, "Sent.2019.Q1");
	/* No \Junk folder on the destination: the name, translated, is kept. */
	expect(&s, &d, "Junk", MU_JUNK, "Junk");
	expect(&s, &d, "Projects/2024", 0, "Projects.2024");
	/* Modified UTF-7 goes over byte for byte. */
	expect(&s, &d, "Re&AwE-sum&AOk-", 0, "Re&AwE-sum&AOk-");
	/* "Sent Items.old" is not under "Sent Items" ('/' is the delimiter). */
	expect(&s, &d, "Sent Itemsx/y", 0, "Sent Itemsx.y");
	/* A source name holding the destination's delimiter cannot be kept. */
	expect(&s, &d, "v1.2/notes", 0, NULL);
	/* Same delimiter on both sides: nothing changes. */
	d.delim = '/';
	expect(&s, &d, "v1.2/notes", 0, "v1.2/notes");
	/* A flat destination (NIL delimiter) keeps names as they are. */
	d.delim = '\0';
	expect(&s, &d, "Projects/2024", 0, "Projects/2024");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
