#include "truth.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/x509_vfy.h>

#include "behaviour.h"
#include "esc.h"
#include "fproto.h"

/* Length of a line without its CRLF (or LF). */
static size_t line_len(const struct fb_bytes *l)
{
	size_t n = l->len;

	if (n > 0 && l->p[n - 1] == '\n')
		n--;
	if (n > 0 && l->p[n - 1] == '\r')
		n--;
	return n;
}

/*
 * The code of a well-formed reply (what the scanner's parser accepts: each line a code
 * [2-5][0-5][0-9], '-' after it on every line but the last, all codes equal), else -1.
 * lines ends with {NULL, 0}.
 */
static int reply_code(const struct fb_bytes *lines)
{
	int code = -1;

	for (const struct fb_bytes *l = lines; l->p != NULL; l++) {
		const char *p = l->p;
		size_t n = line_len(l);
		int c, last = l[1].p == NULL;

		if (n < 3 || p[0] < '2' || p[0] > '5' || p[1] < '0' || p[1] > '5' ||
		    p[2] < '0' || p[2] > '9')
			return -1;
		if (n > 3 && p[3] != ' ' && p[3] != '-')
			return -1;
		if ((n > 3 && p[3] == '-') != !last)
			return -1;
		c = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		if (code != -1 && c != code)
			return -1;
		code = c;
	}
	return code;
}

/* Split raw reply bytes (one or more CRLF-terminated lines) into at most max lines. */
static size_t split_lines(struct fb_bytes raw, struct fb_bytes *out, size_t max)
{
	size_t n = 0;
	const char *p = raw.p, *end = raw.p + raw.len;

	while (p < end && n + 1 < max) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		out[n].p = p;
		out[n].len = len;
		n++;
		p += len;
	}
	out[n].p = NULL;
	out[n].len = 0;
	return n;
}

static json_t *esc_string(const char *p, size_t len)
{
	char *s = mxs_esc_encode(p, len, NULL);
	json_t *j = s != NULL ? json_string(s) : NULL;

	free(s);
	return j;
}

static json_t *lines_json(const struct fb_bytes *lines)
{
	json_t *a = json_array();

	for (const struct fb_bytes *l = lines; a != NULL && l->p != NULL; l++)
		json_array_append_new(a, esc_string(l->p, line_len(l)));
	return a;
}

/* The extension list as the scanner records it, optionally without STARTTLS (over TLS). */
static json_t *extensions_json(const struct fb_behaviour *b, int drop_starttls)
{
	json_t *a = json_array();

	for (const char *const *e = fb_extensions(b); a != NULL && *e != NULL; e++)
		if (!drop_starttls || strcasecmp(*e, "STARTTLS") != 0)
			json_array_append_new(a, json_string(*e));
	return a;
}

/*
 * docs/record.md: an eight-letter keyword that is not STARTTLS but is STARTTLS with
 * letters overwritten by X, or mostly X as middleboxes write it ("XXXXXXXA").
 */
static const char *mangled_starttls(const struct fb_behaviour *b)
{
	static const char word[] = "STARTTLS";

	for (const char *const *e = fb_extensions(b); *e != NULL; e++) {
		int xs = 0, same_or_x = 1, letters = strlen(*e) == sizeof(word) - 1;
		for (size_t i = 0; letters && i < sizeof(word) - 1; i++) {
			char c = (char)toupper((unsigned char)(*e)[i]);
			if (!isalpha((unsigned char)c))
				letters = 0;
			else if (c == 'X')
				xs++;
			else if (c != word[i])
				same_or_x = 0;
		}
		if (letters && ((same_or_x && xs > 0) || xs >= 5))
			return *e;
	}
	return NULL;
}

/* "STARTTLS", or a code and separator followed by "STARTTLS" (docs/record.md). */
static int is_echo(const struct fb_bytes *line)
{
	const char *p = line->p;
	size_t n = line_len(line);

	if (n > 4 && isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]) &&
	    isdigit((unsigned char)p[2]) && (p[3] == ' ' || p[3] == '-'))
		p += 4, n -= 4;
	return n == 8 && strncasecmp(p, "STARTTLS", 8) == 0;
}

