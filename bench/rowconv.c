/*
 * mxsurvey-rowconv: the client side of `mxsurvey ingest` without a database, for
 * bench/ingest. Figures only, nothing asserted.
 *
 *   mxsurvey-rowconv [--batch-rows N] [--repeat R] FILE
 *
 * Converts every line of FILE (JSONL) to COPY rows the way one ingest connection does
 * (ingest/rowconv.h: tokenizing, values stored once, certificates sent once, COPY
 * encoding), N lines per batch (default 10,000, as ingest), R times over, and prints the
 * CPU (user + sys) per line, the COPY bytes per line and their SHA-256 (the same rows
 * from two builds have the same digest). The file is read into memory
 * first, so reading is not counted. Unlike wall time, the CPU per line hardly depends on
 * what else runs on the machine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <openssl/evp.h>

#include "rowconv.h"

static double cpu_now(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0, got;
	if (f == NULL)
		return NULL;
	do {
		if (cap - n < (1u << 20)) {
			cap = cap ? cap * 2 : (16u << 20);
			char *b = realloc(buf, cap);
			if (b == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = b;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	fclose(f);
	*len = n;
	return buf;
}

/* Count and digest a batch's rows (results, certificates, values stored once), then
 * empty the buffers. The digest's CPU is added to *skip (it is not ingest's). */
static void add_rows(struct rowbufs *b, double *bytes, EVP_MD_CTX *md, double *skip)
{
	double t = cpu_now();
	const struct copybuf *all[2 + IK_LAST] = { &b->results, &b->certs };
	for (int k = 0; k < IK_LAST; k++)
		all[2 + k] = &b->dict.rows[k];
	for (int k = 0; k < 2 + IK_LAST; k++) {
		*bytes += (double)all[k]->len;
		if (all[k]->len > 0)
			EVP_DigestUpdate(md, all[k]->data, all[k]->len);
	}
	rowbufs_reset(b);
	*skip += cpu_now() - t;
}

int main(int argc, char **argv)
{
	size_t batch = 10000;
	int repeat = 1;
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--batch-rows") == 0 && i + 1 < argc)
			batch = (size_t)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
			repeat = atoi(argv[++i]);
		else if (path == NULL && argv[i][0] != '-')
			path = argv[i];
		else {
			fprintf(stderr, "usage: mxsurvey-rowconv [--batch-rows N] [--repeat R] FILE\n");
			return 2;
		}
	}
	if (path == NULL || batch == 0 || repeat < 1) {
		fprintf(stderr, "usage: mxsurvey-rowconv [--batch-rows N] [--repeat R] FILE\n");
		return 2;
	}
	size_t len;
	char *data = slurp(path, &len);
	if (data == NULL) {
		perror(path);
		return 1;
	}
	struct rowconv *rc = rowconv_new();
	struct rowbufs bufs;
	rowbufs_init(&bufs);
	if (rc == NULL) {
		fprintf(stderr, "out of memory\n");
		return 1;
	}
	size_t lines = 0, kinds[ROWCONV_KIND_LAST] = { 0 };
	double bytes = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	double skip = 0;
	double t0 = cpu_now();
	for (int r = 0; r < repeat; r++) {
		/* each pass is a new connection: nothing sent yet */
		rowconv_forget_sent(rc);
		size_t in_batch = 0;
		for (char *p = data, *end = data + len; p < end;) {
			char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
			kinds[rowconv_line(rc, 1, p, n, &bufs)]++;
			lines++;
			p += n + 1;
			if (++in_batch == batch) {
				add_rows(&bufs, &bytes, md, &skip);
				in_batch = 0;
			}
		}
		add_rows(&bufs, &bytes, md, &skip);
	}
	double cpu = cpu_now() - t0 - skip;
	printf("lines: %zu (%zu results, %zu rejects, %zu other)\n", lines, kinds[ROWCONV_RESULT],
	       kinds[ROWCONV_REJECT], lines - kinds[ROWCONV_RESULT] - kinds[ROWCONV_REJECT]);
	printf("convert CPU: %.2f s = %.2f us per line; COPY output %.0f bytes per line\n", cpu,
	       cpu / (double)lines * 1e6, bytes / (double)lines);
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dn = 0;
	EVP_DigestFinal_ex(md, d, &dn);
	EVP_MD_CTX_free(md);
	printf("rows' SHA-256: ");
	for (unsigned i = 0; i < dn; i++)
		printf("%02x", d[i]);
	printf("\n");
	rowbufs_free(&bufs);
	rowconv_free(rc);
	free(data);
	return kinds[ROWCONV_NOMEM] ? 1 : 0;
}
