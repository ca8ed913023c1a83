/*
 * Internals of the resolve stage shared by its files: the resolver, the MX host cache
 * (host.c), one domain in flight (resolve.c), its policy lookups (policy.c) and the JSON
 * records (emit.c). Not installed; only resolve.h is public.
 *
 * Ownership: the resolver owns every domain in flight (its `inflight` list) and the host
 * cache; a domain holds one reference on each host it uses; a host holds a waiter entry
 * per domain waiting for it. Every outstanding c-ares query has a struct rq (freed by its
 * callback), and every outstanding thing a domain waits for counts in domain.pending.
 */
#ifndef MXS_RESOLVE_INT_H
#define MXS_RESOLVE_INT_H

#include <jansson.h>
#include <openssl/ssl.h>

#include "addrset.h"
#include "ares_loop.h"
#include "dnsmsg.h"
#include "resolve.h"
#include "sts_fetch.h"
#include "sts_policy.h"

struct domain;
struct event;

/* Most records taken from one answer: bounds the work a hostile zone can cause. */
#define MXS_MAX_MX 32
#define MXS_MAX_ADDRS 64

struct waiter {
	struct domain *d;
	struct waiter *next;
};

struct host {
	char *name;                 /* owned, normalised */
	struct host *hnext;         /* hash chain */
	struct host *lru_prev, *lru_next;
	int in_lru;                 /* unreferenced and done: may be evicted */
	int cached;                 /* reachable through the hash table */
	unsigned refs;              /* domains using it */
	int pending;                /* queries outstanding */
	struct waiter *waiters;     /* domains to tell when pending reaches 0; owned */
	enum mxs_dns_status st_a, st_aaaa, st_tlsa; /* MXS_DNS_STATUS_LAST: not asked */
	char *cname;                /* owned; end of the CNAME chain, NULL when none */
	struct mxs_addr *addrs;     /* owned, sorted; IPv4 first */
	size_t naddrs;
	json_t *tlsa;               /* owned array of TLSA objects; NULL when there are none */
	int tlsa_ad;
};

struct host_cache {
	struct host **buckets;      /* owned */
	size_t nbuckets, count, max;
	struct host *lru_head, *lru_tail; /* most recently released first */
};

struct mxref {
	char *host;                 /* owned */
	unsigned pref;
	struct host *h;             /* one reference; NULL when the name is not queryable */
};

/*
 * The mail access services of --services (RFC 6186, RFC 8314), in the order they are
 * written: the proto name of the scanner's module, the SRV owner label, the default port,
 * and the host names --guess-hosts tries where a domain has no SRV record.
 */
#define MXS_NSVC 6
struct mxs_svc_def {
	const char *proto;
	const char *srv;
	unsigned short port;
	const char *guesses[3];
};
extern const struct mxs_svc_def mxs_svc_defs[MXS_NSVC];

struct srvref {
	char *host;                 /* owned */
	unsigned prio, weight, port;
	int guessed;                /* a --guess-hosts name, no SRV record behind it */
	struct host *h;             /* one reference; NULL when the name is not queryable */
};

/* One service of a domain: its SRV lookup and the hosts it names. */
struct svc {
	enum mxs_dns_status st;     /* of the SRV lookup */
	int ad;
	int not_offered;            /* the only target is "." (RFC 2782, RFC 6186 3.4) */
	struct srvref *srv;         /* owned; priority, then weight (heavier first), then name */
	size_t nsrv;
};

struct mxs_resolver {
	struct event_base *base;
	struct mxs_resolve_opts o;
	struct mxs_resolve_cbs cbs;
	struct mxs_ares *dns;       /* owned */
	SSL_CTX *ssl_ctx;           /* owned; NULL with no_policy, and without --mta-sts-ca-file
				       until the first policy fetch */
	struct mxs_addrset *seen;   /* owned: addresses already emitted */
	struct host_cache hc;
	struct domain *inflight;    /* owned list of domains in flight */
	size_t pending;
	int finishing, done_fired, destroying;
	int want_ready;             /* ready() was false since the last on_ready */
	struct event *ev_ready, *ev_done; /* owned; deferred callbacks */
	struct mxs_resolve_stats st;
};

