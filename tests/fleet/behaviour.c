#include "behaviour.h"

#include <string.h>
#include <strings.h>

#include <openssl/ssl.h>

/* ---- Bytes the servers send. Hex escapes are split from letters that would extend them. */

static const struct fb_bytes greet_normal[] = {
	FB_BYTES("220 " FB_MX_HOST " ESMTP fleet\r\n"),
	{ NULL, 0 },
};

/* Postfix postscreen's pregreet test: a partial greeting, a pause, then the rest. */
static const struct fb_bytes greet_multiline[] = {
	FB_BYTES("220-" FB_MX_HOST " ESMTP fleet\r\n"),
	FB_BYTES("220-early talkers are rejected\r\n"),
	FB_BYTES("220 " FB_MX_HOST " ready\r\n"),
	{ NULL, 0 },
};

static const struct fb_bytes greet_421[] = {
	FB_BYTES("421 4.7.0 Too many connections, try again later\r\n"),
	{ NULL, 0 },
};

static const struct fb_bytes greet_554[] = {
	FB_BYTES("554 5.7.1 No SMTP service here\r\n"),
	{ NULL, 0 },
};

/* NUL, TAB, a backslash, invalid UTF-8: every byte class the escape form must survive. */
static const struct fb_bytes greet_hostile[] = {
	FB_BYTES("220 mx\0nul\ttab \\back \xff\xfe bad-utf8 ESMTP\r\n"),
	{ NULL, 0 },
};

/* Not a reply: binary junk, a terminal escape, then CRLF. */
static const struct fb_bytes greet_garbage[] = {
	FB_BYTES("\x00\x01\x02" "garbage\xfe\xff\x1b" "[2J\x7f\r\n"),
	{ NULL, 0 },
};

static const struct fb_bytes greet_long[] = { FB_BYTES("220 "), { NULL, 0 } };
static const struct fb_bytes greet_endless[] = {
	FB_BYTES("220-endless continuation line\r\n"),
	{ NULL, 0 },
};
static const struct fb_bytes greet_trickle[] = {
	FB_BYTES("220 " FB_MX_HOST " ESMTP trickle"),
	{ NULL, 0 },
};

static const char *const ext_starttls[] = {
	"PIPELINING", "SIZE 10240000", "8BITMIME", "STARTTLS", "ENHANCEDSTATUSCODES", NULL,
};
static const char *const ext_plain[] = {
	"PIPELINING", "SIZE 10240000", "8BITMIME", "ENHANCEDSTATUSCODES", NULL,
};
/* A middlebox (Cisco PIX "fixup smtp") overwrites the keyword with X's. */
static const char *const ext_mangled[] = {
	"PIPELINING", "SIZE 10240000", "8BITMIME", "XXXXXXXA", "ENHANCEDSTATUSCODES", NULL,
};

#define REPLY_READY "220 2.0.0 Ready to start TLS\r\n"

/* ---- The behaviours. Order and names are the contract (behaviour.h). */

