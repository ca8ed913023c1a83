#include "tlsctx.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "log.h"
#include "pki.h"

/* The 1024-bit MODP group of RFC 2409 (Oakley group 2), generator 2, as an EVP_PKEY. */
static EVP_PKEY *dh_1024(void)
{
	BIGNUM *p = BN_get_rfc2409_prime_1024(NULL), *g = BN_new();
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	EVP_PKEY *pkey = NULL;

	if (p != NULL && g != NULL && bld != NULL && BN_set_word(g, 2) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_FFC_P, p) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_FFC_G, g) &&
	    (params = OSSL_PARAM_BLD_to_param(bld)) != NULL &&
	    (pctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL)) != NULL &&
	    EVP_PKEY_fromdata_init(pctx) > 0)
		EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_KEY_PARAMETERS, params);
	EVP_PKEY_CTX_free(pctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(g);
	BN_free(p);
	return pkey;
}

static int load_chain_ca(SSL_CTX *ctx, const char *certdir)
{
	char path[4096];
	BIO *bio;
	X509 *ca = NULL;
	int ok;

	if (fleet_pki_path(path, sizeof(path), certdir, FLEET_CA_FILE, ".pem") < 0 ||
	    (bio = BIO_new_file(path, "r")) == NULL)
		return 0;
	ca = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ok = ca != NULL && SSL_CTX_add1_chain_cert(ctx, ca);
	X509_free(ca);
	return ok;
}

SSL_CTX *fleet_tls_ctx_new(const struct fb_tls_profile *p, const struct fb_leaf *l,
			   const char *certdir)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char cert[4096], key[4096], err[256];
	const char *step = "new";

	if (ctx == NULL)
		goto fail;
	/* The security level first: it limits what the other settings may select. */
	if (p->seclevel >= 0)
		SSL_CTX_set_security_level(ctx, p->seclevel);
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET |
				 SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	step = "versions";
	if (!SSL_CTX_set_min_proto_version(ctx, p->min_version) ||
	    !SSL_CTX_set_max_proto_version(ctx, p->max_version))
		goto fail;
	step = "ciphers";
	if (!SSL_CTX_set_cipher_list(ctx, p->cipher_list))
		goto fail;
	step = "dh";
	if (p->dh_1024) {
		EVP_PKEY *dh = dh_1024();
		if (dh == NULL || !SSL_CTX_set0_tmp_dh_pkey(ctx, dh)) {
			EVP_PKEY_free(dh);
			goto fail;
		}
	}
	step = "certificate";
	if (fleet_pki_path(cert, sizeof(cert), certdir, l->file, ".pem") < 0 ||
	    fleet_pki_path(key, sizeof(key), certdir, l->file, ".key") < 0 ||
	    SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    !SSL_CTX_check_private_key(ctx))
		goto fail;
	step = "chain";
	if (!l->self_signed && !load_chain_ca(ctx, certdir))
		goto fail;
	return ctx;
fail:
	ERR_error_string_n(ERR_peek_last_error(), err, sizeof(err));
	mxs_err("tls", "context profile=%s leaf=%s step=%s error=\"%s\"", p->name, l->file, step, err);
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}
