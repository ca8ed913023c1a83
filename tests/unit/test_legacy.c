/*
 * The legacy probes' questions (scanner/legacy.c) against canned servers, socket-free:
 * each hello legacy_hello writes is answered by the fleet's TLS model
 * (tests/fleet/tlsmodel.c), read by the answer reader, and fed back, until the plan
 * ends. The servers are the fleet's canned ones (tlsmodel.c, tm_*); the expected
 * support objects are written by hand from each server's configuration and the
 * documented question order, with the connections they cost.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "legacy.h"
#include "record.h"
#include "tls_hello.h"
#include "tlsmodel.h"

/* Run the plan against s; returns the support object as the record writes it. */
static json_t *run(const struct tm_server *s, const char *first_version, const char *first_cipher,
		   int inject, int budget, char *trace, size_t tracelen)
{
	struct mxs_record r;
	struct legacy_run l;
	static uint8_t hello[TLS_HELLO_MAX], flight[65536];
	uint8_t rnd[32] = { 7 }, key[32] = { 9 };
	enum legacy_q q;
	char *js;
	json_t *rec, *u;
	size_t tl = 0;

	mxs_record_init(&r);
	snprintf(r.ip, sizeof(r.ip), "192.0.2.1");
	r.support = mxs_support_new();
	legacy_start(&l, r.support, first_version, first_cipher, true, budget);
	trace[0] = '\0';
	while ((q = legacy_next(&l)) != LQ_LAST) {
		tl += (size_t)snprintf(trace + tl, tracelen - tl, "%s%s", tl ? " " : "", legacy_q_names[q]);
		r.support->connections++;
		if (q == LQ_INJECT) {
			legacy_injection(&l, inject);
			continue;
		}
		bool want_kx;
		size_t n = legacy_hello(&l, q, "mx.example", rnd, key, hello, sizeof(hello), &want_kx);
		assert_true(n > 0);
		size_t fn = tm_answer(s, hello, n, flight, sizeof(flight));
		struct tls_reader rd;
		tls_reader_init(&rd, want_kx);
		if (!tls_reader_feed(&rd, flight, fn))
			tls_reader_eof(&rd);
		legacy_answer(&l, q, &rd.ans);
	}
	js = mxs_record_to_json(&r, NULL);
	assert_non_null(js);
	rec = json_loads(js, 0, NULL);
	free(js);
	u = json_incref(json_object_get(rec, "support"));
	json_decref(rec);
	mxs_record_free(&r);
	return u;
}

static void expect(const struct tm_server *s, const char *fv, const char *fc, int inject, int budget,
		   const char *want_json, const char *want_trace)
{
	char trace[512];
	json_t *got = run(s, fv, fc, inject, budget, trace, sizeof(trace));
	json_t *want = json_loads(want_json, 0, NULL);

	assert_non_null(want);
	if (!json_equal(got, want)) {
		char *g = json_dumps(got, JSON_SORT_KEYS), *w = json_dumps(want, JSON_SORT_KEYS);
		print_error("got  %s\nwant %s\ntrace %s\n", g, w, trace);
		free(g);
		free(w);
		fail();
	}
	assert_string_equal(trace, want_trace);
	json_decref(got);
	json_decref(want);
}

/* The object with every answer unknown, then the given keys set. */
static char *support(const char *set)
{
	static char buf[2048];
	json_t *o = json_loads("{\"sslv3\":null,\"tls1_0\":null,\"tls1_1\":null,\"tls1_2\":null,"
			       "\"tls1_3\":null,\"rc4\":null,\"3des\":null,\"export\":null,\"null\":null,"
			       "\"anon\":null,\"cbc_only\":null,\"prefer_sslv3\":null,\"prefer_tls1_0\":null,"
			       "\"prefer_tls1_1\":null,\"prefer_tls1_2\":null,\"prefer_tls1_3\":null,"
			       "\"server_order\":null,\"dhe_bits\":null,\"groups\":null,\"fallback_scsv\":null,"
			       "\"secure_renegotiation\":null,\"starttls_injection\":null,\"connections\":0,"
			       "\"budget\":6,\"exhausted\":false}", 0, NULL);
	json_t *s = json_loads(set, 0, NULL);
	char *d;

	assert_non_null(s);
	json_object_update(o, s);
	d = json_dumps(o, 0);
	snprintf(buf, sizeof(buf), "%s", d);
	free(d);
	json_decref(o);
	json_decref(s);
	return buf;
}

/* A modern server: TLS 1.2-1.3, ECDHE AEAD first, its own order, SCSV, renegotiation_info. */

