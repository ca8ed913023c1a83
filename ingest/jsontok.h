/*
 * A strict JSON tokenizer for the ingest hot path. jansson builds a tree of allocated
 * nodes for every line, which cost more than the database's whole COPY; this one fills
 * a reusable array of tokens pointing into the line, and strings are decoded only when
 * a column needs them.
 *
 * It accepts exactly RFC 8259 JSON, with the rules jansson applies by default: strings
 * must be valid UTF-8, no raw control characters, no lone surrogates, and no \u0000
 * (PostgreSQL text and jsonb cannot hold NUL). Nesting is limited to JT_MAX_DEPTH.
 */
#ifndef MXS_JSONTOK_H
#define MXS_JSONTOK_H

#include <stddef.h>
#include <stdint.h>

#define JT_MAX_DEPTH 64

enum jt_type {
	JT_OBJECT,
	JT_ARRAY,
	JT_STRING,
	JT_NUMBER,
	JT_TRUE,
	JT_FALSE,
	JT_NULL,
	JT_TYPE_LAST
};

enum {
	JT_ESCAPED = 1,   /* a string with backslash escapes: decode before use */
	JT_INTEGER = 2,   /* a number without fraction or exponent */
};

struct jt {
	uint32_t start;     /* first byte of the value (strings: after the opening quote) */
	uint32_t end;       /* one past the last byte (strings: the closing quote) */
	uint32_t skip;      /* index of the token after this value's subtree */
	uint8_t type;
	uint8_t flags;
};

/* Tokens of one line; the array is reused from line to line. */
struct jtoks {
	struct jt *t;       /* owned */
	size_t n;
	size_t cap;
	char *scratch;      /* owned: decoded strings */
	size_t scratch_cap;
};

void jtoks_init(struct jtoks *ts);
void jtoks_free(struct jtoks *ts);

/*
 * Tokenize s (len bytes, len < 4 GiB). Returns 0, or -1 with *err naming the problem
 * and *errpos its byte offset (-2: out of memory). Object children are key, value, key,
 * value ...; a container's children run from index + 1 to its skip.
 */
int jt_parse(struct jtoks *ts, const char *s, size_t len, const char **err, size_t *errpos);

/*
 * The value of string token i: a pointer into s when it has no escapes, else into
 * ts->scratch (valid until the next call). NULL when out of memory.
 */
const char *jt_str(struct jtoks *ts, const char *s, size_t i, size_t *len);

/* Integer value of number token i; 0 when it is not an integer or overflows int64. */
int jt_int(const struct jtoks *ts, const char *s, size_t i, int64_t *v);

/* Does key token i equal the NUL-terminated k? (Keys with escapes never match.) */
int jt_key_is(const struct jtoks *ts, const char *s, size_t i, const char *k);

/* In object token obj, the value token of key k, or 0 when absent (last one wins). */
size_t jt_get(const struct jtoks *ts, const char *s, size_t obj, const char *k);

#endif
