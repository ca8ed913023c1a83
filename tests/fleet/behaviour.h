/*
 * The fleet's behaviour table: what a simulated mail server does, as data.
 *
 * One table drives both the server (tests/fleet/conn.c) and the ground truth it prints
 * (tests/fleet/truth.c), so the two cannot drift apart. Behaviour names and their order
 * are a contract with the scanner's tests: never rename or reorder, add new ones before
 * FB_LAST. Each entry lists only what differs from a normal STARTTLS server; a zero field
 * means "as normal" (greeting lines, EHLO list and STARTTLS reply have defaults, see the
 * fb_*() accessors below).
 */
#ifndef FLEET_BEHAVIOUR_H
#define FLEET_BEHAVIOUR_H

#include <stddef.h>
#include <stdint.h>

#include "tlsmodel.h"

/* Bytes with a length, because some greetings carry NUL. */
struct fb_bytes {
	const char *p;
	size_t len;
};
#define FB_BYTES(s) { (s), sizeof(s) - 1 }

enum fb_id {
	FB_STARTTLS_ECDSA,
	FB_STARTTLS_RSA,
	FB_CERT_EXPIRED,
	FB_CERT_SELF_SIGNED,
	FB_CERT_WRONG_NAME,
	FB_NO_STARTTLS,
	FB_STARTTLS_454,
	FB_TLS10_ONLY,
	FB_TLS12_ONLY,
	FB_MULTILINE_GREETING,
	FB_SLOW_GREETING,
	FB_TARPIT,
	FB_RESET_AFTER_EHLO,
	FB_GARBAGE,
	FB_LONG_LINE,
	FB_ENDLESS_MULTILINE,
	FB_GREETING_421,
	FB_HOSTILE_GREETING,
	FB_GREETING_554,
	FB_STARTTLS_ECHO,
	FB_MANGLED_STARTTLS,
	FB_PIPELINED_INJECTION,
	FB_EHLO_REJECT,
	FB_TRICKLE,
	FB_CLOSE_AFTER_GREETING,
	FB_421_THEN_OK,
	FB_HANDSHAKE_GARBAGE,
	FB_UNSOLICITED_DATA,
	FB_DHE_1024,
	FB_STATIC_RSA,
	/* Canned TLS for the legacy probes, and a STARTTLS-injection server (all families). */
	FB_LEGACY_RC4_TLS10,
	FB_LEGACY_SSL3_EXPORT,
	FB_LEGACY_MODERN,
	FB_LEGACY_INTOLERANT,
	FB_LEGACY_CLOSE_UNKNOWN,
	FB_LEGACY_DHE_ODD,
	FB_STARTTLS_INJECTION,
	/* The SMTP family (smtp, submission, submissions) serves the ones above; IMAP and
	 * POP3 (fproto.h) also these, which break their capability and STARTTLS exchanges. */
	FB_CAPA_FLOOD,
	FB_HUGE_LINE,
	FB_STARTTLS_STALL,
	FB_LAST
};

#define FB_SMTP_LAST FB_CAPA_FLOOD   /* behaviours of the SMTP family: 0 .. FB_SMTP_LAST-1 */

/* How the greeting is produced. */
enum fb_greeting {
	FB_GREET_LINES,     /* send the greeting lines (pausing between them if .pause_lines) */
	FB_GREET_SILENT,    /* never send a byte (tarpit) */
	FB_GREET_TRICKLE,   /* the first line's bytes, then '.' forever, one byte per FB_TRICKLE_MS */
	FB_GREET_LONG_LINE, /* the first line, FB_LONG_LINE_BYTES of 'A', CRLF; then normal */
	FB_GREET_ENDLESS,   /* the first line, repeated until the client goes away */
};

/* How EHLO (and the other commands) are answered. */
enum fb_ehlo {
	FB_EHLO_250,        /* 250 with the extension list */
	FB_EHLO_RST,        /* read EHLO, then reset the connection (SO_LINGER 0) */
	FB_EHLO_502,        /* EHLO -> 502, HELO -> 250 (an old or broken server) */
	FB_EHLO_503_ALL,    /* every command but QUIT -> 503 (after a 554 greeting) */
	FB_EHLO_FLOOD,      /* the capability answer never ends (IMAP/POP3: fproto.h) */
	FB_EHLO_HUGE,       /* the capability answer holds a FB_HUGE_LINE_BYTES line */
};

