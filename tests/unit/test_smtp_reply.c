/* The reply parser: exact codes and lines for good replies, a named error for each bad one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ehlo.h"
#include "smtp_reply.h"

static enum smtp_reply_status feed(struct smtp_reply *r, const char *line)
{
	return smtp_reply_feed(r, (const unsigned char *)line, strlen(line));
}

static void test_single_and_multi(void **state)
{
	struct smtp_reply r;

	smtp_reply_init(&r);
	assert_int_equal(feed(&r, "220 mx.example.net ESMTP"), SMTP_REPLY_DONE);
	assert_int_equal(r.code, 220);
	assert_int_equal(r.lines.n, 1);
	smtp_reply_reset(&r);
	assert_int_equal(feed(&r, "250-mx.example.net"), SMTP_REPLY_MORE);
	assert_int_equal(feed(&r, "250-STARTTLS"), SMTP_REPLY_MORE);
	assert_int_equal(feed(&r, "250 SIZE 1000"), SMTP_REPLY_DONE);
	assert_int_equal(r.lines.n, 3);
	assert_string_equal(r.lines.v[2], "250 SIZE 1000");
	smtp_reply_reset(&r);
	/* a bare code is a complete reply (RFC 5321 allows the text to be empty) */
	assert_int_equal(feed(&r, "221"), SMTP_REPLY_DONE);
	assert_int_equal(r.code, 221);
	smtp_reply_reset(&r);
}

static void test_bad_lines(void **state)
{
	struct smtp_reply r;

	smtp_reply_init(&r);
	assert_int_equal(feed(&r, "STARTTLS"), SMTP_REPLY_ERR_SYNTAX);
	assert_int_equal(feed(&r, "22"), SMTP_REPLY_ERR_SYNTAX);
	assert_int_equal(feed(&r, "620 nope"), SMTP_REPLY_ERR_SYNTAX);
	assert_int_equal(feed(&r, "2a0 nope"), SMTP_REPLY_ERR_SYNTAX);
	assert_int_equal(feed(&r, "220xnope"), SMTP_REPLY_ERR_SYNTAX);
	assert_int_equal(feed(&r, "250-first"), SMTP_REPLY_MORE);
	assert_int_equal(feed(&r, "251 other code"), SMTP_REPLY_ERR_CODE_CHANGED);
	/* the parser is unchanged by a rejected line */
	assert_int_equal(r.lines.n, 1);
	smtp_reply_reset(&r);
}

static void test_caps(void **state)
{
	struct smtp_reply r;
	char *big = malloc(SMTP_LINE_MAX + 2);

	smtp_reply_init(&r);
	memset(big, 'A', SMTP_LINE_MAX + 1);
	memcpy(big, "220 ", 4);
	big[SMTP_LINE_MAX + 1] = '\0';
	assert_int_equal(feed(&r, big), SMTP_REPLY_ERR_TOO_LONG);
	big[SMTP_LINE_MAX] = '\0';
	assert_int_equal(feed(&r, big), SMTP_REPLY_DONE);
	smtp_reply_reset(&r);
	for (int i = 0; i < SMTP_REPLY_LINES_MAX; i++)
		assert_int_equal(feed(&r, "250-more"), SMTP_REPLY_MORE);
	assert_int_equal(feed(&r, "250-more"), SMTP_REPLY_ERR_TOO_MANY);
	smtp_reply_reset(&r);
	free(big);
}

static void test_hostile_bytes_escaped(void **state)
{
	struct smtp_reply r;
	static const unsigned char line[] = "220 mx\0nul\ttab \\ \xff";

	smtp_reply_init(&r);
	assert_int_equal(smtp_reply_feed(&r, line, sizeof(line) - 1), SMTP_REPLY_DONE);
	assert_string_equal(r.lines.v[0], "220 mx\\x00nul\\x09tab \\x5c \\xff");
	smtp_reply_reset(&r);
}

static void test_echo(void **state)
{
	assert_true(smtp_is_starttls_echo((const unsigned char *)"STARTTLS", 8));
	assert_true(smtp_is_starttls_echo((const unsigned char *)" starttls ", 10));
	assert_true(smtp_is_starttls_echo((const unsigned char *)"500 STARTTLS", 12));
	assert_false(smtp_is_starttls_echo((const unsigned char *)"220 ready", 9));
	assert_false(smtp_is_starttls_echo((const unsigned char *)"STARTTLSX", 9));
}

static void test_ehlo(void **state)
{
	struct strv lines = { 0 }, ext = { 0 };

	strv_push(&lines, "250-mx.example.net hello");
	strv_push(&lines, "250-PIPELINING");
	strv_push(&lines, "250-XXXXXXXA");
	strv_push(&lines, "250 SIZE 10240000");
	assert_int_equal(ehlo_extensions(&lines, &ext), 0);
	assert_int_equal(ext.n, 3);
	assert_string_equal(ext.v[2], "SIZE 10240000");
	assert_false(ehlo_has_starttls(&ext));
	assert_string_equal(ehlo_mangled_starttls(&ext), "XXXXXXXA");
	strv_push(&ext, "starttls");
	assert_true(ehlo_has_starttls(&ext));
	strv_free(&ext);
	/* STARTTLS itself, and other eight-letter keywords, are not mangled forms */
	strv_push(&ext, "STARTTLS");
	strv_push(&ext, "XCLIENTS");
	strv_push(&ext, "STARTTLSX");
	strv_push(&ext, "XFORWARD");
	strv_push(&ext, "XXXXXXX1");
	assert_null(ehlo_mangled_starttls(&ext));
	strv_push(&ext, "STARTXXX");
	assert_string_equal(ehlo_mangled_starttls(&ext), "STARTXXX");
	strv_free(&ext);
	strv_free(&lines);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_and_multi),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_hostile_bytes_escaped),
		cmocka_unit_test(test_echo),
		cmocka_unit_test(test_ehlo),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
