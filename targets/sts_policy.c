#include "sts_policy.h"

#include <ctype.h>
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
