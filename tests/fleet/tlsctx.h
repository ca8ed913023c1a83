/* Server-side TLS contexts of the fleet, one per (TLS profile, leaf) pair in use. */
#ifndef FLEET_TLSCTX_H
#define FLEET_TLSCTX_H

#include <openssl/ssl.h>

#include "behaviour.h"

/*
 * A server SSL_CTX for profile p presenting leaf l from the PKI in certdir (the CA is
 * sent in the chain for CA-issued leaves). Session resumption is off, so every
 * connection shows the full handshake the truth describes. Returns NULL after logging.
 * The caller frees it with SSL_CTX_free.
 */
SSL_CTX *fleet_tls_ctx_new(const struct fb_tls_profile *p, const struct fb_leaf *l,
			   const char *certdir);

#endif
