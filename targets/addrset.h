/*
 * The set of addresses already emitted as targets, for "each address once per run".
 * Open addressing over 17-byte keys (family + 16 address bytes): about 24 bytes per
 * address, the one structure that grows with the number of distinct targets.
 */
#ifndef MXS_ADDRSET_H
#define MXS_ADDRSET_H

#include <stddef.h>
#include <stdint.h>

struct mxs_addr {
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t b[16];  /* network order; IPv4 in the first 4 bytes, rest zero */
};

struct mxs_addrset;

struct mxs_addrset *mxs_addrset_new(void);
void mxs_addrset_free(struct mxs_addrset *s);

/* Insert; returns 1 if it was new, 0 if already present, -1 on allocation failure. */
int mxs_addrset_add(struct mxs_addrset *s, const struct mxs_addr *a);

size_t mxs_addrset_count(const struct mxs_addrset *s);

/*
 * A key for the pair (MX name, address) in the same set: family 0xfe (no address
 * family) and 128 bits of two independent hashes of the name and the address, so pairs
 * and addresses never collide, and two pairs only with probability 2^-128.
 */
struct mxs_addr mxs_addr_pair_key(const char *name, const struct mxs_addr *a);

/* Format as text ("192.0.2.1", "2001:db8::1"); buf of at least 46 bytes. */
void mxs_addr_format(const struct mxs_addr *a, char *buf, size_t len);

/* Order for sorting: IPv4 before IPv6, then by bytes. */
int mxs_addr_cmp(const void *a, const void *b);

#endif
