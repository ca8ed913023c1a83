/*
 * Unit tests of the simulated network: fault draws and their ground truth, share
 * parsing, and the in-flight table of the UDP forwarder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <jansson.h>
#include <netinet/in.h>

#include "addr.h"
#include "behaviour.h"
#include "fault.h"
#include "truth.h"
#include "udpmap.h"

static void test_share_parse(void **state)
{
	static const struct {
		const char *s;
		int ok;
		uint32_t ppm;
	} cases[] = {
		{ "0", 1, 0 }, { "1", 1, FB_PPM }, { "0.05", 1, 50000 }, { ".5", 1, 500000 },
		{ "0.000001", 1, 1 }, { "0.0000019", 1, 1 }, { "1.0", 1, FB_PPM },
		{ "1.5", 0, 0 }, { "2", 0, 0 }, { "", 0, 0 }, { ".", 0, 0 }, { "-0.1", 0, 0 },
		{ "0.1x", 0, 0 }, { "01", 0, 0 }, { "5%", 0, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t ppm = 12345;
		int rc = fb_share_parse(cases[i].s, &ppm);
		assert_int_equal(rc == 0, cases[i].ok);
		if (cases[i].ok)
			assert_int_equal(ppm, cases[i].ppm);
	}
}

/* The last phase a fault may strike in follows what each behaviour still answers. */
static void test_last_phase(void **state)
{
	assert_int_equal(fb_fault_last_phase(&fb_behaviours[FB_STARTTLS_ECDSA]), FB_PHASE_HANDSHAKE);
	assert_int_equal(fb_fault_last_phase(&fb_behaviours[FB_HANDSHAKE_GARBAGE]), FB_PHASE_HANDSHAKE);
	assert_int_equal(fb_fault_last_phase(&fb_behaviours[FB_STARTTLS_454]), FB_PHASE_STARTTLS);
	assert_int_equal(fb_fault_last_phase(&fb_behaviours[FB_STARTTLS_ECHO]), FB_PHASE_STARTTLS);
	assert_int_equal(fb_fault_last_phase(&fb_behaviours[FB_NO_STARTTLS]), FB_PHASE_EHLO);
	assert_int_equal(fb_fault_last_phase(&fb_behaviours[FB_EHLO_REJECT]), FB_PHASE_EHLO);
	assert_int_equal(fb_fault_last_phase(&fb_behaviours[FB_RESET_AFTER_EHLO]), FB_PHASE_EHLO);
	assert_int_equal(fb_fault_last_phase(&fb_behaviours[FB_CLOSE_AFTER_GREETING]), FB_PHASE_GREETING);
	assert_int_equal(fb_fault_last_phase(&fb_behaviours[FB_TARPIT]), FB_PHASE_GREETING);
	assert_int_equal(fb_fault_last_phase(&fb_behaviours[FB_GREETING_554]), FB_PHASE_GREETING);
	assert_int_equal(fb_fault_last_phase(&fb_behaviours[FB_TRICKLE]), FB_PHASE_GREETING);
}

/* Shares are honoured, draws are deterministic and never strike past the last phase. */
static void test_fault_pick(void **state)
{
	struct fb_fault_shares shares = { .stall_ppm = 100000, .drop_ppm = 50000 };
	unsigned n = 1u << 16, kinds[FB_FAULT_LAST] = { 0 }, phases[FB_PHASE_LAST] = { 0 };

	for (uint32_t k = 0; k < n; k++) {
		uint32_t key = 0x7f000000u | k;
		const struct fb_behaviour *b = &fb_behaviours[fb_pick(key, 7)];
		struct fb_fault f = fb_fault_pick(key, 7, &shares, b), again;

		again = fb_fault_pick(key, 7, &shares, b);
		assert_int_equal(f.kind, again.kind);
		assert_int_equal(f.phase, again.phase);
		kinds[f.kind]++;
		if (f.kind == FB_FAULT_NONE) {
			assert_int_equal(f.phase, FB_PHASE_NONE);
			continue;
		}
		assert_in_range(f.phase, FB_PHASE_GREETING, fb_fault_last_phase(b));
		phases[f.phase]++;
	}
	assert_in_range(kinds[FB_FAULT_STALL], n * 9 / 100, n * 11 / 100);
	assert_in_range(kinds[FB_FAULT_DROP], n * 4 / 100, n * 6 / 100);
	for (int p = FB_PHASE_GREETING; p < FB_PHASE_LAST; p++)
		assert_true(phases[p] > 0);
	/* No shares, no faults. */
	for (uint32_t k = 0; k < 1000; k++) {
		assert_int_equal(fb_fault_pick(k, 7, NULL, &fb_behaviours[0]).kind, FB_FAULT_NONE);
		assert_int_equal(fb_fault_pick(k, 7, &(struct fb_fault_shares){ 0, 0 },
						&fb_behaviours[0]).kind, FB_FAULT_NONE);
	}
	/* Every address: all stall. */
	shares = (struct fb_fault_shares){ .stall_ppm = FB_PPM };
	for (uint32_t k = 0; k < 1000; k++)
		assert_int_equal(fb_fault_pick(k, 7, &shares, &fb_behaviours[0]).kind, FB_FAULT_STALL);
}

