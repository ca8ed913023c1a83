/*
 * The DNS queries mxsurvey-udpdelay has in flight, by the id it gave them upstream.
 *
 * Every client query leaves on one upstream socket under a fresh 16-bit id, so clients
 * that happen to use the same query id (every c-ares channel starts somewhere) never
 * collide; the slot of that id remembers who asked (source address and port) and with
 * which id, to answer them. Ids are handed out round-robin, so an id is reused only
 * after 65,535 others, and a slot whose answer never came is reclaimed after a TTL.
 */
#ifndef FLEET_UDPMAP_H
#define FLEET_UDPMAP_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#define UDPMAP_SLOTS 65536

/* Who asked: where the answer goes, and the id it must carry. */
struct udpmap_client {
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} addr;
	socklen_t len;
	uint16_t qid;
};

struct udpmap;

/* A table whose unanswered queries expire after ttl_ms. NULL: out of memory. */
struct udpmap *udpmap_new(unsigned ttl_ms);
void udpmap_free(struct udpmap *m);

/*
 * Remember the query qid from client address from (len bytes, AF_INET or AF_INET6), sent
 * upstream at now_ms. Returns the id to send it under, or -1: every id is held by a query
 * younger than the TTL (or the address does not fit).
 */
int udpmap_add(struct udpmap *m, const struct sockaddr *from, socklen_t len, uint16_t qid,
	       int64_t now_ms);

/*
 * The answer to upstream id arrived: copy who asked into *client and free the slot.
 * Returns 0, or -1 when no query waits under that id (late, duplicate or forged).
 */
int udpmap_take(struct udpmap *m, uint16_t id, struct udpmap_client *client);

/* Queries in flight, and how many slots were reclaimed unanswered so far. */
unsigned udpmap_in_flight(const struct udpmap *m);
uint64_t udpmap_expired(const struct udpmap *m);

#endif
