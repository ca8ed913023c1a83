#include "tls_client.h"

#include <openssl/err.h>
#include <arpa/inet.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "esc.h"

const char *const tls_client_profiles[] = { "default-v1", NULL };

/* ---- the chain-verdict cache ---- */

static void chain_recs_free(struct mxs_cert_rec *chain, size_t n);

/* What the verify callback keeps on the SSL: the chain as sent and its key. */
struct chain_der {
	unsigned char *der;
	size_t len;
	unsigned char key[32];
};

static void chain_der_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct chain_der *c = ptr;

	(void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
	if (c != NULL)
		free(c->der);
	free(c);
}

/* DER certificates of sk back to back; NULL when empty or not encodable. */
static unsigned char *stack_der(STACK_OF(X509) *sk, size_t *len)
{
	int n = sk ? sk_X509_num(sk) : 0;
	size_t total = 0;
	unsigned char *buf, *p;

	*len = 0;
	for (int i = 0; i < n; i++) {
		int l = i2d_X509(sk_X509_value(sk, i), NULL);
		if (l <= 0)
			return NULL;
		total += (size_t)l;
	}
	if (total == 0 || (buf = malloc(total)) == NULL)
		return NULL;
	p = buf;
	for (int i = 0; i < n; i++)
		i2d_X509(sk_X509_value(sk, i), &p);
	*len = total;
	return buf;
}

static bool chain_key(struct tls_client *tc, const unsigned char *der, size_t len, unsigned char key[32])
{
	unsigned int kl = 0;

	return der != NULL && EVP_Digest(der, len, key, &kl, tc->sha256, NULL) == 1 && kl == 32;
}

/*
 * Narrow (lo, hi) to the validity dates of the certificates in sk nearest to now on
 * either side: the verdict cannot change while the clock stays strictly between them.
 * False when a date is unreadable or falls on now itself (then nothing is cached).
 */
static bool narrow_window(STACK_OF(X509) *sk, int64_t now, int64_t *lo, int64_t *hi)
{
	for (int i = 0; sk != NULL && i < sk_X509_num(sk); i++) {
		X509 *x = sk_X509_value(sk, i);
		const ASN1_TIME *t[2] = { X509_get0_notBefore(x), X509_get0_notAfter(x) };
		for (int j = 0; j < 2; j++) {
			struct tm tm;
			int64_t b;
			if (t[j] == NULL || ASN1_TIME_to_tm(t[j], &tm) != 1)
				return false;
			b = (int64_t)timegm(&tm);
			if (b == now)
				return false;
			if (b < now && b > *lo)
				*lo = b;
			if (b > now && b < *hi)
				*hi = b;
		}
	}
	return true;
}

static struct tls_verdict *verdict_set(struct tls_client *tc, const unsigned char key[32])
{
	uint64_t h;

	memcpy(&h, key, sizeof(h));
	return tc->verdicts + (h % TLS_VERDICT_SETS) * TLS_VERDICT_WAYS;
}

/* The cached verdict code for key, or -1. */
static int verdict_find(struct tls_client *tc, const unsigned char key[32], int64_t now)
{
	struct tls_verdict *set = verdict_set(tc, key);

	for (int i = 0; i < TLS_VERDICT_WAYS; i++) {
		struct tls_verdict *v = &set[i];
		if (!v->used || memcmp(v->key, key, 32) != 0)
			continue;
		if (now <= v->lo || now >= v->hi) {
			v->used = false;
			return -1;
		}
		v->tick = ++tc->tick;
		tc->cached++;
		return v->code;
	}
	return -1;
}

