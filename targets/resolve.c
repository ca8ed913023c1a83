/*
 * The resolver: feeds input lines in, runs one domain at a time per slot (at most
 * `concurrency` in flight, fewer while the DNS congestion window holds queries back), and emits its targets and its domain record when the last
 * thing it waits for is done. See resolve.h for the contract, resolve_int.h for the
 * ownership rules.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "sts_fetch.h"
#include "input.h"
#include "log.h"
#include "resolve_int.h"

static const char *const domain_status_names[MXS_DOM_STATUS_LAST] = {
	[MXS_DOM_OK] = "ok",
	[MXS_DOM_NULL_MX] = "null-mx",
	[MXS_DOM_IMPLICIT_MX] = "implicit-mx",
	[MXS_DOM_NXDOMAIN] = "nxdomain",
	[MXS_DOM_NODATA] = "nodata",
	[MXS_DOM_SERVFAIL] = "servfail",
	[MXS_DOM_REFUSED] = "refused",
	[MXS_DOM_TIMEOUT] = "timeout",
	[MXS_DOM_MALFORMED] = "malformed",
	[MXS_DOM_NO_MX_ADDRESS] = "no-mx-address",
};

const char *mxs_domain_status_name(enum mxs_domain_status s)
{
	return (unsigned)s < MXS_DOM_STATUS_LAST ? domain_status_names[s] : "?";
}

/* ---- deferred callbacks: on_ready and on_done never run inside a c-ares callback ---- */

static void on_ev_ready(evutil_socket_t fd, short what, void *arg)
{
	struct mxs_resolver *r = arg;

	if (r->want_ready && mxs_resolver_ready(r) && !r->finishing) {
		r->want_ready = 0;
		if (r->cbs.on_ready)
			r->cbs.on_ready(r->cbs.arg);
	}
}

static void on_ev_done(evutil_socket_t fd, short what, void *arg)
{
	struct mxs_resolver *r = arg;

	if (r->done_fired || r->pending)
		return;
	r->done_fired = 1;
	if (r->cbs.on_done)
		r->cbs.on_done(r->cbs.arg); /* may free r: nothing after this */
}

static void check_progress(struct mxs_resolver *r)
{
	if (r->want_ready && mxs_resolver_ready(r))
		event_active(r->ev_ready, EV_TIMEOUT, 0);
	if (r->finishing && r->pending == 0 && !r->done_fired)
		event_active(r->ev_done, EV_TIMEOUT, 0);
}

/* ---- queries ---- */

static void mx_answer(struct domain *d, int status, const unsigned char *abuf, int alen);
static void srv_answer(struct domain *d, int svc, int status, const unsigned char *abuf,
		       int alen);

/* Route an answer (or a failure) to its owner. */
static void dispatch(struct mxs_resolver *r, enum rq_kind kind, void *owner, int sub, int status,
		     const unsigned char *abuf, int alen)
{
	switch (kind) {
	case RQ_MX:
		mx_answer(owner, status, abuf, alen);
		break;
	case RQ_SRV:
		srv_answer(owner, sub, status, abuf, alen);
		break;
	case RQ_STS_TXT:
	case RQ_TLSRPT_TXT:
	case RQ_POLICY_A:
	case RQ_POLICY_AAAA:
		mxs_policy_answer(owner, kind, status, abuf, alen);
		break;
	case RQ_HOST_A:
	case RQ_HOST_AAAA:
	case RQ_HOST_TLSA:
		mxs_host_answer(r, owner, kind, status, abuf, alen);
		break;
	}
}

void mxs_query(struct mxs_resolver *r, enum rq_kind kind, void *owner, const char *name,
	       uint16_t qtype)
{
	mxs_query_sub(r, kind, owner, 0, name, qtype);
}

void mxs_query_sub(struct mxs_resolver *r, enum rq_kind kind, void *owner, int sub,
		   const char *name, uint16_t qtype)
{
	unsigned char q[512];
	int n = mxs_dns_build_query(q, sizeof(q), name, qtype, 1232);
	struct rq *rq = n < 0 ? NULL : malloc(sizeof(*rq));

	if (!rq) {
		/* an unaskable name (too long) or no memory: the owner hears of it at once as
		 * a malformed answer, as it would from a synchronous c-ares failure */
		dispatch(r, kind, owner, sub, ARES_EBADRESP, NULL, 0);
		return;
	}
	rq->r = r;
	rq->kind = kind;
	rq->owner = owner;
	rq->sub = sub;
	r->st.queries++;
	mxs_ares_send(r->dns, q, n, mxs_on_answer, rq);
}

