/*
 * mxsurvey findings [--scan N] [--network NAME] [--format text|csv|json|html] [-o FILE]:
 * per address the problems found (view v_findings_net: the rules live in SQL, so the
 * report's per-network section counts the same problems), grouped by customer network
 * and contact, worst first, for an operator to send to the people who can fix them.
 * Exit 0: nothing found; 7 (MXS_EXIT_FOUND): problems found.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cliutil.h"
#include "commands.h"
#include "exitcode.h"
#include "ingest.h"
#include "log.h"

enum fformat { FF_TEXT, FF_CSV, FF_JSON, FF_HTML, FF_LAST };
static const char *const fformat_names[FF_LAST] = { "text", "csv", "json", "html" };

/* Columns of the findings query, in order. */
enum col { C_NETWORK, C_CONTACT, C_IP, C_PORT, C_MX, C_SEVERITY, C_CODE, C_PROBLEM, C_DETAIL,
	   C_ASN, C_LAST };
static const char *const col_names[C_LAST] = {
	"network", "contact", "ip", "port", "mx", "severity", "code", "problem", "detail", "asn",
};

/* Groups (network, contact) worst first: lowest severity number, then most problems. */
static const char findings_sql[] =
	"SELECT network, coalesce(contact, ''), host(ip), port::text, coalesce(mx, ''),"
	" severity_name, code, explanation, coalesce(detail, ''), coalesce(asn::text, '')"
	" FROM (SELECT f.*, min(severity) OVER g AS worst, count(*) OVER g AS n"
	"  FROM v_findings_net f WHERE scan_id = $1 AND ($2::text IS NULL OR network = $2)"
	"  WINDOW g AS (PARTITION BY network, contact)) x"
	" ORDER BY worst, n DESC, network, contact, severity, ip, port, ord";

struct scaninfo {
	char label[128], started[64], set[256];
};

static const char *v(PGresult *r, int i, enum col c)
{
	return PQgetvalue(r, i, (int)c);
}

static bool same_group(PGresult *r, int a, int b)
{
	return strcmp(v(r, a, C_NETWORK), v(r, b, C_NETWORK)) == 0 &&
	       strcmp(v(r, a, C_CONTACT), v(r, b, C_CONTACT)) == 0;
}

/* Rows of the group starting at row i; addresses (ip, port) among them in *addrs. */
static int group_len(PGresult *r, int i, int *addrs)
{
	int n = PQntuples(r), k = i;

	*addrs = 0;
	for (; k < n && same_group(r, i, k); k++) {
		bool seen = false;
		for (int j = i; j < k && !seen; j++)
			seen = strcmp(v(r, j, C_IP), v(r, k, C_IP)) == 0 &&
			       strcmp(v(r, j, C_PORT), v(r, k, C_PORT)) == 0;
		if (!seen)
			(*addrs)++;
	}
	return k - i;
}

static int render_text(PGresult *r, int64_t scan, const struct scaninfo *si, FILE *out)
{
	int n = PQntuples(r), ngroups = 0, addrs;

	for (int i = 0; i < n; i += group_len(r, i, &addrs))
		ngroups++;
	fprintf(out, "mxsurvey findings: scan %" PRId64 "%s%s%s, started %s; networks: %s\n", scan,
	        si->label[0] ? " (" : "", si->label, si->label[0] ? ")" : "", si->started, si->set);
	fprintf(out, "%d problem%s in %d network group%s\n", n, n == 1 ? "" : "s", ngroups,
	        ngroups == 1 ? "" : "s");
	for (int i = 0; i < n;) {
		int len = group_len(r, i, &addrs);
		fprintf(out, "\n== %s%s%s%s: %d problem%s at %d address%s\n", v(r, i, C_NETWORK),
		        v(r, i, C_CONTACT)[0] ? " (contact: " : "", v(r, i, C_CONTACT),
		        v(r, i, C_CONTACT)[0] ? ")" : "", len, len == 1 ? "" : "s", addrs,
		        addrs == 1 ? "" : "es");
		for (int k = i; k < i + len; k++) {
			fprintf(out, "  %-8s  %-15s %-5s %-28s %s%s%s%s\n", v(r, k, C_SEVERITY), v(r, k, C_IP),
			        v(r, k, C_PORT), v(r, k, C_MX)[0] ? v(r, k, C_MX) : "-", v(r, k, C_CODE),
			        v(r, k, C_DETAIL)[0] ? " (" : "", v(r, k, C_DETAIL), v(r, k, C_DETAIL)[0] ? ")" : "");
			fprintf(out, "            %s\n", v(r, k, C_PROBLEM));
		}
		i += len;
	}
	return ferror(out) ? -1 : 0;
}

