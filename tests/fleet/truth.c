#include "truth.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/x509_vfy.h>

#include "behaviour.h"
#include "esc.h"

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

static void set_tls(json_t *o, const struct fb_behaviour *b)
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
	json_object_set_new(o, "ehlo_tls_extensions", extensions_json(b, 1));
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

int fleet_truth_print(const struct fleet_range *r, uint64_t seed,
		      const struct fb_fault_shares *faults, FILE *out)
{
	for (uint64_t i = 0; i < r->count; i++) {
		struct fleet_addr a;
		json_t *o;
		int rc;

		fleet_range_nth(r, i, &a);
		o = fleet_truth(&a, seed, faults);
		if (o == NULL)
			return -1;
		rc = json_dumpf(o, out, JSON_COMPACT);
		json_decref(o);
		if (rc < 0 || fputc('\n', out) == EOF)
			return -1;
	}
	return fflush(out) == 0 ? 0 : -1;
}
