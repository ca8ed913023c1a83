/* Received: fields and their TLS evidence (received.h states the rules). */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "received.h"

static const char *const tls_names[MXS_RCVD_TLS_LAST] = {
	[MXS_RCVD_TLS_UNKNOWN] = "unknown",
	[MXS_RCVD_TLS_NO] = "no",
	[MXS_RCVD_TLS_YES] = "yes",
};

static const char *const rule_names[MXS_RCVD_RULE_LAST] = {
	[MXS_RCVD_RULE_NONE] = "none",
	[MXS_RCVD_RULE_WITH] = "with",
	[MXS_RCVD_RULE_POSTFIX] = "postfix",
	[MXS_RCVD_RULE_EXIM] = "exim",
	[MXS_RCVD_RULE_EXIM_LEGACY] = "exim-legacy",
	[MXS_RCVD_RULE_SENDMAIL] = "sendmail",
	[MXS_RCVD_RULE_MICROSOFT] = "microsoft",
	[MXS_RCVD_RULE_GMAIL] = "gmail",
	[MXS_RCVD_RULE_OPENSMTPD] = "opensmtpd",
	[MXS_RCVD_RULE_CONFLICT] = "conflict",
};

const char *mxs_rcvd_tls_name(enum mxs_rcvd_tls t)
{
	return (unsigned)t < MXS_RCVD_TLS_LAST ? tls_names[t] : "?";
}

const char *mxs_rcvd_rule_name(enum mxs_rcvd_rule r)
{
	return (unsigned)r < MXS_RCVD_RULE_LAST ? rule_names[r] : "?";
}

const char *mxs_rcvd_flag_name(unsigned bit)
{
	switch (bit) {
	case MXS_RCVD_NO_FROM: return "no-from";
	case MXS_RCVD_NO_BY: return "no-by";
	case MXS_RCVD_NO_DATE: return "no-date";
	case MXS_RCVD_UNBALANCED: return "unbalanced";
	case MXS_RCVD_CONFLICT: return "conflict";
	case MXS_RCVD_TRUNCATED: return "truncated";
	default: return NULL;
	}
}

/* RFC 3848 and RFC 6531 keywords (IANA "Mail Transmission Types"): the S says TLS. */
static const char *const with_tls_yes[] = {
	"ESMTPS", "ESMTPSA", "LMTPS", "LMTPSA", "UTF8SMTPS", "UTF8SMTPSA", "UTF8LMTPS", "UTF8LMTPSA",
};
static const char *const with_tls_no[] = {
	"SMTP", "ESMTP", "ESMTPA", "LMTP", "LMTPA", "UTF8SMTP", "UTF8SMTPA", "UTF8LMTP", "UTF8LMTPA",
};

enum mxs_rcvd_tls mxs_rcvd_with_tls(const char *kw)
{
	for (size_t i = 0; i < sizeof(with_tls_yes) / sizeof(with_tls_yes[0]); i++)
		if (strcasecmp(kw, with_tls_yes[i]) == 0)
			return MXS_RCVD_TLS_YES;
	for (size_t i = 0; i < sizeof(with_tls_no) / sizeof(with_tls_no[0]); i++)
		if (strcasecmp(kw, with_tls_no[i]) == 0)
			return MXS_RCVD_TLS_NO;
	return MXS_RCVD_TLS_UNKNOWN;
}

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Append n bytes to a field, a space first when it is not empty; cut and flag if full. */
static void put(char *dst, size_t cap, const char *s, size_t n, unsigned *flags)
{
	size_t len = strlen(dst);

	if (len > 0 && n > 0) {
		if (len + 1 >= cap) {
			*flags |= MXS_RCVD_TRUNCATED;
			return;
		}
		dst[len++] = ' ';
	}
	for (size_t i = 0; i < n; i++) {
		if (len + 1 >= cap) {
			*flags |= MXS_RCVD_TRUNCATED;
			break;
		}
		/* collapse white space (a comment may hold folded lines) and drop NULs */
		if (is_wsp(s[i])) {
			if (len > 0 && dst[len - 1] != ' ')
				dst[len++] = ' ';
		} else if (s[i] != '\0') {
			dst[len++] = s[i];
		}
	}
	dst[len] = '\0';
}

