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

#endif