void mxs_on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct rq *rq = arg;
	struct mxs_resolver *r = rq->r;
	enum rq_kind kind = rq->kind;
	void *owner = rq->owner;
	int sub = rq->sub;

	free(rq);
	/* the channel is being destroyed: owners are being freed by mxs_resolver_free */
	if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED || r->destroying)
		return;
	dispatch(r, kind, owner, sub, status, abuf, alen);
}

/* ---- domains ---- */

const struct mxs_svc_def mxs_svc_defs[MXS_NSVC] = {
	{ "submission", "_submission._tcp", 587, { "smtp", "mail", NULL } },
	{ "submissions", "_submissions._tcp", 465, { "smtp", "mail", NULL } },
	{ "imap", "_imap._tcp", 143, { "imap", "mail", NULL } },
	{ "imaps", "_imaps._tcp", 993, { "imap", "mail", NULL } },
	{ "pop3", "_pop3._tcp", 110, { "pop", "pop3", "mail" } },
	{ "pop3s", "_pop3s._tcp", 995, { "pop", "pop3", "mail" } },
};

static int mxref_cmp(const void *pa, const void *pb)
{
	const struct mxref *a = pa, *b = pb;

	if (a->pref != b->pref)
		return a->pref < b->pref ? -1 : 1;
	return strcmp(a->host, b->host);
}

/* Add an MX host to d once, with its lowest preference. */
static void add_mx(struct domain *d, const char *host, unsigned pref)
{
	for (size_t i = 0; i < d->nmx; i++)
		if (strcmp(d->mx[i].host, host) == 0) {
			if (pref < d->mx[i].pref)
				d->mx[i].pref = pref;
			return;
		}
	if (d->nmx >= MXS_MAX_MX)
		return;
	struct mxref *nm = realloc(d->mx, (d->nmx + 1) * sizeof(*nm));
	if (!nm)
		return;
	d->mx = nm;
	struct mxref *m = &d->mx[d->nmx];
	m->host = strdup(host);
	m->pref = pref;
	m->h = NULL;
	if (!m->host)
		return;
	d->nmx++;
}

/* Look up (or find in the cache) every MX host of d and wait for those in flight. */
static void start_hosts(struct domain *d)
{
	if (d->nmx > 1)
		qsort(d->mx, d->nmx, sizeof(*d->mx), mxref_cmp);
	for (size_t i = 0; i < d->nmx; i++) {
		char name[MXS_DNS_NAME_MAX];
		mxs_dns_join(name, sizeof(name), "", d->mx[i].host);
		/* a name with escapes or odd bytes cannot be asked for: recorded malformed */
		if (mxs_dns_normalize(name) < 0)
			continue;
		d->mx[i].h = mxs_host_get(d->r, name);
		if (d->mx[i].h)
			mxs_host_wait(d->mx[i].h, d);
	}
}

static void mx_answer(struct domain *d, int status, const unsigned char *abuf, int alen)
{
	struct mxs_answer a;
	struct mxs_dns_rr rr;
	int r, nnull = 0, nmx = 0;

	d->mx_st = mxs_answer_open(&a, status, abuf, alen, d->name, MXS_DNS_T_MX);
	d->mx_ad = a.ad;
	if (d->mx_st == MXS_DNS_OK) {
		while ((r = mxs_answer_next(&a, &rr)) == 1) {
			char host[MXS_DNS_NAME_MAX];
			if (rr.rdlen < 3 ||
			    mxs_dns_read_name(a.msg.buf, a.msg.len, rr.rdata_off + 2, host, NULL) < 0) {
				d->mx_st = MXS_DNS_MALFORMED;
				break;
			}
			unsigned pref = (unsigned)(rr.rdata[0] << 8 | rr.rdata[1]);
			nmx++;
			if (strcmp(host, ".") == 0) {
				nnull++; /* RFC 7505 null MX */
				continue;
			}
			add_mx(d, host, pref);
		}
		if (r < 0)
			d->mx_st = MXS_DNS_MALFORMED;
		if (d->mx_st == MXS_DNS_MALFORMED) {
			for (size_t i = 0; i < d->nmx; i++)
				free(d->mx[i].host);
			d->nmx = 0;
		}
		/* Only a lone "0 ." means "no mail"; one mixed with real MXs is ignored. */
		if (d->mx_st == MXS_DNS_OK && nnull && nmx == nnull)
			d->null_mx = 1;
	} else if (d->mx_st == MXS_DNS_NODATA) {
		/* RFC 5321 5.1: no MX at all, the domain itself is the implicit MX */
		d->implicit = 1;
		add_mx(d, d->name, 0);
	}
	start_hosts(d);
	mxs_domain_release(d);
}

