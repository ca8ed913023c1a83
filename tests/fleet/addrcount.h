/*
 * Connections seen per local address, for behaviours that answer the first connection
 * differently (421-then-ok). Only addresses that need counting are ever inserted, so a
 * scan of a whole /8 does not grow it.
 */
#ifndef FLEET_ADDRCOUNT_H
#define FLEET_ADDRCOUNT_H

#include "addr.h"

struct fleet_addrcount;

struct fleet_addrcount *fleet_addrcount_new(void);
void fleet_addrcount_free(struct fleet_addrcount *m);

/*
 * Count one more connection to a; returns how many were seen before it, or -1 (no
 * memory). Keys compare all 16 bytes, so the unused bytes of an IPv4 address must be
 * zero (fleet_addr_from_sockaddr clears them).
 */
long fleet_addrcount_bump(struct fleet_addrcount *m, const struct fleet_addr *a);

#endif
