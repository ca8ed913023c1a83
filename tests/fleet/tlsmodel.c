/* The canned TLS server of tlsmodel.h. */
#include "tlsmodel.h"

#include <string.h>

/* What the model reads from a ClientHello. */
struct ch {
	unsigned client_version;
	const uint8_t *suites;    /* 2 bytes each */
	size_t nsuites;
	bool has_sv;              /* supported_versions */
	unsigned sv[16];
	size_t nsv;
	unsigned groups[32];
	size_t ngroups;
	unsigned shares[8];       /* key_share groups */
	size_t nshares;
	bool reneg;
	bool fallback;
};

static unsigned be16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

size_t tm_hello_len(const uint8_t *p, size_t n)
{
	return n < 5 ? 0 : 5 + be16(p + 3);
}

static bool parse(const uint8_t *h, size_t len, struct ch *c)
{
	size_t i, end, hl;

	memset(c, 0, sizeof(*c));
	if (len < 9 || h[0] != 22 || h[5] != 1)
		return false;
	hl = (size_t)h[6] << 16 | (size_t)h[7] << 8 | h[8];
	if (9 + hl > len)
		return false;
	end = 9 + hl;
	i = 9;
	if (i + 35 > end)
		return false;
	c->client_version = be16(h + i);
	i += 34;
	i += 1 + (size_t)h[i];
	if (i + 2 > end)
		return false;
	c->nsuites = be16(h + i) / 2;
	i += 2;
	c->suites = h + i;
	i += c->nsuites * 2;
	if (i + 1 > end)
		return false;
	i += 1 + (size_t)h[i];
	if (i > end)
		return false;
	for (size_t k = 0; k < c->nsuites; k++) {
		unsigned s = be16(c->suites + 2 * k);
		if (s == 0x00FF)
			c->reneg = true;
		if (s == 0x5600)
			c->fallback = true;
	}
	if (i + 2 > end)
		return true;
	size_t el = be16(h + i);
	i += 2;
	if (i + el > end)
		return false;
	end = i + el;
	while (i + 4 <= end) {
		unsigned type = be16(h + i), l = be16(h + i + 2);
		const uint8_t *x = h + i + 4;
		if (i + 4 + l > end)
			return false;
		switch (type) {
		case 0xff01:
			c->reneg = true;
			break;
		case 0x002b:
			c->has_sv = true;
			for (size_t k = 1; k + 1 < l && l > 0 && k + 1 <= x[0] && c->nsv < 16; k += 2)
				c->sv[c->nsv++] = be16(x + k);
			break;
		case 0x000a:
			for (size_t k = 2; k + 1 < l && c->ngroups < 32; k += 2)
				c->groups[c->ngroups++] = be16(x + k);
			break;
		case 0x0033:
			for (size_t k = 2; k + 4 <= l && c->nshares < 8;) {
				c->shares[c->nshares++] = be16(x + k);
				k += 4 + be16(x + k + 2);
			}
			break;
		default:
			break;
		}
		i += 4 + l;
	}
	return true;
}

/* A bounded writer. */
struct out {
	uint8_t *p;
	size_t n, cap;
	bool bad;
};

static void put(struct out *o, const void *d, size_t n)
{
	if (o->bad || n > o->cap - o->n) {
		o->bad = true;
		return;
	}
	memcpy(o->p + o->n, d, n);
	o->n += n;
}

static void put8(struct out *o, unsigned v)
{
	uint8_t b = (uint8_t)v;
	put(o, &b, 1);
}

static void put16(struct out *o, unsigned v)
{
	put8(o, v >> 8);
	put8(o, v);
}

static void put24(struct out *o, size_t v)
{
	put8(o, (unsigned)(v >> 16));
	put16(o, (unsigned)v);
}

static size_t alert(uint8_t *out, size_t cap, unsigned version, unsigned desc)
{
	struct out o = { out, 0, cap, false };
	put8(&o, 21);
	put16(&o, version);
	put16(&o, 2);
	put8(&o, 2);
	put8(&o, desc);
	return o.bad ? 0 : o.n;
}

static bool offered(const struct ch *c, unsigned suite)
{
	for (size_t k = 0; k < c->nsuites; k++)
		if (be16(c->suites + 2 * k) == suite)
			return true;
	return false;
}