static void set(char *dst, size_t cap, const char *s, size_t n, unsigned *flags)
{
	dst[0] = '\0';
	put(dst, cap, s, n, flags);
}

/* A span of the input. */
struct span {
	const char *p;
	size_t n;
};

static bool span_eq(struct span s, const char *lit)
{
	return strlen(lit) == s.n && strncasecmp(s.p, lit, s.n) == 0;
}

static bool span_prefix(struct span s, const char *lit)
{
	return s.n >= strlen(lit) && strncasecmp(s.p, lit, strlen(lit)) == 0;
}

/*
 * A protocol version as written by the MTAs ("TLSv1.3", "TLS1.3", "TLS1_3", "SSLv3"):
 * normalised to "TLSv1.3" in out. Returns false (out untouched) if s is not one.
 */
static bool version_norm(struct span s, char *out, size_t cap)
{
	char buf[32];
	size_t k = 0, i = 3;

	if (s.n < 4 || s.n >= sizeof(buf) || (!span_prefix(s, "TLS") && !span_prefix(s, "SSL")))
		return false;
	if (s.p[i] == 'v' || s.p[i] == 'V')
		i++;
	if (i >= s.n || !isdigit((unsigned char)s.p[i]) || !isdigit((unsigned char)s.p[s.n - 1]))
		return false;
	buf[k++] = (char)toupper((unsigned char)s.p[0]);
	buf[k++] = (char)toupper((unsigned char)s.p[1]);
	buf[k++] = (char)toupper((unsigned char)s.p[2]);
	buf[k++] = 'v';
	for (; i < s.n; i++) {
		char c = s.p[i];
		if (c == '_')
			c = '.';
		if (!isdigit((unsigned char)c) && c != '.')
			return false;
		if (c == '.' && buf[k - 1] == '.')
			return false;
		buf[k++] = c;
	}
	buf[k] = '\0';
	if (strlen(buf) + 1 > cap)
		return false;
	memcpy(out, buf, strlen(buf) + 1);
	return true;
}

/* The version as normalised, or the raw text when it is no recognisable version. */
static void put_version(struct mxs_rcvd_hop *h, struct span s)
{
	if (!version_norm(s, h->version, sizeof(h->version)))
		set(h->version, sizeof(h->version), s.p, s.n, &h->flags);
}

/* Next word of s (separated by white space, and by commas when commas is set). */
static bool next_word(struct span *s, bool commas, struct span *w)
{
	size_t i = 0;

	while (i < s->n && (is_wsp(s->p[i]) || (commas && s->p[i] == ',')))
		i++;
	if (i == s->n)
		return false;
	w->p = s->p + i;
	while (i < s->n && !is_wsp(s->p[i]) && !(commas && s->p[i] == ','))
		i++;
	w->n = (size_t)(s->p + i - w->p);
	s->p += i;
	s->n -= i;
	return true;
}

/* Evidence gathered from the comments and words of one field. */
struct evidence {
	enum mxs_rcvd_rule rule;     /* the first TLS comment's rule, or NONE */
	struct span version, cipher;
	struct span exim_version;    /* "(TLS1.3)" in the with clause */
	struct span exim_cipher;     /* "tls CIPHER" words in the with clause */
};

/*
 * A comment's TLS evidence: fills ev and returns true when the comment is one of the
 * known TLS comments. in_with: the comment follows the with clause; ms: that clause is
 * Microsoft's.
 */
