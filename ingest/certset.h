/*
 * A bounded set of SHA-256 fingerprints: the certificates already sent on one
 * connection, so a certificate shared by thousands of hosts is sent once. When it fills
 * up it forgets everything (the database deduplicates anyway), which keeps memory flat.
 */
#ifndef MXS_CERTSET_H
#define MXS_CERTSET_H

#include <stddef.h>

struct certset;

/* A set holding up to about 0.7 * slots fingerprints; slots is rounded to a power of 2. */
struct certset *certset_new(size_t slots);
void certset_free(struct certset *s);
void certset_clear(struct certset *s);
/* Add fp; returns 1 if it was not in the set, 0 if it was. */
int certset_add(struct certset *s, const unsigned char fp[32]);

#endif
