/*
 * Open-addressing hash map from an address key (family, 16 address bytes, port) to a
 * counter. Used for connections in flight per address and per network, and for the set
 * of addresses already scanned. Entries are never removed (a counter drops to zero), so
 * memory grows with the number of distinct keys: about 32 bytes each; a map whose zero
 * means "absent" (drop_zero: the connection counters) leaves its zero entries out when it
 * would grow, so it holds about as many keys as are in use at once.
 */
#ifndef MXS_ADDRMAP_H
#define MXS_ADDRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct addr_key {
	uint8_t family;  /* AF_INET or AF_INET6 as one byte; 0 marks an empty slot */
	uint8_t pad;
	uint16_t port;
	uint8_t addr[16];
};

struct addrmap {
	struct addr_key *keys;
	int32_t *vals;
	size_t n, cap;
	bool drop_zero;   /* a zero counter is as good as no entry: forgotten when it would grow */
};

/*
 * Build the key of a sockaddr with the address masked to prefix bits (32/128 for the
 * address itself) and the given port (0 to ignore ports).
 */
void addr_key_make(struct addr_key *k, const struct sockaddr *sa, int prefix4, int prefix6,
		   uint16_t port);

void addrmap_init(struct addrmap *m);
void addrmap_free(struct addrmap *m);
/* Pointer to the counter of k, created at 0 when absent; NULL when out of memory. */
int32_t *addrmap_get(struct addrmap *m, const struct addr_key *k);
/* The counter of k, 0 when absent. */
int32_t addrmap_peek(const struct addrmap *m, const struct addr_key *k);

#endif
