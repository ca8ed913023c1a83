/* Identity of an ingested file: re-ingesting it, or the rest of it, finds its scan. */
#include <openssl/evp.h>
#include <stdio.h>

#include "ingest.h"

int mxs_source_key(const void *head, size_t len, char *out, size_t outlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (outlen < 2 * 32 + 32 || !EVP_Digest(head, len, md, &mdlen, EVP_sha256(), NULL))
		return -1;
	int n = snprintf(out, outlen, "head-sha256:");
	for (unsigned i = 0; i < mdlen; i++)
		n += snprintf(out + n, outlen - (size_t)n, "%02x", md[i]);
	snprintf(out + n, outlen - (size_t)n, ":%zu", len);
	return 0;
}
