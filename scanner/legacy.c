/* The legacy probes' questions (legacy.h). */
#include "legacy.h"

#include <string.h>

#include "tls_hello.h"
#include "tls_suites.h"

const char *const legacy_q_names[LQ_LAST] = {
	[LQ_LOW] = "low", [LQ_WEAK] = "weak", [LQ_SSL3] = "sslv3", [LQ_DHE] = "dhe",
	[LQ_INJECT] = "inject", [LQ_TLS10] = "tls1_0", [LQ_SCSV] = "fallback_scsv",
	[LQ_TLS12] = "tls1_2", [LQ_TLS13] = "tls1_3", [LQ_TLS11] = "tls1_1",
	[LQ_ORDER] = "server_order", [LQ_CBC] = "cbc_only", [LQ_GROUPS] = "groups",
};

/* How often a repeated question may be asked: once per class or group at most. */
#define WEAK_MAX (MXS_SC_LAST + 1)
#define GROUPS_MAX 11
/* Answers that are not TLS (garbage, a timeout) before any TLS answer end the probes. */
#define NOT_TLS_MAX 2

#define WEAK_FLAGS (TLS_SF_RC4 | TLS_SF_3DES | TLS_SF_EXPORT | TLS_SF_NULL | TLS_SF_ANON)

static int sv_of(uint16_t wire)
{
	return wire >= TLS_V_SSL3 && wire <= TLS_V_TLS13 ? wire - TLS_V_SSL3 : -1;
}

static uint16_t wire_of(int sv)
{
	return (uint16_t)(TLS_V_SSL3 + sv);
}

static void set_version(struct legacy_run *l, int sv, int yes)
{
	if (sv >= 0 && sv < MXS_SV_LAST && l->u->version[sv] < 0)
		l->u->version[sv] = yes;
}

void legacy_start(struct legacy_run *l, struct mxs_support_rec *u, const char *first_version,
		  const char *first_cipher, bool starttls, int budget)
{
	static const char *const names[MXS_SV_LAST] = { "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3" };

	memset(l, 0, sizeof(*l));
	l->u = u;
	l->budget = budget;
	l->starttls = starttls;
	u->budget = budget;
	/* OpenSSL offered TLS 1.0-1.3: what it negotiated is the server's highest version */
	for (int v = 0; first_version != NULL && v < MXS_SV_LAST; v++)
		if (strcmp(first_version, names[v]) == 0) {
			l->first_known = true;
			u->version[v] = 1;
			for (int w = v + 1; w < MXS_SV_LAST; w++)
				u->version[w] = 0;
			if (v == MXS_SV_TLS13 && first_cipher != NULL)
				for (size_t i = 0; i < tls_nsuites; i++)
					if (strcmp(tls_suites[i].name, first_cipher) == 0)
						u->prefer[v] = tls_suites[i].name;
		}
	/* an AEAD suite negotiated at any version: not CBC-only (the preference per version
	 * below 1.3 is still asked: OpenSSL's offer is not ours) */
	for (size_t i = 0; l->first_known && first_cipher != NULL && i < tls_nsuites; i++)
		if (strcmp(tls_suites[i].name, first_cipher) == 0 && (tls_suites[i].flags & TLS_SF_AEAD))
			u->cbc_only = 0;
}

/* The server's highest version, when known: accepted, and every higher one refused. */
static int max_known(const struct legacy_run *l)
{
	for (int v = MXS_SV_LAST - 1; v >= 0; v--) {
		if (l->u->version[v] == 1)
			return v;
		if (l->u->version[v] != 0)
			return -1;
	}
	return -1;
}

/* The version weak suites are offered at: the lowest TLS version known accepted, else 1.2. */
static int weak_version(const struct legacy_run *l)
{
	for (int v = MXS_SV_TLS10; v <= MXS_SV_TLS12; v++)
		if (l->u->version[v] == 1)
			return v;
	if (l->u->version[MXS_SV_SSL3] == 1 && l->u->version[MXS_SV_TLS10] == 0 &&
	    l->u->version[MXS_SV_TLS11] == 0 && l->u->version[MXS_SV_TLS12] == 0)
		return MXS_SV_SSL3;
	return MXS_SV_TLS12;
}

