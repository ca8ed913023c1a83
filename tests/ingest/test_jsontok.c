/*
 * The ingest tokenizer (ingest/jsontok.c) accepts exactly what jansson accepts for a
 * JSON object line (the verdict rowconv relied on before it had its own tokenizer),
 * decodes strings to the same bytes, and the COPY encoder escapes what COPY needs; the
 * word-at-a-time loops give what byte-at-a-time references give.
 */
#include <jansson.h>
#include <ctype.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "copybuf.h"
#include "jsontok.h"
#include "rowconv_int.h"

static const char *const cases[] = {
	"{}",
	"{\"a\":1}",
	" {\"a\" : [1, 2.5, -0, 1e10, 1E-2, true, false, null, \"x\"] } ",
	"{\"s\":\"\\u00e9\\ud83d\\ude00\\n\\t\\\\\\/\\\"\"}",
	"{\"s\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}",
	"{\"a\":{\"b\":{\"c\":[[],{}]}}}",
	"{\"dup\":1,\"dup\":2}",
	/* rejected */
	"{\"a\":1,}",
	"{\"a\" 1}",
	"{a:1}",
	"{\"a\":01}",
	"{\"a\":1.}",
	"{\"a\":.5}",
	"{\"a\":-}",
	"{\"a\":tru}",
	"{\"a\":\"\\u0000\"}",
	"{\"a\":\"\\ud800\"}",
	"{\"a\":\"\\udc00\"}",
	"{\"a\":\"\\ud800\\u0041\"}",
	"{\"a\":\"\\x41\"}",
	"{\"a\":\"tab\there\"}",
	"{\"a\":\"\xff\"}",
	"{\"a\":\"\xc0\xaf\"}",
	"{\"a\":\"\xed\xa0\x80\"}",
	"{\"a\":\"unterminated}",
	"{\"a\":1} x",
	"{\"a\":1}}",
	"",
	"{",
	"[1,2",
};

static int jansson_ok(const char *s, size_t n)
{
	json_error_t e;
	json_t *j = json_loadb(s, n, 0, &e);
	json_decref(j);
	return j != NULL;
}

static void test_same_verdict_as_jansson(void **state)
{
	struct jtoks ts;
	const char *err;
	size_t pos;
	jtoks_init(&ts);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = strlen(cases[i]);
		int ours = jt_parse(&ts, cases[i], n, &err, &pos) == 0;
		if (ours != jansson_ok(cases[i], n))
			fail_msg("case %zu (%s): jsontok %d, jansson %d", i, cases[i], ours, !ours);
	}
	jtoks_free(&ts);
}

/* Random byte mutations of a record: both parsers agree on every one. */
static void test_mutations_agree(void **state)
{
	static const char base[] =
		"{\"type\":\"result\",\"v\":1,\"ip\":\"192.0.2.1\",\"port\":25,\"mx\":null,"
		"\"greeting\":{\"code\":220,\"lines\":[\"220 mx \\\\x00 \\u00e9 ESMTP\"]},"
		"\"tls\":{\"version\":\"TLSv1.3\",\"forward_secrecy\":true,\"kex_bits\":253,"
		"\"chain\":[{\"pos\":0,\"sha256\":\"ab\"}]},\"timing_ms\":{\"total\":-1.5e3}}";
	static const char alphabet[] = "{}[]\":,\\ u0123456789abcdefxtrunl.-+eE\x01\x7f\xc3\xa9\xff";
	char buf[sizeof(base) + 4];
	struct jtoks ts;
	const char *err;
	size_t pos;
	unsigned seed = 12345;

	jtoks_init(&ts);
	for (int round = 0; round < 200000; round++) {
		memcpy(buf, base, sizeof(base));
		size_t n = sizeof(base) - 1;
		for (int k = 0; k < 1 + round % 3; k++) {
			seed = seed * 1103515245u + 12345u;
			size_t at = (seed >> 8) % n;
			seed = seed * 1103515245u + 12345u;
			buf[at] = alphabet[(seed >> 8) % (sizeof(alphabet) - 1)];
		}
		int ours = jt_parse(&ts, buf, n, &err, &pos) == 0;
		json_error_t e;
		json_t *j = json_loadb(buf, n, 0, &e);
		int theirs = j != NULL;
		/* jansson refuses integers past int64 that we keep as numbers (then in extra) */
		if (!theirs && strstr(e.text, "too big") != NULL)
			theirs = ours;
		if (ours != theirs)
			fail_msg("mutation %d: jsontok %d (%s), jansson %d (%s): %.*s", round, ours,
			         ours ? "" : err, theirs, theirs ? "" : e.text, (int)n, buf);
		/* and every string decodes to jansson's bytes */
		if (ours && j != NULL) {
			json_t *g = json_object_get(j, "greeting");
			json_t *lines = json_object_get(g, "lines");
			json_t *l0 = json_array_get(lines, 0);
			size_t gi = jt_get(&ts, buf, 0, "greeting");
			size_t li = gi && ts.t[gi].type == JT_OBJECT ? jt_get(&ts, buf, gi, "lines") : 0;
			if (json_is_string(l0) && li && ts.t[li].type == JT_ARRAY && ts.t[li].skip > li + 1 &&
			    ts.t[li + 1].type == JT_STRING && json_object_size(g) == 2 &&
			    json_array_size(lines) >= 1) {
				size_t dn;
				const char *d = jt_str(&ts, buf, li + 1, &dn);
				assert_int_equal(dn, json_string_length(l0));
				assert_memory_equal(d, json_string_value(l0), dn);
			}
		}
		json_decref(j);
	}
	jtoks_free(&ts);
}