/*
 * RFC 2782 order: lowest priority first; among equal priorities the client picks by
 * weight at random, so the heaviest is the likeliest first: written heaviest first, then
 * by name and port, so the same zone gives the same bytes.
 */
static int srvref_cmp(const void *pa, const void *pb)
{
	const struct srvref *a = pa, *b = pb;
	int c;

	if (a->prio != b->prio)
		return a->prio < b->prio ? -1 : 1;
	if (a->weight != b->weight)
		return a->weight > b->weight ? -1 : 1;
	if ((c = strcmp(a->host, b->host)) != 0)
		return c;
	return a->port < b->port ? -1 : a->port > b->port;
}

static void add_srv(struct svc *v, const char *host, unsigned prio, unsigned weight,
		    unsigned port, int guessed)
{
	for (size_t i = 0; i < v->nsrv; i++)
		if (strcmp(v->srv[i].host, host) == 0 && v->srv[i].port == port) {
			if (prio < v->srv[i].prio || (prio == v->srv[i].prio && weight > v->srv[i].weight)) {
				v->srv[i].prio = prio;
				v->srv[i].weight = weight;
			}
			return;
		}
	if (v->nsrv >= MXS_MAX_MX)
		return;
	struct srvref *ns = realloc(v->srv, (v->nsrv + 1) * sizeof(*ns));
	if (!ns)
		return;
	v->srv = ns;
	struct srvref *e = &v->srv[v->nsrv];
	memset(e, 0, sizeof(*e));
	e->prio = prio;
	e->weight = weight;
	e->port = port;
	e->guessed = guessed;
	if (!(e->host = strdup(host)))
		return;
	v->nsrv++;
}

/* Look up the hosts of one service (after its SRV answer) and wait for them. */
static void start_srv_hosts(struct domain *d, struct svc *v)
{
	if (v->nsrv > 1)
		qsort(v->srv, v->nsrv, sizeof(*v->srv), srvref_cmp);
	for (size_t i = 0; i < v->nsrv; i++) {
		char name[MXS_DNS_NAME_MAX];
		snprintf(name, sizeof(name), "%s", v->srv[i].host);
		if (mxs_dns_normalize(name) < 0)
			continue;
		v->srv[i].h = mxs_host_get(d->r, name);
		if (v->srv[i].h)
			mxs_host_wait(v->srv[i].h, d);
	}
}