/* Cache the verdict of a verification just run in vctx on the chain sent (sk). */
static void verdict_store(struct tls_client *tc, const unsigned char key[32], int code,
			  X509_STORE_CTX *vctx, STACK_OF(X509) *sk, int64_t now)
{
	struct tls_verdict *set = verdict_set(tc, key), *victim = set;
	int64_t lo = INT64_MIN, hi = now + 3600;

	if (!narrow_window(sk, now, &lo, &hi) ||
	    !narrow_window(X509_STORE_CTX_get0_chain(vctx), now, &lo, &hi))
		return;
	for (int i = 0; i < TLS_VERDICT_WAYS; i++) {
		if (!set[i].used) {
			victim = &set[i];
			break;
		}
		if (set[i].tick < victim->tick)
			victim = &set[i];
	}
	memcpy(victim->key, key, 32);
	victim->code = code;
	victim->lo = lo;
	victim->hi = hi;
	victim->tick = ++tc->tick;
	victim->used = true;
}

/*
 * The PKIX verdict (X509_V_OK or the first error) of the chain sk, leaf first, against
 * the trust store for a TLS server, through the cache when key is given.
 */
static int pkix_code(struct tls_client *tc, STACK_OF(X509) *sk, const unsigned char *key)
{
	X509_STORE_CTX *vctx;
	int64_t now = (int64_t)time(NULL);
	int code = key != NULL ? verdict_find(tc, key, now) : -1;

	if (code >= 0)
		return code;
	code = X509_V_ERR_UNSPECIFIED;
	vctx = X509_STORE_CTX_new();
	if (vctx != NULL && sk != NULL && sk_X509_num(sk) > 0 &&
	    X509_STORE_CTX_init(vctx, tc->store, sk_X509_value(sk, 0), sk) == 1) {
		X509_STORE_CTX_set_purpose(vctx, X509_PURPOSE_SSL_SERVER);
		X509_verify_cert(vctx);
		code = X509_STORE_CTX_get_error(vctx);
		tc->verified++;
		if (key != NULL)
			verdict_store(tc, key, code, vctx, sk, now);
	}
	X509_STORE_CTX_free(vctx);
	ERR_clear_error();
	return code;
}

/*
 * The handshake's chain verification (SSL_CTX_set_cert_verify_callback): the chain's DER
 * is kept on the SSL for the record and the plan, and its verdict comes from the cache
 * when the same chain was verified before. With DANE the SSL's own verification runs
 * (its verdict depends on the name's TLSA records). The handshake never stops on the
 * verdict (verify mode none): 1 is returned whatever it is; the code is the SSL's
 * verify result.
 */
static int verify_cb(X509_STORE_CTX *x, void *arg)
{
	struct tls_client *tc = arg;
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	STACK_OF(X509) *sk = X509_STORE_CTX_get0_untrusted(x);
	struct chain_der *c = calloc(1, sizeof(*c));
	int64_t now = (int64_t)time(NULL);
	bool keyed = false;
	int code;

	if (c != NULL && (c->der = stack_der(sk, &c->len)) != NULL)
		keyed = chain_key(tc, c->der, c->len, c->key);
	if (ssl != NULL && c != NULL) {
		chain_der_free(NULL, SSL_get_ex_data(ssl, tc->ex_chain), NULL, 0, 0, NULL);
		if (SSL_set_ex_data(ssl, tc->ex_chain, c) != 1) {
			chain_der_free(NULL, c, NULL, 0, 0, NULL);
			c = NULL;
		}
	} else {
		chain_der_free(NULL, c, NULL, 0, 0, NULL);
		c = NULL;
	}
	if (ssl == NULL || SSL_get_ex_data(ssl, tc->ex_dane) != NULL || !keyed || c == NULL) {
		X509_verify_cert(x);
		return 1;
	}
	code = verdict_find(tc, c->key, now);
	if (code >= 0) {
		X509_STORE_CTX_set_error(x, code);
		return 1;
	}
	X509_verify_cert(x);
	code = X509_STORE_CTX_get_error(x);
	tc->verified++;
	verdict_store(tc, c->key, code, x, sk, now);
	return 1;
}

