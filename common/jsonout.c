#include "jsonout.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32

static int reserve(struct mxs_jbuf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

static int put(struct mxs_jbuf *b, const char *s, size_t n)
{
	if (reserve(b, n) < 0)
		return -1;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	return 0;
}

/* 1: written; 0: a byte jansson would escape or check (left to it); -1: no memory */
static int put_string(struct mxs_jbuf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
			return 0;
	}
	if (reserve(b, n + 2) < 0)
		return -1;
	b->p[b->len++] = '"';
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len++] = '"';
	return 1;
}

/* as "%" JSON_INTEGER_FORMAT */
static int put_integer(struct mxs_jbuf *b, json_int_t v)
{
	char tmp[24];
	size_t i = sizeof(tmp);
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

	do {
		tmp[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		tmp[--i] = '-';
	return put(b, tmp + i, sizeof(tmp) - i);
}

/* 1: written; 0: not ours to write; -1: no memory */
static int put_value(struct mxs_jbuf *b, const json_t *j, int depth)
{
	int r;

	if (depth > MAX_DEPTH)
		return 0;
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *sep = "{";
		for (void *it = json_object_iter((json_t *)j); it;
		     it = json_object_iter_next((json_t *)j, it)) {
			const char *key = json_object_iter_key(it);
			if (put(b, sep, 1) < 0)
				return -1;
			sep = ",";
			if ((r = put_string(b, key, strlen(key))) <= 0)
				return r;
			if (put(b, ":", 1) < 0)
				return -1;
			if ((r = put_value(b, json_object_iter_value(it), depth + 1)) <= 0)
				return r;
		}
		return put(b, *sep == '{' ? "{}" : "}", *sep == '{' ? 2 : 1) < 0 ? -1 : 1;
	}
	case JSON_ARRAY: {
		size_t n = json_array_size(j);
		if (put(b, "[", 1) < 0)
			return -1;
		for (size_t i = 0; i < n; i++) {
			if (i && put(b, ",", 1) < 0)
				return -1;
			if ((r = put_value(b, json_array_get(j, i), depth + 1)) <= 0)
				return r;
		}
		return put(b, "]", 1) < 0 ? -1 : 1;
	}
	case JSON_STRING:
		return put_string(b, json_string_value(j), json_string_length(j));
	case JSON_INTEGER:
		return put_integer(b, json_integer_value(j)) < 0 ? -1 : 1;
	case JSON_TRUE:
		return put(b, "true", 4) < 0 ? -1 : 1;
	case JSON_FALSE:
		return put(b, "false", 5) < 0 ? -1 : 1;
	case JSON_NULL:
		return put(b, "null", 4) < 0 ? -1 : 1;
	default:
		return 0; /* a real: jansson's own formatting */
	}
}

int mxs_json_compact(struct mxs_jbuf *b, const json_t *j)
{
	size_t start = b->len;
	int r = json_is_object(j) || json_is_array(j) ? put_value(b, j, 0) : 0;

	if (r == 1)
		return 0;
	b->len = start;
	if (r < 0)
		return -1;
	size_t n = json_dumpb(j, NULL, 0, JSON_COMPACT);
	if (n == 0 || reserve(b, n) < 0)
		return -1;
	if (json_dumpb(j, b->p + b->len, n, JSON_COMPACT) != n)
		return -1;
	b->len += n;
	return 0;
}

int mxs_jbuf_putc(struct mxs_jbuf *b, char c)
{
	return put(b, &c, 1);
}