static bool tls_comment(struct span c, bool in_with, bool ms, struct evidence *ev)
{
	struct span rest = c, w, ver = { 0 }, ciph = { 0 };
	char scratch[32];

	/* Postfix: "using TLSv1.3 with cipher NAME (256/256 bits) ..." */
	if (next_word(&rest, false, &w) && span_eq(w, "using")) {
		struct span a, b, d;
		if (!next_word(&rest, false, &ver))
			return false;
		while (next_word(&rest, false, &a)) {
			struct span save = rest;
			if (span_eq(a, "with") && next_word(&rest, false, &b) && span_eq(b, "cipher") &&
			    next_word(&rest, false, &d)) {
				ev->rule = MXS_RCVD_RULE_POSTFIX;
				ev->version = ver;
				ev->cipher = d;
				return true;
			}
			rest = save;
		}
		return false;
	}

	/* key=value lists: Sendmail, Gmail, Microsoft */
	rest = c;
	bool verify = false;
	while (next_word(&rest, true, &w)) {
		if (span_prefix(w, "version=")) {
			ver.p = w.p + 8;
			ver.n = w.n - 8;
		} else if (span_prefix(w, "cipher=")) {
			ciph.p = w.p + 7;
			ciph.n = w.n - 7;
		} else if (span_prefix(w, "verify=")) {
			verify = true;
		}
	}
	if (ver.n > 0 && ciph.n > 0) {
		ev->rule = in_with && ms ? MXS_RCVD_RULE_MICROSOFT
		         : verify ? MXS_RCVD_RULE_SENDMAIL : MXS_RCVD_RULE_GMAIL;
		ev->version = ver;
		ev->cipher = ciph;
		return true;
	}

	/* colon form, one word: VERSION:CIPHER:BITS (Exim before 4.92),
	 * VERSION:CIPHER:BITS:VERIFY (OpenSMTPD) */
	struct span part[5];
	size_t np = 0, start = 0;
	for (size_t i = 0; i < c.n; i++)
		if (is_wsp(c.p[i]))
			return false;
	for (size_t i = 0; i <= c.n && np < 5; i++) {
		if (i == c.n || c.p[i] == ':') {
			part[np].p = c.p + start;
			part[np].n = i - start;
			np++;
			start = i + 1;
		}
	}
	if ((np == 3 || np == 4) && version_norm(part[0], scratch, sizeof(scratch)) && part[1].n > 0) {
		ev->rule = np == 3 ? MXS_RCVD_RULE_EXIM_LEGACY : MXS_RCVD_RULE_OPENSMTPD;
		ev->version = part[0];
		ev->cipher = part[1];
		return true;
	}

	/* Exim 4.92 and later: "(TLS1.3)" after the with keyword */
	if (in_with && np == 1 && version_norm(c, scratch, sizeof(scratch))) {
		ev->exim_version = c;
		return true;
	}
	return false;
}

enum clause { C_NONE, C_FROM, C_BY, C_VIA, C_WITH, C_ID, C_FOR, C_LAST };

static const char *const clause_words[C_LAST] = {
	[C_FROM] = "from", [C_BY] = "by", [C_VIA] = "via", [C_WITH] = "with", [C_ID] = "id",
	[C_FOR] = "for",
};

static enum clause keyword(struct span w)
{
	for (int k = C_FROM; k < C_LAST; k++)
		if (span_eq(w, clause_words[k]))
			return (enum clause)k;
	return C_NONE;
}

/* Where a clause's text goes; NULL for text outside any clause (dropped). */
static char *clause_field(struct mxs_rcvd_hop *h, enum clause c, size_t *cap)
{
	switch (c) {
	case C_FROM: *cap = sizeof(h->from); return h->from;
	case C_BY: *cap = sizeof(h->by); return h->by;
	case C_VIA: *cap = sizeof(h->via); return h->via;
	case C_WITH: *cap = sizeof(h->with); return h->with;
	case C_ID: *cap = sizeof(h->id); return h->id;
	case C_FOR: *cap = sizeof(h->rcpt); return h->rcpt;
	default: *cap = 0; return NULL;
	}
}

