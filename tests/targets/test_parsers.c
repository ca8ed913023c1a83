/* The pure parsers of targets/: TXT records, policy files, HTTP, DNS messages, input. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ares.h>

#include "addrset.h"
#include "answer.h"
#include "dnsmsg.h"
#include "input.h"
#include "policy_txt.h"
#include "sts_policy.h"

static enum mxs_txt_result sts(const char *s, struct mxs_sts_txt *out)
{
	return mxs_sts_txt_parse(s, strlen(s), out);
}

static void test_sts_txt(void **state)
{
	struct mxs_sts_txt t;

	assert_int_equal(sts("v=STSv1; id=20160831085700Z;", &t), MXS_TXT_OK);
	assert_string_equal(t.id, "20160831085700Z");
	assert_int_equal(sts("v=STSv1;id=abc", &t), MXS_TXT_OK);
	assert_string_equal(t.id, "abc");
	assert_int_equal(sts("v=STSv1 ;\tid=Z9 ; ext-1.x=val ;", &t), MXS_TXT_OK);
	assert_string_equal(t.id, "Z9");
	assert_int_equal(sts("v=STSv2; id=1", &t), MXS_TXT_OTHER);
	assert_int_equal(sts("v=STSv10; id=1", &t), MXS_TXT_OTHER);
	assert_int_equal(sts("some other text", &t), MXS_TXT_OTHER);
	assert_int_equal(sts("v=STSv1", &t), MXS_TXT_MISSING_ID);
	assert_int_equal(sts("v=STSv1; ext=1", &t), MXS_TXT_MISSING_ID);
	assert_int_equal(sts("v=STSv1 id=1", &t), MXS_TXT_BAD_SYNTAX);
	assert_int_equal(sts("v=STSv1; id=bad-id!", &t), MXS_TXT_BAD_ID);
	assert_int_equal(sts("v=STSv1; id=", &t), MXS_TXT_BAD_ID);
	assert_int_equal(sts("v=STSv1; id=123456789012345678901234567890123", &t), MXS_TXT_BAD_ID);
	assert_int_equal(sts("v=STSv1; id=12345678901234567890123456789012", &t), MXS_TXT_OK);
	assert_int_equal(sts("v=STSv1; id=1; id=2", &t), MXS_TXT_DUPLICATE);
	assert_int_equal(sts("v=STSv1; id=1; v=STSv1", &t), MXS_TXT_DUPLICATE);
	assert_int_equal(sts("v=STSv1; id", &t), MXS_TXT_BAD_SYNTAX);
	assert_int_equal(sts("v=STSv1; id=1; _x=1", &t), MXS_TXT_BAD_SYNTAX);
	assert_int_equal(sts("v=STSv1; id=1; x=a=b", &t), MXS_TXT_BAD_SYNTAX);
	/* embedded NUL: length-delimited, not string-delimited */
	assert_int_equal(mxs_sts_txt_parse("v=STSv1; id=a\0b", 15, &t), MXS_TXT_BAD_ID);
	assert_string_equal(mxs_txt_result_name(MXS_TXT_BAD_ID), "bad-id");
}

static void test_tlsrpt_txt(void **state)
{
	struct mxs_tlsrpt_txt t;
	const char *s;

	s = "v=TLSRPTv1; rua=mailto:tls@example.com";
	assert_int_equal(mxs_tlsrpt_txt_parse(s, strlen(s), &t), MXS_TXT_OK);
	assert_int_equal(t.nrua, 1);
	assert_int_equal(t.rua[0].len, strlen("mailto:tls@example.com"));
	s = "v=TLSRPTv1;rua=mailto:a@b.example , https://r.example/report ;ext=1";
	assert_int_equal(mxs_tlsrpt_txt_parse(s, strlen(s), &t), MXS_TXT_OK);
	assert_int_equal(t.nrua, 2);
	assert_memory_equal(t.rua[1].p, "https://r.example/report", t.rua[1].len);
	s = "v=TLSRPTv1; rua=ftp://r.example";
	assert_int_equal(mxs_tlsrpt_txt_parse(s, strlen(s), &t), MXS_TXT_BAD_RUA);
	s = "v=TLSRPTv1; rua=mailto:a@b,";
	assert_int_equal(mxs_tlsrpt_txt_parse(s, strlen(s), &t), MXS_TXT_BAD_RUA);
	s = "v=TLSRPTv1; rua=mailto:a@b mailto:c@d";
	assert_int_equal(mxs_tlsrpt_txt_parse(s, strlen(s), &t), MXS_TXT_BAD_RUA);
	s = "v=TLSRPTv1;";
	assert_int_equal(mxs_tlsrpt_txt_parse(s, strlen(s), &t), MXS_TXT_MISSING_RUA);
	s = "v=TLSRPTv1; rua=mailto:a@b; rua=mailto:c@d";
	assert_int_equal(mxs_tlsrpt_txt_parse(s, strlen(s), &t), MXS_TXT_DUPLICATE);
	s = "v=TLSRPTv2; rua=mailto:a@b";
	assert_int_equal(mxs_tlsrpt_txt_parse(s, strlen(s), &t), MXS_TXT_OTHER);
}

