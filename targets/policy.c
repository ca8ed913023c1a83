/*
 * Downgrade-protection records of one domain: the MTA-STS TXT record, then (when it is
 * valid) the policy itself over HTTPS from mta-sts.<domain>, and the TLSRPT TXT record.
 * Results are kept as the JSON objects of the domain record (docs/targets.md), except
 * the parsed policy, which emit.c needs to match the MX hosts against.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "esc.h"
#include "policy_txt.h"
#include "resolve_int.h"

#define TXT_MAX 4096             /* longest TXT record we keep: policies are short */

static json_t *esc_string(const char *p, size_t n)
{
	char *e = mxs_esc_encode(p, n, NULL);
	json_t *j = e ? json_string(e) : json_null();

	free(e);
	return j ? j : json_null();
}

void mxs_policy_start(struct domain *d)
{
	char name[MXS_DNS_NAME_MAX + 16];

	d->pending += 2;
	mxs_dns_join(name, sizeof(name), "_mta-sts.", d->name);
	mxs_query(d->r, RQ_STS_TXT, d, name, MXS_DNS_T_TXT);
	mxs_dns_join(name, sizeof(name), "_smtp._tls.", d->name);
	mxs_query(d->r, RQ_TLSRPT_TXT, d, name, MXS_DNS_T_TXT);
}

/*
 * The TXT records of one answer that carry our version tag. Returns how many there are,
 * with the smallest one (bytewise) copied to first/firstlen; -1 if an RDATA is malformed.
 */
static int tagged_txt(struct mxs_answer *a, int (*is_ours)(const char *, size_t), char *first,
		      size_t *firstlen)
{
	struct mxs_dns_rr rr;
	char buf[TXT_MAX];
	int n = 0, r;

	while ((r = mxs_answer_next(a, &rr)) == 1) {
		long len = mxs_txt_rdata(&rr, buf, sizeof(buf));
		if (len < 0)
			return -1;
		if (!is_ours(buf, (size_t)len))
			continue;
		/* RRset order is the resolver's whim: keep the smallest record, so the output
		 * does not change from run to run when there are several */
		size_t l = (size_t)len, m = l < *firstlen ? l : *firstlen;
		int cmp = n ? memcmp(buf, first, m) : -1;
		if (n == 0 || cmp < 0 || (cmp == 0 && l < *firstlen)) {
			memcpy(first, buf, l);
			*firstlen = l;
		}
		n++;
	}
	return r < 0 ? -1 : n;
}

/* Common shape of both TXT results: null when there is no record of ours. */
static json_t *txt_result(enum mxs_dns_status st, struct mxs_answer *a,
			  int (*is_ours)(const char *, size_t), char *txt, size_t *len, int *count)
{
	*count = 0;
	if (st == MXS_DNS_NXDOMAIN || st == MXS_DNS_NODATA)
		return NULL;
	if (st == MXS_DNS_OK) {
		*count = tagged_txt(a, is_ours, txt, len);
		if (*count == 0)
			return NULL;
		if (*count < 0)
			st = MXS_DNS_MALFORMED;
	}
	if (st != MXS_DNS_OK)
		return json_pack("{s:n, s:s, s:n}", "txt", "status", mxs_dns_status_name(st), "error");
	return json_pack("{s:o, s:b}", "txt", esc_string(txt, *len), "dnssec", a->ad);
}

static void sts_txt(struct domain *d, int status, const unsigned char *abuf, int alen)
{
	char name[MXS_DNS_NAME_MAX + 16], txt[TXT_MAX];
	struct mxs_answer a;
	size_t len = 0;
	int count;

	mxs_dns_join(name, sizeof(name), "_mta-sts.", d->name);
	enum mxs_dns_status st = mxs_answer_open(&a, status, abuf, alen, name, MXS_DNS_T_TXT);
	json_t *j = txt_result(st, &a, mxs_sts_txt_is_sts, txt, &len, &count);
	if (!j)
		return;
	d->sts = j;
	if (!json_object_get(j, "status")) {
		struct mxs_sts_txt parsed;
		enum mxs_txt_result res = count > 1 ? MXS_TXT_OK : mxs_sts_txt_parse(txt, len, &parsed);
		if (count > 1) {
			/* RFC 8461 3.1: more than one record means no policy */
			json_object_set_new(j, "id", json_null());
			json_object_set_new(j, "status", json_string("multiple"));
			json_object_set_new(j, "error", json_null());
		} else if (res != MXS_TXT_OK) {
			json_object_set_new(j, "id", json_null());
			json_object_set_new(j, "status", json_string("invalid"));
			json_object_set_new(j, "error", json_string(mxs_txt_result_name(res)));
		} else {
			json_object_set_new(j, "id", json_string(parsed.id));
			json_object_set_new(j, "status", json_string("ok"));
			json_object_set_new(j, "error", json_null());
			/* a valid record: fetch the policy it announces, from every address */
			enum mxs_family fam = d->r->o.family;
			d->pol_state = POL_DNS;
			d->pending++; /* the whole policy step; policy_done releases it */
			d->pol_dns = MXS_DNS_OK;
			d->pol_dns_wait = fam == MXS_FAMILY_ANY ? 2 : 1;
			snprintf(name, sizeof(name), "mta-sts.%s", d->name);
			if (fam != MXS_FAMILY_V6)
				mxs_query(d->r, RQ_POLICY_A, d, name, MXS_DNS_T_A);
			if (fam != MXS_FAMILY_V4)
				mxs_query(d->r, RQ_POLICY_AAAA, d, name, MXS_DNS_T_AAAA);
		}
	} else {
		json_object_set_new(j, "id", json_null());
	}
	/* keep the documented key order: txt, id, status, policy, (extras) */
	json_t *ordered = json_pack("{s:O, s:O, s:O, s:n, s:O, s:O}", "txt", json_object_get(j, "txt"),
				    "id", json_object_get(j, "id"), "status",
				    json_object_get(j, "status"), "policy", "error",
				    json_object_get(j, "error") ? json_object_get(j, "error") : json_null(),
				    "dnssec", json_object_get(j, "dnssec") ? json_object_get(j, "dnssec")
									    : json_false());
	json_decref(j);
	d->sts = ordered;
}

