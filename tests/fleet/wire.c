#include "wire.h"

#include <stdlib.h>

#include <event2/buffer.h>

#include "behaviour.h"
#include "log.h"
#include "monotime.h"

/*
 * Flights held at once. When a stream (endless-multiline) outruns the ring, a new flight
 * joins the last one and moves its departure to its own, later time: bytes may leave
 * later than their RTT, never earlier.
 */
#define MAX_FLIGHTS 32
/* Stop taking the session's output above this many held or unsent bytes; resume below
 * the low mark. Streamed greetings (1 MiB long line, endless lines) rely on it. */
#define HELD_HIGH (256 * 1024)
#define HELD_LOW (64 * 1024)

#define SALT_JITTER 0x6a69747465722d31ULL   /* "jitter-1" */

struct flight {
	int64_t due_us;         /* monotonic µs at which it leaves */
	size_t len;             /* its bytes, the next ones of held */
};

struct fwire {
	struct fwire_params p;
	struct bufferevent *sock;     /* the real socket; frees (closes) fd */
	struct bufferevent *near;     /* our end of the pair; the session owns the other */
	struct evbuffer *held;        /* bytes of the flights in the ring, in order */
	struct event *timer;          /* armed for the first flight's departure */
	struct flight ring[MAX_FLIGHTS];
	unsigned head, count;
	int64_t last_due_us;          /* TCP keeps order: no flight leaves before an earlier one */
	uint64_t flights;             /* flights reserved so far: the jitter draw's counter */
	int throttled;                /* near end's reading disabled (HELD_HIGH) */
};

static size_t unsent(const struct fwire *w)
{
	return evbuffer_get_length(w->held) + evbuffer_get_length(bufferevent_get_output(w->sock));
}

/* Departure (µs) of a flight created now: rtt +- jitter, after every earlier flight. */
static int64_t next_due(struct fwire *w, int64_t now)
{
	int64_t delay = w->p.rtt_ms;

	if (w->p.jitter_ms > 0) {
		uint64_t r = fb_mix64(fb_mix64(w->p.seed ^ SALT_JITTER) ^ (w->p.conn_id << 20) ^ w->flights);
		delay += (int64_t)(r % (2 * (uint64_t)w->p.jitter_ms + 1)) - w->p.jitter_ms;
		if (delay < 0)
			delay = 0;
	}
	w->flights++;
	if (now + delay * 1000 > w->last_due_us)
		w->last_due_us = now + delay * 1000;
	return w->last_due_us;
}

/* Wake up for the first flight. A timer that fires early (monotime.h) finds nothing
 * due and arms again. */
static void arm(struct fwire *w, int64_t now)
{
	struct timeval tv = fleet_tv_until(w->ring[w->head].due_us, now);

	evtimer_add(w->timer, &tv);
}

static void update_throttle(struct fwire *w)
{
	size_t n = unsent(w);

	if (!w->throttled && n > HELD_HIGH) {
		bufferevent_disable(w->near, EV_READ);
		w->throttled = 1;
	} else if (w->throttled && n < HELD_LOW) {
		w->throttled = 0;
		bufferevent_enable(w->near, EV_READ); /* the pair hands over what piled up */
	}
}

/* The session wrote: everything since the last call is one flight. */
static void near_read_cb(struct bufferevent *bev, void *arg)
{
	struct fwire *w = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = evbuffer_get_length(in);
	int64_t now = fleet_mono_us(), due;

	if (len == 0)
		return;
	due = next_due(w, now);
	evbuffer_add_buffer(w->held, in);
	if (w->count == MAX_FLIGHTS) {
		struct flight *last = &w->ring[(w->head + w->count - 1) % MAX_FLIGHTS];
		last->len += len;
		last->due_us = due;
	} else {
		w->ring[(w->head + w->count) % MAX_FLIGHTS] = (struct flight){ due, len };
		if (w->count++ == 0)
			arm(w, now);
	}
	update_throttle(w);
}

/* Send every flight that is due. */
static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fwire *w = arg;
	int64_t now = fleet_mono_us();
	struct evbuffer *out = bufferevent_get_output(w->sock);

	while (w->count > 0 && w->ring[w->head].due_us <= now) {
		evbuffer_remove_buffer(w->held, out, w->ring[w->head].len);
		w->head = (w->head + 1) % MAX_FLIGHTS;
		w->count--;
	}
	if (w->count > 0)
		arm(w, now);
	update_throttle(w);
}

/* Client bytes go to the session at once. */
static void sock_read_cb(struct bufferevent *bev, void *arg)
{
	struct fwire *w = arg;

	bufferevent_write_buffer(w->near, bufferevent_get_input(bev));
}

static void sock_write_cb(struct bufferevent *bev, void *arg)
{
	update_throttle(arg);
}

/* The client closed or the socket failed: the session sees end of file after its input. */
static void sock_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct fwire *w = arg;

	mxs_debug("fleet", "c%llu wire-event what=0x%x", (unsigned long long)w->p.conn_id,
		  (unsigned)what);
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		bufferevent_disable(bev, EV_READ | EV_WRITE);
		bufferevent_flush(w->near, EV_WRITE, BEV_FINISHED);
	}
}

struct fwire *fwire_new(struct event_base *base, evutil_socket_t fd, const struct fwire_params *p,
			struct bufferevent **session)
{
	struct fwire *w = calloc(1, sizeof(*w));
	struct bufferevent *pair[2] = { NULL, NULL };

	*session = NULL;
	if (w == NULL) {
		evutil_closesocket(fd);
		return NULL;
	}
	w->p = *p;
	w->sock = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (w->sock == NULL)
		evutil_closesocket(fd);
	w->held = evbuffer_new();
	w->timer = evtimer_new(base, timer_cb, w);
	/* Deferred callbacks (always, for pairs): one read of ours per session round. */
	if (w->sock == NULL || w->held == NULL || w->timer == NULL ||
	    bufferevent_pair_new(base, BEV_OPT_DEFER_CALLBACKS, pair) < 0) {
		fwire_free(w);
		return NULL;
	}
	w->near = pair[1];
	bufferevent_setcb(w->sock, sock_read_cb, sock_write_cb, sock_event_cb, w);
	bufferevent_setcb(w->near, near_read_cb, NULL, NULL, w);
	bufferevent_enable(w->sock, EV_READ | EV_WRITE);
	bufferevent_enable(w->near, EV_READ | EV_WRITE);
	*session = pair[0];
	return w;
}

void fwire_free(struct fwire *w)
{
	if (w == NULL)
		return;
	if (w->near != NULL)
		bufferevent_free(w->near);
	if (w->sock != NULL)
		bufferevent_free(w->sock);
	if (w->held != NULL)
		evbuffer_free(w->held);
	if (w->timer != NULL)
		event_free(w->timer);
	free(w);
}

int fwire_flushed(const struct fwire *w)
{
	return unsent(w) == 0 && evbuffer_get_length(bufferevent_get_input(w->near)) == 0;
}

unsigned fwire_drain_ms(const struct fwire *w)
{
	int64_t now = fleet_mono_us(), last;

	if (w->count == 0)
		return 0;
	last = w->ring[(w->head + w->count - 1) % MAX_FLIGHTS].due_us;
	return last > now ? (unsigned)((last - now + 999) / 1000) : 0;
}

int64_t fwire_reserve(struct fwire *w)
{
	return next_due(w, fleet_mono_us());
}
