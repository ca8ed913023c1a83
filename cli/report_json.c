/* The report as one JSON document; the HTML report embeds the same document. */
#include <jansson.h>
#include <stdlib.h>

#include "report_model.h"

/* A cell as JSON: numbers as numbers, SQL NULL as null. */
static json_t *cell(const struct report_section *s, int row, int col)
{
	if (PQgetisnull(s->res, row, col))
		return json_null();
	const char *v = PQgetvalue(s->res, row, col);
	if (report_numeric(s, col)) {
		Oid t = PQftype(s->res, col);
		if (t == 20 || t == 21 || t == 23)
			return json_integer(strtoll(v, NULL, 10));
		return json_real(strtod(v, NULL));
	}
	return json_string(v);
}

json_t *report_to_json(const struct report *r)
{
	json_t *doc = json_object(), *secs = json_array();
	json_object_set_new(doc, "scan", json_pack("{s:I, s:s, s:s}", "id", (json_int_t)r->scan,
	                                           "label", r->scan_label, "started", r->scan_started));
	json_object_set_new(doc, "compare", r->compare ? json_integer(r->compare) : json_null());
	for (int k = 0; k < r->nsections; k++) {
		const struct report_section *s = &r->sections[k];
		int nf = PQnfields(s->res), nt = PQntuples(s->res);
		json_t *cols = json_array(), *rows = json_array(), *vals = json_array();
		for (int j = 0; j < nf; j++)
			json_array_append_new(cols, json_string(PQfname(s->res, j)));
		for (int i = 0; i < nt; i++) {
			json_t *row = json_array();
			for (int j = 0; j < nf; j++)
				json_array_append_new(row, cell(s, i, j));
			json_array_append_new(rows, row);
		}
		for (int v = 0; v < 4 && s->value_cols[v] >= 0; v++)
			json_array_append_new(vals, json_integer(s->value_cols[v]));
		json_array_append_new(secs, json_pack("{s:s, s:s, s:s, s:{s:s, s:i, s:o}, s:o, s:o}",
		                                      "id", s->id, "title", s->title,
		                                      "denominator", s->denominator, "chart", "kind",
		                                      report_chart_names[s->chart], "label", s->label_col,
		                                      "values", vals, "columns", cols, "rows", rows));
	}
	json_object_set_new(doc, "sections", secs);
	return doc;
}

int report_json(const struct report *r, FILE *out)
{
	json_t *doc = report_to_json(r);
	if (doc == NULL)
		return -1;
	int rc = json_dumpf(doc, out, JSON_INDENT(1) | JSON_REAL_PRECISION(12));
	fputc('\n', out);
	json_decref(doc);
	return rc == 0 && !ferror(out) ? 0 : -1;
}