/* End of the comment starting at p[0] == '(' (one past its ')'), or len if unclosed. */
static size_t comment_end(const char *p, size_t len, bool *unbalanced)
{
	int depth = 0;

	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\\' && i + 1 < len) {
			i++;
		} else if (p[i] == '(') {
			depth++;
		} else if (p[i] == ')') {
			if (--depth == 0)
				return i + 1;
		}
	}
	*unbalanced = true;
	return len;
}

/* End of the quoted string starting at p[0] == '"', or len if unclosed. */
static size_t quoted_end(const char *p, size_t len)
{
	for (size_t i = 1; i < len; i++) {
		if (p[i] == '\\')
			i++;
		else if (p[i] == '"')
			return i + 1;
	}
	return len;
}

/* Offset of the last ';' outside comments and quoted strings, or len. */
static size_t date_split(const char *v, size_t len)
{
	size_t semi = len;
	bool unb = false;

	for (size_t i = 0; i < len;) {
		if (v[i] == '(') {
			i += comment_end(v + i, len - i, &unb);
		} else if (v[i] == '"') {
			i += quoted_end(v + i, len - i);
		} else {
			if (v[i] == ';')
				semi = i;
			i++;
		}
	}
	return semi;
}

void mxs_received_parse(const char *v, size_t len, struct mxs_rcvd_hop *h)
{
	struct evidence ev = { 0 };
	enum clause cur = C_NONE;
	bool want_value = false, seen[C_LAST] = { false }, after_tls = false, ms = false;
	bool unbalanced = false;
	size_t semi = date_split(v, len), i = 0;

	memset(h, 0, sizeof(*h));
	if (semi < len) {
		size_t a = semi + 1, b = len;
		while (a < b && is_wsp(v[a]))
			a++;
		while (b > a && is_wsp(v[b - 1]))
			b--;
		set(h->date, sizeof(h->date), v + a, b - a, &h->flags);
	}
	if (h->date[0] == '\0')
		h->flags |= MXS_RCVD_NO_DATE;

	while (i < semi) {
		size_t cap, start;
		char *field;

		if (is_wsp(v[i])) {
			i++;
			continue;
		}
		start = i;
		field = clause_field(h, cur, &cap);
		if (v[i] == '(') {
			bool unb = false;
			size_t end = comment_end(v + i, semi - i, &unb);
			size_t inner_end = unb ? semi : start + end - 1;
			struct span c = { v + start + 1, inner_end - (start + 1) };
			struct evidence e = { 0 };

			i = start + end;
			unbalanced |= unb;
			if (tls_comment(c, cur == C_WITH, ms, &e)) {
				if (e.rule != MXS_RCVD_RULE_NONE && ev.rule == MXS_RCVD_RULE_NONE) {
					ev.rule = e.rule;
					ev.version = e.version;
					ev.cipher = e.cipher;
				}
				if (e.exim_version.n > 0 && ev.exim_version.n == 0)
					ev.exim_version = e.exim_version;
				continue;
			}
			/* with holds the keyword alone: "(Exim 4.96)", "(envelope-from <..>)" and
			 * the like after it are dropped */
			if (field != NULL && !want_value && cur != C_WITH)
				put(field, cap, v + start, i - start, &h->flags);
			after_tls = false;
			continue;
		}
		if (v[i] == '"')
			i += quoted_end(v + i, semi - i);
		else
			while (i < semi && !is_wsp(v[i]) && v[i] != '(')
				i++;

		struct span w = { v + start, i - start };
		enum clause k = want_value ? C_NONE : keyword(w);
		if (k != C_NONE) {
			cur = k;
			want_value = true;
			seen[k] = true;
			after_tls = false;
			continue;
		}
		if (want_value) {
			if (field != NULL && field[0] == '\0')
				put(field, cap, w.p, w.n, &h->flags);
			want_value = false;
			ms = cur == C_WITH && span_eq(w, "Microsoft");
			continue;
		}
		if (cur == C_WITH) {
			if (after_tls) {
				if (ev.exim_cipher.n == 0)
					ev.exim_cipher = w;
				after_tls = false;
				continue;
			}
			if (span_eq(w, "tls")) {
				after_tls = true;
				continue;
			}
			/* "Microsoft SMTP Server": the words belong to the keyword; other words
			 * after the keyword are dropped like the comments */
			if (ms)
				put(h->with, sizeof(h->with), w.p, w.n, &h->flags);
			continue;
		}
		if (field != NULL)
			put(field, cap, w.p, w.n, &h->flags);
	}

	if (unbalanced)
		h->flags |= MXS_RCVD_UNBALANCED;
	if (!seen[C_FROM])
		h->flags |= MXS_RCVD_NO_FROM;
	if (!seen[C_BY])
		h->flags |= MXS_RCVD_NO_BY;

	/* the with keyword is its first word (or "Microsoft SMTP Server") */
	{
		char kw[sizeof(h->with)];
		size_t n = strcspn(h->with, " ");
		memcpy(kw, h->with, n);
		kw[n] = '\0';
		h->with_tls = mxs_rcvd_with_tls(kw);
		ms = strncasecmp(h->with, "Microsoft SMTP", 14) == 0;
	}

	enum mxs_rcvd_rule rule = ev.rule;
	struct span ver = ev.version, ciph = ev.cipher;
	if (rule == MXS_RCVD_RULE_NONE && (ev.exim_version.n > 0 || ev.exim_cipher.n > 0)) {
		rule = MXS_RCVD_RULE_EXIM;
		ver = ev.exim_version;
		ciph = ev.exim_cipher;
	}
	if (rule != MXS_RCVD_RULE_NONE) {
		if (ver.n > 0)
			put_version(h, ver);
		if (ciph.n > 0)
			set(h->cipher, sizeof(h->cipher), ciph.p, ciph.n, &h->flags);
		/* Sendmail before 8.15 wrote "with ESMTP" under its TLS comment: no contradiction */
		if (h->with_tls == MXS_RCVD_TLS_NO && rule != MXS_RCVD_RULE_SENDMAIL) {
			h->flags |= MXS_RCVD_CONFLICT;
			h->rule = MXS_RCVD_RULE_CONFLICT;
			h->tls = MXS_RCVD_TLS_UNKNOWN;
		} else {
			h->rule = rule;
			h->tls = MXS_RCVD_TLS_YES;
		}
	} else if (h->with_tls != MXS_RCVD_TLS_UNKNOWN) {
		h->rule = MXS_RCVD_RULE_WITH;
		h->tls = h->with_tls;
	} else if (ms) {
		/* Exchange names the protocol and cipher whenever TLS was used */
		h->rule = MXS_RCVD_RULE_MICROSOFT;
		h->tls = MXS_RCVD_TLS_NO;
	}
}

