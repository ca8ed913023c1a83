#include "addrmap.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

void addr_key_make(struct addr_key *k, const struct sockaddr *sa, int prefix4, int prefix6,
		   uint16_t port)
{
	int prefix, bytes;

	memset(k, 0, sizeof(*k));
	if (sa->sa_family == AF_INET) {
		memcpy(k->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		prefix = prefix4;
		bytes = 4;
	} else {
		memcpy(k->addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		prefix = prefix6;
		bytes = 16;
	}
	k->family = (uint8_t)sa->sa_family;
	k->port = port;
	for (int i = 0; i < bytes; i++) {
		int keep = prefix - i * 8;
		if (keep <= 0)
			k->addr[i] = 0;
		else if (keep < 8)
			k->addr[i] &= (uint8_t)(0xff << (8 - keep));
	}
}

static uint64_t key_hash(const struct addr_key *k)
{
	/* FNV-1a over the 20 key bytes, then a finalising mix. */
	const uint8_t *p = (const uint8_t *)k;
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < sizeof(*k); i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

void addrmap_init(struct addrmap *m)
{
	memset(m, 0, sizeof(*m));
}

void addrmap_free(struct addrmap *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

static size_t find_slot(const struct addr_key *keys, size_t cap, const struct addr_key *k)
{
	size_t i = (size_t)key_hash(k) & (cap - 1);
	while (keys[i].family != 0 && memcmp(&keys[i], k, sizeof(*k)) != 0)
		i = (i + 1) & (cap - 1);
	return i;
}

/*
 * Rehash into twice the capacity; a drop_zero map whose non-zero entries fill at most a
 * quarter of it rehashes those alone at the same capacity instead.
 */
static int grow(struct addrmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 1024, live = 0;
	struct addr_key *keys;
	int32_t *vals;
	bool skip_zero = false;

	if (m->drop_zero && m->cap > 0) {
		for (size_t i = 0; i < m->cap; i++)
			live += m->keys[i].family != 0 && m->vals[i] != 0;
		if (live * 4 <= m->cap) {
			cap = m->cap;
			skip_zero = true;
		}
	}
	keys = calloc(cap, sizeof(*keys));
	vals = calloc(cap, sizeof(*vals));

	if (keys == NULL || vals == NULL) {
		free(keys);
		free(vals);
		return -1;
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (m->keys[i].family == 0 || (skip_zero && m->vals[i] == 0))
			continue;
		size_t j = find_slot(keys, cap, &m->keys[i]);
		keys[j] = m->keys[i];
		vals[j] = m->vals[i];
	}
	free(m->keys);
	free(m->vals);
	m->keys = keys;
	m->vals = vals;
	m->cap = cap;
	if (skip_zero)
		m->n = live;
	return 0;
}

int32_t *addrmap_get(struct addrmap *m, const struct addr_key *k)
{
	size_t i;

	if ((m->n + 1) * 4 > m->cap * 3 && grow(m) < 0)
		return NULL;
	i = find_slot(m->keys, m->cap, k);
	if (m->keys[i].family == 0) {
		m->keys[i] = *k;
		m->vals[i] = 0;
		m->n++;
	}
	return &m->vals[i];
}

int32_t addrmap_peek(const struct addrmap *m, const struct addr_key *k)
{
	size_t i;

	if (m->cap == 0)
		return 0;
	i = find_slot(m->keys, m->cap, k);
	return m->keys[i].family == 0 ? 0 : m->vals[i];
}