enum rq_kind {
	RQ_MX,
	RQ_STS_TXT,
	RQ_TLSRPT_TXT,
	RQ_HOST_A,
	RQ_HOST_AAAA,
	RQ_HOST_TLSA,
	RQ_POLICY_A,
	RQ_POLICY_AAAA,
	RQ_SRV,
};

/* One outstanding query: the c-ares callback argument; freed by the callback. */
struct rq {
	struct mxs_resolver *r;
	enum rq_kind kind;
	void *owner;                /* struct domain * or struct host * */
	int sub;                    /* RQ_SRV: the service's index in mxs_svc_defs */
};

/* Policy fetch states of a domain (policy.c). */
enum pol_state { POL_IDLE, POL_DNS, POL_FETCH, POL_DONE };


struct domain {
	struct mxs_resolver *r;
	struct domain *prev, *next; /* resolver's inflight list */
	char *name;                 /* owned */
	long rank;                  /* -1: none */
	int host_only;              /* an MX host name line: targets only, no domain record */
	int pending;                /* queries, host waits and policy steps outstanding */
	enum mxs_dns_status mx_st;
	int mx_ad, null_mx, implicit;
	struct mxref *mx;           /* owned, sorted by preference then name */
	size_t nmx;
	json_t *sts;                /* owned "mta_sts" object; NULL: none (null) */
	json_t *tlsrpt;             /* owned "tlsrpt" object; NULL: none (null) */
	/* MTA-STS policy fetch */
	enum pol_state pol_state;
	enum mxs_sts_status pol_status; /* "policy.status" (sts_policy.h) */
	char *pol_error;            /* owned */
	struct mxs_sts_policy *policy; /* owned; parsed policy when MXS_STS_OK */
	struct mxs_sts_fetch *fetch; /* in flight, owned until its callback */
	int pol_dns_wait;           /* address lookups of mta-sts.<domain> outstanding */
	enum mxs_dns_status pol_dns; /* their first failure (MXS_DNS_OK: none) */
	struct mxs_addr *pol_addrs; /* owned: the addresses found, A then AAAA */
	size_t pol_naddrs;
	struct svc *svc;            /* owned, MXS_NSVC entries; NULL without --services */
};

/* resolve.c */
void mxs_domain_release(struct domain *d);   /* one pending item done; may complete d */
void mxs_query(struct mxs_resolver *r, enum rq_kind kind, void *owner, const char *name,
	       uint16_t qtype);
void mxs_query_sub(struct mxs_resolver *r, enum rq_kind kind, void *owner, int sub,
		   const char *name, uint16_t qtype);
void mxs_on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen);

/* host.c */
int mxs_hc_init(struct host_cache *hc, size_t max);
void mxs_hc_destroy(struct host_cache *hc);
/* A referenced host for name (normalised), its lookups started when new. */
struct host *mxs_host_get(struct mxs_resolver *r, const char *name);
void mxs_host_unref(struct mxs_resolver *r, struct host *h);
/* Make d wait for h (d->pending is raised) unless h is complete. */
int mxs_host_wait(struct host *h, struct domain *d);
void mxs_host_answer(struct mxs_resolver *r, struct host *h, enum rq_kind kind, int status,
		     const unsigned char *abuf, int alen);
/* Host outcome for its MX entry: ok, no-address or the first lookup failure. */
enum mxs_dns_status mxs_host_status(const struct host *h);

/* policy.c */
void mxs_policy_start(struct domain *d);     /* TXT lookups for a new domain */
void mxs_policy_answer(struct domain *d, enum rq_kind kind, int status,
		       const unsigned char *abuf, int alen);
void mxs_policy_cancel(struct domain *d);

/* emit.c */
json_t *mxs_emit_domain(struct domain *d, enum mxs_domain_status st);
json_t *mxs_emit_target(struct mxs_resolver *r, const struct mxs_addr *a, const char *mx,
			const char *domain, const struct host *h, const char *blocked);
/* A service target (--services): proto and port of the SRV record, no TLSA. */
json_t *mxs_emit_svc_target(struct mxs_resolver *r, const struct mxs_addr *a, int svc,
			    const struct srvref *s, const char *domain, const char *blocked);

#endif
