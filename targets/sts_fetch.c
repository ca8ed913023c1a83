#include "sts_fetch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define HEADERS_MAX 16384

struct mxs_sts_fetch {
	struct event_base *base;
	SSL_CTX *ctx;                  /* borrowed; NULL: plain HTTP */
	char host[300], path[128];
	struct mxs_addr addrs[MXS_STS_FETCH_MAX_ADDRS];
	size_t naddrs, next;
	unsigned short port;
	size_t body_max;
	long long end_us;              /* the whole fetch's deadline, CLOCK_MONOTONIC */
	mxs_sts_fetch_cb cb;
	void *arg;
	struct event *attempt_timer;   /* this address's share of the deadline */
	struct event *later;           /* runs after evhttp's callback returned: see on_later */
	/* the current attempt */
	struct evhttp_connection *evcon; /* owned; owns bev, which owns the SSL and the socket */
	struct bufferevent *bev;
	int hello_sent;                /* a ClientHello went out on a connected socket */
	int handshake_done;
	int req_err;                   /* enum evhttp_request_error + 1; 0: none reported */
	int errno_seen;
	int finished;                  /* the attempt has its result in res */
	struct mxs_sts_fetch_result res;
	char *body;                    /* owned */
};

SSL_CTX *mxs_sts_ctx_new(const char *ca_file, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx) {
		snprintf(err, errlen, "SSL_CTX_new failed");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* RFC 8461 3.3: a policy from a server without a valid certificate is no policy. The
	 * handshake fails on it; SSL_get_verify_result then says why. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
			 : SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		snprintf(err, errlen, "cannot load trust store %s", ca_file ? ca_file : "(system)");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static void set_error(struct mxs_sts_fetch *f, enum mxs_sts_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_error(struct mxs_sts_fetch *f, enum mxs_sts_status st, const char *fmt, ...)
{
	va_list ap;

	f->res.status = st;
	va_start(ap, fmt);
	vsnprintf(f->res.error, sizeof(f->res.error), fmt, ap);
	va_end(ap);
	f->finished = 1;
}

static void end_attempt(struct mxs_sts_fetch *f)
{
	if (f->evcon)
		evhttp_connection_free(f->evcon); /* frees bev, the SSL and the socket */
	f->evcon = NULL;
	f->bev = NULL;
	evtimer_del(f->attempt_timer);
}

static void fetch_free(struct mxs_sts_fetch *f)
{
	end_attempt(f);
	event_free(f->attempt_timer);
	event_free(f->later);
	free(f->body);
	free(f);
}

/* ---- TLS progress, from OpenSSL's callbacks ---- */

static void on_tls_msg(int write_p, int version, int content_type, const void *buf, size_t len,
		       SSL *ssl, void *arg)
{
	struct mxs_sts_fetch *f = arg;

	(void)version, (void)buf, (void)len;
	/* Our first handshake message is out: the TCP connection is up if the socket has a
	 * peer (a refused connect can still get this far, its write failing later). */
	if (write_p && content_type == SSL3_RT_HANDSHAKE && !f->hello_sent) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = SSL_get_fd(ssl), saved = errno, soerr = 0;
		socklen_t el = sizeof(soerr);
		if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
			f->hello_sent = 1;
		else if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) == 0 && soerr)
			f->errno_seen = soerr; /* why the connect failed */
		errno = saved;
	}
}

static void on_tls_info(const SSL *ssl, int where, int ret)
{
	struct mxs_sts_fetch *f = SSL_get_app_data(ssl);

	(void)ret;
	if (f && (where & SSL_CB_HANDSHAKE_DONE))
		f->handshake_done = 1;
}

/* The reason class of a verification failure. */
static const char *cert_reason(long vr)
{
	switch (vr) {
	case X509_V_ERR_CERT_HAS_EXPIRED: return "expired";
	case X509_V_ERR_CERT_NOT_YET_VALID: return "not-yet-valid";
	case X509_V_ERR_HOSTNAME_MISMATCH: return "name-mismatch";
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_UNTRUSTED:
	case X509_V_ERR_CERT_REJECTED: return "untrusted";
	default: return "invalid";
	}
}

/* ---- the HTTP exchange ---- */

static void copy_header(struct evhttp_request *req, const char *name, char *dst, size_t len)
{
	const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), name);

	snprintf(dst, len, "%s", v ? v : "");
}

