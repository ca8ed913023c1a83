#include "copybuf.h"

#include <stdlib.h>
#include <string.h>

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

/* Make room for n more bytes; on failure set ->oom and return 0. */
static int reserve(struct copybuf *b, size_t n)
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

static void sep(struct copybuf *b)
{
	if (b->fields++ > 0)
		putc1(b, '\t');
}

/*
 * Append s escaped for a COPY field. In the common case (no byte needing an escape) the
 * whole run is copied at once.
 */
static void put_escaped(struct copybuf *b, const char *s, size_t n)
{
	/* worst case every byte doubles */
	if (!reserve(b, n * 2))
		return;
	char *o = b->data + b->len;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		switch (c) {
		case '\\': *o++ = '\\'; *o++ = '\\'; break;
		case '\t': *o++ = '\\'; *o++ = 't'; break;
		case '\n': *o++ = '\\'; *o++ = 'n'; break;
		case '\r': *o++ = '\\'; *o++ = 'r'; break;
		default: *o++ = c; break;
		}
	}
	b->len = (size_t)(o - b->data);
}

void cb_null(struct copybuf *b)
{
	sep(b);
	copybuf_raw(b, "\\N", 2);
}

void cb_text(struct copybuf *b, const char *s, size_t n)
{
	sep(b);
	put_escaped(b, s, n);
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
	/* by hand: snprintf was a visible share of the whole ingest */
	char tmp[24], *p = tmp + sizeof(tmp);
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		*--p = '-';
	sep(b);
	copybuf_raw(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

void cb_bool(struct copybuf *b, int v)
{
	sep(b);
	putc1(b, v ? 't' : 'f');
}

/* bytea hex input "\x0a1b..." whose backslash is itself escaped for COPY. */
void cb_bytea(struct copybuf *b, const unsigned char *p, size_t n)
{
	sep(b);
	if (!reserve(b, 3 + n * 2))
		return;
	char *o = b->data + b->len;
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
	sep(b);
	putc1(b, '{');
	b->elems = 0;
}

static void array_sep(struct copybuf *b)
{
	if (b->elems++ > 0)
		putc1(b, ',');
}

void cb_array_text(struct copybuf *b, const char *s, size_t n)
{
	array_sep(b);
	if (!reserve(b, 2 + n * 4))
		return;
	char *o = b->data + b->len;
	*o++ = '"';
	for (size_t i = 0; i < n; i++) {
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
	array_sep(b);
	/* "\x.." inside the literal needs "\\x" (array), which is "\\\\x" in COPY */
	if (!reserve(b, 7 + n * 2))
		return;
	char *o = b->data + b->len;
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
	array_sep(b);
	copybuf_raw(b, "NULL", 4);
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
