#include "linevec.h"

#include <stdlib.h>
#include <string.h>

void linevec_init(struct linevec *v)
{
	memset(v, 0, sizeof(*v));
}

void linevec_free(struct linevec *v)
{
	free(v->buf);
	free(v->offs);
	linevec_init(v);
}

void linevec_clear(struct linevec *v)
{
	v->len = 0;
	v->n = 0;
}

int linevec_add(struct linevec *v, const char *line, size_t len)
{
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (v->cap - v->len < len + 1) {
		size_t cap = v->cap ? v->cap : 65536;
		while (cap - v->len < len + 1)
			cap *= 2;
		char *b = realloc(v->buf, cap);
		if (b == NULL)
			return -1;
		v->buf = b;
		v->cap = cap;
	}
	if (v->n == v->ncap) {
		size_t ncap = v->ncap ? v->ncap * 2 : 1024;
		size_t *o = realloc(v->offs, ncap * sizeof(*o));
		if (o == NULL)
			return -1;
		v->offs = o;
		v->ncap = ncap;
	}
	v->offs[v->n++] = v->len;
	memcpy(v->buf + v->len, line, len);
	v->len += len;
	v->buf[v->len++] = '\n';
	return 0;
}

const char *linevec_line(const struct linevec *v, size_t i, size_t *len)
{
	size_t end = i + 1 < v->n ? v->offs[i + 1] : v->len;
	*len = end - v->offs[i] - 1;
	return v->buf + v->offs[i];
}
