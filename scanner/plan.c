/* Probe plans per address (plan.h): names, first probe, follow-up SNI probes, verdicts. */
#include "plan.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "chainstore.h"
#include "engine.h"
#include "log.h"

static struct mxs_tlsa *tlsa_copy(const struct mxs_tlsa *src, size_t n)
{
	struct mxs_tlsa *t = n ? calloc(n, sizeof(*t)) : NULL;

	for (size_t i = 0; t != NULL && i < n; i++) {
		t[i] = src[i];
		t[i].data = malloc(src[i].len ? src[i].len : 1);
		if (t[i].data == NULL) {
			for (size_t j = 0; j < i; j++)
				free(t[j].data);
			free(t);
			return NULL;
		}
		memcpy(t[i].data, src[i].data, src[i].len);
	}
	return t;
}

/*
 * A name's verdict is out: its TLSA records and domains are read by nothing after it
 * (a plan lives for the whole run; only the name itself is compared again).
 */
static void name_judged(struct plan_name *n)
{
	n->judged = true;
	for (size_t i = 0; i < n->ntlsa; i++)
		free(n->tlsa[i].data);
	free(n->tlsa);
	n->tlsa = NULL;
	n->ntlsa = 0;
	strv_free(&n->domains);
}

static void name_free(struct plan_name *n)
{
	name_judged(n);
	free(n->name);
}

/* Keep the first probe's chain (s->chain passes to the plan's store); false when it had one and no memory. */
static bool keep_chain(struct mxs_scanner *sc, struct addr_plan *p, struct session *s)
{
	bool had = s->chain != NULL;

	p->chain = chainstore_put(sc->chains, s->chain, s->chain_len);
	p->chain_len = p->chain != NULL ? s->chain_len : 0;
	s->chain = NULL;
	s->chain_len = 0;
	return p->chain != NULL || !had;
}

/* Append t's name (t->mx) to the plan; its index, or -1 when out of memory. */
static int add_name(struct addr_plan *p, const struct mxs_target *t)
{
	struct plan_name *v = realloc(p->names, (p->nnames + 1) * sizeof(*v)), *n;

	if (v == NULL)
		return -1;
	p->names = v;
	n = &p->names[p->nnames];
	memset(n, 0, sizeof(*n));
	n->name = strdup(t->mx);
	n->tlsa = tlsa_copy(t->tlsa, t->ntlsa);
	if (n->name == NULL || (t->ntlsa > 0 && n->tlsa == NULL)) {
		free(n->name);
		free(n->tlsa);
		return -1;
	}
	n->ntlsa = t->ntlsa;
	n->tlsa_dnssec = t->tlsa_dnssec;
	n->guessed = t->guessed;
	for (size_t i = 0; i < t->domains.n; i++)
		strv_push(&n->domains, t->domains.v[i]);
	return (int)p->nnames++;
}

const char *plan_ip(const struct addr_plan *p, char *buf, size_t len)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&p->sa;

	buf[0] = '\0';
	if (p->sa.sin6_family == AF_INET)
		inet_ntop(AF_INET, &s4->sin_addr, buf, (socklen_t)len);
	else
		inet_ntop(AF_INET6, &p->sa.sin6_addr, buf, (socklen_t)len);
	return buf;
}

