#include "jsontok.h"

#include <stdlib.h>
#include <string.h>

#include "bytescan.h"
#include "esc.h"

void jtoks_init(struct jtoks *ts)
{
	memset(ts, 0, sizeof(*ts));
}

void jtoks_free(struct jtoks *ts)
{
	free(ts->t);
	free(ts->scratch);
	jtoks_init(ts);
}

struct parser {
	struct jtoks *ts;
	const unsigned char *s;
	size_t len;
	size_t pos;
	const char *err;
};

static int fail(struct parser *p, const char *why)
{
	if (p->err == NULL)
		p->err = why;
	return -1;
}

/* Double the token array; 0, or -1 out of memory. */
static __attribute__((noinline)) int grow_tokens(struct parser *p)
{
	struct jtoks *ts = p->ts;
	size_t cap = ts->cap ? ts->cap * 2 : 256;
	struct jt *t = realloc(ts->t, cap * sizeof(*t));
	if (t == NULL) {
		fail(p, "out of memory");
		return -1;
	}
	ts->t = t;
	ts->cap = cap;
	return 0;
}

static inline long new_token(struct parser *p, enum jt_type type)
{
	struct jtoks *ts = p->ts;
	if (__builtin_expect(ts->n == ts->cap, 0) && grow_tokens(p) != 0)
		return -1;
	struct jt *t = &ts->t[ts->n];
	t->start = (uint32_t)p->pos;
	t->end = (uint32_t)p->pos;
	t->skip = (uint32_t)ts->n + 1;
	t->type = (uint8_t)type;
	t->flags = 0;
	return (long)ts->n++;
}

static inline void ws(struct parser *p)
{
	/* records are written without white space: one compare in the common case */
	while (p->pos < p->len && p->s[p->pos] <= ' ') {
		unsigned char c = p->s[p->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		p->pos++;
	}
}

static int hex4(const unsigned char *h, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		unsigned char c = h[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return 0;
		*v = *v << 4 | d;
	}
	return 1;
}

/* The string at p->pos (its opening quote). */
static int parse_string(struct parser *p)
{
	long i = new_token(p, JT_STRING);
	if (i < 0)
		return -1;
	p->pos++;   /* the opening quote */
	p->ts->t[i].start = (uint32_t)p->pos;
	for (;;) {
		/*
		 * Plain ASCII runs are the common case: eight bytes at a time, then byte by byte,
		 * in locals (the compiler must assume that a byte read may alias p->pos).
		 */
		const unsigned char *s = p->s;
		size_t pos = p->pos, len = p->len;
		while (len - pos >= 8) {
			uint64_t v = bs_load(s + pos);
			if (bs_eq(v, '"') | bs_eq(v, '\\') | bs_lt(v, 0x20) | bs_high(v))
				break;
			pos += 8;
		}
		while (pos < len) {
			unsigned char c = s[pos];
			if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80)
				break;
			pos++;
		}
		p->pos = pos;
		if (p->pos >= p->len)
			return fail(p, "unterminated string");
		unsigned char c = p->s[p->pos];
		if (c == '"') {
			p->ts->t[i].end = (uint32_t)p->pos;
			p->pos++;
			p->ts->t[i].skip = (uint32_t)i + 1;
			return 0;
		}
		if (c < 0x20)
			return fail(p, "control character in string");
		if (c >= 0x80) {
			size_t n = mxs_utf8_seq_len(p->s + p->pos, p->len - p->pos);
			if (n == 0)
				return fail(p, "invalid UTF-8 in string");
			p->pos += n;
			continue;
		}
		/* an escape */
		p->ts->t[i].flags |= JT_ESCAPED;
		if (p->pos + 1 >= p->len)
			return fail(p, "unterminated string");
		unsigned char e = p->s[p->pos + 1];
		if (e == 'u') {
			unsigned v, lo;
			if (p->pos + 6 > p->len || !hex4(p->s + p->pos + 2, &v))
				return fail(p, "bad \\u escape");
			if (v == 0)
				return fail(p, "\\u0000 in string");
			p->pos += 6;
			if (v >= 0xdc00 && v <= 0xdfff)
				return fail(p, "lone low surrogate");
			if (v >= 0xd800 && v <= 0xdbff) {
				if (p->pos + 6 > p->len || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u' ||
				    !hex4(p->s + p->pos + 2, &lo) || lo < 0xdc00 || lo > 0xdfff)
					return fail(p, "lone high surrogate");
				p->pos += 6;
			}
			continue;
		}
		if (!strchr("\"\\/bfnrt", e) || e == '\0')
			return fail(p, "bad escape");
		p->pos += 2;
	}
}

static int digits(struct parser *p)
{
	size_t start = p->pos;
	while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
		p->pos++;
	return p->pos > start;
}

static int parse_number(struct parser *p)
{
	long i = new_token(p, JT_NUMBER);
	if (i < 0)
		return -1;
	uint8_t flags = JT_INTEGER;
	if (p->s[p->pos] == '-')
		p->pos++;
	if (p->pos < p->len && p->s[p->pos] == '0')
		p->pos++;
	else if (!digits(p))
		return fail(p, "bad number");
	if (p->pos < p->len && p->s[p->pos] == '.') {
		p->pos++;
		flags = 0;
		if (!digits(p))
			return fail(p, "bad number");
	}
	if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
		p->pos++;
		flags = 0;
		if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			p->pos++;
		if (!digits(p))
			return fail(p, "bad number");
	}
	p->ts->t[i].end = (uint32_t)p->pos;
	p->ts->t[i].flags = flags;
	return 0;
}