static bool in(const unsigned *v, size_t n, unsigned x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

/* Suite kinds the model needs to know (a few ranges of the registry). */
static bool is_ecdhe(unsigned s)
{
	return (s >= 0xC006 && s <= 0xC014) || (s >= 0xC015 && s <= 0xC019) ||
	       (s >= 0xC023 && s <= 0xC030) || s == 0xCCA8 || s == 0xCCA9 || s == 0xC0AC ||
	       s == 0xC0AD;
}

static bool is_dhe(unsigned s)
{
	static const unsigned v[] = { 0x0011, 0x0012, 0x0013, 0x0014, 0x0015, 0x0016, 0x0017,
		0x0018, 0x0019, 0x001A, 0x001B, 0x0032, 0x0033, 0x0034, 0x0038, 0x0039, 0x003A,
		0x0040, 0x0045, 0x0067, 0x006A, 0x006B, 0x006C, 0x006D, 0x0088, 0x009E, 0x009F,
		0x00A2, 0x00A3, 0x00A6, 0x00A7, 0xCCAA, 0xC09E, 0xC09F };
	return in(v, sizeof(v) / sizeof(v[0]), s);
}

static bool is_tls12_only(unsigned s)
{
	return (s >= 0x003B && s <= 0x0040) || (s >= 0x0067 && s <= 0x006D) ||
	       (s >= 0x009C && s <= 0x00A7) || (s >= 0xC023 && s <= 0xC030) ||
	       (s >= 0xCCA8 && s <= 0xCCAA) || (s >= 0xC09C && s <= 0xC0AD);
}

static bool is_export(unsigned s)
{
	return s == 0x0003 || s == 0x0006 || s == 0x0008 || s == 0x000B || s == 0x000E ||
	       s == 0x0011 || s == 0x0014 || s == 0x0017 || s == 0x0019 || s == 0x0062 ||
	       s == 0x0064;
}

/* The first common EC group, in the server's order; 0 when none. */
static unsigned ec_group(const struct tm_server *s, const struct ch *c)
{
	for (size_t i = 0; i < s->ngroups; i++)
		if (s->groups[i] < 0x0100 && in(c->groups, c->ngroups, s->groups[i]))
			return s->groups[i];
	return 0;
}

static bool eligible(const struct tm_server *s, const struct ch *c, unsigned suite, unsigned v)
{
	if (is_tls12_only(suite) && v < 0x0303)
		return false;
	if (is_export(suite) && v > 0x0301)
		return false;
	if (is_ecdhe(suite) && ec_group(s, c) == 0)
		return false;
	return true;
}

static const uint8_t hrr_random[32] = {
	0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
	0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
};

/* A handshake record holding the message of type t whose body the caller writes. */
static size_t open_msg(struct out *o, unsigned rec_version, unsigned t)
{
	size_t at;
	put8(o, 22);
	put16(o, rec_version);
	at = o->n;
	put16(o, 0);
	put8(o, t);
	put24(o, 0);
	return at;
}

static void close_msg(struct out *o, size_t at)
{
	size_t body = o->n - at - 2 - 4;
	if (o->bad)
		return;
	o->p[at] = (uint8_t)((body + 4) >> 8);
	o->p[at + 1] = (uint8_t)(body + 4);
	o->p[at + 3] = (uint8_t)(body >> 16);
	o->p[at + 4] = (uint8_t)(body >> 8);
	o->p[at + 5] = (uint8_t)body;
}

static void server_hello(struct out *o, const struct tm_server *s, const struct ch *c, unsigned v,
			 unsigned suite, bool hrr, unsigned group)
{
	size_t at = open_msg(o, v >= 0x0303 ? 0x0303 : v, 2), ext;
	static const uint8_t rnd[32] = { 0x5e, 0x4e, 0x3e };

	put16(o, v >= 0x0304 ? 0x0303 : v);
	put(o, hrr ? hrr_random : rnd, 32);
	put8(o, 0);
	put16(o, suite);
	put8(o, 0);
	if (v == 0x0300 && !(s->reneg && c->reneg) && !s->odd_extensions) {
		close_msg(o, at);
		return;
	}
	ext = o->n;
	put16(o, 0);
	if (s->odd_extensions) {
		put16(o, 0xfe77);         /* unknown to anyone */
		put16(o, 3);
		put8(o, 1); put8(o, 2); put8(o, 3);
		put16(o, 0x0017);         /* extended_master_secret, empty */
		put16(o, 0);
	}
	if (v < 0x0304 && s->reneg && c->reneg) {
		put16(o, 0xff01);
		put16(o, 1);
		put8(o, 0);
	}
	if (v >= 0x0304) {
		put16(o, 0x002b);
		put16(o, 2);
		put16(o, 0x0304);
		put16(o, 0x0033);
		if (hrr) {
			put16(o, 2);
			put16(o, group);
		} else {
			put16(o, 4 + 32);
			put16(o, group);
			put16(o, 32);
			for (int i = 0; i < 32; i++)
				put8(o, 0x42);
		}
	}
	if (!o->bad) {
		size_t el = o->n - ext - 2;
		o->p[ext] = (uint8_t)(el >> 8);
		o->p[ext + 1] = (uint8_t)el;
	}
	close_msg(o, at);
}

size_t tm_answer(const struct tm_server *s, const uint8_t *hello, size_t len, uint8_t *out, size_t cap)
{
	struct ch c;
	struct out o = { out, 0, cap, false };
	unsigned v = 0, suite = 0, max = 0;

	if (!parse(hello, len, &c))
		return alert(out, cap, 0x0301, 50);   /* decode_error */
	for (unsigned w = 0x0300; w <= 0x0304; w++)
		if (s->versions & (1u << (w - 0x0300)))
			max = w;
	/* TLS 1.3 (supported_versions) */
	if (c.has_sv && (s->versions & TM_TLS13) && in(c.sv, c.nsv, 0x0304)) {
		unsigned group = 0;
		bool hrr = false;
		for (size_t i = 0; i < s->nsuites13 && suite == 0; i++)
			if (offered(&c, s->suites13[i]))
				suite = s->suites13[i];
		for (size_t i = 0; i < s->ngroups && group == 0; i++)
			if (in(c.shares, c.nshares, s->groups[i]))
				group = s->groups[i];
		for (size_t i = 0; i < s->ngroups && group == 0; i++)
			if (in(c.groups, c.ngroups, s->groups[i])) {
				group = s->groups[i];
				hrr = true;
			}
		if (suite == 0 || group == 0)
			return s->quirk == TM_QUIRK_CLOSE_NO_MATCH ? 0 : alert(out, cap, 0x0303, 40);
		server_hello(&o, s, &c, 0x0304, suite, hrr, group);
		if (!hrr) {
			static const uint8_t tail[] = { 20, 3, 3, 0, 1, 1, 23, 3, 3, 0, 4, 0xde, 0xad, 0xbe, 0xef };
			put(&o, tail, sizeof(tail));
		}
		return o.bad ? 0 : o.n;
	}
	if (c.has_sv) {
		/* the highest listed version at or below 1.2 the server has */
		for (size_t i = 0; i < c.nsv; i++)
			if (c.sv[i] <= 0x0303 && c.sv[i] >= 0x0300 && (s->versions & (1u << (c.sv[i] - 0x0300))) &&
			    c.sv[i] > v)
				v = c.sv[i];
	} else {
		unsigned cv = c.client_version > 0x0303 ? 0x0303 : c.client_version;
		if (s->quirk == TM_QUIRK_VERSION_INTOLERANT && c.client_version > (max > 0x0303 ? 0x0303 : max))
			return 0;
		for (unsigned w = 0x0300; w <= cv; w++)
			if (s->versions & (1u << (w - 0x0300)))
				v = w;
	}
	if (v == 0)
		return s->quirk == TM_QUIRK_CLOSE_NO_MATCH ? 0 : alert(out, cap, 0x0301, 70);
	if (c.fallback && s->scsv && v < (max > 0x0303 && !c.has_sv ? 0x0304 : max))
		return alert(out, cap, v, 86);
	if (s->quirk == TM_QUIRK_CLOSE_UNKNOWN_SUITE)
		for (size_t k = 0; k < c.nsuites; k++) {
			unsigned x = be16(c.suites + 2 * k);
			bool known = x == 0x00FF || x == 0x5600;
			for (size_t i = 0; i < s->nsuites && !known; i++)
				known = s->suites[i] == x;
			if (!known)
				return 0;
		}
	if (s->server_order) {
		for (size_t i = 0; i < s->nsuites && suite == 0; i++)
			if (offered(&c, s->suites[i]) && eligible(s, &c, s->suites[i], v))
				suite = s->suites[i];
	} else {
		for (size_t k = 0; k < c.nsuites && suite == 0; k++) {
			unsigned x = be16(c.suites + 2 * k);
			for (size_t i = 0; i < s->nsuites; i++)
				if (s->suites[i] == x && eligible(s, &c, x, v))
					suite = x;
		}
	}
	if (suite == 0)
		return s->quirk == TM_QUIRK_CLOSE_NO_MATCH ? 0 : alert(out, cap, v, 40);
	server_hello(&o, s, &c, v, suite, false, 0);
	/* a placeholder certificate: one entry of 64 bytes */
	size_t at = open_msg(&o, v, 11);
	put24(&o, 3 + 64);
	put24(&o, 64);
	for (int i = 0; i < 64; i++)
		put8(&o, 0x30);
	close_msg(&o, at);
	if (is_dhe(suite)) {
		size_t pl = (size_t)(s->dh_bits + 7) / 8;
		at = open_msg(&o, v, 12);
		put16(&o, (unsigned)pl);
		for (size_t i = 0; i < pl; i++)
			put8(&o, i == 0 ? 0x80 >> ((8 - s->dh_bits % 8) % 8) | 1 : 0xA5);
		put16(&o, 1);
		put8(&o, 2);
		put16(&o, (unsigned)pl);
		for (size_t i = 0; i < pl; i++)
			put8(&o, 0x5A);
		put16(&o, 4);
		put(&o, "sig!", 4);
		close_msg(&o, at);
	} else if (is_ecdhe(suite)) {
		at = open_msg(&o, v, 12);
		put8(&o, 3);
		put16(&o, ec_group(s, &c));
		put8(&o, 32);
		for (int i = 0; i < 32; i++)
			put8(&o, 0x07);
		put16(&o, 4);
		put(&o, "sig!", 4);
		close_msg(&o, at);
	}
	at = open_msg(&o, v, 14);
	close_msg(&o, at);
	return o.bad ? 0 : o.n;
}

/* ---- The fleet's canned servers */

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const uint16_t rc4_suites[] = { 0x0005, 0x000A, 0x002F };
const struct tm_server tm_rc4_tls10 = {
	.versions = TM_SSL3 | TM_TLS10, .suites = rc4_suites, .nsuites = N(rc4_suites),
	.server_order = true,
};

static const uint16_t export_suites[] = { 0x0003, 0x0004 };
const struct tm_server tm_ssl3_export = {
	.versions = TM_SSL3, .suites = export_suites, .nsuites = N(export_suites),
};

static const uint16_t modern_suites[] = { 0xC02F, 0xC030, 0xCCA8, 0xC013 };
static const uint16_t modern_13[] = { 0x1302, 0x1301, 0x1303 };
static const uint16_t modern_groups[] = { 0x001d, 0x0017, 0x0018 };
const struct tm_server tm_modern = {
	.versions = TM_TLS12 | TM_TLS13, .suites = modern_suites, .nsuites = N(modern_suites),
	.suites13 = modern_13, .nsuites13 = N(modern_13), .groups = modern_groups,
	.ngroups = N(modern_groups), .server_order = true, .scsv = true, .reneg = true,
};

static const uint16_t intol_suites[] = { 0x002F, 0x000A };
const struct tm_server tm_intolerant = {
	.versions = TM_TLS10, .suites = intol_suites, .nsuites = N(intol_suites),
	.server_order = true, .reneg = true, .quirk = TM_QUIRK_VERSION_INTOLERANT,
};

static const uint16_t few_suites[] = { 0x002F };
const struct tm_server tm_close_unknown = {
	.versions = TM_TLS10 | TM_TLS12, .suites = few_suites, .nsuites = N(few_suites),
	.quirk = TM_QUIRK_CLOSE_UNKNOWN_SUITE,
};

static const uint16_t dhe_suites[] = { 0x0033, 0x009E, 0xC013 };
static const uint16_t dhe_groups[] = { 0x0017 };
const struct tm_server tm_dhe_odd = {
	.versions = TM_TLS10 | TM_TLS11 | TM_TLS12, .suites = dhe_suites, .nsuites = N(dhe_suites),
	.groups = dhe_groups, .ngroups = N(dhe_groups), .server_order = true, .dh_bits = 1024,
	.odd_extensions = true, .reneg = true,
};
