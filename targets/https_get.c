#include "https_get.h"

#include <errno.h>
#include <stdarg.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_resp.h"

static const char *const status_names[MXS_HTTPS_STATUS_LAST] = {
	[MXS_HTTPS_OK] = "ok",
	[MXS_HTTPS_CONNECT_ERROR] = "connect-error",
	[MXS_HTTPS_TLS_ERROR] = "tls-error",
	[MXS_HTTPS_CERT_ERROR] = "cert-error",
	[MXS_HTTPS_HTTP_ERROR] = "http-error",
	[MXS_HTTPS_TIMEOUT] = "timeout",
	[MXS_HTTPS_LOCAL_ERROR] = "local-error",
};

const char *mxs_https_status_name(enum mxs_https_status s)
{
	return (unsigned)s < MXS_HTTPS_STATUS_LAST ? status_names[s] : "?";
}

struct mxs_https {
	struct bufferevent *tcp;   /* the plain socket until connected; then owned by bev */
	struct bufferevent *bev;   /* the TLS filter: owns the SSL and tcp */
	SSL *ssl;                  /* owned until the filter takes it */
	struct event_base *base;
	struct event *deadline;
	mxs_https_cb cb;
	void *arg;
	size_t body_max;
	int handshake_done;
	int connect_errno;         /* set when connect failed at once; reported from the loop */
	char *request;             /* owned until written */
	char *buf;                 /* response bytes so far, owned */
	size_t len, cap;
};

SSL_CTX *mxs_https_ctx_new(const char *ca_file, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx) {
		snprintf(err, errlen, "SSL_CTX_new failed");
		return NULL;
	}
	/* RFC 8461 3.3 wants a valid certificate; TLS below 1.2 is not worth a policy. */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
			 : SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		snprintf(err, errlen, "cannot load trust store %s", ca_file ? ca_file : "(system)");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static void release(struct mxs_https *h)
{
	if (h->bev)
		bufferevent_free(h->bev);
	else if (h->tcp)
		bufferevent_free(h->tcp);
	SSL_free(h->ssl);
	if (h->deadline)
		event_free(h->deadline);
	free(h->request);
	free(h->buf);
	free(h);
}

/* Deliver the result and free the request: the last thing any event callback does. */
static void finish(struct mxs_https *h, struct mxs_https_result *res)
{
	h->cb(h->arg, res);
	free(res->body);
	release(h);
}

static void finish_error(struct mxs_https *h, enum mxs_https_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void finish_error(struct mxs_https *h, enum mxs_https_status st, const char *fmt, ...)
{
	va_list ap;
	struct mxs_https_result res;

	memset(&res, 0, sizeof(res));
	res.status = st;
	va_start(ap, fmt);
	vsnprintf(res.error, sizeof(res.error), fmt, ap);
	va_end(ap);
	finish(h, &res);
}

/* Try to parse what we have; finishes the request unless more bytes are needed. */
static void try_parse(struct mxs_https *h, int eof)
{
	struct mxs_http_resp r;
	struct mxs_https_result res;

	switch (mxs_http_resp_parse(h->buf ? h->buf : "", h->len, eof, h->body_max, &r)) {
	case MXS_HTTP_NEED_MORE:
		return;
	case MXS_HTTP_ERROR:
		finish_error(h, MXS_HTTPS_HTTP_ERROR, "bad HTTP response: %s",
			     mxs_http_error_name(r.error));
		return;
	case MXS_HTTP_DONE:
		memset(&res, 0, sizeof(res));
		res.status = MXS_HTTPS_OK;
		res.http_status = r.status;
		memcpy(res.content_type, r.content_type, sizeof(res.content_type));
		res.body = r.body;
		res.body_len = r.body_len;
		finish(h, &res);
		return;
	}
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct mxs_https *h = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in);
	size_t limit = h->body_max + MXS_HTTP_HEADERS_MAX + 4096; /* + chunk framing */

	if (h->len + n > limit) {
		finish_error(h, MXS_HTTPS_HTTP_ERROR, "bad HTTP response: %s", "body-too-large");
		return;
	}
	if (h->len + n + 1 > h->cap) {
		size_t cap = h->cap ? h->cap : 4096;
		while (cap < h->len + n + 1)
			cap *= 2;
		char *nb = realloc(h->buf, cap);
		if (!nb) {
			finish_error(h, MXS_HTTPS_LOCAL_ERROR, "%s", "out of memory");
			return;
		}
		h->buf = nb;
		h->cap = cap;
	}
	evbuffer_remove(in, h->buf + h->len, n);
	h->len += n;
	h->buf[h->len] = '\0';
	try_parse(h, 0);
}

