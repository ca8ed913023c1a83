/*
 * The protocols the fleet speaks (serve --proto): smtp (25) and submission (587) with
 * STARTTLS, submissions (465) with implicit TLS, imap (143) and pop3 (110) with
 * STARTTLS/STLS, imaps (993) and pop3s (995) with implicit TLS. One behaviour table
 * (behaviour.h) serves them all; this file gives each behaviour's bytes in the IMAP and
 * POP3 dialects, for the server (conn.c) and the ground truth (truth.c). docs/fleet.md.
 */
#ifndef FLEET_FPROTO_H
#define FLEET_FPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "behaviour.h"

enum fp_dialect { FP_DIALECT_SMTP, FP_DIALECT_IMAP, FP_DIALECT_POP3 };

enum fp_id { FP_SMTP, FP_SUBMISSION, FP_SUBMISSIONS, FP_IMAP, FP_IMAPS, FP_POP3, FP_POP3S, FP_LAST };

struct fp_proto {
	const char *name;          /* as `mxsurvey scan --proto` names it */
	enum fp_dialect dialect;
	int implicit;              /* TLS at once after connect, else after STARTTLS/STLS */
	int nbehaviours;           /* FB_SMTP_LAST or FB_LAST: seed 0 serves octet % this */
};

extern const struct fp_proto fp_protos[FP_LAST];

/* The protocol named name, or NULL. */
const struct fp_proto *fp_find(const char *name);

/* The behaviour of an address (fb_pick_n over the protocol's behaviours). */
enum fb_id fp_pick(const struct fp_proto *p, uint32_t key, uint64_t seed);

/*
 * IMAP and POP3 renditions (d is FP_DIALECT_IMAP or FP_DIALECT_POP3).
 * The greeting: pieces written as they come (a pause between them with .pause_lines),
 * ending with {NULL, 0}; together they are the greeting line(s), CRLF included.
 */
const struct fb_bytes *fp_greeting(const struct fb_behaviour *b, enum fp_dialect d);
/* What follows the greeting in the same write ({NULL, 0}: nothing). */
struct fb_bytes fp_unsolicited(const struct fb_behaviour *b, enum fp_dialect d);
/* Capabilities before TLS (tls 0) or inside it (1), NULL-terminated: IMAP atoms, POP3 CAPA lines. */
const char *const *fp_caps(const struct fb_behaviour *b, enum fp_dialect d, int tls);
/* 1 if the capabilities before TLS offer STARTTLS (IMAP) or STLS (POP3). */
int fp_offers_starttls(const struct fb_behaviour *b, enum fp_dialect d);
/*
 * The answer to STARTTLS/STLS, the IMAP tagged line under tag, into buf (NUL-terminated).
 * Returns its length, 0 if it does not fit. *go_ahead: 1 when the answer is the OK that
 * starts TLS (the bytes after its first line are injected plaintext).
 */
size_t fp_starttls_reply(const struct fb_behaviour *b, enum fp_dialect d, const char *tag,
			 char *buf, size_t size, int *go_ahead);

/* The verb that starts TLS in the dialect: "STARTTLS" or "STLS". */
const char *fp_starttls_verb(enum fp_dialect d);

/* One line of a stream of untagged capability lines (capability-flood). */
struct fb_bytes fp_flood_line(enum fp_dialect d);

#endif
