/*
 * Domain lines (docs/targets.md) to domains and domain_mx rows. There is one domain line
 * per domain, few next to the result lines, so this path uses jansson for clarity.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rowconv_int.h"

/* ---- the extra object: values kept under their dotted path ---- */

struct extra {
	json_t *obj;   /* owned; NULL until the first value */
	int oom;
};

static void extra_set(struct extra *x, const char *prefix, const char *key, json_t *v)
{
	char path[256];
	if (x->obj == NULL && (x->obj = json_object()) == NULL) {
		x->oom = 1;
		return;
	}
	snprintf(path, sizeof(path), "%s%s", prefix, key);
	if (json_object_set(x->obj, path, v) != 0)
		x->oom = 1;
}

static void put_extra(struct copybuf *b, struct extra *x)
{
	if (x->obj == NULL) {
		cb_null(b);
		return;
	}
	char *s = json_dumps(x->obj, JSON_COMPACT | JSON_SORT_KEYS);
	if (s == NULL) {
		b->oom = 1;
		return;
	}
	cb_text(b, s, strlen(s));
	free(s);
}

/* ---- typed field writers: each writes one field, or NULL plus an extra entry ---- */

static int int_in(json_t *v, int64_t lo, int64_t hi)
{
	return json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi;
}

static void put_int(struct copybuf *b, json_t *v, int64_t lo, int64_t hi, struct extra *x,
                    const char *prefix, const char *key)
{
	if (v == NULL || json_is_null(v)) {
		cb_null(b);
	} else if (int_in(v, lo, hi)) {
		cb_int(b, json_integer_value(v));
	} else {
		cb_null(b);
		extra_set(x, prefix, key, v);
	}
}

static void put_strings(struct copybuf *b, json_t *v, int esc, struct extra *x,
                        const char *prefix, const char *key)
{
	size_t i;
	json_t *e;

	if (v == NULL || json_is_null(v)) {
		cb_null(b);
		return;
	}
	if (!json_is_array(v)) {
		cb_null(b);
		extra_set(x, prefix, key, v);
		return;
	}
	json_array_foreach(v, i, e) {
		if (!json_is_string(e)) {
			cb_null(b);
			extra_set(x, prefix, key, v);
			return;
		}
	}
	cb_array_begin(b);
	json_array_foreach(v, i, e) {
		if (esc)
			rc_put_esc(b, json_string_value(e), json_string_length(e), 1);
		else
			cb_array_text(b, json_string_value(e), json_string_length(e));
	}
	cb_array_end(b);
}

static void put_jsonb(struct copybuf *b, json_t *v)
{
	if (v == NULL || json_is_null(v)) {
		cb_null(b);
		return;
	}
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (s == NULL) {
		b->oom = 1;
		return;
	}
	cb_text(b, s, strlen(s));
	free(s);
}

static void put_opt_string(struct copybuf *b, json_t *obj, const char *key, struct extra *x,
                           const char *prefix)
{
	json_t *v = obj ? json_object_get(obj, key) : NULL;
	if (v == NULL || json_is_null(v)) {
		cb_null(b);
	} else if (json_is_string(v)) {
		cb_text(b, json_string_value(v), json_string_length(v));
	} else {
		cb_null(b);
		extra_set(x, prefix, key, v);
	}
}

static void put_opt_bool(struct copybuf *b, json_t *obj, const char *key, struct extra *x,
                         const char *prefix)
{
	json_t *v = obj ? json_object_get(obj, key) : NULL;
	if (v == NULL || json_is_null(v)) {
		cb_null(b);
	} else if (json_is_boolean(v)) {
		cb_bool(b, json_is_true(v));
	} else {
		cb_null(b);
		extra_set(x, prefix, key, v);
	}
}

/* An escape-form string of obj (docs/targets.md "(esc)"), kept decodable byte for byte. */
static void put_opt_esc(struct copybuf *b, json_t *obj, const char *key, struct extra *x,
                        const char *prefix)
{
	json_t *v = obj ? json_object_get(obj, key) : NULL;
	if (v == NULL || json_is_null(v)) {
		cb_null(b);
	} else if (json_is_string(v)) {
		rc_put_esc(b, json_string_value(v), json_string_length(v), 0);
	} else {
		cb_null(b);
		extra_set(x, prefix, key, v);
	}
}

