/*
 * The records of docs/targets.md, built from a finished domain and the hosts it uses.
 * Key order is the documented order (jansson keeps insertion order), so the lines read
 * the same as the tables. TLSA arrays are copied, never shared, so a consumer may modify
 * what it gets.
 */
#include <stdlib.h>
#include <string.h>

#include "resolve_int.h"

static json_t *addr_json(const struct mxs_addr *a)
{
	char buf[64];

	mxs_addr_format(a, buf, sizeof(buf));
	return json_string(buf);
}

/* ["s"], as json_pack("[s]", s) makes it (NULL when s is not UTF-8) without parsing a
 * format for every target */
static json_t *one_string(const char *s)
{
	json_t *v = json_string(s), *a = v ? json_array() : NULL;

	if (!a || json_array_append_new(a, v) < 0) {
		if (!a)
			json_decref(v);
		json_decref(a);
		return NULL;
	}
	return a;
}

json_t *mxs_emit_target(struct mxs_resolver *r, const struct mxs_addr *a, const char *mx,
			const char *domain, const struct host *h, const char *blocked)
{
	json_t *t = json_object();

	if (!t)
		return NULL;
	json_object_set_new(t, "type", json_string("target"));
	json_object_set_new(t, "ip", addr_json(a));
	json_object_set_new(t, "port", json_integer(r->o.target_port));
	json_object_set_new(t, "mx", mx ? json_string(mx) : json_null());
	if (mx)
		json_object_set_new(t, "mx_names", one_string(mx));
	if (domain)
		json_object_set_new(t, "domains", one_string(domain));
	if (h && h->tlsa && json_array_size(h->tlsa)) {
		json_object_set_new(t, "tlsa", json_deep_copy(h->tlsa));
		json_object_set_new(t, "tlsa_dnssec", json_boolean(h->tlsa_ad));
	}
	if (blocked)
		json_object_set_new(t, "blocked", json_string(blocked));
	return t;
}

json_t *mxs_emit_svc_target(struct mxs_resolver *r, const struct mxs_addr *a, int svc,
			    const struct srvref *s, const char *domain, const char *blocked)
{
	json_t *t = json_object();

	if (!t)
		return NULL;
	json_object_set_new(t, "type", json_string("target"));
	json_object_set_new(t, "ip", addr_json(a));
	json_object_set_new(t, "port", json_integer(s->port));
	json_object_set_new(t, "proto", json_string(mxs_svc_defs[svc].proto));
	json_object_set_new(t, "mx", json_string(s->host));
	json_object_set_new(t, "mx_names", one_string(s->host));
	json_object_set_new(t, "domains", one_string(domain));
	if (s->guessed)
		json_object_set_new(t, "guessed", json_true());
	else
		json_object_set_new(t, "srv", json_pack("{s:i, s:i}", "priority", (int)s->prio,
							"weight", (int)s->weight));
	if (blocked)
		json_object_set_new(t, "blocked", json_string(blocked));
	return t;
}

/* The "services" object of a domain line (--services): one entry per service. */
static json_t *services_json(const struct domain *d)
{
	json_t *o = json_object();

	for (int k = 0; k < MXS_NSVC; k++) {
		const struct svc *v = &d->svc[k];
		json_t *e = json_object(), *hosts = json_array();
		const char *st = v->not_offered ? "not-offered" : mxs_dns_status_name(v->st);

		json_object_set_new(e, "status", json_string(st));
		json_object_set_new(e, "dnssec", json_boolean(v->ad));
		for (size_t i = 0; i < v->nsrv; i++) {
			const struct srvref *s = &v->srv[i];
			const struct host *h = s->h;
			json_t *x = json_object(), *addrs = json_array();
			json_object_set_new(x, "host", json_string(s->host));
			json_object_set_new(x, "port", json_integer(s->port));
			json_object_set_new(x, "priority", s->guessed ? json_null() : json_integer(s->prio));
			json_object_set_new(x, "weight", s->guessed ? json_null() : json_integer(s->weight));
			json_object_set_new(x, "guessed", json_boolean(s->guessed));
			json_object_set_new(x, "status", json_string(
				mxs_dns_status_name(h ? mxs_host_status(h) : MXS_DNS_MALFORMED)));
			for (size_t j = 0; h && j < h->naddrs; j++)
				json_array_append_new(addrs, addr_json(&h->addrs[j]));
			json_object_set_new(x, "addrs", addrs);
			json_array_append_new(hosts, x);
		}
		json_object_set_new(e, "hosts", hosts);
		json_object_set_new(o, mxs_svc_defs[k].proto, e);
	}
	return o;
}

