/*
 * The simulated network path of one fleet connection: every flight the server sends is
 * held for the round-trip time (+- jitter) before it reaches the socket, so a server on
 * loopback looks as far away as --rtt-ms says. Loopback kernels here have no tc netem.
 *
 *   session bufferevent ──(pair)── near end ─► held flights ─timer─► socket bufferevent
 *   (plain, or under the TLS filter)   ◄──────── client bytes, at once ◄──────┘
 *
 * The session gets one end of a bufferevent pair and uses it exactly like a socket
 * bufferevent (a TLS filter goes on top of it as on a socket). What it writes in one
 * callback round arrives at our end as one read: that is one flight (a reply, the
 * greeting, a TLS handshake flight). Client bytes and the client's close pass through
 * at once: the whole round trip is charged to the server's answers, as the client sees
 * it (request out, answer one RTT later).
 */
#ifndef FLEET_WIRE_H
#define FLEET_WIRE_H

#include <stdint.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

struct fwire;

struct fwire_params {
	unsigned rtt_ms;
	unsigned jitter_ms;      /* each flight: rtt +- jitter, evenly, never below 0 */
	uint64_t seed;           /* jitter is a function of (seed, conn_id, flight number) */
	uint64_t conn_id;
};

/*
 * Take over the connected socket fd and put the delayed path in front of it. On success
 * *session is the bufferevent the session reads and writes; the caller owns it (free it
 * before fwire_free, or hand it to a TLS filter with BEV_OPT_CLOSE_ON_FREE). Returns the
 * wire, or NULL (out of memory; fd is closed).
 */
struct fwire *fwire_new(struct event_base *base, evutil_socket_t fd, const struct fwire_params *p,
			struct bufferevent **session);

/* Free the wire, dropping flights not yet sent, and close the socket. NULL is fine. */
void fwire_free(struct fwire *w);

/* 1 when every byte the session wrote has reached the kernel (nothing held or queued). */
int fwire_flushed(const struct fwire *w);

/* Milliseconds until the last flight held now leaves (0: none held), rounded up. */
unsigned fwire_drain_ms(const struct fwire *w);

/*
 * Reserve the next flight's slot for something that is not bytes (an RST): returns the
 * monotonic time (monotime.h, µs) at which a flight sent now would leave, after every
 * earlier one.
 */
int64_t fwire_reserve(struct fwire *w);

#endif