/* The highest version at or below TLS 1.2 known accepted, else 1.2. */
static int classic_version(const struct legacy_run *l)
{
	for (int v = MXS_SV_TLS12; v >= MXS_SV_SSL3; v--)
		if (l->u->version[v] == 1)
			return v;
	return MXS_SV_TLS12;
}

static unsigned unknown_classes(const struct legacy_run *l)
{
	static const unsigned flag[MXS_SC_LAST] = { TLS_SF_RC4, TLS_SF_3DES, TLS_SF_EXPORT,
		TLS_SF_NULL, TLS_SF_ANON };
	unsigned m = 0;
	for (int c = 0; c < MXS_SC_LAST; c++)
		if (l->u->cls[c] < 0)
			m |= flag[c];
	return m;
}

static bool any_tls_accepted(const struct legacy_run *l)
{
	for (int v = 0; v < MXS_SV_LAST; v++)
		if (l->u->version[v] == 1)
			return true;
	return false;
}

/* cbc_only when the answers already tell; else -1 (a question can). */
static int cbc_known(const struct legacy_run *l)
{
	const struct mxs_support_rec *u = l->u;
	if (u->version[MXS_SV_TLS13] == 1)
		return 0;
	for (int v = 0; v < MXS_SV_TLS13; v++) {
		const struct tls_suite *s = NULL;
		for (size_t i = 0; u->prefer[v] != NULL && i < tls_nsuites; i++)
			if (tls_suites[i].name == u->prefer[v])
				s = &tls_suites[i];
		if (s != NULL && (s->flags & TLS_SF_AEAD))
			return 0;
	}
	if (u->version[MXS_SV_TLS12] == 0 && u->version[MXS_SV_TLS13] == 0 && any_tls_accepted(l))
		return 1;
	return -1;
}

static bool group_known(const struct legacy_run *l, const char *name)
{
	for (size_t i = 0; i < l->u->groups.n; i++)
		if (strcmp(l->u->groups.v[i], name) == 0)
			return true;
	return false;
}

/* Is question q worth asking now? */
static bool needed(const struct legacy_run *l, enum legacy_q q)
{
	const struct mxs_support_rec *u = l->u;
	int m;

	switch (q) {
	case LQ_LOW: return l->asked[q] == 0;
	case LQ_WEAK: return l->asked[q] < WEAK_MAX && unknown_classes(l) != 0;
	case LQ_SSL3: return l->asked[q] == 0 && u->version[MXS_SV_SSL3] < 0;
	case LQ_DHE: return l->asked[q] == 0 && u->dhe_bits < 0;
	case LQ_INJECT: return l->asked[q] == 0 && l->starttls && u->injection < 0;
	case LQ_TLS10: return l->asked[q] == 0 && u->version[MXS_SV_TLS10] < 0;
	case LQ_SCSV:
		m = max_known(l);
		return l->asked[q] == 0 && u->fallback_scsv < 0 && m > MXS_SV_TLS10;
	case LQ_TLS12: return l->asked[q] == 0 && u->version[MXS_SV_TLS12] < 0;
	case LQ_TLS13: return l->asked[q] == 0 && u->version[MXS_SV_TLS13] < 0;
	case LQ_TLS11: return l->asked[q] == 0 && u->version[MXS_SV_TLS11] < 0;
	case LQ_ORDER: return l->asked[q] == 0 && u->server_order < 0 && l->order_version != 0;
	case LQ_CBC:
		return l->asked[q] == 0 && u->cbc_only < 0 && cbc_known(l) < 0 &&
		       u->version[MXS_SV_TLS12] == 1;
	case LQ_GROUPS:
		return l->asked[q] < GROUPS_MAX && !l->groups_done &&
		       (u->version[MXS_SV_TLS13] == 1 || u->version[MXS_SV_TLS12] == 1 ||
			u->version[MXS_SV_TLS11] == 1 || u->version[MXS_SV_TLS10] == 1);
	case LQ_LAST: break;
	}
	return false;
}

