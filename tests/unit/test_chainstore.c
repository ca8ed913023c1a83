/* The plans' chain store: one copy per distinct chain, freed with its last reference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chainstore.h"

static unsigned char *dup_bytes(const char *s)
{
	unsigned char *p = malloc(strlen(s));
	assert_non_null(p);
	memcpy(p, s, strlen(s));
	return p;
}

static void test_shared_copies(void **state)
{
	struct chainstore *cs = chainstore_new();
	const unsigned char *a, *b, *c, *d;

	(void)state;
	assert_non_null(cs);
	a = chainstore_put(cs, dup_bytes("leaf-one|intermediate"), 21);
	b = chainstore_put(cs, dup_bytes("leaf-one|intermediate"), 21);   /* equal: freed, shared */
	c = chainstore_put(cs, dup_bytes("leaf-two|intermediate"), 21);
	d = chainstore_put(cs, dup_bytes("leaf-one|intermediat"), 20);     /* a prefix is another chain */
	assert_ptr_equal(a, b);
	assert_ptr_not_equal(a, c);
	assert_ptr_not_equal(a, d);
	assert_memory_equal(c, "leaf-two|intermediate", 21);
	assert_int_equal(chainstore_count(cs), 3);
	assert_int_equal(chainstore_refs(cs), 4);
	assert_int_equal(chainstore_bytes(cs), 62);
	assert_null(chainstore_put(cs, NULL, 0));

	chainstore_release(cs, a, 21);
	assert_int_equal(chainstore_count(cs), 3);   /* b still holds it */
	assert_memory_equal(b, "leaf-one|intermediate", 21);
	chainstore_release(cs, b, 21);
	assert_int_equal(chainstore_count(cs), 2);
	assert_int_equal(chainstore_bytes(cs), 41);
	chainstore_release(cs, NULL, 0);
	chainstore_free(cs);   /* c and d still referenced: freed with the store */
}

static void test_many(void **state)
{
	struct chainstore *cs = chainstore_new();
	const unsigned char *first[5000];
	char buf[32];

	(void)state;
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 5000; i++) {
			snprintf(buf, sizeof(buf), "chain-%d", i);
			const unsigned char *p = chainstore_put(cs, dup_bytes(buf), strlen(buf));
			if (round == 0)
				first[i] = p;
			else
				assert_ptr_equal(p, first[i]);   /* found again after the buckets grew */
		}
	assert_int_equal(chainstore_count(cs), 5000);
	assert_int_equal(chainstore_refs(cs), 10000);
	for (int i = 0; i < 5000; i++) {
		snprintf(buf, sizeof(buf), "chain-%d", i);
		chainstore_release(cs, first[i], strlen(buf));
		chainstore_release(cs, first[i], strlen(buf));
	}
	assert_int_equal(chainstore_count(cs), 0);
	assert_int_equal(chainstore_bytes(cs), 0);
	chainstore_free(cs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shared_copies),
		cmocka_unit_test(test_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
