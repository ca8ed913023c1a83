/*
 * The crafted ClientHello (tls_hello.c) checked field by field by an independent walk of
 * its bytes, and the answer reader (tls_answer.c) on server flights built here: fed in
 * one piece and byte by byte, plus hostile ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tls_answer.h"
#include "tls_hello.h"
#include "tls_suites.h"

static const uint8_t rnd[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
	17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };

static unsigned be16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* The hello's parts, found by walking its bytes as a server would. */
struct parsed {
	unsigned rec_version, hs_len, client_version;
	uint16_t suites[256];
	size_t nsuites;
	bool has_ext;
	unsigned ext_types[32];
	const uint8_t *ext_data[32];
	unsigned ext_len[32];
	size_t next;
};

static void parse_hello(const uint8_t *h, size_t len, struct parsed *p)
{
	size_t i;

	memset(p, 0, sizeof(*p));
	assert_true(len > 9);
	assert_int_equal(h[0], 22);
	p->rec_version = be16(h + 1);
	assert_int_equal(be16(h + 3), len - 5);
	assert_int_equal(h[5], 1);
	p->hs_len = (unsigned)h[6] << 16 | (unsigned)h[7] << 8 | h[8];
	assert_int_equal(p->hs_len, len - 9);
	p->client_version = be16(h + 9);
	assert_memory_equal(h + 11, rnd, 32);
	i = 43;
	assert_int_equal(h[i], 0);               /* session id */
	i++;
	unsigned sl = be16(h + i);
	i += 2;
	assert_int_equal(sl % 2, 0);
	for (unsigned k = 0; k < sl; k += 2)
		p->suites[p->nsuites++] = (uint16_t)be16(h + i + k);
	i += sl;
	assert_int_equal(h[i], 1);
	assert_int_equal(h[i + 1], 0);
	i += 2;
	if (i == len)
		return;
	p->has_ext = true;
	unsigned el = be16(h + i);
	i += 2;
	assert_int_equal(i + el, len);
	while (i < len) {
		assert_true(p->next < 32);
		p->ext_types[p->next] = be16(h + i);
		p->ext_len[p->next] = be16(h + i + 2);
		p->ext_data[p->next] = h + i + 4;
		i += 4 + p->ext_len[p->next];
		p->next++;
	}
	assert_int_equal(i, len);
}

static int ext_index(const struct parsed *p, unsigned type)
{
	for (size_t i = 0; i < p->next; i++)
		if (p->ext_types[i] == type)
			return (int)i;
	return -1;
}

static void test_hello_tls10(void **state)
{
	static const uint16_t suites[] = { 0x0005, 0x002f };
	static const uint16_t groups[] = { 0x001d, 0x0017 };
	struct tls_hello h = { .version = TLS_V_TLS10, .suites = suites, .nsuites = 2,
		.groups = groups, .ngroups = 2, .reneg = true, .sni = "mx.example", .random = rnd };
	uint8_t out[TLS_HELLO_MAX];
	struct parsed p;
	size_t n = tls_hello_write(&h, out, sizeof(out));
	int i;

	(void)state;
	assert_true(n > 0);
	parse_hello(out, n, &p);
	assert_int_equal(p.rec_version, 0x0301);
	assert_int_equal(p.client_version, 0x0301);
	assert_int_equal(p.nsuites, 2);
	assert_int_equal(p.suites[0], 0x0005);
	assert_int_equal(p.suites[1], 0x002f);
	assert_true((i = ext_index(&p, 0x0000)) >= 0);            /* SNI */
	assert_int_equal(p.ext_len[i], 2 + 1 + 2 + 10);
	assert_memory_equal(p.ext_data[i] + 5, "mx.example", 10);
	assert_true((i = ext_index(&p, 0x000a)) >= 0);
	assert_int_equal(p.ext_len[i], 6);
	assert_int_equal(be16(p.ext_data[i] + 2), 0x001d);
	assert_true(ext_index(&p, 0x000b) >= 0);
	assert_true((i = ext_index(&p, 0xff01)) >= 0);
	assert_int_equal(p.ext_len[i], 1);
	assert_int_equal(ext_index(&p, 0x000d), -1);               /* no sigalgs before 1.2 */
	assert_int_equal(ext_index(&p, 0x002b), -1);
	assert_int_equal(ext_index(&p, 0x0015), -1);               /* small: no padding */
}