static enum mxs_sts_policy_error pol(const char *s, struct mxs_sts_policy *p)
{
	return mxs_sts_policy_parse(s, strlen(s), p);
}

static void test_sts_policy(void **state)
{
	static struct mxs_sts_policy p;

	assert_int_equal(pol("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
			     "mx: *.Example.NET.\r\nmax_age: 604800\r\n", &p), MXS_STSP_OK);
	assert_int_equal(p.mode, MXS_STS_MODE_ENFORCE);
	assert_int_equal(p.max_age, 604800);
	assert_int_equal(p.nmx, 2);
	assert_string_equal(p.mx[0], "mail.example.com");
	assert_string_equal(p.mx[1], "*.example.net");
	assert_int_equal(pol("version:STSv1\nmode:testing\nmx:a.example\nmax_age:0\nx-ext: 1\n", &p),
			 MXS_STSP_OK);
	assert_int_equal(p.mode, MXS_STS_MODE_TESTING);
	assert_int_equal(pol("version: STSv1\nmode: none\nmax_age: 86400", &p), MXS_STSP_OK);
	assert_int_equal(pol("version: STSv1\nmode: enforce\nmax_age: 86400\n", &p), MXS_STSP_NO_MX);
	assert_int_equal(pol("version: STSv2\nmode: enforce\n", &p), MXS_STSP_BAD_VERSION);
	assert_int_equal(p.err_line, 1);
	assert_int_equal(pol("mode: enforce\nmx: a.b\nmax_age: 1\n", &p), MXS_STSP_BAD_VERSION);
	assert_int_equal(pol("version: STSv1\nmode: strict\n", &p), MXS_STSP_BAD_MODE);
	assert_int_equal(p.err_line, 2);
	assert_int_equal(pol("version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 31557601\n", &p),
			 MXS_STSP_BAD_MAX_AGE);
	assert_int_equal(pol("version: STSv1\nmode: enforce\nmx: a.b\nmax_age: -1\n", &p),
			 MXS_STSP_BAD_MAX_AGE);
	assert_int_equal(pol("version: STSv1\nmode: enforce\nmx: a.b\n", &p), MXS_STSP_BAD_MAX_AGE);
	assert_int_equal(pol("version: STSv1\nmode: enforce\nmx: bad_host!\nmax_age: 1\n", &p),
			 MXS_STSP_BAD_MX);
	assert_int_equal(pol("version: STSv1\nmode: enforce\nmode: none\n", &p), MXS_STSP_DUPLICATE);
	assert_int_equal(pol("version: STSv1\nmode enforce\n", &p), MXS_STSP_BAD_LINE);
	assert_string_equal(mxs_sts_policy_error_name(MXS_STSP_NO_MX), "no-mx");

	assert_true(mxs_sts_mx_match("mail.example.com", "MAIL.example.com."));
	assert_false(mxs_sts_mx_match("mail.example.com", "mail2.example.com"));
	assert_true(mxs_sts_mx_match("*.example.net", "mx1.example.net"));
	assert_false(mxs_sts_mx_match("*.example.net", "example.net"));
	assert_false(mxs_sts_mx_match("*.example.net", "a.b.example.net"));
	assert_false(mxs_sts_mx_match("*.example.net", ".example.net"));
}

