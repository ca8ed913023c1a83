/* The ClientHello writer of tls_hello.h (RFC 5246 7.4.1.2, RFC 8446 4.1.2, RFC 6101). */
#include "tls_hello.h"

#include <string.h>

#include "tls_suites.h"

/* A bounded writer: every put past cap marks it failed, nothing is written past cap. */
struct wbuf {
	uint8_t *p;
	size_t len, cap;
	bool bad;
};

static void put(struct wbuf *w, const void *d, size_t n)
{
	if (w->bad || n > w->cap - w->len) {
		w->bad = true;
		return;
	}
	memcpy(w->p + w->len, d, n);
	w->len += n;
}

static void put8(struct wbuf *w, unsigned v)
{
	uint8_t b = (uint8_t)v;
	put(w, &b, 1);
}

static void put16(struct wbuf *w, unsigned v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	put(w, b, 2);
}

/* Reserve a length field of n bytes; returns its offset, filled by fill_len. */
static size_t open_len(struct wbuf *w, size_t n)
{
	size_t at = w->len;
	static const uint8_t zero[3] = { 0 };
	put(w, zero, n);
	return at;
}

static void fill_len(struct wbuf *w, size_t at, size_t n)
{
	size_t v = w->len - at - n;

	if (w->bad)
		return;
	if ((n == 2 && v > 0xFFFF) || (n == 3 && v > 0xFFFFFF) || (n == 1 && v > 0xFF)) {
		w->bad = true;
		return;
	}
	for (size_t i = 0; i < n; i++)
		w->p[at + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

/* Signature schemes for TLS 1.2+: every one a server might sign with. */
static const uint16_t sigalgs[] = {
	0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0804, 0x0805, 0x0806, 0x0809, 0x080a,
	0x080b, 0x0401, 0x0501, 0x0601, 0x0203, 0x0201, 0x0402, 0x0202,
};

static void extensions(struct wbuf *w, const struct tls_hello *h)
{
	size_t at, inner;
	bool any_ec = false;

	if (h->sni != NULL && *h->sni != '\0') {
		size_t n = strlen(h->sni);
		put16(w, 0x0000);
		at = open_len(w, 2);
		inner = open_len(w, 2);
		put8(w, 0);               /* host_name */
		put16(w, (unsigned)n);
		put(w, h->sni, n);
		fill_len(w, inner, 2);
		fill_len(w, at, 2);
	}
	if (h->ngroups > 0) {
		put16(w, 0x000a);         /* supported_groups */
		at = open_len(w, 2);
		inner = open_len(w, 2);
		for (size_t i = 0; i < h->ngroups; i++) {
			put16(w, h->groups[i]);
			any_ec |= h->groups[i] < 0x0100;
		}
		fill_len(w, inner, 2);
		fill_len(w, at, 2);
	}
	if (any_ec && h->version < TLS_V_TLS13) {
		static const uint8_t pf[] = { 0x00, 0x0b, 0x00, 0x02, 0x01, 0x00 };
		put(w, pf, sizeof(pf));   /* ec_point_formats: uncompressed */
	}
	if (h->version >= TLS_V_TLS12) {
		put16(w, 0x000d);         /* signature_algorithms */
		at = open_len(w, 2);
		inner = open_len(w, 2);
		for (size_t i = 0; i < sizeof(sigalgs) / sizeof(sigalgs[0]); i++)
			put16(w, sigalgs[i]);
		fill_len(w, inner, 2);
		fill_len(w, at, 2);
	}
	if (h->reneg) {
		static const uint8_t ri[] = { 0xff, 0x01, 0x00, 0x01, 0x00 };
		put(w, ri, sizeof(ri));
	}
	if (h->version >= TLS_V_TLS13) {
		static const uint8_t sv[] = { 0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04 };
		put(w, sv, sizeof(sv));   /* supported_versions: TLS 1.3 alone */
		put16(w, 0x0033);         /* key_share */
		at = open_len(w, 2);
		inner = open_len(w, 2);
		if (h->x25519 != NULL) {
			put16(w, 0x001d);
			put16(w, 32);
			put(w, h->x25519, 32);
		}
		fill_len(w, inner, 2);
		fill_len(w, at, 2);
		static const uint8_t pkm[] = { 0x00, 0x2d, 0x00, 0x02, 0x01, 0x01 };
		put(w, pkm, sizeof(pkm)); /* psk_key_exchange_modes: psk_dhe_ke */
	}
}

size_t tls_hello_write(const struct tls_hello *h, uint8_t *out, size_t cap)
{
	struct wbuf w = { out, 0, cap, false };
	bool ssl3 = h->version <= TLS_V_SSL3;
	size_t rec, hs, body_start, ext = 0;

	put8(&w, 22);                      /* handshake record */
	put16(&w, ssl3 ? TLS_V_SSL3 : TLS_V_TLS10);
	rec = open_len(&w, 2);
	put8(&w, 1);                       /* client_hello */
	hs = open_len(&w, 3);
	body_start = w.len;
	put16(&w, h->version > TLS_V_TLS12 ? TLS_V_TLS12 : h->version);
	put(&w, h->random, 32);
	put8(&w, 0);                       /* no session id */
	{
		size_t at = open_len(&w, 2);
		for (size_t i = 0; i < h->nsuites; i++)
			put16(&w, h->suites[i]);
		if (ssl3 && h->reneg)
			put16(&w, TLS_EMPTY_RENEGOTIATION_INFO_SCSV);
		if (h->fallback_scsv)
			put16(&w, TLS_FALLBACK_SCSV);
		fill_len(&w, at, 2);
	}
	put8(&w, 1);                       /* compression methods: null */
	put8(&w, 0);
	if (!ssl3) {
		ext = open_len(&w, 2);
		extensions(&w, h);
		/* RFC 7685 padding: keep the handshake body out of 256..511 bytes */
		size_t body = w.len - body_start;
		if (!w.bad && body >= 256 - 4 && body < 512 - 4) {
			/* the handshake message becomes 512 bytes, or just over when 0 padding does it */
			size_t pad = body + 4 >= 508 ? 0 : 508 - 4 - body;
			static const uint8_t zeros[512] = { 0 };
			put16(&w, 0x0015);
			put16(&w, (unsigned)pad);
			put(&w, zeros, pad);
		}
		fill_len(&w, ext, 2);
	}
	fill_len(&w, hs, 3);
	fill_len(&w, rec, 2);
	if (w.bad || w.len - 5 > 16384)
		return 0;
	return w.len;
}