/* Does obj have a key outside the n names of known? */
static int has_unknown_key(json_t *obj, const char *const *known, size_t n)
{
	const char *key;
	json_t *v;
	if (obj == NULL)
		return 0;
	json_object_foreach(obj, key, v) {
		size_t i = 0;
		while (i < n && strcmp(key, known[i]) != 0)
			i++;
		if (i == n)
			return 1;
	}
	return 0;
}

static enum rowconv_kind convert(int64_t scan_id, json_t *root, struct rowbufs *out,
                                 const char **why)
{
	static const char *const dom_keys[] = { "type", "domain", "rank", "status", "dnssec",
		"mx", "mta_sts", "tlsrpt" };
	static const char *const mx_keys[] = { "host", "pref", "cname", "status", "addrs",
		"tlsa", "tlsa_dnssec", "tlsa_status" };
	struct extra x = { 0 };
	struct copybuf *b = &out->domains, *m = &out->domain_mx;
	size_t mark = b->len, mxmark = m->len;
	json_t *jdom = json_object_get(root, "domain");
	json_t *jstatus = json_object_get(root, "status");
	json_t *mx = json_object_get(root, "mx");
	json_t *sts = json_object_get(root, "mta_sts");
	json_t *rpt = json_object_get(root, "tlsrpt");
	json_t *policy = json_is_object(sts) ? json_object_get(sts, "policy") : NULL;
	const char *key;
	json_t *v;
	size_t i;

	if (!json_is_string(jdom) || json_string_length(jdom) == 0) {
		*why = "domain line without a domain";
		return ROWCONV_REJECT;
	}
	if (!json_is_object(sts))
		sts = NULL;
	if (!json_is_object(rpt))
		rpt = NULL;
	if (!json_is_object(policy))
		policy = NULL;

	cb_int(b, scan_id);
	cb_text(b, json_string_value(jdom), json_string_length(jdom));
	put_int(b, json_object_get(root, "rank"), INT32_MIN, INT32_MAX, &x, "", "rank");
	/* status is NOT NULL: a missing one is stored as "unknown" and kept in extra */
	if (json_is_string(jstatus)) {
		cb_text(b, json_string_value(jstatus), json_string_length(jstatus));
	} else {
		cb_str(b, "unknown");
		if (jstatus != NULL)
			extra_set(&x, "", "status", jstatus);
	}
	put_opt_bool(b, root, "dnssec", &x, "");
	put_opt_esc(b, sts, "txt", &x, "mta_sts.");
	put_opt_string(b, sts, "id", &x, "mta_sts.");
	put_opt_string(b, sts, "status", &x, "mta_sts.");
	put_opt_string(b, sts, "error", &x, "mta_sts.");
	put_opt_bool(b, sts, "dnssec", &x, "mta_sts.");
	put_opt_string(b, policy, "status", &x, "mta_sts.policy.");
	put_opt_string(b, policy, "mode", &x, "mta_sts.policy.");
	put_int(b, policy ? json_object_get(policy, "max_age") : NULL, INT64_MIN, INT64_MAX, &x,
	        "mta_sts.policy.", "max_age");
	put_strings(b, policy ? json_object_get(policy, "mx") : NULL, 0, &x, "mta_sts.policy.", "mx");
	put_opt_bool(b, policy, "mx_match", &x, "mta_sts.policy.");
	put_opt_string(b, policy, "error", &x, "mta_sts.policy.");
	put_opt_esc(b, rpt, "txt", &x, "tlsrpt.");
	put_strings(b, rpt ? json_object_get(rpt, "rua") : NULL, 1, &x, "tlsrpt.", "rua");
	put_opt_string(b, rpt, "status", &x, "tlsrpt.");
	put_opt_string(b, rpt, "error", &x, "tlsrpt.");
	put_opt_bool(b, rpt, "dnssec", &x, "tlsrpt.");

	/* unknown fields at each level, and objects of the wrong type, kept whole */
	json_object_foreach(root, key, v) {
		int known = 0;
		for (size_t k = 0; k < sizeof(dom_keys) / sizeof(dom_keys[0]); k++)
			known |= strcmp(key, dom_keys[k]) == 0;
		if (!known)
			extra_set(&x, "", key, v);
	}
	if (json_object_get(root, "mta_sts") != NULL && sts == NULL &&
	    !json_is_null(json_object_get(root, "mta_sts")))
		extra_set(&x, "", "mta_sts", json_object_get(root, "mta_sts"));
	if (json_object_get(root, "tlsrpt") != NULL && rpt == NULL &&
	    !json_is_null(json_object_get(root, "tlsrpt")))
		extra_set(&x, "", "tlsrpt", json_object_get(root, "tlsrpt"));
	static const char *const sts_keys[] = { "txt", "id", "status", "error", "dnssec", "policy" };
	static const char *const policy_keys[] = { "status", "mode", "max_age", "mx", "mx_match",
		"error" };
	static const char *const rpt_keys[] = { "txt", "rua", "status", "error", "dnssec" };
	if (has_unknown_key(sts, sts_keys, sizeof(sts_keys) / sizeof(sts_keys[0])) ||
	    has_unknown_key(policy, policy_keys, sizeof(policy_keys) / sizeof(policy_keys[0])))
		extra_set(&x, "", "mta_sts", sts);
	if (has_unknown_key(rpt, rpt_keys, sizeof(rpt_keys) / sizeof(rpt_keys[0])))
		extra_set(&x, "", "tlsrpt", rpt);

	/* one domain_mx row per MX host; anything that does not fit keeps the whole mx list */
	int mx_lossy = mx != NULL && !json_is_null(mx) && !json_is_array(mx);
	json_t *e;
	json_array_foreach(mx, i, e) {
		json_t *host = json_object_get(e, "host");
		if (!json_is_object(e) || !json_is_string(host)) {
			mx_lossy = 1;
			continue;
		}
		struct extra mx_extra = { 0 };
		cb_int(m, scan_id);
		cb_text(m, json_string_value(jdom), json_string_length(jdom));
		cb_text(m, json_string_value(host), json_string_length(host));
		put_int(m, json_object_get(e, "pref"), INT32_MIN, INT32_MAX, &mx_extra, "", "pref");
		put_opt_string(m, e, "cname", &mx_extra, "");
		put_opt_string(m, e, "status", &mx_extra, "");
		json_t *addrs = json_object_get(e, "addrs");
		size_t j;
		json_t *a;
		cb_array_begin(m);
		json_array_foreach(addrs, j, a) {
			if (json_is_string(a) && rc_valid_ip(json_string_value(a), json_string_length(a)))
				cb_array_text(m, json_string_value(a), json_string_length(a));
			else
				mx_lossy = 1;
		}
		cb_array_end(m);
		if (addrs != NULL && !json_is_array(addrs))
			mx_lossy = 1;
		put_jsonb(m, json_object_get(e, "tlsa"));
		put_opt_bool(m, e, "tlsa_dnssec", &mx_extra, "");
		put_opt_string(m, e, "tlsa_status", &mx_extra, "");
		cb_end_row(m);
		size_t nk = 0;
		for (size_t k = 0; k < sizeof(mx_keys) / sizeof(mx_keys[0]); k++)
			nk += json_object_get(e, mx_keys[k]) != NULL;
		mx_lossy |= mx_extra.obj != NULL || nk != json_object_size(e);
		json_decref(mx_extra.obj);
	}
	if (mx_lossy)
		extra_set(&x, "", "mx", mx);

	put_extra(b, &x);
	cb_end_row(b);
	json_decref(x.obj);
	if (x.oom || rc_any_oom(out)) {
		b->len = mark;
		m->len = mxmark;
		return ROWCONV_NOMEM;
	}
	out->n_domains++;
	return ROWCONV_DOMAIN;
}


enum rowconv_kind rc_convert_domain(int64_t scan_id, const char *line, size_t len,
                                    struct rowbufs *out, const char **why)
{
	json_error_t jerr;
	json_t *root = json_loadb(line, len, 0, &jerr);
	if (root == NULL) {
		*why = "not JSON";
		return ROWCONV_REJECT;
	}
	enum rowconv_kind k = convert(scan_id, root, out, why);
	json_decref(root);
	return k;
}

