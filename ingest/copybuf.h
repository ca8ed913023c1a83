/*
 * A growable byte buffer that builds rows in PostgreSQL's COPY text format: fields
 * separated by tabs, rows ended by a newline, NULL as \N, and backslash, tab, newline
 * and carriage return escaped inside a field. Arrays are written as array literals
 * with every element double-quoted, so no element value can be read as NULL or split.
 *
 * Allocation failure is sticky: the buffer records it in ->oom and later appends do
 * nothing, so a caller checks once per row instead of after every field.
 */
#ifndef MXS_COPYBUF_H
#define MXS_COPYBUF_H

#include <stddef.h>
#include <stdint.h>

struct copybuf {
	char *data;     /* owned; NULL until the first append */
	size_t len;
	size_t cap;
	int oom;        /* an append failed; the content is incomplete */
	int fields;     /* fields written in the current row, to place tabs */
	int elems;      /* elements written in the current array literal */
};

void copybuf_init(struct copybuf *b);
void copybuf_free(struct copybuf *b);
/* Empty the buffer, keeping its memory for the next rows. */
void copybuf_reset(struct copybuf *b);

/* Raw bytes, no escaping. */
void copybuf_raw(struct copybuf *b, const void *p, size_t n);

/* Field writers: each writes the separator itself. */
void cb_null(struct copybuf *b);
void cb_text(struct copybuf *b, const char *s, size_t n);
void cb_str(struct copybuf *b, const char *s);   /* NULL pointer -> NULL field */
void cb_int(struct copybuf *b, int64_t v);
void cb_bool(struct copybuf *b, int v);
void cb_bytea(struct copybuf *b, const unsigned char *p, size_t n);

/* Array literal writers: cb_array_begin, cb_array_text / cb_array_bytea..., cb_array_end. */
void cb_array_begin(struct copybuf *b);
void cb_array_text(struct copybuf *b, const char *s, size_t n);
void cb_array_bytea(struct copybuf *b, const unsigned char *p, size_t n);
void cb_array_null(struct copybuf *b);
void cb_array_end(struct copybuf *b);

/* End the current row. */
void cb_end_row(struct copybuf *b);

#endif
