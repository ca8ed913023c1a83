/*
 * libFuzzer target: a policy server's response, end to end through the policy fetch path.
 * The input is the raw bytes a server sends back; a listener on 127.0.0.1 sends them to
 * the request of mxs_sts_fetch_start (plain HTTP: TLS is OpenSSL's business, the bytes
 * after it are evhttp's), then closes, and whatever the fetch returns goes through
 * mxs_sts_judge and the policy parser, as policy.c does with it.
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sts_fetch.h"
#include "sts_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct harness {
	const uint8_t *data;
	size_t size;
	struct bufferevent *server; /* the accepted connection */
	int done;
};

static void server_event(struct bufferevent *bev, short what, void *arg)
{
	struct harness *h = arg;

	(void)what;
	bufferevent_free(bev); /* the client closed (or failed): so do we */
	h->server = NULL;
}

static void server_written(struct bufferevent *bev, void *arg)
{
	(void)arg;
	/* all sent: half-close, so a close-delimited body ends; wait for the client's close */
	shutdown(bufferevent_getfd(bev), SHUT_WR);
}

static void server_read(struct bufferevent *bev, void *arg)
{
	struct harness *h = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	/* the request's end: answer once, whatever it was */
	if (evbuffer_search(in, "\r\n\r\n", 4, NULL).pos < 0)
		return;
	evbuffer_drain(in, evbuffer_get_length(in));
	if (h->data) {
		bufferevent_setcb(bev, server_read, server_written, server_event, h);
		bufferevent_write(bev, h->data, h->size);
		if (h->size == 0)
			server_written(bev, h);
		h->data = NULL;
	}
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
		      void *arg)
{
	struct harness *h = arg;

	(void)l, (void)sa, (void)len;
	if (h->server) {
		evutil_closesocket(fd);
		return;
	}
	h->server = bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(h->server, server_read, NULL, server_event, h);
	bufferevent_enable(h->server, EV_READ | EV_WRITE);
}

static void on_fetched(void *arg, const struct mxs_sts_fetch_result *res)
{
	struct harness *h = arg;
	static struct mxs_sts_policy p; /* 8 KiB: not on the fuzzer's stack */
	char err[300];

	h->done = 1;
	if (res->status != MXS_STS_OK) {
		if (res->status == MXS_STS_LAST || !res->error[0])
			__builtin_trap();
		return;
	}
	if (res->body_len > MXS_STS_BODY_MAX || res->body[res->body_len] != '\0')
		__builtin_trap();
	enum mxs_sts_status st = mxs_sts_judge(res->http_status, res->content_type[0] ? res->content_type : NULL,
					       res->location[0] ? res->location : NULL, res->body,
					       res->body_len, &p, err, sizeof(err));
	if (st == MXS_STS_OK && (p.max_age < 0 || p.max_age > 31557600 || !mxs_sts_mode_name(p.mode)))
		__builtin_trap();
	if (st != MXS_STS_OK && !err[0])
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct harness h = { data, size, NULL, 0 };
	struct event_base *base = event_base_new();
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct evconnlistener *l = evconnlistener_new_bind(base, on_accept, &h,
							   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 8,
							   (struct sockaddr *)&sin, sizeof(sin));
	if (!l)
		abort();
	getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sin, &sl);
	struct mxs_addr a = { .family = AF_INET };
	memcpy(a.b, &sin.sin_addr, 4);
	struct mxs_sts_fetch *f = mxs_sts_fetch_start(base, NULL, &a, 1, ntohs(sin.sin_port),
						      "mta-sts.example.test", "/.well-known/mta-sts.txt",
						      MXS_STS_BODY_MAX, 5000, on_fetched, &h);
	if (!f)
		abort();
	while (!h.done)
		event_base_loop(base, EVLOOP_ONCE);
	if (h.server)
		bufferevent_free(h.server);
	evconnlistener_free(l);
	event_base_free(base);
	return 0;
}
