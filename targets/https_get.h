/*
 * One HTTPS GET on a libevent loop with OpenSSL, for MTA-STS policies: connect to a given
 * address (already resolved and checked against the blocklist by the caller), TLS with SNI,
 * verify the chain and the host name (RFC 8461 3.3: a policy from an unauthenticated
 * server is no policy), send the request, read one response under a hard deadline.
 */
#ifndef MXS_HTTPS_GET_H
#define MXS_HTTPS_GET_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <sys/socket.h>

struct event_base;

enum mxs_https_status {
	MXS_HTTPS_OK,            /* a complete response was read (any HTTP status) */
	MXS_HTTPS_CONNECT_ERROR, /* TCP connection failed */
	MXS_HTTPS_TLS_ERROR,     /* handshake failed */
	MXS_HTTPS_CERT_ERROR,    /* handshake done, but the chain or the name does not verify */
	MXS_HTTPS_HTTP_ERROR,    /* response unparseable, truncated or too large */
	MXS_HTTPS_TIMEOUT,       /* the deadline passed */
	MXS_HTTPS_LOCAL_ERROR,   /* out of memory, no descriptors */
	MXS_HTTPS_STATUS_LAST
};

/* "ok", "connect-error", "tls-error", "cert-error", "http-error", "timeout", "local-error" */
const char *mxs_https_status_name(enum mxs_https_status s);

struct mxs_https_result {
	enum mxs_https_status status;
	char error[256];        /* detail for anything but OK ("" for OK) */
	int http_status;        /* OK only */
	char content_type[128]; /* OK only: lower case media type */
	char *body;             /* OK only: NUL-terminated; the callback may take it (set NULL) */
	size_t body_len;
};

/*
 * Called once, from the loop, never from inside mxs_https_get. The result is owned by the
 * request and freed (with body, unless taken) after the callback returns; the request is
 * gone by then, so the callback must not cancel it.
 */
typedef void (*mxs_https_cb)(void *arg, struct mxs_https_result *res);

struct mxs_https;

/*
 * A client context: verification is done by hand after the handshake (verify mode none),
 * against ca_file (PEM bundle) or the system trust store when NULL. Returns NULL and a
 * message in err on failure. Free with SSL_CTX_free.
 */
SSL_CTX *mxs_https_ctx_new(const char *ca_file, char *err, size_t errlen);

/*
 * Start GET https://host<path> against sa. body_max caps the body. timeout_ms is the hard
 * deadline for the whole exchange. Returns the request (to cancel), or NULL when it could
 * not even start (then cb is not called).
 */
struct mxs_https *mxs_https_get(struct event_base *base, SSL_CTX *ctx, const struct sockaddr *sa,
				socklen_t salen, const char *host, const char *path,
				size_t body_max, int timeout_ms, mxs_https_cb cb, void *arg);

/* Abort a request in flight; its callback is not called. */
void mxs_https_cancel(struct mxs_https *h);

#endif