const struct fb_behaviour fb_behaviours[FB_LAST] = {
	[FB_STARTTLS_ECDSA] = {
		.name = "starttls-ecdsa",
		.about = "normal STARTTLS, TLS 1.3, ECDSA leaf + CA",
	},
	[FB_STARTTLS_RSA] = {
		.name = "starttls-rsa",
		.about = "normal STARTTLS, TLS 1.2 ECDHE-RSA-AES128-GCM-SHA256, RSA leaf",
		.tls = FB_TLS_12_ECDHE_RSA,
		.leaf = FB_LEAF_RSA,
	},
	[FB_CERT_EXPIRED] = {
		.name = "cert-expired",
		.about = "as starttls-ecdsa, expired leaf",
		.leaf = FB_LEAF_EXPIRED,
	},
	[FB_CERT_SELF_SIGNED] = {
		.name = "cert-self-signed",
		.about = "as starttls-ecdsa, self-signed leaf",
		.leaf = FB_LEAF_SELF_SIGNED,
	},
	[FB_CERT_WRONG_NAME] = {
		.name = "cert-wrong-name",
		.about = "as starttls-ecdsa, leaf for wrong.example.invalid",
		.leaf = FB_LEAF_WRONG_NAME,
	},
	[FB_NO_STARTTLS] = {
		.name = "no-starttls",
		.about = "EHLO without STARTTLS",
		.extensions = ext_plain,
		.outcome = FB_OUT_NO_STARTTLS,
	},
	[FB_STARTTLS_454] = {
		.name = "starttls-454",
		.about = "STARTTLS refused with 454",
		.starttls_reply = FB_BYTES("454 4.7.0 TLS not available due to local problem\r\n"),
		.after_starttls = FB_AFTER_PLAIN,
		.outcome = FB_OUT_STARTTLS_REFUSED,
	},
	[FB_TLS10_ONLY] = {
		.name = "tls10-only",
		.about = "TLS 1.0-1.1 only, security level 0",
		.tls = FB_TLS_10_11,
	},
	[FB_TLS12_ONLY] = {
		.name = "tls12-only",
		.about = "TLS 1.2 only, ECDSA leaf",
		.tls = FB_TLS_12_ECDHE_ECDSA,
	},
	[FB_MULTILINE_GREETING] = {
		.name = "multiline-greeting",
		.about = "220- lines with pauses (--delay-ms in all); early talkers get 520",
		.lines = greet_multiline,
		.pause_lines = 1,
	},
	[FB_SLOW_GREETING] = {
		.name = "slow-greeting",
		.about = "greeting after --delay-ms",
		.delay_greeting = 1,
	},
	[FB_TARPIT] = {
		.name = "tarpit",
		.about = "accepts, never sends a byte",
		.greeting = FB_GREET_SILENT,
		.outcome = FB_OUT_GREETING_TIMEOUT,
		.phase = FB_PHASE_GREETING,
	},
	[FB_RESET_AFTER_EHLO] = {
		.name = "reset-after-ehlo",
		.about = "reads EHLO, then resets the connection (RST)",
		.ehlo = FB_EHLO_RST,
		.outcome = FB_OUT_PEER_CLOSED,
		.phase = FB_PHASE_EHLO,
	},
	[FB_GARBAGE] = {
		.name = "garbage",
		.about = "greeting is binary junk + CRLF",
		.lines = greet_garbage,
		.outcome = FB_OUT_PROTOCOL_ERROR,
		.phase = FB_PHASE_GREETING,
	},
	[FB_LONG_LINE] = {
		.name = "long-line",
		.about = "greeting '220 ' + 1 MiB of 'A' + CRLF",
		.greeting = FB_GREET_LONG_LINE,
		.lines = greet_long,
		.outcome = FB_OUT_PROTOCOL_ERROR,
		.phase = FB_PHASE_GREETING,
	},
	[FB_ENDLESS_MULTILINE] = {
		.name = "endless-multiline",
		.about = "220- continuation lines forever",
		.greeting = FB_GREET_ENDLESS,
		.lines = greet_endless,
		.outcome = FB_OUT_PROTOCOL_ERROR,
		.phase = FB_PHASE_GREETING,
	},
	[FB_GREETING_421] = {
		.name = "greeting-421",
		.about = "421 greeting and close, on every connection",
		.lines = greet_421,
		.close_after_greeting = 1,
		.outcome = FB_OUT_GREETING_REJECTED,
		.phase = FB_PHASE_GREETING,
	},
	[FB_HOSTILE_GREETING] = {
		.name = "hostile-greeting",
		.about = "greeting with NUL, TAB, backslash, invalid UTF-8; then normal",
		.lines = greet_hostile,
	},
	[FB_GREETING_554] = {
		.name = "greeting-554",
		.about = "554 greeting; every command but QUIT gets 503",
		.lines = greet_554,
		.ehlo = FB_EHLO_503_ALL,
		.outcome = FB_OUT_GREETING_REJECTED,
		.phase = FB_PHASE_GREETING,
	},
	[FB_STARTTLS_ECHO] = {
		.name = "starttls-echo",
		.about = "STARTTLS answered with the bare line STARTTLS",
		.starttls_reply = FB_BYTES("STARTTLS\r\n"),
		.after_starttls = FB_AFTER_PLAIN,
		.outcome = FB_OUT_PROTOCOL_ERROR,
		.phase = FB_PHASE_STARTTLS,
	},
	[FB_MANGLED_STARTTLS] = {
		.name = "mangled-starttls",
		.about = "EHLO advertises XXXXXXXA instead of STARTTLS",
		.extensions = ext_mangled,
		.outcome = FB_OUT_NO_STARTTLS,
	},
	[FB_PIPELINED_INJECTION] = {
		.name = "pipelined-injection",
		.about = "220 to STARTTLS followed by '250 injected' in the same write, then TLS",
		.starttls_reply = FB_BYTES(REPLY_READY "250 injected\r\n"),
	},
	[FB_EHLO_REJECT] = {
		.name = "ehlo-reject",
		.about = "EHLO -> 502, HELO -> 250",
		.ehlo = FB_EHLO_502,
		.outcome = FB_OUT_EHLO_REJECTED,
	},
	[FB_TRICKLE] = {
		.name = "trickle",
		.about = "greeting trickles one byte every 500 ms, forever",
		.greeting = FB_GREET_TRICKLE,
		.lines = greet_trickle,
		.outcome = FB_OUT_DEADLINE,
		.phase = FB_PHASE_GREETING,
	},
	[FB_CLOSE_AFTER_GREETING] = {
		.name = "close-after-greeting",
		.about = "normal greeting, then close",
		.close_after_greeting = 1,
		.outcome = FB_OUT_PEER_CLOSED,
		.phase = FB_PHASE_EHLO,
	},
	[FB_421_THEN_OK] = {
		.name = "421-then-ok",
		.about = "first connection per address gets 421 and close, later ones are normal",
		.first_421 = 1,
	},
	[FB_HANDSHAKE_GARBAGE] = {
		.name = "handshake-garbage",
		.about = "220 to STARTTLS, then the ClientHello is answered with plaintext",
		.after_starttls = FB_AFTER_NOT_TLS,
		.outcome = FB_OUT_HANDSHAKE_ERROR,
		.phase = FB_PHASE_HANDSHAKE,
	},
	[FB_UNSOLICITED_DATA] = {
		.name = "unsolicited-data",
		.about = "'250 unsolicited' right after the greeting, before the client speaks",
		.unsolicited = FB_BYTES("250 unsolicited\r\n"),
		.outcome = FB_OUT_PROTOCOL_ERROR,
		.phase = FB_PHASE_GREETING,
	},
	[FB_DHE_1024] = {
		.name = "dhe-1024",
		.about = "TLS 1.2, DHE-RSA-AES128-GCM-SHA256 with a 1024-bit group",
		.tls = FB_TLS_12_DHE_1024,
		.leaf = FB_LEAF_RSA,
	},
	[FB_STATIC_RSA] = {
		.name = "static-rsa",
		.about = "TLS 1.2, AES128-GCM-SHA256 (RSA key exchange, no forward secrecy)",
		.tls = FB_TLS_12_STATIC_RSA,
		.leaf = FB_LEAF_RSA,
	},
	[FB_CAPA_FLOOD] = {
		.name = "capability-flood",
		.about = "IMAP/POP3: the capability answer never ends (untagged lines; CAPA without '.')",
		.ehlo = FB_EHLO_FLOOD,
		.outcome = FB_OUT_PROTOCOL_ERROR,
		.phase = FB_PHASE_EHLO,
	},
	[FB_HUGE_LINE] = {
		.name = "huge-line",
		.about = "IMAP/POP3: a 10 MiB line in the capability answer",
		.ehlo = FB_EHLO_HUGE,
		.outcome = FB_OUT_PROTOCOL_ERROR,
		.phase = FB_PHASE_EHLO,
	},
	[FB_STARTTLS_STALL] = {
		.name = "starttls-stall",
		.about = "IMAP/POP3: STARTTLS/STLS is read and never answered",
		.starttls_stall = 1,
		.outcome = FB_OUT_STARTTLS_TIMEOUT,
		.phase = FB_PHASE_STARTTLS,
	},
	/* Canned TLS servers for the legacy probes: OpenSSL's own handshake fails on them. */
	[FB_LEGACY_RC4_TLS10] = {
		.name = "legacy-rc4-tls10",
		.about = "canned: SSLv3 and TLS 1.0 only, RC4-SHA first, then 3DES, AES128-SHA",
		.after_starttls = FB_AFTER_CANNED,
		.canned = &tm_rc4_tls10,
		.outcome = FB_OUT_HANDSHAKE_ERROR,
		.phase = FB_PHASE_HANDSHAKE,
	},
	[FB_LEGACY_SSL3_EXPORT] = {
		.name = "legacy-ssl3-export",
		.about = "canned: SSLv3 only, EXP-RC4-MD5 and RC4-MD5, the client's order",
		.after_starttls = FB_AFTER_CANNED,
		.canned = &tm_ssl3_export,
		.outcome = FB_OUT_HANDSHAKE_ERROR,
		.phase = FB_PHASE_HANDSHAKE,
	},
	[FB_LEGACY_MODERN] = {
		.name = "legacy-modern",
		.about = "canned: TLS 1.2-1.3, ECDHE AEAD, alerts for what it refuses, SCSV honoured",
		.after_starttls = FB_AFTER_CANNED,
		.canned = &tm_modern,
		.outcome = FB_OUT_HANDSHAKE_ERROR,
		.phase = FB_PHASE_HANDSHAKE,
	},
	[FB_LEGACY_INTOLERANT] = {
		.name = "legacy-intolerant",
		.about = "canned: TLS 1.0 only, closes on a ClientHello asking for a higher version",
		.after_starttls = FB_AFTER_CANNED,
		.canned = &tm_intolerant,
		.outcome = FB_OUT_HANDSHAKE_ERROR,
		.phase = FB_PHASE_HANDSHAKE,
	},
	[FB_LEGACY_CLOSE_UNKNOWN] = {
		.name = "legacy-close-unknown",
		.about = "canned: TLS 1.0 and 1.2, closes on any ClientHello offering a suite it does not know",
		.after_starttls = FB_AFTER_CANNED,
		.canned = &tm_close_unknown,
		.outcome = FB_OUT_HANDSHAKE_ERROR,
		.phase = FB_PHASE_HANDSHAKE,
	},
	[FB_LEGACY_DHE_ODD] = {
		.name = "legacy-dhe-odd",
		.about = "canned: TLS 1.0-1.2, DHE with a 1024-bit prime first, odd ServerHello extensions",
		.after_starttls = FB_AFTER_CANNED,
		.canned = &tm_dhe_odd,
		.outcome = FB_OUT_HANDSHAKE_ERROR,
		.phase = FB_PHASE_HANDSHAKE,
	},
	[FB_STARTTLS_INJECTION] = {
		.name = "starttls-injection",
		.about = "as 0, but commands pipelined behind STARTTLS are answered inside TLS",
		.keeps_pipelined = 1,
	},
};