static void test_int_limits(void **state)
{
	struct jtoks ts;
	const char *err, *s;
	size_t pos;
	int64_t v;
	jtoks_init(&ts);
	s = "[9223372036854775807,-9223372036854775808,9223372036854775808,1.0,-0]";
	assert_int_equal(jt_parse(&ts, s, strlen(s), &err, &pos), 0);
	assert_true(jt_int(&ts, s, 1, &v) && v == INT64_MAX);
	assert_true(jt_int(&ts, s, 2, &v) && v == INT64_MIN);
	assert_false(jt_int(&ts, s, 3, &v));
	assert_false(jt_int(&ts, s, 4, &v));
	assert_true(jt_int(&ts, s, 5, &v) && v == 0);
	jtoks_free(&ts);
}

static void test_copy_escaping(void **state)
{
	struct copybuf b;
	copybuf_init(&b);
	cb_text(&b, "a\tb\\c\nd\re", 9);
	cb_null(&b);
	cb_array_begin(&b);
	cb_array_text(&b, "x\"y\\z", 5);
	cb_array_text(&b, "NULL", 4);
	cb_array_end(&b);
	cb_bytea(&b, (const unsigned char *)"\x00\xff", 2);
	cb_array_begin(&b);
	cb_array_end(&b);
	cb_end_row(&b);
	const char want[] = "a\\tb\\\\c\\nd\\re\t\\N\t{\"x\\\\\"y\\\\\\\\z\",\"NULL\"}\t\\\\x00ff\t{}\n";
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.data, want, b.len);
	copybuf_free(&b);
}

/* Reference COPY escaping, a byte at a time (what copybuf did before it took runs). */
static size_t ref_field(char *o, const char *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		switch (s[i]) {
		case '\\': o[k++] = '\\'; o[k++] = '\\'; break;
		case '\t': o[k++] = '\\'; o[k++] = 't'; break;
		case '\n': o[k++] = '\\'; o[k++] = 'n'; break;
		case '\r': o[k++] = '\\'; o[k++] = 'r'; break;
		default: o[k++] = s[i]; break;
		}
	}
	return k;
}

static size_t ref_element(char *o, const char *s, size_t n)
{
	size_t k = 0;
	o[k++] = '"';
	for (size_t i = 0; i < n; i++) {
		switch (s[i]) {
		case '\\': memcpy(o + k, "\\\\\\\\", 4); k += 4; break;
		case '"': memcpy(o + k, "\\\\\"", 3); k += 3; break;
		case '\t': o[k++] = '\\'; o[k++] = 't'; break;
		case '\n': o[k++] = '\\'; o[k++] = 'n'; break;
		case '\r': o[k++] = '\\'; o[k++] = 'r'; break;
		default: o[k++] = s[i]; break;
		}
	}
	o[k++] = '"';
	return k;
}

static int ref_valid_esc(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return 0;
		if (c == '\\') {
			if (n - i < 4 || s[i + 1] != 'x' || !isxdigit((unsigned char)s[i + 2]) ||
			    !isxdigit((unsigned char)s[i + 3]))
				return 0;
			i += 3;
		}
	}
	return 1;
}

/*
 * The word-at-a-time loops (tokenizer strings, COPY escaping, escape-form check) against
 * byte-at-a-time references, on random strings whose rare bytes fall at every offset of
 * a word and near both ends.
 */
static void test_word_loops(void **state)
{
	static const char alphabet[] = "aaaaaaaaaaaaaaaaxx0f\\\"\t\n\r\b\x01\x1f\x7f\x80\xc3\xa9 ~";
	char s[80], json[200], want[400];
	unsigned seed = 777;
	struct jtoks ts;
	struct copybuf b;
	const char *err;
	size_t pos;
	jtoks_init(&ts);
	copybuf_init(&b);
	for (int round = 0; round < 300000; round++) {
		seed = seed * 1103515245u + 12345u;
		size_t n = (seed >> 8) % 40;
		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			/* mostly ordinary bytes, so that runs of eight occur */
			s[i] = (seed >> 20) % 4 ? 'a' + (char)((seed >> 8) % 26)
			                        : alphabet[(seed >> 8) % (sizeof(alphabet) - 1)];
		}
		copybuf_reset(&b);
		cb_text(&b, s, n);
		cb_array_begin(&b);
		cb_array_text(&b, s, n);
		cb_array_text(&b, s, n);
		cb_array_end(&b);
		size_t k = ref_field(want, s, n);
		want[k++] = '\t';
		want[k++] = '{';
		k += ref_element(want + k, s, n);
		want[k++] = ',';
		k += ref_element(want + k, s, n);
		want[k++] = '}';
		assert_int_equal(b.len, k);
		assert_memory_equal(b.data, want, k);
		assert_int_equal(rc_valid_esc(s, n), ref_valid_esc(s, n));
		/* as a JSON string: the same verdict and bytes as jansson */
		int jn = snprintf(json, sizeof(json), "{\"s\":\"%.*s\"}", (int)n, s);
		int ours = jt_parse(&ts, json, (size_t)jn, &err, &pos) == 0;
		json_error_t e;
		json_t *j = json_loadb(json, (size_t)jn, 0, &e);
		if (ours != (j != NULL))
			fail_msg("round %d: jsontok %d, jansson %d: %s", round, ours, j != NULL, json);
		if (ours) {
			size_t dn;
			const char *d = jt_str(&ts, json, 2, &dn);
			json_t *v = json_object_get(j, "s");
			assert_int_equal(dn, json_string_length(v));
			assert_memory_equal(d, json_string_value(v), dn);
		}
		json_decref(j);
	}
	copybuf_free(&b);
	jtoks_free(&ts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_verdict_as_jansson),
		cmocka_unit_test(test_mutations_agree),
		cmocka_unit_test(test_int_limits),
		cmocka_unit_test(test_copy_escaping),
		cmocka_unit_test(test_word_loops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
