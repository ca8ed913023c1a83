/*
 * The legacy probes' questions: which to ask next, the ClientHello that asks it, and
 * what its answer means for the support object (docs/record.md). No sockets: the runner
 * sends the hello and feeds the answer (tls_answer.h) back; tests/unit/test_legacy.c
 * drives it against server models without any.
 *
 * Order (legacy.c, order[]): the most valuable answers first, since the budget
 * (--legacy-budget, default 6 connections) usually ends the list: versions 1.0/1.1 and
 * the preferred suite, the weak classes, SSLv3, (TLS 1.2 and 1.3 when the first probe
 * could not tell), the DHE group size, STARTTLS injection, then the rest. What the first probe negotiated answers some
 * questions for free (OpenSSL offered TLS 1.0-1.3, so its version is the server's
 * highest); one hello often answers several (a hello offering TLS 1.1 at most is
 * answered with 1.1, 1.0 or an alert: two versions in one connection); the weak suite
 * classes are a search over groups of suites (offer every weak class still unknown: an
 * alert answers all of them, a chosen suite answers its own classes, then ask again
 * without them), never one connection per suite.
 */
#ifndef MXS_LEGACY_H
#define MXS_LEGACY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record.h"
#include "tls_answer.h"

enum legacy_q {
	LQ_LOW,       /* TLS 1.1 at most, every suite: versions 1.1 and 1.0, preferred suite, renegotiation, kx */
	LQ_WEAK,      /* only weak suites whose class is unknown (repeated while one is accepted) */
	LQ_SSL3,      /* SSLv3 alone */
	LQ_DHE,       /* only finite-field DHE suites: the group size */
	LQ_INJECT,    /* STARTTLS + NOOP in one segment, then an OpenSSL handshake (the runner) */
	LQ_TLS10,     /* TLS 1.0 at most, when LQ_LOW left it open */
	LQ_SCSV,      /* one below the highest version, with TLS_FALLBACK_SCSV */
	LQ_TLS12,     /* TLS 1.2 at most */
	LQ_TLS13,     /* TLS 1.3 alone */
	LQ_TLS11,     /* TLS 1.1 at most, when LQ_LOW could not tell */
	LQ_ORDER,     /* an answered hello again with our suite order reversed */
	LQ_CBC,       /* TLS 1.2 with AEAD suites only (when nothing else told) */
	LQ_GROUPS,    /* the key-exchange groups not yet seen (repeated while one is accepted) */
	LQ_LAST
};

extern const char *const legacy_q_names[LQ_LAST];

/* The probe of one address: what is known, what was asked. */
struct legacy_run {
	struct mxs_support_rec *u;    /* the answers; u->connections counts the connections */
	int budget;
	bool starttls;                /* the protocol's STARTTLS can carry the injection check (SMTP, IMAP, POP3) */
	bool stopped;                 /* a probe failed before its hello: ask no more */
	bool first_known;             /* the first probe negotiated: its version is the highest */
	bool low_unclear;             /* LQ_LOW got neither a hello nor an alert */
	bool hello_seen;              /* some hello of ours got a ServerHello */
	bool tls_seen;                /* some hello of ours got a ServerHello or an alert */
	int not_tls;                  /* answers that were not TLS at all (bytes, a timeout) */
	unsigned closed_mask;         /* versions whose hello got a close before that */
	int asked[LQ_LAST];           /* times asked */
	uint16_t order_version;       /* a full-list hello that was answered, for LQ_ORDER */
	uint16_t order_suite;
	bool groups_done;             /* the group enumeration met its end */
	bool reneg_seen;              /* a hello answer at or below TLS 1.2 was read */
	/* the last hello's suite and group lists (legacy_hello fills them) */
	uint16_t suites[160];
	size_t nsuites;
	uint16_t groups[16];
	size_t ngroups;
};

/*
 * Start: u is the support object to fill (all unknown), tls what the first probe
 * negotiated (NULL: its handshake failed), budget the connections allowed.
 */
void legacy_start(struct legacy_run *l, struct mxs_support_rec *u, const char *first_version,
		  const char *first_cipher, bool starttls, int budget);
/*
 * The next question, or LQ_LAST when none is left worth asking; then u->exhausted says
 * whether some were left unasked (budget spent, or the server stopped answering).
 */
enum legacy_q legacy_next(struct legacy_run *l);
/*
 * The ClientHello of question q (not LQ_INJECT) into out; *want_kx: read on to the
 * ServerKeyExchange. Returns its length, 0 when it cannot be written.
 */
size_t legacy_hello(struct legacy_run *l, enum legacy_q q, const char *sni, const uint8_t random[32],
		    const uint8_t x25519[32], uint8_t *out, size_t cap, bool *want_kx);
/* The answer to question q's hello (a counts as one connection). */
void legacy_answer(struct legacy_run *l, enum legacy_q q, const struct tls_answer *a);
/* The injection check's verdict: 1 the NOOP was answered inside TLS, 0 not, -1 unknown. */
void legacy_injection(struct legacy_run *l, int verdict);
/* A probe ended before it could ask (refused, timed out, 421): no more questions. */
void legacy_failed(struct legacy_run *l, enum legacy_q q);
/* The run ends now (the scan stops): u->exhausted when questions were left. */
void legacy_finish(struct legacy_run *l);

#endif