/*
 * TLS profiles. Every server prefers its own cipher order, so what a client offering
 * everything negotiates is fixed and can be printed as truth.
 */
const struct fb_tls_profile fb_tls_profiles[FB_TLS_LAST] = {
	[FB_TLS_13] = {
		.name = "tls13",
		.min_version = TLS1_2_VERSION, .max_version = TLS1_3_VERSION,
		.cipher_list = "ECDHE+AESGCM", .seclevel = -1,
		.version = "TLSv1.3",
		.cipher = "TLS_AES_256_GCM_SHA384", .cipher_openssl = "TLS_AES_256_GCM_SHA384",
		.forward_secrecy = 1, .sig = FB_SIG_SCHEME,
	},
	[FB_TLS_12_ECDHE_RSA] = {
		.name = "tls12-ecdhe-rsa",
		.min_version = TLS1_2_VERSION, .max_version = TLS1_2_VERSION,
		.cipher_list = "ECDHE-RSA-AES128-GCM-SHA256", .seclevel = -1,
		.version = "TLSv1.2",
		.cipher = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
		.cipher_openssl = "ECDHE-RSA-AES128-GCM-SHA256",
		.kex = "ECDHE", .forward_secrecy = 1, .sig = FB_SIG_SCHEME,
	},
	[FB_TLS_12_ECDHE_ECDSA] = {
		.name = "tls12-ecdhe-ecdsa",
		.min_version = TLS1_2_VERSION, .max_version = TLS1_2_VERSION,
		.cipher_list = "ECDHE-ECDSA-AES128-GCM-SHA256", .seclevel = -1,
		.version = "TLSv1.2",
		.cipher = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
		.cipher_openssl = "ECDHE-ECDSA-AES128-GCM-SHA256",
		.kex = "ECDHE", .forward_secrecy = 1, .sig = FB_SIG_SCHEME,
	},
	/* OpenSSL 3 refuses TLS < 1.2 above security level 0 (SHA-1 signatures). */
	[FB_TLS_10_11] = {
		.name = "tls10-11",
		.min_version = TLS1_VERSION, .max_version = TLS1_1_VERSION,
		.cipher_list = "ECDHE-ECDSA-AES128-SHA", .seclevel = 0,
		.version = "TLSv1.1",
		.cipher = "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
		.cipher_openssl = "ECDHE-ECDSA-AES128-SHA",
		.kex = "ECDHE", .forward_secrecy = 1, .sig = FB_SIG_UNASSERTED,
	},
	[FB_TLS_12_DHE_1024] = {
		.name = "tls12-dhe-1024",
		.min_version = TLS1_2_VERSION, .max_version = TLS1_2_VERSION,
		.cipher_list = "DHE-RSA-AES128-GCM-SHA256", .seclevel = 0, .dh_1024 = 1,
		.version = "TLSv1.2",
		.cipher = "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
		.cipher_openssl = "DHE-RSA-AES128-GCM-SHA256",
		.kex = "DHE", .forward_secrecy = 1, .kex_bits = 1024, .sig = FB_SIG_SCHEME,
	},
	[FB_TLS_12_STATIC_RSA] = {
		.name = "tls12-static-rsa",
		.min_version = TLS1_2_VERSION, .max_version = TLS1_2_VERSION,
		.cipher_list = "AES128-GCM-SHA256", .seclevel = -1,
		.version = "TLSv1.2",
		.cipher = "TLS_RSA_WITH_AES_128_GCM_SHA256",
		.cipher_openssl = "AES128-GCM-SHA256",
		.kex = "RSA", .forward_secrecy = 0, .sig = FB_SIG_NONE,
	},
};

