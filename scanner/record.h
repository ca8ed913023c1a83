/*
 * The result record of one target (docs/record.md is its specification). The session
 * fills it as it goes; record_json.c writes it. Every string in it is owned by the record
 * and freed by mxs_record_free; remote-controlled strings are already in escape form.
 */
#ifndef MXS_RECORD_H
#define MXS_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outcome.h"
#include "strv.h"

struct mxs_reply_rec {
	bool present;
	int code;
	struct strv lines;
};

struct mxs_ehlo_rec {
	struct mxs_reply_rec reply;
	const char *verb;       /* "EHLO" or "HELO", static */
	struct strv extensions;
};

/*
 * Authentication offered by the server (every protocol module fills it once the
 * capabilities before TLS are known): the SASL mechanisms, and the protocol's plain login
 * command (IMAP LOGIN without LOGINDISABLED, POP3 USER), before and inside TLS.
 */
struct mxs_auth_rec {
	bool checked;           /* capabilities were read (before TLS, or inside implicit TLS) */
	struct strv mechs, mechs_tls;   /* upper-cased, escape form */
	bool login, login_tls;
	bool cleartext;         /* PLAIN or LOGIN mechanism, or the login command, before TLS */
};

struct mxs_cert_rec {
	char sha256[65];
	char *subject, *issuer, *serial, *sig_alg;
	struct strv sans;
	char not_before[32], not_after[32];
	const char *key_type;   /* static */
	int key_bits;
};

struct mxs_tls_rec {
	char version[16];
	char *cipher, *cipher_openssl;
	int cipher_bits;
	bool forward_secrecy;
	const char *kex;        /* static */
	char *kex_group;        /* NULL when unknown */
	int kex_bits;           /* 0 when unknown */
	char *sig_alg;          /* NULL when unknown */
	long verify_code;
	const char *verify_reason; /* static (OpenSSL's table) */
	bool trusted;
	int name_match;         /* -1 unknown (no MX name), 0, 1 */
	struct strv matched_names;
	bool expired, not_yet_valid, self_signed;
	bool dane_present;      /* the target carried TLSA records */
	int dane_tlsa;
	bool dane_dnssec, dane_match;
	int dane_depth;         /* -1 when no match */
	struct mxs_cert_rec *chain;
	size_t nchain;
};

struct mxs_transcript_ent {
	char dir;               /* 'S' or 'C' */
	bool tls;
	bool truncated;
	int64_t t_ms;
	char *data;             /* escape form */
};

#define MXS_TRANSCRIPT_MAX 64
#define MXS_TRANSCRIPT_DATA_MAX 1024

/* Protocol versions the legacy probes ask about (support.sslv3 .. support.tls1_3). */
enum mxs_sv { MXS_SV_SSL3, MXS_SV_TLS10, MXS_SV_TLS11, MXS_SV_TLS12, MXS_SV_TLS13, MXS_SV_LAST };
/* Weak suite classes they ask about (support.rc4 .. support.anon). */
enum mxs_sc { MXS_SC_RC4, MXS_SC_3DES, MXS_SC_EXPORT, MXS_SC_NULL, MXS_SC_ANON, MXS_SC_LAST };

/*
 * What the legacy probes learnt of one address (the support object of docs/record.md).
 * Every answer is tri-state: -1 unknown (not asked within the budget, or no clear
 * answer), 0 no, 1 yes.
 */
struct mxs_support_rec {
	int version[MXS_SV_LAST];     /* the version is accepted */
	int cls[MXS_SC_LAST];         /* a suite of the class is accepted (some version) */
	int cbc_only;                 /* below TLS 1.3 the server chooses CBC suites only */
	const char *prefer[MXS_SV_LAST]; /* IANA name of the suite chosen from our full list; static */
	int server_order;             /* 1: it chooses by its own order, 0: by ours */
	int dhe_bits;                 /* finite-field DHE prime size, -1 unknown */
	bool groups_asked;            /* groups is the whole set (the enumeration ended), else null */
	struct strv groups;           /* key-exchange groups seen accepted (IANA names) */
	int fallback_scsv;            /* 1: a downgraded hello with the SCSV is refused */
	int secure_reneg;             /* 1: renegotiation_info in the server's hello */
	int injection;                /* 1: a NOOP sent with STARTTLS was answered inside TLS */
	int connections;              /* connections the legacy probes made */
	int budget;                   /* the most they were allowed */
	bool exhausted;               /* questions were left unasked when the budget ran out */
};

