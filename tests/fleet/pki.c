#include "pki.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "behaviour.h"
#include "log.h"

#define PATH_MAX_LEN 4096
#define VALID_DAYS 3650   /* valid certificates outlive any reuse of a cert directory */

int fleet_pki_path(char *buf, size_t len, const char *dir, const char *file, const char *ext)
{
	int n = snprintf(buf, len, "%s/%s%s", dir, file, ext);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static int file_exists(const char *dir, const char *file, const char *ext)
{
	char path[PATH_MAX_LEN];

	return fleet_pki_path(path, sizeof(path), dir, file, ext) == 0 && access(path, R_OK) == 0;
}

static int pki_complete(const char *dir)
{
	if (!file_exists(dir, FLEET_CA_FILE, ".pem") || !file_exists(dir, FLEET_CA_FILE, ".key"))
		return 0;
	for (int i = 0; i < FB_LEAF_LAST; i++)
		if (!file_exists(dir, fb_leaves[i].file, ".pem") ||
		    !file_exists(dir, fb_leaves[i].file, ".key"))
			return 0;
	return 1;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return -1;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

static int set_serial(X509 *x)
{
	BIGNUM *bn = BN_new();
	ASN1_INTEGER *serial = NULL;
	int ok = bn != NULL && BN_rand(bn, 63, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) &&
		 (serial = BN_to_ASN1_INTEGER(bn, NULL)) != NULL && X509_set_serialNumber(x, serial);

	ASN1_INTEGER_free(serial);
	BN_free(bn);
	return ok ? 0 : -1;
}

/*
 * A certificate for key, valid from from_days to to_days relative to now. issuer NULL
 * makes it self-issued (signed by key). ca selects CA or server-leaf extensions.
 */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *san, int ca, int rsa,
		       X509 *issuer, EVP_PKEY *issuer_key, long from_days, long to_days)
{
	X509 *x = X509_new();
	X509_NAME *name;
	char san_value[300];

	if (x == NULL)
		return NULL;
	name = X509_get_subject_name(x);
	snprintf(san_value, sizeof(san_value), "DNS:%s", san != NULL ? san : "");
	if (!X509_set_version(x, X509_VERSION_3) || set_serial(x) < 0 ||
	    X509_time_adj_ex(X509_getm_notBefore(x), (int)from_days, 0, NULL) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), (int)to_days, 0, NULL) == NULL ||
	    !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
					(const unsigned char *)"mxsurvey test fleet", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn,
					-1, -1, 0) ||
	    !X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name) ||
	    !X509_set_pubkey(x, key))
		goto fail;
	if (add_ext(x, issuer != NULL ? issuer : x, NID_subject_key_identifier, "hash") < 0)
		goto fail;
	if (ca) {
		if (add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
		    add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") < 0)
			goto fail;
	} else {
		/* keyEncipherment: the static-RSA behaviour encrypts the premaster to this key. */
		if (add_ext(x, x, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
		    add_ext(x, x, NID_key_usage, rsa ? "critical,digitalSignature,keyEncipherment"
						     : "critical,digitalSignature") < 0 ||
		    add_ext(x, x, NID_ext_key_usage, "serverAuth") < 0 ||
		    add_ext(x, x, NID_subject_alt_name, san_value) < 0)
			goto fail;
	}
	if (issuer != NULL && add_ext(x, issuer, NID_authority_key_identifier, "keyid:always") < 0)
		goto fail;
	if (!X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()))
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

/* Write to a temporary name and rename, so a reader never sees half a file. */
static int write_pem(const char *dir, const char *file, X509 *cert, EVP_PKEY *key)
{
	char path[PATH_MAX_LEN], tmp[PATH_MAX_LEN + 32];
	const char *ext = cert != NULL ? ".pem" : ".key";
	BIO *bio;
	int ok;

	if (fleet_pki_path(path, sizeof(path), dir, file, ext) < 0)
		return -1;
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	bio = BIO_new_file(tmp, "w");
	if (bio == NULL)
		return -1;
	ok = cert != NULL ? PEM_write_bio_X509(bio, cert)
			  : PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
	ok = BIO_free(bio) && ok;
	if (!ok || (key != NULL && chmod(tmp, 0600) < 0) || rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int generate(const char *dir)
{
	EVP_PKEY *ca_key = EVP_EC_gen("P-256");
	X509 *ca = ca_key != NULL ? make_cert(ca_key, "mxsurvey fleet test CA", NULL, 1, 0, NULL,
					      NULL, -1, VALID_DAYS)
				  : NULL;
	int rc = ca != NULL ? 0 : -1;

	for (int i = 0; rc == 0 && i < FB_LEAF_LAST; i++) {
		const struct fb_leaf *l = &fb_leaves[i];
		EVP_PKEY *key = l->rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
		X509 *cert = NULL;

		if (key != NULL)
			cert = make_cert(key, l->san, l->san, 0, l->rsa, l->self_signed ? NULL : ca,
					 l->self_signed ? NULL : ca_key, l->expired ? -730 : -1,
					 l->expired ? -365 : VALID_DAYS);
		if (cert == NULL || write_pem(dir, l->file, NULL, key) < 0 ||
		    write_pem(dir, l->file, cert, NULL) < 0)
			rc = -1;
		X509_free(cert);
		EVP_PKEY_free(key);
	}
	/* The CA last: its presence is what a reader of a half-made directory checks first. */
	if (rc == 0 && (write_pem(dir, FLEET_CA_FILE, NULL, ca_key) < 0 ||
			write_pem(dir, FLEET_CA_FILE, ca, NULL) < 0))
		rc = -1;
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	return rc;
}

int fleet_pki_ensure(const char *dir)
{
	char lock[PATH_MAX_LEN];
	int fd, rc = 0;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		mxs_err("pki", "mkdir dir=%s error=\"%s\"", dir, strerror(errno));
		return -1;
	}
	if (fleet_pki_path(lock, sizeof(lock), dir, ".pki", ".lock") < 0)
		return -1;
	fd = open(lock, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		mxs_err("pki", "lock path=%s error=\"%s\"", lock, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (pki_complete(dir)) {
		mxs_info("pki", "reuse dir=%s", dir);
	} else if (generate(dir) < 0) {
		unsigned long e = ERR_get_error();
		mxs_err("pki", "generate dir=%s error=\"%s\"", dir,
			e != 0 ? ERR_reason_error_string(e) : strerror(errno));
		ERR_clear_error();
		rc = -1;
	} else {
		mxs_info("pki", "generated dir=%s", dir);
	}
	close(fd); /* releases the lock */
	return rc;
}