static void test_judge(void **state)
{
	static struct mxs_sts_policy p;
	char err[300];
	const char *ok = "version: STSv1\nmode: testing\nmx: *.example.net\nmax_age: 86400\n";

	assert_int_equal(mxs_sts_judge(200, "Text/Plain; charset=utf-8", NULL, ok, strlen(ok), &p,
				       err, sizeof(err)), MXS_STS_OK);
	assert_string_equal(err, "");
	assert_int_equal(p.mode, MXS_STS_MODE_TESTING);
	assert_int_equal(mxs_sts_judge(301, "text/html", "https://elsewhere/x", ok, strlen(ok), &p,
				       err, sizeof(err)), MXS_STS_REDIRECT);
	assert_string_equal(err, "HTTP 301 to 'https://elsewhere/x' (not followed)");
	assert_int_equal(mxs_sts_judge(308, NULL, NULL, "", 0, &p, err, sizeof(err)), MXS_STS_REDIRECT);
	assert_int_equal(mxs_sts_judge(404, "text/plain", NULL, ok, strlen(ok), &p, err, sizeof(err)),
			 MXS_STS_HTTP_STATUS);
	assert_string_equal(err, "HTTP 404");
	assert_int_equal(mxs_sts_judge(200, "text/html", NULL, ok, strlen(ok), &p, err, sizeof(err)),
			 MXS_STS_CONTENT_TYPE);
	assert_string_equal(err, "Content-Type 'text/html' is not text/plain");
	assert_int_equal(mxs_sts_judge(200, NULL, NULL, ok, strlen(ok), &p, err, sizeof(err)),
			 MXS_STS_CONTENT_TYPE);
	assert_int_equal(mxs_sts_judge(200, "text/plainx", NULL, ok, strlen(ok), &p, err, sizeof(err)),
			 MXS_STS_CONTENT_TYPE);
	assert_int_equal(mxs_sts_judge(200, "text/\x01'", NULL, ok, strlen(ok), &p, err, sizeof(err)),
			 MXS_STS_CONTENT_TYPE);
	assert_string_equal(err, "Content-Type 'text/?" "?' is not text/plain");
	assert_int_equal(mxs_sts_judge(200, "text/plain", NULL, ok, MXS_STS_BODY_MAX + 1, &p, err,
				       sizeof(err)), MXS_STS_TOO_LARGE);
	assert_int_equal(mxs_sts_judge(200, "text/plain", NULL, "version: STSv1\nmode: on\n", 24, &p,
				       err, sizeof(err)), MXS_STS_SYNTAX);
	assert_string_equal(err, "bad-mode (line 2)");
	assert_string_equal(mxs_sts_status_name(MXS_STS_HTTP_PROTOCOL), "http-protocol");
	assert_string_equal(mxs_sts_status_name(MXS_STS_LAST), "?");
}

/* A response to a query we build: header, the question copied, then answers. */
static size_t respond(unsigned char *out, const unsigned char *q, int qlen, int rcode, int ad,
		      const unsigned char *answers, size_t alen, int ancount)
{
	memcpy(out, q, (size_t)qlen - 11); /* drop the OPT record */
	out[2] = 0x81;
	out[3] = (unsigned char)(0x80 | (ad ? 0x20 : 0) | rcode);
	out[7] = (unsigned char)ancount;
	out[11] = 0;
	if (alen)
		memcpy(out + qlen - 11, answers, alen);
	return (size_t)qlen - 11 + alen;
}

