/*
 * c-ares 1.18 channels driven by a libevent loop: c-ares reports its sockets through
 * ARES_OPT_SOCK_STATE_CB, each gets one persistent event that calls ares_process_fd, and
 * one timer per channel processes timeouts. No polling, no ares_fds/ares_getsock. The
 * sockets are created and read through udpbatch.h: answers read with recvmmsg, queries
 * sent with sendmmsg once per loop turn.
 *
 * Queries go out through a congestion window (dnswin.h) so that the resolver is never
 * asked faster than it answers; retries are ours, not c-ares' (each channel makes one
 * try per server), so that a retry waits for room like any query and counts in the
 * window. One channel per try level: c-ares 1.18 has no per-query timeout.
 */
#ifndef MXS_ARES_LOOP_H
#define MXS_ARES_LOOP_H

#include <ares.h>
#include <stddef.h>

struct event_base;
struct mxs_ares;

struct mxs_ares_opts {
	const char *const *servers; /* "ip", "ip:port", "[v6]:port"; none: /etc/resolv.conf */
	size_t nservers;
	int timeout_ms;             /* first try; doubled for each retry (backoff) */
	int tries;                  /* tries per query, >= 1 */
	unsigned max_window;        /* most queries in flight; 0: 4096 */
};

/* The congestion window and what it did, for status lines and summaries. */
struct mxs_ares_stats {
	unsigned window;            /* queries allowed in flight now */
	unsigned in_flight;         /* sent, not yet answered or timed out */
	unsigned waiting;           /* queued for room in the window (retries included) */
	unsigned long sent;         /* queries handed to c-ares, retries included */
	unsigned long retries;      /* re-sends after a timeout */
	unsigned long timeouts;     /* tries that timed out */
	unsigned long cuts;         /* times the window was halved */
};

/* Returns NULL with a message in err on failure. */
struct mxs_ares *mxs_ares_new(struct event_base *base, const struct mxs_ares_opts *o,
			      char *err, size_t errlen);

/*
 * Destroy the channel: every query still pending gets its callback with
 * ARES_EDESTRUCTION (callers must treat that as "drop everything, touch nothing").
 */
void mxs_ares_free(struct mxs_ares *a);

/*
 * Send a query built with mxs_dns_build_query (copied), when the congestion window has
 * room: queries wait in order, retries of timed-out queries first. A query that times
 * out is sent again, after the window has been cut when timeouts rise, up to `tries`
 * times in all, each try waiting twice as long as the one before (at most 8x); the
 * callback then gets ARES_ETIMEOUT with the number of tries that timed out. The callback
 * runs from the loop, or at once from inside this call if c-ares fails immediately (out
 * of memory, no servers), so callers must not hold state that the callback frees across
 * the call. Queries still waiting when the channel is freed get ARES_EDESTRUCTION.
 */
void mxs_ares_send(struct mxs_ares *a, const unsigned char *q, int qlen, ares_callback cb,
		   void *arg);

void mxs_ares_stats(const struct mxs_ares *a, struct mxs_ares_stats *st);

/*
 * Turn "ip[:port]" / "[ip6]:port" / "ip6" into c-ares' CSV form; returns 0 or -1 if it is
 * not an address with an optional port. Exposed for the CLI's option check.
 */
int mxs_ares_server_csv(const char *spec, char *out, size_t outlen);

#endif
