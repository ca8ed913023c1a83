#include "addrcount.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Open addressing with linear probing; the table doubles at 50% load. */
struct slot {
	struct fleet_addr addr;
	long count;
	int used;
};

struct fleet_addrcount {
	struct slot *slots;
	size_t cap, used;
};

static uint64_t hash_addr(const struct fleet_addr *a)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	h = (h ^ (uint64_t)a->family) * 1099511628211ULL;
	for (size_t i = 0; i < sizeof(a->b); i++)
		h = (h ^ a->b[i]) * 1099511628211ULL;
	return h;
}

static struct slot *find(struct slot *slots, size_t cap, const struct fleet_addr *a)
{
	size_t i = (size_t)hash_addr(a) & (cap - 1);

	while (slots[i].used &&
	       (slots[i].addr.family != a->family || memcmp(slots[i].addr.b, a->b, 16) != 0))
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

static int grow(struct fleet_addrcount *m)
{
	size_t cap = m->cap * 2;
	struct slot *slots = calloc(cap, sizeof(*slots));

	if (slots == NULL)
		return -1;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].used)
			*find(slots, cap, &m->slots[i].addr) = m->slots[i];
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	return 0;
}

struct fleet_addrcount *fleet_addrcount_new(void)
{
	struct fleet_addrcount *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->cap = 64;
	m->slots = calloc(m->cap, sizeof(*m->slots));
	if (m->slots == NULL) {
		free(m);
		return NULL;
	}
	return m;
}

void fleet_addrcount_free(struct fleet_addrcount *m)
{
	if (m == NULL)
		return;
	free(m->slots);
	free(m);
}

long fleet_addrcount_bump(struct fleet_addrcount *m, const struct fleet_addr *a)
{
	struct slot *s;

	if ((m->used + 1) * 2 > m->cap && grow(m) < 0)
		return -1;
	s = find(m->slots, m->cap, a);
	if (!s->used) {
		s->addr = *a;
		s->used = 1;
		m->used++;
	}
	return s->count++;
}