int tls_client_init(struct tls_client *tc, const char *profile, const char *ca_file,
		    char *err, size_t errlen)
{
	memset(tc, 0, sizeof(*tc));
	if (strcmp(profile, "default-v1") != 0) {
		snprintf(err, errlen, "unknown TLS profile '%s'", profile);
		return -1;
	}
	tc->profile = tls_client_profiles[0];
	tc->ctx = SSL_CTX_new(TLS_client_method());
	if (tc->ctx == NULL) {
		snprintf(err, errlen, "SSL_CTX_new failed");
		return -1;
	}
	/*
	 * default-v1: what a typical MTA offers. TLS 1.0 to 1.3, every cipher suite OpenSSL
	 * has, security level 0 so that 1024-bit DH, SHA-1 signatures and legacy suites still
	 * complete and are recorded as legacy instead of failing. Servers without secure
	 * renegotiation (RFC 5746) are still spoken to, and a missing close_notify is no error.
	 */
	SSL_CTX_set_min_proto_version(tc->ctx, TLS1_VERSION);
	SSL_CTX_set_max_proto_version(tc->ctx, TLS1_3_VERSION);
	SSL_CTX_set_options(tc->ctx, SSL_OP_LEGACY_SERVER_CONNECT | SSL_OP_IGNORE_UNEXPECTED_EOF |
					     SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET);
	if (SSL_CTX_set_cipher_list(tc->ctx, "ALL:@SECLEVEL=0") != 1 ||
	    SSL_CTX_set1_groups_list(tc->ctx, "X25519:P-256:P-384:P-521:X448:ffdhe2048:ffdhe3072") != 1) {
		snprintf(err, errlen, "cannot set the cipher list or groups");
		return -1;
	}
	SSL_CTX_set_verify(tc->ctx, SSL_VERIFY_NONE, NULL);
	/* Tens of thousands of sessions mostly wait: give idle ones' record buffers back. */
	SSL_CTX_set_mode(tc->ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(tc->ctx, SSL_SESS_CACHE_OFF);
	if (ca_file != NULL) {
		if (SSL_CTX_load_verify_locations(tc->ctx, ca_file, NULL) != 1) {
			snprintf(err, errlen, "cannot load CA file %s", ca_file);
			return -1;
		}
	} else if (SSL_CTX_set_default_verify_paths(tc->ctx) != 1) {
		snprintf(err, errlen, "cannot load the system trust store");
		return -1;
	}
	if (SSL_CTX_dane_enable(tc->ctx) <= 0) {
		snprintf(err, errlen, "cannot enable DANE");
		return -1;
	}
	tc->store = SSL_CTX_get_cert_store(tc->ctx);
	tc->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	tc->verdicts = calloc((size_t)TLS_VERDICT_SETS * TLS_VERDICT_WAYS, sizeof(*tc->verdicts));
	tc->descs = calloc((size_t)TLS_DESC_SETS * TLS_VERDICT_WAYS, sizeof(*tc->descs));
	tc->ex_chain = SSL_get_ex_new_index(0, NULL, NULL, NULL, chain_der_free);
	tc->ex_dane = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	if (tc->sha256 == NULL || tc->verdicts == NULL || tc->descs == NULL || tc->ex_chain < 0 || tc->ex_dane < 0) {
		snprintf(err, errlen, "cannot set up the chain-verdict cache");
		return -1;
	}
	SSL_CTX_set_cert_verify_callback(tc->ctx, verify_cb, tc);
	return 0;
}

void tls_client_free(struct tls_client *tc)
{
	SSL_CTX_free(tc->ctx);
	EVP_MD_free(tc->sha256);
	free(tc->verdicts);
	for (size_t i = 0; tc->descs != NULL && i < (size_t)TLS_DESC_SETS * TLS_VERDICT_WAYS; i++)
		chain_recs_free(tc->descs[i].chain, tc->descs[i].n);
	free(tc->descs);
	memset(tc, 0, sizeof(*tc));
}

SSL *tls_client_new_ssl(struct tls_client *tc, const char *sni, const struct mxs_tlsa *tlsa,
			size_t ntlsa)
{
	SSL *ssl = SSL_new(tc->ctx);

	if (ssl == NULL)
		return NULL;
	if (sni != NULL && *sni != '\0')
		SSL_set_tlsext_host_name(ssl, sni);
	if (ntlsa > 0) {
		int usable = 0;
		/* The DANE base domain is the MX name (RFC 7672); with none, match by key only. */
		if (SSL_dane_enable(ssl, sni != NULL ? sni : NULL) <= 0 ||
		    SSL_set_ex_data(ssl, tc->ex_dane, tc) != 1) {
			SSL_free(ssl);
			return NULL;
		}
		/* RFC 7672 3.1.1: a DANE-EE(3) match binds the key; names are not checked */
		SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
		for (size_t i = 0; i < ntlsa; i++)
			if (SSL_dane_tlsa_add(ssl, tlsa[i].usage, tlsa[i].selector, tlsa[i].mtype,
					      tlsa[i].data, tlsa[i].len) > 0)
				usable++;
		(void)usable;
		ERR_clear_error();
	}
	return ssl;
}

/* An IANA-style signature scheme name from what OpenSSL reports about the peer. */
static char *sig_alg_name(SSL *ssl, X509 *leaf)
{
	int type = NID_undef, md = NID_undef;
	const char *t, *m;
	char buf[160], group[80] = "";
	EVP_PKEY *pk;

	if (SSL_get_peer_signature_type_nid(ssl, &type) != 1)
		return NULL;
	SSL_get_peer_signature_nid(ssl, &md);
	switch (type) {
	case EVP_PKEY_RSA_PSS:
		pk = leaf ? X509_get0_pubkey(leaf) : NULL;
		t = (pk && EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA_PSS) ? "rsa_pss_pss" : "rsa_pss_rsae";
		break;
	case EVP_PKEY_RSA: t = "rsa_pkcs1"; break;
	case EVP_PKEY_EC:
		t = "ecdsa";
		pk = leaf ? X509_get0_pubkey(leaf) : NULL;
		if (pk != NULL && SSL_version(ssl) == TLS1_3_VERSION) {
			char gn[64];
			size_t gl = 0;
			if (EVP_PKEY_get_group_name(pk, gn, sizeof(gn), &gl) == 1) {
				const char *sg = strcmp(gn, "P-256") == 0 || strcmp(gn, "prime256v1") == 0 ? "secp256r1"
					       : strcmp(gn, "P-384") == 0 ? "secp384r1"
					       : strcmp(gn, "P-521") == 0 ? "secp521r1" : gn;
				snprintf(group, sizeof(group), "_%s", sg);
			}
		}
		break;
	case EVP_PKEY_ED25519: return strdup("ed25519");
	case EVP_PKEY_ED448: return strdup("ed448");
	case EVP_PKEY_DSA: t = "dsa"; break;
	default: t = OBJ_nid2sn(type); break;
	}
	m = md != NID_undef ? OBJ_nid2sn(md) : "unknown";
	snprintf(buf, sizeof(buf), "%s%s_%s", t ? t : "unknown", group, m);
	for (char *p = buf; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	/* OpenSSL spells SHA-256 "SHA256"; IANA "sha256": lower-casing made them agree. */
	return strdup(buf);
}

static void describe_kex(SSL *ssl, struct mxs_tls_rec *t)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	int kx = c ? SSL_CIPHER_get_kx_nid(c) : NID_undef;
	EVP_PKEY *tmp = NULL;

	switch (kx) {
	case NID_kx_ecdhe: case NID_kx_ecdhe_psk: t->kex = "ECDHE"; break;
	case NID_kx_dhe: case NID_kx_dhe_psk: t->kex = "DHE"; break;
	case NID_kx_rsa: case NID_kx_rsa_psk: t->kex = "RSA"; break;
	case NID_kx_any: t->kex = "TLS1.3"; break;
	default: t->kex = "other"; break;
	}
	t->forward_secrecy = kx == NID_kx_ecdhe || kx == NID_kx_dhe || kx == NID_kx_any ||
			     kx == NID_kx_ecdhe_psk || kx == NID_kx_dhe_psk;
	if (SSL_get_peer_tmp_key(ssl, &tmp) == 1 && tmp != NULL) {
		char gn[64];
		size_t gl = 0;
		int id = EVP_PKEY_get_base_id(tmp);
		t->kex_bits = EVP_PKEY_get_bits(tmp);
		if (id == EVP_PKEY_X25519)
			t->kex_group = strdup("X25519");
		else if (id == EVP_PKEY_X448)
			t->kex_group = strdup("X448");
		else if (EVP_PKEY_get_group_name(tmp, gn, sizeof(gn), &gl) == 1)
			t->kex_group = strdup(gn);
		else if (id == EVP_PKEY_DH || id == EVP_PKEY_DHX)
			t->kex_group = strdup("DH");
		EVP_PKEY_free(tmp);
	}
}

static void asn1_time_rfc3339(const ASN1_TIME *at, char *buf, size_t len)
{
	struct tm tm;
	if (at == NULL || ASN1_TIME_to_tm(at, &tm) != 1) {
		snprintf(buf, len, "invalid");
		return;
	}
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A name as RFC 2253 text, with remote bytes in escape form. */
static char *name_text(const X509_NAME *n)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long len;

	if (b == NULL)
		return NULL;
	X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
	len = BIO_get_mem_data(b, &data);
	out = mxs_esc_encode(data, (size_t)len, NULL);
	BIO_free(b);
	return out;
}

static void cert_sans(X509 *x, struct strv *out)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int n = gens ? sk_GENERAL_NAME_num(gens) : 0;

	for (int i = 0; i < n && out->n < 256; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if (g->type == GEN_DNS) {
			const ASN1_IA5STRING *s = g->d.dNSName;
			strv_push_owned(out, mxs_esc_encode(ASN1_STRING_get0_data(s),
							    (size_t)ASN1_STRING_length(s), NULL));
		} else if (g->type == GEN_IPADD) {
			const ASN1_OCTET_STRING *s = g->d.iPAddress;
			char addr[64] = "IP:";
			int l = ASN1_STRING_length(s);
			int fam = l == 4 ? AF_INET : l == 16 ? AF_INET6 : 0;
			if (fam && inet_ntop(fam, ASN1_STRING_get0_data(s), addr + 3, sizeof(addr) - 3))
				strv_push(out, addr);
		}
	}
	GENERAL_NAMES_free(gens);
}

