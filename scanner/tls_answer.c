/* The answer reader of tls_answer.h. */
#include "tls_answer.h"

#include <string.h>

#include "tls_hello.h"
#include "tls_suites.h"

/* SHA-256 of "HelloRetryRequest": the random of a HelloRetryRequest (RFC 8446 4.1.3). */
static const uint8_t hrr_random[32] = {
	0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
	0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
};

enum { REC_CCS = 20, REC_ALERT = 21, REC_HANDSHAKE = 22, REC_APPDATA = 23 };
enum { HS_HELLO_REQUEST = 0, HS_SERVER_HELLO = 2, HS_CERTIFICATE = 11, HS_SKE = 12,
	HS_CERT_REQUEST = 13, HS_HELLO_DONE = 14, HS_CERT_STATUS = 22 };

void tls_reader_init(struct tls_reader *r, bool want_kx)
{
	memset(r, 0, sizeof(*r));
	r->want_kx = want_kx;
}

static void bad(struct tls_reader *r, const char *why)
{
	r->done = true;
	if (r->have_hello)
		return;  /* what came after the hello does not undo it */
	r->ans.kind = TLS_ANS_BAD;
	r->ans.why = why;
}

static void finish(struct tls_reader *r)
{
	r->done = true;
}

/* A cursor over a kept message; reads past its end set ok false and return 0. */
struct cur {
	const uint8_t *p;
	size_t n;
	bool ok;
};

static unsigned get8(struct cur *c)
{
	if (c->n < 1) {
		c->ok = false;
		return 0;
	}
	c->n--;
	return *c->p++;
}

static unsigned get16(struct cur *c)
{
	unsigned hi = get8(c);
	return (hi << 8) | get8(c);
}

static const uint8_t *skip(struct cur *c, size_t n)
{
	const uint8_t *at = c->p;
	if (c->n < n) {
		c->ok = false;
		c->n = 0;
		return NULL;
	}
	c->p += n;
	c->n -= n;
	return at;
}

static bool needs_kx(uint16_t suite)
{
	const struct tls_suite *s = tls_suite_find(suite);
	/* an unknown suite: we did not offer it; the hello is still the answer */
	return s != NULL && (s->kx == TLS_KX_DHE || s->kx == TLS_KX_ECDHE || s->kx == TLS_KX_ADH ||
			     s->kx == TLS_KX_AECDH || (s->flags & TLS_SF_EXPORT));
}

static void server_hello(struct tls_reader *r)
{
	struct cur c = { r->msg, r->nmsg, true };
	struct tls_answer *a = &r->ans;
	const uint8_t *random;
	unsigned sidlen;
	bool hrr;

	a->version = (uint16_t)get16(&c);
	random = skip(&c, 32);
	sidlen = get8(&c);
	if (sidlen > 32) {
		bad(r, "ServerHello session id longer than 32 bytes");
		return;
	}
	skip(&c, sidlen);
	a->suite = (uint16_t)get16(&c);
	(void)get8(&c);                    /* compression */
	if (!c.ok || random == NULL) {
		bad(r, "truncated ServerHello");
		return;
	}
	if ((a->version >> 8) != 3) {
		bad(r, "ServerHello of an unknown protocol version");
		return;
	}
	hrr = memcmp(random, hrr_random, 32) == 0;
	if (c.n > 0) {
		struct cur e = { NULL, 0, true };
		size_t elen = get16(&c);
		e.p = skip(&c, elen);
		e.n = elen;
		if (!c.ok || c.n != 0) {
			bad(r, "ServerHello extensions do not fit the message");
			return;
		}
		while (e.n > 0) {
			unsigned type = get16(&e), len = get16(&e);
			struct cur x = { NULL, len, true };
			x.p = skip(&e, len);
			if (!e.ok) {
				bad(r, "ServerHello extension longer than its list");
				return;
			}
			switch (type) {
			case 0xff01:
				a->reneg = true;
				break;
			case 0x002b: {
				unsigned v = get16(&x);
				if (x.ok)
					a->version = (uint16_t)v;
				break;
			}
			case 0x0033: {
				unsigned g = get16(&x);
				if (x.ok)
					a->group = (uint16_t)g;
				break;
			}
			default:
				break;
			}
		}
	}
	r->have_hello = true;
	a->kind = hrr ? TLS_ANS_HRR : TLS_ANS_HELLO;
	if (hrr || a->version >= TLS_V_TLS13 || !r->want_kx || !needs_kx(a->suite))
		finish(r);
}

static void server_key_exchange(struct tls_reader *r)
{
	const struct tls_suite *s = tls_suite_find(r->ans.suite);
	struct cur c = { r->msg, r->nmsg, true };

	if (s == NULL)
		return;
	if (s->kx == TLS_KX_ECDHE || s->kx == TLS_KX_AECDH) {
		unsigned type = get8(&c), g = get16(&c);
		if (c.ok && type == 3)     /* named_curve */
			r->ans.group = (uint16_t)g;
	} else if (s->kx == TLS_KX_DHE || s->kx == TLS_KX_ADH) {
		size_t plen = get16(&c);
		const uint8_t *p = skip(&c, plen);
		size_t i = 0;
		if (p == NULL)
			return;
		while (i < plen && p[i] == 0)
			i++;
		if (i < plen) {
			int bits = (int)(plen - i - 1) * 8;
			for (unsigned b = p[i]; b != 0; b >>= 1)
				bits++;
			r->ans.dh_bits = bits;
		}
	}
}