/* Why an attempt that produced no response failed: the furthest step it reached. */
static void classify_failure(struct mxs_sts_fetch *f)
{
	SSL *ssl = f->ctx && f->bev ? bufferevent_openssl_get_ssl(f->bev) : NULL;
	long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	enum evhttp_request_error e = (enum evhttp_request_error)(f->req_err - 1);

	if (f->req_err && e == EVREQ_HTTP_DATA_TOO_LONG) {
		set_error(f, MXS_STS_TOO_LARGE, "response over the limit (body %zu bytes, headers %d)",
			  f->body_max, HEADERS_MAX);
	} else if (vr != X509_V_OK) {
		set_error(f, MXS_STS_CERTIFICATE, "%s: %s", cert_reason(vr),
			  X509_verify_cert_error_string(vr));
	} else if (!f->hello_sent) {
		set_error(f, MXS_STS_CONNECT, "connect: %s",
			  f->errno_seen ? strerror(f->errno_seen) : "failed");
	} else if (!f->handshake_done) {
		unsigned long oe = f->bev ? bufferevent_get_openssl_error(f->bev) : 0;
		char detail[200];
		if (oe) {
			ERR_error_string_n(oe, detail, sizeof(detail));
			set_error(f, MXS_STS_TLS, "TLS: %s", detail);
		} else {
			set_error(f, MXS_STS_TLS, "connection closed during the TLS handshake");
		}
	} else if (f->req_err && e == EVREQ_HTTP_TIMEOUT) {
		set_error(f, MXS_STS_TIMEOUT, "no complete response in time");
	} else if (f->req_err && e == EVREQ_HTTP_INVALID_HEADER) {
		set_error(f, MXS_STS_HTTP_PROTOCOL, "malformed HTTP response");
	} else {
		set_error(f, MXS_STS_HTTP_PROTOCOL, "connection closed before a complete response");
	}
}

static void on_req_error(enum evhttp_request_error e, void *arg)
{
	struct mxs_sts_fetch *f = arg;

	f->req_err = (int)e + 1;
	if (!f->errno_seen)
		f->errno_seen = errno;
}

/*
 * evhttp's request callback: a response (req with a status), or a failure (req NULL, or
 * a status of 0 when the connection never came up). evhttp still uses the connection
 * after this returns, so the attempt ends in on_later.
 */
static void on_request(struct evhttp_request *req, void *arg)
{
	struct mxs_sts_fetch *f = arg;
	int code = req ? evhttp_request_get_response_code(req) : 0;

	if (!f->errno_seen && code == 0)
		f->errno_seen = errno;
	if (code > 0) {
		struct evbuffer *in = evhttp_request_get_input_buffer(req);
		size_t n = evbuffer_get_length(in);
		free(f->body);
		f->body = malloc(n + 1);
		if (!f->body) {
			set_error(f, MXS_STS_LOCAL, "out of memory");
		} else {
			evbuffer_remove(in, f->body, n);
			f->body[n] = '\0';
			f->res.status = MXS_STS_OK;
			f->res.error[0] = '\0';
			f->res.http_status = code;
			copy_header(req, "Content-Type", f->res.content_type, sizeof(f->res.content_type));
			copy_header(req, "Location", f->res.location, sizeof(f->res.location));
			f->res.body = f->body;
			f->res.body_len = n;
			f->finished = 1;
		}
	} else {
		classify_failure(f);
	}
	evtimer_del(f->attempt_timer);
	event_active(f->later, EV_TIMEOUT, 0);
}

static int start_attempt(struct mxs_sts_fetch *f);

static int retryable(enum mxs_sts_status st)
{
	return st == MXS_STS_CONNECT || st == MXS_STS_TLS || st == MXS_STS_TIMEOUT;
}

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Microseconds left of the whole fetch (0: none). */
static long long time_left(const struct mxs_sts_fetch *f)
{
	long long left = f->end_us - now_us();

	return left > 0 ? left : 0;
}

/* The attempt is over (result in f->res): next address, or deliver and free. */
static void on_later(evutil_socket_t fd, short what, void *arg)
{
	struct mxs_sts_fetch *f = arg;

	(void)fd, (void)what;
	end_attempt(f);
	while (retryable(f->res.status) && f->next < f->naddrs && time_left(f) > 0) {
		if (start_attempt(f) == 0)
			return;
	}
	f->cb(f->arg, &f->res);
	fetch_free(f);
}

/* This address's share of the deadline ran out. */
static void on_attempt_timer(evutil_socket_t fd, short what, void *arg)
{
	struct mxs_sts_fetch *f = arg;

	(void)fd, (void)what;
	if (!f->hello_sent)
		set_error(f, MXS_STS_CONNECT, "connect: timed out");
	else if (!f->handshake_done)
		set_error(f, MXS_STS_TIMEOUT, "TLS handshake not done in time");
	else
		set_error(f, MXS_STS_TIMEOUT, "no complete response in time");
	event_active(f->later, EV_TIMEOUT, 0);
}