/* ---- header sections */

static bool field_name(const char *p, size_t n, size_t *nlen)
{
	size_t i = 0;

	while (i < n && p[i] != ':') {
		unsigned char c = (unsigned char)p[i];
		if (c <= ' ' || c >= 127)
			return false;
		i++;
	}
	if (i == 0 || i == n)
		return false;
	*nlen = i;
	return true;
}

struct acc {
	char *buf;
	size_t len, cap;
};

static int acc_put(struct acc *a, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r' || p[i] == '\n')
			continue;
		if (a->len + 1 >= a->cap) {
			size_t cap = a->cap ? a->cap * 2 : 256;
			char *b = realloc(a->buf, cap);
			if (b == NULL)
				return -1;
			a->buf = b;
			a->cap = cap;
		}
		a->buf[a->len++] = p[i];
	}
	return 0;
}

/* Deliver the field gathered so far; its value trimmed. Returns cb's result. */
static int flush(struct acc *a, const char *name, size_t nlen, mxs_header_cb cb, void *arg)
{
	size_t s = 0, e = a->len;

	if (name == NULL)
		return 0;
	while (s < e && (a->buf[s] == ' ' || a->buf[s] == '\t'))
		s++;
	while (e > s && (a->buf[e - 1] == ' ' || a->buf[e - 1] == '\t'))
		e--;
	return cb(arg, name, nlen, a->len ? a->buf + s : "", e - s);
}

