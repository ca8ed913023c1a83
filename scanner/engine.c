/*
 * The engine: admits targets (blocklist, shard, duplicates), holds them in a window
 * from which they start in random order, so that a provider's addresses are not hit
 * back to back, and starts sessions within the limits (concurrency, connections per
 * address and per network, new connections per second). It emits one record per target,
 * prints the status line, and drains on stop.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "blocklist.h"
#include "chainstore.h"
#include "engine.h"
#include "log.h"
#include "timeutil.h"

#define NET_PREFIX4 24
#define NET_PREFIX6 64

void mxs_scan_opts_defaults(struct mxs_scan_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->port = 25;
	o->concurrency = 1000;
	o->rate = 0;
	o->per_ip = 1;
	o->per_net = 8;
	o->retries = 2;
	o->retry_delay_ms = 60 * 1000;
	o->connect_timeout_ms = 10 * 1000;
	o->greeting_timeout_ms = 60 * 1000;
	o->command_timeout_ms = 30 * 1000;
	o->handshake_timeout_ms = 30 * 1000;
	o->deadline_ms = 180 * 1000;
	o->drain_timeout_ms = 10 * 1000;
	o->profile = "default-v1";
	o->default_blocklist = true;
	o->transcript = true;
	o->legacy_budget = 6;
	o->status = true;
	o->shard_count = 1;
}

static uint64_t rng_next(struct mxs_scanner *sc)
{
	/* xorshift64*: the scan order needs spread, not secrecy. */
	sc->rng ^= sc->rng >> 12;
	sc->rng ^= sc->rng << 25;
	sc->rng ^= sc->rng >> 27;
	return sc->rng * 2685821657736338717ULL;
}

static void schedule_pump(struct mxs_scanner *sc)
{
	event_active(sc->pump_ev, EV_TIMEOUT, 0);
}

static void check_finished(struct mxs_scanner *sc)
{
	if (sc->finished || sc->inflight > 0 || sc->waiting > 0)
		return;
	if (!sc->stopping && !(sc->input_done && sc->nwin == 0))
		return;
	sc->finished = true;
	sc->st.unscanned = sc->nwin;
	if (sc->status_ev)
		evtimer_del(sc->status_ev);
	if (sc->drain_ev)
		evtimer_del(sc->drain_ev);
	if (sc->rate_ev)
		evtimer_del(sc->rate_ev);
	if (sc->done != NULL && !sc->done_called) {
		sc->done_called = true;
		sc->done(sc->cb_arg);
	}
}

static void emit_line(struct mxs_scanner *sc, const char *line, size_t len, enum mxs_outcome o)
{
	if (sc->emit(sc->emit_arg, line, len, o) < 0)
		sc->st.emit_errors++;
}

void engine_emit_record(struct mxs_scanner *sc, struct mxs_record *r)
{
	size_t len = 0;
	char *json = mxs_record_to_json(r, &len);

	if (json == NULL) {
		mxs_err("scan", "cannot serialise the record of %s (out of memory)", r->ip);
		sc->st.emit_errors++;
		return;
	}
	emit_line(sc, json, len, r->outcome);
	free(json);
	sc->st.records++;
	sc->st.by_outcome[r->outcome]++;
	if (r->outcome == MXS_OUT_SUCCESS)
		sc->tls_ok++;
}

/* A record for a target that is never dialled (bad, blocked, duplicate). */
static void emit_undialled(struct mxs_scanner *sc, struct mxs_target *t, enum mxs_outcome o,
			   const char *detail)
{
	struct mxs_record r;

	mxs_record_init(&r);
	if (mxs_record_set_target(&r, t) < 0) {
		mxs_record_free(&r);
		sc->st.emit_errors++;
		return;
	}
	r.input = t->input;
	r.start_ms = mxs_wall_ms();
	r.outcome = o;
	r.phase = MXS_PHASE_NONE;
	r.detail = (char *)detail;
	r.ehlo_name = sc->ehlo_name;
	r.profile = sc->tls.profile;
	r.keep_transcript = sc->o.transcript;
	engine_emit_record(sc, &r);
	/* input and detail are borrowed; the record owns the rest. */
	r.input = NULL;
	r.detail = NULL;
	mxs_record_free(&r);
}

