/*
 * The server's answer to a crafted ClientHello: the record layer reassembled, then the
 * ServerHello (or HelloRetryRequest), the ServerKeyExchange when the chosen suite has one,
 * or an alert. Bytes come in any split; nothing is trusted: every length is checked
 * against what holds it, kept messages are capped, and the whole flight read is capped.
 * Certificates are skipped, never kept. One job: bytes in, one answer out.
 */
#ifndef MXS_TLS_ANSWER_H
#define MXS_TLS_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tls_answer_kind {
	TLS_ANS_NONE,     /* no answer yet: feed more bytes */
	TLS_ANS_HELLO,    /* a ServerHello: version and suite chosen */
	TLS_ANS_HRR,      /* a TLS 1.3 HelloRetryRequest: the version and the group it wants */
	TLS_ANS_ALERT,    /* an alert before any ServerHello */
	TLS_ANS_BAD,      /* bytes that are not a TLS server's answer, or closed without one */
};

struct tls_answer {
	enum tls_answer_kind kind;
	uint16_t version;     /* HELLO, HRR: negotiated (supported_versions when present) */
	uint16_t suite;       /* HELLO, HRR */
	uint16_t group;       /* key-exchange group: TLS 1.3 key_share, HRR, ECDHE ServerKeyExchange; 0 unknown */
	int dh_bits;          /* finite-field DHE prime size from the ServerKeyExchange; 0 unknown */
	bool reneg;           /* renegotiation_info in the ServerHello */
	uint8_t alert_level, alert; /* ALERT */
	const char *why;      /* BAD: what was wrong (static text) */
	bool closed;          /* BAD: the server closed without a word of TLS */
};

/* Caps: a kept handshake message (ServerHello, ServerKeyExchange), and the whole read. */
#define TLS_MSG_KEEP_MAX 8192
#define TLS_FLIGHT_MAX (256 * 1024)

struct tls_reader {
	bool want_kx;             /* read on to the ServerKeyExchange for (EC)DHE suites */
	bool done;
	size_t total;             /* bytes fed */
	/* record layer */
	uint8_t rh[5];
	size_t nrh;
	size_t rec_left;          /* payload bytes of the current record still to come */
	uint8_t rec_type;
	uint8_t al[2];
	size_t nal;
	/* handshake layer (messages may span records) */
	uint8_t hh[4];
	size_t nhh;
	size_t msg_left;
	uint8_t msg_type;
	bool keep;                /* the current message is kept in msg */
	uint8_t msg[TLS_MSG_KEEP_MAX];
	size_t nmsg;
	bool have_hello;
	struct tls_answer ans;
};

void tls_reader_init(struct tls_reader *r, bool want_kx);
/*
 * Feed n bytes. Returns true once the answer is final (r->ans); bytes after that are
 * ignored. A HELLO is final at the ServerHello for TLS 1.3, for suites without a key
 * exchange message, or without want_kx; else at the ServerKeyExchange, the
 * ServerHelloDone, an alert, or the caps.
 */
bool tls_reader_feed(struct tls_reader *r, const uint8_t *p, size_t n);
/* The peer closed: the answer so far becomes final (BAD "closed" when there is none). */
void tls_reader_eof(struct tls_reader *r);

/* Alert descriptions the probes interpret (RFC 8446 6.2, RFC 7507). */
#define TLS_ALERT_HANDSHAKE_FAILURE 40
#define TLS_ALERT_PROTOCOL_VERSION 70
#define TLS_ALERT_INSUFFICIENT_SECURITY 71
#define TLS_ALERT_INAPPROPRIATE_FALLBACK 86

#endif