static void test_fault_outcomes(void **state)
{
	static const struct {
		enum fb_fault_kind kind;
		enum fb_phase phase;
		const char *outcome;
	} cases[] = {
		{ FB_FAULT_STALL, FB_PHASE_GREETING, "greeting-timeout" },
		{ FB_FAULT_STALL, FB_PHASE_EHLO, "ehlo-timeout" },
		{ FB_FAULT_STALL, FB_PHASE_STARTTLS, "starttls-timeout" },
		{ FB_FAULT_STALL, FB_PHASE_HANDSHAKE, "handshake-timeout" },
		{ FB_FAULT_DROP, FB_PHASE_GREETING, "peer-closed" },
		{ FB_FAULT_DROP, FB_PHASE_EHLO, "peer-closed" },
		{ FB_FAULT_DROP, FB_PHASE_STARTTLS, "peer-closed" },
		{ FB_FAULT_DROP, FB_PHASE_HANDSHAKE, "handshake-error" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fb_fault f = { cases[i].kind, cases[i].phase };
		assert_string_equal(fb_outcome_names[fb_fault_outcome(f)], cases[i].outcome);
	}
}

/* The first address of 127.0.0.0/16 (seed 7) with this fault kind and phase, or NULL. */
static json_t *faulted_truth(const struct fb_fault_shares *shares, const char *fault,
			     const char *phase, const char *behaviour)
{
	struct fleet_range r;
	const char *err;

	assert_int_equal(fleet_range_parse("127.0.0.0/16", &r, &err), 0);
	for (uint64_t i = 0; i < r.count; i++) {
		struct fleet_addr a;
		json_t *t;

		fleet_range_nth(&r, i, &a);
		t = fleet_truth(&a, 7, shares);
		assert_non_null(t);
		if (json_object_get(t, "fault") != NULL &&
		    strcmp(json_string_value(json_object_get(t, "fault")), fault) == 0 &&
		    strcmp(json_string_value(json_object_get(t, "phase")), phase) == 0 &&
		    strcmp(json_string_value(json_object_get(t, "behaviour")), behaviour) == 0)
			return t;
		json_decref(t);
	}
	return NULL;
}

static int is_null(json_t *t, const char *key)
{
	return json_is_null(json_object_get(t, key));
}

/* A faulted address records what came before the fault and nothing after. */
static void test_fault_truth(void **state)
{
	struct fb_fault_shares shares = { .stall_ppm = 250000, .drop_ppm = 250000 };
	json_t *t;

	t = faulted_truth(&shares, "stall", "greeting", "starttls-ecdsa");
	assert_non_null(t);
	assert_string_equal(json_string_value(json_object_get(t, "outcome")), "greeting-timeout");
	assert_true(is_null(t, "greeting_code") && is_null(t, "greeting_lines"));
	assert_true(is_null(t, "ehlo_extensions") && is_null(t, "tls_version"));
	json_decref(t);

	t = faulted_truth(&shares, "drop", "ehlo", "starttls-rsa");
	assert_non_null(t);
	assert_string_equal(json_string_value(json_object_get(t, "outcome")), "peer-closed");
	assert_int_equal(json_integer_value(json_object_get(t, "greeting_code")), 220);
	assert_true(is_null(t, "ehlo_verb") && is_null(t, "starttls_code"));
	json_decref(t);

	t = faulted_truth(&shares, "stall", "starttls", "starttls-ecdsa");
	assert_non_null(t);
	assert_string_equal(json_string_value(json_object_get(t, "outcome")), "starttls-timeout");
	assert_int_equal(json_array_size(json_object_get(t, "ehlo_extensions")), 5);
	assert_true(is_null(t, "starttls_code") && is_null(t, "tls_version"));
	json_decref(t);

	t = faulted_truth(&shares, "drop", "handshake", "starttls-ecdsa");
	assert_non_null(t);
	assert_string_equal(json_string_value(json_object_get(t, "outcome")), "handshake-error");
	assert_int_equal(json_integer_value(json_object_get(t, "starttls_code")), 220);
	assert_true(is_null(t, "tls_version") && is_null(t, "ehlo_tls_extensions"));
	json_decref(t);

	t = faulted_truth(&shares, "stall", "handshake", "starttls-ecdsa");
	assert_non_null(t);
	assert_string_equal(json_string_value(json_object_get(t, "outcome")), "handshake-timeout");
	json_decref(t);
}

/* Without shares the truth is exactly what it was: no "fault" key anywhere. */
static void test_no_fault_truth_unchanged(void **state)
{
	struct fleet_range r;
	const char *err;

	assert_int_equal(fleet_range_parse("127.0.3.0/24", &r, &err), 0);
	for (uint64_t i = 0; i < r.count; i++) {
		struct fleet_addr a;
		json_t *t1, *t2;

		fleet_range_nth(&r, i, &a);
		t1 = fleet_truth(&a, 7, NULL);
		t2 = fleet_truth(&a, 7, &(struct fb_fault_shares){ 0, 0 });
		assert_true(json_equal(t1, t2));
		assert_null(json_object_get(t1, "fault"));
		json_decref(t1);
		json_decref(t2);
	}
}

static struct sockaddr_in client(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };

	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	return sin;
}

