/*
 * The compact text of a JSON record, byte for byte what jansson's
 * json_dumpb(j, ..., JSON_COMPACT) writes, without its cost: jansson 2.14 formats and
 * hashes the address of every object and array it dumps (loop detection), which was the
 * largest single cost of `mxsurvey resolve` after the kernel. Records are acyclic trees
 * of objects, arrays, ASCII strings, integers, booleans and nulls; anything else (a real,
 * a string with bytes to escape or outside printable ASCII, deep nesting) is left to
 * json_dumpb itself, so the text is always jansson's.
 */
#ifndef MXS_JSONOUT_H
#define MXS_JSONOUT_H

#include <jansson.h>
#include <stddef.h>

/* A growing output buffer; zero-initialise it, free(p) when done. */
struct mxs_jbuf {
	char *p;
	size_t len, cap;
};

/*
 * Append the compact text of j (an object or an array) to b, without a newline.
 * Returns 0, or -1 when out of memory or when jansson cannot dump j either (b->len is
 * then as it was).
 */
int mxs_json_compact(struct mxs_jbuf *b, const json_t *j);

/* Append one byte (a record's newline). Returns 0, or -1 when out of memory. */
int mxs_jbuf_putc(struct mxs_jbuf *b, char c);

#endif
