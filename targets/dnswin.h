/*
 * The congestion window of DNS queries in flight to the resolver, AIMD as TCP does it:
 * it grows on answers (doubling in slow start, then by a quarter) and is halved when
 * timeouts rise, so a local resolver that drops queries under load (unbound's socket
 * buffer and request list) is asked only as fast as it answers.
 *
 * DNS differs from TCP in one way that shapes the rules: a dropped query is known only
 * when its timeout expires, seconds later, not one round trip later. So
 * - growth is capped per period (one first-try timeout): at most x2 in slow start and
 *   x1.25 after, so the window cannot outrun the news of the losses it causes;
 * - a timeout cuts the window only if its query was sent after the last cut (older
 *   losses were caused by the window already cut), and only when timeouts are more than
 *   a threshold of the recent answers: twice the rate of queries that fail for good
 *   (servers that never answer), at least 1 % and at most 10 %, so dead servers in the
 *   list do not shrink the window to nothing.
 * - and since a resolver that queues more than it can answer gets slower before it drops
 *   (unbound's rate falls by half between 100 and 500 queries outstanding), the answer
 *   rate is measured while the window is what limits it: when the window has grown by
 *   half without 10 % more answers per second, it goes back to the smallest size that
 *   gave the best rate, and slow start ends there.
 * Pure arithmetic on caller-supplied times: unit-tested without a network.
 */
#ifndef MXS_DNSWIN_H
#define MXS_DNSWIN_H

#include <stdint.h>

struct mxs_dnswin {
	double cwnd;          /* queries allowed in flight */
	double ssthresh;      /* slow start below it */
	double period_base;   /* cwnd when the period started: the growth cap's base */
	int64_t period_start;
	int64_t cut_at;       /* time of the last cut; INT64_MIN before any */
	double answers;       /* decayed counts (halved every period) */
	double losses;        /* timeouts of queries sent since the last cut */
	double failures;      /* queries that timed out on their last try */
	unsigned min, max;
	int period_ms;
	unsigned long cuts;   /* times the window was cut */
	/* answer rate while window-limited, per interval */
	int interval_ms;
	int64_t rate_start;
	double rate_answers;
	int rate_limited;     /* the window limited the sending in this interval */
	double rate_cwnd;     /* smallest window in this interval */
	double best_rate;     /* answers per ms; 0: none yet */
	double best_cwnd;     /* the window that gave it */
	int stale;            /* samples since, from a window RATE_PROBE times as big */
	unsigned long trims;  /* times the window went back to best_cwnd */
};

/* initial, min, max: window sizes (min >= 1); period_ms: the first-try timeout. */
void mxs_dnswin_init(struct mxs_dnswin *w, unsigned initial, unsigned min, unsigned max,
		     int period_ms, int64_t now_ms);

/* An answer (any rcode) came. in_flight: queries outstanding before it; the window only
 * grows while it is what limits the sending (in_flight at least half of it). */
void mxs_dnswin_answer(struct mxs_dnswin *w, int64_t now_ms, unsigned in_flight);

/*
 * A query sent at sent_ms timed out; final: it has no tries left. Returns 1 when this
 * cut the window, else 0.
 */
int mxs_dnswin_timeout(struct mxs_dnswin *w, int64_t now_ms, int64_t sent_ms, int final);

/* The current window, in queries (>= min). */
unsigned mxs_dnswin_size(const struct mxs_dnswin *w);

/* The timeout share above which the window is cut, in [0.01, 0.10]. */
double mxs_dnswin_threshold(const struct mxs_dnswin *w);

#endif
