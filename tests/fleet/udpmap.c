#include "udpmap.h"

#include <stdlib.h>
#include <string.h>

struct slot {
	struct udpmap_client client;
	int64_t sent_ms;
	int used;
};

struct udpmap {
	struct slot *slots;        /* UDPMAP_SLOTS, indexed by upstream id */
	unsigned next;             /* where the round-robin search starts */
	unsigned in_flight;
	unsigned ttl_ms;
	uint64_t expired;
};

struct udpmap *udpmap_new(unsigned ttl_ms)
{
	struct udpmap *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->slots = calloc(UDPMAP_SLOTS, sizeof(*m->slots));
	if (m->slots == NULL) {
		free(m);
		return NULL;
	}
	m->ttl_ms = ttl_ms;
	return m;
}

void udpmap_free(struct udpmap *m)
{
	if (m == NULL)
		return;
	free(m->slots);
	free(m);
}

int udpmap_add(struct udpmap *m, const struct sockaddr *from, socklen_t len, uint16_t qid,
	       int64_t now_ms)
{
	if (len > (socklen_t)sizeof(m->slots[0].client.addr))
		return -1;
	for (unsigned tries = 0; tries < UDPMAP_SLOTS; tries++) {
		unsigned id = (m->next + tries) % UDPMAP_SLOTS;
		struct slot *s = &m->slots[id];

		if (s->used) {
			if (now_ms - s->sent_ms < (int64_t)m->ttl_ms)
				continue;
			m->expired++; /* its answer never came: the client has given up long ago */
			m->in_flight--;
		}
		memset(&s->client, 0, sizeof(s->client));
		memcpy(&s->client.addr, from, len);
		s->client.len = len;
		s->client.qid = qid;
		s->sent_ms = now_ms;
		s->used = 1;
		m->in_flight++;
		m->next = (id + 1) % UDPMAP_SLOTS;
		return (int)id;
	}
	return -1;
}

int udpmap_take(struct udpmap *m, uint16_t id, struct udpmap_client *client)
{
	struct slot *s = &m->slots[id];

	if (!s->used)
		return -1;
	*client = s->client;
	s->used = 0;
	m->in_flight--;
	return 0;
}

unsigned udpmap_in_flight(const struct udpmap *m)
{
	return m->in_flight;
}

uint64_t udpmap_expired(const struct udpmap *m)
{
	return m->expired;
}