static void test_modern(void **state)
{
	(void)state;
	expect(&tm_modern, "TLSv1.3", "TLS_AES_256_GCM_SHA384", 0, 6, support(
		"{\"sslv3\":false,\"tls1_0\":false,\"tls1_1\":false,\"tls1_3\":true,\"rc4\":false,"
		"\"3des\":false,\"export\":false,\"null\":false,\"anon\":false,\"cbc_only\":false,"
		"\"prefer_tls1_3\":\"TLS_AES_256_GCM_SHA384\",\"dhe_bits\":0,\"fallback_scsv\":true,"
		"\"starttls_injection\":false,\"connections\":6,\"exhausted\":true}"),
		"low weak sslv3 dhe inject fallback_scsv");
	expect(&tm_modern, "TLSv1.3", "TLS_AES_256_GCM_SHA384", 0, 20, support(
		"{\"sslv3\":false,\"tls1_0\":false,\"tls1_1\":false,\"tls1_2\":true,\"tls1_3\":true,"
		"\"rc4\":false,\"3des\":false,\"export\":false,\"null\":false,\"anon\":false,"
		"\"cbc_only\":false,\"prefer_tls1_2\":\"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\","
		"\"prefer_tls1_3\":\"TLS_AES_256_GCM_SHA384\",\"server_order\":true,\"dhe_bits\":0,"
		"\"groups\":[\"x25519\",\"secp256r1\",\"secp384r1\"],\"fallback_scsv\":true,"
		"\"secure_renegotiation\":true,\"starttls_injection\":false,\"connections\":11,"
		"\"budget\":20}"),
		"low weak sslv3 dhe inject fallback_scsv tls1_2 server_order groups groups groups");
}

/* The seeds' provider: SSLv3 and TLS 1.0 only, RC4-SHA first, then 3DES and AES. */

static void test_rc4_tls10(void **state)
{
	(void)state;
	/* OpenSSL 3 cannot talk to it: the first probe told nothing */
	expect(&tm_rc4_tls10, NULL, NULL, -1, 6, support(
		"{\"sslv3\":true,\"tls1_0\":true,\"tls1_1\":false,\"tls1_2\":false,\"tls1_3\":false,"
		"\"rc4\":true,\"3des\":true,\"export\":false,\"null\":false,\"anon\":false,"
		"\"cbc_only\":true,\"prefer_sslv3\":\"TLS_RSA_WITH_RC4_128_SHA\","
		"\"prefer_tls1_0\":\"TLS_RSA_WITH_RC4_128_SHA\",\"secure_renegotiation\":false,"
		"\"connections\":6,\"exhausted\":true}"),
		"low weak weak sslv3 tls1_2 tls1_3");
}

/* SSLv3 only with an export suite, choosing by the client's order. */

static void test_ssl3_export(void **state)
{
	(void)state;
	expect(&tm_ssl3_export, NULL, NULL, -1, 6, support(
		"{\"sslv3\":true,\"tls1_0\":false,\"tls1_1\":false,\"tls1_2\":false,\"tls1_3\":false,"
		"\"rc4\":true,\"3des\":false,\"export\":true,\"null\":false,\"anon\":false,"
		"\"cbc_only\":true,\"prefer_sslv3\":\"TLS_RSA_WITH_RC4_128_MD5\",\"dhe_bits\":0,"
		"\"secure_renegotiation\":false,\"connections\":6,\"exhausted\":true}"),
		"low weak weak tls1_2 tls1_3 dhe");
}

/*
 * TLS 1.0 only, and closes on any hello with a higher client_version: those versions
 * count as refused once it has answered a hello (no client gets them from it).
 */

static void test_version_intolerant(void **state)
{
	(void)state;
	expect(&tm_intolerant, NULL, NULL, -1, 6, support(
		"{\"sslv3\":false,\"tls1_0\":true,\"tls1_1\":false,\"tls1_2\":false,\"rc4\":false,"
		"\"3des\":true,\"export\":false,"
		"\"null\":false,\"anon\":false,\"prefer_tls1_0\":\"TLS_RSA_WITH_AES_128_CBC_SHA\","
		"\"secure_renegotiation\":true,\"connections\":6,\"exhausted\":true}"),
		"low tls1_0 weak weak sslv3 tls1_2");
}

/*
 * Closes on any hello offering a suite it does not know (after checking the version, so
 * hellos for versions it lacks still get protocol_version): only those are learnt.
 */

static void test_close_unknown_suite(void **state)
{
	(void)state;
	expect(&tm_close_unknown, NULL, NULL, -1, 6, support("{\"sslv3\":false,\"tls1_3\":false,"
					       "\"connections\":6,\"exhausted\":true}"),
	       "low tls1_0 weak sslv3 tls1_2 tls1_3");
}

/* TLS 1.2 with DHE-1024 preferred, odd extensions in its hello, injection-vulnerable. */