static void srv_answer(struct domain *d, int svc, int status, const unsigned char *abuf, int alen)
{
	struct svc *v = &d->svc[svc];
	struct mxs_answer a;
	struct mxs_dns_rr rr;
	char qname[MXS_DNS_NAME_MAX + 32];
	int r, ndot = 0, n = 0;

	snprintf(qname, sizeof(qname), "%s.%s", mxs_svc_defs[svc].srv, d->name);
	v->st = mxs_answer_open(&a, status, abuf, alen, qname, MXS_DNS_T_SRV);
	v->ad = a.ad;
	if (v->st == MXS_DNS_OK) {
		while ((r = mxs_answer_next(&a, &rr)) == 1) {
			char host[MXS_DNS_NAME_MAX];
			if (rr.rdlen < 7 ||
			    mxs_dns_read_name(a.msg.buf, a.msg.len, rr.rdata_off + 6, host, NULL) < 0) {
				v->st = MXS_DNS_MALFORMED;
				break;
			}
			unsigned prio = (unsigned)(rr.rdata[0] << 8 | rr.rdata[1]);
			unsigned weight = (unsigned)(rr.rdata[2] << 8 | rr.rdata[3]);
			unsigned port = (unsigned)(rr.rdata[4] << 8 | rr.rdata[5]);
			n++;
			if (strcmp(host, ".") == 0) {
				ndot++;
				continue;
			}
			if (port == 0)
				continue; /* nothing to dial */
			add_srv(v, host, prio, weight, port, 0);
		}
		if (r < 0)
			v->st = MXS_DNS_MALFORMED;
		if (v->st == MXS_DNS_MALFORMED) {
			for (size_t i = 0; i < v->nsrv; i++)
				free(v->srv[i].host);
			v->nsrv = 0;
		}
		/* "." alone: decidedly not offered; a "." among real targets is ignored */
		if (v->st == MXS_DNS_OK && ndot && n == ndot)
			v->not_offered = 1;
	} else if (d->r->o.guess_hosts && (v->st == MXS_DNS_NXDOMAIN || v->st == MXS_DNS_NODATA)) {
		/* no SRV record at all (not a failure, not "."): the usual names, if asked */
		for (int g = 0; g < 3 && mxs_svc_defs[svc].guesses[g]; g++) {
			char host[MXS_DNS_NAME_MAX];
			snprintf(host, sizeof(host), "%s.%s", mxs_svc_defs[svc].guesses[g], d->name);
			add_srv(v, host, 0, 0, mxs_svc_defs[svc].port, 1);
		}
	}
	start_srv_hosts(d, v);
	mxs_domain_release(d);
}

/* The SRV lookups of a new domain (--services). */
static void start_services(struct domain *d)
{
	struct mxs_resolver *r = d->r;

	if (!(d->svc = calloc(MXS_NSVC, sizeof(*d->svc)))) {
		mxs_err("resolve", "out-of-memory domain=%s", d->name);
		return;
	}
	for (int i = 0; i < MXS_NSVC; i++) {
		char name[MXS_DNS_NAME_MAX + 32];
		d->svc[i].st = MXS_DNS_STATUS_LAST;
		snprintf(name, sizeof(name), "%s.%s", mxs_svc_defs[i].srv, d->name);
		d->pending++;
		mxs_query_sub(r, RQ_SRV, d, i, name, MXS_DNS_T_SRV);
	}
}

static enum mxs_domain_status domain_status(const struct domain *d)
{
	switch (d->mx_st) {
	case MXS_DNS_OK:
		break;
	case MXS_DNS_NODATA:
		if (d->nmx && d->mx[0].h) {
			enum mxs_dns_status hs = mxs_host_status(d->mx[0].h);
			if (hs == MXS_DNS_OK)
				return MXS_DOM_IMPLICIT_MX;
			if (hs != MXS_DNS_NO_ADDRESS && hs != MXS_DNS_NXDOMAIN)
				return hs == MXS_DNS_TIMEOUT ? MXS_DOM_TIMEOUT
				       : hs == MXS_DNS_REFUSED ? MXS_DOM_REFUSED
				       : hs == MXS_DNS_MALFORMED ? MXS_DOM_MALFORMED
				       : MXS_DOM_SERVFAIL;
		}
		return MXS_DOM_NODATA;
	case MXS_DNS_NXDOMAIN: return MXS_DOM_NXDOMAIN;
	case MXS_DNS_TIMEOUT: return MXS_DOM_TIMEOUT;
	case MXS_DNS_REFUSED: return MXS_DOM_REFUSED;
	case MXS_DNS_MALFORMED: return MXS_DOM_MALFORMED;
	default: return MXS_DOM_SERVFAIL;
	}
	if (d->null_mx)
		return MXS_DOM_NULL_MX;
	for (size_t i = 0; i < d->nmx; i++)
		if (d->mx[i].h && d->mx[i].h->naddrs)
			return MXS_DOM_OK;
	return MXS_DOM_NO_MX_ADDRESS;
}

static void addr_sockaddr(const struct mxs_addr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, a->b, 4);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, a->b, 16);
	}
}

