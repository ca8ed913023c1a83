/*
 * Received: header fields (RFC 5321 4.4, RFC 5322 3.6.7) and the TLS evidence in them,
 * for `mxsurvey headers`: which hop of a message was carried over TLS, as far as the
 * header says. A header can be forged by anyone upstream, so a hop's evidence is only a
 * claim unless the hop was added by a server the reader trusts (the caller decides).
 *
 * Evidence, strongest first:
 *   a TLS comment of a known MTA naming protocol and cipher:
 *     postfix     "(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) ...)"
 *     exim        "with esmtps (TLS1.3) tls TLS_AES_256_GCM_SHA384"
 *     exim-legacy "with esmtps (TLSv1.2:ECDHE-RSA-AES256-GCM-SHA384:256)"
 *     opensmtpd   "(TLSv1.3:TLS_AES_256_GCM_SHA384:256:NO)"
 *     sendmail    "(version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 bits=256 verify=NOT)"
 *     microsoft   "with Microsoft SMTP Server (version=TLS1_2, cipher=TLS_ECDHE_...)"
 *     gmail       "(version=TLS1_3 cipher=TLS_AES_128_GCM_SHA256 bits=128/128)"
 *   the `with` protocol keyword (RFC 3848, RFC 6531): ESMTPS, ESMTPSA, UTF8SMTPS, LMTPS
 *   ... say TLS; SMTP, ESMTP, ESMTPA, LMTP, UTF8SMTP ... say no TLS (rule "with").
 * A comment claiming TLS under a keyword that says no TLS is a contradiction: tls is then
 * unknown and the hop is flagged MXS_RCVD_CONFLICT (except Sendmail's: before 8.15 it wrote
 * "with ESMTP" under its TLS comment).
 *
 * Pure functions over bytes the sender controls; fuzzed by tests/targets/fuzz_received.c.
 */
#ifndef MXS_RECEIVED_H
#define MXS_RECEIVED_H

#include <stddef.h>

enum mxs_rcvd_tls {
	MXS_RCVD_TLS_UNKNOWN,
	MXS_RCVD_TLS_NO,
	MXS_RCVD_TLS_YES,
	MXS_RCVD_TLS_LAST
};

/* "unknown", "no", "yes" */
const char *mxs_rcvd_tls_name(enum mxs_rcvd_tls t);

/* Which rule decided a hop's tls value. */
enum mxs_rcvd_rule {
	MXS_RCVD_RULE_NONE,         /* nothing known: tls unknown */
	MXS_RCVD_RULE_WITH,         /* the `with` keyword alone */
	MXS_RCVD_RULE_POSTFIX,
	MXS_RCVD_RULE_EXIM,
	MXS_RCVD_RULE_EXIM_LEGACY,
	MXS_RCVD_RULE_SENDMAIL,
	MXS_RCVD_RULE_MICROSOFT,
	MXS_RCVD_RULE_GMAIL,
	MXS_RCVD_RULE_OPENSMTPD,
	MXS_RCVD_RULE_CONFLICT,     /* comment and keyword disagree: tls unknown */
	MXS_RCVD_RULE_LAST
};

/* "none", "with", "postfix", "exim", "exim-legacy", "sendmail", "microsoft", "gmail",
 * "opensmtpd", "conflict" */
const char *mxs_rcvd_rule_name(enum mxs_rcvd_rule r);

/* Flags of a hop: what was missing or odd. */
enum {
	MXS_RCVD_NO_FROM = 1 << 0,     /* no from clause */
	MXS_RCVD_NO_BY = 1 << 1,       /* no by clause */
	MXS_RCVD_NO_DATE = 1 << 2,     /* no ";" date part */
	MXS_RCVD_UNBALANCED = 1 << 3,  /* a comment without its closing parenthesis */
	MXS_RCVD_CONFLICT = 1 << 4,    /* TLS comment and `with` keyword disagree */
	MXS_RCVD_TRUNCATED = 1 << 5,   /* a field was longer than its buffer and was cut */
	MXS_RCVD_FLAGS_LAST = 1 << 6
};

/* Name of one flag bit ("no-from", "no-by", "no-date", "unbalanced", "conflict",
 * "truncated"), or NULL for a bit that is not a flag. */
const char *mxs_rcvd_flag_name(unsigned bit);

/*
 * One hop. Every string is NUL-terminated, whitespace-collapsed, and holds the header's
 * bytes as they were (not necessarily UTF-8: escape before printing). from and by hold
 * the host and the comments after it ("mail.example.com (mail.example.com [192.0.2.1])");
 * TLS comments go to version/cipher instead. with is the keyword ("ESMTPS"; "Microsoft
 * SMTP Server" for Exchange). Empty means absent.
 */
struct mxs_rcvd_hop {
	char from[512];
	char by[256];
	char via[64];
	char with[64];
	char id[128];
	char rcpt[256];            /* the for clause */
	char date[128];
	enum mxs_rcvd_tls tls;
	enum mxs_rcvd_tls with_tls; /* what the with keyword alone says */
	enum mxs_rcvd_rule rule;
	char version[32];          /* normalised: "TLSv1.3", "SSLv3"; raw if unrecognised */
	char cipher[128];
	unsigned flags;
};

/* Parse one unfolded Received field body (the part after "Received:"). Never fails:
 * what cannot be read is left empty and flagged. */
void mxs_received_parse(const char *v, size_t len, struct mxs_rcvd_hop *hop);

/* What a `with` keyword says about TLS (case-insensitive; unknown for others). */
enum mxs_rcvd_tls mxs_rcvd_with_tls(const char *kw);

/*
 * The header fields of a message: cb(arg, name, nlen, value, vlen) for each field in
 * order, value unfolded (CR and LF removed, the folding white space kept) and trimmed.
 * Stops at the first empty line, at the end of the input, or when cb returns non-zero.
 * Lines that are not a field nor a continuation are skipped. Returns the length of the
 * header section (up to and including the empty line), or (size_t)-1 if out of memory.
 */
typedef int (*mxs_header_cb)(void *arg, const char *name, size_t nlen, const char *value,
                             size_t vlen);
size_t mxs_headers_each(const char *msg, size_t len, mxs_header_cb cb, void *arg);

/* The domain of the first address in a From:/Sender:/Return-Path: value, lower-cased, into
 * out (size outlen): the angle-addr's when there is one (a '<' or '@' in a quoted display
 * name or a comment is not the address). 0, or -1 with out empty when there is no addr-spec
 * with a dotted domain. */
int mxs_header_addr_domain(const char *v, size_t len, char *out, size_t outlen);

#endif