const struct fb_leaf fb_leaves[FB_LEAF_LAST] = {
	[FB_LEAF_ECDSA] = { .file = "ecdsa", .san = FB_WILDCARD },
	[FB_LEAF_RSA] = { .file = "rsa", .rsa = 1, .san = FB_WILDCARD },
	[FB_LEAF_EXPIRED] = { .file = "expired", .expired = 1, .san = FB_WILDCARD },
	[FB_LEAF_SELF_SIGNED] = { .file = "self-signed", .self_signed = 1, .san = FB_WILDCARD },
	[FB_LEAF_WRONG_NAME] = { .file = "wrong-name", .san = "wrong.example.invalid" },
};

const char *const fb_outcome_names[FB_OUT_LAST] = {
	[FB_OUT_SUCCESS] = "success",
	[FB_OUT_NO_STARTTLS] = "no-starttls",
	[FB_OUT_STARTTLS_REFUSED] = "starttls-refused",
	[FB_OUT_HANDSHAKE_ERROR] = "handshake-error",
	[FB_OUT_GREETING_TIMEOUT] = "greeting-timeout",
	[FB_OUT_GREETING_REJECTED] = "greeting-rejected",
	[FB_OUT_EHLO_REJECTED] = "ehlo-rejected",
	[FB_OUT_PEER_CLOSED] = "peer-closed",
	[FB_OUT_PROTOCOL_ERROR] = "protocol-error",
	[FB_OUT_DEADLINE] = "deadline",
	[FB_OUT_EHLO_TIMEOUT] = "ehlo-timeout",
	[FB_OUT_STARTTLS_TIMEOUT] = "starttls-timeout",
	[FB_OUT_HANDSHAKE_TIMEOUT] = "handshake-timeout",
};

