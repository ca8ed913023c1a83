/*
 * The result record's fields, declared once (docs/record.md is their prose).
 *
 * One table drives the scanner's JSON writer (scanner/record_json.c) and ingest's COPY
 * row conversion (ingest/rowconv_result.c); tests/unit/test_fields.py checks it against
 * docs/record.md and the results table of sql/migrations. Order is the order of the keys
 * in the JSON line, and of the columns in the COPY row.
 *
 * MXS_RECORD_OBJECTS(O): O(ID, PARENT, "key", "path.", present)
 *   the JSON objects that hold fields; present is a C expression on the record r (and
 *   its TLS part t) that is 0 when the object is written as null, negative when its
 *   key is left out (support: absent when the legacy probes were not asked for).
 *
 * MXS_RECORD_FIELDS(K, X):
 *   K(name, OBJ, "key", json): a key of the row (type, ip, port), no column of its own;
 *   X(name, OBJ, "key", KIND, json): column <name> of the results table.
 *   json is a C expression on r and t giving the field's value as a new json_t *, or
 *   NULL to leave the key out; ingest never expands it.
 *
 * Kinds: TEXT any string; ESC string in the escape form; I16, I32 integers; BOOL;
 * TIME RFC 3339; TEXTS, ESCS arrays of those; JSONB any JSON stored as is; OUTCOME,
 * PHASE names of common/outcome.h stored as codes; TLSVER a TLS version stored as its
 * wire number; CHAIN the certificate chain (fingerprints, plus certificates rows).
 */
#ifndef MXS_RECORD_FIELDS_H
#define MXS_RECORD_FIELDS_H

#define MXS_RECORD_OBJECTS(O) \
	O(TOP, TOP, NULL, "", 1) \
	O(GREETING, TOP, "greeting", "greeting.", r->greeting.present) \
	O(EHLO, TOP, "ehlo", "ehlo.", r->ehlo.reply.present) \
	O(STARTTLS, TOP, "starttls", "starttls.", r->starttls.present) \
	O(TLS, TOP, "tls", "tls.", t != NULL) \
	O(DANE, TLS, "dane", "tls.dane.", t->dane_present) \
	O(EHLO_TLS, TOP, "ehlo_tls", "ehlo_tls.", r->ehlo_tls.reply.present) \
	O(AUTH, TOP, "auth", "auth.", r->auth.checked) \
	O(TAMPER, TOP, "tamper", "tamper.", 1) \
	O(SUPPORT, TOP, "support", "support.", r->support != NULL ? 1 : -1) \
	O(TIMING, TOP, "timing_ms", "timing_ms.", 1)