/* A whole kept message arrived. */
static void message(struct tls_reader *r)
{
	switch (r->msg_type) {
	case HS_SERVER_HELLO:
		server_hello(r);
		break;
	case HS_SKE:
		server_key_exchange(r);
		finish(r);
		break;
	default:
		break;
	}
}

/* A message header arrived: keep the message, skip it, or end the answer. */
static void message_start(struct tls_reader *r)
{
	r->msg_type = r->hh[0];
	r->msg_left = ((size_t)r->hh[1] << 16) | ((size_t)r->hh[2] << 8) | r->hh[3];
	r->nmsg = 0;
	r->keep = false;
	if (!r->have_hello) {
		if (r->msg_type == HS_HELLO_REQUEST) {
			if (r->msg_left != 0)
				bad(r, "HelloRequest with a body");
			return;
		}
		if (r->msg_type != HS_SERVER_HELLO) {
			bad(r, "handshake message before the ServerHello");
			return;
		}
	} else if (r->msg_type == HS_SERVER_HELLO) {
		bad(r, "a second ServerHello");
		return;
	} else if (r->msg_type == HS_HELLO_DONE) {
		finish(r);               /* no ServerKeyExchange: the suite had none after all */
		return;
	}
	if (r->msg_type == HS_SERVER_HELLO || r->msg_type == HS_SKE) {
		if (r->msg_left > TLS_MSG_KEEP_MAX) {
			if (r->msg_type == HS_SERVER_HELLO)
				bad(r, "ServerHello too long");
			else
				finish(r);       /* a key exchange too big to keep: its size stays unknown */
			return;
		}
		r->keep = true;
	} else if (r->msg_type != HS_CERTIFICATE && r->msg_type != HS_CERT_STATUS &&
		   r->msg_type != HS_CERT_REQUEST && r->msg_type != HS_HELLO_REQUEST) {
		bad(r, "unexpected handshake message");
		return;
	}
}

/* Handshake record payload bytes. */
static size_t handshake_bytes(struct tls_reader *r, const uint8_t *p, size_t n)
{
	size_t used = 0;

	while (used < n && !r->done) {
		if (r->nhh < 4) {
			r->hh[r->nhh++] = p[used++];
			if (r->nhh == 4) {
				message_start(r);
				if (!r->done && r->msg_left == 0) {
					r->nhh = 0;
					if (r->keep)
						message(r);
				}
			}
			continue;
		}
		size_t take = n - used < r->msg_left ? n - used : r->msg_left;
		if (r->keep) {
			memcpy(r->msg + r->nmsg, p + used, take);
			r->nmsg += take;
		}
		used += take;
		r->msg_left -= take;
		if (r->msg_left == 0) {
			r->nhh = 0;
			if (r->keep)
				message(r);
		}
	}
	return used;
}

bool tls_reader_feed(struct tls_reader *r, const uint8_t *p, size_t n)
{
	size_t used = 0;

	while (used < n && !r->done) {
		if (r->total >= TLS_FLIGHT_MAX) {
			if (r->have_hello)
				finish(r);
			else
				bad(r, "no ServerHello in the first 256 KiB");
			break;
		}
		if (r->rec_left == 0) {
			r->rh[r->nrh++] = p[used++];
			r->total++;
			if (r->nrh == 1 && (r->rh[0] < REC_CCS || r->rh[0] > REC_APPDATA)) {
				bad(r, (r->rh[0] & 0x80) ? "an SSLv2 record or not TLS" : "not a TLS record");
				break;
			}
			if (r->nrh < 5)
				continue;
			r->nrh = 0;
			r->rec_type = r->rh[0];
			r->rec_left = ((size_t)r->rh[3] << 8) | r->rh[4];
			if (r->rh[1] != 3 || r->rh[2] > 4) {
				bad(r, "record of an unknown protocol version");
				break;
			}
			if (r->rec_left == 0 || r->rec_left > 16384 + 2048) {
				bad(r, r->rec_left ? "record longer than TLS allows" : "empty record");
				break;
			}
			if (r->rec_type == REC_ALERT)
				r->nal = 0;
			if ((r->rec_type == REC_CCS || r->rec_type == REC_APPDATA) && !r->have_hello) {
				bad(r, "change-cipher-spec or application data before the ServerHello");
				break;
			}
			if (r->rec_type == REC_CCS || r->rec_type == REC_APPDATA) {
				finish(r);       /* TLS 1.3 flight went encrypted: the hello is the answer */
				break;
			}
			continue;
		}
		size_t take = n - used < r->rec_left ? n - used : r->rec_left;
		if (r->rec_type == REC_ALERT) {
			for (size_t i = 0; i < take && r->nal < 2; i++)
				r->al[r->nal++] = p[used + i];
			if (r->nal == 2) {
				if (!r->have_hello) {
					r->ans.kind = TLS_ANS_ALERT;
					r->ans.alert_level = r->al[0];
					r->ans.alert = r->al[1];
				}
				finish(r);
			}
			used += take;
		} else {
			take = handshake_bytes(r, p + used, take);
			used += take;
		}
		r->total += take;
		r->rec_left -= take;
	}
	return r->done;
}

void tls_reader_eof(struct tls_reader *r)
{
	if (r->done)
		return;
	if (r->have_hello) {
		finish(r);
		return;
	}
	r->ans.closed = r->total == 0;
	bad(r, "closed without an answer");
}
