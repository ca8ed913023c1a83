/* A growable vector of owned C strings. */
#ifndef MXS_STRV_H
#define MXS_STRV_H

#include <stddef.h>

struct strv {
	char **v;
	size_t n;
	size_t cap;
};

/* Append s, taking ownership of it. Returns 0, or -1 (and frees s) when out of memory. */
int strv_push_owned(struct strv *sv, char *s);
/* Append a copy of s. Returns 0 or -1. */
int strv_push(struct strv *sv, const char *s);
/* 1 if sv holds a string equal to s. */
int strv_contains(const struct strv *sv, const char *s);
void strv_free(struct strv *sv);

#endif