/*
 * The targets of the domain's services: every (service, port, host name, address) once
 * per run, in the services' order, each service's hosts in SRV order. The address alone
 * is not marked seen: a bare address line still means SMTP on port 25.
 */
static void emit_service_targets(struct domain *d)
{
	struct mxs_resolver *r = d->r;

	for (int k = 0; d->svc && k < MXS_NSVC; k++) {
		const struct svc *v = &d->svc[k];
		for (size_t i = 0; i < v->nsrv; i++) {
			const struct srvref *s = &v->srv[i];
			char key[MXS_DNS_NAME_MAX + 32];
			if (!s->h)
				continue;
			snprintf(key, sizeof(key), "%s:%u:%s", mxs_svc_defs[k].proto, s->port, s->host);
			for (size_t j = 0; j < s->h->naddrs; j++) {
				struct mxs_addr pair = mxs_addr_pair_key(key, &s->h->addrs[j]);
				struct sockaddr_storage ss;
				if (mxs_addrset_add(r->seen, &pair) != 1)
					continue;
				addr_sockaddr(&s->h->addrs[j], &ss);
				const char *blocked = r->o.blocklist
					? mxs_blocklist_check(r->o.blocklist, (struct sockaddr *)&ss) : NULL;
				r->st.targets++;
				r->st.service_targets++;
				if (blocked)
					r->st.blocked++;
				json_t *t = mxs_emit_svc_target(r, &s->h->addrs[j], k, s, d->name, blocked);
				if (t)
					r->cbs.on_target(t, r->cbs.arg);
			}
		}
	}
}

static void emit_new_targets(struct domain *d)
{
	struct mxs_resolver *r = d->r;

	for (size_t i = 0; i < d->nmx; i++) {
		struct host *h = d->mx[i].h;
		if (!h)
			continue;
		for (size_t j = 0; j < h->naddrs; j++) {
			/*
			 * Every (MX name, address) pair once per run, not every address: each
			 * name on a shared address gets its own verdict from the scanner.
			 */
			struct mxs_addr pair = mxs_addr_pair_key(d->mx[i].host, &h->addrs[j]);
			if (mxs_addrset_add(r->seen, &pair) != 1)
				continue;
			/* the address too: a bare address line naming it adds nothing */
			mxs_addrset_add(r->seen, &h->addrs[j]);
			struct sockaddr_storage ss;
			addr_sockaddr(&h->addrs[j], &ss);
			const char *blocked = r->o.blocklist
				? mxs_blocklist_check(r->o.blocklist, (struct sockaddr *)&ss) : NULL;
			r->st.targets++;
			if (blocked)
				r->st.blocked++;
			json_t *t = mxs_emit_target(r, &h->addrs[j], d->mx[i].host,
						    d->host_only ? NULL : d->name, h, blocked);
			if (t)
				r->cbs.on_target(t, r->cbs.arg);
		}
	}
	emit_service_targets(d);
}

static void domain_free(struct domain *d)
{
	mxs_policy_cancel(d);
	for (int k = 0; d->svc && k < MXS_NSVC; k++) {
		for (size_t i = 0; i < d->svc[k].nsrv; i++) {
			if (d->svc[k].srv[i].h)
				mxs_host_unref(d->r, d->svc[k].srv[i].h);
			free(d->svc[k].srv[i].host);
		}
		free(d->svc[k].srv);
	}
	free(d->svc);
	for (size_t i = 0; i < d->nmx; i++) {
		if (d->mx[i].h)
			mxs_host_unref(d->r, d->mx[i].h);
		free(d->mx[i].host);
	}
	free(d->mx);
	json_decref(d->sts);
	json_decref(d->tlsrpt);
	free(d->pol_error);
	free(d->pol_addrs);
	free(d->policy);
	free(d->name);
	free(d);
}

static void unlink_domain(struct domain *d)
{
	struct mxs_resolver *r = d->r;

	if (d->prev)
		d->prev->next = d->next;
	else
		r->inflight = d->next;
	if (d->next)
		d->next->prev = d->prev;
	r->pending--;
}

