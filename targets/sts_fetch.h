/*
 * Fetching an MTA-STS policy (RFC 8461 3.3) on a libevent loop with libevent's own HTTP
 * client (evhttp) over an OpenSSL bufferevent: GET https://mta-sts.<domain>/.well-known/
 * mta-sts.txt at each address given in turn, with SNI and a PKIX-verified certificate
 * for that name (the handshake fails when it does not verify; the reason is recorded),
 * no redirects followed, the body capped, one deadline for the whole fetch.
 *
 * The next address is tried when one cannot be reached (connect), its TLS handshake
 * fails (tls) or it runs out of its share of the deadline (timeout); a server that
 * answered (a certificate that does not verify, any HTTP response, a response too large
 * or malformed) ends the fetch. mxs_sts_judge (sts_policy.h) then classifies the HTTP
 * response.
 */
#ifndef MXS_STS_FETCH_H
#define MXS_STS_FETCH_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "addrset.h"
#include "sts_policy.h"

struct event_base;

#define MXS_STS_FETCH_MAX_ADDRS 16

struct mxs_sts_fetch_result {
	/* MXS_STS_OK: an HTTP response was read, of any status (judge it); otherwise the
	 * failure: connect, tls, certificate, timeout, too-large, http-protocol, local-error */
	enum mxs_sts_status status;
	char error[256];          /* detail ("" for OK); certificate: "<reason>: <OpenSSL's text>" */
	int http_status;          /* OK only */
	char content_type[128];   /* OK only: the header as sent, "" when absent (truncated) */
	char location[256];       /* OK only: the Location header, "" when absent (truncated) */
	const char *body;         /* OK only: NUL-terminated, valid during the callback */
	size_t body_len;
	char address[64];         /* the address that answered, or the last one tried */
	unsigned tried;           /* addresses dialled */
};

/* Called once from the loop (never from mxs_sts_fetch_start); the fetch is gone after. */
typedef void (*mxs_sts_fetch_cb)(void *arg, const struct mxs_sts_fetch_result *res);

struct mxs_sts_fetch;

/*
 * A client context: TLS 1.2 or later, peer verification on (a handshake with a
 * certificate that does not verify fails), trust from ca_file (PEM bundle) or the
 * system store when NULL. NULL and a message in err on failure. Free with SSL_CTX_free.
 */
SSL_CTX *mxs_sts_ctx_new(const char *ca_file, char *err, size_t errlen);

/*
 * Start fetching https://host<path> from addrs[0..naddrs) (at most
 * MXS_STS_FETCH_MAX_ADDRS are used), port port. timeout_ms bounds the whole fetch; each
 * address gets an equal share of what is left when it is dialled. ctx NULL: plain HTTP
 * (the fuzz harness only). Returns the fetch (to cancel) or NULL when it could not
 * start (then cb is not called).
 */
struct mxs_sts_fetch *mxs_sts_fetch_start(struct event_base *base, SSL_CTX *ctx,
					  const struct mxs_addr *addrs, size_t naddrs,
					  unsigned short port, const char *host, const char *path,
					  size_t body_max, int timeout_ms, mxs_sts_fetch_cb cb,
					  void *arg);

/* Abort a fetch in flight; its callback is not called. */
void mxs_sts_fetch_cancel(struct mxs_sts_fetch *f);

#endif
