/*
 * mxsurvey survey: resolve -> scan -> ingest in one process on one event loop, then the
 * report. Streaming throughout: input lines are read only while both the resolver and
 * the scanner have room, targets go from the resolver straight into the scanner, and
 * every record goes into the ingest sink as it is made, so no stage waits for the whole
 * of the one before it and memory does not grow with the length of the list.
 */
#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blocklist.h"
#include "cliutil.h"
#include "commands.h"
#include "dbout.h"
#include "duration.h"
#include "evbase.h"
#include "exitcode.h"
#include "linein.h"
#include "log.h"
#include "outbuf.h"
#include "report_model.h"
#include "resolve.h"
#include "resume.h"
#include "scan_opts.h"
#include "scanner.h"

#define MAX_DNS_SERVERS 16

struct survey {
	struct event_base *base;
	struct mxs_scanner *sc;
	struct mxs_resolver *res;
	struct mxs_linein *in;
	struct dbout db;
	struct outbuf json;      /* -o FILE: every record as JSON lines too (fd -1: none) */
	struct resume *resume;   /* --resume: what each sink holds */
	uint64_t file_only;      /* records probed again for the file alone (resume) */
	bool stopped, input_done, feeding, failed;
	uint64_t bad_lines, domains;
	struct event *status_ev;
	bool status;
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: mxsurvey survey [OPTIONS] DOMAINS_FILE\n"
"Resolve a list of mail domains (one per line, or 'rank,domain' as in the Tranco list),\n"
"probe every MX address for STARTTLS, store everything in PostgreSQL, and print the\n"
"report. All three stages run at once in one process. '-' reads stdin.\n"
"\n"
"Database and output:\n"
"  --db URL                PostgreSQL URL; default ('auto'): $DATABASE_URL, libpq's\n"
"                          environment, else mxsurvey's own embedded cluster\n"
"  --label NAME            name the scan; a later survey with the same label continues it\n"
"  --scan ID               add to an existing scan\n"
"  --resume                with --label or --scan: skip addresses that already have a result;\n"
"                          with -o, FILE is appended to and what it holds counts too\n"
"  --data-dir DIR          embedded cluster and spool directory (default ~/.local/share/mxsurvey)\n"
"  -o, --output FILE       also write every record as JSON lines to FILE (a pipe or FIFO\n"
"                          is written without holding the probes up, as scan does)\n"
"  --output-buffer SIZE    results held for a slow reader of -o (K, M suffixes; default\n"
"                          16M); when full, no new target starts until it drains\n"
"  --report FORMAT         text (default), csv, json, html, or none\n"
"  --report-file FILE      write the report to FILE instead of stdout\n"
"DNS:\n"
"  --dns-server IP[:PORT]  resolver to ask (repeatable; default /etc/resolv.conf)\n"
"  --dns-concurrency N     most domains resolved at once (default 1000; queries in\n"
"                          flight adapt to the resolver below that)\n"
"  --dns-timeout DUR       per DNS try (default 3s)   --dns-retries N (default 2)\n"
"  --ipv4-only, --ipv6-only   which address records to look up\n"
"  --no-policy             skip MTA-STS, TLSRPT and TLSA\n"
"  --mta-sts-ca-file FILE  trust store for MTA-STS policy fetches (default: system)\n"
"  --mta-sts-port N        port for MTA-STS policy fetches (default 443)\n"
"Probing:\n");
	scan_opts_usage(f);
	fprintf(f, "Exit status: 0 done, 2 usage, 3 stopped early (resume to finish), 4 bad input,\n"
		   "5 database unreachable, 6 done but results wait in the spool, 1 failure.\n");
}

static void write_json(struct survey *s, const char *line, size_t len)
{
	if (s->json.fd >= 0)
		outbuf_put(&s->json, line, len);   /* a failure is logged and marks the run failed */
}

/* -o FILE failed (logged): the database goes on; the run ends as failed. */
static void json_failed(void *arg)
{
	struct survey *s = arg;
	s->failed = true;
}

static int emit(void *arg, const char *line, size_t len, enum mxs_outcome outcome)
{
	struct survey *s = arg;
	/* the resolver emits each (MX name, address) pair once: no duplicates to filter */
	write_json(s, line, len);
	if (s->resume != NULL && resume_db_has(s->resume, line, len)) {
		/* the database has its row: made again for the file (a result is counted) */
		if (outcome != MXS_OUT_NONE)
			s->file_only++;
		return 0;
	}
	return dbout_put(&s->db, line, len);
}

