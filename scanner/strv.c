#include "strv.h"

#include <stdlib.h>
#include <string.h>

int strv_push_owned(struct strv *sv, char *s)
{
	if (s == NULL)
		return -1;
	if (sv->n == sv->cap) {
		size_t cap = sv->cap ? sv->cap * 2 : 4;
		char **v = realloc(sv->v, cap * sizeof(*v));
		if (v == NULL) {
			free(s);
			return -1;
		}
		sv->v = v;
		sv->cap = cap;
	}
	sv->v[sv->n++] = s;
	return 0;
}

int strv_push(struct strv *sv, const char *s)
{
	return strv_push_owned(sv, strdup(s));
}

int strv_contains(const struct strv *sv, const char *s)
{
	for (size_t i = 0; i < sv->n; i++)
		if (strcmp(sv->v[i], s) == 0)
			return 1;
	return 0;
}

void strv_free(struct strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = sv->cap = 0;
}
