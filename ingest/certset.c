#include "certset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct certset {
	unsigned char (*keys)[32];  /* owned; an all-zero key marks an empty slot */
	size_t mask;
	size_t used;
};

struct certset *certset_new(size_t slots)
{
	size_t n = 16;
	while (n < slots)
		n *= 2;
	struct certset *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->keys = calloc(n, 32);
	if (s->keys == NULL) {
		free(s);
		return NULL;
	}
	s->mask = n - 1;
	return s;
}

void certset_free(struct certset *s)
{
	if (s == NULL)
		return;
	free(s->keys);
	free(s);
}

void certset_clear(struct certset *s)
{
	memset(s->keys, 0, (s->mask + 1) * 32);
	s->used = 0;
}

int certset_add(struct certset *s, const unsigned char fp[32])
{
	static const unsigned char zero[32];
	uint64_t h;

	/* an all-zero fingerprint cannot be stored; report it as new every time */
	if (memcmp(fp, zero, 32) == 0)
		return 1;
	if (s->used * 10 >= (s->mask + 1) * 7)
		certset_clear(s);
	/* the fingerprint is already uniformly distributed: its first bytes are the hash */
	memcpy(&h, fp, sizeof(h));
	for (size_t i = (size_t)h & s->mask;; i = (i + 1) & s->mask) {
		if (memcmp(s->keys[i], zero, 32) == 0) {
			memcpy(s->keys[i], fp, 32);
			s->used++;
			return 1;
		}
		if (memcmp(s->keys[i], fp, 32) == 0)
			return 0;
	}
}
