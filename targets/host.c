/*
 * The MX host cache: one entry per host name with its A, AAAA and TLSA answers, shared by
 * every domain that names the host, so a provider's MX used by 100,000 domains is looked
 * up once. Entries in use are pinned; released entries go to an LRU list bounded by
 * host_cache entries, so memory stays flat on long lists. Failures that may be transient
 * (timeout, servfail, refused) are not kept for later domains.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "resolve_int.h"

int mxs_hc_init(struct host_cache *hc, size_t max)
{
	memset(hc, 0, sizeof(*hc));
	hc->nbuckets = 1024;
	hc->max = max;
	hc->buckets = calloc(hc->nbuckets, sizeof(*hc->buckets));
	return hc->buckets ? 0 : -1;
}

static void host_free(struct host *h)
{
	struct waiter *w = h->waiters, *next;

	for (; w; w = next) {
		next = w->next;
		free(w);
	}
	free(h->name);
	free(h->cname);
	free(h->addrs);
	json_decref(h->tlsa);
	free(h);
}

/* Frees every host still in the table; hosts taken out of it died with their last ref. */
void mxs_hc_destroy(struct host_cache *hc)
{
	for (size_t i = 0; i < hc->nbuckets; i++) {
		struct host *h = hc->buckets[i], *next;
		for (; h; h = next) {
			next = h->hnext;
			host_free(h);
		}
	}
	free(hc->buckets);
	memset(hc, 0, sizeof(*hc));
}

static size_t name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)(h ^ (h >> 31));
}

static void lru_remove(struct host_cache *hc, struct host *h)
{
	if (!h->in_lru)
		return;
	if (h->lru_prev)
		h->lru_prev->lru_next = h->lru_next;
	else
		hc->lru_head = h->lru_next;
	if (h->lru_next)
		h->lru_next->lru_prev = h->lru_prev;
	else
		hc->lru_tail = h->lru_prev;
	h->lru_prev = h->lru_next = NULL;
	h->in_lru = 0;
}

static void table_remove(struct host_cache *hc, struct host *h)
{
	struct host **p = &hc->buckets[name_hash(h->name) & (hc->nbuckets - 1)];

	for (; *p; p = &(*p)->hnext)
		if (*p == h) {
			*p = h->hnext;
			h->hnext = NULL;
			h->cached = 0;
			hc->count--;
			return;
		}
}

static void table_grow(struct host_cache *hc)
{
	size_t n = hc->nbuckets * 2;
	struct host **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < hc->nbuckets; i++) {
		struct host *h = hc->buckets[i], *next;
		for (; h; h = next) {
			next = h->hnext;
			size_t b = name_hash(h->name) & (n - 1);
			h->hnext = nb[b];
			nb[b] = h;
		}
	}
	free(hc->buckets);
	hc->buckets = nb;
	hc->nbuckets = n;
}

/* Drop released entries from the cold end until the cache is within its bound. */
static void evict(struct host_cache *hc)
{
	while (hc->count > hc->max && hc->lru_tail) {
		struct host *h = hc->lru_tail;
		lru_remove(hc, h);
		table_remove(hc, h);
		host_free(h);
	}
}

static void start_lookups(struct mxs_resolver *r, struct host *h)
{
	/* pending is raised for all first: an answer delivered synchronously by a failing
	 * ares_send must not see the host complete before the others are sent */
	int want4 = r->o.family != MXS_FAMILY_V6, want6 = r->o.family != MXS_FAMILY_V4;
	int wanttlsa = !r->o.no_policy;
	char tlsa_name[MXS_DNS_NAME_MAX + 16];

	h->pending = want4 + want6 + wanttlsa + 1;
	if (want4)
		mxs_query(r, RQ_HOST_A, h, h->name, MXS_DNS_T_A);
	if (want6)
		mxs_query(r, RQ_HOST_AAAA, h, h->name, MXS_DNS_T_AAAA);
	if (wanttlsa) {
		mxs_dns_join(tlsa_name, sizeof(tlsa_name), "_25._tcp.", h->name);
		mxs_query(r, RQ_HOST_TLSA, h, tlsa_name, MXS_DNS_T_TLSA);
	}
	/* the +1 above held the host open during the sends */
	mxs_host_answer(r, h, (enum rq_kind)-1, 0, NULL, 0);
}

