#include "ares_loop.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnswin.h"
#include "log.h"
#include "timeutil.h"
#include "udpbatch.h"

#define LEVELS 4               /* try levels with their own timeout: T, 2T, 4T, 8T */
#define INITIAL_WINDOW 64u
#define MIN_WINDOW 8u

struct mxs_ares;

/* One c-ares channel, for the tries of one level. */
struct chan {
	struct mxs_ares *a;
	ares_channel ch;
	struct event *timer;
	struct timeval base_timeout;
};

/* One query, from mxs_ares_send to its callback: waiting, in flight, or between tries. */
struct aq {
	struct mxs_ares *a;
	struct aq *next;             /* in a wait queue */
	ares_callback cb;
	void *arg;
	int64_t sent_ms;             /* last try */
	int tries;                   /* tries made */
	int qlen;
	unsigned char q[];           /* the query */
};

struct fdslot {
	struct event *ev;            /* owned */
	struct chan *c;
};

struct queue {
	struct aq *head, *tail;
	unsigned n;
};

struct mxs_ares {
	struct event_base *base;
	struct chan chan[LEVELS];
	int nchan;
	int tries;
	struct fdslot *fds;          /* one event per c-ares socket, indexed by fd; owned */
	size_t nfds;
	struct mxs_udpb *udp;        /* the channels' sockets, batched; owned */
	struct mxs_dnswin win;
	struct queue retry, fresh;   /* waiting for room: retries go first */
	unsigned in_flight;
	int pumping, destroying;
	unsigned logged_window;      /* window at the last log line */
	unsigned long sent, retries, timeouts;
};

static void arm_timer(struct chan *c);

/*
 * Let c-ares read fd again while answers it has not seen wait in the socket's batch
 * (udpbatch.h): the kernel's queue may be empty, so no event would come for them. c-ares
 * 1.18 reads until EAGAIN and this loop does not run; later versions read one datagram a
 * call from sockets they did not create. Bounded in case c-ares stops reading.
 */
static void drain(struct chan *c, evutil_socket_t fd)
{
	for (int i = 0; i < 4 * MXS_UDPB_BATCH && mxs_udpb_pending(c->a->udp, fd); i++)
		ares_process_fd(c->ch, fd, ARES_SOCKET_BAD);
}