const char *const fb_phase_names[FB_PHASE_LAST] = {
	[FB_PHASE_NONE] = "none",
	[FB_PHASE_GREETING] = "greeting",
	[FB_PHASE_EHLO] = "ehlo",
	[FB_PHASE_STARTTLS] = "starttls",
	[FB_PHASE_HANDSHAKE] = "handshake",
};

/*
 * The realistic mix used with a non-zero seed, in parts per thousand: mostly working
 * STARTTLS, a tail of misconfiguration and a few broken servers. Tune it here only.
 */
static const struct {
	enum fb_id id;
	unsigned weight;
} fb_mix[] = {
	{ FB_STARTTLS_ECDSA, 330 },
	{ FB_STARTTLS_RSA, 250 },
	{ FB_NO_STARTTLS, 120 },
	{ FB_CERT_SELF_SIGNED, 70 },
	{ FB_CERT_WRONG_NAME, 50 },
	{ FB_CERT_EXPIRED, 40 },
	{ FB_TLS12_ONLY, 40 },
	{ FB_TLS10_ONLY, 15 },
	{ FB_MULTILINE_GREETING, 10 },
	{ FB_SLOW_GREETING, 10 },
	{ FB_DHE_1024, 8 },
	{ FB_STARTTLS_454, 5 },
	{ FB_STATIC_RSA, 5 },
	{ FB_GREETING_421, 5 },
	{ FB_GREETING_554, 5 },
	{ FB_421_THEN_OK, 5 },
	{ FB_EHLO_REJECT, 3 },
	{ FB_TARPIT, 2 },
	{ FB_RESET_AFTER_EHLO, 2 },
	{ FB_CLOSE_AFTER_GREETING, 2 },
	{ FB_MANGLED_STARTTLS, 2 },
	{ FB_HOSTILE_GREETING, 1 },
	{ FB_GARBAGE, 1 },
	{ FB_UNSOLICITED_DATA, 1 },
	{ FB_STARTTLS_ECHO, 1 },
	{ FB_HANDSHAKE_GARBAGE, 1 },
};