struct host *mxs_host_get(struct mxs_resolver *r, const char *name)
{
	struct host_cache *hc = &r->hc;
	size_t b = name_hash(name) & (hc->nbuckets - 1);

	for (struct host *h = hc->buckets[b]; h; h = h->hnext) {
		if (strcmp(h->name, name) == 0) {
			lru_remove(hc, h);
			h->refs++;
			r->st.cache_hits++;
			return h;
		}
	}
	struct host *h = calloc(1, sizeof(*h));
	if (!h || !(h->name = strdup(name))) {
		free(h);
		return NULL;
	}
	r->st.cache_misses++;
	h->st_a = h->st_aaaa = h->st_tlsa = MXS_DNS_STATUS_LAST;
	h->refs = 1;
	h->cached = 1;
	h->hnext = hc->buckets[b];
	hc->buckets[b] = h;
	if (++hc->count > hc->nbuckets)
		table_grow(hc);
	evict(hc);
	start_lookups(r, h);
	return h;
}

void mxs_host_unref(struct mxs_resolver *r, struct host *h)
{
	if (--h->refs > 0)
		return;
	if (!h->cached) {
		host_free(h);
		return;
	}
	h->in_lru = 1;
	h->lru_next = r->hc.lru_head;
	if (r->hc.lru_head)
		r->hc.lru_head->lru_prev = h;
	r->hc.lru_head = h;
	if (!r->hc.lru_tail)
		r->hc.lru_tail = h;
	evict(&r->hc);
}

int mxs_host_wait(struct host *h, struct domain *d)
{
	if (h->pending == 0)
		return 0;
	struct waiter *w = malloc(sizeof(*w));
	if (!w)
		return -1;
	w->d = d;
	w->next = h->waiters;
	h->waiters = w;
	d->pending++;
	return 0;
}

static int transient(enum mxs_dns_status s)
{
	return s == MXS_DNS_TIMEOUT || s == MXS_DNS_SERVFAIL || s == MXS_DNS_REFUSED;
}

static void take_addrs(struct host *h, struct mxs_answer *a, int family)
{
	struct mxs_dns_rr rr;
	size_t want = family == AF_INET ? 4 : 16;

	while (mxs_answer_next(a, &rr) == 1) {
		if (rr.rdlen != want || h->naddrs >= MXS_MAX_ADDRS)
			continue;
		struct mxs_addr *na = realloc(h->addrs, (h->naddrs + 1) * sizeof(*na));
		if (!na)
			return;
		h->addrs = na;
		memset(&na[h->naddrs], 0, sizeof(*na));
		na[h->naddrs].family = (uint8_t)family;
		memcpy(na[h->naddrs].b, rr.rdata, want);
		/* the same address twice in one RRset would be two targets otherwise */
		int dup = 0;
		for (size_t i = 0; i < h->naddrs; i++)
			if (mxs_addr_cmp(&na[i], &na[h->naddrs]) == 0)
				dup = 1;
		if (!dup)
			h->naddrs++;
	}
}

/* Order TLSA records by usage, selector, matching type, data: stable output. */
static int tlsa_cmp(const void *pa, const void *pb)
{
	json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
	static const char *const keys[] = { "usage", "selector", "mtype" };

	for (int i = 0; i < 3; i++) {
		json_int_t x = json_integer_value(json_object_get(a, keys[i]));
		json_int_t y = json_integer_value(json_object_get(b, keys[i]));
		if (x != y)
			return x < y ? -1 : 1;
	}
	return strcmp(json_string_value(json_object_get(a, "data")),
		      json_string_value(json_object_get(b, "data")));
}

static void sort_tlsa(json_t *arr)
{
	size_t n = json_array_size(arr);
	json_t **v = n ? malloc(n * sizeof(*v)) : NULL;

	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(arr, i));
	qsort(v, n, sizeof(*v), tlsa_cmp);
	json_array_clear(arr);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, v[i]);
	free(v);
}

