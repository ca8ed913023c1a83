#include "policy_txt.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static const char *const result_names[MXS_TXT_RESULT_LAST] = {
	[MXS_TXT_OK] = "ok",
	[MXS_TXT_OTHER] = "other",
	[MXS_TXT_BAD_SYNTAX] = "bad-syntax",
	[MXS_TXT_MISSING_ID] = "missing-id",
	[MXS_TXT_BAD_ID] = "bad-id",
	[MXS_TXT_MISSING_RUA] = "missing-rua",
	[MXS_TXT_BAD_RUA] = "bad-rua",
	[MXS_TXT_DUPLICATE] = "duplicate-field",
};

const char *mxs_txt_result_name(enum mxs_txt_result r)
{
	return (unsigned)r < MXS_TXT_RESULT_LAST ? result_names[r] : "?";
}

/* A field "name=value" of a ';'-separated record, both spans into the input. */
struct field {
	const char *name, *value;
	size_t nlen, vlen;
};

/*
 * Split the next field at *pos: skip WSP and ';' delimiters, read name up to '=' and the
 * value up to the next ';'. Trailing WSP of the value is dropped (the ABNF allows WSP
 * around the delimiter). Returns 1 with a field, 0 at the end, -1 on a field with no '='.
 */
static int next_field(const char *s, size_t len, size_t *pos, struct field *f)
{
	size_t i = *pos;

	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == ';'))
		i++;
	if (i >= len)
		return 0;
	f->name = s + i;
	while (i < len && s[i] != '=' && s[i] != ';')
		i++;
	if (i >= len || s[i] != '=')
		return -1;
	f->nlen = (size_t)(s + i - f->name);
	f->value = s + ++i;
	while (i < len && s[i] != ';')
		i++;
	f->vlen = (size_t)(s + i - f->value);
	while (f->vlen && (f->value[f->vlen - 1] == ' ' || f->value[f->vlen - 1] == '\t'))
		f->vlen--;
	*pos = i;
	return 1;
}

static int field_is(const struct field *f, const char *name)
{
	return f->nlen == strlen(name) && memcmp(f->name, name, f->nlen) == 0;
}

/* Extension names: (ALPHA / DIGIT) 0*31(ALPHA / DIGIT / "_" / "-" / ".") */
static int ext_name_ok(const struct field *f)
{
	if (f->nlen == 0 || f->nlen > 32 || !isalnum((unsigned char)f->name[0]))
		return 0;
	for (size_t i = 1; i < f->nlen; i++) {
		unsigned char c = (unsigned char)f->name[i];
		if (!isalnum(c) && c != '_' && c != '-' && c != '.')
			return 0;
	}
	return 1;
}

/* Extension values: 1*(%x21-3A / %x3C / %x3E-7E), i.e. visible ASCII but ';' and '='. */
static int ext_value_ok(const struct field *f)
{
	if (f->vlen == 0)
		return 0;
	for (size_t i = 0; i < f->vlen; i++) {
		unsigned char c = (unsigned char)f->value[i];
		if (c < 0x21 || c > 0x7e || c == ';' || c == '=')
			return 0;
	}
	return 1;
}

/* The version tag must be the first field and exactly "v=<tag>", then a delimiter or end. */
static int has_tag(const char *txt, size_t len, const char *tag)
{
	size_t n = strlen(tag);

	if (len < n || memcmp(txt, tag, n) != 0)
		return 0;
	return len == n || txt[n] == ';' || txt[n] == ' ' || txt[n] == '\t';
}

int mxs_sts_txt_is_sts(const char *txt, size_t len)
{
	return has_tag(txt, len, "v=STSv1");
}

int mxs_tlsrpt_txt_is_tlsrpt(const char *txt, size_t len)
{
	return has_tag(txt, len, "v=TLSRPTv1");
}

/* A field after the version tag must follow a ';' (no "v=STSv1 id=x"), blanks aside. */
static int after_delimiter(const char *txt, const struct field *f)
{
	const char *before = f->name - 1;

	while (before > txt && (*before == ' ' || *before == '\t'))
		before--;
	return *before == ';';
}

