/* The Public Suffix List reader keeps the ICANN section's rules, and nothing else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "suffixes.h"

struct got {
	char all[1024];
	int n;
};

static void collect(const char *rule, size_t len, void *arg)
{
	struct got *g = arg;
	assert_int_equal(strlen(rule), len);
	size_t used = strlen(g->all);
	snprintf(g->all + used, sizeof(g->all) - used, "%s%s", g->n++ ? " " : "", rule);
}

static long parse(const char *text, struct got *g, size_t *skipped)
{
	memset(g, 0, sizeof(*g));
	return mxs_psl_icann_rules(text, strlen(text), collect, g, skipped);
}

static void test_icann_section_only(void **state)
{
	(void)state;
	static const char text[] =
		"// header rule-looking line outside: not a rule\n"
		"outside.example\n"
		"// ===BEGIN ICANN DOMAINS===\n"
		"\n"
		"// uk\n"
		"uk\n"
		"Co.UK\n"
		"*.ck\n"
		"!www.ck\n"
		"org.uk  trailing comment after whitespace\n"
		"bad\\rule\n"
		"\xe5\x85\xac\xe5\x8f\xb8.cn\n"
		"// ===END ICANN DOMAINS===\n"
		"// ===BEGIN PRIVATE DOMAINS===\n"
		"blogspot.com\n";
	struct got g;
	size_t skipped;
	assert_int_equal(parse(text, &g, &skipped), 6);
	assert_string_equal(g.all, "uk co.uk *.ck !www.ck org.uk \xe5\x85\xac\xe5\x8f\xb8.cn");
	assert_int_equal(skipped, 1);
}

static void test_crlf_and_no_final_newline(void **state)
{
	(void)state;
	struct got g;
	size_t skipped;
	assert_int_equal(parse("// ===BEGIN ICANN DOMAINS===\r\nco.jp\r\n// ===END ICANN DOMAINS===",
	                       &g, &skipped), 1);
	assert_string_equal(g.all, "co.jp");
}

static void test_not_a_list(void **state)
{
	(void)state;
	struct got g;
	size_t skipped;
	assert_int_equal(parse("", &g, &skipped), -1);
	assert_int_equal(parse("co.uk\norg.uk\n", &g, &skipped), -1);
	/* a section that never ends: a truncated file, refused rather than half loaded */
	assert_int_equal(parse("// ===BEGIN ICANN DOMAINS===\nco.uk\n", &g, &skipped), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_icann_section_only),
		cmocka_unit_test(test_crlf_and_no_final_newline),
		cmocka_unit_test(test_not_a_list),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
