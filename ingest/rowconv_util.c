/* Value checks of the converters: does a value fit its column? */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "bytescan.h"
#include "esc.h"
#include "rowconv_int.h"

int rc_any_oom(const struct rowbufs *r)
{
	return r->results.oom || r->certs.oom || r->domains.oom || r->domain_mx.oom ||
	       r->names.oom || r->rejects.oom || r->dict.rows[IK_TEXT].oom ||
	       r->dict.rows[IK_LIST].oom || r->dict.rows[IK_CHAIN].oom;
}

static int digits(const char *s, int n)
{
	for (int i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

static int num(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/*
 * RFC 3339 date-time, checked closely enough that PostgreSQL will accept it:
 * YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM). The day is checked against the month
 * (leap years included) so a batch never fails on "2026-02-30".
 */
int rc_valid_time(const char *s, size_t n)
{
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (n < 20 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
	    !digits(s + 8, 2) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    !digits(s + 11, 2) || s[13] != ':' || !digits(s + 14, 2) || s[16] != ':' ||
	    !digits(s + 17, 2))
		return 0;
	int y = num(s, 4), mo = num(s + 5, 2), d = num(s + 8, 2);
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || num(s + 11, 2) > 23 ||
	    num(s + 14, 2) > 59 || num(s + 17, 2) > 60)
		return 0;
	if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 0;
	size_t i = 19;
	if (i < n && s[i] == '.') {
		size_t f = ++i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == f || i - f > 9)
			return 0;
	}
	if (i + 1 == n && (s[i] == 'Z' || s[i] == 'z'))
		return 1;
	if (i + 6 == n && (s[i] == '+' || s[i] == '-') && digits(s + i + 1, 2) &&
	    s[i + 3] == ':' && digits(s + i + 4, 2) && num(s + i + 1, 2) <= 23 &&
	    num(s + i + 4, 2) <= 59)
		return 1;
	return 0;
}

/* An IPv4 or IPv6 address in its text form, as PostgreSQL's inet accepts it. */
int rc_valid_ip(const char *s, size_t n)
{
	char tmp[64];
	unsigned char bin[16];
	if (n == 0 || n >= sizeof(tmp) || memchr(s, '\0', n) != NULL)
		return 0;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return inet_pton(AF_INET, tmp, bin) == 1 || inet_pton(AF_INET6, tmp, bin) == 1;
}

/* True when s is a well-formed escape form: no control byte, every '\' starts \xNN. */
int rc_valid_esc(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		/* runs of ordinary bytes, eight at a time */
		while (n - i >= 8) {
			uint64_t v = bs_load(s + i);
			if (bs_lt(v, 0x20) | bs_eq(v, 0x7f) | bs_eq(v, '\\'))
				break;
			i += 8;
		}
		if (i == n)
			break;
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return 0;
		if (c == '\\') {
			if (n - i < 4 || s[i + 1] != 'x')
				return 0;
			for (int k = 2; k < 4; k++) {
				char h = s[i + k];
				if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') ||
				      (h >= 'A' && h <= 'F')))
					return 0;
			}
			i += 3;
		}
	}
	return 1;
}

/*
 * Write an escape-form field. A string that is not in the escape form (a producer that
 * did not escape) is escaped here, so the stored form still decodes to its exact bytes.
 */
void rc_put_esc(struct copybuf *b, const char *s, size_t n, int in_array)
{
	if (rc_valid_esc(s, n)) {
		if (in_array)
			cb_array_text(b, s, n);
		else
			cb_text(b, s, n);
		return;
	}
	size_t elen;
	char *e = mxs_esc_encode(s, n, &elen);
	if (e == NULL) {
		b->oom = 1;
		return;
	}
	if (in_array)
		cb_array_text(b, e, elen);
	else
		cb_text(b, e, elen);
	free(e);
}

/* A hex digit's value plus one, 0 for any other byte: no branch per digit (a chain has 64
 * digits per certificate, in no predictable order). */
static const unsigned char hex_plus1[256] = {
	['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8,
	['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
	['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

/* Parse a 64-digit hex SHA-256 into out; 0 when malformed. */
int rc_parse_sha256(const char *s, size_t n, unsigned char out[32])
{
	if (n != 64)
		return 0;
	int bad = 0;
	for (int i = 0; i < 32; i++) {
		unsigned hi = hex_plus1[(unsigned char)s[2 * i]], lo = hex_plus1[(unsigned char)s[2 * i + 1]];
		bad |= hi == 0 || lo == 0;
		out[i] = (unsigned char)((hi - 1) << 4 | (lo - 1));
	}
	return !bad;
}

/* 64-bit FNV-1a: a stable key for a target that has no address. */
uint64_t rc_fnv1a(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

