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
#include <stdint.h>

#include "record.h"
#include "strv.h"

struct mxs_tlsa {
	unsigned char usage, selector, mtype;
	unsigned char *data;
	size_t len;
};

/*
 * One cached PKIX verdict: the chain as sent (SHA-256 of its DER certificates back to
 * back, leaf first) verified against the scan's trust store. It holds while the clock
 * stays strictly between the two validity dates of the chain (sent and built) that
 * surround the moment it was computed, and at most an hour.
 */
struct tls_verdict {
	unsigned char key[32];
	int code;                 /* X509_V_OK or the first error */
	int64_t lo, hi;           /* valid while lo < now < hi (seconds since the epoch) */
	uint64_t tick;            /* last use, for replacement within the set */
	bool used;
};

/* A chain's description (the record's "chain" array), cached by the same key. */
struct tls_desc {
	unsigned char key[32];
	struct mxs_cert_rec *chain;   /* owned; NULL when the slot is free */
	size_t n;
	uint64_t tick;
};

struct tls_client {
	SSL_CTX *ctx;
	X509_STORE *store;        /* trust store for the PKIX verdict (owned by ctx) */
	const char *profile;      /* profile name, static */
	/*
	 * The chain-verdict cache: a bounded set-associative table (TLS_VERDICT_SETS sets of
	 * TLS_VERDICT_WAYS, least recently used replaced). Large providers serve one chain
	 * on thousands of addresses: it is verified once. Per-name checks (X509_check_host,
	 * DANE) are never cached. A handshake with DANE is verified by OpenSSL as before.
	 */
	struct tls_verdict *verdicts;
	uint64_t tick;
	uint64_t verified, cached;  /* chain verdicts computed, and taken from the cache */
	struct tls_desc *descs;   /* TLS_DESC_SETS x TLS_VERDICT_WAYS described chains */
	int ex_chain;             /* SSL ex_data: the chain's DER and key, kept by the verify callback */
	int ex_dane;              /* SSL ex_data: non-NULL when DANE is enabled on the SSL */
	EVP_MD *sha256;           /* fetched once: an implicit fetch per digest takes locks */
};

#define TLS_VERDICT_SETS 2048
#define TLS_VERDICT_WAYS 4
#define TLS_DESC_SETS 256

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

/*
 * The peer's chain as sent, DER certificates back to back (leaf first); NULL when none.
 * The caller owns it (the copy the handshake's verification made is handed over).
 */
unsigned char *tls_client_chain_der(struct tls_client *tc, SSL *ssl, size_t *len);

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
