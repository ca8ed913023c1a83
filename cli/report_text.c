/* The report as aligned plain-text tables, one per section. */
#include <stdlib.h>
#include <string.h>

#include "report_model.h"

static const char *cell(const struct report_section *s, int row, int col)
{
	return PQgetisnull(s->res, row, col) ? "-" : PQgetvalue(s->res, row, col);
}

/* Display width: count UTF-8 lead bytes, so names with accents still align. */
static int width(const char *p)
{
	int w = 0;
	for (; *p; p++)
		w += ((unsigned char)*p & 0xc0) != 0x80;
	return w;
}

static void section(const struct report_section *s, FILE *out)
{
	int nf = PQnfields(s->res), nt = PQntuples(s->res);
	int *w = calloc((size_t)nf, sizeof(int));
	if (w == NULL)
		return;
	fprintf(out, "== %s ==\n   share of: %s\n", s->title, s->denominator);
	for (int j = 0; j < nf; j++) {
		w[j] = width(PQfname(s->res, j));
		for (int i = 0; i < nt; i++)
			if (width(cell(s, i, j)) > w[j])
				w[j] = width(cell(s, i, j));
	}
	for (int j = 0; j < nf; j++)
		fprintf(out, "%s%*s%s", j ? "  " : "",
		        report_numeric(s, j) ? w[j] : j + 1 == nf ? 0 : -w[j], PQfname(s->res, j),
		        j + 1 == nf ? "\n" : "");
	for (int i = 0; i < nt; i++)
		for (int j = 0; j < nf; j++) {
			const char *v = cell(s, i, j);
			int pad = w[j] - width(v);
			if (report_numeric(s, j))
				fprintf(out, "%s%*s%s", j ? "  " : "", pad, "", v);
			else
				fprintf(out, "%s%s%*s", j ? "  " : "", v, j + 1 == nf ? 0 : pad, "");
			if (j + 1 == nf)
				fputc('\n', out);
		}
	if (nt == 0)
		fprintf(out, "(no data)\n");
	fputc('\n', out);
	free(w);
}

int report_text(const struct report *r, FILE *out)
{
	fprintf(out, "mxsurvey report: scan %lld%s%s%s, started %s", (long long)r->scan,
	        r->scan_label[0] ? " (" : "", r->scan_label, r->scan_label[0] ? ")" : "",
	        r->scan_started);
	if (r->compare)
		fprintf(out, ", compared with scan %lld", (long long)r->compare);
	fprintf(out, "\n\n");
	for (int i = 0; i < r->nsections; i++)
		section(&r->sections[i], out);
	return ferror(out) ? -1 : 0;
}
