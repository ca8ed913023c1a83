/* Distinct certificate chains, reference-counted (chainstore.h). */
#include "chainstore.h"

#include <stdlib.h>
#include <string.h>

struct entry {
	struct entry *next;   /* same bucket */
	unsigned char *der;   /* owned */
	size_t len;
	uint64_t hash;
	uint64_t refs;
};

struct chainstore {
	struct entry **buckets;   /* owned; a power of two, grown at one entry per bucket */
	size_t nbuckets, count;
	uint64_t refs, bytes;
};

/* FNV-1a over the DER; equal hashes are confirmed by memcmp. */
static uint64_t hash_der(const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h ^ (h >> 31);
}

struct chainstore *chainstore_new(void)
{
	struct chainstore *cs = calloc(1, sizeof(*cs));

	if (cs == NULL)
		return NULL;
	cs->nbuckets = 256;
	if ((cs->buckets = calloc(cs->nbuckets, sizeof(*cs->buckets))) == NULL) {
		free(cs);
		return NULL;
	}
	return cs;
}

void chainstore_free(struct chainstore *cs)
{
	if (cs == NULL)
		return;
	for (size_t i = 0; i < cs->nbuckets; i++) {
		struct entry *e = cs->buckets[i], *next;
		for (; e != NULL; e = next) {
			next = e->next;
			free(e->der);
			free(e);
		}
	}
	free(cs->buckets);
	free(cs);
}

static struct entry **slot(struct chainstore *cs, const unsigned char *der, size_t len, uint64_t h)
{
	struct entry **pp = &cs->buckets[h & (cs->nbuckets - 1)];

	for (; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->len == len && memcmp((*pp)->der, der, len) == 0)
			break;
	return pp;
}

static void grow(struct chainstore *cs)
{
	size_t n = cs->nbuckets * 2;
	struct entry **b = calloc(n, sizeof(*b));

	if (b == NULL)
		return;   /* longer chains in the buckets, still correct */
	for (size_t i = 0; i < cs->nbuckets; i++) {
		struct entry *e = cs->buckets[i], *next;
		for (; e != NULL; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(cs->buckets);
	cs->buckets = b;
	cs->nbuckets = n;
}

const unsigned char *chainstore_put(struct chainstore *cs, unsigned char *der, size_t len)
{
	uint64_t h;
	struct entry **pp, *e;

	if (der == NULL)
		return NULL;
	h = hash_der(der, len);
	pp = slot(cs, der, len, h);
	if (*pp != NULL) {
		free(der);
		(*pp)->refs++;
		cs->refs++;
		return (*pp)->der;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		free(der);
		return NULL;
	}
	e->der = der;
	e->len = len;
	e->hash = h;
	e->refs = 1;
	*pp = e;
	cs->count++;
	cs->refs++;
	cs->bytes += len;
	if (cs->count > cs->nbuckets)
		grow(cs);
	return der;
}

void chainstore_release(struct chainstore *cs, const unsigned char *der, size_t len)
{
	struct entry **pp, *e;

	if (der == NULL)
		return;
	pp = slot(cs, der, len, hash_der(der, len));
	if ((e = *pp) == NULL)
		return;   /* not ours: a programmer error, but never a double free */
	cs->refs--;
	if (--e->refs > 0)
		return;
	*pp = e->next;
	cs->count--;
	cs->bytes -= e->len;
	free(e->der);
	free(e);
}

size_t chainstore_count(const struct chainstore *cs)
{
	return cs->count;
}

uint64_t chainstore_refs(const struct chainstore *cs)
{
	return cs->refs;
}

uint64_t chainstore_bytes(const struct chainstore *cs)
{
	return cs->bytes;
}