static void domain_complete(struct domain *d)
{
	struct mxs_resolver *r = d->r;

	emit_new_targets(d);
	if (!d->host_only) {
		enum mxs_domain_status st = domain_status(d);
		r->st.by_status[st]++;
		json_t *j = mxs_emit_domain(d, st);
		if (j)
			r->cbs.on_domain(j, r->cbs.arg);
	}
	r->st.domains_done++;
	unlink_domain(d);
	domain_free(d);
	check_progress(r);
}

void mxs_domain_release(struct domain *d)
{
	if (--d->pending == 0)
		domain_complete(d);
}

static void domain_start(struct mxs_resolver *r, const char *name, long rank, int host_only)
{
	struct domain *d = calloc(1, sizeof(*d));

	if (!d || !(d->name = strdup(name))) {
		free(d);
		mxs_err("resolve", "out-of-memory domain=%s", name);
		return;
	}
	d->r = r;
	d->rank = rank;
	d->host_only = host_only;
	d->mx_st = MXS_DNS_OK;
	d->next = r->inflight;
	if (r->inflight)
		r->inflight->prev = d;
	r->inflight = d;
	r->pending++;
	/* hold d while the lookups start: answers may arrive synchronously */
	d->pending = 1;
	if (host_only) {
		r->st.hosts_in++;
		add_mx(d, name, 0);
		start_hosts(d);
	} else {
		r->st.domains++;
		d->pending++;
		mxs_query(r, RQ_MX, d, d->name, MXS_DNS_T_MX);
		if (!r->o.no_policy)
			mxs_policy_start(d);
		if (r->o.services)
			start_services(d);
	}
	mxs_domain_release(d);
}

/* ---- addresses and ranges from the input ---- */

static void emit_addr(struct mxs_resolver *r, int family, const unsigned char *b)
{
	struct mxs_addr a;
	struct sockaddr_storage ss;

	memset(&a, 0, sizeof(a));
	memset(&ss, 0, sizeof(ss));
	a.family = (uint8_t)family;
	memcpy(a.b, b, family == AF_INET ? 4 : 16);
	if (mxs_addrset_add(r->seen, &a) != 1)
		return;
	if (family == AF_INET) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		memcpy(&((struct sockaddr_in *)&ss)->sin_addr, b, 4);
	} else {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, b, 16);
	}
	const char *blocked = r->o.blocklist
		? mxs_blocklist_check(r->o.blocklist, (struct sockaddr *)&ss) : NULL;
	r->st.targets++;
	if (blocked)
		r->st.blocked++;
	json_t *t = mxs_emit_target(r, &a, NULL, NULL, NULL, blocked);
	if (t)
		r->cbs.on_target(t, r->cbs.arg);
}

static void emit_range(struct mxs_resolver *r, const struct mxs_input *in)
{
	unsigned bits = in->family == AF_INET ? 32 : 128;
	unsigned host_bits = bits - in->prefix;
	unsigned char cur[16];
	unsigned long count = 1ul << host_bits;

	memcpy(cur, in->addr, 16);
	for (unsigned long i = 0; i < count; i++) {
		emit_addr(r, in->family, cur);
		/* increment the address as a big-endian number */
		for (int k = (int)bits / 8 - 1; k >= 0; k--)
			if (++cur[k] != 0)
				break;
	}
}

/* ---- public API ---- */