static void csv_field(const char *s, FILE *out)
{
	if (strpbrk(s, ",\"\r\n") == NULL) {
		fputs(s, out);
		return;
	}
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

static int render_csv(PGresult *r, FILE *out)
{
	for (int c = 0; c < C_LAST; c++) {
		if (c)
			fputc(',', out);
		fputs(col_names[c], out);
	}
	fputs("\r\n", out);
	for (int i = 0; i < PQntuples(r); i++) {
		for (int c = 0; c < C_LAST; c++) {
			if (c)
				fputc(',', out);
			csv_field(v(r, i, (enum col)c), out);
		}
		fputs("\r\n", out);
	}
	return ferror(out) ? -1 : 0;
}

static json_t *to_json(PGresult *r, int64_t scan, const struct scaninfo *si)
{
	json_t *doc = json_object(), *groups = json_array();
	int n = PQntuples(r), addrs;

	json_object_set_new(doc, "scan", json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)scan,
	                                           "label", si->label, "started", si->started,
	                                           "networks", si->set));
	json_object_set_new(doc, "problems", json_integer(n));
	for (int i = 0; i < n;) {
		int len = group_len(r, i, &addrs);
		json_t *list = json_array();
		for (int k = i; k < i + len; k++) {
			json_t *o = json_object();
			for (int c = C_IP; c < C_LAST; c++) {
				const char *s = v(r, k, (enum col)c);
				if (c == C_PORT)
					json_object_set_new(o, col_names[c], json_integer(strtol(s, NULL, 10)));
				else if (c == C_ASN)
					json_object_set_new(o, col_names[c], s[0] ? json_integer(strtoll(s, NULL, 10)) : json_null());
				else
					json_object_set_new(o, col_names[c], s[0] || c != C_DETAIL ? json_string(s) : json_null());
			}
			json_array_append_new(list, o);
		}
		json_array_append_new(groups, json_pack("{s:s, s:o, s:i, s:o}", "network", v(r, i, C_NETWORK),
		                                        "contact", v(r, i, C_CONTACT)[0] ? json_string(v(r, i, C_CONTACT)) : json_null(),
		                                        "addresses", addrs, "findings", list));
		i += len;
	}
	json_object_set_new(doc, "networks", groups);
	return doc;
}

