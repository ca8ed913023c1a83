/* The address maps: counters that drop to zero are forgotten when a drop_zero map grows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "addrmap.h"

static void key_of(struct addr_key *k, uint32_t ip)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };

	sin.sin_addr.s_addr = htonl(ip);
	addr_key_make(k, (const struct sockaddr *)&sin, 32, 128, 25);
}

/* 100,000 addresses, at most 10 with a connection at once: the map stays small. */
static void run(struct addrmap *m)
{
	struct addr_key k;

	for (uint32_t i = 0; i < 100000; i++) {
		key_of(&k, 0x7f400000u + i);
		int32_t *v = addrmap_get(m, &k);
		assert_non_null(v);
		(*v)++;
		if (i >= 10) {
			key_of(&k, 0x7f400000u + i - 10);
			v = addrmap_get(m, &k);
			assert_int_equal(*v, 1);   /* still there while in use */
			(*v)--;
		}
	}
	for (uint32_t i = 100000 - 10; i < 100000; i++) {
		key_of(&k, 0x7f400000u + i);
		assert_int_equal(addrmap_peek(m, &k), 1);
	}
	key_of(&k, 0x7f400000u);
	assert_int_equal(addrmap_peek(m, &k), 0);
}

static void test_drop_zero(void **state)
{
	struct addrmap m;

	(void)state;
	addrmap_init(&m);
	m.drop_zero = true;
	run(&m);
	assert_true(m.cap <= 1024);
	addrmap_free(&m);
}

static void test_keeps_zero(void **state)
{
	struct addrmap m;

	(void)state;
	addrmap_init(&m);   /* a map of plan indexes (seen) keeps every key */
	run(&m);
	assert_int_equal(m.n, 100000);
	assert_true(m.cap >= 131072);
	addrmap_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_drop_zero),
		cmocka_unit_test(test_keeps_zero),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
