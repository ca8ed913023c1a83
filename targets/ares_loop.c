#include "ares_loop.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mxs_ares {
	struct event_base *base;
	ares_channel ch;
	struct event **fdev;  /* one event per c-ares socket, indexed by fd; owned */
	size_t nfdev;
	struct event *timer;
	struct timeval base_timeout;
	unsigned long sent;
};

static void arm_timer(struct mxs_ares *a);

static void on_fd(evutil_socket_t fd, short what, void *arg)
{
	struct mxs_ares *a = arg;

	ares_process_fd(a->ch, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
			(what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	arm_timer(a);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct mxs_ares *a = arg;

	ares_process_fd(a->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	arm_timer(a);
}

/*
 * Re-arm the timer only when it is not pending. ares_timeout walks every query in 1.18,
 * so calling it per answer would cost O(n) each time with thousands in flight. The timer
 * never waits longer than one base timeout: a query sent after arming has a deadline at
 * least one base timeout away, so it is caught by the next firing, which re-reads the
 * exact earliest deadline.
 */
static void arm_timer(struct mxs_ares *a)
{
	struct timeval tv;

	if (evtimer_pending(a->timer, NULL))
		return;
	if (!ares_timeout(a->ch, NULL, &tv))
		return; /* nothing in flight: no idle wake-ups */
	if (evutil_timercmp(&tv, &a->base_timeout, >))
		tv = a->base_timeout;
	evtimer_add(a->timer, &tv);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct mxs_ares *a = data;

	if (fd < 0)
		return;
	if ((size_t)fd >= a->nfdev) {
		size_t n = a->nfdev ? a->nfdev : 64;
		while (n <= (size_t)fd)
			n *= 2;
		struct event **nv = realloc(a->fdev, n * sizeof(*nv));
		if (!nv)
			return; /* c-ares will time the queries on this socket out */
		memset(nv + a->nfdev, 0, (n - a->nfdev) * sizeof(*nv));
		a->fdev = nv;
		a->nfdev = n;
	}
	struct event *ev = a->fdev[fd];
	if (ev) {
		event_free(ev);
		a->fdev[fd] = NULL;
	}
	if (!readable && !writable)
		return;
	short what = EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);
	ev = event_new(a->base, fd, what, on_fd, a);
	if (ev && event_add(ev, NULL) == 0)
		a->fdev[fd] = ev;
	else if (ev)
		event_free(ev);
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

struct mxs_ares *mxs_ares_new(struct event_base *base, const struct mxs_ares_opts *o,
			      char *err, size_t errlen)
{
	struct mxs_ares *a = calloc(1, sizeof(*a));
	struct ares_options opts;
	int rc;

	if (!a) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->base = base;
	memset(&opts, 0, sizeof(opts));
	opts.sock_state_cb = on_sock_state;
	opts.sock_state_cb_data = a;
	opts.timeout = o->timeout_ms;
	opts.tries = o->tries < 1 ? 1 : o->tries;
	/*
	 * NOCHECKRESP: hand SERVFAIL/REFUSED answers to us instead of re-sending them
	 * (c-ares would retry the same server 'tries' times at once); a recursive
	 * resolver's SERVFAIL is already the result of its own retries.
	 */
	opts.flags = ARES_FLAG_NOCHECKRESP | ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	/* thousands of answers can arrive between two loop iterations */
	opts.socket_receive_buffer_size = 4 << 20;
	int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS |
		   ARES_OPT_SOCK_RCVBUF;
	rc = ares_init_options(&a->ch, &opts, mask);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares init: %s", ares_strerror(rc));
		free(a);
		return NULL;
	}
	if (o->nservers) {
		size_t cap = o->nservers * 64 + 1, len = 0;
		char *csv = calloc(1, cap);
		if (!csv) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		for (size_t i = 0; i < o->nservers; i++) {
			char one[64];
			if (mxs_ares_server_csv(o->servers[i], one, sizeof(one)) < 0) {
				snprintf(err, errlen, "bad DNS server '%s' (want ip[:port] or [ip6]:port)",
					 o->servers[i]);
				free(csv);
				goto fail;
			}
			len += (size_t)snprintf(csv + len, cap - len, "%s%s", i ? "," : "", one);
		}
		rc = ares_set_servers_ports_csv(a->ch, csv);
		free(csv);
		if (rc != ARES_SUCCESS) {
			snprintf(err, errlen, "c-ares servers: %s", ares_strerror(rc));
			goto fail;
		}
	}
	a->timer = evtimer_new(base, on_timer, a);
	if (!a->timer) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	a->base_timeout.tv_sec = o->timeout_ms / 1000;
	a->base_timeout.tv_usec = (o->timeout_ms % 1000) * 1000;
	return a;
fail:
	ares_destroy(a->ch);
	free(a->fdev);
	free(a);
	return NULL;
}

void mxs_ares_free(struct mxs_ares *a)
{
	if (!a)
		return;
	/* ares_destroy calls back pending queries and closes its sockets through
	 * on_sock_state, which frees their events. */
	ares_destroy(a->ch);
	for (size_t i = 0; i < a->nfdev; i++)
		if (a->fdev[i])
			event_free(a->fdev[i]);
	free(a->fdev);
	if (a->timer)
		event_free(a->timer);
	free(a);
}

void mxs_ares_send(struct mxs_ares *a, const unsigned char *q, int qlen, ares_callback cb,
		   void *arg)
{
	a->sent++;
	ares_send(a->ch, q, qlen, cb, arg);
	arm_timer(a);
}

unsigned long mxs_ares_sent(const struct mxs_ares *a)
{
	return a->sent;
}
