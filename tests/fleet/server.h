/*
 * The fleet server: one event loop, one TCP port on 0.0.0.0 and [::1], every
 * connection served by the behaviour of the loopback address it was accepted on.
 */
#ifndef FLEET_SERVER_H
#define FLEET_SERVER_H

#include <stdint.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "addrcount.h"
#include "behaviour.h"
#include "fault.h"
#include "fproto.h"

#define FLEET_EXIT_BIND 3   /* the port is taken: a test harness picks another */

struct fleet_opts {
	int port;                /* 0: any free port (written to the ready file) */
	const char *certdir;
	const struct fp_proto *proto;   /* what the fleet speaks (--proto; smtp by default) */
	uint64_t seed;
	unsigned delay_ms;       /* slow and multi-line greetings */
	unsigned idle_ms;        /* close a connection silent in both directions this long */
	unsigned rtt_ms;         /* simulated round trip: each flight we send is held this long */
	unsigned jitter_ms;      /* +- this much per flight, drawn from the seed (0: exact) */
	struct fb_fault_shares faults;   /* addresses that stall or drop (fault.h) */
	const char *ready_file;  /* NULL: none */
	int watch_stdin;         /* stop at end of file on stdin (the harness died) */
};

struct fconn;

/* State of one fleet process; passed around, never global. */
struct fleet {
	struct fleet_opts opt;
	struct event_base *base;
	SSL_CTX *ctx[FB_TLS_LAST][FB_LEAF_LAST];   /* only the pairs some behaviour uses */
	struct evconnlistener *listeners[2];
	int nlisteners;
	struct event *sig_term, *sig_int, *relisten, *stdin_ev;
	const struct timeval *idle_tv;            /* a libevent common timeout */
	struct fleet_addrcount *counts;           /* connections per address (first_421) */
	struct fconn *conns;                      /* every open connection, for shutdown */
	uint64_t next_id;
	uint64_t accepted, refused;
};

/*
 * Serve until SIGTERM or SIGINT. Returns the process exit code: 0 after a clean stop,
 * FLEET_EXIT_BIND if the port is in use, 1 on any other failure (logged).
 */
int fleet_serve(const struct fleet_opts *opt);

#endif
