/*
 * The bounded queue between mxs_sink_put (any thread) and the sink's thread. Lines are
 * copied into chunks; the consumer takes every filled chunk at once and gives them back
 * when it is done with them, and only then is their memory counted free: the bound
 * covers everything between put and the database, which keeps memory flat.
 */
#ifndef MXS_LINEQ_H
#define MXS_LINEQ_H

#include <stddef.h>
#include <stdint.h>

struct lineq_chunk {
	struct lineq_chunk *next;
	size_t len;      /* bytes used in data: records of [uint32 length][bytes] */
	size_t cap;
	char data[];
};

/* Walk the lines of a chunk: pos starts at 0; returns 0 at the end. */
int lineq_chunk_next(const struct lineq_chunk *c, size_t *pos, const char **line, size_t *len);

enum lineq_push {
	LINEQ_OK,
	LINEQ_FULL,      /* non-blocking push found no room */
	LINEQ_CLOSED,
	LINEQ_NOMEM,
	LINEQ_PUSH_LAST
};
extern const char *const lineq_push_names[LINEQ_PUSH_LAST];

struct lineq;

struct lineq *lineq_new(size_t max_bytes);
void lineq_free(struct lineq *q);
/* Queue a copy of line; with block, wait for room while the queue is full. */
enum lineq_push lineq_push(struct lineq *q, const char *line, size_t len, int block);
/*
 * Take every queued chunk, waiting up to timeout_ms for the first. *closed is set once
 * lineq_close was called and nothing is left. Returns the list (oldest first) or NULL.
 */
struct lineq_chunk *lineq_take(struct lineq *q, int timeout_ms, int *closed);
/* Give taken chunks back (frees them and wakes blocked producers). */
void lineq_release(struct lineq *q, struct lineq_chunk *list);
void lineq_close(struct lineq *q);
/* Bytes queued or taken and not yet released. */
size_t lineq_bytes(struct lineq *q);

#endif
