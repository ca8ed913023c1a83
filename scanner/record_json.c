/* The record as one JSON line, field for field as docs/record.md lists them. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "esc.h"
#include "record.h"
#include "timeutil.h"

/*
 * A JSON string, or null for NULL. Strings that are not valid UTF-8 (only possible if a
 * caller forgot to escape remote bytes) are escaped rather than dropped.
 */
static json_t *jstr(const char *s)
{
	json_t *j;
	char *e;

	if (s == NULL)
		return json_null();
	if ((j = json_string(s)) != NULL)
		return j;
	e = mxs_esc_encode(s, strlen(s), NULL);
	j = json_string(e ? e : "");
	free(e);
	return j;
}

static json_t *jstrv(const struct strv *sv)
{
	json_t *a = json_array();
	for (size_t i = 0; i < sv->n; i++)
		json_array_append_new(a, jstr(sv->v[i]));
	return a;
}

static json_t *jint_or_null(int64_t v)
{
	return v < 0 ? json_null() : json_integer(v);
}

static json_t *reply_json(const struct mxs_reply_rec *rr)
{
	if (!rr->present)
		return json_null();
	return json_pack("{s:i, s:o}", "code", rr->code, "lines", jstrv(&rr->lines));
}

static json_t *ehlo_json(const struct mxs_ehlo_rec *e)
{
	json_t *o = reply_json(&e->reply);
	if (json_is_null(o))
		return o;
	json_object_set_new(o, "verb", json_string(e->verb));
	json_object_set_new(o, "extensions", jstrv(&e->extensions));
	return o;
}

static json_t *cert_json(const struct mxs_cert_rec *c, size_t pos)
{
	return json_pack("{s:I, s:s, s:o, s:o, s:o, s:s, s:s, s:o, s:o, s:i, s:o}",
			 "pos", (json_int_t)pos, "sha256", c->sha256, "subject", jstr(c->subject),
			 "issuer", jstr(c->issuer), "sans", jstrv(&c->sans),
			 "not_before", c->not_before, "not_after", c->not_after,
			 "serial", jstr(c->serial), "key_type", jstr(c->key_type),
			 "key_bits", c->key_bits, "sig_alg", jstr(c->sig_alg));
}

static json_t *tls_json(const struct mxs_tls_rec *t)
{
	json_t *o, *chain, *dane;

	if (t == NULL)
		return json_null();
	chain = json_array();
	for (size_t i = 0; i < t->nchain; i++)
		json_array_append_new(chain, cert_json(&t->chain[i], i));
	dane = t->dane_present
		? json_pack("{s:i, s:b, s:b, s:o}", "tlsa", t->dane_tlsa, "dnssec", t->dane_dnssec,
			    "match", t->dane_match, "depth", jint_or_null(t->dane_depth))
		: json_null();
	o = json_pack("{s:s, s:o, s:o, s:i, s:b, s:o, s:o, s:o, s:o, s:I, s:o, s:b}",
		      "version", t->version, "cipher", jstr(t->cipher),
		      "cipher_openssl", jstr(t->cipher_openssl), "cipher_bits", t->cipher_bits,
		      "forward_secrecy", t->forward_secrecy, "kex", jstr(t->kex),
		      "kex_group", jstr(t->kex_group), "kex_bits", jint_or_null(t->kex_bits ? t->kex_bits : -1),
		      "sig_alg", jstr(t->sig_alg), "verify_code", (json_int_t)t->verify_code,
		      "verify_reason", jstr(t->verify_reason), "trusted", t->trusted);
	json_object_set_new(o, "name_match", t->name_match < 0 ? json_null() : json_boolean(t->name_match));
	json_object_set_new(o, "matched_names", jstrv(&t->matched_names));
	json_object_set_new(o, "expired", json_boolean(t->expired));
	json_object_set_new(o, "not_yet_valid", json_boolean(t->not_yet_valid));
	json_object_set_new(o, "self_signed", json_boolean(t->self_signed));
	json_object_set_new(o, "dane", dane);
	json_object_set_new(o, "chain", chain);
	return o;
}

static json_t *timing_json(const struct mxs_record *r)
{
	static const char *const names[MXS_T_LAST] = {
		[MXS_T_CONNECT] = "connect", [MXS_T_GREETING] = "greeting",
		[MXS_T_EHLO] = "ehlo", [MXS_T_STARTTLS] = "starttls",
		[MXS_T_HANDSHAKE] = "handshake", [MXS_T_EHLO_TLS] = "ehlo_tls",
		[MXS_T_TOTAL] = "total",
	};
	json_t *o = json_object();
	for (int i = 0; i < MXS_T_LAST; i++)
		json_object_set_new(o, names[i], jint_or_null(r->timing[i]));
	return o;
}

static json_t *transcript_json(const struct mxs_record *r)
{
	json_t *a = json_array();
	for (size_t i = 0; i < r->ntranscript; i++) {
		const struct mxs_transcript_ent *e = &r->transcript[i];
		char dir[2] = { e->dir, '\0' };
		json_t *o = json_pack("{s:s, s:I, s:o}", "dir", dir, "t", (json_int_t)e->t_ms,
				      "data", jstr(e->data));
		if (e->tls)
			json_object_set_new(o, "tls", json_true());
		if (e->truncated)
			json_object_set_new(o, "truncated", json_true());
		json_array_append_new(a, o);
	}
	return a;
}

char *mxs_record_to_json(const struct mxs_record *r, size_t *len)
{
	char start[40];
	json_t *o;
	char *s;

	mxs_fmt_rfc3339_ms(r->start_ms, start, sizeof(start));
	o = json_pack("{s:s, s:i, s:s, s:i, s:o, s:o, s:o}", "type", "result", "v", 1, "ip", r->ip,
		      "port", r->port, "mx", jstr(r->mx), "mx_names", jstrv(&r->mx_names),
		      "domains", jstrv(&r->domains));
	if (o == NULL)
		return NULL;
	if (r->input != NULL)
		json_object_set_new(o, "input", jstr(r->input));
	json_object_set_new(o, "start", json_string(start));
	json_object_set_new(o, "outcome", json_string(mxs_outcome_names[r->outcome]));
	json_object_set_new(o, "phase", json_string(mxs_phase_names[r->phase]));
	json_object_set_new(o, "detail", jstr(r->detail ? r->detail : ""));
	json_object_set_new(o, "attempts", json_integer(r->attempts));
	json_object_set_new(o, "ehlo_name", jstr(r->ehlo_name));
	json_object_set_new(o, "profile", jstr(r->profile));
	json_object_set_new(o, "greeting", reply_json(&r->greeting));
	json_object_set_new(o, "ehlo", ehlo_json(&r->ehlo));
	json_object_set_new(o, "starttls", reply_json(&r->starttls));
	json_object_set_new(o, "tls", tls_json(r->tls));
	json_object_set_new(o, "ehlo_tls", ehlo_json(&r->ehlo_tls));
	json_object_set_new(o, "tamper",
			    json_pack("{s:o, s:b, s:I}", "mangled_starttls", jstr(r->mangled_starttls),
				      "starttls_echo", r->starttls_echo, "plaintext_after_starttls",
				      (json_int_t)r->plaintext_after_starttls));
	json_object_set_new(o, "timing_ms", timing_json(r));
	if (r->keep_transcript)
		json_object_set_new(o, "transcript", transcript_json(r));
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (s != NULL && len != NULL)
		*len = strlen(s);
	return s;
}
