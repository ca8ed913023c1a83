#include "http_resp.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const error_names[MXS_HTTPE_LAST] = {
	[MXS_HTTPE_NONE] = "none",
	[MXS_HTTPE_BAD_STATUS_LINE] = "bad-status-line",
	[MXS_HTTPE_HEADERS_TOO_LARGE] = "headers-too-large",
	[MXS_HTTPE_BAD_HEADER] = "bad-header",
	[MXS_HTTPE_BAD_LENGTH] = "bad-content-length",
	[MXS_HTTPE_BAD_CHUNK] = "bad-chunk",
	[MXS_HTTPE_BODY_TOO_LARGE] = "body-too-large",
	[MXS_HTTPE_TRUNCATED] = "truncated",
};

const char *mxs_http_error_name(enum mxs_http_error e)
{
	return (unsigned)e < MXS_HTTPE_LAST ? error_names[e] : "?";
}

static enum mxs_http_result fail(struct mxs_http_resp *out, enum mxs_http_error e)
{
	out->error = e;
	return MXS_HTTP_ERROR;
}

/* Find the end of the line starting at off: returns the offset of its LF or -1. */
static long line_end(const char *buf, size_t len, size_t off)
{
	const char *lf = memchr(buf + off, '\n', len - off);
	return lf ? (long)(lf - buf) : -1;
}

/* Trim a span [a,b) of spaces and tabs and a trailing CR. */
static void trim(const char *buf, size_t *a, size_t *b)
{
	while (*b > *a && (buf[*b - 1] == '\r' || buf[*b - 1] == ' ' || buf[*b - 1] == '\t'))
		(*b)--;
	while (*a < *b && (buf[*a] == ' ' || buf[*a] == '\t'))
		(*a)++;
}

static enum mxs_http_result dechunk(const char *buf, size_t len, size_t off, int eof,
				   size_t body_max, struct mxs_http_resp *out)
{
	size_t total = 0;
	size_t pos = off;

	/* First pass: validate and measure; second pass copies. Both walk the same grammar. */
	for (int pass = 0; pass < 2; pass++) {
		pos = off;
		total = 0;
		for (;;) {
			long e = line_end(buf, len, pos);
			if (e < 0)
				goto more;
			size_t size = 0, digits = 0, i = pos;
			while (i < (size_t)e && isxdigit((unsigned char)buf[i])) {
				int c = tolower((unsigned char)buf[i]);
				size = size * 16 + (size_t)(isdigit(c) ? c - '0' : c - 'a' + 10);
				if (++digits > 8)
					return fail(out, MXS_HTTPE_BAD_CHUNK);
				i++;
			}
			/* chunk extensions after ';' are allowed and ignored */
			if (digits == 0 || (i < (size_t)e && buf[i] != ';' && buf[i] != '\r' &&
					    buf[i] != ' ' && buf[i] != '\t'))
				return fail(out, MXS_HTTPE_BAD_CHUNK);
			pos = (size_t)e + 1;
			if (size == 0)
				break;
			if (total + size > body_max)
				return fail(out, MXS_HTTPE_BODY_TOO_LARGE);
			if (len - pos < size)
				goto more;
			if (pass == 1)
				memcpy(out->body + total, buf + pos, size);
			total += size;
			pos += size;
			/* CRLF (or LF) after the chunk data */
			if (pos < len && buf[pos] == '\r')
				pos++;
			if (pos >= len)
				goto more;
			if (buf[pos] != '\n')
				return fail(out, MXS_HTTPE_BAD_CHUNK);
			pos++;
		}
		/* Trailer section: header lines until an empty line. */
		for (;;) {
			long e = line_end(buf, len, pos);
			if (e < 0) {
				/* A server that closes right after "0\r\n" lost only the trailer. */
				if (eof)
					break;
				goto more;
			}
			size_t a = pos, b = (size_t)e;
			pos = (size_t)e + 1;
			trim(buf, &a, &b);
			if (a == b)
				break;
		}
		if (pass == 0) {
			out->body = malloc(total + 1);
			if (!out->body)
				return fail(out, MXS_HTTPE_BODY_TOO_LARGE);
		}
	}
	out->body[total] = '\0';
	out->body_len = total;
	return MXS_HTTP_DONE;
more:
	return eof ? fail(out, MXS_HTTPE_TRUNCATED) : MXS_HTTP_NEED_MORE;
}

enum mxs_http_result mxs_http_resp_parse(const char *buf, size_t len, int eof, size_t body_max,
					 struct mxs_http_resp *out)
{
	size_t pos = 0;
	long e;
	int chunked = 0;
	long long clen = -1;