size_t mxs_headers_each(const char *msg, size_t len, mxs_header_cb cb, void *arg)
{
	struct acc a = { 0 };
	const char *name = NULL;
	size_t nlen = 0, pos = 0;
	int stop = 0;

	while (pos < len && !stop) {
		const char *nl = memchr(msg + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - msg) + 1 : len;
		size_t n = end - pos;
		const char *line = msg + pos;
		size_t content = n;

		while (content > 0 && (line[content - 1] == '\n' || line[content - 1] == '\r'))
			content--;
		pos = end;
		if (content == 0) {
			break;                     /* the empty line ends the header */
		}
		if (line[0] == ' ' || line[0] == '\t') {
			if (name != NULL && acc_put(&a, line, content) < 0)
				goto oom;
			continue;
		}
		stop = flush(&a, name, nlen, cb, arg);
		name = NULL;
		a.len = 0;
		if (!stop && field_name(line, content, &nlen)) {
			name = line;
			if (acc_put(&a, line + nlen + 1, content - nlen - 1) < 0)
				goto oom;
		}
	}
	if (!stop)
		flush(&a, name, nlen, cb, arg);
	free(a.buf);
	return pos;
oom:
	free(a.buf);
	return (size_t)-1;
}

/* The first '<' of v outside quoted strings and comments (an angle-addr), or NULL. */
static const char *angle_start(const char *v, size_t len)
{
	bool unb = false;

	for (size_t i = 0; i < len;) {
		if (v[i] == '"')
			i += quoted_end(v + i, len - i);
		else if (v[i] == '(')
			i += comment_end(v + i, len - i, &unb);
		else if (v[i] == '<')
			return v + i;
		else
			i++;
	}
	return NULL;
}

int mxs_header_addr_domain(const char *v, size_t len, char *out, size_t outlen)
{
	/* a '<' in a display name ("PayPal <x@paypal.example>" <a@b.example>) is not the address */
	const char *lt = angle_start(v, len), *p, *end = v + len, *at = NULL;
	size_t k = 0;

	if (outlen > 0)
		out[0] = '\0';   /* nothing kept on failure: "root@localhost" is no domain */
	if (lt != NULL) {
		const char *gt = memchr(lt, '>', (size_t)(end - lt));
		p = lt + 1;
		end = gt ? gt : end;
	} else {
		p = v;
	}
	/* the first '@' outside quotes and comments */
	for (const char *q = p; q < end && at == NULL; q++) {
		if (*q == '"') {
			q += quoted_end(q, (size_t)(end - q)) - 1;
		} else if (*q == '(') {
			bool unb = false;
			q += comment_end(q, (size_t)(end - q), &unb) - 1;
		} else if (*q == '@') {
			at = q;
		}
	}
	if (at == NULL || outlen == 0)
		return -1;
	for (p = at + 1; p < end && k + 1 < outlen; p++) {
		unsigned char c = (unsigned char)*p;
		if (!(isalnum(c) || c == '.' || c == '-' || c >= 0x80))
			break;
		out[k++] = (char)(c < 0x80 ? tolower(c) : c);
	}
	while (k > 0 && out[k - 1] == '.')
		k--;
	out[k] = '\0';
	if (k > 0 && strchr(out, '.') != NULL)
		return 0;
	out[0] = '\0';
	return -1;
}