static bool in_shard(const struct mxs_scanner *sc, const struct mxs_target *t)
{
	struct addr_key k;
	const uint8_t *p = (const uint8_t *)&k;
	uint64_t h = 1469598103934665603ULL;

	if (sc->o.shard_count <= 1)
		return true;
	addr_key_make(&k, (const struct sockaddr *)&t->sa, 32, 128, 0);
	for (size_t i = 0; i < sizeof(k); i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	h ^= h >> 29;
	return h % sc->o.shard_count == sc->o.shard_index;
}

int engine_enqueue(struct mxs_scanner *sc, struct mxs_target *t)
{
	if (sc->nwin == sc->capwin) {
		size_t cap = sc->capwin ? sc->capwin * 2 : 1024;
		struct mxs_target **w = realloc(sc->win, cap * sizeof(*w));
		if (w == NULL)
			goto fail;
		sc->win = w;
		sc->capwin = cap;
	}
	sc->win[sc->nwin] = malloc(sizeof(**sc->win));
	if (sc->win[sc->nwin] == NULL)
		goto fail;
	*sc->win[sc->nwin++] = *t;
	free(t);
	schedule_pump(sc);
	return 0;
fail:
	target_free(t);
	free(t);
	return -1;
}

void engine_emit_name(struct mxs_scanner *sc, const struct mxs_name_verdict *v)
{
	size_t len = 0;
	char *json = mxs_name_verdict_to_json(v, &len);

	if (json == NULL) {
		mxs_err("scan", "cannot serialise the name line of %s %s (out of memory)", v->ip, v->name);
		sc->st.emit_errors++;
		return;
	}
	emit_line(sc, json, len, MXS_OUT_NONE);
	free(json);
	sc->st.names++;
}

/*
 * Take ownership of a parsed target: record it now, or queue it in the window. An
 * address is probed once per run: a later target naming it with a new MX name adds that
 * name to the address's plan (its verdict follows, plan.c), one adding nothing is a
 * duplicate.
 */
static void admit(struct mxs_scanner *sc, struct mxs_target *t)
{
	struct addr_key k;
	const char *rule;
	struct mxs_target *q;
	int32_t *seen;
	int plan;

	sc->st.targets++;
	if (!in_shard(sc, t)) {
		sc->st.skipped_shard++;
		target_free(t);
		return;
	}
	addr_key_make(&k, (const struct sockaddr *)&t->sa, 32, 128, (uint16_t)t->port);
	seen = addrmap_get(&sc->seen, &k);
	if (seen != NULL && *seen < 0) {
		sc->st.skipped_shard++; /* marked done by --resume: no new record */
		target_free(t);
		return;
	}
	if (seen != NULL && *seen > 0) {
		int r = plan_add_name(sc, *seen - 1, t);
		if (r > 0 && sc->plans[*seen - 1]->resumed)
			sc->st.skipped_shard++; /* done in an earlier run, no new name: no new record */
		else if (r > 0)
			emit_undialled(sc, t, MXS_OUT_DUPLICATE, "address already scanned in this run");
		else if (r < 0)
			mxs_err("scan", "out of memory adding MX name %s to %s", t->mx, t->ip);
		target_free(t);
		return;
	}
	rule = t->blocked;
	if (rule == NULL && sc->bl != NULL)
		rule = mxs_blocklist_check(sc->bl, (const struct sockaddr *)&t->sa);
	plan = plan_new(sc, t);
	if (seen != NULL && plan >= 0)
		*seen = plan + 1;
	if (rule != NULL) {
		emit_undialled(sc, t, MXS_OUT_BLOCKED, rule);
		if (plan >= 0)
			plan_undialled(sc, plan, MXS_OUT_BLOCKED);
		target_free(t);
		return;
	}
	t->plan = plan + 1;
	if ((q = malloc(sizeof(*q))) == NULL) {
		emit_undialled(sc, t, MXS_OUT_LOCAL_ERROR, "out of memory queueing the target");
		if (plan >= 0)
			plan_undialled(sc, plan, MXS_OUT_LOCAL_ERROR);
		target_free(t);
		return;
	}
	*q = *t;
	memset(t, 0, sizeof(*t));
	if (engine_enqueue(sc, q) < 0) {
		mxs_err("scan", "out of memory queueing a target");
		sc->st.emit_errors++;
	}
}

/*
 * One target from an address line on port, or from a JSON target line. Returns false
 * when the line is no address line to probe on further ports.
 */
static bool add_line_on(struct mxs_scanner *sc, const char *line, size_t len, int port)
{
	struct mxs_target t;

	switch (target_parse_line(line, len, port, &t)) {
	case TARGET_SKIP:
		return false;
	case TARGET_PASSTHROUGH:
		sc->st.passthrough++;
		emit_line(sc, line, len, MXS_OUT_NONE);
		return false;
	case TARGET_BAD:
		sc->st.targets++;
		snprintf(t.ip, sizeof(t.ip), "%s", "");
		emit_undialled(sc, &t, MXS_OUT_BAD_TARGET, t.error ? t.error : "bad input line");
		target_free(&t);
		return false;
	case TARGET_OK:
		if (sc->o.nports > 0 && t.proto == NULL && sc->o.proto == NULL)
			t.proto = mxs_proto_for_port(port);
		admit(sc, &t);
		/* A JSON target names its own port: it is probed once. */
		while (len > 0 && (*line == ' ' || *line == '\t')) {
			line++;
			len--;
		}
		return len > 0 && *line != '{';
	}
	return false;
}

void mxs_scanner_add_line(struct mxs_scanner *sc, const char *line, size_t len)
{
	sc->st.lines++;
	if (sc->o.nports == 0) {
		add_line_on(sc, line, len, sc->o.port);
		return;
	}
	/* --ports: an address line becomes one target per port; other lines stay one. */
	for (int i = 0; i < sc->o.nports; i++)
		if (!add_line_on(sc, line, len, sc->o.ports[i]))
			return;
}

void mxs_scanner_add_json(struct mxs_scanner *sc, const json_t *o)
{
	struct mxs_target t;

	sc->st.lines++;
	if (target_from_json(o, sc->o.port, &t) != TARGET_OK) {
		char *dump = json_dumps(o, JSON_COMPACT);
		target_free(&t);
		sc->st.targets++;
		t.input = dump;
		emit_undialled(sc, &t, MXS_OUT_BAD_TARGET, "target object without a valid ip");
		target_free(&t);
		return;
	}
	admit(sc, &t);
}

void mxs_scanner_mark_done(struct mxs_scanner *sc, const char *ip, int port)
{
	struct mxs_target t;
	struct addr_key k;
	int32_t *v;
	char line[128];

	snprintf(line, sizeof(line), "%s", ip);
	if (target_parse_line(line, strlen(line), port, &t) != TARGET_OK) {
		target_free(&t);
		return;
	}
	addr_key_make(&k, (const struct sockaddr *)&t.sa, 32, 128, (uint16_t)port);
	if ((v = addrmap_get(&sc->seen, &k)) != NULL)
		*v = -1;
	target_free(&t);
}

int mxs_scanner_mark_resumed(struct mxs_scanner *sc, const char *ip, int port, const char *mx,
			     enum mxs_outcome outcome, bool tls, const struct strv *names)
{
	struct mxs_target t;
	struct addr_key k;
	int32_t *v;
	char line[128];
	int plan, rc = -1;

	snprintf(line, sizeof(line), "%s", ip);
	if (target_parse_line(line, strlen(line), port, &t) != TARGET_OK) {
		target_free(&t);
		return 0;
	}
	addr_key_make(&k, (const struct sockaddr *)&t.sa, 32, 128, (uint16_t)port);
	if ((v = addrmap_get(&sc->seen, &k)) == NULL)
		goto out;
	if (*v != 0) {
		rc = 0;   /* marked already */
		goto out;
	}
	t.port = port;
	if (mx != NULL && (t.mx = strdup(mx)) == NULL)
		goto out;
	if ((plan = plan_resumed(sc, &t, outcome, tls, names)) < 0)
		goto out;
	*v = plan + 1;
	rc = 0;
out:
	target_free(&t);
	return rc;
}

/* ---- slots and starting sessions ---- */

static void slot_keys(const struct session *s, struct addr_key *ip, struct addr_key *net)
{
	const struct sockaddr *sa = (const struct sockaddr *)&s->tgt.sa;
	addr_key_make(ip, sa, 32, 128, 0);
	addr_key_make(net, sa, NET_PREFIX4, NET_PREFIX6, 0);
}

static bool target_startable(const struct mxs_scanner *sc, const struct mxs_target *t)
{
	struct addr_key ip, net;
	const struct sockaddr *sa = (const struct sockaddr *)&t->sa;

	addr_key_make(&ip, sa, 32, 128, 0);
	addr_key_make(&net, sa, NET_PREFIX4, NET_PREFIX6, 0);
	return addrmap_peek(&sc->per_ip, &ip) < sc->o.per_ip &&
	       addrmap_peek(&sc->per_net, &net) < sc->o.per_net;
}

int engine_acquire_slots(struct mxs_scanner *sc, struct session *s)
{
	struct addr_key ip, net;
	int32_t *a, *b;

	if (s->holds_slots)
		return 0;
	if (!target_startable(sc, &s->tgt))
		return -1;
	slot_keys(s, &ip, &net);
	a = addrmap_get(&sc->per_ip, &ip);
	b = addrmap_get(&sc->per_net, &net);
	if (a == NULL || b == NULL)
		return -1;
	(*a)++;
	(*b)++;
	s->holds_slots = true;
	return 0;
}

void engine_release_slots(struct mxs_scanner *sc, struct session *s)
{
	struct addr_key ip, net;
	int32_t *a, *b;

	if (!s->holds_slots)
		return;
	slot_keys(s, &ip, &net);
	if ((a = addrmap_get(&sc->per_ip, &ip)) != NULL && *a > 0)
		(*a)--;
	if ((b = addrmap_get(&sc->per_net, &net)) != NULL && *b > 0)
		(*b)--;
	s->holds_slots = false;
	schedule_pump(sc);
}

void engine_session_waiting(struct mxs_scanner *sc, struct session *s, bool waiting)
{
	(void)s;
	if (waiting) {
		sc->inflight--;
		sc->waiting++;
	} else {
		sc->waiting--;
		sc->inflight++;
	}
	schedule_pump(sc);
}

int engine_fd_exhausted(struct mxs_scanner *sc)
{
	int now = (int)sc->inflight;

	if (now <= 16)
		return -1;
	if (sc->o.concurrency > now - 8)
		sc->o.concurrency = now - 8;
	if (!sc->fd_warned) {
		mxs_warn("scan", "out of file descriptors: concurrency lowered to %d", sc->o.concurrency);
		sc->fd_warned = true;
	}
	return 0;
}

/* Put a session's target back into the window (it was never tried). */
static int requeue(struct mxs_scanner *sc, struct session *s)
{
	struct mxs_target *t;

	if (sc->nwin == sc->capwin || (t = malloc(sizeof(*t))) == NULL)
		return -1;
	*t = s->tgt;
	memset(&s->tgt, 0, sizeof(s->tgt));
	sc->win[sc->nwin++] = t;
	sc->started--;
	return 0;
}

void engine_session_done(struct mxs_scanner *sc, struct session *s)
{
	LIST_REMOVE(s, link);
	sc->inflight--;
	if (!s->requeue || requeue(sc, s) < 0) {
		if (s->requeue) {
			s->rec.outcome = MXS_OUT_LOCAL_ERROR;
			mxs_record_detail(&s->rec, "out of file descriptors");
		}
		if (s->tgt.legacy > 0) {
			/* A legacy probe's answer goes into the held record's support object. */
			legacy_probe_done(sc, s);
		} else {
			/* A follow-up probe (SNI, certificate re-fetch) has no record of its own:
			 * its verdicts are name lines. */
			if (s->tgt.sni_name == 0 && !s->tgt.refetch && !legacy_hold(sc, s))
				engine_emit_record(sc, &s->rec);
			if (s->tgt.plan > 0)
				plan_probe_done(sc, s);
		}
	}
	session_free(s);
	schedule_pump(sc);
	check_finished(sc);
}

static bool take_token(struct mxs_scanner *sc)
{
	int64_t now;
	double burst;

	if (sc->o.rate <= 0)
		return true;
	now = mxs_mono_ms();
	burst = sc->o.rate / 20 > 1 ? sc->o.rate / 20 : 1;
	sc->tokens += (double)(now - sc->t_tokens) * sc->o.rate / 1000.0;
	if (sc->tokens > burst)
		sc->tokens = burst;
	sc->t_tokens = now;
	if (sc->tokens < 1) {
		double wait_ms = (1 - sc->tokens) * 1000.0 / sc->o.rate;
		struct timeval tv = { (time_t)(wait_ms / 1000), (suseconds_t)((long)wait_ms % 1000 * 1000 + 1000) };
		if (!evtimer_pending(sc->rate_ev, NULL))
			evtimer_add(sc->rate_ev, &tv);
		return false;
	}
	sc->tokens -= 1;
	return true;
}

/* Pick a startable target from the window: random probes, then a bounded sweep. */
static ssize_t pick_target(struct mxs_scanner *sc)
{
	size_t start;

	for (int i = 0; i < 16 && sc->nwin > 0; i++) {
		size_t j = (size_t)(rng_next(sc) % sc->nwin);
		if (target_startable(sc, sc->win[j]))
			return (ssize_t)j;
	}
	start = sc->nwin ? (size_t)(rng_next(sc) % sc->nwin) : 0;
	for (size_t i = 0; i < sc->nwin && i < 4096; i++) {
		size_t j = (start + i) % sc->nwin;
		if (target_startable(sc, sc->win[j]))
			return (ssize_t)j;
	}
	return -1;
}

static void start_one(struct mxs_scanner *sc, size_t j)
{
	struct mxs_target *t = sc->win[j];
	struct session *s;

	sc->win[j] = sc->win[--sc->nwin];
	if (t->plan > 0 && t->sni_name == 0 && t->legacy == 0 && !t->refetch)
		sc->plans[t->plan - 1]->state = PLAN_RUNNING;
	s = session_new(sc, t);
	if (s == NULL) {
		emit_undialled(sc, t, MXS_OUT_LOCAL_ERROR, "out of memory starting the probe");
		target_free(t);
		free(t);
		return;
	}
	free(t);
	LIST_INSERT_HEAD(&sc->active, s, link);
	sc->inflight++;
	sc->started++;
	engine_acquire_slots(sc, s);
	session_connect(s);
	session_maybe_release(s);
}

static void pump(evutil_socket_t fd, short what, void *arg)
{
	struct mxs_scanner *sc = arg;
	size_t before = sc->nwin;
	(void)fd;
	(void)what;

	while (!sc->stopping && !sc->out_stalled && sc->nwin > 0 &&
	       sc->inflight < (size_t)sc->o.concurrency) {
		ssize_t j = pick_target(sc);
		if (j < 0 || !take_token(sc))
			break;
		start_one(sc, (size_t)j);
	}
	if (sc->want != NULL && !sc->input_done && !sc->stopping && mxs_scanner_room(sc) > 0 &&
	    (sc->nwin < before || sc->nwin == 0))
		sc->want(sc->cb_arg);
	check_finished(sc);
}

static void rate_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pump(-1, 0, arg);
}