#define MXS_RECORD_FIELDS(K, X) \
	K(type, TOP, "type", json_string("result")) \
	X(v, TOP, "v", I16, json_integer(1)) \
	K(ip, TOP, "ip", json_string(r->ip)) \
	K(port, TOP, "port", json_integer(r->port)) \
	X(proto, TOP, "proto", TEXT, jstr(r->proto)) \
	X(mx, TOP, "mx", TEXT, jstr(r->mx)) \
	X(mx_names, TOP, "mx_names", TEXTS, jstrv(&r->mx_names)) \
	X(domains, TOP, "domains", TEXTS, jstrv(&r->domains)) \
	X(guessed, TOP, "guessed", BOOL, r->guessed ? json_true() : NULL) \
	X(input, TOP, "input", ESC, r->input ? jstr(r->input) : NULL) \
	X(start, TOP, "start", TIME, jtime(r->start_ms)) \
	X(outcome, TOP, "outcome", OUTCOME, json_string(mxs_outcome_names[r->outcome])) \
	X(phase, TOP, "phase", PHASE, json_string(mxs_phase_names[r->phase])) \
	X(detail, TOP, "detail", TEXT, jstr(r->detail ? r->detail : "")) \
	X(attempts, TOP, "attempts", I16, json_integer(r->attempts)) \
	X(ehlo_name, TOP, "ehlo_name", TEXT, jstr(r->ehlo_name)) \
	X(profile, TOP, "profile", TEXT, jstr(r->profile)) \
	X(greeting_code, GREETING, "code", I16, json_integer(r->greeting.code)) \
	X(greeting_lines, GREETING, "lines", ESCS, jstrv(&r->greeting.lines)) \
	X(ehlo_code, EHLO, "code", I16, json_integer(r->ehlo.reply.code)) \
	X(ehlo_lines, EHLO, "lines", ESCS, jstrv(&r->ehlo.reply.lines)) \
	X(ehlo_verb, EHLO, "verb", TEXT, jstr(r->ehlo.verb)) \
	X(ehlo_extensions, EHLO, "extensions", ESCS, jstrv(&r->ehlo.extensions)) \
	X(starttls_code, STARTTLS, "code", I16, json_integer(r->starttls.code)) \
	X(starttls_lines, STARTTLS, "lines", ESCS, jstrv(&r->starttls.lines)) \
	X(tls_version, TLS, "version", TLSVER, json_string(t->version)) \
	X(tls_cipher, TLS, "cipher", TEXT, jstr(t->cipher)) \
	X(tls_cipher_openssl, TLS, "cipher_openssl", TEXT, jstr(t->cipher_openssl)) \
	X(tls_cipher_bits, TLS, "cipher_bits", I16, json_integer(t->cipher_bits)) \
	X(tls_forward_secrecy, TLS, "forward_secrecy", BOOL, json_boolean(t->forward_secrecy)) \
	X(tls_kex, TLS, "kex", TEXT, jstr(t->kex)) \
	X(tls_kex_group, TLS, "kex_group", TEXT, jstr(t->kex_group)) \
	X(tls_kex_bits, TLS, "kex_bits", I32, jint_or_null(t->kex_bits ? t->kex_bits : -1)) \
	X(tls_sig_alg, TLS, "sig_alg", TEXT, jstr(t->sig_alg)) \
	X(tls_verify_code, TLS, "verify_code", I32, json_integer(t->verify_code)) \
	X(tls_verify_reason, TLS, "verify_reason", TEXT, jstr(t->verify_reason)) \
	X(tls_trusted, TLS, "trusted", BOOL, json_boolean(t->trusted)) \
	X(tls_name_match, TLS, "name_match", BOOL, t->name_match < 0 ? json_null() : json_boolean(t->name_match)) \
	X(tls_matched_names, TLS, "matched_names", TEXTS, jstrv(&t->matched_names)) \
	X(tls_expired, TLS, "expired", BOOL, json_boolean(t->expired)) \
	X(tls_not_yet_valid, TLS, "not_yet_valid", BOOL, json_boolean(t->not_yet_valid)) \
	X(tls_self_signed, TLS, "self_signed", BOOL, json_boolean(t->self_signed)) \
	X(dane_tlsa, DANE, "tlsa", I32, json_integer(t->dane_tlsa)) \
	X(dane_dnssec, DANE, "dnssec", BOOL, json_boolean(t->dane_dnssec)) \
	X(dane_match, DANE, "match", BOOL, json_boolean(t->dane_match)) \
	X(dane_depth, DANE, "depth", I16, jint_or_null(t->dane_depth)) \
	X(chain_sha256, TLS, "chain", CHAIN, chain_json(t)) \
	X(ehlo_tls_code, EHLO_TLS, "code", I16, json_integer(r->ehlo_tls.reply.code)) \
	X(ehlo_tls_lines, EHLO_TLS, "lines", ESCS, jstrv(&r->ehlo_tls.reply.lines)) \
	X(ehlo_tls_verb, EHLO_TLS, "verb", TEXT, jstr(r->ehlo_tls.verb)) \
	X(ehlo_tls_extensions, EHLO_TLS, "extensions", ESCS, jstrv(&r->ehlo_tls.extensions)) \
	X(auth_mechanisms, AUTH, "mechanisms", ESCS, jstrv(&r->auth.mechs)) \
	X(auth_login, AUTH, "login", BOOL, json_boolean(r->auth.login)) \
	X(auth_cleartext, AUTH, "cleartext", BOOL, json_boolean(r->auth.cleartext)) \
	X(auth_mechanisms_tls, AUTH, "mechanisms_tls", ESCS, jstrv(&r->auth.mechs_tls)) \
	X(auth_login_tls, AUTH, "login_tls", BOOL, json_boolean(r->auth.login_tls)) \
	X(tamper_mangled_starttls, TAMPER, "mangled_starttls", ESC, jstr(r->mangled_starttls)) \
	X(tamper_starttls_echo, TAMPER, "starttls_echo", BOOL, json_boolean(r->starttls_echo)) \
	X(tamper_plaintext_after_starttls, TAMPER, "plaintext_after_starttls", I32, json_integer(r->plaintext_after_starttls)) \
	X(support_sslv3, SUPPORT, "sslv3", BOOL, jbool3(r->support->version[MXS_SV_SSL3])) \
	X(support_tls1_0, SUPPORT, "tls1_0", BOOL, jbool3(r->support->version[MXS_SV_TLS10])) \
	X(support_tls1_1, SUPPORT, "tls1_1", BOOL, jbool3(r->support->version[MXS_SV_TLS11])) \
	X(support_tls1_2, SUPPORT, "tls1_2", BOOL, jbool3(r->support->version[MXS_SV_TLS12])) \
	X(support_tls1_3, SUPPORT, "tls1_3", BOOL, jbool3(r->support->version[MXS_SV_TLS13])) \
	X(support_rc4, SUPPORT, "rc4", BOOL, jbool3(r->support->cls[MXS_SC_RC4])) \
	X(support_3des, SUPPORT, "3des", BOOL, jbool3(r->support->cls[MXS_SC_3DES])) \
	X(support_export, SUPPORT, "export", BOOL, jbool3(r->support->cls[MXS_SC_EXPORT])) \
	X(support_null, SUPPORT, "null", BOOL, jbool3(r->support->cls[MXS_SC_NULL])) \
	X(support_anon, SUPPORT, "anon", BOOL, jbool3(r->support->cls[MXS_SC_ANON])) \
	X(support_cbc_only, SUPPORT, "cbc_only", BOOL, jbool3(r->support->cbc_only)) \
	X(support_prefer_sslv3, SUPPORT, "prefer_sslv3", TEXT, jstr(r->support->prefer[MXS_SV_SSL3])) \
	X(support_prefer_tls1_0, SUPPORT, "prefer_tls1_0", TEXT, jstr(r->support->prefer[MXS_SV_TLS10])) \
	X(support_prefer_tls1_1, SUPPORT, "prefer_tls1_1", TEXT, jstr(r->support->prefer[MXS_SV_TLS11])) \
	X(support_prefer_tls1_2, SUPPORT, "prefer_tls1_2", TEXT, jstr(r->support->prefer[MXS_SV_TLS12])) \
	X(support_prefer_tls1_3, SUPPORT, "prefer_tls1_3", TEXT, jstr(r->support->prefer[MXS_SV_TLS13])) \
	X(support_server_order, SUPPORT, "server_order", BOOL, jbool3(r->support->server_order)) \
	X(support_dhe_bits, SUPPORT, "dhe_bits", I32, jint_or_null(r->support->dhe_bits)) \
	X(support_groups, SUPPORT, "groups", TEXTS, r->support->groups_asked ? jstrv(&r->support->groups) : json_null()) \
	X(support_fallback_scsv, SUPPORT, "fallback_scsv", BOOL, jbool3(r->support->fallback_scsv)) \
	X(support_secure_renegotiation, SUPPORT, "secure_renegotiation", BOOL, jbool3(r->support->secure_reneg)) \
	X(support_starttls_injection, SUPPORT, "starttls_injection", BOOL, jbool3(r->support->injection)) \
	X(support_connections, SUPPORT, "connections", I16, json_integer(r->support->connections)) \
	X(support_budget, SUPPORT, "budget", I16, json_integer(r->support->budget)) \
	X(support_exhausted, SUPPORT, "exhausted", BOOL, json_boolean(r->support->exhausted)) \
	X(t_connect, TIMING, "connect", I32, jint_or_null(r->timing[MXS_T_CONNECT])) \
	X(t_greeting, TIMING, "greeting", I32, jint_or_null(r->timing[MXS_T_GREETING])) \
	X(t_ehlo, TIMING, "ehlo", I32, jint_or_null(r->timing[MXS_T_EHLO])) \
	X(t_starttls, TIMING, "starttls", I32, jint_or_null(r->timing[MXS_T_STARTTLS])) \
	X(t_handshake, TIMING, "handshake", I32, jint_or_null(r->timing[MXS_T_HANDSHAKE])) \
	X(t_ehlo_tls, TIMING, "ehlo_tls", I32, jint_or_null(r->timing[MXS_T_EHLO_TLS])) \
	X(t_total, TIMING, "total", I32, jint_or_null(r->timing[MXS_T_TOTAL])) \
	X(transcript, TOP, "transcript", JSONB, r->keep_transcript ? transcript_json(r) : NULL)