/* What follows a 2xx reply to STARTTLS. */
enum fb_after_starttls {
	FB_AFTER_TLS,       /* TLS handshake as server */
	FB_AFTER_PLAIN,     /* stay in plaintext, keep reading commands */
	FB_AFTER_NOT_TLS,   /* wait for the ClientHello, answer it with FB_NOT_TLS, close */
	FB_AFTER_CANNED,    /* answer the ClientHello as the canned server .canned (tlsmodel.h), close */
};

enum fb_tls_id {
	FB_TLS_13,              /* TLS 1.2-1.3, TLS 1.3 negotiated */
	FB_TLS_12_ECDHE_RSA,    /* TLS 1.2 only, ECDHE-RSA-AES128-GCM-SHA256 */
	FB_TLS_12_ECDHE_ECDSA,  /* TLS 1.2 only, ECDHE-ECDSA-AES128-GCM-SHA256 */
	FB_TLS_10_11,           /* TLS 1.0-1.1 only, security level 0 */
	FB_TLS_12_DHE_1024,     /* TLS 1.2, DHE with the 1024-bit RFC 2409 group 2 */
	FB_TLS_12_STATIC_RSA,   /* TLS 1.2, RSA key exchange (no forward secrecy) */
	FB_TLS_LAST
};

/* The leaf certificates of the test PKI (tests/fleet/pki.c generates them). */
enum fb_leaf_id {
	FB_LEAF_ECDSA,          /* P-256 leaf for *.fleet.test, signed by the fleet CA */
	FB_LEAF_RSA,            /* RSA-2048 leaf for *.fleet.test, signed by the fleet CA */
	FB_LEAF_EXPIRED,        /* P-256, CA-signed, expired a year ago */
	FB_LEAF_SELF_SIGNED,    /* P-256 for *.fleet.test, issued by itself */
	FB_LEAF_WRONG_NAME,     /* P-256, CA-signed, for wrong.example.invalid */
	FB_LEAF_LAST
};

/* Outcome classes of docs/record.md that the fleet produces. */
enum fb_outcome {
	FB_OUT_SUCCESS,
	FB_OUT_NO_STARTTLS,
	FB_OUT_STARTTLS_REFUSED,
	FB_OUT_HANDSHAKE_ERROR,
	FB_OUT_GREETING_TIMEOUT,
	FB_OUT_GREETING_REJECTED,
	FB_OUT_EHLO_REJECTED,
	FB_OUT_PEER_CLOSED,
	FB_OUT_PROTOCOL_ERROR,
	FB_OUT_DEADLINE,
	/* Only network faults (fault.h) end in these: no behaviour of the table does. */
	FB_OUT_EHLO_TIMEOUT,
	FB_OUT_STARTTLS_TIMEOUT,
	FB_OUT_HANDSHAKE_TIMEOUT,
	FB_OUT_LAST
};

/* Phases of docs/record.md where a session can stop early; NONE: it runs to the end. */
enum fb_phase {
	FB_PHASE_NONE,
	FB_PHASE_GREETING,
	FB_PHASE_EHLO,
	FB_PHASE_STARTTLS,
	FB_PHASE_HANDSHAKE,
	FB_PHASE_LAST
};

/* The server signature the scanner records (tls.sig_alg). */
enum fb_sig {
	FB_SIG_SCHEME,      /* the leaf key's TLS 1.2/1.3 signature scheme (fb_leaf) */
	FB_SIG_NONE,        /* the server signs nothing (RSA key exchange): null */
	FB_SIG_UNASSERTED,  /* legacy TLS (< 1.2) signatures: not part of the truth */
};

struct fb_tls_profile {
	const char *name;
	int min_version, max_version;  /* OpenSSL TLS1_x_VERSION */
	const char *cipher_list;       /* TLS 1.2 and below; TLS 1.3 keeps OpenSSL's suites */
	int seclevel;                  /* OpenSSL security level, -1: library default */
	int dh_1024;                   /* use the fixed 1024-bit DH group */
	/* What a client offering TLS 1.0-1.3 and every cipher negotiates (the server prefers
	 * its own cipher order, so the choice is fixed). */
	const char *version;           /* SSL_get_version() form: "TLSv1.3" */
	const char *cipher;            /* IANA name */
	const char *cipher_openssl;
	const char *kex;               /* "ECDHE", "DHE", "RSA"; NULL: not asserted (TLS 1.3) */
	int forward_secrecy;
	int kex_bits;                  /* ephemeral key bits; 0: not asserted */
	enum fb_sig sig;
};

