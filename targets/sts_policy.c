#include "sts_policy.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dnsmsg.h"

static const char *const error_names[MXS_STSP_ERROR_LAST] = {
	[MXS_STSP_OK] = "ok",
	[MXS_STSP_BAD_LINE] = "bad-line",
	[MXS_STSP_BAD_VERSION] = "bad-version",
	[MXS_STSP_BAD_MODE] = "bad-mode",
	[MXS_STSP_BAD_MAX_AGE] = "bad-max-age",
	[MXS_STSP_BAD_MX] = "bad-mx",
	[MXS_STSP_NO_MX] = "no-mx",
	[MXS_STSP_DUPLICATE] = "duplicate-key",
};

const char *mxs_sts_policy_error_name(enum mxs_sts_policy_error e)
{
	return (unsigned)e < MXS_STSP_ERROR_LAST ? error_names[e] : "?";
}

const char *mxs_sts_mode_name(enum mxs_sts_mode m)
{
	switch (m) {
	case MXS_STS_MODE_ENFORCE: return "enforce";
	case MXS_STS_MODE_TESTING: return "testing";
	case MXS_STS_MODE_NONE: return "none";
	default: return NULL;
	}
}

static int span_is(const char *p, size_t n, const char *s)
{
	return n == strlen(s) && memcmp(p, s, n) == 0;
}

/* An mx pattern: optional "*." then a host name; stored normalised in out. */
static int mx_pattern_ok(const char *p, size_t n, char *out)
{
	if (n == 0 || n >= MXS_STS_MX_LEN)
		return 0;
	memcpy(out, p, n);
	out[n] = '\0';
	char *host = out;
	if (n > 2 && out[0] == '*' && out[1] == '.')
		host = out + 2;
	return mxs_dns_normalize(host) == 0;
}

enum mxs_sts_policy_error mxs_sts_policy_parse(const char *body, size_t len,
					       struct mxs_sts_policy *out)
{
	int have_version = 0, have_max_age = 0;
	size_t line = 0, i = 0;

	memset(out, 0, sizeof(*out));
	out->max_age = -1;
	while (i < len) {
		size_t start = i, end;
		while (i < len && body[i] != '\n')
			i++;
		end = i;
		if (i < len)
			i++; /* the LF */
		line++;
		if (end > start && body[end - 1] == '\r')
			end--;
		/* Blank lines (a trailing newline, or CRLF CRLF) carry nothing. */
		if (end == start)
			continue;
		const char *colon = memchr(body + start, ':', end - start);
		if (!colon) {
			out->err_line = line;
			return MXS_STSP_BAD_LINE;
		}
		const char *k = body + start, *v = colon + 1;
		size_t klen = (size_t)(colon - k), vlen = (size_t)(body + end - v);
		/* sts-policy-term: key ":" *WSP value *WSP */
		while (vlen && (*v == ' ' || *v == '\t'))
			v++, vlen--;
		while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
			vlen--;
		enum mxs_sts_policy_error e = MXS_STSP_OK;
		if (span_is(k, klen, "version")) {
			if (have_version++)
				e = MXS_STSP_DUPLICATE;
			else if (!span_is(v, vlen, "STSv1"))
				e = MXS_STSP_BAD_VERSION;
		} else if (span_is(k, klen, "mode")) {
			if (out->mode != MXS_STS_MODE_NONE_SET)
				e = MXS_STSP_DUPLICATE;
			else if (span_is(v, vlen, "enforce"))
				out->mode = MXS_STS_MODE_ENFORCE;
			else if (span_is(v, vlen, "testing"))
				out->mode = MXS_STS_MODE_TESTING;
			else if (span_is(v, vlen, "none"))
				out->mode = MXS_STS_MODE_NONE;
			else
				e = MXS_STSP_BAD_MODE;
		} else if (span_is(k, klen, "max_age")) {
			long age = 0;
			if (have_max_age++)
				e = MXS_STSP_DUPLICATE;
			else if (vlen == 0 || vlen > 10)
				e = MXS_STSP_BAD_MAX_AGE;
			for (size_t j = 0; e == MXS_STSP_OK && j < vlen; j++) {
				if (!isdigit((unsigned char)v[j]))
					e = MXS_STSP_BAD_MAX_AGE;
				else
					age = age * 10 + (v[j] - '0');
			}
			if (e == MXS_STSP_OK && age > 31557600)
				e = MXS_STSP_BAD_MAX_AGE;
			if (e == MXS_STSP_OK)
				out->max_age = age;
		} else if (span_is(k, klen, "mx")) {
			char tmp[MXS_STS_MX_LEN];
			if (!mx_pattern_ok(v, vlen, tmp))
				e = MXS_STSP_BAD_MX;
			else if (out->nmx < MXS_STS_MX_MAX)
				memcpy(out->mx[out->nmx++], tmp, sizeof(tmp));
			out->nmx_seen++;
		}
		/* any other key is an extension: ignored (RFC 8461 3.2) */
		if (e != MXS_STSP_OK) {
			out->err_line = line;
			return e;
		}
	}
	if (!have_version)
		return MXS_STSP_BAD_VERSION;
	if (out->mode == MXS_STS_MODE_NONE_SET)
		return MXS_STSP_BAD_MODE;
	if (!have_max_age)
		return MXS_STSP_BAD_MAX_AGE;
	if (out->nmx_seen == 0 && out->mode != MXS_STS_MODE_NONE)
		return MXS_STSP_NO_MX;
	return MXS_STSP_OK;
}