size_t mxs_scanner_room(const struct mxs_scanner *sc)
{
	size_t cap = sc->o.window;
	if (sc->out_stalled)
		return 0;
	if (cap < (size_t)sc->o.concurrency * 2)
		cap = (size_t)sc->o.concurrency * 2;
	return sc->nwin >= cap ? 0 : cap - sc->nwin;
}

/* ---- status, stop ---- */

static void fmt_hms(int64_t ms, char *buf, size_t len)
{
	int64_t s = ms / 1000;
	snprintf(buf, len, "%02lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60),
		 (long long)(s % 60));
}

void mxs_scanner_print_status(struct mxs_scanner *sc, bool final)
{
	int64_t el = mxs_mono_ms() - sc->t_start;
	double f = sc->progress ? sc->progress(sc->cb_arg) : -1;
	uint64_t done = sc->st.records;
	char elapsed[32], eta[32] = "--:--:--", pct[32] = "", stalled[64] = "";
	double cps = (double)(sc->started - sc->started_last);
	double share = done ? 100.0 * (double)sc->tls_ok / (double)done : 0;

	if (final)
		cps = el > 0 ? (double)sc->started * 1000.0 / (double)el : 0;
	fmt_hms(el, elapsed, sizeof(elapsed));
	/* The input fraction counts targets still queued: scale it by what is done of those read. */
	if (f > 0 && sc->st.targets > 0) {
		double frac = f * (double)done / (double)sc->st.targets;
		if (frac > 0.001)
			fmt_hms((int64_t)((double)el * (1 - frac) / frac), eta, sizeof(eta));
	}
	if (f > 0 && sc->st.targets > 0)
		snprintf(pct, sizeof(pct), " (%.1f%%)", 100.0 * (final ? 1.0 : f * (double)done / (double)sc->st.targets));
	if (sc->out_stalled && !final)
		snprintf(stalled, sizeof(stalled), " output stalled %llds (no new targets)",
			 (long long)((mxs_mono_ms() - sc->t_out_stall) / 1000));
	fprintf(stderr, "%s %s done %llu%s inflight %zu waiting %zu queued %zu %.0f conn/s tls %.1f%% eta %s%s%s\n",
		final ? "scan: finished" : "scan:", elapsed, (unsigned long long)done, pct, sc->inflight,
		sc->waiting, sc->nwin, cps, share, final ? "00:00:00" : eta, stalled,
		sc->stopping ? " stopping" : "");
	sc->started_last = sc->started;
	sc->records_last = done;
}