/* Answers that follow from others without a connection. */
static void infer(struct legacy_run *l)
{
	int c = cbc_known(l);
	if (l->u->cbc_only < 0 && c >= 0)
		l->u->cbc_only = c;
}

/*
 * The order questions are asked in. Early entries apply only when what came before
 * left them open: TLS 1.0 right after LQ_LOW when that got no clear answer (a server
 * intolerant of a higher client_version closes on it), TLS 1.2 and 1.3 before the rest
 * when the first probe's handshake told nothing (a server OpenSSL cannot talk to).
 */
static const struct {
	enum legacy_q q;
	enum { ANY, AFTER_UNCLEAR_LOW, NO_FIRST } when;
} order[] = {
	{ LQ_LOW, ANY }, { LQ_TLS10, AFTER_UNCLEAR_LOW }, { LQ_WEAK, ANY }, { LQ_SSL3, ANY },
	{ LQ_TLS12, NO_FIRST }, { LQ_TLS13, NO_FIRST }, { LQ_DHE, ANY }, { LQ_INJECT, ANY },
	{ LQ_TLS10, ANY }, { LQ_SCSV, ANY }, { LQ_TLS12, ANY }, { LQ_TLS13, ANY },
	{ LQ_TLS11, ANY }, { LQ_ORDER, ANY }, { LQ_CBC, ANY }, { LQ_GROUPS, ANY },
};

enum legacy_q legacy_next(struct legacy_run *l)
{
	infer(l);
	for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
		enum legacy_q q = order[k].q;
		if (order[k].when == AFTER_UNCLEAR_LOW && !l->low_unclear)
			continue;
		if (order[k].when == NO_FIRST && l->first_known)
			continue;
		if (!needed(l, q))
			continue;
		if (l->stopped || l->u->connections >= l->budget) {
			l->u->exhausted = true;
			return LQ_LAST;
		}
		return q;
	}
	return LQ_LAST;
}

/* Append every suite of the table matching the filter, reversed when asked. */
static void pick_suites(struct legacy_run *l, int sv, unsigned need_any, unsigned exclude,
			int kx, bool reverse)
{
	l->nsuites = 0;
	for (size_t k = 0; k < tls_nsuites && l->nsuites < sizeof(l->suites) / sizeof(l->suites[0]); k++) {
		size_t i = reverse ? tls_nsuites - 1 - k : k;
		const struct tls_suite *s = &tls_suites[i];
		if ((s->kx == TLS_KX_TLS13) != (sv == MXS_SV_TLS13))
			continue;
		if (need_any != 0 && (s->flags & need_any) == 0)
			continue;
		if (s->flags & exclude)
			continue;
		if (kx >= 0 && (int)s->kx != kx)
			continue;
		if (sv == MXS_SV_SSL3 && (s->flags & TLS_SF_TLS12))
			continue;
		l->suites[l->nsuites++] = s->code;
	}
}

static void pick_groups(struct legacy_run *l, bool only_unknown, bool ec_only)
{
	l->ngroups = 0;
	for (size_t i = 0; i < tls_ngroups; i++) {
		if (only_unknown && group_known(l, tls_groups[i].name))
			continue;
		if (ec_only && tls_groups[i].ffdhe)
			continue;
		l->groups[l->ngroups++] = tls_groups[i].code;
	}
}