/*
 * The name line ("type": "name", docs/record.md): the verdict of one (MX name, address)
 * pair, stored in the result_names table. Same conventions as above; the expressions
 * read n, a const struct mxs_name_verdict * (scanner/record.h). SHA256 is a hex digest
 * stored as bytea. K entries are the row's key (type, ip, port, name).
 */
#define MXS_NAME_OBJECTS(O) \
	O(TOP, TOP, NULL, "", 1) \
	O(DANE, TOP, "dane", "dane.", n->dane_present)

#define MXS_NAME_FIELDS(K, X) \
	K(type, TOP, "type", json_string("name")) \
	X(v, TOP, "v", I16, json_integer(1)) \
	K(ip, TOP, "ip", json_string(n->ip)) \
	K(port, TOP, "port", json_integer(n->port)) \
	K(name, TOP, "name", json_string(n->name)) \
	X(domains, TOP, "domains", TEXTS, jstrv(n->domains)) \
	X(guessed, TOP, "guessed", BOOL, n->guessed ? json_true() : NULL) \
	X(probe, TOP, "probe", TEXT, json_string(n->probe)) \
	X(sni, TOP, "sni", TEXT, jstr(n->sni)) \
	X(outcome, TOP, "outcome", OUTCOME, json_string(mxs_outcome_names[n->outcome])) \
	X(leaf_sha256, TOP, "leaf_sha256", SHA256, n->leaf_sha256[0] ? json_string(n->leaf_sha256) : json_null()) \
	X(trusted, TOP, "trusted", BOOL, jbool3(n->trusted)) \
	X(verify_code, TOP, "verify_code", I32, n->trusted < 0 ? json_null() : json_integer(n->verify_code)) \
	X(expired, TOP, "expired", BOOL, jbool3(n->expired)) \
	X(name_match, TOP, "name_match", BOOL, jbool3(n->name_match)) \
	X(dane_tlsa, DANE, "tlsa", I32, json_integer(n->dane_tlsa)) \
	X(dane_dnssec, DANE, "dnssec", BOOL, json_boolean(n->dane_dnssec)) \
	X(dane_match, DANE, "match", BOOL, json_boolean(n->dane_match)) \
	X(dane_depth, DANE, "depth", I16, jint_or_null(n->dane_depth))

#endif