static void on_target(json_t *t, void *arg)
{
	struct survey *s = arg;
	mxs_scanner_add_json(s->sc, t);
	json_decref(t);
}

static void on_domain(json_t *d, void *arg)
{
	struct survey *s = arg;
	char *line = json_dumps(d, JSON_COMPACT);

	s->domains++;
	if (line != NULL) {
		/* a resumed survey resolves every domain again: one record of each in the file */
		const char *name = json_string_value(json_object_get(d, "domain"));
		if (s->resume == NULL || name == NULL || !resume_file_has_domain(s->resume, name))
			write_json(s, line, strlen(line));
		dbout_put(&s->db, line, strlen(line));
	}
	free(line);
	json_decref(d);
}

static void on_line(void *arg, const char *line, size_t len, bool truncated)
{
	struct survey *s = arg;
	char err[256];
	(void)truncated;

	if (mxs_resolver_feed(s->res, line, len, (unsigned long)mxs_linein_lineno(s->in), err,
			      sizeof(err)) == MXS_FEED_BAD) {
		s->bad_lines++;
		mxs_warn("survey", "line %zu: %s", mxs_linein_lineno(s->in), err);
	}
}

/* Read input while both stages have room; called again by whichever frees room. */
static void feed(void *arg)
{
	struct survey *s = arg;

	if (s->feeding || s->stopped || s->input_done)
		return;
	s->feeding = true;
	while (mxs_resolver_ready(s->res) && mxs_scanner_room(s->sc) > 0) {
		if (mxs_linein_read(s->in, 1, on_line, s, feed) == 0)
			break;
	}
	if (mxs_linein_eof(s->in)) {
		s->input_done = true;
		mxs_resolver_finish(s->res);
	}
	s->feeding = false;
}

static void resolver_done(void *arg)
{
	struct survey *s = arg;
	mxs_scanner_input_done(s->sc);
}

static void scanner_done(void *arg)
{
	struct survey *s = arg;
	event_base_loopexit(s->base, NULL);
}

static double progress(void *arg)
{
	struct survey *s = arg;
	return mxs_linein_progress(s->in);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct survey *s = arg;
	(void)what;
	mxs_info("survey", "signal %d: %s", (int)sig,
		 s->stopped ? "interrupting probes in flight" : "finishing probes in flight (signal again to cut short)");
	s->stopped = true;
	mxs_scanner_stop(s->sc);
}

static void status_tick(evutil_socket_t fd, short what, void *arg)
{
	struct survey *s = arg;
	struct mxs_resolve_stats st;
	(void)fd;
	(void)what;
	mxs_resolver_stats(s->res, &st);
	fprintf(stderr, "resolve: %lu domains done, %lu in flight, %lu targets, %lu queries, "
		"dns window %lu, %lu waiting, %lu timeouts\n",
		st.domains_done, st.in_flight, st.targets, st.queries, st.dns_window, st.dns_waiting,
		st.timeouts);
}

static int print_report(struct survey *s, const char *format, const char *path)
{
	struct report rep;
	char err[512];
	FILE *out = stdout;
	int r;

	if (strcmp(format, "none") == 0)
		return 0;
	if (report_build(mxs_db_conn(s->db.db), s->db.scan_id, 0, &rep, err, sizeof(err)) < 0) {
		mxs_err("survey", "report: %s", err);
		return -1;
	}
	if (path != NULL && (out = fopen(path, "w")) == NULL) {
		mxs_err("survey", "cannot write %s: %s", path, strerror(errno));
		report_free(&rep);
		return -1;
	}
	r = strcmp(format, "csv") == 0 ? report_csv(&rep, out)
	  : strcmp(format, "json") == 0 ? report_json(&rep, out)
	  : strcmp(format, "html") == 0 ? report_html(&rep, out)
	  : report_text(&rep, out);
	if (out != stdout && fclose(out) != 0)
		r = -1;
	report_free(&rep);
	return r;
}

enum {
	OPT_DB = 512, OPT_LABEL, OPT_SCAN, OPT_RESUME, OPT_DATA_DIR, OPT_REPORT, OPT_REPORT_FILE,
	OPT_OUTPUT_BUFFER,
	OPT_DNS, OPT_DNS_CONC, OPT_DNS_TIMEOUT, OPT_DNS_RETRIES, OPT_V4, OPT_V6, OPT_NOPOL,
	OPT_STS_CA, OPT_STS_PORT,
};