static void take_tlsa(struct host *h, struct mxs_answer *a)
{
	struct mxs_dns_rr rr;
	static const char hex[] = "0123456789abcdef";

	h->tlsa = json_array();
	while (mxs_answer_next(a, &rr) == 1) {
		if (rr.rdlen < 3 || json_array_size(h->tlsa) >= 16)
			continue;
		size_t n = rr.rdlen - 3u;
		char *data = malloc(2 * n + 1);
		if (!data)
			return;
		for (size_t i = 0; i < n; i++) {
			data[2 * i] = hex[rr.rdata[3 + i] >> 4];
			data[2 * i + 1] = hex[rr.rdata[3 + i] & 15];
		}
		data[2 * n] = '\0';
		json_array_append_new(h->tlsa, json_pack("{s:i, s:i, s:i, s:s}", "usage",
							 rr.rdata[0], "selector", rr.rdata[1],
							 "mtype", rr.rdata[2], "data", data));
		free(data);
	}
	sort_tlsa(h->tlsa);
}

static void host_complete(struct mxs_resolver *r, struct host *h)
{
	if (h->naddrs > 1)
		qsort(h->addrs, h->naddrs, sizeof(*h->addrs), mxs_addr_cmp);
	/* a transient failure of one lookup is not kept for domains that come later */
	if (h->cached && (transient(h->st_a) || transient(h->st_aaaa) || transient(h->st_tlsa))) {
		table_remove(&r->hc, h);
	}
	/* Tell the waiters. Completing a domain drops its reference on h; the extra one
	 * taken here keeps h alive until the list is walked. */
	struct waiter *w = h->waiters, *next;
	h->waiters = NULL;
	h->refs++;
	for (; w; w = next) {
		next = w->next;
		struct domain *d = w->d;
		free(w);
		mxs_domain_release(d);
	}
	mxs_host_unref(r, h);
}

void mxs_host_answer(struct mxs_resolver *r, struct host *h, enum rq_kind kind, int status,
		     const unsigned char *abuf, int alen)
{
	struct mxs_answer a;
	char tlsa_name[MXS_DNS_NAME_MAX + 16];

	switch ((int)kind) {
	case RQ_HOST_A:
		h->st_a = mxs_answer_open(&a, status, abuf, alen, h->name, MXS_DNS_T_A);
		if (h->st_a == MXS_DNS_OK)
			take_addrs(h, &a, AF_INET);
		if (a.aliased && !h->cname)
			h->cname = strdup(a.final);
		break;
	case RQ_HOST_AAAA:
		h->st_aaaa = mxs_answer_open(&a, status, abuf, alen, h->name, MXS_DNS_T_AAAA);
		if (h->st_aaaa == MXS_DNS_OK)
			take_addrs(h, &a, AF_INET6);
		if (a.aliased && !h->cname)
			h->cname = strdup(a.final);
		break;
	case RQ_HOST_TLSA:
		mxs_dns_join(tlsa_name, sizeof(tlsa_name), "_25._tcp.", h->name);
		h->st_tlsa = mxs_answer_open(&a, status, abuf, alen, tlsa_name, MXS_DNS_T_TLSA);
		if (h->st_tlsa == MXS_DNS_OK) {
			take_tlsa(h, &a);
			h->tlsa_ad = a.ad;
		} else {
			/* no array for no records: most hosts have none, and the cache holds many */
			h->tlsa_ad = a.ad; /* a validated denial of existence is worth knowing too */
		}
		break;
	default:
		break; /* the hold released by start_lookups */
	}
	if (--h->pending == 0)
		host_complete(r, h);
}

enum mxs_dns_status mxs_host_status(const struct host *h)
{
	static const enum mxs_dns_status order[] = {
		MXS_DNS_NXDOMAIN, MXS_DNS_TIMEOUT, MXS_DNS_SERVFAIL, MXS_DNS_REFUSED, MXS_DNS_MALFORMED,
	};

	if (h->naddrs)
		return MXS_DNS_OK;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if (h->st_a == order[i] || h->st_aaaa == order[i])
			return order[i];
	return MXS_DNS_NO_ADDRESS;
}
