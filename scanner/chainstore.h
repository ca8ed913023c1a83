/*
 * The certificate chains the probe plans keep (plan.h), stored once per distinct chain.
 * A plan keeps its first probe's chain for the whole run, so that a name reaching the
 * address later is judged on it; large providers serve one chain on thousands of
 * addresses, and a copy per address was the scanner's largest per-address cost (about
 * 1.5 KiB of DER each). Entries are reference-counted and compared byte for byte.
 */
#ifndef MXS_CHAINSTORE_H
#define MXS_CHAINSTORE_H

#include <stddef.h>
#include <stdint.h>

struct chainstore;

struct chainstore *chainstore_new(void);
/* Free the store and every entry (whatever their counts). */
void chainstore_free(struct chainstore *cs);

/*
 * Take der (malloc'd, len bytes; ownership passes to the store): the stored copy of an
 * equal chain (der is freed) or der itself, newly stored. The returned pointer stays
 * valid until chainstore_release has been called once per chainstore_put that returned it.
 * NULL when der is NULL or out of memory (der is then freed).
 */
const unsigned char *chainstore_put(struct chainstore *cs, unsigned char *der, size_t len);
/* Drop one reference to a chain chainstore_put returned (NULL: nothing). */
void chainstore_release(struct chainstore *cs, const unsigned char *der, size_t len);

/* Distinct chains stored, references to them, and the bytes of their DER. */
size_t chainstore_count(const struct chainstore *cs);
uint64_t chainstore_refs(const struct chainstore *cs);
uint64_t chainstore_bytes(const struct chainstore *cs);

#endif