/* A support object with every answer unknown; NULL when out of memory. */
struct mxs_support_rec *mxs_support_new(void);
void mxs_support_free(struct mxs_support_rec *u);

enum mxs_timing {
	MXS_T_CONNECT,
	MXS_T_GREETING,
	MXS_T_EHLO,
	MXS_T_STARTTLS,
	MXS_T_HANDSHAKE,
	MXS_T_EHLO_TLS,
	MXS_T_TOTAL,
	MXS_T_LAST
};

struct mxs_record {
	char ip[64];
	int port;
	const char *proto;      /* static: the protocol module's name; NULL without a probe */
	char *mx;
	struct strv mx_names, domains;
	bool guessed;           /* the target's host name was guessed (resolve --guess-hosts) */
	char *input;            /* escape form, only for bad-target */
	int64_t start_ms;       /* wall clock */
	enum mxs_outcome outcome;
	enum mxs_phase phase;
	char *detail;
	int attempts;
	const char *ehlo_name;  /* borrowed from the scan configuration or session */
	char ehlo_literal[72];  /* address literal when the configured name is not a FQDN */
	const char *profile;    /* borrowed */
	struct mxs_reply_rec greeting, starttls;
	struct mxs_ehlo_rec ehlo, ehlo_tls;
	struct mxs_tls_rec *tls;
	struct mxs_auth_rec auth;
	struct mxs_support_rec *support; /* NULL: no legacy probes (the key is left out) */
	char *mangled_starttls;
	bool starttls_echo;
	long plaintext_after_starttls;
	int64_t timing[MXS_T_LAST]; /* -1 when not reached */
	bool keep_transcript;
	/* grown as entries come (at most MXS_TRANSCRIPT_MAX): a session without a transcript,
	 * or with a short one, does not hold room for 64 (docs/performance.md, "Memory") */
	struct mxs_transcript_ent *transcript;
	size_t ntranscript, captranscript;
};

void mxs_record_init(struct mxs_record *r);
void mxs_record_free(struct mxs_record *r);
void mxs_tls_rec_free(struct mxs_tls_rec *t);

struct mxs_target;
/* Copy the target's address, port and names into the record. Returns 0 or -1 (no memory). */
int mxs_record_set_target(struct mxs_record *r, const struct mxs_target *t);

/* Replace the detail with a formatted message. */
void mxs_record_detail(struct mxs_record *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Append raw bytes to the transcript (escaped and capped here). */
void mxs_record_transcript(struct mxs_record *r, char dir, bool tls, int64_t t_ms,
			   const void *data, size_t len);

/* Copy a parsed reply into a reply record (the lines move; the reply is left empty). */
struct smtp_reply;
void mxs_reply_rec_take(struct mxs_reply_rec *dst, struct smtp_reply *src);

/*
 * The verdict of one (MX name, address) pair: the name line of docs/record.md. Judged on
 * the certificate chain of one probe of the address: its first probe ("address", SNI =
 * the first name known), or a follow-up probe that sent this name in SNI ("sni").
 */
struct mxs_name_verdict {
	const char *ip;
	int port;
	const char *name;
	const struct strv *domains;
	bool guessed;               /* the name was guessed (resolve --guess-hosts) */
	const char *probe;          /* "address" or "sni", static */
	const char *sni;            /* the name sent in SNI on that connection, or NULL */
	enum mxs_outcome outcome;   /* of that probe */
	char leaf_sha256[65];       /* "" without a certificate */
	int trusted;                /* -1 no certificate, 0, 1 (PKIX, name-independent) */
	long verify_code;
	int expired;                /* -1, 0, 1 */
	int name_match;             /* -1 no certificate, 0, 1: X509_check_host */
	bool dane_present;          /* the name has TLSA records */
	int dane_tlsa;
	bool dane_dnssec, dane_match;
	int dane_depth;             /* -1 when no match */
};

/* The name line as JSON (malloc'd, no newline), or NULL when out of memory. */
char *mxs_name_verdict_to_json(const struct mxs_name_verdict *n, size_t *len);

/*
 * Serialise as one JSON line (no trailing newline). Returns a malloc'd string owned by the
 * caller, or NULL when out of memory.
 */
char *mxs_record_to_json(const struct mxs_record *r, size_t *len);

#endif
