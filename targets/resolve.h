/*
 * The resolve stage as a library: turns input lines (domains, "rank,domain", MX host
 * names, addresses, CIDR ranges) into "target" and "domain" JSON records
 * (docs/targets.md), on a caller's libevent loop, so that `survey` can run it next to
 * the scanner in one process.
 *
 * Streaming: the caller feeds lines while mxs_resolver_ready() says there is room (at
 * most `concurrency` domains in flight, and no more than the DNS congestion window
 * lets through: see ares_loop.h) and is called back through on_ready when room
 * appears; memory does not grow with the length of the input, only with the number of
 * distinct addresses emitted (deduplication) and the bounded MX host cache.
 *
 * Records are handed over through callbacks as they complete; a domain's new targets
 * come right before its domain record.
 */
#ifndef MXS_RESOLVE_H
#define MXS_RESOLVE_H

#include <jansson.h>
#include <stddef.h>

#include "blocklist.h"

struct event_base;
struct mxs_resolver;

enum mxs_family { MXS_FAMILY_ANY, MXS_FAMILY_V4, MXS_FAMILY_V6 };

struct mxs_resolve_opts {
	const char *const *dns_servers; /* "ip[:port]"; none: the system's resolv.conf */
	size_t ndns_servers;
	enum mxs_family family;         /* which address records to look up */
	unsigned concurrency;           /* most domains in flight; 0: 1000 */
	int timeout_ms;                 /* first DNS try; 0: 3000 */
	int retries;                    /* DNS re-sends after a timeout, with backoff */
	int no_policy;                  /* skip MTA-STS, TLSRPT and TLSA */
	int mx_hosts;                   /* bare names are MX host names, not mail domains */
	int services;                   /* also the SRV records of the mail access services */
	int guess_hosts;                /* with services: guess host names where there is no SRV */
	const char *mta_sts_ca_file;    /* trust store for policy fetches; NULL: system */
	unsigned short mta_sts_port;    /* 0: 443 */
	int mta_sts_timeout_ms;         /* whole policy fetch; 0: 10000 */
	unsigned short target_port;     /* "port" of target records; 0: 25 */
	size_t host_cache;              /* MX hosts kept after use; 0: 20000 */
	const struct mxs_blocklist *blocklist; /* borrowed; NULL: nothing blocked */
};

/*
 * Callbacks. Records are new references the callee owns (json_decref when done).
 * on_target/on_domain run from inside the loop while the resolver is mid-update: they
 * must not call back into the resolver (write the record out, queue it, return).
 * on_ready and on_done run from their own loop events: feed or free from there.
 */
struct mxs_resolve_cbs {
	void (*on_target)(json_t *target, void *arg);
	void (*on_domain)(json_t *domain, void *arg);
	void (*on_ready)(void *arg);   /* room for more input after ready() went false */
	void (*on_done)(void *arg);    /* after mxs_resolver_finish, once all is emitted */
	void *arg;
};

struct mxs_resolve_stats {
	unsigned long lines, skipped, bad_lines;
	unsigned long domains, domains_done, hosts_in;
	unsigned long targets, blocked;
	unsigned long service_targets;  /* of targets: submission, IMAP, POP3 (--services) */
	unsigned long queries, retries, cache_hits, cache_misses; /* retries: re-sends */
	unsigned long timeouts;         /* DNS tries that timed out (retried or not) */
	unsigned long policy_fetches;
	unsigned long in_flight;        /* domains */
	unsigned long dns_window;       /* congestion window: queries allowed in flight */
	unsigned long dns_in_flight, dns_waiting; /* queries sent / waiting for the window */
	unsigned long dns_cuts;         /* times the window was halved */
	unsigned long by_status[12];    /* domains by status, indexed by mxs_domain_status */
};

/* Returns NULL and a message in err when the options or the set-up fail. */
struct mxs_resolver *mxs_resolver_new(struct event_base *base, const struct mxs_resolve_opts *o,
				      const struct mxs_resolve_cbs *cbs, char *err, size_t errlen);

/*
 * Cancel everything in flight (nothing more is emitted) and free. Safe from on_done.
 */
void mxs_resolver_free(struct mxs_resolver *r);

enum mxs_feed_result { MXS_FEED_OK, MXS_FEED_SKIPPED, MXS_FEED_BAD };

/*
 * Feed one input line (without or with its newline); lineno is for the caller's records.
 * MXS_FEED_BAD: the line does not parse; err says why ("not a valid domain name"); the
 * run goes on.
 * Addresses and ranges are emitted from inside this call.
 */
enum mxs_feed_result mxs_resolver_feed(struct mxs_resolver *r, const char *line, size_t len,
				       unsigned long lineno, char *err, size_t errlen);

/* 1 while fewer than `concurrency` domains are in flight and fewer queries than the
 * congestion window wait for room in it. */
int mxs_resolver_ready(const struct mxs_resolver *r);

/* Domains fed and not yet emitted. */
size_t mxs_resolver_pending(const struct mxs_resolver *r);

/* No more input: on_done fires (from the loop) once everything pending is emitted. */
void mxs_resolver_finish(struct mxs_resolver *r);

void mxs_resolver_stats(const struct mxs_resolver *r, struct mxs_resolve_stats *st);

/* Domain statuses of docs/targets.md, for stats.by_status. */
enum mxs_domain_status {
	MXS_DOM_OK,
	MXS_DOM_NULL_MX,
	MXS_DOM_IMPLICIT_MX,
	MXS_DOM_NXDOMAIN,
	MXS_DOM_NODATA,
	MXS_DOM_SERVFAIL,
	MXS_DOM_REFUSED,
	MXS_DOM_TIMEOUT,
	MXS_DOM_MALFORMED,
	MXS_DOM_NO_MX_ADDRESS,
	MXS_DOM_STATUS_LAST
};

const char *mxs_domain_status_name(enum mxs_domain_status s);

#endif