int mxs_sts_mx_match(const char *pattern, const char *host)
{
	size_t plen = strlen(pattern), hlen = strlen(host);

	if (plen && pattern[plen - 1] == '.')
		plen--;
	if (hlen && host[hlen - 1] == '.')
		hlen--;
	if (plen > 2 && pattern[0] == '*' && pattern[1] == '.') {
		/* the host minus its first label must equal the pattern minus "*." */
		const char *dot = memchr(host, '.', hlen);
		if (!dot || dot == host)
			return 0;
		size_t rest = hlen - (size_t)(dot + 1 - host);
		return rest == plen - 2 && strncasecmp(dot + 1, pattern + 2, rest) == 0;
	}
	return plen == hlen && strncasecmp(pattern, host, plen) == 0;
}

static const char *const status_names[MXS_STS_LAST] = {
	[MXS_STS_OK] = "ok",
	[MXS_STS_DNS] = "dns",
	[MXS_STS_BLOCKED] = "blocked",
	[MXS_STS_CONNECT] = "connect",
	[MXS_STS_TLS] = "tls",
	[MXS_STS_CERTIFICATE] = "certificate",
	[MXS_STS_TIMEOUT] = "timeout",
	[MXS_STS_HTTP_PROTOCOL] = "http-protocol",
	[MXS_STS_TOO_LARGE] = "too-large",
	[MXS_STS_REDIRECT] = "redirect",
	[MXS_STS_HTTP_STATUS] = "http-status",
	[MXS_STS_CONTENT_TYPE] = "content-type",
	[MXS_STS_SYNTAX] = "syntax",
	[MXS_STS_LOCAL] = "local-error",
};

const char *mxs_sts_status_name(enum mxs_sts_status s)
{
	return (unsigned)s < MXS_STS_LAST ? status_names[s] : "?";
}

/* A remote string for an error message: printable ASCII, at most max bytes kept. */
static void printable(char *dst, size_t dstlen, const char *src, size_t max)
{
	size_t n = 0;

	for (; src && *src && n + 1 < dstlen && n < max; src++)
		dst[n++] = (*src >= 0x20 && *src < 0x7f && *src != '\'') ? *src : '?';
	dst[n] = '\0';
}

enum mxs_sts_status mxs_sts_judge(int http_status, const char *content_type, const char *location,
				  const char *body, size_t len, struct mxs_sts_policy *out, char *err,
				  size_t errlen)
{
	char shown[160];

	memset(out, 0, sizeof(*out));
	out->max_age = -1;
	err[0] = '\0';
	if (http_status >= 300 && http_status < 400) {
		printable(shown, sizeof(shown), location, 120);
		snprintf(err, errlen, "HTTP %d to '%s' (not followed)", http_status, shown);
		return MXS_STS_REDIRECT;
	}
	if (http_status != 200) {
		snprintf(err, errlen, "HTTP %d", http_status);
		return MXS_STS_HTTP_STATUS;
	}
	/* media-type = type "/" subtype *( OWS ";" OWS parameter ), case-insensitive */
	const char *ct = content_type ? content_type : "";
	while (*ct == ' ' || *ct == '\t')
		ct++;
	size_t tlen = strcspn(ct, "; \t");
	if (tlen != 10 || strncasecmp(ct, "text/plain", 10) != 0) {
		printable(shown, sizeof(shown), content_type, 120);
		snprintf(err, errlen, content_type ? "Content-Type '%s' is not text/plain"
						  : "no Content-Type%s", shown);
		return MXS_STS_CONTENT_TYPE;
	}
	if (len > MXS_STS_BODY_MAX) {
		snprintf(err, errlen, "body of %zu bytes, over %d", len, MXS_STS_BODY_MAX);
		return MXS_STS_TOO_LARGE;
	}
	enum mxs_sts_policy_error e = mxs_sts_policy_parse(body ? body : "", body ? len : 0, out);
	if (e != MXS_STSP_OK) {
		snprintf(err, errlen, "%s (line %zu)", mxs_sts_policy_error_name(e), out->err_line);
		return MXS_STS_SYNTAX;
	}
	return MXS_STS_OK;
}