static void status_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	mxs_scanner_print_status(arg, false);
}

static void interrupt_all(struct mxs_scanner *sc)
{
	sc->interrupting = true;
	while (!LIST_EMPTY(&sc->active)) {
		struct session *s = LIST_FIRST(&sc->active);
		session_interrupt(s);
		session_maybe_release(s);
	}
	check_finished(sc);
}

static void drain_expired(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	interrupt_all(arg);
}

void mxs_scanner_stop(struct mxs_scanner *sc)
{
	struct timeval tv;

	if (sc->stopping) {
		interrupt_all(sc);
		return;
	}
	sc->stopping = true;
	legacy_stop(sc);
	mxs_info("scan", "stopping: %zu in flight get %d ms to finish, %zu queued targets stay unscanned",
		 sc->inflight, sc->o.drain_timeout_ms, sc->nwin);
	tv.tv_sec = sc->o.drain_timeout_ms / 1000;
	tv.tv_usec = (sc->o.drain_timeout_ms % 1000) * 1000;
	evtimer_add(sc->drain_ev, &tv);
	/* Sessions waiting to retry have no connection to drain. */
	for (struct session *s = LIST_FIRST(&sc->active), *next; s != NULL; s = next) {
		next = LIST_NEXT(s, link);
		if (s->state == ST_RETRY_WAIT) {
			session_interrupt(s);
			session_maybe_release(s);
		}
	}
	check_finished(sc);
}