static void test_hello_ssl3_scsv(void **state)
{
	static const uint16_t suites[] = { 0x0005, 0x000a };
	struct tls_hello h = { .version = TLS_V_SSL3, .suites = suites, .nsuites = 2,
		.reneg = true, .fallback_scsv = true, .sni = "ignored", .random = rnd };
	uint8_t out[TLS_HELLO_MAX];
	struct parsed p;
	size_t n = tls_hello_write(&h, out, sizeof(out));

	(void)state;
	assert_true(n > 0);
	parse_hello(out, n, &p);
	assert_int_equal(p.rec_version, 0x0300);
	assert_int_equal(p.client_version, 0x0300);
	assert_false(p.has_ext);                                   /* SSLv3 has none */
	assert_int_equal(p.nsuites, 4);
	assert_int_equal(p.suites[2], TLS_EMPTY_RENEGOTIATION_INFO_SCSV);
	assert_int_equal(p.suites[3], TLS_FALLBACK_SCSV);
}

static void test_hello_all_suites_padded(void **state)
{
	uint16_t suites[256];
	uint16_t groups[16];
	uint8_t out[TLS_HELLO_MAX];
	struct parsed p;

	(void)state;
	for (size_t i = 0; i < tls_nsuites; i++)
		suites[i] = tls_suites[i].code;
	for (size_t i = 0; i < tls_ngroups; i++)
		groups[i] = tls_groups[i].code;
	/* every suite count: the handshake message is never 256..511 bytes long */
	for (size_t ns = 1; ns <= tls_nsuites; ns++) {
		struct tls_hello h = { .version = TLS_V_TLS12, .suites = suites, .nsuites = ns,
			.groups = groups, .ngroups = tls_ngroups, .reneg = true, .sni = "mx.fleet.test",
			.random = rnd };
		size_t n = tls_hello_write(&h, out, sizeof(out));
		assert_true(n > 0);
		parse_hello(out, n, &p);
		assert_true(p.hs_len + 4 < 256 || p.hs_len + 4 >= 512);
		assert_int_equal(p.nsuites, ns);
		assert_true(ext_index(&p, 0x000d) >= 0);
	}
	/* too small a buffer: 0, nothing written past it */
	struct tls_hello h = { .version = TLS_V_TLS12, .suites = suites, .nsuites = tls_nsuites,
		.random = rnd };
	out[40] = 0xAA;
	assert_int_equal(tls_hello_write(&h, out, 40), 0);
	assert_int_equal(out[40], 0xAA);
}

static void test_hello_tls13(void **state)
{
	static const uint16_t suites[] = { 0x1301, 0x1302 };
	static const uint16_t groups[] = { 0x0018 };
	struct tls_hello h = { .version = TLS_V_TLS13, .suites = suites, .nsuites = 2,
		.groups = groups, .ngroups = 1, .random = rnd };
	uint8_t out[TLS_HELLO_MAX];
	struct parsed p;
	size_t n = tls_hello_write(&h, out, sizeof(out));
	int i;

	(void)state;
	parse_hello(out, n, &p);
	assert_int_equal(p.client_version, 0x0303);
	assert_true((i = ext_index(&p, 0x002b)) >= 0);
	assert_int_equal(p.ext_len[i], 3);
	assert_int_equal(be16(p.ext_data[i] + 1), 0x0304);
	assert_true((i = ext_index(&p, 0x0033)) >= 0);
	assert_int_equal(p.ext_len[i], 2);                         /* empty client_shares */
	assert_int_equal(ext_index(&p, 0x000b), -1);
	assert_true(ext_index(&p, 0x002d) >= 0);
}

