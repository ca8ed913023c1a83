#include "copybuf.h"

#include <stdlib.h>
#include <string.h>

#include "bytescan.h"

static const char hexdig[] = "0123456789abcdef";

void copybuf_init(struct copybuf *b)
{
	memset(b, 0, sizeof(*b));
}

void copybuf_free(struct copybuf *b)
{
	free(b->data);
	copybuf_init(b);
}

void copybuf_reset(struct copybuf *b)
{
	b->len = 0;
	b->oom = 0;
	b->fields = 0;
}

/* Grow so that n more bytes fit; on failure (now or before) set ->oom and return 0. */
static int grow(struct copybuf *b, size_t n)
{
	if (b->oom)
		return 0;
	if (b->cap - b->len >= n)
		return 1;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap - b->len < n) {
		if (cap > SIZE_MAX / 2) {
			b->oom = 1;
			return 0;
		}
		cap *= 2;
	}
	char *p = realloc(b->data, cap);
	if (p == NULL) {
		b->oom = 1;
		return 0;
	}
	b->data = p;
	b->cap = cap;
	return 1;
}

/*
 * Make room for n more bytes; 0 when out of memory (->oom). Each writer below reserves
 * once for all it writes (separator included): the common case is a compare.
 */
static inline int reserve(struct copybuf *b, size_t n)
{
	if (!b->oom && b->cap - b->len >= n)
		return 1;
	return grow(b, n);
}

/* Where the current field starts, after its separator (the room is reserved). */
static inline char *field(struct copybuf *b)
{
	char *o = b->data + b->len;
	if (b->fields++ > 0)
		*o++ = '\t';
	return o;
}

/* Where the next array element starts, after its comma (the room is reserved). */
static inline char *element(struct copybuf *b, char *o)
{
	if (b->elems++ > 0)
		*o++ = ',';
	return o;
}

void copybuf_raw(struct copybuf *b, const void *p, size_t n)
{
	if (!reserve(b, n))
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void putc1(struct copybuf *b, char c)
{
	if (!reserve(b, 1))
		return;
	b->data[b->len++] = c;
}

/*
 * s escaped for a COPY field at o, which has room for 2n bytes; returns the end. Runs of
 * bytes needing no escape (the common case) are found eight at a time and copied whole.
 */
static char *escape_field(char *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t run = i;
		while (n - run >= 8) {
			uint64_t v = bs_load(s + run);
			if (bs_eq(v, '\\') | bs_lt(v, 0x0e))
				break;
			run += 8;
		}
		if (run > i) {
			memcpy(o, s + i, run - i);
			o += run - i;
			i = run;
			if (i == n)
				break;
		}
		char c = s[i];
		switch (c) {
		case '\\': *o++ = '\\'; *o++ = '\\'; break;
		case '\t': *o++ = '\\'; *o++ = 't'; break;
		case '\n': *o++ = '\\'; *o++ = 'n'; break;
		case '\r': *o++ = '\\'; *o++ = 'r'; break;
		default: *o++ = c; break;
		}
	}
	return o;
}

void cb_null(struct copybuf *b)
{
	if (!reserve(b, 3))
		return;
	char *o = field(b);
	o[0] = '\\';
	o[1] = 'N';
	b->len = (size_t)(o + 2 - b->data);
}

void cb_text(struct copybuf *b, const char *s, size_t n)
{
	/* worst case every byte doubles */
	if (!reserve(b, 1 + n * 2))
		return;
	char *o = escape_field(field(b), s, n);
	b->len = (size_t)(o - b->data);
}

void cb_str(struct copybuf *b, const char *s)
{
	if (s == NULL)
		cb_null(b);
	else
		cb_text(b, s, strlen(s));
}

void cb_int(struct copybuf *b, int64_t v)
{
	/* by hand, two digits at a time: snprintf was a visible share of the whole ingest, and
	 * a row holds a dozen ids of 19 digits */
	static const char pairs[] =
		"0001020304050607080910111213141516171819"
		"2021222324252627282930313233343536373839"
		"4041424344454647484950515253545556575859"
		"6061626364656667686970717273747576777879"
		"8081828384858687888990919293949596979899";
	char tmp[24], *p = tmp + sizeof(tmp);
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	while (u >= 100) {
		p -= 2;
		memcpy(p, pairs + 2 * (u % 100), 2);
		u /= 100;
	}
	if (u >= 10) {
		p -= 2;
		memcpy(p, pairs + 2 * u, 2);
	} else {
		*--p = (char)('0' + u);
	}
	if (v < 0)
		*--p = '-';
	size_t n = (size_t)(tmp + sizeof(tmp) - p);
	if (!reserve(b, 1 + n))
		return;
	char *o = field(b);
	memcpy(o, p, n);
	b->len = (size_t)(o + n - b->data);
}

