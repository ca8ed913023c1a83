#include "access_reply.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "esc.h"

const char *const access_status_names[ACCESS_STATUS_LAST] = {
	[ACCESS_MORE] = "more",
	[ACCESS_DONE] = "done",
	[ACCESS_ERR_SYNTAX] = "not a response line",
	[ACCESS_ERR_TAG] = "response carries another command's tag",
	[ACCESS_ERR_TOO_LONG] = "response line too long",
	[ACCESS_ERR_TOO_MANY] = "too many response lines",
	[ACCESS_ERR_NOMEM] = "out of memory",
};

const char *const access_verdict_names[] = {
	[ACCESS_NONE] = "none", [ACCESS_OK] = "OK", [ACCESS_NO] = "NO",
	[ACCESS_BAD] = "BAD", [ACCESS_BYE] = "BYE", [ACCESS_PREAUTH] = "PREAUTH",
};

void access_reply_init(struct access_reply *r)
{
	memset(r, 0, sizeof(*r));
}

void access_reply_reset(struct access_reply *r)
{
	strv_free(&r->lines);
	strv_free(&r->caps);
	r->verdict = ACCESS_NONE;
}

/* The word of w bytes at s equals word (case-insensitive). */
static bool word_is(const unsigned char *s, size_t w, const char *word)
{
	return w == strlen(word) && strncasecmp((const char *)s, word, w) == 0;
}

/* Length of the word at s (up to a space or the end). */
static size_t word_len(const unsigned char *s, size_t avail)
{
	size_t n = 0;
	while (n < avail && s[n] != ' ')
		n++;
	return n;
}

static int push_esc(struct strv *sv, const unsigned char *s, size_t len)
{
	return strv_push_owned(sv, mxs_esc_encode(s, len, NULL));
}

/* Each space-separated atom of s as one capability. */
static int push_atoms(struct access_reply *r, const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t w;
		while (i < len && s[i] == ' ')
			i++;
		w = word_len(s + i, len - i);
		if (w > 0 && r->caps.n < ACCESS_CAPS_MAX && push_esc(&r->caps, s + i, w) < 0)
			return -1;
		i += w;
	}
	return 0;
}

/* A "[CAPABILITY ...]" response code at the start of the text s: its atoms. */
static int code_caps(struct access_reply *r, const unsigned char *s, size_t len)
{
	static const char code[] = "[CAPABILITY ";
	const unsigned char *end;

	if (len < sizeof(code) - 1 || strncasecmp((const char *)s, code, sizeof(code) - 1) != 0)
		return 0;
	s += sizeof(code) - 1;
	len -= sizeof(code) - 1;
	end = memchr(s, ']', len);
	return push_atoms(r, s, end ? (size_t)(end - s) : len);
}

static enum access_verdict imap_status_word(const unsigned char *s, size_t w)
{
	if (word_is(s, w, "OK"))
		return ACCESS_OK;
	if (word_is(s, w, "NO"))
		return ACCESS_NO;
	if (word_is(s, w, "BAD"))
		return ACCESS_BAD;
	if (word_is(s, w, "BYE"))
		return ACCESS_BYE;
	if (word_is(s, w, "PREAUTH"))
		return ACCESS_PREAUTH;
	return ACCESS_NONE;
}

enum access_status imap_reply_feed(struct access_reply *r, const char *tag,
				   const unsigned char *line, size_t len)
{
	const unsigned char *word, *text;
	size_t w, tlen;
	enum access_verdict v;
	bool untagged;

	if (len > ACCESS_LINE_MAX)
		return ACCESS_ERR_TOO_LONG;
	if (r->lines.n >= ACCESS_LINES_MAX)
		return ACCESS_ERR_TOO_MANY;
	untagged = len >= 2 && line[0] == '*' && line[1] == ' ';
	if (untagged) {
		word = line + 2;
	} else {
		size_t tl = word_len(line, len);
		/* Continuations ("+ ") and garbage are no answer to anything we send. */
		if (tag == NULL || tl == 0 || line[0] == '+' || tl >= len)
			return ACCESS_ERR_SYNTAX;
		if (tl != strlen(tag) || memcmp(line, tag, tl) != 0)
			return ACCESS_ERR_TAG;
		word = line + tl + 1;
	}
	w = word_len(word, len - (size_t)(word - line));
	if (w == 0)
		return ACCESS_ERR_SYNTAX;
	text = word + w;
	tlen = len - (size_t)(text - line);
	if (tlen > 0) {
		text++;
		tlen--;
	}
	v = imap_status_word(word, w);
	if (!untagged && v != ACCESS_OK && v != ACCESS_NO && v != ACCESS_BAD)
		return ACCESS_ERR_SYNTAX;
	if (tag == NULL && v != ACCESS_OK && v != ACCESS_PREAUTH && v != ACCESS_BYE)
		return ACCESS_ERR_SYNTAX;
	if (push_esc(&r->lines, line, len) < 0)
		return ACCESS_ERR_NOMEM;
	if (word_is(word, w, "CAPABILITY") && push_atoms(r, text, tlen) < 0)
		return ACCESS_ERR_NOMEM;
	if (v != ACCESS_NONE && code_caps(r, text, tlen) < 0)
		return ACCESS_ERR_NOMEM;
	/* The greeting is one line; a command ends with its tag, or with the server's BYE. */
	if (tag == NULL || !untagged || v == ACCESS_BYE) {
		r->verdict = v;
		return ACCESS_DONE;
	}
	return ACCESS_MORE;
}