/* ---- server flights ---- */

struct flight {
	uint8_t b[400000];
	size_t n;
};

static void fput(struct flight *f, const void *p, size_t n)
{
	assert_true(f->n + n <= sizeof(f->b));
	memcpy(f->b + f->n, p, n);
	f->n += n;
}

/* Handshake bytes hs as records of at most max bytes each. */
static void records(struct flight *f, unsigned type, unsigned version, const uint8_t *p, size_t n,
		    size_t max)
{
	while (n > 0) {
		size_t k = n < max ? n : max;
		uint8_t h[5] = { (uint8_t)type, (uint8_t)(version >> 8), (uint8_t)version,
				 (uint8_t)(k >> 8), (uint8_t)k };
		fput(f, h, 5);
		fput(f, p, k);
		p += k;
		n -= k;
	}
}

static size_t hs_msg(uint8_t *out, unsigned type, const uint8_t *body, size_t n)
{
	out[0] = (uint8_t)type;
	out[1] = (uint8_t)(n >> 16);
	out[2] = (uint8_t)(n >> 8);
	out[3] = (uint8_t)n;
	if (n > 0)
		memcpy(out + 4, body, n);
	return n + 4;
}

static const uint8_t hrr_magic[32] = {
	0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
	0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
};

/* A ServerHello body. */
static size_t sh_body(uint8_t *b, unsigned version, unsigned suite, const uint8_t *random,
		      const uint8_t *ext, size_t next)
{
	size_t i = 0;
	b[i++] = (uint8_t)(version >> 8);
	b[i++] = (uint8_t)version;
	memcpy(b + i, random ? random : rnd, 32);
	i += 32;
	b[i++] = 0;
	b[i++] = (uint8_t)(suite >> 8);
	b[i++] = (uint8_t)suite;
	b[i++] = 0;
	if (ext != NULL) {
		b[i++] = (uint8_t)(next >> 8);
		b[i++] = (uint8_t)next;
		memcpy(b + i, ext, next);
		i += next;
	}
	return i;
}

/* Feed whole, and byte by byte: both must give the same answer. */
static struct tls_answer read_both(const struct flight *f, bool want_kx, bool eof)
{
	static struct tls_reader r1, r2;
	bool d1, d2 = false;

	tls_reader_init(&r1, want_kx);
	d1 = tls_reader_feed(&r1, f->b, f->n);
	if (!d1 && eof)
		tls_reader_eof(&r1);
	tls_reader_init(&r2, want_kx);
	for (size_t i = 0; i < f->n && !d2; i++)
		d2 = tls_reader_feed(&r2, f->b + i, 1);
	if (!d2 && eof)
		tls_reader_eof(&r2);
	assert_int_equal(d1, d2);
	assert_int_equal(r1.ans.kind, r2.ans.kind);
	assert_int_equal(r1.ans.version, r2.ans.version);
	assert_int_equal(r1.ans.suite, r2.ans.suite);
	assert_int_equal(r1.ans.group, r2.ans.group);
	assert_int_equal(r1.ans.dh_bits, r2.ans.dh_bits);
	assert_int_equal(r1.ans.reneg, r2.ans.reneg);
	assert_int_equal(r1.ans.alert, r2.ans.alert);
	if (eof)
		assert_true(r1.done);
	return r1.ans;
}