static void on_fd(evutil_socket_t fd, short what, void *arg)
{
	struct chan *c = arg;

	ares_process_fd(c->ch, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
			(what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	if (what & EV_READ)
		drain(c, fd);
	arm_timer(c);
}

/* A queued send failed for good: c-ares reads the error and closes the socket. */
static void on_udp_error(int fd, void *arg)
{
	struct mxs_ares *a = arg;

	if (fd < 0 || (size_t)fd >= a->nfds || !a->fds[fd].ev)
		return;
	struct chan *c = a->fds[fd].c;
	ares_process_fd(c->ch, fd, ARES_SOCKET_BAD);
	drain(c, fd);
	arm_timer(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct chan *c = arg;

	ares_process_fd(c->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	arm_timer(c);
}

/*
 * Re-arm the timer only when it is not pending. ares_timeout walks every query in 1.18,
 * so calling it per answer would cost O(n) each time with thousands in flight. The timer
 * never waits longer than one base timeout: a query sent after arming has a deadline at
 * least one base timeout away, so it is caught by the next firing, which re-reads the
 * exact earliest deadline.
 */
static void arm_timer(struct chan *c)
{
	struct timeval tv;

	if (!c->timer || evtimer_pending(c->timer, NULL))
		return;
	if (!ares_timeout(c->ch, NULL, &tv))
		return; /* nothing in flight: no idle wake-ups */
	if (evutil_timercmp(&tv, &c->base_timeout, >))
		tv = c->base_timeout;
	evtimer_add(c->timer, &tv);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct chan *c = data;
	struct mxs_ares *a = c->a;

	if (fd < 0)
		return;
	if ((size_t)fd >= a->nfds) {
		size_t n = a->nfds ? a->nfds : 64;
		while (n <= (size_t)fd)
			n *= 2;
		struct fdslot *nv = realloc(a->fds, n * sizeof(*nv));
		if (!nv)
			return; /* c-ares will time the queries on this socket out */
		memset(nv + a->nfds, 0, (n - a->nfds) * sizeof(*nv));
		a->fds = nv;
		a->nfds = n;
	}
	struct fdslot *slot = &a->fds[fd];
	if (slot->ev) {
		event_free(slot->ev);
		slot->ev = NULL;
	}
	if (!readable && !writable)
		return;
	short what = EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);
	struct event *ev = event_new(a->base, fd, what, on_fd, c);
	if (ev && event_add(ev, NULL) == 0) {
		slot->ev = ev;
		slot->c = c;
	} else if (ev) {
		event_free(ev);
	}
}

static void push(struct queue *qu, struct aq *q)
{
	q->next = NULL;
	if (qu->tail)
		qu->tail->next = q;
	else
		qu->head = q;
	qu->tail = q;
	qu->n++;
}

static struct aq *pop(struct queue *qu)
{
	struct aq *q = qu->head;

	if (q) {
		qu->head = q->next;
		if (!qu->head)
			qu->tail = NULL;
		qu->n--;
	}
	return q;
}

static void pump(struct mxs_ares *a);

/* Log a cut (info), or growth by a quarter since the last line (debug); never per query. */
static void log_window(struct mxs_ares *a, const char *why)
{
	unsigned w = mxs_dnswin_size(&a->win);
	unsigned last = a->logged_window;

	if (w * 4 >= last * 3 && w * 4 <= last * 5 && !why)
		return;
	a->logged_window = w;
	if (why)
		mxs_info("dns", "window %s window=%u in_flight=%u waiting=%u timeouts=%lu cuts=%lu",
			 why, w, a->in_flight, a->retry.n + a->fresh.n, a->timeouts, a->win.cuts);
	else
		mxs_debug("dns", "window grown window=%u in_flight=%u waiting=%u timeouts=%lu",
			  w, a->in_flight, a->retry.n + a->fresh.n, a->timeouts);
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct aq *q = arg;
	struct mxs_ares *a = q->a;
	int64_t now = mxs_mono_ms();

	a->in_flight--;
	if (status == ARES_EDESTRUCTION || a->destroying) {
		q->cb(q->arg, ARES_EDESTRUCTION, q->tries, NULL, 0);
		free(q);
		return;
	}
	if (status == ARES_ETIMEOUT) {
		a->timeouts++;
		int final = q->tries >= a->tries;
		if (mxs_dnswin_timeout(&a->win, now, q->sent_ms, final))
			log_window(a, "cut");
		if (!final) {
			push(&a->retry, q);
			pump(a);
			return;
		}
		q->cb(q->arg, ARES_ETIMEOUT, q->tries, NULL, 0);
	} else {
		unsigned long trims = a->win.trims;
		mxs_dnswin_answer(&a->win, now, a->in_flight + 1);
		if (a->win.trims != trims)
			mxs_debug("dns", "window trimmed window=%u: more in flight did not answer faster",
				  mxs_dnswin_size(&a->win));
		log_window(a, NULL);
		q->cb(q->arg, status, q->tries - 1, abuf, alen);
	}
	free(q);
	pump(a);
}

/* Send waiting queries while the window has room; retries first. */
static void pump(struct mxs_ares *a)
{
	if (a->pumping || a->destroying)
		return;
	a->pumping = 1;
	while (a->in_flight < mxs_dnswin_size(&a->win)) {
		struct aq *q = pop(&a->retry);
		if (q)
			a->retries++;
		else if (!(q = pop(&a->fresh)))
			break;
		int level = q->tries < a->nchan ? q->tries : a->nchan - 1;
		struct chan *c = &a->chan[level];
		q->tries++;
		q->sent_ms = mxs_mono_ms();
		a->in_flight++;
		a->sent++;
		/* may call on_answer at once; pumping keeps it from recursing */
		ares_send(c->ch, q->q, q->qlen, on_answer, q);
		arm_timer(c);
	}
	a->pumping = 0;
}

int mxs_ares_server_csv(const char *spec, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN + 2];
	unsigned char tmp[16];
	const char *port = NULL;
	size_t hlen;

	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		if (!close)
			return -1;
		hlen = (size_t)(close - spec - 1);
		if (hlen >= sizeof(host))
			return -1;
		memcpy(host, spec + 1, hlen);
		host[hlen] = '\0';
		if (close[1] == ':')
			port = close + 2;
		else if (close[1])
			return -1;
		if (inet_pton(AF_INET6, host, tmp) != 1)
			return -1;
	} else if (inet_pton(AF_INET6, spec, tmp) == 1) {
		snprintf(host, sizeof(host), "%s", spec);
	} else {
		const char *colon = strchr(spec, ':');
		hlen = colon ? (size_t)(colon - spec) : strlen(spec);
		if (hlen >= sizeof(host))
			return -1;
		memcpy(host, spec, hlen);
		host[hlen] = '\0';
		if (colon)
			port = colon + 1;
		if (inet_pton(AF_INET, host, tmp) != 1)
			return -1;
	}
	if (port) {
		char *end;
		long p = strtol(port, &end, 10);
		if (!*port || *end || p < 1 || p > 65535)
			return -1;
		if (strchr(host, ':'))
			snprintf(out, outlen, "[%s]:%ld", host, p);
		else
			snprintf(out, outlen, "%s:%ld", host, p);
	} else {
		snprintf(out, outlen, "%s", host);
	}
	return 0;
}

/* Set up one channel: one try per server, timeout_ms, the servers given. */
static int chan_init(struct mxs_ares *a, struct chan *c, const struct mxs_ares_opts *o,
		     const char *csv, int timeout_ms, char *err, size_t errlen)
{
	struct ares_options opts;
	int rc;

	c->a = a;
	memset(&opts, 0, sizeof(opts));
	opts.sock_state_cb = on_sock_state;
	opts.sock_state_cb_data = c;
	opts.timeout = timeout_ms;
	opts.tries = 1;
	/*
	 * NOCHECKRESP: hand SERVFAIL/REFUSED answers to us instead of re-sending them
	 * (c-ares would retry the same server 'tries' times at once); a recursive
	 * resolver's SERVFAIL is already the result of its own retries.
	 */
	opts.flags = ARES_FLAG_NOCHECKRESP | ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS;
	rc = ares_init_options(&c->ch, &opts, mask);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares init: %s", ares_strerror(rc));
		c->ch = NULL;
		return -1;
	}
	/* the sockets are ours (batched reads and sends), with their receive buffer */
	ares_set_socket_functions(c->ch, mxs_udpb_funcs(), a->udp);
	if (csv && (rc = ares_set_servers_ports_csv(c->ch, csv)) != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares servers: %s", ares_strerror(rc));
		return -1;
	}
	if (!(c->timer = evtimer_new(a->base, on_timer, c))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->base_timeout.tv_sec = timeout_ms / 1000;
	c->base_timeout.tv_usec = (timeout_ms % 1000) * 1000;
	return 0;
}

struct mxs_ares *mxs_ares_new(struct event_base *base, const struct mxs_ares_opts *o,
			      char *err, size_t errlen)
{
	struct mxs_ares *a = calloc(1, sizeof(*a));
	char *csv = NULL;

	if (!a) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->base = base;
	a->tries = o->tries < 1 ? 1 : o->tries;
	/* thousands of answers can arrive between two loop iterations */
	if (!(a->udp = mxs_udpb_new(base, 4 << 20, on_udp_error, a))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (o->nservers) {
		size_t cap = o->nservers * 64 + 1, len = 0;
		if (!(csv = calloc(1, cap))) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		for (size_t i = 0; i < o->nservers; i++) {
			char one[64];
			if (mxs_ares_server_csv(o->servers[i], one, sizeof(one)) < 0) {
				snprintf(err, errlen, "bad DNS server '%s' (want ip[:port] or [ip6]:port)",
					 o->servers[i]);
				goto fail;
			}
			len += (size_t)snprintf(csv + len, cap - len, "%s%s", i ? "," : "", one);
		}
	}
	/* one channel per try level, each try waiting twice as long as the one before */
	a->nchan = a->tries < LEVELS ? a->tries : LEVELS;
	for (int i = 0; i < a->nchan; i++) {
		long ms = (long)o->timeout_ms << i;
		if (chan_init(a, &a->chan[i], o, csv, ms > INT32_MAX ? INT32_MAX : (int)ms, err,
			      errlen) < 0)
			goto fail;
	}
	free(csv);
	unsigned max = o->max_window ? o->max_window : 4096;
	mxs_dnswin_init(&a->win, INITIAL_WINDOW, MIN_WINDOW, max, o->timeout_ms, mxs_mono_ms());
	a->logged_window = mxs_dnswin_size(&a->win);
	return a;
fail:
	free(csv);
	mxs_ares_free(a);
	return NULL;
}

void mxs_ares_free(struct mxs_ares *a)
{
	if (!a)
		return;
	a->destroying = 1;
	/* queries never sent: their owners hear of it as of the rest */
	struct aq *q;
	while ((q = pop(&a->retry)) || (q = pop(&a->fresh))) {
		q->cb(q->arg, ARES_EDESTRUCTION, q->tries, NULL, 0);
		free(q);
	}
	/* ares_destroy calls back pending queries and closes its sockets through
	 * on_sock_state, which frees their events. */
	for (int i = 0; i < LEVELS; i++) {
		if (a->chan[i].ch)
			ares_destroy(a->chan[i].ch);
		if (a->chan[i].timer)
			event_free(a->chan[i].timer);
	}
	for (size_t i = 0; i < a->nfds; i++)
		if (a->fds[i].ev)
			event_free(a->fds[i].ev);
	free(a->fds);
	if (a->udp) {
		struct mxs_udpb_stats us;
		mxs_udpb_stats(a->udp, &us);
		mxs_debug("dns", "udp recv_calls=%lu recv_dgrams=%lu send_calls=%lu send_dgrams=%lu "
			  "send_direct=%lu send_kept=%lu", us.recv_calls, us.recv_dgrams, us.send_calls,
			  us.send_dgrams, us.send_direct, us.send_kept);
		mxs_udpb_free(a->udp);
	}
	free(a);
}

void mxs_ares_send(struct mxs_ares *a, const unsigned char *q, int qlen, ares_callback cb,
		   void *arg)
{
	struct aq *n = qlen > 0 ? malloc(sizeof(*n) + (size_t)qlen) : NULL;

	if (!n) {
		cb(arg, ARES_ENOMEM, 0, NULL, 0);
		return;
	}
	memset(n, 0, sizeof(*n));
	n->a = a;
	n->cb = cb;
	n->arg = arg;
	n->qlen = qlen;
	memcpy(n->q, q, (size_t)qlen);
	push(&a->fresh, n);
	pump(a);
}

void mxs_ares_stats(const struct mxs_ares *a, struct mxs_ares_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->window = mxs_dnswin_size(&a->win);
	st->in_flight = a->in_flight;
	st->waiting = a->retry.n + a->fresh.n;
	st->sent = a->sent;
	st->retries = a->retries;
	st->timeouts = a->timeouts;
	st->cuts = a->win.cuts;
}