const struct fb_bytes *fb_greeting_lines(const struct fb_behaviour *b)
{
	return b->lines != NULL ? b->lines : greet_normal;
}

const char *const *fb_extensions(const struct fb_behaviour *b)
{
	return b->extensions != NULL ? b->extensions : ext_starttls;
}

int fb_advertises_starttls(const struct fb_behaviour *b)
{
	for (const char *const *e = fb_extensions(b); *e != NULL; e++)
		if (strcasecmp(*e, "STARTTLS") == 0)
			return 1;
	return 0;
}

struct fb_bytes fb_starttls_reply(const struct fb_behaviour *b)
{
	static const struct fb_bytes ready = FB_BYTES(REPLY_READY);
	static const struct fb_bytes none = { NULL, 0 };

	if (b->starttls_reply.p != NULL)
		return b->starttls_reply;
	return fb_advertises_starttls(b) ? ready : none;
}

int fb_speaks_tls(const struct fb_behaviour *b)
{
	struct fb_bytes r = fb_starttls_reply(b);

	return r.p != NULL && b->after_starttls == FB_AFTER_TLS;
}

int fb_find(const char *name)
{
	for (int i = 0; i < FB_LAST; i++)
		if (strcmp(fb_behaviours[i].name, name) == 0)
			return i;
	return -1;
}

/* splitmix64's finaliser: every input bit affects every output bit. */
uint64_t fb_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

enum fb_id fb_pick(uint32_t key, uint64_t seed)
{
	return fb_pick_n(key, seed, FB_SMTP_LAST);
}

enum fb_id fb_pick_n(uint32_t key, uint64_t seed, int n)
{
	uint64_t total = 0, r;

	if (seed == 0)
		return (enum fb_id)((key & 0xff) % (unsigned)n);
	for (size_t i = 0; i < sizeof(fb_mix) / sizeof(fb_mix[0]); i++)
		total += fb_mix[i].weight;
	r = fb_mix64(fb_mix64(seed) ^ key) % total;
	for (size_t i = 0; i < sizeof(fb_mix) / sizeof(fb_mix[0]); i++) {
		if (r < fb_mix[i].weight)
			return fb_mix[i].id;
		r -= fb_mix[i].weight;
	}
	return FB_STARTTLS_ECDSA; /* not reached: r < total */
}