void cb_bool(struct copybuf *b, int v)
{
	if (!reserve(b, 2))
		return;
	char *o = field(b);
	*o++ = v ? 't' : 'f';
	b->len = (size_t)(o - b->data);
}

/* bytea hex input "\x0a1b..." whose backslash is itself escaped for COPY. */
void cb_bytea(struct copybuf *b, const unsigned char *p, size_t n)
{
	if (!reserve(b, 1 + 3 + n * 2))
		return;
	char *o = field(b);
	*o++ = '\\';
	*o++ = '\\';
	*o++ = 'x';
	for (size_t i = 0; i < n; i++) {
		*o++ = hexdig[p[i] >> 4];
		*o++ = hexdig[p[i] & 15];
	}
	b->len = (size_t)(o - b->data);
}

/*
 * Arrays: the element is double-quoted inside the literal, with '"' and '\' escaped by
 * a backslash; the literal as a whole is then a COPY field, so each of those backslashes
 * is doubled again. ->elems counts the elements written so far, to place commas.
 */
void cb_array_begin(struct copybuf *b)
{
	if (!reserve(b, 2))
		return;
	char *o = field(b);
	*o++ = '{';
	b->len = (size_t)(o - b->data);
	b->elems = 0;
}

void cb_array_text(struct copybuf *b, const char *s, size_t n)
{
	/* a comma, the quotes, and at worst four bytes for one */
	if (!reserve(b, 3 + n * 4))
		return;
	char *o = element(b, b->data + b->len);
	*o++ = '"';
	for (size_t i = 0; i < n; i++) {
		/* runs of bytes that need no escape, eight at a time */
		size_t run = i;
		while (n - run >= 8) {
			uint64_t v = bs_load(s + run);
			if (bs_eq(v, '\\') | bs_eq(v, '"') | bs_lt(v, 0x0e))
				break;
			run += 8;
		}
		if (run > i) {
			memcpy(o, s + i, run - i);
			o += run - i;
			i = run;
			if (i == n)
				break;
		}
		char c = s[i];
		switch (c) {
		case '\\': memcpy(o, "\\\\\\\\", 4); o += 4; break; /* \ -> \\ (array) -> \\\\ (COPY) */
		case '"': memcpy(o, "\\\\\"", 3); o += 3; break;   /* " -> \" (array) -> \\" (COPY) */
		case '\t': memcpy(o, "\\t", 2); o += 2; break;
		case '\n': memcpy(o, "\\n", 2); o += 2; break;
		case '\r': memcpy(o, "\\r", 2); o += 2; break;
		default: *o++ = c; break;
		}
	}
	*o++ = '"';
	b->len = (size_t)(o - b->data);
}

void cb_array_bytea(struct copybuf *b, const unsigned char *p, size_t n)
{
	/* "\x.." inside the literal needs "\\x" (array), which is "\\\\x" in COPY */
	if (!reserve(b, 1 + 7 + n * 2))
		return;
	char *o = element(b, b->data + b->len);
	memcpy(o, "\"\\\\\\\\x", 6);
	o += 6;
	for (size_t i = 0; i < n; i++) {
		*o++ = hexdig[p[i] >> 4];
		*o++ = hexdig[p[i] & 15];
	}
	*o++ = '"';
	b->len = (size_t)(o - b->data);
}

void cb_array_null(struct copybuf *b)
{
	if (!reserve(b, 5))
		return;
	char *o = element(b, b->data + b->len);
	memcpy(o, "NULL", 4);
	b->len = (size_t)(o + 4 - b->data);
}

void cb_array_end(struct copybuf *b)
{
	putc1(b, '}');
}

void cb_end_row(struct copybuf *b)
{
	putc1(b, '\n');
	b->fields = 0;
}
