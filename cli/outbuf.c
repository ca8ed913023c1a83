/* The results queue of scan and survey (outbuf.h). */
#include "outbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "resume.h"
#include "timeutil.h"

#define OUTBUF_FLUSH_AT (1 << 16)

static size_t outbuf_waiting(const struct outbuf *o)
{
	return o->len - o->off;
}

/* Batch small records into writes of this size; the flush timer writes the rest each second. */
static size_t outbuf_flush_at(const struct outbuf *o)
{
	return o->high / 4 < OUTBUF_FLUSH_AT ? o->high / 4 : OUTBUF_FLUSH_AT;
}

/*
 * Write what the output takes now. Returns 0 (for a non-blocking output, bytes may
 * still wait: o->wev is then armed), or -1 with errno set.
 */
static int outbuf_write(struct outbuf *o)
{
	while (o->off < o->len) {
		ssize_t n = write(o->fd, o->buf + o->off, o->len - o->off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && o->nonblock) {
			if (o->wev != NULL && !event_pending(o->wev, EV_WRITE, NULL))
				event_add(o->wev, NULL);
			return 0;
		}
		if (n <= 0)
			return -1;
		o->off += (size_t)n;
	}
	o->off = o->len = 0;
	return 0;
}

/* Keep the waiting bytes at the front once most of the buffer has been written. */
static void outbuf_compact(struct outbuf *o)
{
	if (o->off > 0 && o->off >= o->len / 2) {
		memmove(o->buf, o->buf + o->off, o->len - o->off);
		o->len -= o->off;
		o->off = 0;
	}
}

/* The output failed (the reader went away, the disk is full): stop the run. */
static void outbuf_failed(struct outbuf *o)
{
	if (o->failed)
		return;
	o->failed = true;
	mxs_err(o->who, "cannot write results: %s; stopping", strerror(errno));
	if (o->sc != NULL)
		mxs_scanner_output_stalled(o->sc, false);
	if (o->on_fail != NULL)
		o->on_fail(o->arg);
}

/* Back-pressure: start nothing new while the queue is over its bound, until it is half. */
static void check_stall(struct outbuf *o)
{
	size_t waiting = outbuf_waiting(o);

	if (!o->stalled && waiting >= o->high) {
		o->stalled = true;
		o->t_stall = mxs_mono_ms();
		mxs_warn(o->who, "output stalled: %zu KiB of results wait for the reader; "
			 "no new targets start until it reads", waiting >> 10);
		if (o->sc != NULL)
			mxs_scanner_output_stalled(o->sc, true);
	} else if (o->stalled && waiting <= o->high / 2) {
		o->stalled = false;
		mxs_info(o->who, "output flowing again after %.1f s",
			 (double)(mxs_mono_ms() - o->t_stall) / 1000.0);
		if (o->sc != NULL)
			mxs_scanner_output_stalled(o->sc, false);
	}
}

static void write_now(struct outbuf *o)
{
	if (o->failed)
		return;
	if (outbuf_write(o) < 0)
		outbuf_failed(o);
	else
		check_stall(o);
}

/* A pipe or socket output has room again. */
static void on_writable(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	write_now(arg);
}

static void on_flush_tick(evutil_socket_t fd, short what, void *arg)
{
	struct outbuf *o = arg;
	(void)fd;
	(void)what;
	/* At most a second of results sits in the buffer if the process is killed. */
	if (o->wev != NULL && event_pending(o->wev, EV_WRITE, NULL))
		return;
	write_now(o);
}