static void describe_cert(struct tls_client *tc, X509 *x, struct mxs_cert_rec *c)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_PKEY *pk = X509_get0_pubkey(x);
	BIGNUM *bn;

	if (X509_digest(x, tc->sha256, md, &mdlen) == 1)
		for (unsigned int i = 0; i < mdlen && i < 32; i++)
			snprintf(c->sha256 + 2 * i, 3, "%02x", md[i]);
	c->subject = name_text(X509_get_subject_name(x));
	c->issuer = name_text(X509_get_issuer_name(x));
	cert_sans(x, &c->sans);
	asn1_time_rfc3339(X509_get0_notBefore(x), c->not_before, sizeof(c->not_before));
	asn1_time_rfc3339(X509_get0_notAfter(x), c->not_after, sizeof(c->not_after));
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	if (bn != NULL) {
		char *hex = BN_bn2hex(bn);
		c->serial = hex ? strdup(hex) : NULL;
		OPENSSL_free(hex);
		BN_free(bn);
	}
	c->sig_alg = strdup(OBJ_nid2ln(X509_get_signature_nid(x)));
	if (pk != NULL) {
		switch (EVP_PKEY_get_base_id(pk)) {
		case EVP_PKEY_RSA: c->key_type = "RSA"; break;
		case EVP_PKEY_RSA_PSS: c->key_type = "RSA-PSS"; break;
		case EVP_PKEY_EC: c->key_type = "EC"; break;
		case EVP_PKEY_DSA: c->key_type = "DSA"; break;
		case EVP_PKEY_ED25519: c->key_type = "ED25519"; break;
		case EVP_PKEY_ED448: c->key_type = "ED448"; break;
		default: c->key_type = "other"; break;
		}
		c->key_bits = EVP_PKEY_get_bits(pk);
	} else {
		c->key_type = "unknown";
	}
}

