/*
 * mxsurvey report [--scan N] [--compare M] [--format text|csv|json|html] [-o FILE]:
 * the headline statistics of a scan, from the views of docs/views.md.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cliutil.h"
#include "commands.h"
#include "exitcode.h"
#include "ingest.h"
#include "log.h"
#include "report_model.h"

enum report_format {
	FORMAT_TEXT,
	FORMAT_CSV,
	FORMAT_JSON,
	FORMAT_HTML,
	FORMAT_LAST
};

static const struct {
	const char *name;
	int (*render)(const struct report *, FILE *);
} formats[FORMAT_LAST] = {
	[FORMAT_TEXT] = { "text", report_text },
	[FORMAT_CSV] = { "csv", report_csv },
	[FORMAT_JSON] = { "json", report_json },
	[FORMAT_HTML] = { "html", report_html },
};

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: mxsurvey report [OPTIONS]\n"
	        "  --db URL          PostgreSQL conninfo or URL (default as for ingest)\n"
	        "  --data-dir DIR    base of the embedded cluster\n"
	        "  --scan N          the scan to report (default: the latest)\n"
	        "  --compare M       also report what changed since scan M\n"
	        "  --format F        text (default), csv, json or html\n"
	        "  -o, --output FILE write there instead of stdout\n"
	        "  --log-level L     error, warn, info, debug\n");
}

/* The latest scan, or 0 when there is none. */
static int64_t latest_scan(PGconn *c)
{
	PGresult *r = PQexec(c, "SELECT max(id) FROM scans");
	int64_t id = 0;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return id;
}

int cmd_report(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "data-dir", required_argument, NULL, 'D' },
		{ "scan", required_argument, NULL, 's' },
		{ "compare", required_argument, NULL, 'c' },
		{ "format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct mxs_db_opts o = { 0 };
	int64_t scan = 0, compare = 0;
	enum report_format fmt = FORMAT_TEXT;
	const char *output = NULL;
	int c, lvl;

	while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': o.url = optarg; break;
		case 'D': o.data_dir = optarg; break;
		case 's':
			if (cli_id_arg("report", "--scan", optarg, &scan) < 0)
				return MXS_EXIT_USAGE;
			break;
		case 'c':
			if (cli_id_arg("report", "--compare", optarg, &compare) < 0)
				return MXS_EXIT_USAGE;
			break;
		case 'o': output = optarg; break;
		case 'f':
			fmt = FORMAT_LAST;
			for (int i = 0; i < FORMAT_LAST; i++)
				if (strcmp(optarg, formats[i].name) == 0)
					fmt = (enum report_format)i;
			if (fmt == FORMAT_LAST) {
				fprintf(stderr, "mxsurvey report: unknown format '%s'\n", optarg);
				return MXS_EXIT_USAGE;
			}
			break;
		case 'L':
			if ((lvl = mxs_log_level_parse(optarg)) < 0)
				return MXS_EXIT_USAGE;
			mxs_log_set_level((enum mxs_log_level)lvl);
			break;
		case 'h': usage(stdout); return MXS_EXIT_OK;
		default: usage(stderr); return MXS_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return MXS_EXIT_USAGE;
	}

	char err[1024];
	struct mxs_db *db;
	if (mxs_db_open(&o, &db, err, sizeof(err)) != 0) {
		fprintf(stderr, "mxsurvey report: database: %s\n", err);
		return MXS_EXIT_DB;
	}
	PGconn *pg = mxs_db_conn(db);
	if (scan == 0 && (scan = latest_scan(pg)) == 0) {
		fprintf(stderr, "mxsurvey report: no scan in the database yet\n");
		mxs_db_close(db);
		return MXS_EXIT_BAD_INPUT;
	}
	/* a done scan loaded by `ingest` has no stored rates yet: store them once, here */
	mxs_scan_rollup(db, scan);
	if (compare > 0)
		mxs_scan_rollup(db, compare);
	struct report r;
	if (report_build(pg, scan, compare, &r, err, sizeof(err)) != 0) {
		fprintf(stderr, "mxsurvey report: %s\n", err);
		mxs_db_close(db);
		return MXS_EXIT_BAD_INPUT;
	}
	FILE *out = output ? fopen(output, "w") : stdout;
	int rc = MXS_EXIT_OK;
	if (out == NULL) {
		fprintf(stderr, "mxsurvey report: %s: %s\n", output, strerror(errno));
		rc = MXS_EXIT_FAILURE;
	} else {
		if (formats[fmt].render(&r, out) != 0 || fflush(out) != 0) {
			fprintf(stderr, "mxsurvey report: write failed\n");
			rc = MXS_EXIT_FAILURE;
		}
		if (output != NULL && fclose(out) != 0)
			rc = MXS_EXIT_FAILURE;
	}
	report_free(&r);
	mxs_db_close(db);
	return rc;
}
