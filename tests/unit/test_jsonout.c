/* common/jsonout.c: the same bytes as json_dumpb(JSON_COMPACT), whatever the record holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jsonout.h"

/* mxs_json_compact's text of j, checked against jansson's own; j is released */
static void same_as_jansson(json_t *j)
{
	struct mxs_jbuf b = { 0 };
	char *want = json_dumps(j, JSON_COMPACT);

	assert_non_null(want);
	assert_int_equal(mxs_jbuf_putc(&b, '>'), 0); /* appends after what is there */
	assert_int_equal(mxs_json_compact(&b, j), 0);
	assert_int_equal(b.len, strlen(want) + 1);
	assert_memory_equal(b.p + 1, want, b.len - 1);
	free(want);
	free(b.p);
	json_decref(j);
}

static void test_records_as_resolve_writes_them(void **state)
{
	json_t *tlsa = json_pack("[{s:i, s:i, s:i, s:s}]", "usage", 3, "selector", 1, "mtype", 1,
				 "data", "0123abcd");

	same_as_jansson(json_pack("{s:s, s:s, s:i, s:n, s:[s], s:[s], s:o, s:b, s:s}", "type",
				  "target", "ip", "10.1.0.1", "port", 25, "mx", "mx_names",
				  "mx0.provider.bench.test", "domains", "d1.bench.test", "tlsa",
				  json_deep_copy(tlsa), "tlsa_dnssec", 0, "blocked", "reserved"));
	same_as_jansson(json_pack("{s:s, s:s, s:n, s:s, s:b, s:[{s:s, s:i, s:n, s:s, s:[s, s], s:O, "
				  "s:b, s:s}], s:n, s:n}", "type", "domain", "domain", "d1.bench.test",
				  "rank", "status", "ok", "dnssec", 1, "mx", "host", "mx.d1.bench.test",
				  "pref", 10, "cname", "status", "ok", "addrs", "10.0.0.1", "::1", "tlsa",
				  tlsa, "tlsa_dnssec", 1, "tlsa_status", "ok", "mta_sts", "tlsrpt"));
	json_decref(tlsa);
	/* a value replaced keeps its key's place */
	json_t *o = json_pack("{s:i, s:i, s:i}", "a", 1, "b", 2, "c", 3);
	json_object_set_new(o, "b", json_string("two"));
	same_as_jansson(o);
}

static void test_edges(void **state)
{
	same_as_jansson(json_object());
	same_as_jansson(json_array());
	same_as_jansson(json_pack("[{}, [], [[]], {s:{}}]", "k"));
	same_as_jansson(json_pack("[I, I, I, I, i]", (json_int_t)INT64_MAX, (json_int_t)INT64_MIN,
				  (json_int_t)-1, (json_int_t)0, 1234567));
	same_as_jansson(json_pack("[b, b, n, s]", 1, 0, ""));
}

static void test_left_to_jansson(void **state)
{
	/* escapes, control bytes, UTF-8, a real, keys that need escaping, deep nesting */
	same_as_jansson(json_pack("[s, s, s, s, s]", "a\"b", "back\\slash", "tab\there\n", "\x01\x1f",
				  "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 del\x7f"));
	same_as_jansson(json_pack("{s:f, s:f, s:f}", "x", 0.1, "y", 1e300, "z", -2.0));
	same_as_jansson(json_pack("{s:i}", "k\"ey\n", 1));
	json_t *deep = json_array();
	for (int i = 0; i < 100; i++)
		deep = json_pack("[o]", deep);
	same_as_jansson(deep);
	/* a string jansson refuses to dump: refused here too, the buffer as it was */
	json_t *bad = json_pack("[o]", json_stringn_nocheck("\xff\xfe", 2));
	struct mxs_jbuf b = { 0 };
	assert_int_equal(mxs_jbuf_putc(&b, 'x'), 0);
	assert_int_equal(mxs_json_compact(&b, bad), -1);
	assert_int_equal(b.len, 1);
	free(b.p);
	json_decref(bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records_as_resolve_writes_them),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_left_to_jansson),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