/* ---- described chains, cached by the chain's key ---- */

static void cert_rec_clear(struct mxs_cert_rec *c)
{
	free(c->subject);
	free(c->issuer);
	free(c->serial);
	free(c->sig_alg);
	strv_free(&c->sans);
}

static bool cert_rec_copy(struct mxs_cert_rec *dst, const struct mxs_cert_rec *src)
{
	*dst = *src;
	dst->sans = (struct strv){ 0 };
	dst->subject = src->subject ? strdup(src->subject) : NULL;
	dst->issuer = src->issuer ? strdup(src->issuer) : NULL;
	dst->serial = src->serial ? strdup(src->serial) : NULL;
	dst->sig_alg = src->sig_alg ? strdup(src->sig_alg) : NULL;
	for (size_t i = 0; i < src->sans.n; i++)
		if (strv_push(&dst->sans, src->sans.v[i]) < 0)
			return false;
	return (dst->subject || !src->subject) && (dst->issuer || !src->issuer) &&
	       (dst->serial || !src->serial) && (dst->sig_alg || !src->sig_alg);
}

static void chain_recs_free(struct mxs_cert_rec *chain, size_t n)
{
	for (size_t i = 0; chain != NULL && i < n; i++)
		cert_rec_clear(&chain[i]);
	free(chain);
}

