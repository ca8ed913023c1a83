/*
 * mxsurvey-rowconv: the client side of `mxsurvey ingest` without a database, for
 * bench/ingest. Figures only, nothing asserted.
 *
 *   mxsurvey-rowconv [--batch-rows N] [--repeat R] FILE
 *
 * Converts every line of FILE (JSONL) to COPY rows the way one ingest connection does
 * (ingest/rowconv.h: tokenizing, values stored once, certificates sent once, COPY
 * encoding), N lines per batch (default 10,000, as ingest), R times over, and prints the
 * CPU (user + sys) per line and the COPY bytes per line. The file is read into memory
 * first, so reading is not counted. Unlike wall time, the CPU per line hardly depends on
 * what else runs on the machine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

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
				bytes += (double)bufs.results.len + (double)bufs.certs.len;
				for (int k = 0; k < IK_LAST; k++)
					bytes += (double)bufs.dict.rows[k].len;
				rowbufs_reset(&bufs);
				in_batch = 0;
			}
		}
		bytes += (double)bufs.results.len + (double)bufs.certs.len;
		for (int k = 0; k < IK_LAST; k++)
			bytes += (double)bufs.dict.rows[k].len;
		rowbufs_reset(&bufs);
	}
	double cpu = cpu_now() - t0;
	printf("lines: %zu (%zu results, %zu rejects, %zu other)\n", lines, kinds[ROWCONV_RESULT],
	       kinds[ROWCONV_REJECT], lines - kinds[ROWCONV_RESULT] - kinds[ROWCONV_REJECT]);
	printf("convert CPU: %.2f s = %.2f us per line; COPY output %.0f bytes per line\n", cpu,
	       cpu / (double)lines * 1e6, bytes / (double)lines);
	rowbufs_free(&bufs);
	rowconv_free(rc);
	free(data);
	return kinds[ROWCONV_NOMEM] ? 1 : 0;
}
