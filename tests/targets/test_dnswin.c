/* The DNS congestion window (targets/dnswin.c): growth, cuts, old news, dead servers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dnswin.h"

/* n answers at time t while the window is full */
static void answers(struct mxs_dnswin *w, int64_t t, int n)
{
	for (int i = 0; i < n; i++)
		mxs_dnswin_answer(w, t, mxs_dnswin_size(w));
}

static void test_slow_start_capped_per_period(void **state)
{
	struct mxs_dnswin w;

	mxs_dnswin_init(&w, 64, 8, 4096, 1000, 0);
	assert_int_equal(mxs_dnswin_size(&w), 64);
	/* a thousand answers in one period: at most doubled, the losses it may cause are
	 * not known before a timeout has passed */
	answers(&w, 10, 1000);
	assert_int_equal(mxs_dnswin_size(&w), 128);
	answers(&w, 1000, 1000);
	assert_int_equal(mxs_dnswin_size(&w), 256);
	answers(&w, 2500, 1000);
	assert_int_equal(mxs_dnswin_size(&w), 512);
	/* never past max */
	for (int64_t t = 3000; t < 20000; t += 1000)
		answers(&w, t, 5000);
	assert_int_equal(mxs_dnswin_size(&w), 4096);
}

static void test_no_growth_when_not_window_limited(void **state)
{
	struct mxs_dnswin w;

	mxs_dnswin_init(&w, 64, 8, 4096, 1000, 0);
	for (int i = 0; i < 1000; i++)
		mxs_dnswin_answer(&w, 10, 10); /* 10 in flight of 64 allowed */
	assert_int_equal(mxs_dnswin_size(&w), 64);
}

static void test_cut_when_timeouts_rise(void **state)
{
	struct mxs_dnswin w;

	mxs_dnswin_init(&w, 64, 8, 4096, 1000, 0);
	answers(&w, 0, 64); /* 128 */
	answers(&w, 1000, 100);
	assert_int_equal(mxs_dnswin_size(&w), 228);
	/* one timeout is no trend */
	assert_int_equal(mxs_dnswin_timeout(&w, 1500, 500, 0), 0);
	/* the second: 2 of about 140 recent replies, over 1 % */
	assert_int_equal(mxs_dnswin_timeout(&w, 1500, 500, 0), 1);
	assert_int_equal(mxs_dnswin_size(&w), 114);
	assert_int_equal(w.cuts, 1);
	/* queries sent before the cut were lost to the bigger window: not cut again */
	for (int i = 0; i < 100; i++)
		assert_int_equal(mxs_dnswin_timeout(&w, 1600, 1400, 0), 0);
	assert_int_equal(mxs_dnswin_size(&w), 114);
	/* after the cut: congestion avoidance, at most a quarter more per period */
	answers(&w, 1700, 5000);
	assert_int_equal(mxs_dnswin_size(&w), 142);
	answers(&w, 2600, 100000);
	assert_int_equal(mxs_dnswin_size(&w), 178);
	/* losses of queries sent after the cut cut again, never under min */
	for (int64_t t = 3000; t < 3030; t++)
		for (int i = 0; i < 2000; i++)
			mxs_dnswin_timeout(&w, t, t, 0);
	assert_int_equal(mxs_dnswin_size(&w), 8);
}

static void test_rare_timeouts_do_not_cut(void **state)
{
	struct mxs_dnswin w;

	mxs_dnswin_init(&w, 256, 8, 4096, 1000, 0);
	/* 0.5 % of queries time out (a few slow or dead servers): the window holds */
	for (int k = 0; k < 50; k++) {
		answers(&w, k * 100, 200);
		mxs_dnswin_timeout(&w, k * 100 + 50, k * 100 - 3000, 0);
	}
	assert_int_equal(w.cuts, 0);
}

static void test_dead_servers_raise_the_threshold(void **state)
{
	struct mxs_dnswin w, v;

	/* 4 % of the queries time out on every try: servers that never answer */
	mxs_dnswin_init(&w, 512, 8, 4096, 1000, 0);
	answers(&w, 0, 1000);
	for (int i = 0; i < 40; i++)
		mxs_dnswin_timeout(&w, 100, 50, 1);
	assert_true(mxs_dnswin_threshold(&w) > 0.07);
	assert_int_equal(w.cuts, 0);
	/* the same timeouts that a retry then answers: the resolver dropped them */
	mxs_dnswin_init(&v, 512, 8, 4096, 1000, 0);
	answers(&v, 0, 1000);
	for (int i = 0; i < 40; i++)
		mxs_dnswin_timeout(&v, 100, 50, 0);
	assert_true(mxs_dnswin_threshold(&v) < 0.011);
	assert_true(v.cuts >= 1);
	/* but a resolver dropping half of everything is cut even then (the 10 % cap) */
	answers(&w, 200, 100);
	for (int i = 0; i < 600; i++)
		mxs_dnswin_timeout(&w, 300, 250, 1);
	assert_true(w.cuts >= 1);
}

/*
 * A resolver that answers a window of queries every rtt ms, but at most cap per ms:
 * ms by ms, the answers due are fed to the window, which is always full.
 */
static unsigned simulate(struct mxs_dnswin *w, double cap, double rtt, int ms, unsigned *lo,
			 unsigned *hi)
{
	double due = 0;

	*lo = ~0u;
	*hi = 0;
	for (int64_t t = 0; t < ms; t++) {
		double per_ms = mxs_dnswin_size(w) / rtt;
		due += per_ms < cap ? per_ms : cap;
		for (; due >= 1; due -= 1)
			mxs_dnswin_answer(w, t, mxs_dnswin_size(w));
		if (t > ms / 2) {
			unsigned n = mxs_dnswin_size(w);
			*lo = n < *lo ? n : *lo;
			*hi = n > *hi ? n : *hi;
		}
	}
	return mxs_dnswin_size(w);
}

static void test_full_resolver_is_not_queued_into(void **state)
{
	struct mxs_dnswin w;
	unsigned lo, hi;

	/* 5,000 answers/s at 10 ms: 50 queries in flight are all it takes; more only queue.
	 * The window stays near the first size that gave the full rate. */
	mxs_dnswin_init(&w, 64, 8, 4096, 1000, 0);
	simulate(&w, 5.0, 10.0, 20000, &lo, &hi);
	assert_true(w.trims >= 1);
	assert_true(lo >= 64 && hi <= 128);
	assert_int_equal(w.cuts, 0);
}

static void test_rate_that_grows_keeps_growing(void **state)
{
	struct mxs_dnswin w;
	unsigned lo, hi;

	/* a resolver far from full (100 ms recursion, 1M answers/s): the rate follows the
	 * window all the way up */
	mxs_dnswin_init(&w, 64, 8, 4096, 1000, 0);
	assert_int_equal(simulate(&w, 1000.0, 100.0, 20000, &lo, &hi), 4096);
	assert_int_equal(w.trims, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slow_start_capped_per_period),
		cmocka_unit_test(test_no_growth_when_not_window_limited),
		cmocka_unit_test(test_cut_when_timeouts_rise),
		cmocka_unit_test(test_rare_timeouts_do_not_cut),
		cmocka_unit_test(test_dead_servers_raise_the_threshold),
		cmocka_unit_test(test_full_resolver_is_not_queued_into),
		cmocka_unit_test(test_rate_that_grows_keeps_growing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