/* A deep copy of n described certificates; NULL when out of memory. */
static struct mxs_cert_rec *chain_recs_dup(const struct mxs_cert_rec *src, size_t n)
{
	struct mxs_cert_rec *c = calloc(n, sizeof(*c));

	for (size_t i = 0; c != NULL && i < n; i++)
		if (!cert_rec_copy(&c[i], &src[i])) {
			chain_recs_free(c, i + 1);
			return NULL;
		}
	return c;
}

static struct tls_desc *desc_set(struct tls_client *tc, const unsigned char key[32])
{
	uint64_t h;

	memcpy(&h, key, sizeof(h));
	return tc->descs + (h % TLS_DESC_SETS) * TLS_VERDICT_WAYS;
}

/* Fill t->chain from the cache; false when the chain was not described before. */
static bool desc_copy(struct tls_client *tc, const unsigned char key[32], size_t n, struct mxs_tls_rec *t)
{
	struct tls_desc *set = desc_set(tc, key);

	for (int i = 0; i < TLS_VERDICT_WAYS; i++) {
		if (set[i].chain == NULL || set[i].n != n || memcmp(set[i].key, key, 32) != 0)
			continue;
		if ((t->chain = chain_recs_dup(set[i].chain, n)) == NULL)
			return false;
		t->nchain = n;
		set[i].tick = ++tc->tick;
		return true;
	}
	return false;
}

static void desc_store(struct tls_client *tc, const unsigned char key[32], const struct mxs_cert_rec *chain,
		       size_t n)
{
	struct tls_desc *set = desc_set(tc, key), *victim = set;
	struct mxs_cert_rec *copy = chain_recs_dup(chain, n);

	if (copy == NULL)
		return;
	for (int i = 0; i < TLS_VERDICT_WAYS; i++) {
		if (set[i].chain == NULL) {
			victim = &set[i];
			break;
		}
		if (set[i].tick < victim->tick)
			victim = &set[i];
	}
	chain_recs_free(victim->chain, victim->n);
	memcpy(victim->key, key, 32);
	victim->chain = copy;
	victim->n = n;
	victim->tick = ++tc->tick;
}