static void tlsrpt_txt(struct domain *d, int status, const unsigned char *abuf, int alen)
{
	char name[MXS_DNS_NAME_MAX + 16], txt[TXT_MAX];
	struct mxs_answer a;
	size_t len = 0;
	int count;

	mxs_dns_join(name, sizeof(name), "_smtp._tls.", d->name);
	enum mxs_dns_status st = mxs_answer_open(&a, status, abuf, alen, name, MXS_DNS_T_TXT);
	json_t *j = txt_result(st, &a, mxs_tlsrpt_txt_is_tlsrpt, txt, &len, &count);
	if (!j)
		return;
	json_t *rua = json_array();
	const char *status_text = json_string_value(json_object_get(j, "status"));
	json_t *error = json_null();
	if (!status_text) {
		struct mxs_tlsrpt_txt parsed;
		enum mxs_txt_result res = mxs_tlsrpt_txt_parse(txt, len, &parsed);
		if (count > 1) {
			status_text = "multiple"; /* RFC 8460 3: then no record is used */
		} else if (res != MXS_TXT_OK) {
			status_text = "invalid";
			json_decref(error);
			error = json_string(mxs_txt_result_name(res));
		} else {
			status_text = "ok";
			for (size_t i = 0; i < parsed.nrua; i++)
				json_array_append_new(rua, esc_string(parsed.rua[i].p, parsed.rua[i].len));
		}
	}
	d->tlsrpt = json_pack("{s:O, s:o, s:s, s:o, s:b}", "txt", json_object_get(j, "txt"), "rua",
			      rua, "status", status_text, "error", error, "dnssec",
			      json_is_true(json_object_get(j, "dnssec")));
	json_decref(j);
}

static void policy_done(struct domain *d, enum mxs_sts_status st, const char *error)
{
	d->pol_state = POL_DONE;
	d->pol_status = st;
	free(d->pol_error);
	d->pol_error = error ? strdup(error) : NULL;
	mxs_domain_release(d);
}

static void on_fetched(void *arg, const struct mxs_sts_fetch_result *res)
{
	struct domain *d = arg;
	char msg[sizeof(res->address) + sizeof(res->error) + 64];

	d->fetch = NULL;
	if (res->status != MXS_STS_OK) {
		/* the reason first ("expired: ...", "connect: ..."), then where */
		if (res->tried > 1)
			snprintf(msg, sizeof(msg), "%s (%u addresses tried, the last %s)", res->error,
				 res->tried, res->address);
		else
			snprintf(msg, sizeof(msg), "%s (%s)", res->error, res->address);
		policy_done(d, res->status, msg);
		return;
	}
	d->policy = malloc(sizeof(*d->policy));
	if (!d->policy) {
		policy_done(d, MXS_STS_LOCAL, "out of memory");
		return;
	}
	enum mxs_sts_status st =
		mxs_sts_judge(res->http_status, res->content_type[0] ? res->content_type : NULL,
			      res->location[0] ? res->location : NULL, res->body, res->body_len,
			      d->policy, msg, sizeof(msg));
	if (st != MXS_STS_OK) {
		free(d->policy);
		d->policy = NULL;
	}
	policy_done(d, st, st == MXS_STS_OK ? NULL : msg);
}