static void test_dns(void **state)
{
	unsigned char q[512], resp[1024];
	struct mxs_answer a;
	struct mxs_dns_rr rr;
	char name[MXS_DNS_NAME_MAX];

	int n = mxs_dns_build_query(q, sizeof(q), "Example.TEST.", MXS_DNS_T_MX, 1232);
	assert_int_equal(n, 12 + 14 + 4 + 11);
	assert_int_equal(q[3] & 0x20, 0x20); /* AD requested */
	assert_int_equal(q[11], 1);          /* one OPT */
	assert_int_equal(mxs_dns_build_query(q, sizeof(q), "a..b", MXS_DNS_T_A, 0), -1);
	assert_int_equal(mxs_dns_build_query(q, 20, "example.test", MXS_DNS_T_A, 0), -1);

	/* example.test MX 10 mx.example.test (compressed), AD set */
	n = mxs_dns_build_query(q, sizeof(q), "example.test", MXS_DNS_T_MX, 1232);
	static const unsigned char mx[] = { 0xc0, 0x0c, 0, 15, 0, 1, 0, 0, 1, 0x2c, 0, 7,
					    0, 10, 2, 'm', 'x', 0xc0, 0x0c };
	size_t len = respond(resp, q, n, 0, 1, mx, sizeof(mx), 1);
	assert_int_equal(mxs_answer_open(&a, ARES_SUCCESS, resp, (int)len, "example.test", MXS_DNS_T_MX),
			 MXS_DNS_OK);
	assert_true(a.ad);
	assert_int_equal(mxs_answer_next(&a, &rr), 1);
	assert_int_equal(mxs_dns_read_name(a.msg.buf, a.msg.len, rr.rdata_off + 2, name, NULL), 0);
	assert_string_equal(name, "mx.example.test");
	assert_int_equal(mxs_answer_next(&a, &rr), 0);

	/* CNAME chain, then an A owned by the target; a record of another owner is ignored */
	n = mxs_dns_build_query(q, sizeof(q), "alias.test", MXS_DNS_T_A, 1232);
	static const unsigned char chain[] = {
		0xc0, 0x0c, 0, 5, 0, 1, 0, 0, 0, 60, 0, 7, 4, 'r', 'e', 'a', 'l', 0xc0, 0x12,
		4, 'r', 'e', 'a', 'l', 0xc0, 0x12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1,
		5, 'o', 't', 'h', 'e', 'r', 0xc0, 0x12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 9,
	};
	len = respond(resp, q, n, 0, 0, chain, sizeof(chain), 3);
	assert_int_equal(mxs_answer_open(&a, ARES_SUCCESS, resp, (int)len, "alias.test", MXS_DNS_T_A),
			 MXS_DNS_OK);
	assert_true(a.aliased);
	assert_string_equal(a.final, "real.test");
	assert_int_equal(mxs_answer_next(&a, &rr), 1);
	assert_int_equal(rr.rdata[3], 1);
	assert_int_equal(mxs_answer_next(&a, &rr), 0);

	/* statuses */
	len = respond(resp, q, n, 3, 0, NULL, 0, 0);
	assert_int_equal(mxs_answer_open(&a, ARES_SUCCESS, resp, (int)len, "alias.test", MXS_DNS_T_A),
			 MXS_DNS_NXDOMAIN);
	len = respond(resp, q, n, 0, 0, NULL, 0, 0);
	assert_int_equal(mxs_answer_open(&a, ARES_SUCCESS, resp, (int)len, "alias.test", MXS_DNS_T_A),
			 MXS_DNS_NODATA);
	len = respond(resp, q, n, 2, 0, NULL, 0, 0);
	assert_int_equal(mxs_answer_open(&a, ARES_SUCCESS, resp, (int)len, "alias.test", MXS_DNS_T_A),
			 MXS_DNS_SERVFAIL);
	len = respond(resp, q, n, 5, 0, NULL, 0, 0);
	assert_int_equal(mxs_answer_open(&a, ARES_SUCCESS, resp, (int)len, "alias.test", MXS_DNS_T_A),
			 MXS_DNS_REFUSED);
	len = respond(resp, q, n, 0, 0, NULL, 0, 1); /* claims an answer it lacks */
	assert_int_equal(mxs_answer_open(&a, ARES_SUCCESS, resp, (int)len, "alias.test", MXS_DNS_T_A),
			 MXS_DNS_MALFORMED);
	assert_int_equal(mxs_answer_open(&a, ARES_ETIMEOUT, NULL, 0, "x.test", MXS_DNS_T_A),
			 MXS_DNS_TIMEOUT);
	assert_int_equal(mxs_answer_open(&a, ARES_EDESTRUCTION, NULL, 0, "x.test", MXS_DNS_T_A),
			 MXS_DNS_STATUS_LAST);

	/* a name with odd bytes comes out escaped, lower case */
	static const unsigned char odd[] = { 3, 'A', '.', 0x01, 4, 't', 'e', 's', 't', 0 };
	assert_int_equal(mxs_dns_read_name(odd, sizeof(odd), 0, name, NULL), 0);
	assert_string_equal(name, "a\\046\\001.test");
	/* pointer loop */
	static const unsigned char loop[] = { 1, 'a', 0xc0, 0x00 };
	assert_int_equal(mxs_dns_read_name(loop, sizeof(loop), 0, name, NULL), -1);
}