/* The PKIX verdict of the chain as sent, against the trust store, at the current time. */
static void pkix_verify(struct tls_client *tc, STACK_OF(X509) *chain, const unsigned char *key,
			struct mxs_tls_rec *t)
{
	t->verify_code = pkix_code(tc, chain, key);
	t->trusted = t->verify_code == X509_V_OK;
	t->verify_reason = X509_verify_cert_error_string(t->verify_code);
}

struct mxs_tls_rec *tls_client_describe(struct tls_client *tc, SSL *ssl, const char *mx,
					const struct strv *names, size_t ntlsa, bool tlsa_dnssec)
{
	struct mxs_tls_rec *t = calloc(1, sizeof(*t));
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
	X509 *leaf = SSL_get0_peer_certificate(ssl);
	int n = chain ? sk_X509_num(chain) : 0;
	struct chain_der *cd;

	if (t == NULL)
		return NULL;
	snprintf(t->version, sizeof(t->version), "%s", SSL_get_version(ssl));
	if (c != NULL) {
		const char *std = SSL_CIPHER_standard_name(c);
		t->cipher = strdup(std ? std : SSL_CIPHER_get_name(c));
		t->cipher_openssl = strdup(SSL_CIPHER_get_name(c));
		t->cipher_bits = SSL_CIPHER_get_bits(c, NULL);
	}
	describe_kex(ssl, t);
	t->sig_alg = sig_alg_name(ssl, leaf);
	t->name_match = -1;
	t->dane_depth = -1;
	if (leaf != NULL) {
		/*
		 * OpenSSL verified the chain during the handshake (verify mode none only keeps
		 * it from aborting) against this store: that verdict is the PKIX one, unless
		 * DANE was enabled, when it is DANE's and PKIX needs a verification of its own.
		 */
		if (ntlsa == 0) {
			t->verify_code = SSL_get_verify_result(ssl);
			t->verify_reason = X509_verify_cert_error_string(t->verify_code);
			t->trusted = t->verify_code == X509_V_OK;
		} else {
			cd = SSL_get_ex_data(ssl, tc->ex_chain);
			pkix_verify(tc, chain, cd != NULL ? cd->key : NULL, t);
		}
		if (mx != NULL && *mx != '\0')
			t->name_match = X509_check_host(leaf, mx, 0, 0, NULL) == 1;
		for (size_t i = 0; names != NULL && i < names->n; i++)
			if (X509_check_host(leaf, names->v[i], 0, 0, NULL) == 1)
				strv_push(&t->matched_names, names->v[i]);
		t->expired = X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0;
		t->not_yet_valid = X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0;
		/*
		 * Self-signed: issued by its own subject and signed by its own key. Not
		 * X509_check_issued(), which also wants keyCertSign, a bit server leaves lack.
		 */
		t->self_signed = X509_NAME_cmp(X509_get_subject_name(leaf), X509_get_issuer_name(leaf)) == 0 &&
				 X509_verify(leaf, X509_get0_pubkey(leaf)) == 1;
	} else {
		t->verify_code = X509_V_ERR_UNSPECIFIED;
		t->verify_reason = "no peer certificate";
	}
	if (ntlsa > 0) {
		t->dane_present = true;
		t->dane_tlsa = (int)ntlsa;
		t->dane_dnssec = tlsa_dnssec;
		t->dane_depth = SSL_get0_dane_authority(ssl, NULL, NULL);
		t->dane_match = t->dane_depth >= 0;
	}
	cd = SSL_get_ex_data(ssl, tc->ex_chain);
	if (cd == NULL || !desc_copy(tc, cd->key, (size_t)n, t)) {
		t->chain = n > 0 ? calloc((size_t)n, sizeof(*t->chain)) : NULL;
		for (int i = 0; t->chain != NULL && i < n; i++)
			describe_cert(tc, sk_X509_value(chain, i), &t->chain[i]);
		t->nchain = t->chain ? (size_t)n : 0;
		if (cd != NULL && t->nchain > 0)
			desc_store(tc, cd->key, t->chain, t->nchain);
	}
	ERR_clear_error();
	return t;
}

