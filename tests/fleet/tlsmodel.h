/*
 * A canned TLS server for the legacy probes' tests: it reads one ClientHello and answers
 * with the flight a server of the described configuration would send (ServerHello,
 * a placeholder Certificate, ServerKeyExchange, ServerHelloDone; for TLS 1.3 the
 * ServerHello or HelloRetryRequest, then a ChangeCipherSpec and an opaque record), or
 * an alert, or nothing (the connection is closed). Nothing is encrypted and no
 * handshake ever completes: enough to answer what a crafted hello asks, and to make an
 * OpenSSL client fail. Used by the fleet (conn.c) and, socket-free, by
 * tests/unit/test_legacy.c; the truth of each configuration is written by hand in
 * that test, never derived from this code.
 */
#ifndef FLEET_TLSMODEL_H
#define FLEET_TLSMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Versions as bits: 1 << (wire - 0x0300): SSLv3 = 1, TLS 1.0 = 2, ... TLS 1.3 = 16. */
#define TM_SSL3 0x01u
#define TM_TLS10 0x02u
#define TM_TLS11 0x04u
#define TM_TLS12 0x08u
#define TM_TLS13 0x10u

enum tm_quirk {
	TM_QUIRK_NONE,
	TM_QUIRK_VERSION_INTOLERANT,  /* closes on a client_version above its highest */
	TM_QUIRK_CLOSE_UNKNOWN_SUITE, /* closes when the hello offers a suite it does not know */
	TM_QUIRK_CLOSE_NO_MATCH,      /* closes, instead of an alert, when nothing matches */
};

struct tm_server {
	unsigned versions;
	const uint16_t *suites;   /* accepted below TLS 1.3, in the server's order */
	size_t nsuites;
	const uint16_t *suites13; /* TLS 1.3 suites accepted */
	size_t nsuites13;
	const uint16_t *groups;   /* groups accepted, in the server's order */
	size_t ngroups;
	bool server_order;        /* choose by its own order, else by the client's */
	int dh_bits;              /* the DHE prime size it sends */
	bool scsv;                /* refuses a downgrade signalled with TLS_FALLBACK_SCSV */
	bool reneg;               /* answers renegotiation_info */
	bool odd_extensions;      /* its ServerHello also carries unknown and empty extensions */
	enum tm_quirk quirk;
};

/* The fleet's canned servers (the legacy-* behaviours of docs/fleet.md). */
extern const struct tm_server tm_rc4_tls10, tm_ssl3_export, tm_modern, tm_intolerant,
	tm_close_unknown, tm_dhe_odd;

/* Bytes of the ClientHello record at p (n bytes so far): its full length once the
 * header is in, 0 before. */
size_t tm_hello_len(const uint8_t *p, size_t n);

/*
 * Answer the ClientHello record at hello. Writes the flight into out (cap bytes) and
 * returns its length; 0 means close without a word. A hello that does not parse gets
 * a decode_error alert.
 */
size_t tm_answer(const struct tm_server *s, const uint8_t *hello, size_t len, uint8_t *out, size_t cap);

#endif