static json_t *mx_entry(const struct domain *d, const struct mxref *m)
{
	const struct host *h = m->h;
	json_t *e = json_object(), *addrs = json_array();

	json_object_set_new(e, "host", json_string(m->host));
	json_object_set_new(e, "pref", json_integer(m->pref));
	json_object_set_new(e, "cname", h && h->cname ? json_string(h->cname) : json_null());
	json_object_set_new(e, "status", json_string(h ? mxs_dns_status_name(mxs_host_status(h))
							: mxs_dns_status_name(MXS_DNS_MALFORMED)));
	for (size_t i = 0; h && i < h->naddrs; i++)
		json_array_append_new(addrs, addr_json(&h->addrs[i]));
	json_object_set_new(e, "addrs", addrs);
	if (h && h->st_tlsa != MXS_DNS_STATUS_LAST) {
		json_object_set_new(e, "tlsa", h->tlsa ? json_deep_copy(h->tlsa) : json_array());
		/* AD of the TLSA answer, also for a validated denial (DANE then knows there is none) */
		json_object_set_new(e, "tlsa_dnssec", json_boolean(h->tlsa_ad));
		json_object_set_new(e, "tlsa_status", json_string(mxs_dns_status_name(h->st_tlsa)));
	} else {
		/* --no-policy, or a name that could not be asked */
		json_object_set_new(e, "tlsa", json_array());
		json_object_set_new(e, "tlsa_dnssec", json_false());
		json_object_set_new(e, "tlsa_status", h ? json_string("skipped") : json_null());
	}
	return e;
}

/* RFC 8461 4.1: every MX host the domain uses must match a pattern of the policy. */
static int policy_matches(const struct domain *d)
{
	if (d->null_mx || d->nmx == 0)
		return 0;
	for (size_t i = 0; i < d->nmx; i++) {
		int ok = 0;
		for (size_t p = 0; p < d->policy->nmx && !ok; p++)
			ok = mxs_sts_mx_match(d->policy->mx[p], d->mx[i].host);
		if (!ok)
			return 0;
	}
	return 1;
}

static json_t *policy_json(const struct domain *d)
{
	if (d->pol_state != POL_DONE)
		return json_null();
	json_t *p = json_object(), *mx = json_array();
	const struct mxs_sts_policy *pol = d->pol_status == MXS_STS_OK ? d->policy : NULL;

	json_object_set_new(p, "status", json_string(mxs_sts_status_name(d->pol_status)));
	json_object_set_new(p, "mode", pol ? json_string(mxs_sts_mode_name(pol->mode)) : json_null());
	json_object_set_new(p, "max_age", pol ? json_integer(pol->max_age) : json_null());
	for (size_t i = 0; pol && i < pol->nmx; i++)
		json_array_append_new(mx, json_string(pol->mx[i]));
	json_object_set_new(p, "mx", mx);
	json_object_set_new(p, "mx_match", pol ? json_boolean(policy_matches(d)) : json_null());
	json_object_set_new(p, "error", d->pol_error ? json_string(d->pol_error) : json_null());
	return p;
}

json_t *mxs_emit_domain(struct domain *d, enum mxs_domain_status st)
{
	json_t *j = json_object(), *mx = json_array();

	if (!j || !mx) {
		json_decref(j);
		json_decref(mx);
		return NULL;
	}
	json_object_set_new(j, "type", json_string("domain"));
	json_object_set_new(j, "domain", json_string(d->name));
	json_object_set_new(j, "rank", d->rank >= 0 ? json_integer(d->rank) : json_null());
	json_object_set_new(j, "status", json_string(mxs_domain_status_name(st)));
	json_object_set_new(j, "dnssec", json_boolean(d->mx_ad));
	/*
	 * The MX set is meaningless after a failed MX lookup, for a null MX, and for an
	 * implicit-MX candidate that is none (the domain itself has no address: nodata).
	 */
	if (st != MXS_DOM_NXDOMAIN && !d->null_mx && (!d->implicit || st == MXS_DOM_IMPLICIT_MX))
		for (size_t i = 0; i < d->nmx; i++)
			json_array_append_new(mx, mx_entry(d, &d->mx[i]));
	json_object_set_new(j, "mx", mx);
	if (d->sts) {
		json_object_set_new(d->sts, "policy", policy_json(d));
		json_object_set(j, "mta_sts", d->sts);
	} else {
		json_object_set_new(j, "mta_sts", json_null());
	}
	json_object_set(j, "tlsrpt", d->tlsrpt ? d->tlsrpt : json_null());
	if (d->svc)
		json_object_set_new(j, "services", services_json(d));
	return j;
}