static void test_input(void **state)
{
	struct mxs_input in;
	const char *s;

#define PARSE(str) do { s = (str); mxs_input_parse(s, strlen(s), &in); } while (0)
	PARSE("Example.COM.\r\n");
	assert_int_equal(in.kind, MXS_IN_NAME);
	assert_string_equal(in.name, "example.com");
	assert_int_equal(in.rank, -1);
	PARSE("12,google.com");
	assert_int_equal(in.kind, MXS_IN_NAME);
	assert_int_equal(in.rank, 12);
	PARSE("  # comment");
	assert_int_equal(in.kind, MXS_IN_SKIP);
	PARSE("\t \r\n");
	assert_int_equal(in.kind, MXS_IN_SKIP);
	PARSE("192.0.2.7 # a comment");
	assert_int_equal(in.kind, MXS_IN_ADDR);
	assert_int_equal(in.family, AF_INET);
	PARSE("2001:db8::25");
	assert_int_equal(in.kind, MXS_IN_ADDR);
	assert_int_equal(in.family, AF_INET6);
	PARSE("192.0.2.77/28");
	assert_int_equal(in.kind, MXS_IN_CIDR);
	assert_int_equal(in.prefix, 28);
	assert_int_equal(in.addr[3], 64);
	PARSE("192.0.2.1/32");
	assert_int_equal(in.kind, MXS_IN_ADDR);
	PARSE("10.0.0.0/8");
	assert_int_equal(in.error, MXS_INERR_RANGE_TOO_BIG);
	PARSE("2001:db8::/112");
	assert_int_equal(in.kind, MXS_IN_CIDR);
	PARSE("2001:db8::/64");
	assert_int_equal(in.error, MXS_INERR_RANGE_TOO_BIG);
	PARSE("1.2.3");
	assert_int_equal(in.error, MXS_INERR_BAD_CIDR);
	PARSE("0,example.com");
	assert_int_equal(in.error, MXS_INERR_BAD_RANK);
	PARSE("x,example.com");
	assert_int_equal(in.error, MXS_INERR_BAD_RANK);
	PARSE("https://example.com/");
	assert_int_equal(in.error, MXS_INERR_URL);
	PARSE("b\xc3\xbc" "cher.de");
	assert_int_equal(in.error, MXS_INERR_NOT_ASCII);
	PARSE("localhost");
	assert_int_equal(in.error, MXS_INERR_BAD_NAME);
	PARSE("a..b");
	assert_int_equal(in.error, MXS_INERR_BAD_NAME);
	PARSE("two words.com");
	assert_int_equal(in.error, MXS_INERR_BAD_NAME);
#undef PARSE
}

/* mxs_addr_format writes IPv4 by hand: the same text as inet_ntop for every octet */
static void test_addr_format(void **state)
{
	struct mxs_addr a;
	char got[64], want[64];

	for (int pos = 0; pos < 4; pos++)
		for (int v = 0; v < 256; v++) {
			memset(&a, 0, sizeof(a));
			a.family = AF_INET;
			memcpy(a.b, "\x0a\x63\x00\xff", 4);
			a.b[pos] = (uint8_t)v;
			mxs_addr_format(&a, got, sizeof(got));
			assert_non_null(inet_ntop(AF_INET, a.b, want, sizeof(want)));
			assert_string_equal(got, want);
		}
	memset(&a, 0, sizeof(a));
	a.family = AF_INET6;
	a.b[15] = 1;
	mxs_addr_format(&a, got, sizeof(got));
	assert_string_equal(got, "::1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sts_txt),    cmocka_unit_test(test_tlsrpt_txt),
		cmocka_unit_test(test_sts_policy), cmocka_unit_test(test_judge),
		cmocka_unit_test(test_dns),        cmocka_unit_test(test_input),
		cmocka_unit_test(test_addr_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