static void test_dhe_odd_extensions(void **state)
{
	(void)state;
	/* the first probe negotiated TLS 1.2: 1.3 is refused for free */
	expect(&tm_dhe_odd, "TLSv1.2", "TLS_DHE_RSA_WITH_AES_128_CBC_SHA", 1, 8, support(
		"{\"sslv3\":false,\"tls1_0\":true,\"tls1_1\":true,\"tls1_2\":true,\"tls1_3\":false,"
		"\"rc4\":false,\"3des\":false,\"export\":false,\"null\":false,\"anon\":false,"
		"\"prefer_tls1_0\":\"TLS_DHE_RSA_WITH_AES_128_CBC_SHA\","
		"\"prefer_tls1_1\":\"TLS_DHE_RSA_WITH_AES_128_CBC_SHA\",\"dhe_bits\":1024,"
		"\"server_order\":true,\"cbc_only\":false,\"fallback_scsv\":false,\"secure_renegotiation\":true,\"starttls_injection\":true,"
		"\"connections\":8,\"budget\":8,\"exhausted\":true}"),
		"low weak sslv3 inject tls1_0 fallback_scsv server_order cbc_only");
}

static void test_failed_probe_stops(void **state)
{
	struct mxs_support_rec *u = mxs_support_new();
	struct legacy_run l;

	(void)state;
	legacy_start(&l, u, "TLSv1.2", NULL, true, 6);
	assert_int_equal(legacy_next(&l), LQ_LOW);
	u->connections++;
	legacy_failed(&l, LQ_LOW);
	assert_int_equal(legacy_next(&l), LQ_LAST);
	assert_true(u->exhausted);
	mxs_support_free(u);
}

/* What the first probe negotiated answers for free: its version is the highest, and an
 * AEAD suite there means not CBC-only. */
static void test_first_probe_facts(void **state)
{
	struct mxs_support_rec *u = mxs_support_new();
	struct legacy_run l;

	(void)state;
	legacy_start(&l, u, "TLSv1.2", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", true, 6);
	assert_int_equal(u->version[MXS_SV_TLS12], 1);
	assert_int_equal(u->version[MXS_SV_TLS13], 0);
	assert_int_equal(u->version[MXS_SV_TLS11], -1);
	assert_int_equal(u->cbc_only, 0);
	assert_null(u->prefer[MXS_SV_TLS12]);
	mxs_support_free(u);
	u = mxs_support_new();
	legacy_start(&l, u, "TLSv1.2", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", true, 6);
	assert_int_equal(u->cbc_only, -1);
	mxs_support_free(u);
}

/* Bytes that are not TLS, twice, before any TLS answer: no more questions. A close is
 * not counted (a server intolerant of a version closes), nor anything after an alert. */
static void test_not_tls_stops(void **state)
{
	struct mxs_support_rec *u = mxs_support_new();
	struct legacy_run l;
	struct tls_answer junk = { .kind = TLS_ANS_BAD, .why = "not a TLS record" };
	struct tls_answer closed = { .kind = TLS_ANS_BAD, .why = "closed", .closed = true };
	struct tls_answer alert = { .kind = TLS_ANS_ALERT, .alert = 40 };
	enum legacy_q q;

	(void)state;
	legacy_start(&l, u, NULL, NULL, true, 6);
	q = legacy_next(&l);
	u->connections++;
	legacy_answer(&l, q, &closed);
	q = legacy_next(&l);
	u->connections++;
	legacy_answer(&l, q, &junk);
	q = legacy_next(&l);
	assert_int_not_equal(q, LQ_LAST);
	u->connections++;
	legacy_answer(&l, q, &junk);
	assert_int_equal(legacy_next(&l), LQ_LAST);
	assert_true(u->exhausted);
	assert_int_equal(u->connections, 3);
	mxs_support_free(u);

	/* after an alert, junk is only an unclear answer */
	u = mxs_support_new();
	legacy_start(&l, u, NULL, NULL, true, 6);
	for (int i = 0; i < 6; i++) {
		q = legacy_next(&l);
		assert_int_not_equal(q, LQ_LAST);
		u->connections++;
		legacy_answer(&l, q, i == 0 ? &alert : &junk);
	}
	assert_int_equal(legacy_next(&l), LQ_LAST);
	assert_int_equal(u->connections, 6);
	mxs_support_free(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_modern),
		cmocka_unit_test(test_rc4_tls10),
		cmocka_unit_test(test_ssl3_export),
		cmocka_unit_test(test_version_intolerant),
		cmocka_unit_test(test_close_unknown_suite),
		cmocka_unit_test(test_dhe_odd_extensions),
		cmocka_unit_test(test_failed_probe_stops),
		cmocka_unit_test(test_not_tls_stops),
		cmocka_unit_test(test_first_probe_facts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