static void on_connected(struct mxs_https *h)
{
	SSL *ssl = bufferevent_openssl_get_ssl(h->bev);
	long vr = SSL_get_verify_result(ssl);

	h->handshake_done = 1;
	if (vr != X509_V_OK) {
		finish_error(h, MXS_HTTPS_CERT_ERROR, "certificate does not verify: %s",
			     X509_verify_cert_error_string(vr));
		return;
	}
	if (!SSL_get0_peer_certificate(ssl)) {
		finish_error(h, MXS_HTTPS_CERT_ERROR, "%s", "no server certificate");
		return;
	}
	bufferevent_write(h->bev, h->request, strlen(h->request));
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct mxs_https *h = arg;
	char detail[200];

	if (what & BEV_EVENT_CONNECTED) {
		on_connected(h);
		return;
	}
	if ((what & BEV_EVENT_EOF) && h->handshake_done) {
		try_parse(h, 1);
		return;
	}
	unsigned long e = bufferevent_get_openssl_error(bev);
	if (e) {
		ERR_error_string_n(e, detail, sizeof(detail));
		finish_error(h, MXS_HTTPS_TLS_ERROR, "TLS: %s", detail);
	} else if (!h->handshake_done) {
		/* EOF or reset during the handshake: the server speaks no TLS or hung up */
		finish_error(h, MXS_HTTPS_TLS_ERROR, "connection closed during the TLS handshake");
	} else {
		try_parse(h, 1);
	}
}

/* The TCP connection is up (or failed): start TLS over it as a filter. */
static void on_tcp_event(struct bufferevent *bev, short what, void *arg)
{
	struct mxs_https *h = arg;

	if (!(what & BEV_EVENT_CONNECTED)) {
		int err = EVUTIL_SOCKET_ERROR();
		finish_error(h, MXS_HTTPS_CONNECT_ERROR, "connect: %s",
			     err ? strerror(err) : "connection closed");
		return;
	}
	h->bev = bufferevent_openssl_filter_new(h->base, h->tcp, h->ssl, BUFFEREVENT_SSL_CONNECTING,
						BEV_OPT_CLOSE_ON_FREE);
	if (!h->bev) {
		finish_error(h, MXS_HTTPS_LOCAL_ERROR, "cannot start TLS");
		return;
	}
	h->ssl = NULL; /* the filter owns the SSL and the socket bufferevent now */
	/* Many web servers close without close_notify; the framing tells a complete body. */
	bufferevent_openssl_set_allow_dirty_shutdown(h->bev, 1);
	bufferevent_setcb(h->bev, on_read, NULL, on_event, h);
	bufferevent_enable(h->bev, EV_READ | EV_WRITE);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct mxs_https *h = arg;

	if (h->connect_errno) {
		finish_error(h, MXS_HTTPS_CONNECT_ERROR, "connect: %s", strerror(h->connect_errno));
		return;
	}
	finish_error(h, MXS_HTTPS_TIMEOUT, "no complete response within the timeout");
}

struct mxs_https *mxs_https_get(struct event_base *base, SSL_CTX *ctx, const struct sockaddr *sa,
				socklen_t salen, const char *host, const char *path,
				size_t body_max, int timeout_ms, mxs_https_cb cb, void *arg)
{
	struct mxs_https *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->base = base;
	h->cb = cb;
	h->arg = arg;
	h->body_max = body_max;
	size_t rlen = strlen(host) + strlen(path) + 128;
	h->request = malloc(rlen);
	if (!h->request)
		goto fail;
	snprintf(h->request, rlen,
		 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: mxsurvey/" MXS_VERSION
		 "\r\nAccept: text/plain\r\nConnection: close\r\n\r\n",
		 path, host);
	h->ssl = SSL_new(ctx);
	if (!h->ssl || SSL_set_tlsext_host_name(h->ssl, host) != 1 || SSL_set1_host(h->ssl, host) != 1)
		goto fail;
	/* Exact host only: a wildcard may cover one label (RFC 6125), no partial wildcards. */
	SSL_set_hostflags(h->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	h->tcp = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	h->deadline = evtimer_new(base, on_deadline, h);
	if (!h->tcp || !h->deadline)
		goto fail;
	bufferevent_setcb(h->tcp, NULL, NULL, on_tcp_event, h);
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	evtimer_add(h->deadline, &tv);
	if (bufferevent_socket_connect(h->tcp, sa, (int)salen) < 0) {
		/* an immediate failure (EADDRNOTAVAIL, ENETUNREACH): report it from the loop */
		struct timeval now = { 0, 0 };
		h->connect_errno = errno ? errno : ECONNREFUSED;
		evtimer_add(h->deadline, &now);
	}
	return h;
fail:
	release(h);
	return NULL;
}

void mxs_https_cancel(struct mxs_https *h)
{
	if (h)
		release(h);
}
