/* The escape form is lossless and always clean UTF-8 without NUL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "esc.h"

static void roundtrip(const char *in, size_t len, const char *expect)
{
	size_t elen, dlen;
	char *enc = mxs_esc_encode(in, len, &elen);
	assert_non_null(enc);
	assert_string_equal(enc, expect);
	assert_int_equal(strlen(enc), elen);
	for (size_t i = 0; i < elen; i++)
		assert_true((unsigned char)enc[i] >= 0x20 && enc[i] != 0x7f);
	/* the encoding, decoded as escape form, is itself clean text once re-encoded without its backslashes */
	for (size_t i = 0; i < elen; i++)
		if (enc[i] == '\\')
			enc[i] = '/';
	assert_true(mxs_esc_is_clean(enc, elen));
	free(enc);
	enc = mxs_esc_encode(in, len, &elen);
	unsigned char *dec = mxs_esc_decode(enc, elen, &dlen);
	assert_non_null(dec);
	assert_int_equal(dlen, len);
	assert_memory_equal(dec, in, len);
	assert_int_equal(mxs_esc_is_clean(in, len), strcmp(in, expect) == 0 && strlen(in) == len);
	free(enc);
	free(dec);
}

static void test_plain(void **state)
{
	roundtrip("220 mx.example.net ESMTP Postfix", 32, "220 mx.example.net ESMTP Postfix");
}

static void test_controls(void **state)
{
	roundtrip("a\0b\tc\\d\x7f", 8, "a\\x00b\\x09c\\x5cd\\x7f");
}

static void test_utf8(void **state)
{
	/* valid 2-, 3-, 4-byte sequences pass; invalid, overlong and surrogates escape */
	roundtrip("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	roundtrip("\xff\xc3", 2, "\\xff\\xc3");
	roundtrip("\xc0\xaf", 2, "\\xc0\\xaf");
	roundtrip("\xed\xa0\x80", 3, "\\xed\\xa0\\x80");
	roundtrip("\xe0\x80\xaf", 3, "\\xe0\\x80\\xaf");
}

static void test_bad_decode(void **state)
{
	assert_null(mxs_esc_decode("a\\", 2, NULL));
	assert_null(mxs_esc_decode("\\x4", 3, NULL));
	assert_null(mxs_esc_decode("\\y41", 4, NULL));
	assert_null(mxs_esc_decode("\\xg1", 4, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_controls),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_bad_decode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
