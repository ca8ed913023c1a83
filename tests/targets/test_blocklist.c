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

/* assert_string_equal dies on NULL: say "dialled" instead */
static void assert_rule(const char *got, const char *want)
{
	assert_string_equal(got ? got : "(not blocked)", want);
}

/* IPv6 forms of an IPv4 address meet the IPv4 rules (issue 8, item 5). */
static void test_embedded_user_list(void **state)
{
	struct mxs_blocklist *bl = mxs_blocklist_new();
	const char *via = "blocklist 127.0.9.0/24 (embedded in IPv6)";

	/* --no-default-blocklist --blocklist holding 127.0.9.0/24 */
	assert_int_equal(mxs_blocklist_add(bl, "127.0.9.0/24", 0), 0);
	assert_rule(check(bl, "127.0.9.1"), "blocklist 127.0.9.0/24");
	assert_rule(check(bl, "::ffff:127.0.9.1"), via);      /* mapped */
	assert_rule(check(bl, "::127.0.9.1"), via);           /* compatible */
	assert_rule(check(bl, "2002:7f00:901::1"), via);      /* 6to4 */
	assert_rule(check(bl, "2002:7f00:9ff:1:2:3:4:5"), via);
	assert_rule(check(bl, "64:ff9b::127.0.9.1"), via);    /* NAT64 well-known */
	assert_rule(check(bl, "64:ff9b::7f00:9fe"), via);
	/* RFC 8215 local-use prefix: each RFC 6052 position (prefix /48, /56, /64, /96) */
	assert_rule(check(bl, "64:ff9b:1:7f00:9:100::"), via);     /* /48 */
	assert_rule(check(bl, "64:ff9b:1:7f:0:901::"), via);       /* /56 */
	assert_rule(check(bl, "64:ff9b:1:0:7f:9:100:0"), via);     /* /64 */
	assert_rule(check(bl, "64:ff9b:1:abcd::127.0.9.1"), via);  /* /96 */
	/* Teredo: the server's address, and the client's (stored inverted) */
	assert_rule(check(bl, "2001:0:7f00:901::1"), via);
	assert_rule(check(bl, "2001:0:c000:201:0:0:80ff:f6fe"), via);
	/* the same forms of an address outside the range pass */
	assert_null(check(bl, "::ffff:127.0.10.1"));
	assert_null(check(bl, "::127.0.10.1"));
	assert_null(check(bl, "2002:7f00:a01::1"));
	assert_null(check(bl, "64:ff9b::127.0.10.1"));
	assert_null(check(bl, "64:ff9b:1:abcd::127.0.10.1"));
	assert_null(check(bl, "2001:0:7f00:a01::1"));
	/* not an embedding: other prefixes with the same low bits */
	assert_null(check(bl, "2003:7f00:901::1"));
	assert_null(check(bl, "64:ff9c::127.0.9.1"));
	assert_null(check(bl, "1::127.0.9.1"));
	assert_null(check(bl, "::ffff:0:127.0.9.1")); /* SIIT ::ffff:0:0:0/96 is not mapped */
	/* :: and ::1 are IPv6's own addresses, not 0.0.0.0 and 0.0.0.1 */
	assert_int_equal(mxs_blocklist_add(bl, "0.0.0.0/8", 0), 0);
	assert_null(check(bl, "::"));
	assert_null(check(bl, "::1"));
	assert_rule(check(bl, "::0.0.0.2"), "blocklist 0.0.0.0/8 (embedded in IPv6)");
	/* an IPv6 rule still names itself first */
	assert_int_equal(mxs_blocklist_add(bl, "2002::/16", 0), 0);
	assert_rule(check(bl, "2002:7f00:901::1"), "blocklist 2002::/16");
	mxs_blocklist_free(bl);
}

static void test_embedded_defaults(void **state)
{
	struct mxs_blocklist *bl = mxs_blocklist_new();
	const char *lo = "reserved 127.0.0.0/8 (embedded in IPv6)";

	assert_int_equal(mxs_blocklist_add_defaults(bl), 0);
	assert_rule(check(bl, "2002:7f00:1::1"), lo);
	assert_rule(check(bl, "64:ff9b::7f00:1"), lo);
	assert_rule(check(bl, "::127.0.0.1"), lo);
	assert_rule(check(bl, "2002:a00:1::1"), "reserved 10.0.0.0/8 (embedded in IPv6)");
	assert_rule(check(bl, "64:ff9b::192.168.1.1"),
			    "reserved 192.168.0.0/16 (embedded in IPv6)");
	/* ranges the defaults block as IPv6 keep their own rule */
	assert_rule(check(bl, "::ffff:127.0.0.1"), "reserved ::ffff:0.0.0.0/96");
	assert_rule(check(bl, "64:ff9b:1::7f00:1"), "reserved 64:ff9b:1::/48");
	/* public IPv4 behind NAT64 or 6to4 may be dialled */
	assert_null(check(bl, "64:ff9b::8.8.8.8"));
	assert_null(check(bl, "2002:808:808::1"));
	mxs_blocklist_free(bl);
}

static void test_embedded_allowlist(void **state)
{
	struct mxs_blocklist *bl = mxs_blocklist_new();

	assert_int_equal(mxs_blocklist_add(bl, "192.0.2.0/24", 1), 0);
	assert_int_equal(mxs_blocklist_add(bl, "192.0.2.66", 0), 0);
	/* mapped is the IPv4 address itself: its IPv4 allow entry holds for it */
	assert_null(check(bl, "::ffff:192.0.2.1"));
	assert_rule(check(bl, "::ffff:192.0.3.1"), "not in allowlist");
	/* the opt-out inside the allowed range still holds in every form */
	assert_rule(check(bl, "::ffff:192.0.2.66"),
			    "blocklist 192.0.2.66/32 (embedded in IPv6)");
	assert_rule(check(bl, "2002:c000:242::1"),
			    "blocklist 192.0.2.66/32 (embedded in IPv6)");
	/* other embeddings are IPv6 destinations: they need an IPv6 allow entry */
	assert_rule(check(bl, "64:ff9b::192.0.2.1"), "not in allowlist");
	assert_int_equal(mxs_blocklist_add(bl, "64:ff9b::/96", 1), 0);
	assert_null(check(bl, "64:ff9b::192.0.2.1"));
	assert_null(check(bl, "64:ff9b::8.8.8.8"));
	assert_rule(check(bl, "64:ff9b::192.0.2.66"),
			    "blocklist 192.0.2.66/32 (embedded in IPv6)");
	mxs_blocklist_free(bl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_longest_prefix),
		cmocka_unit_test(test_allowlist),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_embedded_user_list),
		cmocka_unit_test(test_embedded_defaults),
		cmocka_unit_test(test_embedded_allowlist),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