size_t legacy_hello(struct legacy_run *l, enum legacy_q q, const char *sni, const uint8_t random[32],
		    const uint8_t x25519[32], uint8_t *out, size_t cap, bool *want_kx)
{
	struct tls_hello h = { .reneg = true, .sni = sni, .random = random };
	int sv = MXS_SV_TLS12;
	bool share = false;

	*want_kx = true;
	pick_groups(l, false, false);
	switch (q) {
	case LQ_LOW:
		sv = MXS_SV_TLS11;
		pick_suites(l, sv, 0, 0, -1, false);
		break;
	case LQ_WEAK:
		sv = weak_version(l);
		pick_suites(l, sv, unknown_classes(l), TLS_SF_AEAD, -1, false);
		*want_kx = false;
		break;
	case LQ_SSL3:
		sv = MXS_SV_SSL3;
		pick_suites(l, sv, 0, 0, -1, false);
		break;
	case LQ_DHE:
		sv = classic_version(l);
		pick_suites(l, sv, 0, TLS_SF_EXPORT, TLS_KX_DHE, false);
		break;
	case LQ_TLS10: sv = MXS_SV_TLS10; pick_suites(l, sv, 0, 0, -1, false); break;
	case LQ_TLS11: sv = MXS_SV_TLS11; pick_suites(l, sv, 0, 0, -1, false); break;
	case LQ_TLS12: sv = MXS_SV_TLS12; pick_suites(l, sv, 0, 0, -1, false); break;
	case LQ_SCSV:
		sv = max_known(l) - 1;
		if (sv > MXS_SV_TLS12)
			sv = MXS_SV_TLS12;
		pick_suites(l, sv, 0, 0, -1, false);
		h.fallback_scsv = true;
		break;
	case LQ_TLS13:
		sv = MXS_SV_TLS13;
		pick_suites(l, sv, 0, 0, -1, false);
		share = true;
		break;
	case LQ_ORDER:
		sv = sv_of(l->order_version);
		pick_suites(l, sv, 0, 0, -1, true);
		*want_kx = false;
		break;
	case LQ_CBC:
		sv = MXS_SV_TLS12;
		pick_suites(l, sv, TLS_SF_AEAD, 0, -1, false);
		*want_kx = false;
		break;
	case LQ_GROUPS:
		if (l->u->version[MXS_SV_TLS13] == 1) {
			sv = MXS_SV_TLS13;
			pick_suites(l, sv, 0, 0, -1, false);
			pick_groups(l, true, false);
			share = true;
		} else {
			sv = classic_version(l);
			pick_suites(l, sv, 0, 0, TLS_KX_ECDHE, false);
			pick_groups(l, true, true);
		}
		break;
	case LQ_INJECT: case LQ_LAST:
		return 0;
	}
	if (sv < 0)
		return 0;
	h.version = wire_of(sv);
	h.suites = l->suites;
	h.nsuites = l->nsuites;
	h.groups = l->groups;
	h.ngroups = l->ngroups;
	if (share)
		for (size_t i = 0; i < l->ngroups; i++)
			if (l->groups[i] == 0x001d)
				h.x25519 = x25519;
	return tls_hello_write(&h, out, cap);
}

static bool offered(const struct legacy_run *l, uint16_t suite)
{
	for (size_t i = 0; i < l->nsuites; i++)
		if (l->suites[i] == suite)
			return true;
	return false;
}

static void add_group(struct legacy_run *l, uint16_t code)
{
	const struct tls_group *g = tls_group_find(code);

	if (g == NULL)
		return;
	if (!group_known(l, g->name))
		strv_push(&l->u->groups, g->name);
}

/* What any ServerHello tells, whatever the question. */
static void hello_facts(struct legacy_run *l, const struct tls_answer *a, int offered_max)
{
	const struct tls_suite *s = tls_suite_find(a->suite);
	struct mxs_support_rec *u = l->u;
	int v = sv_of(a->version);

	if (s == NULL || !offered(l, a->suite) || v < 0)
		return;               /* not what we offered: read nothing into it */
	set_version(l, v, 1);
	if (offered_max >= 0 && v < MXS_SV_TLS13)
		for (int w = v + 1; w <= offered_max && w < MXS_SV_TLS13; w++)
			set_version(l, w, 0);
	if (s->flags & TLS_SF_RC4) u->cls[MXS_SC_RC4] = 1;
	if (s->flags & TLS_SF_3DES) u->cls[MXS_SC_3DES] = 1;
	if (s->flags & TLS_SF_EXPORT) u->cls[MXS_SC_EXPORT] = 1;
	if (s->flags & TLS_SF_NULL) u->cls[MXS_SC_NULL] = 1;
	if (s->flags & TLS_SF_ANON) u->cls[MXS_SC_ANON] = 1;
	if (v < MXS_SV_TLS13) {
		if (!l->reneg_seen || a->reneg)
			u->secure_reneg = a->reneg;
		l->reneg_seen = true;
	}
	/* authenticated DHE only: servers give anonymous suites other (often smaller) groups */
	if (a->dh_bits > 0 && s->kx == TLS_KX_DHE)
		u->dhe_bits = a->dh_bits;
	if (a->group != 0)
		add_group(l, a->group);
}

