/*
 * The fleet's test PKI, one directory of PEM files: the CA (ca.pem, ca.key) and, for
 * every entry of fb_leaves, <file>.pem (the leaf alone) and <file>.key. Generated with
 * the OpenSSL API in well under a second; reused when every file is already present.
 */
#ifndef FLEET_PKI_H
#define FLEET_PKI_H

#include <stddef.h>

#define FLEET_CA_FILE "ca"   /* ca.pem, ca.key */

/*
 * Make sure dir holds the whole PKI, creating dir (one level) and generating every file
 * if any is missing. Concurrent callers on the same dir are serialised by a lock file.
 * Returns 0, or -1 after logging why.
 */
int fleet_pki_ensure(const char *dir);

/* "<dir>/<file><ext>" into buf; returns 0, or -1 if it does not fit. */
int fleet_pki_path(char *buf, size_t len, const char *dir, const char *file, const char *ext);

#endif