struct fb_leaf {
	const char *file;              /* <certdir>/<file>.pem (leaf only) and <file>.key */
	int rsa;                       /* RSA-2048 key, else ECDSA P-256 */
	int self_signed;               /* issued by itself, else by the fleet CA */
	int expired;                   /* validity ended a year before generation */
	const char *san;               /* the one DNS subjectAltName, also the CN */
};

struct fb_behaviour {
	const char *name;
	const char *about;                     /* one line for `behaviours` and the docs */

	enum fb_greeting greeting;
	const struct fb_bytes *lines;          /* NULL: the normal one-line 220 greeting */
	int delay_greeting;                    /* wait --delay-ms before the first byte */
	int pause_lines;                       /* pause between lines; early talkers get 520 */
	struct fb_bytes unsolicited;           /* sent in the same write right after the greeting */
	int close_after_greeting;
	int first_421;                         /* first connection per address: 421 and close */

	enum fb_ehlo ehlo;
	const char *const *extensions;         /* NULL: the normal list with STARTTLS */
	struct fb_bytes starttls_reply;        /* NULL: 220 if STARTTLS is advertised, else 502 */
	int starttls_stall;                    /* STARTTLS is read and never answered */
	enum fb_after_starttls after_starttls;
	const struct tm_server *canned;        /* FB_AFTER_CANNED: what it answers */
	int keeps_pipelined;                   /* commands pipelined behind STARTTLS are kept and
					        * answered inside TLS (STARTTLS command injection) */
	enum fb_tls_id tls;
	enum fb_leaf_id leaf;

	/* How a correct scanner classifies the session; the rest of the truth is derived. */
	enum fb_outcome outcome;
	enum fb_phase phase;                   /* where an early-ending outcome stops */
};

#define FB_MX_HOST "mx.fleet.test"          /* the name servers give in greetings and EHLO */
#define FB_WILDCARD "*.fleet.test"          /* SAN of the valid leaves */
#define FB_TRICKLE_MS 500
#define FB_LONG_LINE_BYTES (1024 * 1024)
#define FB_HUGE_LINE_BYTES (10 * 1024 * 1024)
#define FB_NOT_TLS "this is not TLS\r\n"
#define FB_EARLY_TALKER "520 5.5.1 Protocol error: talked too early\r\n"

extern const struct fb_behaviour fb_behaviours[FB_LAST];
extern const struct fb_tls_profile fb_tls_profiles[FB_TLS_LAST];
extern const struct fb_leaf fb_leaves[FB_LEAF_LAST];
extern const char *const fb_outcome_names[FB_OUT_LAST];
extern const char *const fb_phase_names[FB_PHASE_LAST];

/* Greeting lines (CRLF included), ending with {NULL, 0}; defaults applied. */
const struct fb_bytes *fb_greeting_lines(const struct fb_behaviour *b);
/* EHLO extensions before TLS, NULL-terminated; defaults applied. */
const char *const *fb_extensions(const struct fb_behaviour *b);
/* 1 if the pre-TLS EHLO reply advertises STARTTLS (keyword, case-insensitive). */
int fb_advertises_starttls(const struct fb_behaviour *b);
/* The bytes that answer STARTTLS; {NULL, 0} when STARTTLS is not implemented. */
struct fb_bytes fb_starttls_reply(const struct fb_behaviour *b);
/* 1 if the behaviour ever runs a TLS handshake (needs an SSL_CTX). */
int fb_speaks_tls(const struct fb_behaviour *b);

/* Index of the behaviour named name, or -1. */
int fb_find(const char *name);

/*
 * The behaviour of an address among the first n of the table (FB_SMTP_LAST or FB_LAST).
 * Seed 0: the last octet modulo n. Other seeds: the weighted mix (only SMTP behaviours).
 */
enum fb_id fb_pick_n(uint32_t key, uint64_t seed, int n);

/*
 * The behaviour of an address. key is the IPv4 address in host order (for IPv6, its low
 * 32 bits). Seed 0: the last octet modulo FB_SMTP_LAST, so 127.0.0.K serves behaviour K.
 * Other seeds: a hash of (key, seed) draws from the weighted mix in behaviour.c.
 */
enum fb_id fb_pick(uint32_t key, uint64_t seed);

/* A 64-bit mixing function (every input bit affects every output bit), for the
 * deterministic draws of the fleet: behaviours, faults, jitter. */
uint64_t fb_mix64(uint64_t x);

#endif