struct mxs_resolver *mxs_resolver_new(struct event_base *base, const struct mxs_resolve_opts *o,
				      const struct mxs_resolve_cbs *cbs, char *err, size_t errlen)
{
	struct mxs_resolver *r = calloc(1, sizeof(*r));

	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->base = base;
	r->o = *o;
	r->cbs = *cbs;
	if (!r->o.concurrency)
		r->o.concurrency = 1000;
	if (r->o.timeout_ms <= 0)
		r->o.timeout_ms = 3000;
	if (r->o.retries < 0)
		r->o.retries = 0;
	if (!r->o.mta_sts_port)
		r->o.mta_sts_port = 443;
	if (r->o.mta_sts_timeout_ms <= 0)
		r->o.mta_sts_timeout_ms = 10000;
	if (!r->o.target_port)
		r->o.target_port = 25;
	if (!r->o.host_cache)
		r->o.host_cache = 20000;
	/* the strings are only read here; the resolver keeps no pointer to them */
	r->o.dns_servers = NULL;
	r->o.ndns_servers = 0;
	r->o.mta_sts_ca_file = NULL;

	struct mxs_ares_opts ao = {
		.servers = o->dns_servers,
		.nservers = o->ndns_servers,
		.timeout_ms = r->o.timeout_ms,
		.tries = r->o.retries + 1,
		/* a domain asks 3 to 9 questions; the window is for the resolver's sake only */
		.max_window = r->o.concurrency > 1000000 ? 4000000 : r->o.concurrency * 4,
	};
	if (!(r->dns = mxs_ares_new(base, &ao, err, errlen)))
		goto fail;
	/* a trust store named on the command line is checked now; the system's is loaded at
	 * the first policy fetch (policy.c) */
	if (!r->o.no_policy && o->mta_sts_ca_file &&
	    !(r->ssl_ctx = mxs_sts_ctx_new(o->mta_sts_ca_file, err, errlen)))
		goto fail;
	if (!(r->seen = mxs_addrset_new()) || mxs_hc_init(&r->hc, r->o.host_cache) < 0 ||
	    !(r->ev_ready = event_new(base, -1, 0, on_ev_ready, r)) ||
	    !(r->ev_done = event_new(base, -1, 0, on_ev_done, r))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	return r;
fail:
	mxs_resolver_free(r);
	return NULL;
}

void mxs_resolver_free(struct mxs_resolver *r)
{
	if (!r)
		return;
	r->destroying = 1;
	/* queries first: their callbacks see `destroying` and touch nothing */
	mxs_ares_free(r->dns);
	while (r->inflight) {
		struct domain *d = r->inflight;
		unlink_domain(d);
		domain_free(d);
	}
	mxs_hc_destroy(&r->hc);
	mxs_addrset_free(r->seen);
	if (r->ssl_ctx)
		SSL_CTX_free(r->ssl_ctx);
	if (r->ev_ready)
		event_free(r->ev_ready);
	if (r->ev_done)
		event_free(r->ev_done);
	free(r);
}

enum mxs_feed_result mxs_resolver_feed(struct mxs_resolver *r, const char *line, size_t len,
				       unsigned long lineno, char *err, size_t errlen)
{
	struct mxs_input in;

	r->st.lines++;
	mxs_input_parse(line, len, &in);
	switch (in.kind) {
	case MXS_IN_SKIP:
		r->st.skipped++;
		return MXS_FEED_SKIPPED;
	case MXS_IN_ERROR:
		r->st.bad_lines++;
		snprintf(err, errlen, "%s", mxs_input_error_text(in.error));
		return MXS_FEED_BAD;
	case MXS_IN_ADDR:
		emit_addr(r, in.family, in.addr);
		break;
	case MXS_IN_CIDR:
		emit_range(r, &in);
		break;
	case MXS_IN_NAME:
		if (r->o.mx_hosts && in.rank >= 0) {
			r->st.bad_lines++;
			snprintf(err, errlen, "a rank makes no sense for an MX host name");
			return MXS_FEED_BAD;
		}
		domain_start(r, in.name, in.rank, r->o.mx_hosts);
		break;
	}
	if (!mxs_resolver_ready(r))
		r->want_ready = 1;
	return MXS_FEED_OK;
}

int mxs_resolver_ready(const struct mxs_resolver *r)
{
	struct mxs_ares_stats as;

	if (r->pending >= r->o.concurrency)
		return 0;
	/* no more domains while a window's worth of queries waits for room: what is
	 * admitted should be what the resolver can take */
	mxs_ares_stats(r->dns, &as);
	return as.waiting < as.window;
}

size_t mxs_resolver_pending(const struct mxs_resolver *r)
{
	return r->pending;
}

void mxs_resolver_finish(struct mxs_resolver *r)
{
	r->finishing = 1;
	check_progress(r);
}

void mxs_resolver_stats(const struct mxs_resolver *r, struct mxs_resolve_stats *st)
{
	struct mxs_ares_stats as;

	*st = r->st;
	st->in_flight = r->pending;
	mxs_ares_stats(r->dns, &as);
	st->retries = as.retries;
	st->timeouts = as.timeouts;
	st->dns_window = as.window;
	st->dns_in_flight = as.in_flight;
	st->dns_waiting = as.waiting;
	st->dns_cuts = as.cuts;
}
