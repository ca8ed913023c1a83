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
	uint64_t h;       /* key_hash() of the key */
	int64_t id;
	uint32_t off;     /* the key's bytes in the arena */
	uint32_t len;     /* 0: empty slot (a key has at least its kind byte) */
};

struct intern {
	struct slot *slots;     /* owned, SLOTS entries */
	unsigned char *arena;   /* owned, ARENA_MAX bytes at most */
	size_t arena_len, arena_cap;
	size_t used;
	/* owned: the values whose rows this connection sent since intern_log_clear, as
	 * entries [uint32 length][int64 id][key], for intern_share once they committed */
	unsigned char *log;
	size_t log_len, log_cap;
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
	free(in->log);
	free(in);
}

/* Forget the values, not the log. */
static void forget_values(struct intern *in)
{
	if (in->used > 0)
		memset(in->slots, 0, SLOTS * sizeof(*in->slots));
	in->used = 0;
	in->arena_len = 0;
}

void intern_forget(struct intern *in)
{
	forget_values(in);
	in->log_len = 0;
}

void intern_log_clear(struct intern *in)
{
	in->log_len = 0;
}

/*
 * The cache's hash of a key, eight bytes at a time (a byte-wise FNV-1a was a visible share
 * of ingest: every row hashes a dozen keys). Only this table uses it; the ids are SHA-256.
 */
static uint64_t key_hash(const unsigned char *p, size_t n)
{
	const uint64_t m = 0x9fb21c651e98df25ULL;
	uint64_t h = 0x243f6a8885a308d3ULL ^ (uint64_t)n;
	for (; n >= 8; p += 8, n -= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		h = (h ^ w) * m;
		h ^= h >> 28;
	}
	if (n > 0) {
		uint64_t w = 0;
		memcpy(&w, p, n);
		h = (h ^ w) * m;
		h ^= h >> 28;
	}
	h *= m;
	return h ^ h >> 32;
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

/* The slot of key p (n bytes, hash h): its own, or the empty one where it would go. */
static size_t probe(const struct intern *in, const unsigned char *p, size_t n, uint64_t h)
{
	size_t mask = SLOTS - 1, i;
	for (i = (size_t)h & mask; in->slots[i].len != 0; i = (i + 1) & mask) {
		const struct slot *s = &in->slots[i];
		if (s->h == h && s->len == n && memcmp(in->arena + s->off, p, n) == 0)
			break;
	}
	return i;
}

/* Keep key p (not in the table) with its id, unless it is too large to keep; forget all
 * when full. Failing to keep it is harmless: the value is sent again next time. */
static void remember(struct intern *in, const unsigned char *p, size_t n, uint64_t h, int64_t id)
{
	if (n > ARENA_MAX / 64)
		return;
	if (in->used * 10 >= (size_t)SLOTS * 7 || in->arena_len + n > ARENA_MAX)
		forget_values(in);
	size_t i = probe(in, p, n, h);
	if (in->arena_cap - in->arena_len < n) {
		size_t cap = in->arena_cap ? in->arena_cap : 64 * 1024;
		while (cap - in->arena_len < n)
			cap *= 2;
		unsigned char *a = realloc(in->arena, cap);
		if (a == NULL)
			return;
		in->arena = a;
		in->arena_cap = cap;
	}
	memcpy(in->arena + in->arena_len, p, n);
	in->slots[i] = (struct slot){ h, id, (uint32_t)in->arena_len, (uint32_t)n };
	in->arena_len += n;
	in->used++;
}

/* Note in the log that key p's row was sent. A value the log cannot hold is only not
 * shared: another connection sends it too. */
static void log_sent(struct intern *in, const unsigned char *p, size_t n, int64_t id)
{
	uint32_t n32 = (uint32_t)n;
	size_t need = sizeof(n32) + sizeof(id) + n;
	if (n > ARENA_MAX / 64)
		return;
	if (in->log_cap - in->log_len < need) {
		size_t cap = in->log_cap ? in->log_cap : 64 * 1024;
		while (cap - in->log_len < need)
			cap *= 2;
		unsigned char *l = realloc(in->log, cap);
		if (l == NULL)
			return;
		in->log = l;
		in->log_cap = cap;
	}
	unsigned char *o = in->log + in->log_len;
	memcpy(o, &n32, sizeof(n32));
	memcpy(o + sizeof(n32), &id, sizeof(id));
	memcpy(o + sizeof(n32) + sizeof(id), p, n);
	in->log_len += need;
}

int64_t intern_put(struct intern *in, const struct ikey *k, struct intern_rows *out)
{
	if (k->oom)
		return -1;
	uint64_t h = key_hash(k->p, k->len);
	size_t i = probe(in, k->p, k->len, h);
	if (in->slots[i].len != 0)
		return in->slots[i].id;
	int64_t id = id_of(k->p, k->len);
	write_row(k, id, out);
	log_sent(in, k->p, k->len, id);
	remember(in, k->p, k->len, h, id);
	return id;
}

void intern_share(const struct intern *from, struct intern *to)
{
	const unsigned char *p = from->log, *end = from->log + from->log_len;
	while (p < end) {
		uint32_t n;
		int64_t id;
		memcpy(&n, p, sizeof(n));
		memcpy(&id, p + sizeof(n), sizeof(id));
		p += sizeof(n) + sizeof(id);
		uint64_t h = key_hash(p, n);
		if (to->slots[probe(to, p, n, h)].len == 0)
			remember(to, p, n, h, id);
		p += n;
	}
}
