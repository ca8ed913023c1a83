#include "dnsmsg.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const status_names[MXS_DNS_STATUS_LAST] = {
	[MXS_DNS_OK] = "ok",
	[MXS_DNS_NXDOMAIN] = "nxdomain",
	[MXS_DNS_NODATA] = "nodata",
	[MXS_DNS_SERVFAIL] = "servfail",
	[MXS_DNS_REFUSED] = "refused",
	[MXS_DNS_TIMEOUT] = "timeout",
	[MXS_DNS_MALFORMED] = "malformed",
	[MXS_DNS_NO_ADDRESS] = "no-address",
};

const char *mxs_dns_status_name(enum mxs_dns_status s)
{
	return (unsigned)s < MXS_DNS_STATUS_LAST ? status_names[s] : "?";
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

int mxs_dns_build_query(uint8_t *buf, size_t cap, const char *name, uint16_t qtype,
			uint16_t edns_size)
{
	size_t n = 12, namelen = strlen(name);

	if (namelen > 0 && name[namelen - 1] == '.')
		namelen--;
	/* header + name (len+2) + qtype/qclass + OPT (11) */
	if (namelen > 253 || cap < 12 + namelen + 2 + 4 + 11)
		return -1;
	memset(buf, 0, 12);
	buf[2] = 0x01;        /* RD */
	buf[3] = 0x20;        /* AD: ask the validator to tell us */
	put16(buf + 4, 1);    /* QDCOUNT */
	put16(buf + 10, edns_size ? 1 : 0);
	for (size_t i = 0; i < namelen;) {
		size_t j = i;
		while (j < namelen && name[j] != '.')
			j++;
		if (j == i || j - i > 63)
			return -1;
		buf[n++] = (uint8_t)(j - i);
		memcpy(buf + n, name + i, j - i);
		n += j - i;
		i = j + 1;
		if (j + 1 == namelen) /* "a..": stray trailing empty label */
			return -1;
	}
	buf[n++] = 0;
	put16(buf + n, qtype);
	put16(buf + n + 2, MXS_DNS_C_IN);
	n += 4;
	if (edns_size) {
		buf[n++] = 0;                /* root owner */
		put16(buf + n, 41);          /* OPT */
		put16(buf + n + 2, edns_size);
		memset(buf + n + 4, 0, 6);   /* ext-rcode, version, flags (DO=0), rdlen */
		n += 10;
	}
	return (int)n;
}

/* Walk a name without decoding it; returns the offset after it or 0 if malformed. */
static size_t skip_name(const uint8_t *buf, size_t len, size_t off)
{
	while (off < len) {
		uint8_t l = buf[off];
		if ((l & 0xc0) == 0xc0)
			return off + 2 <= len ? off + 2 : 0;
		if (l & 0xc0)
			return 0;
		if (l == 0)
			return off + 1;
		off += 1u + l;
	}
	return 0;
}

int mxs_dns_read_name(const uint8_t *buf, size_t len, size_t off, char *out, size_t *next)
{
	size_t o = 0, wire = 0, after = 0;
	int jumps = 0;

	for (;;) {
		if (off >= len)
			return -1;
		uint8_t l = buf[off];
		if ((l & 0xc0) == 0xc0) {
			if (off + 2 > len || ++jumps > 64)
				return -1;
			if (!after)
				after = off + 2;
			size_t target = (size_t)((l & 0x3f) << 8 | buf[off + 1]);
			/* Only backwards pointers: a forward one is legal in theory but only
			 * ever seen in attacks, and forbidding it makes loops impossible. */
			if (target >= off)
				return -1;
			off = target;
			continue;
		}
		if (l & 0xc0)
			return -1;
		if (l == 0) {
			if (!after)
				after = off + 1;
			break;
		}
		if (off + 1 + l > len)
			return -1;
		wire += 1u + l;
		if (wire > 254)
			return -1;
		if (o)
			out[o++] = '.';
		for (size_t i = 0; i < l; i++) {
			unsigned char c = (unsigned char)tolower(buf[off + 1 + i]);
			if (isalnum(c) || c == '-' || c == '_') {
				out[o++] = (char)c;
			} else {
				o += (size_t)snprintf(out + o, 5, "\\%03u", c);
			}
		}
		off += 1u + l;
	}
	if (o == 0)
		out[o++] = '.';
	out[o] = '\0';
	if (next)
		*next = after;
	return 0;
}

int mxs_dns_parse(struct mxs_dns_msg *m, const uint8_t *buf, size_t len)
{
	memset(m, 0, sizeof(*m));
	if (len < 12)
		return -1;
	m->buf = buf;
	m->len = len;
	m->rcode = buf[3] & 0x0f;
	m->ad = (buf[3] & 0x20) != 0;
	m->tc = (buf[2] & 0x02) != 0;
	if (!(buf[2] & 0x80)) /* QR must say response */
		return -1;
	unsigned qd = get16(buf + 4);
	m->ancount = m->an_left = get16(buf + 6);
	size_t off = 12;
	for (unsigned i = 0; i < qd; i++) {
		off = skip_name(buf, len, off);
		if (!off || off + 4 > len)
			return -1;
		off += 4;
	}
	m->pos = off;
	return 0;
}

int mxs_dns_next_answer(struct mxs_dns_msg *m, struct mxs_dns_rr *rr)
{
	size_t off;

	if (m->an_left == 0)
		return 0;
	if (mxs_dns_read_name(m->buf, m->len, m->pos, rr->owner, &off) < 0)
		return -1;
	if (off + 10 > m->len)
		return -1;
	rr->type = get16(m->buf + off);
	rr->rclass = get16(m->buf + off + 2);
	rr->ttl = (uint32_t)get16(m->buf + off + 4) << 16 | get16(m->buf + off + 6);
	rr->rdlen = get16(m->buf + off + 8);
	off += 10;
	if (off + rr->rdlen > m->len)
		return -1;
	rr->rdata = m->buf + off;
	rr->rdata_off = off;
	m->pos = off + rr->rdlen;
	m->an_left--;
	return 1;
}

int mxs_dns_normalize(char *name)
{
	size_t len = strlen(name), label = 0;

	if (len > 0 && name[len - 1] == '.')
		name[--len] = '\0';
	if (len == 0 || len > 253)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-' && c != '_')
			return -1;
		name[i] = (char)tolower(c);
		if (++label > 63)
			return -1;
	}
	return 0;
}

int mxs_dns_name_eq(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

void mxs_dns_join(char *out, size_t cap, const char *prefix, const char *name)
{
	size_t o = 0;

	if (cap == 0)
		return;
	for (const char *p = prefix; *p && o + 1 < cap; p++)
		out[o++] = *p;
	for (const char *p = name; *p && o + 1 < cap; p++)
		out[o++] = *p;
	out[o] = '\0';
}