void mxs_scanner_output_stalled(struct mxs_scanner *sc, bool stalled)
{
	if (stalled == sc->out_stalled)
		return;
	sc->out_stalled = stalled;
	if (stalled)
		sc->t_out_stall = mxs_mono_ms();
	else
		schedule_pump(sc);
}

void mxs_scanner_input_done(struct mxs_scanner *sc)
{
	sc->input_done = true;
	schedule_pump(sc);
}

int mxs_scanner_finished(const struct mxs_scanner *sc)
{
	return sc->finished;
}

const struct mxs_scan_stats *mxs_scanner_stats(const struct mxs_scanner *sc)
{
	return &sc->st;
}

const struct mxs_scan_opts *mxs_scanner_opts(const struct mxs_scanner *sc)
{
	return &sc->o;
}

const char *mxs_scanner_ehlo_name(const struct mxs_scanner *sc)
{
	return sc->ehlo_name;
}

const char *mxs_scanner_profile(const struct mxs_scanner *sc)
{
	return sc->tls.profile;
}

void mxs_scanner_set_callbacks(struct mxs_scanner *sc, mxs_want_fn want, mxs_done_fn done,
			       mxs_progress_fn progress, void *arg)
{
	sc->want = want;
	sc->done = done;
	sc->progress = progress;
	sc->cb_arg = arg;
}