unsigned char *tls_client_chain_der(struct tls_client *tc, SSL *ssl, size_t *len)
{
	struct chain_der *c = SSL_get_ex_data(ssl, tc->ex_chain);
	unsigned char *der;

	if (c == NULL || c->der == NULL)
		return stack_der(SSL_get_peer_cert_chain(ssl), len);
	der = c->der;
	*len = c->len;
	c->der = NULL;
	return der;
}

void tls_client_judge(struct tls_client *tc, const unsigned char *der, size_t len, const char *name,
		      const struct mxs_tlsa *tlsa, size_t ntlsa, bool tlsa_dnssec,
		      struct mxs_name_verdict *v)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	const unsigned char *p = der, *end = der + len;
	X509 *leaf;

	v->leaf_sha256[0] = '\0';
	v->trusted = v->expired = v->name_match = -1;
	v->verify_code = 0;
	v->dane_present = ntlsa > 0;
	v->dane_tlsa = (int)ntlsa;
	v->dane_dnssec = tlsa_dnssec;
	v->dane_match = false;
	v->dane_depth = -1;
	while (chain != NULL && der != NULL && p < end) {
		X509 *x = d2i_X509(NULL, &p, (long)(end - p));
		if (x == NULL || !sk_X509_push(chain, x)) {
			X509_free(x);
			break;
		}
	}
	leaf = chain && sk_X509_num(chain) > 0 ? sk_X509_value(chain, 0) : NULL;
	if (leaf != NULL) {
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int mdlen = 0;
		struct mxs_tls_rec t = { 0 };
		unsigned char key[32];

		if (X509_digest(leaf, tc->sha256, md, &mdlen) == 1)
			for (unsigned int i = 0; i < mdlen && i < 32; i++)
				snprintf(v->leaf_sha256 + 2 * i, 3, "%02x", md[i]);
		pkix_verify(tc, chain, chain_key(tc, der, len, key) ? key : NULL, &t);
		v->trusted = t.trusted;
		v->verify_code = t.verify_code;
		v->expired = X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0;
		v->name_match = X509_check_host(leaf, name, 0, 0, NULL) == 1;
	}
	if (leaf != NULL && ntlsa > 0) {
		/*
		 * The handshake's DANE check, replayed on the stored chain: an SSL carries the
		 * name and its TLSA records (SSL_dane_enable, SSL_dane_tlsa_add), and the chain
		 * is verified with that SSL's parameters and DANE state, as OpenSSL's own
		 * ssl_verify_cert_chain does. The matched depth is then the SSL's.
		 */
		SSL *ssl = SSL_new(tc->ctx);
		X509_STORE_CTX *vctx = X509_STORE_CTX_new();

		if (ssl != NULL && vctx != NULL && SSL_dane_enable(ssl, name) > 0) {
			SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
			for (size_t i = 0; i < ntlsa; i++)
				SSL_dane_tlsa_add(ssl, tlsa[i].usage, tlsa[i].selector, tlsa[i].mtype,
						  tlsa[i].data, tlsa[i].len);
			if (X509_STORE_CTX_init(vctx, tc->store, leaf, chain) == 1) {
				X509_STORE_CTX_set_default(vctx, "ssl_server");
				X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(vctx), SSL_get0_param(ssl));
				X509_STORE_CTX_set0_dane(vctx, SSL_get0_dane(ssl));
				/* as SSL_get0_dane_authority after a handshake: a match in a chain that verified */
				if (X509_verify_cert(vctx) == 1)
					v->dane_depth = SSL_get0_dane_authority(ssl, NULL, NULL);
				v->dane_match = v->dane_depth >= 0;
			}
		}
		X509_STORE_CTX_free(vctx);
		SSL_free(ssl);
	}
	sk_X509_pop_free(chain, X509_free);
	ERR_clear_error();
}
