/*
 * The cipher suites the legacy probes offer, with what each is made of (IANA code, IANA
 * name, key exchange, cipher class). One table: the ClientHello builder takes its lists
 * from here, and the answers are classified by it (support.rc4, support.prefer_*).
 */
#ifndef MXS_TLS_SUITES_H
#define MXS_TLS_SUITES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tls_kx {
	TLS_KX_RSA,      /* RSA key transport (no forward secrecy) */
	TLS_KX_DHE,      /* finite-field ephemeral DH, authenticated */
	TLS_KX_ECDHE,    /* elliptic-curve ephemeral DH, authenticated */
	TLS_KX_DH,       /* static DH or ECDH (certificate key) */
	TLS_KX_ADH,      /* anonymous finite-field DH */
	TLS_KX_AECDH,    /* anonymous elliptic-curve DH */
	TLS_KX_TLS13,    /* TLS 1.3: the suite names no key exchange */
};

/* Suite flags: what the weak-class questions ask about (support.*). */
#define TLS_SF_RC4     0x01u
#define TLS_SF_3DES    0x02u
#define TLS_SF_EXPORT  0x04u
#define TLS_SF_NULL    0x08u   /* no encryption */
#define TLS_SF_ANON    0x10u   /* no authentication */
#define TLS_SF_CBC     0x20u   /* a block cipher in CBC mode */
#define TLS_SF_AEAD    0x40u   /* GCM, CCM, ChaCha20-Poly1305 */
#define TLS_SF_TLS12   0x80u   /* defined for TLS 1.2 only (SHA-2 MAC or AEAD) */
#define TLS_SF_DES     0x100u  /* single DES (56 bits) */

struct tls_suite {
	uint16_t code;
	const char *name;   /* IANA */
	enum tls_kx kx;
	unsigned flags;
};

/* Every suite, in the order a careful client would prefer them (strong first). */
extern const struct tls_suite tls_suites[];
extern const size_t tls_nsuites;

/* The entry of code, or NULL when the table lacks it. */
const struct tls_suite *tls_suite_find(uint16_t code);

/* Codes of the pseudo-suites (signalling values). */
#define TLS_EMPTY_RENEGOTIATION_INFO_SCSV 0x00FFu
#define TLS_FALLBACK_SCSV 0x5600u

/* Named groups (RFC 8422, 7919, 8446) the probes ask about. */
struct tls_group {
	uint16_t code;
	const char *name;   /* IANA */
	bool ffdhe;
};
extern const struct tls_group tls_groups[];
extern const size_t tls_ngroups;
const struct tls_group *tls_group_find(uint16_t code);

#endif