/* Dial the next address. 0: under way; -1: could not start (f->res says why). */
static int start_attempt(struct mxs_sts_fetch *f)
{
	const struct mxs_addr *a = &f->addrs[f->next++];
	struct timeval share;
	SSL *ssl = NULL;

	f->hello_sent = f->handshake_done = f->req_err = f->errno_seen = f->finished = 0;
	f->res.tried++;
	mxs_addr_format(a, f->res.address, sizeof(f->res.address));
	/* an equal share of what is left for each address still to try */
	long long us = time_left(f) / (long long)(f->naddrs - f->next + 1);
	share.tv_sec = (time_t)(us / 1000000);
	share.tv_usec = (suseconds_t)(us % 1000000);

	int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
	if (f->ctx) {
		ssl = SSL_new(f->ctx);
		if (!ssl || SSL_set_tlsext_host_name(ssl, f->host) != 1 ||
		    SSL_set1_host(ssl, f->host) != 1)
			goto fail;
		/* a wildcard covers one whole label (RFC 6125 6.4.3), nothing partial */
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		SSL_set_app_data(ssl, f);
		SSL_set_msg_callback(ssl, on_tls_msg);
		SSL_set_msg_callback_arg(ssl, f);
		SSL_set_info_callback(ssl, on_tls_info);
		/*
		 * Deferred callbacks: evhttp's callbacks run from the loop, never from inside
		 * OpenSSL's read path, and a read reported together with a close reaches
		 * evhttp before the close does (the test with nginx passes either way).
		 */
		f->bev = bufferevent_openssl_socket_new(f->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
							opts);
		if (!f->bev)
			goto fail;
		ssl = NULL; /* the bufferevent owns it now */
		/* most web servers close without close_notify; HTTP framing says when a body
		 * is complete, so a TCP close is an ordinary end of stream */
		bufferevent_openssl_set_allow_dirty_shutdown(f->bev, 1);
	} else {
		f->hello_sent = f->handshake_done = 1;
		f->bev = bufferevent_socket_new(f->base, -1, opts);
		if (!f->bev)
			goto fail;
	}
	f->evcon = evhttp_connection_base_bufferevent_new(f->base, NULL, f->bev, f->res.address,
							  f->port);
	if (!f->evcon) {
		bufferevent_free(f->bev);
		f->bev = NULL;
		goto fail;
	}
	evhttp_connection_set_family(f->evcon, a->family);
	evhttp_connection_set_retries(f->evcon, 0);
	evhttp_connection_set_max_body_size(f->evcon, (ev_ssize_t)f->body_max);
	evhttp_connection_set_max_headers_size(f->evcon, HEADERS_MAX);
	/* evhttp's own inactivity timeout stays behind our deadline */
	struct timeval idle = { share.tv_sec + 1, share.tv_usec };
	evhttp_connection_set_timeout_tv(f->evcon, &idle);

	struct evhttp_request *req = evhttp_request_new(on_request, f);
	if (!req)
		goto fail;
	evhttp_request_set_error_cb(req, on_req_error);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", f->host);
	evhttp_add_header(h, "User-Agent", "mxsurvey/" MXS_VERSION);
	evhttp_add_header(h, "Accept", "text/plain");
	evtimer_add(f->attempt_timer, &share);
	if (evhttp_make_request(f->evcon, req, EVHTTP_REQ_GET, f->path) != 0) {
		/* libevent 2.1 leaves the request to us when it cannot even start */
		evhttp_request_free(req);
		goto fail;
	}
	return 0;
fail:
	SSL_free(ssl);
	end_attempt(f);
	set_error(f, MXS_STS_LOCAL, "cannot start the HTTPS request to %s", f->res.address);
	return -1;
}

struct mxs_sts_fetch *mxs_sts_fetch_start(struct event_base *base, SSL_CTX *ctx,
					  const struct mxs_addr *addrs, size_t naddrs,
					  unsigned short port, const char *host, const char *path,
					  size_t body_max, int timeout_ms, mxs_sts_fetch_cb cb,
					  void *arg)
{
	struct mxs_sts_fetch *f;

	if (naddrs == 0 || strlen(host) >= sizeof(f->host) || strlen(path) >= sizeof(f->path))
		return NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->base = base;
	f->ctx = ctx;
	snprintf(f->host, sizeof(f->host), "%s", host);
	snprintf(f->path, sizeof(f->path), "%s", path);
	f->naddrs = naddrs < MXS_STS_FETCH_MAX_ADDRS ? naddrs : MXS_STS_FETCH_MAX_ADDRS;
	memcpy(f->addrs, addrs, f->naddrs * sizeof(*addrs));
	f->port = port;
	f->body_max = body_max;
	f->cb = cb;
	f->arg = arg;
	f->attempt_timer = evtimer_new(base, on_attempt_timer, f);
	f->later = event_new(base, -1, 0, on_later, f);
	if (!f->attempt_timer || !f->later) {
		if (f->attempt_timer)
			event_free(f->attempt_timer);
		if (f->later)
			event_free(f->later);
		free(f);
		return NULL;
	}
	f->end_us = now_us() + (long long)timeout_ms * 1000;
	/* a failure to start is delivered from the loop: the callback never runs in here */
	if (start_attempt(f) < 0)
		event_active(f->later, EV_TIMEOUT, 0);
	return f;
}

void mxs_sts_fetch_cancel(struct mxs_sts_fetch *f)
{
	if (f)
		fetch_free(f);
}
