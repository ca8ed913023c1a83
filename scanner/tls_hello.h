/*
 * The legacy probes' ClientHello, written by mxsurvey rather than OpenSSL: OpenSSL 3
 * cannot offer SSLv3, RC4, export or NULL suites, and the probes must choose exactly
 * which versions, suites and groups a hello offers. One job: bytes on the wire from a
 * description. Nothing here reads a socket.
 */
#ifndef MXS_TLS_HELLO_H
#define MXS_TLS_HELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLS_V_SSL3 0x0300
#define TLS_V_TLS10 0x0301
#define TLS_V_TLS11 0x0302
#define TLS_V_TLS12 0x0303
#define TLS_V_TLS13 0x0304

struct tls_hello {
	/*
	 * The highest version offered. Up to TLS 1.2 it is the hello's client_version (the
	 * server picks it or a lower one); TLS_V_TLS13 offers TLS 1.3 alone, in
	 * supported_versions, with client_version TLS 1.2 (RFC 8446, 4.1.2).
	 */
	uint16_t version;
	const uint16_t *suites;   /* in our order of preference */
	size_t nsuites;
	const uint16_t *groups;   /* supported_groups (and, for TLS 1.3, the key_share offer) */
	size_t ngroups;
	bool fallback_scsv;       /* append TLS_FALLBACK_SCSV (RFC 7507) */
	bool reneg;               /* renegotiation_info (SSLv3: the SCSV, it has no extensions) */
	const char *sni;          /* server_name, or NULL */
	const uint8_t *random;    /* 32 bytes */
	const uint8_t *x25519;    /* TLS 1.3: a 32-byte X25519 key share when x25519 is offered,
	                             else NULL: an empty key_share (the server answers with a
	                             HelloRetryRequest naming the group it wants) */
};

/* Upper bound of a hello's size (one record). */
#define TLS_HELLO_MAX 4096

/*
 * Write the ClientHello as one TLS record into out (cap bytes). Returns its length, or 0
 * when it does not fit (more than 16384 bytes of handshake, or cap too small). A hello
 * whose handshake body would be 256-511 bytes gets a padding extension to 512 (servers
 * behind some load balancers hang on those lengths; RFC 7685).
 */
size_t tls_hello_write(const struct tls_hello *h, uint8_t *out, size_t cap);

#endif