static const struct option own_opts[] = {
	{ "db", required_argument, NULL, OPT_DB },
	{ "label", required_argument, NULL, OPT_LABEL },
	{ "scan", required_argument, NULL, OPT_SCAN },
	{ "resume", no_argument, NULL, OPT_RESUME },
	{ "data-dir", required_argument, NULL, OPT_DATA_DIR },
	{ "output", required_argument, NULL, 'o' },
	{ "output-buffer", required_argument, NULL, OPT_OUTPUT_BUFFER },
	{ "report", required_argument, NULL, OPT_REPORT },
	{ "report-file", required_argument, NULL, OPT_REPORT_FILE },
	{ "dns-server", required_argument, NULL, OPT_DNS },
	{ "dns-concurrency", required_argument, NULL, OPT_DNS_CONC },
	{ "dns-timeout", required_argument, NULL, OPT_DNS_TIMEOUT },
	{ "dns-retries", required_argument, NULL, OPT_DNS_RETRIES },
	{ "ipv4-only", no_argument, NULL, OPT_V4 },
	{ "ipv6-only", no_argument, NULL, OPT_V6 },
	{ "no-policy", no_argument, NULL, OPT_NOPOL },
	{ "mta-sts-ca-file", required_argument, NULL, OPT_STS_CA },
	{ "mta-sts-port", required_argument, NULL, OPT_STS_PORT },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int bad_value(const char *opt, const char *v)
{
	fprintf(stderr, "mxsurvey survey: bad value for --%s: '%s'\n", opt, v);
	return MXS_EXIT_USAGE;
}

/* The resolver gets the same blocklist as the scanner, so blocked targets say why. */
static struct mxs_blocklist *build_blocklist(const struct mxs_scan_opts *so, char *err, size_t errlen)
{
	struct mxs_blocklist *bl = mxs_blocklist_new();

	if (bl == NULL || (so->default_blocklist && mxs_blocklist_add_defaults(bl) < 0) ||
	    (so->blocklist && mxs_blocklist_load_file(bl, so->blocklist, 0, err, errlen) < 0) ||
	    (so->allowlist && mxs_blocklist_load_file(bl, so->allowlist, 1, err, errlen) < 0)) {
		mxs_blocklist_free(bl);
		return NULL;
	}
	return bl;
}

int cmd_survey(int argc, char **argv)
{
	struct survey s = { .json.fd = -1 };
	struct mxs_scan_opts so;
	struct mxs_resolve_opts ro = { 0 };
	struct mxs_resolve_cbs cbs = { on_target, on_domain, feed, resolver_done, &s };
	struct dbout_opts dbo = { 0 };
	const char *dns[MAX_DNS_SERVERS];
	const char *jsonpath = NULL, *report = "text", *report_file = NULL;
	struct mxs_blocklist *bl = NULL;
	struct option *longopts;
	struct event *sigint = NULL, *sigterm = NULL;
	struct resume rs;
	bool resume = false;
	char err[512];
	int c, rc = MXS_EXIT_OK;
	long long ms;
	long num;
	const struct mxs_scan_stats *st;
	enum mxs_scan_state state;

	mxs_scan_opts_defaults(&so);
	dbo.url = NULL;
	if ((longopts = scan_opts_merge(own_opts)) == NULL)
		return MXS_EXIT_FAILURE;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		int applied = scan_opt_apply("survey", c, optarg, &so);
		if (applied != 0) {
			if (applied < 0)
				goto usage_error;
			continue;
		}
		switch (c) {
		case OPT_DB: dbo.url = dbout_url(optarg); break;
		case OPT_LABEL: dbo.label = optarg; break;
		case OPT_SCAN:
			if (cli_id_arg("survey", "--scan", optarg, &dbo.resume_id) < 0) {
				rc = MXS_EXIT_USAGE;
				goto done_opts;
			}
			break;
		case OPT_RESUME: resume = true; break;
		case OPT_DATA_DIR: dbo.data_dir = optarg; break;
		case 'o': jsonpath = optarg; break;
		case OPT_OUTPUT_BUFFER:
			if (outbuf_size_arg(optarg, &s.json.high) < 0) {
				fprintf(stderr, "mxsurvey survey: --output-buffer wants a size from 16K to 4096M, not '%s'\n",
					optarg);
				rc = MXS_EXIT_USAGE;
				goto done_opts;
			}
			break;
		case OPT_REPORT:
			if (strcmp(optarg, "text") && strcmp(optarg, "csv") && strcmp(optarg, "json") &&
			    strcmp(optarg, "html") && strcmp(optarg, "none")) {
				rc = bad_value("report", optarg);
				goto done_opts;
			}
			report = optarg;
			break;
		case OPT_REPORT_FILE: report_file = optarg; break;
		case OPT_DNS:
			if (ro.ndns_servers == MAX_DNS_SERVERS) {
				rc = bad_value("dns-server", "more than 16 servers");
				goto done_opts;
			}
			dns[ro.ndns_servers++] = optarg;
			break;
		case OPT_DNS_CONC:
			if (cli_int_arg("survey", "dns-concurrency", optarg, 1, 1000000, &num) < 0) {
				rc = MXS_EXIT_USAGE;
				goto done_opts;
			}
			ro.concurrency = (unsigned)num;
			break;
		case OPT_DNS_TIMEOUT:
			if ((ms = parse_duration_ms(optarg)) <= 0) {
				rc = bad_value("dns-timeout", optarg);
				goto done_opts;
			}
			ro.timeout_ms = (int)ms;
			break;
		case OPT_DNS_RETRIES:
			if (cli_int_arg("survey", "dns-retries", optarg, 0, 100, &num) < 0) {
				rc = MXS_EXIT_USAGE;
				goto done_opts;
			}
			ro.retries = (int)num;
			break;
		case OPT_V4: ro.family = MXS_FAMILY_V4; break;
		case OPT_V6: ro.family = MXS_FAMILY_V6; break;
		case OPT_NOPOL: ro.no_policy = 1; break;
		case OPT_STS_CA: ro.mta_sts_ca_file = optarg; break;
		case OPT_STS_PORT:
			if (cli_int_arg("survey", "mta-sts-port", optarg, 1, 65535, &num) < 0) {
				rc = MXS_EXIT_USAGE;
				goto done_opts;
			}
			ro.mta_sts_port = (unsigned short)num;
			break;
		case 'h': usage(stdout); free(longopts); return MXS_EXIT_OK;
		default: goto usage_error;
		}
	}
done_opts:
	free(longopts);
	if (rc != MXS_EXIT_OK)
		return rc;
	if (optind != argc - 1) {
		fprintf(stderr, "mxsurvey survey: one domain list (a file, or - for stdin)\n");
		return MXS_EXIT_USAGE;
	}
	if (resume && dbo.resume_id <= 0 && dbo.label == NULL) {
		fprintf(stderr, "mxsurvey survey: --resume needs --scan ID or --label NAME\n");
		return MXS_EXIT_USAGE;
	}
	ro.dns_servers = dns;
	ro.target_port = (unsigned short)so.port;

	signal(SIGPIPE, SIG_IGN);
	resume_init(&rs);
	if ((s.base = event_base_new()) == NULL)
		return MXS_EXIT_FAILURE;
	s.status = so.status;
	if ((s.in = mxs_linein_open(s.base, argv[optind], err, sizeof(err))) == NULL) {
		fprintf(stderr, "mxsurvey survey: %s\n", err);
		rc = MXS_EXIT_BAD_INPUT;
		goto out;
	}
	if (jsonpath != NULL) {
		int fd = outbuf_open_path("survey", jsonpath, resume);
		if (fd < 0) {
			rc = MXS_EXIT_FAILURE;
			goto out;
		}
		if (outbuf_start(&s.json, fd, s.base, "survey", json_failed, &s) < 0) {
			fprintf(stderr, "mxsurvey survey: out of memory\n");
			rc = MXS_EXIT_FAILURE;
			goto out;
		}
	}
	if (jsonpath != NULL && resume && resume_load_file(&rs, jsonpath) < 0) {
		fprintf(stderr, "mxsurvey survey: cannot read %s to resume: %s\n", jsonpath, strerror(errno));
		rc = MXS_EXIT_FAILURE;
		goto out;
	}
	if ((s.sc = mxs_scanner_new(s.base, &so, emit, &s, err, sizeof(err))) == NULL ||
	    (bl = build_blocklist(&so, err, sizeof(err))) == NULL) {
		fprintf(stderr, "mxsurvey survey: %s\n", err);
		rc = MXS_EXIT_USAGE;
		goto out;
	}
	s.json.sc = s.sc;
	ro.blocklist = bl;
	if ((s.res = mxs_resolver_new(s.base, &ro, &cbs, err, sizeof(err))) == NULL) {
		fprintf(stderr, "mxsurvey survey: %s\n", err);
		rc = MXS_EXIT_USAGE;
		goto out;
	}
	dbo.command_line = cli_command_line(argc, argv);
	dbo.ehlo_name = mxs_scanner_ehlo_name(s.sc);
	dbo.profile = mxs_scanner_profile(s.sc);
	dbo.shard_index = so.shard_index;
	dbo.shard_count = so.shard_count;
	if (dbout_open(&s.db, &dbo, err, sizeof(err)) < 0 ||
	    (resume && resume_load_db(&rs, &s.db, err, sizeof(err)) < 0)) {
		fprintf(stderr, "mxsurvey survey: database: %s\n", err);
		rc = MXS_EXIT_DB;
		goto out;
	}
	if (resume) {
		if (resume_apply(&rs, s.sc, jsonpath, &s.db) < 0) {
			fprintf(stderr, "mxsurvey survey: resume: cannot copy %s into the database\n", jsonpath);
			rc = MXS_EXIT_FAILURE;
			goto out;
		}
		s.resume = &rs;
	}
	mxs_scanner_set_callbacks(s.sc, feed, scanner_done, progress, &s);
	mxs_info("survey", "scan %" PRId64 " ehlo=%s concurrency=%d dns_concurrency=%u",
		 s.db.scan_id, mxs_scanner_ehlo_name(s.sc), mxs_scanner_opts(s.sc)->concurrency,
		 ro.concurrency ? ro.concurrency : 1000);
	sigint = evsignal_new(s.base, SIGINT, on_signal, &s);
	sigterm = evsignal_new(s.base, SIGTERM, on_signal, &s);
	evsignal_add(sigint, NULL);
	evsignal_add(sigterm, NULL);
	if (s.status) {
		struct timeval sec = { 1, 0 };
		s.status_ev = event_new(s.base, -1, EV_PERSIST, status_tick, &s);
		evtimer_add(s.status_ev, &sec);
	}

	feed(&s);
	if (!mxs_scanner_finished(s.sc))
		event_base_dispatch(s.base);

	if (s.json.fd >= 0 && outbuf_finish(&s.json) < 0)
		s.failed = true;
	st = mxs_scanner_stats(s.sc);
	if (so.status)
		mxs_scanner_print_status(s.sc, true);
	fprintf(stderr, "survey: %" PRIu64 " domains, %" PRIu64 " bad input lines, %llu targets, %llu results\n",
		s.domains, s.bad_lines, (unsigned long long)st->targets, (unsigned long long)st->records);
	if (s.failed || st->emit_errors)
		rc = MXS_EXIT_FAILURE;
	else if (s.stopped)
		rc = MXS_EXIT_PARTIAL;
	else if (s.bad_lines > 0 && s.domains == 0 && st->targets == 0)
		rc = MXS_EXIT_BAD_INPUT;
	state = rc == MXS_EXIT_FAILURE ? MXS_SCAN_FAILED
	      : rc == MXS_EXIT_PARTIAL ? MXS_SCAN_PARTIAL : MXS_SCAN_DONE;
	{
		int dbrc = dbout_finish(&s.db, state, st->records - s.file_only);
		if (dbrc != MXS_EXIT_OK && rc == MXS_EXIT_OK)
			rc = dbrc;
	}
	if (rc == MXS_EXIT_OK || rc == MXS_EXIT_SPOOLED || rc == MXS_EXIT_PARTIAL)
		if (print_report(&s, report, report_file) < 0 && rc == MXS_EXIT_OK)
			rc = MXS_EXIT_FAILURE;
out:
	if (sigint)
		event_free(sigint);
	if (sigterm)
		event_free(sigterm);
	if (s.status_ev)
		event_free(s.status_ev);
	/* The resolver first: its pending callbacks feed the scanner. */
	mxs_resolver_free(s.res);
	mxs_scanner_free(s.sc);
	mxs_blocklist_free(bl);
	if (s.db.db != NULL)
		dbout_free(&s.db);
	mxs_linein_close(s.in);
	outbuf_close(&s.json);
	resume_free(&rs);
	mxs_event_base_close(s.base);
	return rc;
usage_error:
	free(longopts);
	usage(stderr);
	return MXS_EXIT_USAGE;
}
