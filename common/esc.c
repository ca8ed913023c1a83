#include "esc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t mxs_utf8_seq_len(const unsigned char *p, size_t avail)
{
	unsigned char c = p[0];
	size_t n;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* Reject overlongs, surrogates and code points past U+10FFFF. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static int byte_needs_escape(unsigned char c)
{
	return c < 0x20 || c == 0x7f || c == '\\';
}

int mxs_esc_is_clean(const void *src, size_t len)
{
	const unsigned char *p = src;
	size_t i = 0;

	while (i < len) {
		size_t n = mxs_utf8_seq_len(p + i, len - i);
		if (n == 0 || (n == 1 && byte_needs_escape(p[i])))
			return 0;
		i += n;
	}
	return 1;
}

char *mxs_esc_encode(const void *src, size_t len, size_t *outlen)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = src;
	char *out, *o;
	size_t i = 0;

	if (len > (SIZE_MAX - 1) / 4)
		return NULL;
	out = malloc(len * 4 + 1);
	if (out == NULL)
		return NULL;
	o = out;
	while (i < len) {
		size_t n = mxs_utf8_seq_len(p + i, len - i);
		if (n == 0 || (n == 1 && byte_needs_escape(p[i]))) {
			*o++ = '\\';
			*o++ = 'x';
			*o++ = hex[p[i] >> 4];
			*o++ = hex[p[i] & 0x0f];
			i++;
			continue;
		}
		memcpy(o, p + i, n);
		o += n;
		i += n;
	}
	*o = '\0';
	if (outlen != NULL)
		*outlen = (size_t)(o - out);
	return out;
}

int mxs_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

unsigned char *mxs_esc_decode(const char *src, size_t len, size_t *outlen)
{
	unsigned char *out = malloc(len + 1), *o = out;
	size_t i = 0;

	if (out == NULL)
		return NULL;
	while (i < len) {
		if (src[i] != '\\') {
			*o++ = (unsigned char)src[i++];
			continue;
		}
		int hi, lo;
		if (len - i < 4 || src[i + 1] != 'x' || (hi = mxs_hex_digit(src[i + 2])) < 0 ||
		    (lo = mxs_hex_digit(src[i + 3])) < 0) {
			free(out);
			return NULL;
		}
		*o++ = (unsigned char)(hi << 4 | lo);
		i += 4;
	}
	*o = '\0';
	if (outlen != NULL)
		*outlen = (size_t)(o - out);
	return out;
}