/* ---- construction ---- */

static void raise_fd_limit(struct mxs_scanner *sc)
{
	struct rlimit rl;

	rlim_t want = (rlim_t)sc->o.concurrency + 256;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	/* Privileged processes may lift the hard limit too (up to fs.nr_open). */
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
		struct rlimit up = { want, want };
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl = up;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)sc->o.concurrency + 64 > rl.rlim_cur) {
		int c = rl.rlim_cur > 128 ? (int)rl.rlim_cur - 64 : 64;
		mxs_warn("scan", "open-file limit %llu: concurrency lowered from %d to %d",
			 (unsigned long long)rl.rlim_cur, sc->o.concurrency, c);
		sc->o.concurrency = c;
	}
}

static void choose_ehlo_name(struct mxs_scanner *sc)
{
	if (sc->o.ehlo_name != NULL) {
		snprintf(sc->ehlo_name, sizeof(sc->ehlo_name), "%s", sc->o.ehlo_name);
		sc->ehlo_is_fqdn = true;
		return;
	}
	if (gethostname(sc->ehlo_name, sizeof(sc->ehlo_name) - 1) != 0)
		sc->ehlo_name[0] = '\0';
	/* A bare host name is no FQDN (RFC 5321 4.1.4): use the address literal instead. */
	sc->ehlo_is_fqdn = strchr(sc->ehlo_name, '.') != NULL;
	if (!sc->ehlo_is_fqdn)
		mxs_warn("scan", "host name '%s' is not a FQDN: EHLO will send address literals; "
			 "name your scanner with --ehlo-name", sc->ehlo_name);
}

