/* Input lines to targets: every accepted form, and a reason for each rejected one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "addrmap.h"
#include "target.h"

static enum target_parse parse(const char *line, struct mxs_target *t)
{
	return target_parse_line(line, strlen(line), 25, t);
}

static void test_plain_forms(void **state)
{
	struct mxs_target t;

	assert_int_equal(parse("192.0.2.7", &t), TARGET_OK);
	assert_string_equal(t.ip, "192.0.2.7");
	assert_int_equal(t.port, 25);
	assert_null(t.mx);
	target_free(&t);
	assert_int_equal(parse("  2001:DB8::25 ", &t), TARGET_OK);
	assert_string_equal(t.ip, "2001:db8::25");
	target_free(&t);
	assert_int_equal(parse("192.0.2.7,MX1.Example.NET.,example.net,Example.org,example.net", &t), TARGET_OK);
	assert_string_equal(t.mx, "mx1.example.net");
	assert_int_equal(t.mx_names.n, 1);
	assert_int_equal(t.domains.n, 2);
	assert_string_equal(t.domains.v[1], "example.org");
	target_free(&t);
	assert_int_equal(parse("192.0.2.7,,example.net", &t), TARGET_OK);
	assert_null(t.mx);
	assert_int_equal(t.domains.n, 1);
	target_free(&t);
	assert_int_equal(parse("# comment", &t), TARGET_SKIP);
	assert_int_equal(parse("   ", &t), TARGET_SKIP);
}

static void test_bad_forms(void **state)
{
	struct mxs_target t;

	assert_int_equal(parse("example.com", &t), TARGET_BAD);
	assert_string_equal(t.error, "not an IPv4 or IPv6 address");
	assert_string_equal(t.input, "example.com");
	target_free(&t);
	assert_int_equal(parse("192.0.2.7,bad name!", &t), TARGET_BAD);
	assert_string_equal(t.error, "bad MX host name");
	target_free(&t);
	assert_int_equal(parse("999.0.2.7", &t), TARGET_BAD);
	target_free(&t);
	assert_int_equal(target_parse_line("192.0.2.4\0x", 11, 25, &t), TARGET_BAD);
	assert_string_equal(t.input, "192.0.2.4\\x00x");
	target_free(&t);
	assert_int_equal(parse("{\"type\":\"target\"}", &t), TARGET_BAD);
	target_free(&t);
	assert_int_equal(parse("{\"type\":\"weird\",\"ip\":\"192.0.2.1\"}", &t), TARGET_BAD);
	target_free(&t);
	assert_int_equal(parse("{not json", &t), TARGET_BAD);
	target_free(&t);
}

static void test_json(void **state)
{
	struct mxs_target t;

	assert_int_equal(parse("{\"type\":\"target\",\"ip\":\"198.51.100.9\",\"port\":2525,"
			       "\"mx\":\"mx.example.com\",\"mx_names\":[\"alt.example.com\"],"
			       "\"domains\":[\"example.com\"],\"tlsa\":[{\"usage\":3,\"selector\":1,"
			       "\"mtype\":1,\"data\":\"00ff\"}],\"tlsa_dnssec\":true}", &t), TARGET_OK);
	assert_int_equal(t.port, 2525);
	assert_string_equal(t.mx, "mx.example.com");
	assert_int_equal(t.mx_names.n, 2);
	assert_int_equal(t.ntlsa, 1);
	assert_int_equal(t.tlsa[0].usage, 3);
	assert_int_equal(t.tlsa[0].len, 2);
	assert_int_equal(t.tlsa[0].data[1], 0xff);
	assert_true(t.tlsa_dnssec);
	target_free(&t);
	assert_int_equal(parse("{\"type\":\"target\",\"ip\":\"198.51.100.9\",\"blocked\":\"blocklist 198.51.100.0/24\"}", &t), TARGET_OK);
	assert_string_equal(t.blocked, "blocklist 198.51.100.0/24");
	target_free(&t);
	assert_int_equal(parse("{\"type\":\"domain\",\"domain\":\"example.com\"}", &t), TARGET_PASSTHROUGH);
	assert_int_equal(parse("{\"type\":\"target\",\"ip\":\"198.51.100.9\",\"tlsa\":[{\"usage\":3,\"selector\":1,\"mtype\":1,\"data\":\"0g\"}]}", &t), TARGET_BAD);
	target_free(&t);
}

static void test_addrmap(void **state)
{
	struct addrmap m;
	struct mxs_target a, b, c;
	struct addr_key ka, kb, kc;

	addrmap_init(&m);
	parse("192.0.2.7", &a);
	parse("192.0.2.200", &b);
	parse("198.51.100.7", &c);
	addr_key_make(&ka, (struct sockaddr *)&a.sa, 24, 64, 0);
	addr_key_make(&kb, (struct sockaddr *)&b.sa, 24, 64, 0);
	addr_key_make(&kc, (struct sockaddr *)&c.sa, 24, 64, 0);
	(*addrmap_get(&m, &ka))++;
	(*addrmap_get(&m, &kb))++;
	assert_int_equal(addrmap_peek(&m, &ka), 2); /* same /24 */
	assert_int_equal(addrmap_peek(&m, &kc), 0);
	for (int i = 0; i < 5000; i++) {
		struct addr_key k = kc;
		k.addr[3] = (uint8_t)i;
		k.addr[1] = (uint8_t)(i >> 8);
		(*addrmap_get(&m, &k)) += i;
	}
	kc.addr[3] = (uint8_t)4321;
	kc.addr[1] = (uint8_t)(4321 >> 8);
	assert_int_equal(addrmap_peek(&m, &kc), 4321);
	assert_int_equal(addrmap_peek(&m, &ka), 2);
	addrmap_free(&m);
	target_free(&a);
	target_free(&b);
	target_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_forms),
		cmocka_unit_test(test_bad_forms),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_addrmap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
