/*
 * The MTA-STS policy file (RFC 8461 3.2), fetched from
 * https://mta-sts.<domain>/.well-known/mta-sts.txt:
 *     version: STSv1
 *     mode: enforce
 *     mx: mail.example.com
 *     mx: *.example.net
 *     max_age: 604800
 * Lines end in CRLF or LF; unknown keys are ignored. The body is remote-controlled: this
 * parser is fuzzed (tests/targets/fuzz_sts_policy.c).
 */
#ifndef MXS_STS_POLICY_H
#define MXS_STS_POLICY_H

#include <stddef.h>

enum mxs_sts_mode { MXS_STS_MODE_NONE_SET, MXS_STS_MODE_ENFORCE, MXS_STS_MODE_TESTING, MXS_STS_MODE_NONE };

enum mxs_sts_policy_error {
	MXS_STSP_OK,
	MXS_STSP_BAD_LINE,      /* a line without "key:" */
	MXS_STSP_BAD_VERSION,   /* version missing or not STSv1 */
	MXS_STSP_BAD_MODE,      /* mode missing or not enforce/testing/none */
	MXS_STSP_BAD_MAX_AGE,   /* max_age missing, not digits or over 31557600 */
	MXS_STSP_BAD_MX,        /* an mx pattern that is not a host name or *.name */
	MXS_STSP_NO_MX,         /* mode enforce/testing without an mx line */
	MXS_STSP_DUPLICATE,     /* version, mode or max_age given twice */
	MXS_STSP_ERROR_LAST
};

/* "ok", "bad-line", "bad-version", "bad-mode", "bad-max-age", "bad-mx", "no-mx", "duplicate-key" */
const char *mxs_sts_policy_error_name(enum mxs_sts_policy_error e);
/* "enforce", "testing", "none" (NULL for NONE_SET) */
const char *mxs_sts_mode_name(enum mxs_sts_mode m);

#define MXS_STS_MX_MAX 32
#define MXS_STS_MX_LEN 256

struct mxs_sts_policy {
	enum mxs_sts_mode mode;
	long max_age;
	size_t nmx;         /* patterns kept (at most MXS_STS_MX_MAX; the rest are counted) */
	size_t nmx_seen;
	char mx[MXS_STS_MX_MAX][MXS_STS_MX_LEN]; /* lower case, trailing dot removed */
	size_t err_line;    /* 1-based line of the error, 0 if none */
};

enum mxs_sts_policy_error mxs_sts_policy_parse(const char *body, size_t len,
					       struct mxs_sts_policy *out);

/*
 * RFC 8461 4.1: does host (a presentation name) match pattern? "*.example.com" matches
 * exactly one extra leftmost label ("mx.example.com", not "example.com" nor
 * "a.b.example.com"); comparison ignores case and a trailing dot.
 */
int mxs_sts_mx_match(const char *pattern, const char *host);

/*
 * Outcome of a policy fetch, one class per reason ("policy.status" of domain records,
 * docs/targets.md). The order is the order of the steps: the first that fails names it.
 */
enum mxs_sts_status {
	MXS_STS_OK,           /* "ok": a valid policy */
	MXS_STS_DNS,          /* "dns": mta-sts.<domain> has no address, or its lookup failed */
	MXS_STS_BLOCKED,      /* "blocked": every address is blocklisted */
	MXS_STS_CONNECT,      /* "connect": no address accepted a TCP connection */
	MXS_STS_TLS,          /* "tls": the handshake failed (not for the certificate) */
	MXS_STS_CERTIFICATE,  /* "certificate": no PKIX-valid certificate for mta-sts.<domain> */
	MXS_STS_TIMEOUT,      /* "timeout": connected, but no complete response in time */
	MXS_STS_HTTP_PROTOCOL,/* "http-protocol": a malformed or truncated HTTP response */
	MXS_STS_TOO_LARGE,    /* "too-large": a body over 64 KiB (or headers over 16 KiB) */
	MXS_STS_REDIRECT,     /* "redirect": a 3xx (never followed, RFC 8461 3.3) */
	MXS_STS_HTTP_STATUS,  /* "http-status": any other status than 200 */
	MXS_STS_CONTENT_TYPE, /* "content-type": not text/plain */
	MXS_STS_SYNTAX,       /* "syntax": the body is not a valid policy */
	MXS_STS_LOCAL,        /* "local-error": out of memory, no descriptors */
	MXS_STS_LAST
};

const char *mxs_sts_status_name(enum mxs_sts_status s);

#define MXS_STS_BODY_MAX 65536 /* RFC 8461 3.2: policies are at most 64 KiB */

/*
 * Judge an HTTP response to a policy request (RFC 8461 3.3): status 200 (3xx is a
 * redirect), media type text/plain (parameters allowed, case ignored), a body of at most
 * MXS_STS_BODY_MAX bytes that parses. content_type and location may be NULL (absent).
 * Fills out (the parsed policy) and err (a printable reason, "" for OK).
 */
enum mxs_sts_status mxs_sts_judge(int http_status, const char *content_type, const char *location,
				  const char *body, size_t len, struct mxs_sts_policy *out, char *err,
				  size_t errlen);

#endif