static void test_answer_tls10_rc4(void **state)
{
	static struct flight f;
	uint8_t body[256], msg[300];
	static const uint8_t ri[] = { 0xff, 0x01, 0x00, 0x01, 0x00 };
	size_t n = sh_body(body, 0x0301, 0x0005, NULL, ri, sizeof(ri));
	struct tls_answer a;

	(void)state;
	f.n = 0;
	n = hs_msg(msg, 2, body, n);
	records(&f, 22, 0x0301, msg, n, 16384);
	a = read_both(&f, true, false);
	assert_int_equal(a.kind, TLS_ANS_HELLO);
	assert_int_equal(a.version, 0x0301);
	assert_int_equal(a.suite, 0x0005);
	assert_true(a.reneg);
	/* no renegotiation_info, no extensions at all (SSLv3) */
	f.n = 0;
	n = hs_msg(msg, 2, body, sh_body(body, 0x0300, 0x000a, NULL, NULL, 0));
	records(&f, 22, 0x0300, msg, n, 16384);
	a = read_both(&f, true, false);
	assert_int_equal(a.kind, TLS_ANS_HELLO);
	assert_int_equal(a.version, 0x0300);
	assert_false(a.reneg);
}

static void test_answer_alert(void **state)
{
	static struct flight f;
	static const uint8_t al[] = { 2, TLS_ALERT_INAPPROPRIATE_FALLBACK };
	struct tls_answer a;

	(void)state;
	f.n = 0;
	records(&f, 21, 0x0303, al, 2, 16384);
	a = read_both(&f, true, false);
	assert_int_equal(a.kind, TLS_ANS_ALERT);
	assert_int_equal(a.alert, 86);
	assert_int_equal(a.alert_level, 2);
}

static void test_answer_tls13_and_hrr(void **state)
{
	static struct flight f;
	uint8_t body[256], msg[300];
	static const uint8_t ext13[] = { 0x00, 0x2b, 0x00, 0x02, 0x03, 0x04,
		0x00, 0x33, 0x00, 0x06, 0x00, 0x1d, 0x00, 0x02, 0xAA, 0xBB };
	static const uint8_t exthrr[] = { 0x00, 0x2b, 0x00, 0x02, 0x03, 0x04,
		0x00, 0x33, 0x00, 0x02, 0x00, 0x18 };
	static const uint8_t ccs_app[] = { 20, 3, 3, 0, 1, 1, 23, 3, 3, 0, 2, 9, 9 };
	struct tls_answer a;
	size_t n;

	(void)state;
	f.n = 0;
	n = hs_msg(msg, 2, body, sh_body(body, 0x0303, 0x1302, NULL, ext13, sizeof(ext13)));
	records(&f, 22, 0x0303, msg, n, 16384);
	fput(&f, ccs_app, sizeof(ccs_app));
	a = read_both(&f, true, false);
	assert_int_equal(a.kind, TLS_ANS_HELLO);
	assert_int_equal(a.version, 0x0304);
	assert_int_equal(a.suite, 0x1302);
	assert_int_equal(a.group, 0x001d);
	f.n = 0;
	n = hs_msg(msg, 2, body, sh_body(body, 0x0303, 0x1301, hrr_magic, exthrr, sizeof(exthrr)));
	records(&f, 22, 0x0303, msg, n, 16384);
	a = read_both(&f, true, false);
	assert_int_equal(a.kind, TLS_ANS_HRR);
	assert_int_equal(a.version, 0x0304);
	assert_int_equal(a.group, 0x0018);
}

/* ServerHello, a Certificate of cert_len bytes, then ske (or none), ServerHelloDone, in
 * records of at most max bytes. */
static void kx_flight(struct flight *f, unsigned suite, size_t cert_len, const uint8_t *ske,
		      size_t ske_len, size_t max)
{
	static uint8_t hs[400000];
	uint8_t body[256];
	size_t n = 0;
	static uint8_t cert[300000];

	f->n = 0;
	n += hs_msg(hs + n, 2, body, sh_body(body, 0x0303, suite, NULL, NULL, 0));
	memset(cert, 0x30, cert_len);
	n += hs_msg(hs + n, 11, cert, cert_len);
	if (ske != NULL)
		n += hs_msg(hs + n, 12, ske, ske_len);
	n += hs_msg(hs + n, 14, NULL, 0);
	records(f, 22, 0x0303, hs, n, max);
}

