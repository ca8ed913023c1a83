/*
 * The TLS client side of a probe: one SSL_CTX per scan built from a client-hello
 * profile, one SSL per session created only once STARTTLS was accepted, and the
 * extraction of everything the record keeps from a completed handshake.
 *
 * Verification is recorded, never enforced: the handshake proceeds whatever the
 * certificate, and the PKIX verdict is computed afterwards against the trust store.
 */
#ifndef MXS_TLS_CLIENT_H
#define MXS_TLS_CLIENT_H

#include <openssl/ssl.h>
#include <stdbool.h>

#include "record.h"
#include "strv.h"

struct mxs_tlsa {
	unsigned char usage, selector, mtype;
	unsigned char *data;
	size_t len;
};

struct tls_client {
	SSL_CTX *ctx;
	X509_STORE *store;        /* trust store for the PKIX verdict (owned by ctx) */
	const char *profile;      /* profile name, static */
};

/*
 * Build the client for a profile ("default-v1") and trust store (ca_file, or the system
 * default when NULL). Returns 0, or -1 with a message in err.
 */
int tls_client_init(struct tls_client *tc, const char *profile, const char *ca_file,
		    char *err, size_t errlen);
void tls_client_free(struct tls_client *tc);

/* Names of the available profiles, NULL-terminated. */
extern const char *const tls_client_profiles[];

/*
 * A new SSL for one session: SNI set to sni when non-NULL, DANE enabled with the given
 * TLSA records when ntlsa > 0. Returns NULL on failure.
 */
SSL *tls_client_new_ssl(struct tls_client *tc, const char *sni, const struct mxs_tlsa *tlsa,
			size_t ntlsa);

/*
 * Fill a new tls record from a completed handshake. names lists the MX names to check
 * the leaf against (the first is the primary, may be empty); tlsa_dnssec is copied into
 * the DANE verdict. Returns NULL when out of memory.
 */
struct mxs_tls_rec *tls_client_describe(struct tls_client *tc, SSL *ssl, const char *mx,
					const struct strv *names, size_t ntlsa, bool tlsa_dnssec);

/* The peer's chain as sent, DER certificates back to back (leaf first); NULL when none. */
unsigned char *tls_client_chain_der(SSL *ssl, size_t *len);

/*
 * Judge one MX name on a chain (as tls_client_chain_der gives it): the PKIX verdict and
 * expiry of the chain, the name match (X509_check_host, RFC 6125 wildcards), and when
 * ntlsa > 0 the DANE verdict of the name's own TLSA records (RFC 7672: DANE-EE matches
 * the leaf's key or certificate whatever its names and dates; DANE-TA needs a chain to the
 * trust anchor and the name), by OpenSSL's DANE code run on the stored chain. Fills the
 * certificate fields of v; with no chain they say "no certificate".
 */
void tls_client_judge(struct tls_client *tc, const unsigned char *der, size_t len, const char *name,
		      const struct mxs_tlsa *tlsa, size_t ntlsa, bool tlsa_dnssec,
		      struct mxs_name_verdict *v);

#endif
