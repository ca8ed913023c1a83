#include "dnswin.h"

#include <string.h>

#define SS_GROWTH 2.0     /* most growth per period in slow start */
#define CA_GROWTH 1.25    /* ... and in congestion avoidance */
#define MIN_LOSSES 2.0    /* fewer timeouts than this never cut: one is no trend */
#define RATE_GAIN 1.10    /* a rate this much better is a new best */
#define RATE_PROBE 1.5    /* a window this much above the best one without a gain: trim */

void mxs_dnswin_init(struct mxs_dnswin *w, unsigned initial, unsigned min, unsigned max,
		     int period_ms, int64_t now_ms)
{
	memset(w, 0, sizeof(*w));
	w->min = min ? min : 1;
	w->max = max < w->min ? w->min : max;
	if (initial < w->min)
		initial = w->min;
	if (initial > w->max)
		initial = w->max;
	w->cwnd = initial;
	w->ssthresh = w->max;
	w->period_base = w->cwnd;
	w->period_start = now_ms;
	w->cut_at = INT64_MIN;
	w->period_ms = period_ms > 0 ? period_ms : 1000;
	w->interval_ms = w->period_ms / 8 < 50 ? 50 : w->period_ms / 8 > 500 ? 500 : w->period_ms / 8;
	w->rate_start = now_ms;
	w->rate_cwnd = w->cwnd;
}

/* One interval's answer rate, measured while the window limited the sending. */
static void rate_sample(struct mxs_dnswin *w, double rate, double cwnd)
{
	if (rate > w->best_rate * RATE_GAIN) {
		w->best_rate = rate;
		w->best_cwnd = cwnd;
		w->stale = 0;
		return;
	}
	/* the answers lag the window by a round trip: two intervals of a window grown
	 * by half throughout, and no gain, before it is called full */
	if (cwnd < w->best_cwnd * RATE_PROBE || ++w->stale < 2)
		return;
	/* grown by half for nothing: the resolver is full, the rest only queues */
	w->stale = 0;
	w->cwnd = w->best_cwnd < w->min ? w->min : w->best_cwnd;
	w->ssthresh = w->cwnd;
	w->period_base = w->cwnd;
	/* forget a little, so that a resolver that got faster is found again */
	w->best_rate *= 0.95;
	w->trims++;
}

static void rate_tick(struct mxs_dnswin *w, int64_t now_ms)
{
	int64_t dt = now_ms - w->rate_start;

	if (dt < w->interval_ms)
		return;
	if (w->rate_limited && dt < 4LL * w->interval_ms)
		rate_sample(w, w->rate_answers / (double)dt, w->rate_cwnd);
	w->rate_start = now_ms;
	w->rate_answers = 0;
	w->rate_limited = 0;
	w->rate_cwnd = w->cwnd;
}

/* Start a new period when one has passed: the growth cap moves up and old counts fade. */
static void roll(struct mxs_dnswin *w, int64_t now_ms)
{
	while (now_ms - w->period_start >= w->period_ms) {
		w->period_start += w->period_ms;
		w->period_base = w->cwnd;
		w->answers /= 2;
		w->losses /= 2;
		w->failures /= 2;
		if (now_ms - w->period_start >= 64LL * w->period_ms) {
			/* idle for long: everything has faded anyway */
			w->period_start = now_ms;
			w->answers = w->losses = w->failures = 0;
		}
	}
}

void mxs_dnswin_answer(struct mxs_dnswin *w, int64_t now_ms, unsigned in_flight)
{
	roll(w, now_ms);
	rate_tick(w, now_ms);
	w->answers += 1;
	w->rate_answers += 1;
	if (w->cwnd < w->rate_cwnd)
		w->rate_cwnd = w->cwnd;
	if (2.0 * in_flight < w->cwnd)
		return; /* not limited by the window: growing it would prove nothing */
	w->rate_limited = 1;
	double cap = w->period_base * (w->cwnd < w->ssthresh ? SS_GROWTH : CA_GROWTH);
	w->cwnd += w->cwnd < w->ssthresh ? 1.0 : 1.0 / w->cwnd;
	if (w->cwnd > cap)
		w->cwnd = cap;
	if (w->cwnd > w->max)
		w->cwnd = w->max;
}

double mxs_dnswin_threshold(const struct mxs_dnswin *w)
{
	double seen = w->answers + w->failures;
	double t = seen > 0 ? 2.0 * w->failures / seen : 0.0;

	return t < 0.01 ? 0.01 : t > 0.10 ? 0.10 : t;
}

int mxs_dnswin_timeout(struct mxs_dnswin *w, int64_t now_ms, int64_t sent_ms, int final)
{
	roll(w, now_ms);
	if (final)
		w->failures += 1;
	if (sent_ms < w->cut_at)
		return 0; /* sent before the last cut: that cut was the answer to it */
	w->losses += 1;
	if (w->losses < MIN_LOSSES || w->losses < mxs_dnswin_threshold(w) * (w->answers + w->losses))
		return 0;
	w->ssthresh = w->cwnd / 2 < w->min ? w->min : w->cwnd / 2;
	w->cwnd = w->ssthresh;
	w->period_base = w->cwnd;
	w->period_start = now_ms;
	w->cut_at = now_ms;
	w->losses = 0;
	w->cuts++;
	return 1;
}

unsigned mxs_dnswin_size(const struct mxs_dnswin *w)
{
	unsigned n = (unsigned)w->cwnd;

	return n < w->min ? w->min : n;
}
