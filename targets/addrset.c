#include "addrset.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct slot {
	uint8_t used;
	struct mxs_addr a;
};

struct mxs_addrset {
	struct slot *slots; /* owned; capacity a power of two, at most 3/4 full */
	size_t cap, count;
};

struct mxs_addrset *mxs_addrset_new(void)
{
	struct mxs_addrset *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->cap = 1024;
	s->slots = calloc(s->cap, sizeof(struct slot));
	if (!s->slots) {
		free(s);
		return NULL;
	}
	return s;
}

void mxs_addrset_free(struct mxs_addrset *s)
{
	if (!s)
		return;
	free(s->slots);
	free(s);
}

/* FNV-1a over the key bytes: cheap and good enough for addresses. */
static size_t hash(const struct mxs_addr *a)
{
	uint64_t h = 1469598103934665603ull ^ a->family;
	for (int i = 0; i < 16; i++)
		h = (h ^ a->b[i]) * 1099511628211ull;
	return (size_t)(h ^ (h >> 29));
}

static int put(struct slot *slots, size_t cap, const struct mxs_addr *a)
{
	for (size_t i = hash(a) & (cap - 1);; i = (i + 1) & (cap - 1)) {
		if (!slots[i].used) {
			slots[i].used = 1;
			slots[i].a = *a;
			return 1;
		}
		if (slots[i].a.family == a->family && memcmp(slots[i].a.b, a->b, 16) == 0)
			return 0;
	}
}

int mxs_addrset_add(struct mxs_addrset *s, const struct mxs_addr *a)
{
	if ((s->count + 1) * 4 > s->cap * 3) {
		size_t ncap = s->cap * 2;
		struct slot *ns = calloc(ncap, sizeof(struct slot));
		if (!ns)
			return -1;
		for (size_t i = 0; i < s->cap; i++)
			if (s->slots[i].used)
				put(ns, ncap, &s->slots[i].a);
		free(s->slots);
		s->slots = ns;
		s->cap = ncap;
	}
	int r = put(s->slots, s->cap, a);
	s->count += (size_t)r;
	return r;
}

size_t mxs_addrset_count(const struct mxs_addrset *s)
{
	return s->count;
}

void mxs_addr_format(const struct mxs_addr *a, char *buf, size_t len)
{
	/* IPv4 by hand: glibc's inet_ntop formats it with sprintf, a noticeable share of a
	 * survey's CPU; the text is the same */
	if (a->family == AF_INET && len >= INET_ADDRSTRLEN) {
		char *p = buf;
		for (int i = 0; i < 4; i++) {
			unsigned v = a->b[i];
			if (i)
				*p++ = '.';
			if (v >= 100)
				*p++ = (char)('0' + v / 100);
			if (v >= 10)
				*p++ = (char)('0' + v / 10 % 10);
			*p++ = (char)('0' + v % 10);
		}
		*p = '\0';
		return;
	}
	if (!inet_ntop(a->family, a->b, buf, (socklen_t)len) && len)
		buf[0] = '\0';
}

int mxs_addr_cmp(const void *pa, const void *pb)
{
	const struct mxs_addr *a = pa, *b = pb;

	if (a->family != b->family)
		return a->family == AF_INET ? -1 : 1;
	return memcmp(a->b, b->b, 16);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h ^ (h >> 31);
}

struct mxs_addr mxs_addr_pair_key(const char *name, const struct mxs_addr *a)
{
	struct mxs_addr k = { .family = 0xfe };
	uint64_t h1 = fnv(1469598103934665603ull, name, strlen(name) + 1);
	uint64_t h2 = fnv(0x9e3779b97f4a7c15ull ^ h1, name, strlen(name) + 1);

	h1 = fnv(h1, a, sizeof(*a));
	h2 = fnv(h2 * 0xff51afd7ed558ccdull, a, sizeof(*a));
	memcpy(k.b, &h1, 8);
	memcpy(k.b + 8, &h2, 8);
	return k;
}
