#include "intern.h"

#include <inttypes.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const intern_tables[IK_LAST] = { "mxs_texts", "mxs_lists", "mxs_chains", "mxs_refs" };
const char *const intern_stage_tables[IK_LAST] = { "stage_texts", "stage_lists", "stage_chains",
	"stage_refs" };
const char *const intern_columns[IK_LAST] = { "id, t", "id, l", "id, c", "id, refs" };
static const unsigned char kind_byte[IK_LAST] = { 't', 'l', 'c', 'r' };

#define SLOTS (1u << 17)             /* about 90,000 values per connection */
#define ARENA_MAX (24u * 1024 * 1024)  /* bytes of keys kept */

void ikey_init(struct ikey *k)
{
	memset(k, 0, sizeof(*k));
}

void ikey_free(struct ikey *k)
{
	free(k->p);
	ikey_init(k);
}

static void put(struct ikey *k, const void *p, size_t n)
{
	if (k->oom)
		return;
	if (k->cap - k->len < n) {
		size_t cap = k->cap ? k->cap : 256;
		while (cap - k->len < n)
			cap *= 2;
		unsigned char *q = realloc(k->p, cap);
		if (q == NULL) {
			k->oom = 1;
			return;
		}
		k->p = q;
		k->cap = cap;
	}
	memcpy(k->p + k->len, p, n);
	k->len += n;
}

void ikey_begin(struct ikey *k, enum intern_kind kind)
{
	k->len = 0;
	k->oom = 0;
	k->kind = kind;
	put(k, &kind_byte[kind], 1);
}

void ikey_elem(struct ikey *k, const void *p, size_t n)
{
	if (k->kind != IK_TEXT) {
		unsigned char l[4] = { (unsigned char)(n >> 24), (unsigned char)(n >> 16),
			                   (unsigned char)(n >> 8), (unsigned char)n };
		put(k, l, 4);
	}
	put(k, p, n);
}

void ikey_null(struct ikey *k)
{
	static const unsigned char null[4] = { 0xff, 0xff, 0xff, 0xff };
	put(k, null, 4);
}

static int64_t id_of(const unsigned char *p, size_t n)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	uint64_t v = 0;
	SHA256(p, n, md);
	for (int i = 0; i < 8; i++)
		v = v << 8 | md[i];
	return (int64_t)(v & INT64_MAX);
}

int64_t ikey_id(const struct ikey *k)
{
	return id_of(k->p, k->len);
}

void intern_rows_init(struct intern_rows *r)
{
	memset(r, 0, sizeof(*r));
	for (int i = 0; i < IK_LAST; i++)
		copybuf_init(&r->rows[i]);
}

void intern_rows_reset(struct intern_rows *r)
{
	for (int i = 0; i < IK_LAST; i++) {
		copybuf_reset(&r->rows[i]);
		r->n[i] = 0;
	}
}

void intern_rows_free(struct intern_rows *r)
{
	for (int i = 0; i < IK_LAST; i++)
		copybuf_free(&r->rows[i]);
}

struct slot {
	uint64_t h;       /* FNV-1a of the key */
	int64_t id;
	uint32_t off;     /* the key's bytes in the arena */
	uint32_t len;     /* 0: empty slot (a key has at least its kind byte) */
};

struct intern {
	struct slot *slots;     /* owned, SLOTS entries */
	unsigned char *arena;   /* owned, ARENA_MAX bytes at most */
	size_t arena_len, arena_cap;
	size_t used;
};

struct intern *intern_new(void)
{
	struct intern *in = calloc(1, sizeof(*in));
	if (in == NULL)
		return NULL;
	in->slots = calloc(SLOTS, sizeof(*in->slots));
	if (in->slots == NULL) {
		free(in);
		return NULL;
	}
	return in;
}

void intern_free(struct intern *in)
{
	if (in == NULL)
		return;
	free(in->slots);
	free(in->arena);
	free(in);
}

void intern_forget(struct intern *in)
{
	if (in->used > 0)
		memset(in->slots, 0, SLOTS * sizeof(*in->slots));
	in->used = 0;
	in->arena_len = 0;
}

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* The dictionary row of key k (id, value) in COPY text. */
static void write_row(const struct ikey *k, int64_t id, struct intern_rows *out)
{
	struct copybuf *b = &out->rows[k->kind];
	const unsigned char *p = k->p + 1, *end = k->p + k->len;
	cb_int(b, id);
	if (k->kind == IK_TEXT) {
		cb_text(b, (const char *)p, (size_t)(end - p));
	} else {
		cb_array_begin(b);
		while (p + 4 <= end) {
			uint32_t n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
			p += 4;
			if (n == 0xffffffffu) {
				cb_array_null(b);
				continue;
			}
			if (k->kind == IK_CHAIN) {
				cb_array_bytea(b, p, n);
			} else if (k->kind == IK_REFS && n == 8) {
				uint64_t v = 0;
				char num[24];
				for (int i = 0; i < 8; i++)
					v = v << 8 | p[i];
				int len = snprintf(num, sizeof(num), "%" PRId64, (int64_t)v);
				cb_array_text(b, num, (size_t)len);
			} else {
				cb_array_text(b, (const char *)p, n);
			}
			p += n;
		}
		cb_array_end(b);
	}
	cb_end_row(b);
	out->n[k->kind]++;
}

int64_t intern_put(struct intern *in, const struct ikey *k, struct intern_rows *out)
{
	if (k->oom)
		return -1;
	uint64_t h = fnv1a(k->p, k->len);
	size_t mask = SLOTS - 1, i;
	for (i = (size_t)h & mask; in->slots[i].len != 0; i = (i + 1) & mask) {
		const struct slot *s = &in->slots[i];
		if (s->h == h && s->len == k->len && memcmp(in->arena + s->off, k->p, k->len) == 0)
			return s->id;
	}
	int64_t id = id_of(k->p, k->len);
	write_row(k, id, out);
	/* remember it, unless the key is too large to keep; forget all when full */
	if (k->len > ARENA_MAX / 64)
		return id;
	if (in->used * 10 >= (size_t)SLOTS * 7 || in->arena_len + k->len > ARENA_MAX) {
		intern_forget(in);
		for (i = (size_t)h & mask; in->slots[i].len != 0; i = (i + 1) & mask)
			;
	}
	if (in->arena_cap - in->arena_len < k->len) {
		size_t cap = in->arena_cap ? in->arena_cap : 64 * 1024;
		while (cap - in->arena_len < k->len)
			cap *= 2;
		unsigned char *a = realloc(in->arena, cap);
		if (a == NULL)
			return id;   /* not remembered: sent again next time, which is harmless */
		in->arena = a;
		in->arena_cap = cap;
	}
	memcpy(in->arena + in->arena_len, k->p, k->len);
	in->slots[i] = (struct slot){ h, id, (uint32_t)in->arena_len, (uint32_t)k->len };
	in->arena_len += k->len;
	in->used++;
	return id;
}