	memset(out, 0, sizeof(*out));
	/* Status line: HTTP/1.x SP 3DIGIT [SP reason] */
	e = line_end(buf, len, 0);
	if (e < 0) {
		if (len > MXS_HTTP_HEADERS_MAX)
			return fail(out, MXS_HTTPE_HEADERS_TOO_LARGE);
		return eof ? fail(out, len ? MXS_HTTPE_BAD_STATUS_LINE : MXS_HTTPE_TRUNCATED)
			   : MXS_HTTP_NEED_MORE;
	}
	if (e < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)buf[7]) ||
	    buf[8] != ' ' || !isdigit((unsigned char)buf[9]) || !isdigit((unsigned char)buf[10]) ||
	    !isdigit((unsigned char)buf[11]) || (e > 12 && buf[12] != ' ' && buf[12] != '\r'))
		return fail(out, MXS_HTTPE_BAD_STATUS_LINE);
	out->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	if (out->status < 100)
		return fail(out, MXS_HTTPE_BAD_STATUS_LINE);
	pos = (size_t)e + 1;
	for (;;) {
		e = line_end(buf, len, pos);
		if (e < 0 || (size_t)e > MXS_HTTP_HEADERS_MAX) {
			if (len > MXS_HTTP_HEADERS_MAX)
				return fail(out, MXS_HTTPE_HEADERS_TOO_LARGE);
			return eof ? fail(out, MXS_HTTPE_TRUNCATED) : MXS_HTTP_NEED_MORE;
		}
		size_t a = pos, b = (size_t)e;
		pos = (size_t)e + 1;
		if (b > a && buf[b - 1] == '\r')
			b--;
		if (a == b)
			break; /* end of headers */
		const char *colon = memchr(buf + a, ':', b - a);
		if (!colon || colon == buf + a || buf[a] == ' ' || buf[a] == '\t')
			return fail(out, MXS_HTTPE_BAD_HEADER);
		size_t nlen = (size_t)(colon - (buf + a)), va = (size_t)(colon - buf) + 1, vb = b;
		trim(buf, &va, &vb);
		const char *name = buf + a, *val = buf + va;
		size_t vlen = vb - va;
		if (nlen == 12 && strncasecmp(name, "content-type", 12) == 0) {
			size_t n = 0;
			while (n < vlen && n + 1 < sizeof(out->content_type) && val[n] != ';' &&
			       val[n] != ' ' && val[n] != '\t') {
				unsigned char c = (unsigned char)val[n];
				/* keep it printable: it lands in an error message */
				out->content_type[n] = (char)(c > 0x20 && c < 0x7f ? tolower(c) : '?');
				n++;
			}
			out->content_type[n] = '\0';
		} else if (nlen == 14 && strncasecmp(name, "content-length", 14) == 0) {
			long long v = 0;
			if (vlen == 0 || vlen > 12)
				return fail(out, MXS_HTTPE_BAD_LENGTH);
			for (size_t i = 0; i < vlen; i++) {
				if (!isdigit((unsigned char)val[i]))
					return fail(out, MXS_HTTPE_BAD_LENGTH);
				v = v * 10 + (val[i] - '0');
			}
			if (clen >= 0 && clen != v)
				return fail(out, MXS_HTTPE_BAD_LENGTH);
			clen = v;
		} else if (nlen == 17 && strncasecmp(name, "transfer-encoding", 17) == 0) {
			/* only "chunked" (last coding) is understood; anything else is refused */
			if (vlen >= 7 && strncasecmp(val + vlen - 7, "chunked", 7) == 0 && vlen == 7)
				chunked = 1;
			else
				return fail(out, MXS_HTTPE_BAD_HEADER);
		}
	}
	/* 1xx, 204 and 304 carry no body; anything else is read as the framing says. */
	if ((out->status >= 100 && out->status < 200) || out->status == 204 || out->status == 304)
		clen = 0;
	if (chunked)
		return dechunk(buf, len, pos, eof, body_max, out);
	size_t avail = len - pos;
	if (clen >= 0) {
		if ((unsigned long long)clen > body_max)
			return fail(out, MXS_HTTPE_BODY_TOO_LARGE);
		if (avail < (size_t)clen)
			return eof ? fail(out, MXS_HTTPE_TRUNCATED) : MXS_HTTP_NEED_MORE;
		avail = (size_t)clen;
	} else {
		if (avail > body_max)
			return fail(out, MXS_HTTPE_BODY_TOO_LARGE);
		if (!eof)
			return MXS_HTTP_NEED_MORE;
	}
	out->body = malloc(avail + 1);
	if (!out->body)
		return fail(out, MXS_HTTPE_BODY_TOO_LARGE);
	memcpy(out->body, buf + pos, avail);
	out->body[avail] = '\0';
	out->body_len = avail;
	return MXS_HTTP_DONE;
}