enum mxs_txt_result mxs_sts_txt_parse(const char *txt, size_t len, struct mxs_sts_txt *out)
{
	size_t pos = strlen("v=STSv1");
	struct field f;
	int r, have_id = 0;

	memset(out, 0, sizeof(*out));
	if (!mxs_sts_txt_is_sts(txt, len))
		return MXS_TXT_OTHER;
	while ((r = next_field(txt, len, &pos, &f)) == 1) {
		if (!after_delimiter(txt, &f))
			return MXS_TXT_BAD_SYNTAX;
		if (field_is(&f, "id")) {
			if (have_id)
				return MXS_TXT_DUPLICATE;
			have_id = 1;
			if (f.vlen == 0 || f.vlen > 32)
				return MXS_TXT_BAD_ID;
			for (size_t i = 0; i < f.vlen; i++)
				if (!isalnum((unsigned char)f.value[i]))
					return MXS_TXT_BAD_ID;
			memcpy(out->id, f.value, f.vlen);
			out->id[f.vlen] = '\0';
		} else if (field_is(&f, "v")) {
			return MXS_TXT_DUPLICATE;
		} else if (!ext_name_ok(&f) || !ext_value_ok(&f)) {
			return MXS_TXT_BAD_SYNTAX;
		}
	}
	if (r < 0)
		return MXS_TXT_BAD_SYNTAX;
	return have_id ? MXS_TXT_OK : MXS_TXT_MISSING_ID;
}

/* A rua URI: mailto: or https: (RFC 8460 3), then visible ASCII without ',' or ';'. */
static int rua_ok(const char *p, size_t len)
{
	size_t scheme;

	if (len > 7 && strncasecmp(p, "mailto:", 7) == 0)
		scheme = 7;
	else if (len > 8 && strncasecmp(p, "https:", 6) == 0)
		scheme = 6;
	else
		return 0;
	for (size_t i = scheme; i < len; i++)
		if (p[i] < 0x21 || p[i] > 0x7e)
			return 0;
	return 1;
}

enum mxs_txt_result mxs_tlsrpt_txt_parse(const char *txt, size_t len, struct mxs_tlsrpt_txt *out)
{
	size_t pos = strlen("v=TLSRPTv1");
	struct field f;
	int r, have_rua = 0;

	memset(out, 0, sizeof(*out));
	if (!mxs_tlsrpt_txt_is_tlsrpt(txt, len))
		return MXS_TXT_OTHER;
	while ((r = next_field(txt, len, &pos, &f)) == 1) {
		if (!after_delimiter(txt, &f))
			return MXS_TXT_BAD_SYNTAX;
		if (field_is(&f, "rua")) {
			if (have_rua)
				return MXS_TXT_DUPLICATE;
			have_rua = 1;
			/* tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri) */
			size_t i = 0;
			for (;;) {
				while (i < f.vlen && (f.value[i] == ' ' || f.value[i] == '\t'))
					i++;
				size_t start = i;
				while (i < f.vlen && f.value[i] != ',' && f.value[i] != ' ' &&
				       f.value[i] != '\t')
					i++;
				if (!rua_ok(f.value + start, i - start))
					return MXS_TXT_BAD_RUA;
				if (out->nrua < MXS_TLSRPT_RUA_MAX) {
					out->rua[out->nrua].p = f.value + start;
					out->rua[out->nrua].len = i - start;
					out->nrua++;
				}
				while (i < f.vlen && (f.value[i] == ' ' || f.value[i] == '\t'))
					i++;
				if (i >= f.vlen)
					break;
				if (f.value[i] != ',')
					return MXS_TXT_BAD_RUA;
				i++;
			}
		} else if (field_is(&f, "v")) {
			return MXS_TXT_DUPLICATE;
		} else if (!ext_name_ok(&f) || !ext_value_ok(&f)) {
			return MXS_TXT_BAD_SYNTAX;
		}
	}
	if (r < 0)
		return MXS_TXT_BAD_SYNTAX;
	return have_rua ? MXS_TXT_OK : MXS_TXT_MISSING_RUA;
}
