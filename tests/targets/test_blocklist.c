/* Blocklist/allowlist: longest-prefix match, defaults, files, precedence. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "blocklist.h"

static const char *check(const struct mxs_blocklist *bl, const char *ip)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
	return mxs_blocklist_check(bl, (struct sockaddr *)&ss);
}

static void test_defaults(void **state)
{
	struct mxs_blocklist *bl = mxs_blocklist_new();

	assert_int_equal(mxs_blocklist_add_defaults(bl), 0);
	assert_string_equal(check(bl, "127.0.0.1"), "reserved 127.0.0.0/8");
	assert_string_equal(check(bl, "10.1.2.3"), "reserved 10.0.0.0/8");
	assert_string_equal(check(bl, "100.127.255.255"), "reserved 100.64.0.0/10");
	assert_null(check(bl, "100.128.0.0"));
	assert_string_equal(check(bl, "172.31.0.1"), "reserved 172.16.0.0/12");
	assert_null(check(bl, "172.32.0.1"));
	assert_string_equal(check(bl, "192.0.2.55"), "reserved 192.0.2.0/24");
	assert_string_equal(check(bl, "198.19.255.1"), "reserved 198.18.0.0/15");
	assert_string_equal(check(bl, "224.0.0.1"), "reserved 224.0.0.0/4");
	assert_string_equal(check(bl, "255.255.255.255"), "reserved 240.0.0.0/4");
	assert_null(check(bl, "8.8.8.8"));
	assert_null(check(bl, "1.1.1.1"));
	assert_string_equal(check(bl, "::1"), "reserved ::1/128");
	assert_string_equal(check(bl, "::"), "reserved ::/128");
	assert_string_equal(check(bl, "::ffff:8.8.8.8"), "reserved ::ffff:0.0.0.0/96");
	assert_string_equal(check(bl, "fe80::1"), "reserved fe80::/10");
	assert_string_equal(check(bl, "fd00::1"), "reserved fc00::/7");
	assert_string_equal(check(bl, "2001:db8:1::25"), "reserved 2001:db8::/32");
	assert_string_equal(check(bl, "ff02::1"), "reserved ff00::/8");
	assert_null(check(bl, "2a00:1450::1"));
	mxs_blocklist_free(bl);
}

static void test_longest_prefix(void **state)
{
	struct mxs_blocklist *bl = mxs_blocklist_new();

	assert_int_equal(mxs_blocklist_add(bl, "198.51.100.0/24", 0), 0);
	assert_int_equal(mxs_blocklist_add(bl, "198.51.100.128/25", 0), 0);
	assert_int_equal(mxs_blocklist_add(bl, "198.51.100.7", 0), 0);
	/* host bits set: masked, as zmap does */
	assert_int_equal(mxs_blocklist_add(bl, "203.0.113.77/24", 0), 0);
	assert_string_equal(check(bl, "198.51.100.7"), "blocklist 198.51.100.7/32");
	assert_string_equal(check(bl, "198.51.100.200"), "blocklist 198.51.100.128/25");
	assert_string_equal(check(bl, "198.51.100.8"), "blocklist 198.51.100.0/24");
	assert_string_equal(check(bl, "203.0.113.1"), "blocklist 203.0.113.0/24");
	assert_null(check(bl, "198.51.101.1"));
	assert_int_equal(mxs_blocklist_add(bl, "0.0.0.0/0", 0), 0);
	assert_string_equal(check(bl, "8.8.8.8"), "blocklist 0.0.0.0/0");
	assert_null(check(bl, "2001:db8::1")); /* families are separate */
	assert_int_equal(mxs_blocklist_add(bl, "2001:db8::/33", 0), 0);
	assert_string_equal(check(bl, "2001:db8::1"), "blocklist 2001:db8::/33");
	assert_null(check(bl, "2001:db8:8000::1"));
	assert_int_equal(mxs_blocklist_add(bl, "10.0.0.0/33", 0), -1);
	assert_int_equal(mxs_blocklist_add(bl, "10.0.0.0/", 0), -1);
	assert_int_equal(mxs_blocklist_add(bl, "10.0.0/8", 0), -1);
	assert_int_equal(mxs_blocklist_add(bl, "host.example", 0), -1);
	assert_int_equal(mxs_blocklist_add(bl, "::/129", 0), -1);
	assert_int_equal(mxs_blocklist_add(bl, "", 0), -1);
	mxs_blocklist_free(bl);
}

static void test_allowlist(void **state)
{
	struct mxs_blocklist *bl = mxs_blocklist_new();

	assert_null(check(bl, "192.0.2.1")); /* empty: nothing blocked */
	assert_int_equal(mxs_blocklist_add(bl, "192.0.2.0/24", 1), 0);
	assert_int_equal(mxs_blocklist_add(bl, "192.0.2.66", 0), 0);
	assert_null(check(bl, "192.0.2.1"));
	assert_string_equal(check(bl, "192.0.3.1"), "not in allowlist");
	assert_string_equal(check(bl, "2001:db8::1"), "not in allowlist");
	/* an opt-out inside an allowed range still holds */
	assert_string_equal(check(bl, "192.0.2.66"), "blocklist 192.0.2.66/32");
	mxs_blocklist_free(bl);
}

static void test_file(void **state)
{
	char path[] = "/tmp/mxs-blocklist-XXXXXX", err[256];
	int fd = mkstemp(path);
	const char *text = "# opt-out requests\n\n  192.0.2.0/25   # customer A\n2001:db8::/48\n"
			   "\t198.51.100.1\t\n";
	struct mxs_blocklist *bl = mxs_blocklist_new();

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (int)strlen(text));
	close(fd);
	assert_int_equal(mxs_blocklist_load_file(bl, path, 0, err, sizeof(err)), 0);
	assert_string_equal(check(bl, "192.0.2.5"), "blocklist 192.0.2.0/25");
	assert_null(check(bl, "192.0.2.200"));
	assert_string_equal(check(bl, "198.51.100.1"), "blocklist 198.51.100.1/32");
	assert_string_equal(check(bl, "2001:db8:0:1::1"), "blocklist 2001:db8::/48");

	FILE *f = fopen(path, "w");
	fputs("10.0.0.0/8\nnot-a-range\n", f);
	fclose(f);
	assert_int_equal(mxs_blocklist_load_file(bl, path, 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":2: not an address or CIDR range: not-a-range"));
	unlink(path);
	assert_int_equal(mxs_blocklist_load_file(bl, path, 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "No such file"));
	mxs_blocklist_free(bl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_longest_prefix),
		cmocka_unit_test(test_allowlist),
		cmocka_unit_test(test_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
