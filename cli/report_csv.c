/*
 * The report as CSV (RFC 4180): every section is a block of its own, a header row and
 * its rows, each row starting with the section id; blocks are separated by a blank line.
 */
#include <string.h>

#include "report_model.h"

static void field(const char *v, FILE *out)
{
	if (strpbrk(v, ",\"\r\n") == NULL) {
		fputs(v, out);
		return;
	}
	fputc('"', out);
	for (; *v; v++) {
		if (*v == '"')
			fputc('"', out);
		fputc(*v, out);
	}
	fputc('"', out);
}

int report_csv(const struct report *r, FILE *out)
{
	for (int k = 0; k < r->nsections; k++) {
		const struct report_section *s = &r->sections[k];
		int nf = PQnfields(s->res), nt = PQntuples(s->res);
		if (k)
			fputs("\r\n", out);
		fputs("section", out);
		for (int j = 0; j < nf; j++) {
			fputc(',', out);
			field(PQfname(s->res, j), out);
		}
		fputs("\r\n", out);
		for (int i = 0; i < nt; i++) {
			field(s->id, out);
			for (int j = 0; j < nf; j++) {
				fputc(',', out);
				if (!PQgetisnull(s->res, i, j))
					field(PQgetvalue(s->res, i, j), out);
			}
			fputs("\r\n", out);
		}
	}
	return ferror(out) ? -1 : 0;
}
