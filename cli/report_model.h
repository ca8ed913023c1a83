/*
 * mxsurvey report: the headline statistics of a scan, read from the views
 * (docs/views.md), in four renderings. The model is a list of sections, each one query
 * result with a title, the denominator it is taken over, and how to chart it.
 */
#ifndef MXS_REPORT_MODEL_H
#define MXS_REPORT_MODEL_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>

enum report_chart {
	CHART_NONE,
	CHART_BARS,      /* one bar per row: label column, value column (a percentage) */
	CHART_GROUPED,   /* per row a group of bars: label column, every value column */
	CHART_LINES,     /* x = label column, one line per value column */
	CHART_LAST
};
extern const char *const report_chart_names[CHART_LAST];

struct report_section {
	const char *id;
	const char *title;
	const char *denominator;   /* what the percentages are shares of */
	enum report_chart chart;
	int label_col;             /* chart: column of the labels */
	int value_cols[4];         /* chart: columns of the values, -1 terminated */
	PGresult *res;             /* owned */
};

struct report {
	int64_t scan;
	int64_t compare;           /* 0: none */
	char scan_label[128];
	char scan_started[64];
	int nsections;
	struct report_section *sections;  /* owned */
};

/* Run every section's query for scan (and compare, when non-zero). 0, or -1 with err. */
int report_build(PGconn *c, int64_t scan, int64_t compare, struct report *r, char *err,
                 size_t errlen);
void report_free(struct report *r);

/* 1 if column col of the section holds numbers (integers or numeric). */
int report_numeric(const struct report_section *s, int col);

/* The report as a JSON document (owned by the caller); the HTML embeds it. */
json_t *report_to_json(const struct report *r);

int report_text(const struct report *r, FILE *out);
int report_csv(const struct report *r, FILE *out);
int report_json(const struct report *r, FILE *out);
int report_html(const struct report *r, FILE *out);

#endif