int plan_new(struct mxs_scanner *sc, const struct mxs_target *t)
{
	struct addr_plan *p;

	if (sc->nplans == sc->capplans) {
		size_t cap = sc->capplans ? sc->capplans * 2 : 1024;
		struct addr_plan **v = realloc(sc->plans, cap * sizeof(*v));
		if (v == NULL)
			return -1;
		sc->plans = v;
		sc->capplans = cap;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -1;
	if (t->salen > sizeof(p->sa)) {
		free(p);
		return -1;   /* not an IPv4 or IPv6 address: targets are never anything else */
	}
	memcpy(&p->sa, &t->sa, t->salen);
	p->salen = t->salen;
	p->port = t->port;
	p->proto = t->proto;
	p->state = PLAN_QUEUED;
	p->sni = -1;
	if (t->mx != NULL && *t->mx != '\0' && add_name(p, t) < 0) {
		free(p);
		return -1;
	}
	if (p->nnames > 0)
		p->sni = 0;
	p->first_named = p->nnames > 0;
	sc->plans[sc->nplans] = p;
	return (int)sc->nplans++;
}

/* Does name i need a probe of its own, sending it in SNI? */
static bool needs_sni(const struct mxs_scanner *sc, const struct addr_plan *p, size_t i)
{
	if ((int)i == p->sni || (p->chain == NULL && !p->resumed_tls))
		return false;
	switch (sc->o.sni) {
	case MXS_SNI_ALL: return true;
	case MXS_SNI_NEEDED: return p->names[i].ntlsa > 0;
	case MXS_SNI_NONE: return false;
	}
	return false;
}

/* Emit name i's verdict, judged on chain (probe "address" or "sni"). */
static void judge(struct mxs_scanner *sc, struct addr_plan *p, size_t i, const char *probe,
		  const char *sni, enum mxs_outcome o, const unsigned char *chain, size_t len)
{
	struct plan_name *n = &p->names[i];
	char ip[64];
	struct mxs_name_verdict v = {
		.ip = plan_ip(p, ip, sizeof(ip)), .port = p->port, .name = n->name, .domains = &n->domains,
		.guessed = n->guessed, .probe = probe, .sni = sni, .outcome = o,
	};

	tls_client_judge(&sc->tls, chain, len, n->name, n->tlsa, n->ntlsa, n->tlsa_dnssec, &v);
	engine_emit_name(sc, &v);
	name_judged(n);
}

struct mxs_target *plan_target(struct mxs_scanner *sc, int plan, const char *name)
{
	const struct addr_plan *p = sc->plans[plan];
	struct mxs_target *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	memcpy(&t->sa, &p->sa, p->salen);
	t->salen = p->salen;
	plan_ip(p, t->ip, sizeof(t->ip));
	t->port = p->port;
	t->proto = p->proto; /* the same service: an imaps address is asked in imaps again */
	t->plan = plan + 1;
	if (name != NULL && (t->mx = strdup(name)) == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

/* A follow-up probe of the plan's address sending name i in SNI, with i's TLSA records. */
static void queue_sni_probe(struct mxs_scanner *sc, int plan, size_t i)
{
	char ipbuf[64];
	struct addr_plan *p = sc->plans[plan];
	struct plan_name *n = &p->names[i];
	struct mxs_target *t = plan_target(sc, plan, n->name);

	if (t == NULL)
		goto oom;
	t->tlsa = tlsa_copy(n->tlsa, n->ntlsa);
	if ((n->ntlsa > 0 && t->tlsa == NULL) || strv_push(&t->mx_names, n->name) < 0) {
		target_free(t);
		free(t);
		goto oom;
	}
	t->ntlsa = n->ntlsa;
	t->tlsa_dnssec = n->tlsa_dnssec;
	for (size_t k = 0; k < n->domains.n; k++)
		strv_push(&t->domains, n->domains.v[k]);
	t->sni_name = (int)i + 1;
	n->sni_queued = true;
	if (engine_enqueue(sc, t) < 0)
		goto oom;
	return;
oom:
	/* The name still gets a verdict: the first probe's certificate. */
	mxs_warn("scan", "no memory for the SNI probe of %s on %s: judged on the first certificate",
		 n->name, plan_ip(p, ipbuf, sizeof(ipbuf)));
	n->sni_queued = false;
	judge(sc, p, i, "address", p->sni >= 0 ? p->names[p->sni].name : NULL, p->outcome, p->chain,
	      p->chain_len);
}

/*
 * A resumed address had TLS, but its chain is not kept: probe it again as its first probe
 * did (sending names[sni]), for the chain only (no record). 0, or -1 when out of memory.
 */
static int queue_refetch(struct mxs_scanner *sc, int plan)
{
	struct addr_plan *p = sc->plans[plan];
	const char *first = p->sni >= 0 ? p->names[p->sni].name : NULL;
	struct mxs_target *t = plan_target(sc, plan, first);

	if (t == NULL)
		return -1;
	if (first != NULL && strv_push(&t->mx_names, first) < 0) {
		target_free(t);
		free(t);
		return -1;
	}
	t->refetch = true;
	p->refetching = true;
	if (engine_enqueue(sc, t) < 0) {
		p->refetching = false;
		return -1;
	}
	sc->st.cert_probes++;
	return 0;
}

/* The plan's first probe is done: every name not judged yet gets its verdict or its probe. */
static void settle(struct mxs_scanner *sc, int plan)
{
	char ipbuf[64];
	struct addr_plan *p = sc->plans[plan];
	const char *sni = p->sni >= 0 ? p->names[p->sni].name : NULL;

	for (size_t i = 0; i < p->nnames; i++) {
		if (p->names[i].judged || p->names[i].sni_queued)
			continue;
		/* The first target's name: its verdict is the result record's (tls.name_match, tls.dane). */
		if (i == 0 && p->first_named) {
			name_judged(&p->names[i]);
			continue;
		}
		if (needs_sni(sc, p, i))
			queue_sni_probe(sc, plan, i);
		else if (p->resumed_tls && p->chain == NULL) {
			/* judged when the certificate is fetched again (plan_probe_done) */
			if (p->refetching)
				continue;
			if (queue_refetch(sc, plan) == 0)
				continue;
			mxs_warn("scan", "no memory to fetch the certificate of %s again: %s judged without it",
				 plan_ip(p, ipbuf, sizeof(ipbuf)), p->names[i].name);
			judge(sc, p, i, "address", sni, MXS_OUT_LOCAL_ERROR, NULL, 0);
		} else
			judge(sc, p, i, "address", sni, p->outcome, p->chain, p->chain_len);
	}
}

int plan_add_name(struct mxs_scanner *sc, int plan, const struct mxs_target *t)
{
	struct addr_plan *p = sc->plans[plan];

	/* a resumed plan was made without the input's target: its service comes with this one */
	if (p->resumed && p->proto == NULL)
		p->proto = t->proto;
	if (t->mx == NULL || *t->mx == '\0')
		return 1;
	for (size_t i = 0; i < p->nnames; i++)
		if (strcmp(p->names[i].name, t->mx) == 0)
			return 1;
	if (add_name(p, t) < 0)
		return -1;
	if (p->state == PLAN_DONE)
		settle(sc, plan);
	return 0;
}

int plan_resumed(struct mxs_scanner *sc, const struct mxs_target *t, enum mxs_outcome o, bool tls,
		 const struct strv *names)
{
	int plan = plan_new(sc, t);
	struct addr_plan *p;

	if (plan < 0)
		return -1;
	p = sc->plans[plan];
	p->state = PLAN_DONE;
	p->resumed = true;
	p->resumed_tls = tls;
	p->outcome = o;
	for (size_t i = 0; names != NULL && i < names->n; i++) {
		struct mxs_target nt = { .mx = names->v[i] };
		int k;
		if (p->nnames > 0 && strcmp(p->names[0].name, names->v[i]) == 0)
			continue;
		if ((k = add_name(p, &nt)) < 0)
			return -1;   /* out of memory: the resume fails (resume_apply) */
		p->names[k].judged = true;
	}
	for (size_t i = 0; i < p->nnames; i++)
		p->names[i].judged = true;
	return plan;
}

void plan_undialled(struct mxs_scanner *sc, int plan, enum mxs_outcome o)
{
	struct addr_plan *p = sc->plans[plan];

	p->state = PLAN_DONE;
	p->outcome = o;
	p->sni = -1;
	settle(sc, plan);
}

void plan_probe_done(struct mxs_scanner *sc, struct session *s)
{
	char ipbuf[64];
	int plan = s->tgt.plan - 1;
	struct addr_plan *p = sc->plans[plan];

	if (s->tgt.refetch) {
		/* the certificate of a resumed address, fetched again: judge what waited for it */
		p->refetching = false;
		p->resumed_tls = false;
		p->outcome = s->rec.outcome;
		if (!keep_chain(sc, p, s))
			mxs_warn("scan", "no memory to keep the certificate of %s: names judged without it", plan_ip(p, ipbuf, sizeof(ipbuf)));
		settle(sc, plan);
		return;
	}
	if (s->tgt.sni_name > 0) {
		size_t i = (size_t)s->tgt.sni_name - 1;
		sc->st.sni_probes++;
		p->names[i].sni_queued = false;
		judge(sc, p, i, "sni", p->names[i].name, s->rec.outcome, s->chain, s->chain_len);
		return;
	}
	p->state = PLAN_DONE;
	p->outcome = s->rec.outcome;
	/* The first probe sent the target's name: the plan's first name, when it had one. */
	p->sni = s->tgt.mx != NULL && p->nnames > 0 ? 0 : -1;
	if (!keep_chain(sc, p, s))
		mxs_warn("scan", "no memory to keep the certificate of %s: names judged without it", plan_ip(p, ipbuf, sizeof(ipbuf)));
	settle(sc, plan);
}

void plan_free_all(struct mxs_scanner *sc)
{
	for (size_t k = 0; k < sc->nplans; k++) {
		struct addr_plan *p = sc->plans[k];
		for (size_t i = 0; i < p->nnames; i++)
			name_free(&p->names[i]);
		free(p->names);
		chainstore_release(sc->chains, p->chain, p->chain_len);
		free(p);
	}
	free(sc->plans);
	sc->plans = NULL;
	sc->nplans = sc->capplans = 0;
}