static int render_json(PGresult *r, int64_t scan, const struct scaninfo *si, FILE *out)
{
	json_t *doc = to_json(r, scan, si);
	int rc = doc ? json_dumpf(doc, out, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : -1;

	fputc('\n', out);
	json_decref(doc);
	return rc == 0 && !ferror(out) ? 0 : -1;
}

static const char html_css[] =
	"body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}"
	"header{background:#1d2330;color:#fff;padding:16px 28px}header h1{margin:0;font-size:20px}"
	"header p{margin:4px 0 0;color:#b9c0cc}main{padding:12px 28px}"
	"section{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.12);"
	"padding:12px 18px;margin:0 0 16px}section h2{font-size:15px;margin:0 0 8px}"
	"table{border-collapse:collapse;width:100%;font-size:12.5px}"
	"th,td{padding:3px 8px;border-bottom:1px solid #e6e8ec;text-align:left;vertical-align:top}"
	"th{color:#5f6b7a}.critical{color:#b3261e;font-weight:600}.high{color:#b35c00;font-weight:600}"
	".medium{color:#6b5900}";

/*
 * One self-contained page: a section per network group, a row per problem carrying
 * data-ip/data-code; a small script counts the rows into <body data-findings="N">,
 * which the tests read back from a real browser.
 */
static int render_html(PGresult *r, int64_t scan, const struct scaninfo *si, FILE *out)
{
	int n = PQntuples(r), addrs;

	fprintf(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	             "<title>mxsurvey findings: scan %" PRId64 "</title>\n<style>%s</style></head>\n"
	             "<body>\n<header><h1>mxsurvey findings: scan %" PRId64, scan, html_css, scan);
	if (si->label[0]) {
		fputs(" (", out);
		cli_html_esc(si->label, out);
		fputc(')', out);
	}
	fputs("</h1><p>started ", out);
	cli_html_esc(si->started, out);
	fputs("; networks: ", out);
	cli_html_esc(si->set, out);
	fprintf(out, "; %d problem%s</p></header>\n<main>\n", n, n == 1 ? "" : "s");
	if (n == 0)
		fputs("<p>No problem found.</p>\n", out);
	for (int i = 0; i < n;) {
		int len = group_len(r, i, &addrs);
		fputs("<section data-network=\"", out);
		cli_html_esc(v(r, i, C_NETWORK), out);
		fputs("\"><h2>", out);
		cli_html_esc(v(r, i, C_NETWORK), out);
		if (v(r, i, C_CONTACT)[0]) {
			fputs(" &mdash; contact: ", out);
			cli_html_esc(v(r, i, C_CONTACT), out);
		}
		fprintf(out, " (%d problem%s at %d address%s)</h2>\n<table><thead><tr><th>severity</th>"
		             "<th>address</th><th>MX</th><th>code</th><th>problem</th><th>detail</th></tr>"
		             "</thead><tbody>\n", len, len == 1 ? "" : "s", addrs, addrs == 1 ? "" : "es");
		for (int k = i; k < i + len; k++) {
			fputs("<tr data-ip=\"", out);
			cli_html_esc(v(r, k, C_IP), out);
			fputs("\" data-code=\"", out);
			cli_html_esc(v(r, k, C_CODE), out);
			fputs("\"><td class=\"", out);
			cli_html_esc(v(r, k, C_SEVERITY), out);
			fputs("\">", out);
			cli_html_esc(v(r, k, C_SEVERITY), out);
			fputs("</td><td>", out);
			cli_html_esc(v(r, k, C_IP), out);
			fputc(':', out);
			cli_html_esc(v(r, k, C_PORT), out);
			fputs("</td><td>", out);
			cli_html_esc(v(r, k, C_MX), out);
			fputs("</td><td>", out);
			cli_html_esc(v(r, k, C_CODE), out);
			fputs("</td><td>", out);
			cli_html_esc(v(r, k, C_PROBLEM), out);
			fputs("</td><td>", out);
			cli_html_esc(v(r, k, C_DETAIL), out);
			fputs("</td></tr>\n", out);
		}
		fputs("</tbody></table></section>\n", out);
		i += len;
	}
	fputs("</main>\n<script>document.body.setAttribute('data-findings',"
	      "String(document.querySelectorAll('tr[data-code]').length));</script>\n</body></html>\n",
	      out);
	return ferror(out) ? -1 : 0;
}

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: mxsurvey findings [OPTIONS]\n"
	        "Per address the problems found, grouped by customer network and contact (loaded\n"
	        "with 'mxsurvey db networks FILE'), worst first, each with a stable code and a\n"
	        "sentence to send to the people who run the server (docs/views.md lists the codes).\n"
	        "  --db URL          PostgreSQL conninfo or URL (default as for ingest)\n"
	        "  --data-dir DIR    base of the embedded cluster\n"
	        "  --scan N          the scan (default: the latest)\n"
	        "  --network NAME    only this network (a name from the networks file, or ASnnn)\n"
	        "  --format F        text (default), csv, json or html\n"
	        "  -o, --output FILE write there instead of stdout\n"
	        "  --log-level L     error, warn, info or debug\n"
	        "Exit status: 0 no problem found, 7 problems found, 2 usage, 4 no such scan,\n"
	        "5 database unreachable, 1 failure.\n");
}

