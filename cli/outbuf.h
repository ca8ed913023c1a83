/*
 * The results queue of `scan` and `survey`. Records wait here until the output takes
 * them, and the event loop never waits for the output: a pipe, FIFO or socket is written
 * non-blocking, as much as it takes, the rest when it has room again. Past `high` bytes
 * waiting (--output-buffer) the scanner starts no new targets (back-pressure) until half
 * of them are written; probes in flight finish normally and their records join the queue,
 * so a slow reader delays the scan but never changes a result. A regular file or a
 * terminal is written at once, blocking (it never waits for a reader). Results are
 * written in whole lines, so a run killed at any moment leaves a file of complete records
 * (and at most a second of results unwritten); a pipe may take part of a line when the
 * kill comes.
 */
#ifndef MXS_OUTBUF_H
#define MXS_OUTBUF_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scanner.h"

#define OUTBUF_HIGH_DEFAULT (16u << 20)
#define OUTBUF_HIGH_MIN (16u << 10)

struct outbuf {
	int fd;
	int fl_saved;             /* with nonblock: the status flags to restore */
	bool nonblock;            /* pipe, FIFO or socket: written when it has room */
	char *buf;
	size_t off, len, cap;     /* buf[off, len) waits to be written */
	size_t high;              /* back-pressure at this many bytes waiting (0: default) */
	bool stalled, failed;
	int64_t t_stall;
	struct event *wev;        /* the output has room again */
	struct event *flush_ev;   /* once a second: write what waits */
	const char *who;          /* log subsystem: "scan", "survey" */
	struct mxs_scanner *sc;   /* told when the output stalls and flows again */
	void (*on_fail)(void *arg);  /* the output failed (logged already): stop the run */
	void *arg;
};

/*
 * -o PATH for writing: created anew, or with resume appended to (a torn last line cut;
 * resume wants a regular file). A FIFO with no reader yet is waited for, saying so
 * (the run has not started: no probe waits). The descriptor, or -1 after a message on
 * stderr naming cmd.
 */
int outbuf_open_path(const char *cmd, const char *path, bool resume);
/*
 * Start writing fd through the queue on base: a pipe, FIFO or socket becomes
 * non-blocking (restored by outbuf_close). sc may be set in o->sc later, before the
 * first outbuf_put. 0, or -1 when out of memory.
 */
int outbuf_start(struct outbuf *o, int fd, struct event_base *base, const char *who,
		 void (*on_fail)(void *), void *arg);
/* One line (a newline is added). 0, or -1 when the output failed (o->failed). */
int outbuf_put(struct outbuf *o, const char *line, size_t len);
/* The run is over: write everything, waiting for the reader as long as it takes. 0 or -1. */
int outbuf_finish(struct outbuf *o);
/* Free the queue, restore the flags, close fd unless it is stdout. */
void outbuf_close(struct outbuf *o);
/* --output-buffer: bytes, with an optional K or M (binary) suffix. 0, or -1 if bad. */
int outbuf_size_arg(const char *v, size_t *out);

#endif
