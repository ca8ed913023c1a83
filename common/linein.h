/*
 * Line input from a file or stdin for a libevent program. A regular file is read as
 * needed; a pipe (zmap | mxsurvey scan) is read without blocking, and the caller is
 * told when more may be there, so a slow producer never stalls the event loop.
 * Lines longer than MXS_LINEIN_MAX are cut there and flagged.
 */
#ifndef MXS_LINEIN_H
#define MXS_LINEIN_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

#define MXS_LINEIN_MAX (64 * 1024)

struct mxs_linein;

/* One line without its ending; truncated when it was longer than MXS_LINEIN_MAX. */
typedef void (*mxs_line_fn)(void *arg, const char *line, size_t len, bool truncated);

/* Open path ("-" or NULL: stdin). Returns NULL with a message in err. */
struct mxs_linein *mxs_linein_open(struct event_base *base, const char *path, char *err,
				   size_t errlen);
/*
 * Deliver up to max lines to fn now. Returns how many were delivered. When it delivers
 * fewer than max and mxs_linein_eof() is false, ready(arg) is called once more input has
 * arrived.
 */
size_t mxs_linein_read(struct mxs_linein *in, size_t max, mxs_line_fn fn, void *arg,
		       void (*ready)(void *arg));
/* True once the input ended and every line was delivered. */
bool mxs_linein_eof(const struct mxs_linein *in);
/* Line number of the last delivered line (1-based). */
size_t mxs_linein_lineno(const struct mxs_linein *in);
/* Fraction of a regular file consumed (0..1), or -1 for a pipe. */
double mxs_linein_progress(const struct mxs_linein *in);
/* Errno of a read failure, 0 if none. */
int mxs_linein_error(const struct mxs_linein *in);
void mxs_linein_close(struct mxs_linein *in);

#endif