static void test_answer_kx(void **state)
{
	static struct flight f;
	uint8_t ske[400];
	struct tls_answer a;

	(void)state;
	/* DHE: a 1024-bit prime (leading zero byte ignored), spread over 100-byte records */
	ske[0] = 0x00;
	ske[1] = 129;
	ske[2] = 0x00;
	memset(ske + 3, 0xC5, 128);
	kx_flight(&f, 0x0033, 3000, ske, 131, 100);
	a = read_both(&f, true, false);
	assert_int_equal(a.kind, TLS_ANS_HELLO);
	assert_int_equal(a.dh_bits, 1024);
	/* a 2047-bit prime: top byte 0x7f */
	ske[0] = 0x01;
	ske[1] = 0x00;
	memset(ske + 2, 0x11, 256);
	ske[2] = 0x7f;
	kx_flight(&f, 0x009e, 5000, ske, 258, 16384);
	a = read_both(&f, true, false);
	assert_int_equal(a.dh_bits, 2047);
	/* without want_kx the hello is the answer */
	a = read_both(&f, false, false);
	assert_int_equal(a.kind, TLS_ANS_HELLO);
	assert_int_equal(a.dh_bits, 0);
	/* ECDHE: named curve secp384r1 */
	static const uint8_t ec[] = { 3, 0x00, 0x18, 4, 1, 2, 3, 4 };
	kx_flight(&f, 0xC030, 2000, ec, sizeof(ec), 700);
	a = read_both(&f, true, false);
	assert_int_equal(a.group, 0x0018);
	/* RSA key transport: done at the ServerHello even with want_kx */
	kx_flight(&f, 0x002f, 2000, NULL, 0, 16384);
	a = read_both(&f, true, false);
	assert_int_equal(a.kind, TLS_ANS_HELLO);
	assert_int_equal(a.suite, 0x002f);
	/* a DHE suite that sends no ServerKeyExchange: ServerHelloDone ends it, size unknown */
	kx_flight(&f, 0x0033, 100, NULL, 0, 16384);
	a = read_both(&f, true, false);
	assert_int_equal(a.kind, TLS_ANS_HELLO);
	assert_int_equal(a.dh_bits, 0);
	/* a certificate larger than the flight cap: the hello stands, nothing kept */
	kx_flight(&f, 0x0033, 290000, ske, 258, 16384);
	a = read_both(&f, true, false);
	assert_int_equal(a.kind, TLS_ANS_HELLO);
	assert_int_equal(a.dh_bits, 0);
}

static void expect_bad(const struct flight *f, bool eof)
{
	struct tls_answer a = read_both(f, true, eof);
	assert_int_equal(a.kind, TLS_ANS_BAD);
	assert_non_null(a.why);
}