/* A hello offering every suite was answered: its choice is the version's preference. */
static void full_list_answer(struct legacy_run *l, const struct tls_answer *a)
{
	int v = sv_of(a->version);
	const struct tls_suite *s = tls_suite_find(a->suite);

	if (a->kind != TLS_ANS_HELLO || s == NULL || v < 0 || !offered(l, a->suite))
		return;
	if (l->u->prefer[v] == NULL)
		l->u->prefer[v] = s->name;
	if (l->order_version == 0 && v < MXS_SV_TLS13) {
		l->order_version = a->version;
		l->order_suite = a->suite;
	}
}

/* An alert to a hello offering every suite of versions up to max: none of them is accepted. */
static void refused_upto(struct legacy_run *l, int max, int min)
{
	for (int v = min; v <= max; v++)
		set_version(l, v, 0);
}

void legacy_answer(struct legacy_run *l, enum legacy_q q, const struct tls_answer *a)
{
	struct mxs_support_rec *u = l->u;
	bool hello = a->kind == TLS_ANS_HELLO || a->kind == TLS_ANS_HRR;
	bool alert = a->kind == TLS_ANS_ALERT;
	/*
	 * A close without a byte of TLS refuses the highest version the hello offered (a
	 * server intolerant of a client_version closes on it: no client gets that version
	 * from it), but tells nothing of the lower ones; and only once the server has
	 * answered one of our hellos with a ServerHello: one that closes on every hello
	 * (say, on suites it does not know) may accept what it never got to answer.
	 */
	bool closed = a->kind == TLS_ANS_BAD && a->closed;
	int v = hello ? sv_of(a->version) : -1;

	/* Two answers that are no TLS at all (not a close) before any TLS answer: the server
	 * (or a middlebox) does not speak TLS there; the rest of the budget would learn nothing. */
	if (hello || alert)
		l->tls_seen = true;
	else if (!(a->kind == TLS_ANS_BAD && a->closed) && ++l->not_tls >= NOT_TLS_MAX && !l->tls_seen)
		l->stopped = true;
	if (hello && !l->hello_seen) {
		l->hello_seen = true;
		for (int w = 0; w < MXS_SV_LAST; w++)
			if (l->closed_mask & (1u << w))
				set_version(l, w, 0);
	}
	if (closed && !l->hello_seen) {
		int max = q == LQ_SSL3 ? MXS_SV_SSL3 : q == LQ_TLS13 ? MXS_SV_TLS13 :
			  q == LQ_TLS10 ? MXS_SV_TLS10 : q == LQ_TLS12 ? MXS_SV_TLS12 :
			  q == LQ_LOW || q == LQ_TLS11 ? MXS_SV_TLS11 : -1;
		if (max >= 0)
			l->closed_mask |= 1u << max;
		closed = false;
	}

	l->asked[q]++;
	switch (q) {
	case LQ_LOW: case LQ_TLS10: case LQ_TLS11: case LQ_TLS12: {
		int max = q == LQ_LOW || q == LQ_TLS11 ? MXS_SV_TLS11 : q == LQ_TLS10 ? MXS_SV_TLS10 : MXS_SV_TLS12;
		if (q == LQ_LOW && !hello && !alert)
			l->low_unclear = true;
		if (hello) {
			hello_facts(l, a, max);
			full_list_answer(l, a);
		} else if (alert) {
			refused_upto(l, max, MXS_SV_TLS10);
		} else if (closed) {
			set_version(l, max, 0);
		}
		break;
	}
	case LQ_WEAK:
		if (hello && offered(l, a->suite)) {
			hello_facts(l, a, -1);
		} else if (alert) {
			for (size_t i = 0; i < l->nsuites; i++) {
				const struct tls_suite *s = tls_suite_find(l->suites[i]);
				if (s->flags & TLS_SF_RC4) u->cls[MXS_SC_RC4] = u->cls[MXS_SC_RC4] < 0 ? 0 : u->cls[MXS_SC_RC4];
				if (s->flags & TLS_SF_3DES) u->cls[MXS_SC_3DES] = u->cls[MXS_SC_3DES] < 0 ? 0 : u->cls[MXS_SC_3DES];
				if (s->flags & TLS_SF_EXPORT) u->cls[MXS_SC_EXPORT] = u->cls[MXS_SC_EXPORT] < 0 ? 0 : u->cls[MXS_SC_EXPORT];
				if (s->flags & TLS_SF_NULL) u->cls[MXS_SC_NULL] = u->cls[MXS_SC_NULL] < 0 ? 0 : u->cls[MXS_SC_NULL];
				if (s->flags & TLS_SF_ANON) u->cls[MXS_SC_ANON] = u->cls[MXS_SC_ANON] < 0 ? 0 : u->cls[MXS_SC_ANON];
			}
		} else {
			l->asked[q] = WEAK_MAX;   /* no clear answer: do not spend more on it */
		}
		break;
	case LQ_SSL3:
		if (hello && v == MXS_SV_SSL3) {
			hello_facts(l, a, -1);
			full_list_answer(l, a);
		} else if (hello || alert || closed) {
			u->version[MXS_SV_SSL3] = 0;
		}
		break;
	case LQ_DHE:
		if (hello) {
			hello_facts(l, a, -1);
		} else if (alert) {
			u->dhe_bits = 0;
		}
		break;
	case LQ_SCSV:
		if (alert && a->alert == TLS_ALERT_INAPPROPRIATE_FALLBACK) {
			u->fallback_scsv = 1;
		} else if (hello) {
			u->fallback_scsv = 0;
			hello_facts(l, a, max_known(l) - 1);
			full_list_answer(l, a);
		} else if (alert && a->alert == TLS_ALERT_PROTOCOL_VERSION) {
			/* the lower version is refused outright: the SCSV was never the question */
			set_version(l, max_known(l) - 1, 0);
		}
		break;
	case LQ_TLS13:
		if (hello && v == MXS_SV_TLS13) {
			const struct tls_suite *s = tls_suite_find(a->suite);
			u->version[MXS_SV_TLS13] = 1;
			if (s != NULL && s->kx == TLS_KX_TLS13 && u->prefer[v] == NULL)
				u->prefer[v] = s->name;
			if (a->group != 0)
				add_group(l, a->group);
		} else if (hello || alert || closed) {
			u->version[MXS_SV_TLS13] = 0;
		}
		break;
	case LQ_ORDER:
		if (hello && a->version == l->order_version && offered(l, a->suite))
			u->server_order = a->suite == l->order_suite;
		break;
	case LQ_CBC:
		if (hello && offered(l, a->suite))
			u->cbc_only = 0;
		else if (alert)
			u->cbc_only = 1;
		break;
	case LQ_GROUPS:
		if (hello && a->group != 0 && tls_group_find(a->group) != NULL) {
			const struct tls_group *g = tls_group_find(a->group);
			bool again = group_known(l, g->name);
			add_group(l, a->group);
			if (again) {
				/* it named a group it was not offered: no progress, take the list as it is */
				l->groups_done = true;
				u->groups_asked = true;
			}
		} else {
			/* an alert: none of the rest is accepted, the list is whole */
			if (alert)
				u->groups_asked = true;
			l->groups_done = true;
		}
		break;
	case LQ_INJECT: case LQ_LAST:
		break;
	}
	infer(l);
}

void legacy_injection(struct legacy_run *l, int verdict)
{
	l->asked[LQ_INJECT]++;
	if (verdict >= 0)
		l->u->injection = verdict;
}

void legacy_failed(struct legacy_run *l, enum legacy_q q)
{
	l->asked[q]++;
	l->stopped = true;
}

void legacy_finish(struct legacy_run *l)
{
	infer(l);
	for (int q = 0; q < LQ_LAST; q++)
		if (needed(l, (enum legacy_q)q))
			l->u->exhausted = true;
}