enum access_status pop3_reply_feed(struct access_reply *r, bool multi,
				   const unsigned char *line, size_t len)
{
	size_t w;

	if (len > ACCESS_LINE_MAX)
		return ACCESS_ERR_TOO_LONG;
	if (r->lines.n >= ACCESS_LINES_MAX)
		return ACCESS_ERR_TOO_MANY;
	if (r->lines.n == 0) {
		w = word_len(line, len);
		if (word_is(line, w, "+OK"))
			r->verdict = ACCESS_OK;
		else if (word_is(line, w, "-ERR"))
			r->verdict = ACCESS_NO;
		else
			return ACCESS_ERR_SYNTAX;
		if (push_esc(&r->lines, line, len) < 0)
			return ACCESS_ERR_NOMEM;
		return multi && r->verdict == ACCESS_OK ? ACCESS_MORE : ACCESS_DONE;
	}
	if (push_esc(&r->lines, line, len) < 0)
		return ACCESS_ERR_NOMEM;
	if (len == 1 && line[0] == '.')
		return ACCESS_DONE;
	/* Dot-stuffing: a leading "." of a data line is doubled. */
	if (len > 0 && line[0] == '.') {
		line++;
		len--;
	}
	if (r->caps.n < ACCESS_CAPS_MAX && push_esc(&r->caps, line, len) < 0)
		return ACCESS_ERR_NOMEM;
	return ACCESS_MORE;
}

/* Length of the keyword at the start of a capability (up to a space). */
static size_t key_len(const char *s)
{
	return word_len((const unsigned char *)s, strlen(s));
}

int access_has_cap(const struct strv *caps, const char *cap)
{
	size_t n = strlen(cap);

	for (size_t i = 0; i < caps->n; i++)
		if (key_len(caps->v[i]) == n && strncasecmp(caps->v[i], cap, n) == 0)
			return 1;
	return 0;
}

/* Push the space-separated words of s, upper-cased, skipping those already there. */
static int push_mechs(struct strv *mechs, const char *s)
{
	while (*s != '\0') {
		size_t w;
		char *m;
		while (*s == ' ')
			s++;
		w = key_len(s);
		if (w == 0)
			break;
		m = strndup(s, w);
		if (m == NULL)
			return -1;
		/* Upper-case the letters, never an escape ("\x0c" must not become "\X0C"). */
		for (char *p = m; *p; p++) {
			if (p[0] == '\\' && p[1] == 'x' && p[2] != '\0' && p[3] != '\0') {
				p += 3;
				continue;
			}
			*p = (char)toupper((unsigned char)*p);
		}
		if (strv_contains(mechs, m))
			free(m);
		else if (strv_push_owned(mechs, m) < 0)
			return -1;
		s += w;
	}
	return 0;
}

int access_sasl_mechs(const struct strv *caps, struct strv *mechs)
{
	for (size_t i = 0; i < caps->n; i++) {
		const char *c = caps->v[i];
		size_t k = key_len(c);
		if (strncasecmp(c, "AUTH=", 5) == 0) {
			if (push_mechs(mechs, c + 5) < 0)
				return -1;
		} else if ((k == 4 && (strncasecmp(c, "AUTH", 4) == 0 || strncasecmp(c, "SASL", 4) == 0))) {
			if (push_mechs(mechs, c + 4) < 0)
				return -1;
		}
	}
	return 0;
}

const char *access_mangled_cap(const struct strv *caps, const char *want)
{
	size_t n = strlen(want);

	for (size_t i = 0; i < caps->n; i++) {
		const char *k = caps->v[i];
		size_t xs = 0;
		bool same_or_x = true, letters = true;
		if (key_len(k) != n)
			continue;
		for (size_t j = 0; j < n; j++) {
			char c = (char)toupper((unsigned char)k[j]);
			if (c == 'X')
				xs++;
			else if (c != want[j])
				same_or_x = false;
			if (!isalpha((unsigned char)c))
				letters = false;
		}
		/* The keyword with letters overwritten by X, or mostly X ("XXXXXXXA", "XXXX"). */
		if (letters && ((same_or_x && xs > 0) || xs * 8 >= n * 5))
			return k;
	}
	return NULL;
}
