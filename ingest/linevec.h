/*
 * A run of input lines kept as one JSONL buffer (each line ends in '\n') plus the offset
 * of every line: the same bytes go to the database, to a spool file, or back through the
 * converter when a batch has to be split.
 */
#ifndef MXS_LINEVEC_H
#define MXS_LINEVEC_H

#include <stddef.h>

struct linevec {
	char *buf;      /* owned */
	size_t len;
	size_t cap;
	size_t *offs;   /* owned; offs[i] is where line i starts */
	size_t n;
	size_t ncap;
};

void linevec_init(struct linevec *v);
void linevec_free(struct linevec *v);
void linevec_clear(struct linevec *v);
/* Append a line (a trailing newline is added); 0 on success, -1 out of memory. */
int linevec_add(struct linevec *v, const char *line, size_t len);
/* Line i without its newline. */
const char *linevec_line(const struct linevec *v, size_t i, size_t *len);

#endif