static void test_answer_hostile(void **state)
{
	static struct flight f;
	uint8_t body[256], msg[400];
	size_t n;

	(void)state;
	/* plaintext SMTP instead of TLS */
	f.n = 0;
	fput(&f, "454 4.7.0 TLS not available\r\n", 29);
	expect_bad(&f, false);
	/* SSLv2 server hello */
	f.n = 0;
	fput(&f, "\x80\x2e\x04\x00\x01\x00\x02", 7);
	expect_bad(&f, false);
	/* a record longer than TLS allows */
	f.n = 0;
	fput(&f, "\x16\x03\x01\x50\x00", 5);
	expect_bad(&f, false);
	/* extensions longer than the message */
	static const uint8_t ext[] = { 0xff, 0x01, 0x00, 0x09, 0x00 };
	f.n = 0;
	n = hs_msg(msg, 2, body, sh_body(body, 0x0303, 0x002f, NULL, ext, sizeof(ext)));
	records(&f, 22, 0x0303, msg, n, 16384);
	expect_bad(&f, false);
	/* extension list length beyond the message */
	f.n = 0;
	n = sh_body(body, 0x0303, 0x002f, NULL, ext, sizeof(ext));
	body[n - sizeof(ext) - 1] = 0x40;
	n = hs_msg(msg, 2, body, n);
	records(&f, 22, 0x0303, msg, n, 16384);
	expect_bad(&f, false);
	/* a session id of 200 bytes */
	f.n = 0;
	n = sh_body(body, 0x0303, 0x002f, NULL, NULL, 0);
	body[34] = 200;
	n = hs_msg(msg, 2, body, n);
	records(&f, 22, 0x0303, msg, n, 16384);
	expect_bad(&f, true);
	/* truncated ServerHello: the message says 10 bytes */
	f.n = 0;
	n = hs_msg(msg, 2, body, 10);
	records(&f, 22, 0x0303, msg, n, 16384);
	expect_bad(&f, false);
	/* application data first */
	f.n = 0;
	fput(&f, "\x17\x03\x03\x00\x01\x00", 6);
	expect_bad(&f, false);
	/* a Certificate before any ServerHello */
	f.n = 0;
	n = hs_msg(msg, 11, body, 20);
	records(&f, 22, 0x0303, msg, n, 16384);
	expect_bad(&f, false);
	/* a ServerHello message larger than the keep cap */
	f.n = 0;
	fput(&f, "\x16\x03\x03\x00\x04\x02\x00\x40\x00", 9);
	expect_bad(&f, false);
	/* half an answer, then the close */
	f.n = 0;
	fput(&f, "\x16\x03\x03\x00\x30\x02\x00\x00\x2c\x03", 10);
	expect_bad(&f, true);
	/* nothing, then the close */
	f.n = 0;
	expect_bad(&f, true);
	/* a second ServerHello after the first: the first stands */
	f.n = 0;
	n = hs_msg(msg, 2, body, sh_body(body, 0x0303, 0x0033, NULL, NULL, 0));
	records(&f, 22, 0x0303, msg, n, 16384);
	records(&f, 22, 0x0303, msg, n, 16384);
	struct tls_answer a = read_both(&f, true, true);
	assert_int_equal(a.kind, TLS_ANS_HELLO);
	assert_int_equal(a.suite, 0x0033);
}

static void test_suite_table(void **state)
{
	(void)state;
	/* unique codes, and the classes the questions rely on */
	for (size_t i = 0; i < tls_nsuites; i++)
		for (size_t j = i + 1; j < tls_nsuites; j++)
			assert_int_not_equal(tls_suites[i].code, tls_suites[j].code);
	assert_true(tls_suite_find(0x0005)->flags & TLS_SF_RC4);
	assert_true(tls_suite_find(0x000a)->flags & TLS_SF_3DES);
	assert_true(tls_suite_find(0x0003)->flags & TLS_SF_EXPORT);
	assert_true(tls_suite_find(0x0002)->flags & TLS_SF_NULL);
	assert_true(tls_suite_find(0x0034)->flags & TLS_SF_ANON);
	assert_true(tls_suite_find(0xc02f)->flags & TLS_SF_AEAD);
	assert_null(tls_suite_find(0x5600));
	assert_string_equal(tls_group_find(0x001d)->name, "x25519");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_tls10),
		cmocka_unit_test(test_hello_ssl3_scsv),
		cmocka_unit_test(test_hello_all_suites_padded),
		cmocka_unit_test(test_hello_tls13),
		cmocka_unit_test(test_answer_tls10_rc4),
		cmocka_unit_test(test_answer_alert),
		cmocka_unit_test(test_answer_tls13_and_hrr),
		cmocka_unit_test(test_answer_kx),
		cmocka_unit_test(test_answer_hostile),
		cmocka_unit_test(test_suite_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