static int parse_literal(struct parser *p, const char *word, enum jt_type type)
{
	size_t n = strlen(word);
	if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
		return fail(p, "invalid literal");
	long i = new_token(p, type);
	if (i < 0)
		return -1;
	p->pos += n;
	p->ts->t[i].end = (uint32_t)p->pos;
	return 0;
}

static int parse_value(struct parser *p, int depth);

static int parse_container(struct parser *p, int depth, int object)
{
	if (depth >= JT_MAX_DEPTH)
		return fail(p, "nested too deeply");
	long i = new_token(p, object ? JT_OBJECT : JT_ARRAY);
	if (i < 0)
		return -1;
	char close = object ? '}' : ']';
	p->pos++;
	ws(p);
	if (p->pos < p->len && p->s[p->pos] == close) {
		p->pos++;
	} else {
		for (;;) {
			if (object) {
				if (p->pos >= p->len || p->s[p->pos] != '"')
					return fail(p, "expected a key");
				if (parse_string(p) != 0)
					return -1;
				ws(p);
				if (p->pos >= p->len || p->s[p->pos] != ':')
					return fail(p, "expected ':'");
				p->pos++;
				ws(p);
			}
			if (parse_value(p, depth + 1) != 0)
				return -1;
			ws(p);
			if (p->pos < p->len && p->s[p->pos] == ',') {
				p->pos++;
				ws(p);
				continue;
			}
			if (p->pos < p->len && p->s[p->pos] == close) {
				p->pos++;
				break;
			}
			return fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
		}
	}
	p->ts->t[i].end = (uint32_t)p->pos;
	p->ts->t[i].skip = (uint32_t)p->ts->n;
	return 0;
}

static int parse_value(struct parser *p, int depth)
{
	if (p->pos >= p->len)
		return fail(p, "unexpected end");
	switch (p->s[p->pos]) {
	case '{': return parse_container(p, depth, 1);
	case '[': return parse_container(p, depth, 0);
	case '"': return parse_string(p);
	case 't': return parse_literal(p, "true", JT_TRUE);
	case 'f': return parse_literal(p, "false", JT_FALSE);
	case 'n': return parse_literal(p, "null", JT_NULL);
	default:
		if (p->s[p->pos] == '-' || (p->s[p->pos] >= '0' && p->s[p->pos] <= '9'))
			return parse_number(p);
		return fail(p, "unexpected character");
	}
}

int jt_parse(struct jtoks *ts, const char *s, size_t len, const char **err, size_t *errpos)
{
	struct parser p = { ts, (const unsigned char *)s, len, 0, NULL };
	ts->n = 0;
	if (len >= UINT32_MAX) {
		*err = "line too long";
		*errpos = 0;
		return -1;
	}
	ws(&p);
	if (parse_value(&p, 0) == 0) {
		ws(&p);
		if (p.pos == len)
			return 0;
		fail(&p, "data after the value");
	}
	*err = p.err;
	*errpos = p.pos;
	return -1;
}

static int put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

const char *jt_str(struct jtoks *ts, const char *s, size_t i, size_t *len)
{
	const struct jt *t = &ts->t[i];
	size_t n = t->end - t->start;
	if (!(t->flags & JT_ESCAPED)) {
		*len = n;
		return s + t->start;
	}
	/* decoding never grows the text: every escape is at least as long as its bytes */
	if (ts->scratch_cap < n + 1) {
		char *b = realloc(ts->scratch, n + 1);
		if (b == NULL)
			return NULL;
		ts->scratch = b;
		ts->scratch_cap = n + 1;
	}
	const unsigned char *p = (const unsigned char *)s + t->start, *end = p + n;
	char *o = ts->scratch;
	while (p < end) {
		if (*p != '\\') {
			*o++ = (char)*p++;
			continue;
		}
		unsigned char e = p[1];
		unsigned cp, lo;
		p += 2;
		switch (e) {
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u':
			hex4(p, &cp);
			p += 4;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				hex4(p + 2, &lo);
				p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			o += put_utf8(o, cp);
			break;
		default: *o++ = (char)e; break;   /* " \ / */
		}
	}
	*o = '\0';
	*len = (size_t)(o - ts->scratch);
	return ts->scratch;
}

int jt_int(const struct jtoks *ts, const char *s, size_t i, int64_t *v)
{
	const struct jt *t = &ts->t[i];
	if (t->type != JT_NUMBER || !(t->flags & JT_INTEGER))
		return 0;
	const char *p = s + t->start, *end = s + t->end;
	int neg = *p == '-';
	uint64_t acc = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (p += neg; p < end; p++) {
		uint64_t d = (uint64_t)(*p - '0');
		if (acc > (limit - d) / 10)
			return 0;
		acc = acc * 10 + d;
	}
	*v = neg ? (int64_t)(0 - acc) : (int64_t)acc;
	return 1;
}

int jt_key_is(const struct jtoks *ts, const char *s, size_t i, const char *k)
{
	const struct jt *t = &ts->t[i];
	size_t n = t->end - t->start;
	return !(t->flags & JT_ESCAPED) && strlen(k) == n && memcmp(s + t->start, k, n) == 0;
}

size_t jt_get(const struct jtoks *ts, const char *s, size_t obj, const char *k)
{
	size_t found = 0, kn = strlen(k);
	const struct jt *t = ts->t;
	if (t[obj].type != JT_OBJECT)
		return 0;
	for (size_t c = obj + 1; c < t[obj].skip; c = t[c + 1].skip)
		if (t[c].end - t[c].start == kn && !(t[c].flags & JT_ESCAPED) &&
		    memcmp(s + t[c].start, k, kn) == 0)
			found = c + 1;
	return found;
}