int outbuf_open_path(const char *cmd, const char *path, bool resume)
{
	struct stat st;
	bool fifo = stat(path, &st) == 0 && S_ISFIFO(st.st_mode);
	int fd;

	if (resume && fifo) {
		fprintf(stderr, "mxsurvey %s: --resume -o %s: a FIFO holds no earlier results; "
			"resume with a regular file\n", cmd, path);
		return -1;
	}
	if (fifo) {
		/* No reader yet: say what the run waits for, then wait as a shell redirection does. */
		fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0 && errno == ENXIO) {
			mxs_info(cmd, "waiting for a reader of the FIFO %s", path);
			fd = open(path, O_WRONLY | O_CLOEXEC);
		}
	} else {
		fd = open(path, O_CREAT | O_CLOEXEC | (resume ? O_RDWR | O_APPEND : O_WRONLY | O_TRUNC),
			  0644);
	}
	if (fd < 0 || (resume && resume_trim_torn_tail(fd) < 0)) {
		fprintf(stderr, "mxsurvey %s: cannot open %s: %s\n", cmd, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int outbuf_start(struct outbuf *o, int fd, struct event_base *base, const char *who,
		 void (*on_fail)(void *), void *arg)
{
	struct stat st;
	int fl;
	struct timeval sec = { 1, 0 };

	o->fd = fd;
	o->who = who;
	o->on_fail = on_fail;
	o->arg = arg;
	if (o->high == 0)
		o->high = OUTBUF_HIGH_DEFAULT;
	o->flush_ev = event_new(base, -1, EV_PERSIST, on_flush_tick, o);
	if (o->flush_ev == NULL || event_add(o->flush_ev, &sec) < 0)
		return -1;
	/* Make a pipe or socket non-blocking; files and terminals stay as they are. */
	if (fstat(fd, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
		return 0;
	if ((fl = fcntl(fd, F_GETFL)) < 0)
		return 0;
	if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return 0;
	o->wev = event_new(base, fd, EV_WRITE, on_writable, o);
	if (o->wev == NULL) {
		fcntl(fd, F_SETFL, fl);
		return -1;
	}
	o->fl_saved = fl;
	o->nonblock = true;
	return 0;
}

int outbuf_put(struct outbuf *o, const char *line, size_t len)
{
	if (o->failed)
		return -1;
	outbuf_compact(o);
	if (o->len + len + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : OUTBUF_FLUSH_AT * 2;
		while (cap < o->len + len + 1)
			cap *= 2;
		char *b = realloc(o->buf, cap);
		if (b == NULL) {
			errno = ENOMEM;
			outbuf_failed(o);
			return -1;
		}
		o->buf = b;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, line, len);
	o->buf[o->len + len] = '\n';
	o->len += len + 1;
	/* While the output has no room, o->wev writes when it has. */
	if (o->wev != NULL && event_pending(o->wev, EV_WRITE, NULL)) {
		check_stall(o);
		return 0;
	}
	if (outbuf_waiting(o) >= outbuf_flush_at(o) && outbuf_write(o) < 0) {
		outbuf_failed(o);
		return -1;
	}
	check_stall(o);
	return 0;
}

int outbuf_finish(struct outbuf *o)
{
	struct pollfd p = { .fd = o->fd, .events = POLLOUT };

	if (o->flush_ev != NULL)
		event_free(o->flush_ev);
	o->flush_ev = NULL;
	if (o->wev != NULL)
		event_del(o->wev);
	if (o->failed)
		return -1;
	while (outbuf_write(o) == 0) {
		if (o->off == o->len)
			return 0;
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			break;
	}
	mxs_err(o->who, "cannot write results: %s", strerror(errno));
	o->failed = true;
	return -1;
}

void outbuf_close(struct outbuf *o)
{
	if (o->flush_ev != NULL)
		event_free(o->flush_ev);
	o->flush_ev = NULL;
	if (o->wev != NULL)
		event_free(o->wev);
	o->wev = NULL;
	if (o->nonblock)
		fcntl(o->fd, F_SETFL, o->fl_saved);
	if (o->fd != STDOUT_FILENO && o->fd >= 0)
		close(o->fd);
	o->fd = -1;
	free(o->buf);
	o->buf = NULL;
}

int outbuf_size_arg(const char *v, size_t *out)
{
	char *end;
	unsigned long long x = strtoull(v, &end, 10);
	unsigned shift = 0;

	if (*end == 'K' || *end == 'k')
		shift = 10, end++;
	else if (*end == 'M' || *end == 'm')
		shift = 20, end++;
	if (*v < '0' || *v > '9' || *end != '\0' || x > (1ULL << 32) >> shift ||
	    (x << shift) < OUTBUF_HIGH_MIN)
		return -1;
	*out = (size_t)(x << shift);
	return 0;
}
