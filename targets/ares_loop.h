/*
 * A c-ares 1.18 channel driven by a libevent loop: c-ares reports its sockets through
 * ARES_OPT_SOCK_STATE_CB, each gets one persistent event that calls ares_process_fd, and
 * one timer processes timeouts and retries. No polling, no ares_fds/ares_getsock.
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
	int timeout_ms;             /* first try; c-ares doubles it each round (backoff) */
	int tries;                  /* attempts per server, >= 1 */
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
 * Send a query built with mxs_dns_build_query. The callback runs from the loop, or at
 * once from inside this call if c-ares fails immediately (out of memory, no servers),
 * so callers must not hold state that the callback frees across the call.
 */
void mxs_ares_send(struct mxs_ares *a, const unsigned char *q, int qlen, ares_callback cb,
		   void *arg);

/* Queries handed to c-ares so far. */
unsigned long mxs_ares_sent(const struct mxs_ares *a);

/*
 * Turn "ip[:port]" / "[ip6]:port" / "ip6" into c-ares' CSV form; returns 0 or -1 if it is
 * not an address with an optional port. Exposed for the CLI's option check.
 */
int mxs_ares_server_csv(const char *spec, char *out, size_t outlen);

#endif
