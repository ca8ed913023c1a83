#include "linein.h"

#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct mxs_linein {
	struct event_base *base;
	int fd;
	bool own_fd, regular, eof, done, truncating;
	int error;
	off_t size, consumed;
	size_t lineno;
	struct evbuffer *buf;
	struct event *rev;
	void (*ready)(void *arg);
	void *ready_arg;
};

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct mxs_linein *in = arg;
	(void)fd;
	(void)what;
	if (in->ready != NULL)
		in->ready(in->ready_arg);
}

struct mxs_linein *mxs_linein_open(struct event_base *base, const char *path, char *err,
				   size_t errlen)
{
	struct mxs_linein *in = calloc(1, sizeof(*in));
	struct stat st;

	if (in == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	in->base = base;
	if (path == NULL || strcmp(path, "-") == 0) {
		in->fd = STDIN_FILENO;
	} else if ((in->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		free(in);
		return NULL;
	} else {
		in->own_fd = true;
	}
	in->regular = fstat(in->fd, &st) == 0 && S_ISREG(st.st_mode);
	in->size = in->regular ? st.st_size : 0;
	if (!in->regular) {
		fcntl(in->fd, F_SETFL, fcntl(in->fd, F_GETFL) | O_NONBLOCK);
		in->rev = event_new(base, in->fd, EV_READ, on_readable, in);
	}
	in->buf = evbuffer_new();
	if (in->buf == NULL || (!in->regular && in->rev == NULL)) {
		snprintf(err, errlen, "out of memory");
		mxs_linein_close(in);
		return NULL;
	}
	return in;
}

/* Read more into the buffer: 1 read something, 0 nothing for now, -1 end or error. */
static int fill(struct mxs_linein *in)
{
	int n = evbuffer_read(in->buf, in->fd, 65536);

	if (n > 0)
		return 1;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	if (n < 0)
		in->error = errno;
	in->eof = true;
	return -1;
}

/* Next line into fn; 1 if one was delivered, 0 if none is complete yet. */
static int next_line(struct mxs_linein *in, mxs_line_fn fn, void *arg)
{
	struct evbuffer_ptr eol = evbuffer_search_eol(in->buf, NULL, NULL, EVBUFFER_EOL_LF);
	size_t avail = evbuffer_get_length(in->buf);
	size_t len, skip;
	char *line;
	bool cut = false;

	if (eol.pos >= 0) {
		len = (size_t)eol.pos;
		skip = len + 1;
	} else if (avail >= MXS_LINEIN_MAX || (in->eof && avail > 0)) {
		len = avail;
		skip = avail;
	} else {
		return 0;
	}
	if (in->truncating) {
		/* The rest of an over-long line: discard up to its end. */
		evbuffer_drain(in->buf, skip);
		in->consumed += (off_t)skip;
		in->truncating = eol.pos < 0;
		return next_line(in, fn, arg);
	}
	if (len > MXS_LINEIN_MAX) {
		len = MXS_LINEIN_MAX;
		cut = true;
	}
	if (eol.pos < 0 && avail >= MXS_LINEIN_MAX && !in->eof) {
		cut = true;
		in->truncating = true;
	}
	line = (char *)evbuffer_pullup(in->buf, (ev_ssize_t)len);
	if (len > 0 && line[len - 1] == '\r')
		len--;
	in->lineno++;
	fn(arg, line ? line : "", len, cut);
	evbuffer_drain(in->buf, skip);
	in->consumed += (off_t)skip;
	return 1;
}

size_t mxs_linein_read(struct mxs_linein *in, size_t max, mxs_line_fn fn, void *arg,
		       void (*ready)(void *arg))
{
	size_t n = 0;

	while (n < max && !in->done) {
		if (next_line(in, fn, arg)) {
			n++;
			continue;
		}
		if (in->eof) {
			in->done = true;
			break;
		}
		int r = fill(in);
		if (r == 0) {
			in->ready = ready;
			in->ready_arg = arg;
			event_add(in->rev, NULL);
			break;
		}
	}
	return n;
}

bool mxs_linein_eof(const struct mxs_linein *in)
{
	return in->done;
}

size_t mxs_linein_lineno(const struct mxs_linein *in)
{
	return in->lineno;
}

double mxs_linein_progress(const struct mxs_linein *in)
{
	if (!in->regular)
		return -1;
	return in->size > 0 ? (double)in->consumed / (double)in->size : 1.0;
}

int mxs_linein_error(const struct mxs_linein *in)
{
	return in->error;
}

void mxs_linein_close(struct mxs_linein *in)
{
	if (in == NULL)
		return;
	if (in->rev)
		event_free(in->rev);
	if (in->buf)
		evbuffer_free(in->buf);
	if (in->own_fd)
		close(in->fd);
	free(in);
}