/* Every address lookup of mta-sts.<domain> is in: dial those the blocklist allows. */
static void policy_fetch(struct domain *d)
{
	struct mxs_resolver *r = d->r;
	const char *blocked = NULL;
	char host[MXS_DNS_NAME_MAX + 16], msg[MXS_DNS_NAME_MAX + 64];
	size_t n = 0;

	snprintf(host, sizeof(host), "mta-sts.%s", d->name);
	if (d->pol_naddrs == 0) {
		enum mxs_dns_status st = d->pol_dns != MXS_DNS_OK ? d->pol_dns : MXS_DNS_NO_ADDRESS;
		snprintf(msg, sizeof(msg), "%s: %s", host, mxs_dns_status_name(st));
		policy_done(d, MXS_STS_DNS, msg);
		return;
	}
	for (size_t i = 0; i < d->pol_naddrs; i++) {
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof(ss));
		if (d->pol_addrs[i].family == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
			sin->sin_family = AF_INET;
			memcpy(&sin->sin_addr, d->pol_addrs[i].b, 4);
		} else {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
			sin6->sin6_family = AF_INET6;
			memcpy(&sin6->sin6_addr, d->pol_addrs[i].b, 16);
		}
		/* the policy server is dialled too: the blocklist holds for it as well */
		const char *rule = r->o.blocklist
			? mxs_blocklist_check(r->o.blocklist, (struct sockaddr *)&ss) : NULL;
		if (rule)
			blocked = rule;
		else
			d->pol_addrs[n++] = d->pol_addrs[i];
	}
	if (n == 0) {
		policy_done(d, MXS_STS_BLOCKED, blocked);
		return;
	}
	/* the system trust store is loaded at the first fetch: most lists have few policies,
	 * and loading it costs as much as resolving thousands of domains */
	char err[256];
	if (!r->ssl_ctx && !(r->ssl_ctx = mxs_sts_ctx_new(NULL, err, sizeof(err)))) {
		policy_done(d, MXS_STS_LOCAL, err);
		return;
	}
	d->pol_state = POL_FETCH;
	r->st.policy_fetches++;
	d->fetch = mxs_sts_fetch_start(r->base, r->ssl_ctx, d->pol_addrs, n, r->o.mta_sts_port,
				       host, "/.well-known/mta-sts.txt", MXS_STS_BODY_MAX,
				       r->o.mta_sts_timeout_ms, on_fetched, d);
	if (!d->fetch)
		policy_done(d, MXS_STS_LOCAL, "cannot start the HTTPS request");
}

/* One address lookup of mta-sts.<domain>: keep its addresses (in answer order). */
static void policy_dns(struct domain *d, enum rq_kind kind, int status, const unsigned char *abuf,
		       int alen)
{
	char name[MXS_DNS_NAME_MAX + 16];
	struct mxs_answer a;
	struct mxs_dns_rr rr;
	int v6 = kind == RQ_POLICY_AAAA;

	snprintf(name, sizeof(name), "mta-sts.%s", d->name);
	enum mxs_dns_status st =
		mxs_answer_open(&a, status, abuf, alen, name, v6 ? MXS_DNS_T_AAAA : MXS_DNS_T_A);
	if (st == MXS_DNS_OK) {
		while (mxs_answer_next(&a, &rr) == 1 && d->pol_naddrs < MXS_STS_FETCH_MAX_ADDRS) {
			size_t len = v6 ? 16 : 4;
			if (rr.rdlen != len)
				continue;
			if (!d->pol_addrs) {
				d->pol_addrs = calloc(MXS_STS_FETCH_MAX_ADDRS, sizeof(*d->pol_addrs));
				if (!d->pol_addrs)
					break;
			}
			struct mxs_addr *x = &d->pol_addrs[d->pol_naddrs++];
			memset(x, 0, sizeof(*x));
			x->family = v6 ? AF_INET6 : AF_INET;
			memcpy(x->b, rr.rdata, len);
		}
	} else if (st != MXS_DNS_NODATA && d->pol_dns == MXS_DNS_OK) {
		d->pol_dns = st; /* the first real failure names the class's detail */
	}
	if (--d->pol_dns_wait > 0)
		return;
	/* IPv4 first, as the MX addresses: the answer order of each family is kept */
	if (d->pol_naddrs > 1 && d->pol_addrs[0].family == AF_INET6) {
		struct mxs_addr tmp[MXS_STS_FETCH_MAX_ADDRS];
		size_t k = 0;
		for (int fam = 0; fam < 2; fam++)
			for (size_t i = 0; i < d->pol_naddrs; i++)
				if ((d->pol_addrs[i].family == AF_INET) == (fam == 0))
					tmp[k++] = d->pol_addrs[i];
		memcpy(d->pol_addrs, tmp, k * sizeof(tmp[0]));
	}
	policy_fetch(d);
}

void mxs_policy_answer(struct domain *d, enum rq_kind kind, int status, const unsigned char *abuf,
		       int alen)
{
	switch (kind) {
	case RQ_STS_TXT:
		sts_txt(d, status, abuf, alen);
		break;
	case RQ_TLSRPT_TXT:
		tlsrpt_txt(d, status, abuf, alen);
		break;
	case RQ_POLICY_A:
	case RQ_POLICY_AAAA:
		policy_dns(d, kind, status, abuf, alen);
		return; /* the policy step releases d itself, once the fetch is over */
	default:
		break;
	}
	mxs_domain_release(d);
}

void mxs_policy_cancel(struct domain *d)
{
	if (d->fetch) {
		mxs_sts_fetch_cancel(d->fetch);
		d->fetch = NULL;
	}
}