/* 1 if a session with behaviour b gets past phase p (NONE: it runs to the end). */
static int past(const struct fb_behaviour *b, enum fb_phase p)
{
	return b->phase == FB_PHASE_NONE || b->phase > p;
}

static void set_tls_fields(json_t *o, const struct fb_behaviour *b);

static void set_tls(json_t *o, const struct fb_behaviour *b)
{
	set_tls_fields(o, b);
	json_object_set_new(o, "ehlo_tls_extensions", extensions_json(b, 1));
}

/* The TLS details of the behaviour's profile and leaf (not the capabilities inside TLS). */
static void set_tls_fields(json_t *o, const struct fb_behaviour *b)
{
	const struct fb_tls_profile *t = &fb_tls_profiles[b->tls];
	const struct fb_leaf *leaf = &fb_leaves[b->leaf];
	int name_match = strcmp(leaf->san, FB_WILDCARD) == 0;

	json_object_set_new(o, "tls_version", json_string(t->version));
	json_object_set_new(o, "cipher", json_string(t->cipher));
	json_object_set_new(o, "cipher_openssl", json_string(t->cipher_openssl));
	if (t->kex != NULL)
		json_object_set_new(o, "kex", json_string(t->kex));
	json_object_set_new(o, "forward_secrecy", json_boolean(t->forward_secrecy));
	if (t->kex_bits != 0)
		json_object_set_new(o, "kex_bits", json_integer(t->kex_bits));
	if (t->sig == FB_SIG_SCHEME)
		json_object_set_new(o, "sig_alg", json_string(leaf->rsa ? "rsa_pss_rsae_sha256"
									: "ecdsa_secp256r1_sha256"));
	else if (t->sig == FB_SIG_NONE)
		json_object_set_new(o, "sig_alg", json_null());
	json_object_set_new(o, "key_type", json_string(leaf->rsa ? "RSA" : "EC"));
	json_object_set_new(o, "trusted", json_boolean(!leaf->self_signed && !leaf->expired));
	json_object_set_new(o, "name_match", json_boolean(name_match));
	json_object_set_new(o, "expired", json_boolean(leaf->expired));
	json_object_set_new(o, "self_signed", json_boolean(leaf->self_signed));
	/* A scanner that checks the name inside verification (SSL_set1_host) reports a
	 * hostname mismatch instead of 0, so the code is only asserted for matching names. */
	if (name_match)
		json_object_set_new(o, "verify_code",
				    json_integer(leaf->expired ? X509_V_ERR_CERT_HAS_EXPIRED
					       : leaf->self_signed ? X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
					       : X509_V_OK));
}