/* Same query id from two clients: two upstream ids, each answer to its own client. */
static void test_udpmap_routes_by_source_and_id(void **state)
{
	struct udpmap *m = udpmap_new(1000);
	struct sockaddr_in a = client(1111), b = client(2222);
	struct udpmap_client who;
	int ia, ib;

	assert_non_null(m);
	ia = udpmap_add(m, (struct sockaddr *)&a, sizeof(a), 0x1234, 0);
	ib = udpmap_add(m, (struct sockaddr *)&b, sizeof(b), 0x1234, 0);
	assert_true(ia >= 0 && ib >= 0 && ia != ib);
	assert_int_equal(udpmap_in_flight(m), 2);
	assert_int_equal(udpmap_take(m, (uint16_t)ib, &who), 0);
	assert_int_equal(who.qid, 0x1234);
	assert_int_equal(ntohs(who.addr.in.sin_port), 2222);
	assert_int_equal(who.len, sizeof(b));
	assert_int_equal(udpmap_take(m, (uint16_t)ib, &who), -1); /* a duplicate answer */
	assert_int_equal(udpmap_take(m, (uint16_t)ia, &who), 0);
	assert_int_equal(ntohs(who.addr.in.sin_port), 1111);
	assert_int_equal(udpmap_in_flight(m), 0);
	udpmap_free(m);
}

/* Every id in use: the next query waits for the TTL, then reclaims the oldest. */
static void test_udpmap_full_and_expiry(void **state)
{
	struct udpmap *m = udpmap_new(1000);
	struct sockaddr_in a = client(1111);

	assert_non_null(m);
	for (unsigned i = 0; i < UDPMAP_SLOTS; i++)
		assert_int_equal(udpmap_add(m, (struct sockaddr *)&a, sizeof(a), (uint16_t)i, 0), (int)i);
	assert_int_equal(udpmap_add(m, (struct sockaddr *)&a, sizeof(a), 1, 999), -1);
	assert_int_equal(udpmap_add(m, (struct sockaddr *)&a, sizeof(a), 1, 1000), 0);
	assert_int_equal(udpmap_expired(m), 1);
	assert_int_equal(udpmap_in_flight(m), UDPMAP_SLOTS);
	udpmap_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_share_parse),
		cmocka_unit_test(test_last_phase),
		cmocka_unit_test(test_fault_pick),
		cmocka_unit_test(test_fault_outcomes),
		cmocka_unit_test(test_fault_truth),
		cmocka_unit_test(test_no_fault_truth_unchanged),
		cmocka_unit_test(test_udpmap_routes_by_source_and_id),
		cmocka_unit_test(test_udpmap_full_and_expiry),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