struct mxs_scanner *mxs_scanner_new(struct event_base *base, const struct mxs_scan_opts *opts,
				    mxs_emit_fn emit, void *arg, char *err, size_t errlen)
{
	struct mxs_scanner *sc = calloc(1, sizeof(*sc));

	if (sc == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	sc->base = base;
	sc->o = *opts;
	sc->emit = emit;
	sc->emit_arg = arg;
	LIST_INIT(&sc->active);
	addrmap_init(&sc->per_ip);
	addrmap_init(&sc->per_net);
	/* connections per address and per network: only the counters in use need keeping */
	sc->per_ip.drop_zero = sc->per_net.drop_zero = true;
	addrmap_init(&sc->seen);
	if (sc->o.concurrency < 1)
		sc->o.concurrency = 1;
	if (sc->o.per_ip < 1)
		sc->o.per_ip = 1;
	if (sc->o.per_net < sc->o.per_ip)
		sc->o.per_net = sc->o.per_ip;
	if (sc->o.shard_count < 1)
		sc->o.shard_count = 1;
	sc->rng = sc->o.seed ? sc->o.seed : (uint64_t)mxs_wall_ms() ^ (uint64_t)getpid() << 32;
	if (sc->rng == 0)
		sc->rng = 0x9e3779b97f4a7c15ULL;
	sc->proto = mxs_proto_find(sc->o.proto != NULL ? sc->o.proto : "smtp");
	if (sc->proto == NULL) {
		snprintf(err, errlen, "unknown protocol '%s'", sc->o.proto);
		goto fail;
	}
	if (tls_client_init(&sc->tls, sc->o.profile, sc->o.ca_file, err, errlen) < 0)
		goto fail;
	if ((sc->chains = chainstore_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	sc->bl = mxs_blocklist_new();
	if (sc->bl == NULL || (sc->o.default_blocklist && mxs_blocklist_add_defaults(sc->bl) < 0)) {
		snprintf(err, errlen, "cannot build the blocklist");
		goto fail;
	}
	if (sc->o.blocklist && mxs_blocklist_load_file(sc->bl, sc->o.blocklist, 0, err, errlen) < 0)
		goto fail;
	if (sc->o.allowlist && mxs_blocklist_load_file(sc->bl, sc->o.allowlist, 1, err, errlen) < 0)
		goto fail;
	choose_ehlo_name(sc);
	raise_fd_limit(sc);
	sc->pump_ev = event_new(base, -1, 0, pump, sc);
	sc->rate_ev = evtimer_new(base, rate_tick, sc);
	sc->drain_ev = evtimer_new(base, drain_expired, sc);
	sc->status_ev = event_new(base, -1, EV_PERSIST, status_tick, sc);
	if (!sc->pump_ev || !sc->rate_ev || !sc->drain_ev || !sc->status_ev) {
		snprintf(err, errlen, "cannot create events");
		goto fail;
	}
	if (sc->o.status) {
		struct timeval sec = { 1, 0 };
		evtimer_add(sc->status_ev, &sec);
	}
	sc->t_start = mxs_mono_ms();
	sc->t_tokens = sc->t_start;
	sc->tokens = 1;
	return sc;
fail:
	mxs_scanner_free(sc);
	return NULL;
}

void mxs_scanner_free(struct mxs_scanner *sc)
{
	if (sc == NULL)
		return;
	while (!LIST_EMPTY(&sc->active)) {
		struct session *s = LIST_FIRST(&sc->active);
		LIST_REMOVE(s, link);
		session_free(s);
	}
	for (size_t i = 0; i < sc->nwin; i++) {
		target_free(sc->win[i]);
		free(sc->win[i]);
	}
	free(sc->win);
	addrmap_free(&sc->per_ip);
	addrmap_free(&sc->per_net);
	addrmap_free(&sc->seen);
	legacy_free_all(sc);
	if (sc->chains != NULL && chainstore_refs(sc->chains) > 0)
		mxs_info("scan", "plan_chains plans=%zu kept=%llu distinct=%zu bytes=%llu", sc->nplans,
			 (unsigned long long)chainstore_refs(sc->chains), chainstore_count(sc->chains),
			 (unsigned long long)chainstore_bytes(sc->chains));
	plan_free_all(sc);
	chainstore_free(sc->chains);
	if (sc->pump_ev)
		event_free(sc->pump_ev);
	if (sc->rate_ev)
		event_free(sc->rate_ev);
	if (sc->drain_ev)
		event_free(sc->drain_ev);
	if (sc->status_ev)
		event_free(sc->status_ev);
	mxs_blocklist_free(sc->bl);
	if (sc->tls.verified + sc->tls.cached > 0)
		mxs_info("tls", "chain_verdicts verified=%llu cached=%llu", (unsigned long long)sc->tls.verified,
			 (unsigned long long)sc->tls.cached);
	tls_client_free(&sc->tls);
	free(sc);
}