static void set_no_tls(json_t *o)
{
	static const char *const keys[] = {
		"tls_version", "cipher", "cipher_openssl", "trusted", "name_match", "expired",
		"self_signed", "ehlo_tls_extensions",
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		json_object_set_new(o, keys[i], json_null());
}

/* "ip", "mx", "behaviour", "index", "proto": every truth starts so. */
static json_t *truth_head(const struct fleet_addr *a, const struct fp_proto *p, enum fb_id id)
{
	char ip[FLEET_ADDR_STRLEN], mx[FLEET_MX_STRLEN];
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	fleet_addr_format(a, ip, sizeof(ip));
	fleet_addr_mx(a, mx, sizeof(mx));
	json_object_set_new(o, "ip", json_string(ip));
	json_object_set_new(o, "mx", json_string(mx));
	json_object_set_new(o, "behaviour", json_string(fb_behaviours[id].name));
	json_object_set_new(o, "index", json_integer(id));
	json_object_set_new(o, "proto", json_string(p->name));
	return o;
}

static void set_outcome(json_t *o, enum fb_outcome out, enum fb_phase phase)
{
	json_object_set_new(o, "outcome", json_string(fb_outcome_names[out]));
	if (phase != FB_PHASE_NONE)
		json_object_set_new(o, "phase", json_string(fb_phase_names[phase]));
}

/* No dialogue before TLS (implicit TLS): nothing recorded there. */
static void set_no_plaintext(json_t *o)
{
	json_object_set_new(o, "ehlo_verb", json_null());
	json_object_set_new(o, "ehlo_extensions", json_null());
	json_object_set_new(o, "starttls_code", json_null());
	json_object_set_new(o, "starttls_echo", json_false());
	json_object_set_new(o, "plaintext_after_starttls", json_integer(0));
	json_object_set_new(o, "mangled_starttls", json_null());
}

/*
 * Whether the server answers the capability request after a normal greeting: the
 * greeting is lines, not a refusal (421/554/BYE/-ERR), nothing follows it unasked, the
 * server keeps the connection and does not reset, flood or stream at the request.
 */
static int capa_answered(const struct fb_behaviour *b)
{
	return b->greeting == FB_GREET_LINES && b->phase != FB_PHASE_GREETING &&
	       !b->close_after_greeting && b->ehlo != FB_EHLO_RST && b->ehlo != FB_EHLO_FLOOD &&
	       b->ehlo != FB_EHLO_HUGE;
}

/*
 * submissions (SMTP after implicit TLS). Once the handshake completed the scanner calls
 * the probe a success whatever follows (docs/record.md); only the server that answers
 * the ClientHello with junk fails. The 421 of 421-then-ok is retried as on port 25.
 */
static json_t *truth_smtp_implicit(const struct fleet_addr *a, const struct fp_proto *p, enum fb_id id)
{
	const struct fb_behaviour *b = &fb_behaviours[id];
	const struct fb_bytes *greeting = fb_greeting_lines(b);
	int gcode = b->greeting == FB_GREET_LINES ? reply_code(greeting) : -1;
	json_t *o = truth_head(a, p, id);

	if (o == NULL)
		return NULL;
	set_no_plaintext(o);
	if (b->after_starttls == FB_AFTER_NOT_TLS || b->after_starttls == FB_AFTER_CANNED) {
		set_outcome(o, FB_OUT_HANDSHAKE_ERROR, FB_PHASE_HANDSHAKE);
		json_object_set_new(o, "greeting_code", json_null());
		json_object_set_new(o, "greeting_lines", json_null());
		set_no_tls(o);
		return o;
	}
	set_outcome(o, FB_OUT_SUCCESS, FB_PHASE_NONE);
	json_object_set_new(o, "greeting_code", gcode >= 0 ? json_integer(gcode) : json_null());
	json_object_set_new(o, "greeting_lines", gcode >= 0 ? lines_json(greeting) : json_null());
	set_tls_fields(o, b);
	json_object_set_new(o, "ehlo_tls_extensions",
			    !capa_answered(b) || gcode != 220 ? json_null()
			    : b->ehlo == FB_EHLO_250 ? extensions_json(b, 1) : json_array());
	return o;
}

/* The greeting pieces joined and cut into lines, escape form, CRLF removed. */
static json_t *pieces_json(const struct fb_bytes *pieces)
{
	char buf[512];
	size_t n = 0;
	struct fb_bytes lines[8];

	for (const struct fb_bytes *pc = pieces; pc->p != NULL; pc++) {
		if (n + pc->len > sizeof(buf))
			return json_null();
		memcpy(buf + n, pc->p, pc->len);
		n += pc->len;
	}
	split_lines((struct fb_bytes){ buf, n }, lines, 8);
	return lines_json(lines);
}

static json_t *strings_json(const char *const *v)
{
	json_t *a = json_array();

	for (; a != NULL && *v != NULL; v++)
		json_array_append_new(a, json_string(*v));
	return a;
}

/* The SASL mechanisms of IMAP "AUTH=X" atoms or the POP3 "SASL X Y" line, upper-case. */
static json_t *mechs_json(const char *const *caps)
{
	json_t *a = json_array();

	for (; a != NULL && *caps != NULL; caps++) {
		const char *m = NULL;
		if (strncasecmp(*caps, "AUTH=", 5) == 0)
			m = *caps + 5;
		else if (strncasecmp(*caps, "SASL ", 5) == 0)
			m = *caps + 5;
		while (m != NULL && *m != '\0') {
			size_t w = strcspn(m, " ");
			char word[64];
			if (w > 0 && w < sizeof(word)) {
				for (size_t i = 0; i < w; i++)
					word[i] = (char)toupper((unsigned char)m[i]);
				word[w] = '\0';
				json_array_append_new(a, json_string(word));
			}
			m += w;
			while (*m == ' ')
				m++;
		}
	}
	return a;
}

/* Login by the protocol's own command: IMAP without LOGINDISABLED, POP3 with USER. */
static int login_offered(const char *const *caps, enum fp_dialect d)
{
	int disabled = 0, user = 0;

	for (; *caps != NULL; caps++) {
		disabled |= strcasecmp(*caps, "LOGINDISABLED") == 0;
		user |= strcasecmp(*caps, "USER") == 0;
	}
	return d == FP_DIALECT_IMAP ? !disabled : user;
}

static int has_mech(json_t *mechs, const char *m)
{
	size_t i;
	json_t *v;

	json_array_foreach(mechs, i, v)
		if (strcmp(json_string_value(v), m) == 0)
			return 1;
	return 0;
}

/*
 * imap, imaps, pop3, pop3s. The record keeps SMTP's shape (proto_access.c): the
 * capabilities in "ehlo" (verb CAPABILITY or CAPA) and "ehlo_tls", reply codes 0, and
 * what login is offered before and inside TLS in "auth".
 */
static json_t *truth_access(const struct fleet_addr *a, const struct fp_proto *p, enum fb_id id)
{
	const struct fb_behaviour *b = &fb_behaviours[id];
	enum fp_dialect d = p->dialect;
	int imap = d == FP_DIALECT_IMAP;
	/* The scanner does not retry IMAP and POP3: the first connection's BYE/-ERR stands. */
	int busy = b->first_421;
	const struct fb_bytes *greeting = fp_greeting(busy ? &fb_behaviours[FB_GREETING_421] : b, d);
	/* A greeting the parser takes: lines, not junk; an endless stream of greeting lines
	 * is a complete greeting with unsolicited data behind it (recorded, then the error). */
	int greeted = (b->greeting == FB_GREET_LINES || b->greeting == FB_GREET_ENDLESS) &&
		      id != FB_GARBAGE;
	int welcomed = greeted && !busy && b->phase != FB_PHASE_GREETING;
	/* POP3's CAPA is optional: a server refusing it still gets STLS. */
	int capa_refused = b->ehlo == FB_EHLO_502 && !imap;
	enum fb_outcome out = busy ? FB_OUT_GREETING_REJECTED : capa_refused ? FB_OUT_SUCCESS : b->outcome;
	enum fb_phase phase = busy ? FB_PHASE_GREETING : capa_refused ? FB_PHASE_NONE : b->phase;
	int caps_ok = welcomed && capa_answered(b) && b->ehlo == FB_EHLO_250;
	json_t *o = truth_head(a, p, id), *mechs;

	if (o == NULL)
		return NULL;
	json_object_set_new(o, "greeting_code", greeted ? json_integer(0) : json_null());
	json_object_set_new(o, "greeting_lines", greeted ? pieces_json(greeting) : json_null());
	if (p->implicit) {
		int tls_caps = welcomed && capa_answered(b);
		set_no_plaintext(o);
		if (b->after_starttls == FB_AFTER_NOT_TLS || b->after_starttls == FB_AFTER_CANNED) {
			set_outcome(o, FB_OUT_HANDSHAKE_ERROR, FB_PHASE_HANDSHAKE);
			json_object_set_new(o, "greeting_code", json_null());
			json_object_set_new(o, "greeting_lines", json_null());
			set_no_tls(o);
			return o;
		}
		set_outcome(o, FB_OUT_SUCCESS, FB_PHASE_NONE);
		set_tls_fields(o, b);
		json_object_set_new(o, "ehlo_tls_extensions", !tls_caps ? json_null()
				    : caps_ok ? strings_json(fp_caps(b, d, 1)) : json_array());
		if (caps_ok) {
			json_object_set_new(o, "auth_cleartext", json_false());
			json_object_set_new(o, "auth_login", json_false());
			json_object_set_new(o, "auth_mechanisms", json_array());
			json_object_set_new(o, "auth_mechanisms_tls", mechs_json(fp_caps(b, d, 1)));
			json_object_set_new(o, "auth_login_tls", json_boolean(login_offered(fp_caps(b, d, 1), d)));
		}
		return o;
	}
	set_outcome(o, out, phase);
	/* The capability response, when one completed: the list, or a refusal without one. */
	if (welcomed && capa_answered(b)) {
		json_object_set_new(o, "ehlo_verb", json_string(imap ? "CAPABILITY" : "CAPA"));
		json_object_set_new(o, "ehlo_extensions", caps_ok ? strings_json(fp_caps(b, d, 0)) : json_array());
	} else {
		json_object_set_new(o, "ehlo_verb", json_null());
		json_object_set_new(o, "ehlo_extensions", json_null());
	}
	json_object_set_new(o, "mangled_starttls", caps_ok && id == FB_MANGLED_STARTTLS
			    ? json_string(imap ? "XXXXXXXA" : "XXXX") : json_null());
	/* STARTTLS/STLS is asked when offered, or (POP3) when CAPA was refused. */
	if (welcomed && capa_answered(b) && (caps_ok ? fp_offers_starttls(b, d) : capa_refused) &&
	    !b->starttls_stall) {
		char reply[256];
		int go;
		size_t n = fp_starttls_reply(b, d, "A2", reply, sizeof(reply), &go);
		const char *nl = memchr(reply, '\n', n);
		json_object_set_new(o, "starttls_code", id == FB_STARTTLS_ECHO ? json_null() : json_integer(0));
		json_object_set_new(o, "starttls_echo", json_boolean(id == FB_STARTTLS_ECHO));
		json_object_set_new(o, "plaintext_after_starttls",
				    json_integer(go && nl != NULL ? (json_int_t)(reply + n - (nl + 1)) : 0));
	} else {
		json_object_set_new(o, "starttls_code", json_null());
		json_object_set_new(o, "starttls_echo", json_false());
		json_object_set_new(o, "plaintext_after_starttls", json_integer(0));
	}
	if (out == FB_OUT_SUCCESS) {
		set_tls_fields(o, b);
		json_object_set_new(o, "ehlo_tls_extensions",
				    caps_ok ? strings_json(fp_caps(b, d, 1)) : json_array());
	} else {
		set_no_tls(o);
	}
	if (caps_ok) {
		mechs = mechs_json(fp_caps(b, d, 0));
		json_object_set_new(o, "auth_cleartext",
				    json_boolean(login_offered(fp_caps(b, d, 0), d) || has_mech(mechs, "PLAIN") ||
						 has_mech(mechs, "LOGIN")));
		json_object_set_new(o, "auth_login", json_boolean(login_offered(fp_caps(b, d, 0), d)));
		json_object_set_new(o, "auth_mechanisms", mechs);
		if (out == FB_OUT_SUCCESS) {
			json_object_set_new(o, "auth_mechanisms_tls", mechs_json(fp_caps(b, d, 1)));
			json_object_set_new(o, "auth_login_tls", json_boolean(login_offered(fp_caps(b, d, 1), d)));
		}
	}
	return o;
}

json_t *fleet_truth_proto(const struct fleet_addr *a, const struct fp_proto *p, uint64_t seed,
			  const struct fb_fault_shares *faults)
{
	enum fb_id id = fp_pick(p, fleet_addr_key(a), seed);
	json_t *o;

	if (p->dialect != FP_DIALECT_SMTP)
		return truth_access(a, p, id);
	if (p->implicit)
		return truth_smtp_implicit(a, p, id);
	o = fleet_truth(a, seed, faults);
	if (o != NULL)
		json_object_set_new(o, "proto", json_string(p->name));
	return o;
}

json_t *fleet_truth(const struct fleet_addr *a, uint64_t seed, const struct fb_fault_shares *faults)
{
	enum fb_id id = fb_pick(fleet_addr_key(a), seed);
	const struct fb_behaviour *b = &fb_behaviours[id];
	struct fb_fault fault = fb_fault_pick(fleet_addr_key(a), seed, faults, b);
	/* The behaviour as the network lets it end: a fault cuts it short where it strikes. */
	struct fb_behaviour eff = *b;
	const struct fb_bytes *greeting = fb_greeting_lines(b);
	int gcode, ehlo, starttls;
	const char *mangled;
	char ip[FLEET_ADDR_STRLEN], mx[FLEET_MX_STRLEN];
	json_t *o;

	if (fault.kind != FB_FAULT_NONE) {
		eff.outcome = fb_fault_outcome(fault);
		eff.phase = fault.phase;
	}
	/* A fault in the greeting phase strikes before the first byte. */
	gcode = b->greeting == FB_GREET_LINES && !(fault.kind != FB_FAULT_NONE &&
						   fault.phase == FB_PHASE_GREETING)
		? reply_code(greeting) : -1;
	/* An EHLO reply exists only when the server answered EHLO: past that phase. */
	ehlo = past(&eff, FB_PHASE_EHLO);
	/* A STARTTLS reply, unless a fault silenced STARTTLS itself. */
	starttls = past(&eff, FB_PHASE_EHLO) && b->ehlo == FB_EHLO_250 && fb_advertises_starttls(b) &&
		   !(fault.kind != FB_FAULT_NONE && fault.phase == FB_PHASE_STARTTLS);
	mangled = ehlo ? mangled_starttls(b) : NULL;
	o = json_object();
	if (o == NULL)
		return NULL;
	fleet_addr_format(a, ip, sizeof(ip));
	fleet_addr_mx(a, mx, sizeof(mx));
	json_object_set_new(o, "ip", json_string(ip));
	json_object_set_new(o, "mx", json_string(mx));
	json_object_set_new(o, "behaviour", json_string(b->name));
	json_object_set_new(o, "index", json_integer(id));
	json_object_set_new(o, "outcome", json_string(fb_outcome_names[eff.outcome]));
	if (eff.phase != FB_PHASE_NONE)
		json_object_set_new(o, "phase", json_string(fb_phase_names[eff.phase]));
	if (fault.kind != FB_FAULT_NONE)
		json_object_set_new(o, "fault", json_string(fb_fault_names[fault.kind]));

	json_object_set_new(o, "greeting_code", gcode >= 0 ? json_integer(gcode) : json_null());
	json_object_set_new(o, "greeting_lines", gcode >= 0 ? lines_json(greeting) : json_null());

	json_object_set_new(o, "ehlo_verb", !ehlo ? json_null()
				: json_string(b->ehlo == FB_EHLO_502 ? "HELO" : "EHLO"));
	json_object_set_new(o, "ehlo_extensions", !ehlo ? json_null()
				: b->ehlo == FB_EHLO_502 ? json_array() : extensions_json(b, 0));

	if (starttls) {
		struct fb_bytes lines[8];
		size_t n = split_lines(fb_starttls_reply(b), lines, 8);
		struct fb_bytes first[2] = { lines[0], { NULL, 0 } };
		int code = reply_code(first);
		size_t after = 0;
		for (size_t i = 1; code == 220 && i < n; i++)
			after += lines[i].len;
		json_object_set_new(o, "starttls_code", code >= 0 ? json_integer(code) : json_null());
		json_object_set_new(o, "starttls_echo", json_boolean(is_echo(&lines[0])));
		json_object_set_new(o, "plaintext_after_starttls", json_integer((json_int_t)after));
	} else {
		json_object_set_new(o, "starttls_code", json_null());
		json_object_set_new(o, "starttls_echo", json_false());
		json_object_set_new(o, "plaintext_after_starttls", json_integer(0));
	}
	json_object_set_new(o, "mangled_starttls", mangled != NULL ? json_string(mangled) : json_null());

	if (eff.outcome == FB_OUT_SUCCESS)
		set_tls(o, b);
	else
		set_no_tls(o);
	return o;
}

int fleet_truth_print(const struct fleet_range *r, const struct fp_proto *p, uint64_t seed,
		      const struct fb_fault_shares *faults, FILE *out)
{
	for (uint64_t i = 0; i < r->count; i++) {
		struct fleet_addr a;
		json_t *o;
		int rc;

		fleet_range_nth(r, i, &a);
		o = fleet_truth_proto(&a, p, seed, faults);
		if (o == NULL)
			return -1;
		rc = json_dumpf(o, out, JSON_COMPACT);
		json_decref(o);
		if (rc < 0 || fputc('\n', out) == EOF)
			return -1;
	}
	return fflush(out) == 0 ? 0 : -1;
}
