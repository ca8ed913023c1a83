/*
 * The legacy probes of an address, on the engine (engine.h): the first probe's record is
 * held while they run, one connection at a time (each is a target of the window like a
 * follow-up SNI probe, so the per-address cap and the rate apply), each asking the
 * question legacy_next() chose; the record is emitted with its support object when the
 * questions or the budget run out, or the scan stops.
 */
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "legacy.h"
#include "log.h"

struct legacy_plan {
	struct legacy_run run;
	struct mxs_record *held;      /* the first probe's record, support attached */
	const struct mxs_proto *proto; /* the first probe's protocol: every probe speaks it */
	bool queued;                  /* a probe of it waits in the window or runs */
};

static void plan_end(struct mxs_scanner *sc, struct addr_plan *p)
{
	struct legacy_plan *lp = p->legacy;

	legacy_finish(&lp->run);
	engine_emit_record(sc, lp->held);
	mxs_record_free(lp->held);
	free(lp->held);
	free(lp);
	p->legacy = NULL;
}

/* Queue the probe of the next question, or end the plan. */
static void next(struct mxs_scanner *sc, int plan)
{
	char ipbuf[64];
	struct addr_plan *p = sc->plans[plan];
	struct legacy_plan *lp = p->legacy;
	struct mxs_target *t;
	enum legacy_q q;

	if (sc->stopping || (q = legacy_next(&lp->run)) == LQ_LAST) {
		plan_end(sc, p);
		return;
	}
	/* the name the first probe sent in SNI, so the server picks the same configuration */
	t = plan_target(sc, plan, p->sni >= 0 && p->sni < (int)p->nnames ? p->names[p->sni].name : NULL);
	if (t == NULL)
		goto oom;
	t->legacy = (int)q + 1;
	t->proto = lp->proto;
	lp->queued = true;
	if (engine_enqueue(sc, t) < 0) {
		lp->queued = false;
		goto oom;
	}
	mxs_debug("scan", "legacy ip=%s question=%s", plan_ip(p, ipbuf, sizeof(ipbuf)), legacy_q_names[q]);
	return;
oom:
	mxs_warn("scan", "no memory for a legacy probe of %s: its record goes out as it is", plan_ip(p, ipbuf, sizeof(ipbuf)));
	lp->run.stopped = true;
	plan_end(sc, p);
}

bool legacy_hold(struct mxs_scanner *sc, struct session *s)
{
	struct addr_plan *p;
	struct legacy_plan *lp;
	const struct mxs_tls_rec *t;

	if (!sc->o.legacy || s->tgt.plan <= 0 || !s->reached_tls)
		return false;
	p = sc->plans[s->tgt.plan - 1];
	if (p->legacy != NULL)
		return false;
	lp = calloc(1, sizeof(*lp));
	if (lp == NULL || (lp->held = malloc(sizeof(*lp->held))) == NULL ||
	    (s->rec.support = mxs_support_new()) == NULL) {
		if (lp != NULL)
			free(lp->held);
		free(lp);
		return false;
	}
	/* the record moves; the session keeps its outcome for the plan's name verdicts */
	*lp->held = s->rec;
	mxs_record_init(&s->rec);
	s->rec.outcome = lp->held->outcome;
	t = lp->held->tls;
	legacy_start(&lp->run, lp->held->support, t ? t->version : NULL, t ? t->cipher : NULL,
		     s->proto->tls_mode == MXS_TLS_STARTTLS && s->proto->can_inject,
		     sc->o.legacy_budget);
	lp->proto = s->proto;
	p->legacy = lp;
	next(sc, s->tgt.plan - 1);
	return true;
}

void legacy_probe_done(struct mxs_scanner *sc, struct session *s)
{
	char ipbuf[64];
	int plan = s->tgt.plan - 1;
	struct addr_plan *p = sc->plans[plan];
	struct legacy_plan *lp = p->legacy;
	enum legacy_q q = (enum legacy_q)(s->tgt.legacy - 1);

	if (lp == NULL)
		return;
	lp->queued = false;
	lp->held->support->connections += s->rec.attempts;
	sc->st.legacy_probes += (uint64_t)s->rec.attempts;
	if (q == LQ_INJECT) {
		if (s->reached_tls)
			legacy_injection(&lp->run, s->inject_verdict);
		else
			legacy_failed(&lp->run, q);
	} else if (s->reader == NULL) {
		legacy_failed(&lp->run, q);  /* it never got to send its hello */
	} else {
		legacy_answer(&lp->run, q, &s->reader->ans);
	}
	mxs_debug("scan", "legacy ip=%s question=%s answer=%d version=0x%04x suite=0x%04x alert=%d why=\"%s\"",
		  plan_ip(p, ipbuf, sizeof(ipbuf)), legacy_q_names[q], s->reader ? (int)s->reader->ans.kind : -1,
		  s->reader ? s->reader->ans.version : 0, s->reader ? s->reader->ans.suite : 0,
		  s->reader ? s->reader->ans.alert : 0,
		  s->reader && s->reader->ans.why ? s->reader->ans.why : "");
	next(sc, plan);
}

size_t legacy_probe_hello(struct mxs_scanner *sc, struct session *s, uint8_t *out, size_t cap,
			  bool *want_kx)
{
	struct legacy_plan *lp = sc->plans[s->tgt.plan - 1]->legacy;
	uint8_t rnd[32], key[32];

	if (lp == NULL || RAND_bytes(rnd, sizeof(rnd)) != 1 || RAND_bytes(key, sizeof(key)) != 1)
		return 0;
	return legacy_hello(&lp->run, (enum legacy_q)(s->tgt.legacy - 1), s->tgt.mx, rnd, key, out,
			    cap, want_kx);
}

bool legacy_probe_injects(const struct session *s)
{
	return s->tgt.legacy == (int)LQ_INJECT + 1;
}

void legacy_stop(struct mxs_scanner *sc)
{
	/* queued probes never start now: drop them, and their plans end */
	for (size_t i = 0; i < sc->nwin;) {
		struct mxs_target *t = sc->win[i];
		if (t->legacy == 0) {
			i++;
			continue;
		}
		sc->win[i] = sc->win[--sc->nwin];
		if (sc->plans[t->plan - 1]->legacy != NULL)
			plan_end(sc, sc->plans[t->plan - 1]);
		target_free(t);
		free(t);
	}
}

void legacy_free_all(struct mxs_scanner *sc)
{
	for (size_t k = 0; k < sc->nplans; k++) {
		struct legacy_plan *lp = sc->plans[k]->legacy;
		if (lp == NULL)
			continue;
		mxs_record_free(lp->held);
		free(lp->held);
		free(lp);
		sc->plans[k]->legacy = NULL;
	}
}