int cmd_findings(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "data-dir", required_argument, NULL, 'D' },
		{ "scan", required_argument, NULL, 's' },
		{ "network", required_argument, NULL, 'n' },
		{ "format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct mxs_db_opts o = { 0 };
	struct scaninfo si = { "", "", "" };
	enum fformat fmt = FF_TEXT;
	const char *output = NULL, *network = NULL;
	int64_t scan = 0;
	int c, lvl, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': o.url = optarg; break;
		case 'D': o.data_dir = optarg; break;
		case 's':
			if (cli_id_arg("findings", "--scan", optarg, &scan) < 0)
				return MXS_EXIT_USAGE;
			break;
		case 'n': network = optarg; break;
		case 'o': output = optarg; break;
		case 'f':
			fmt = FF_LAST;
			for (int i = 0; i < FF_LAST; i++)
				if (strcmp(optarg, fformat_names[i]) == 0)
					fmt = (enum fformat)i;
			if (fmt == FF_LAST) {
				fprintf(stderr, "mxsurvey findings: unknown format '%s'\n", optarg);
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

	char err[1024], sid[32];
	struct mxs_db *db;
	if (mxs_db_open(&o, &db, err, sizeof(err)) != 0) {
		fprintf(stderr, "mxsurvey findings: database: %s\n", err);
		return MXS_EXIT_DB;
	}
	PGconn *pg = mxs_db_conn(db);
	snprintf(sid, sizeof(sid), "%" PRId64, scan);
	const char *hp[1] = { sid };
	PGresult *h = PQexecParams(pg,
	        "SELECT s.id, coalesce(s.label, ''), to_char(s.started_at, 'YYYY-MM-DD HH24:MI:SS TZ'),"
	        " CASE WHEN n.id IS NULL THEN 'none loaded (every address is \"(no network)\")'"
	        "  ELSE 'set ' || n.id || coalesce(' from ' || n.source, '') || ', loaded '"
	        "  || to_char(n.loaded_at, 'YYYY-MM-DD HH24:MI') END"
	        " FROM scans s LEFT JOIN network_sets n ON n.id = s.network_set_id"
	        " WHERE s.id = CASE WHEN $1::bigint > 0 THEN $1::bigint ELSE (SELECT max(id) FROM scans) END",
	        1, NULL, hp, NULL, NULL, 0);
	if (PQresultStatus(h) != PGRES_TUPLES_OK || PQntuples(h) != 1) {
		if (PQresultStatus(h) != PGRES_TUPLES_OK)
			fprintf(stderr, "mxsurvey findings: %s", PQresultErrorMessage(h));
		else if (scan > 0)
			fprintf(stderr, "mxsurvey findings: no scan %" PRId64 "\n", scan);
		else
			fprintf(stderr, "mxsurvey findings: no scan in the database yet\n");
		PQclear(h);
		mxs_db_close(db);
		return MXS_EXIT_BAD_INPUT;
	}
	scan = strtoll(PQgetvalue(h, 0, 0), NULL, 10);
	snprintf(si.label, sizeof(si.label), "%s", PQgetvalue(h, 0, 1));
	snprintf(si.started, sizeof(si.started), "%s", PQgetvalue(h, 0, 2));
	snprintf(si.set, sizeof(si.set), "%s", PQgetvalue(h, 0, 3));
	PQclear(h);

	snprintf(sid, sizeof(sid), "%" PRId64, scan);
	const char *params[2] = { sid, network };
	/* Every address of the scan is judged: from about 10,000 addresses on, the plan's
	 * estimated cost crosses jit_above_cost, and compiling it took longer (5 s at
	 * 100,000 addresses) than running it. Failing to set it only costs time. */
	PQclear(PQexec(pg, "SET jit = off"));
	PGresult *r = PQexecParams(pg, findings_sql, 2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "mxsurvey findings: %s", PQresultErrorMessage(r));
		PQclear(r);
		mxs_db_close(db);
		return MXS_EXIT_DB;
	}
	FILE *out = output ? fopen(output, "w") : stdout;
	if (out == NULL) {
		fprintf(stderr, "mxsurvey findings: %s: %s\n", output, strerror(errno));
		rc = MXS_EXIT_FAILURE;
	} else {
		int w = fmt == FF_CSV ? render_csv(r, out)
		      : fmt == FF_JSON ? render_json(r, scan, &si, out)
		      : fmt == FF_HTML ? render_html(r, scan, &si, out)
		      : render_text(r, scan, &si, out);
		rc = PQntuples(r) > 0 ? MXS_EXIT_FOUND : MXS_EXIT_OK;
		if (w != 0 || fflush(out) != 0) {
			fprintf(stderr, "mxsurvey findings: write failed\n");
			rc = MXS_EXIT_FAILURE;
		}
		if (output != NULL && fclose(out) != 0)
			rc = MXS_EXIT_FAILURE;
	}
	PQclear(r);
	mxs_db_close(db);
	return rc;
}
