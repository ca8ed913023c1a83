/*
 * mxsurvey scan: read targets (stdin or a file), probe them, write one JSON result line
 * per target (stdout or -o FILE). See docs/record.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cliutil.h"
#include "commands.h"
#include "dbout.h"
#include "evbase.h"
#include "exitcode.h"
#include "linein.h"
#include "log.h"
#include "outbuf.h"
#include "outcome.h"
#include "resume.h"
#include "scan_opts.h"
#include "scanner.h"
#include "timeutil.h"

struct scan_run {
	struct event_base *base;
	struct mxs_scanner *sc;
	struct mxs_linein *in;
	struct outbuf out;
	bool to_file;             /* JSON lines to stdout or -o FILE */
	struct dbout *db;         /* --db: results into PostgreSQL too */
	struct resume *resume;    /* --resume: what each sink holds */
	uint64_t file_only;       /* records probed again for the file alone (resume) */
	uint64_t duplicates;      /* duplicate records: in the JSON, not the database */
	bool stopped, feeding;
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: mxsurvey scan [OPTIONS] [FILE]\n"
"Probe SMTP servers for STARTTLS. Targets come from FILE or stdin, one per line: an IPv4\n"
"or IPv6 address (zmap output), 'ip,mx_host[,domain...]', or a JSON target line from\n"
"'mxsurvey resolve'. One JSON result line per target goes to stdout (docs/record.md).\n"
"\n"
"Output:\n"
"  -o, --output FILE       write results to FILE (default stdout)\n"
"  --resume                skip targets that already have a result (interrupted ones\n"
"                          excepted): those in -o FILE, then appended to; with --db,\n"
"                          those of the scan named by --scan ID or --label; with both,\n"
"                          results in the file but not in the database are copied to it\n"
"  --db URL                also store results in PostgreSQL (a libpq URL; 'auto': $DATABASE_URL,\n"
"                          libpq's environment, else mxsurvey's own embedded cluster);\n"
"                          JSON goes to stdout only with -o\n"
"  --scan ID               with --db: add to this scan (with --resume: skip what it has)\n"
"  --label NAME            with --db: name the scan; a later run with the same label continues it\n"
"  --data-dir DIR          embedded cluster and spool directory (default ~/.local/share/mxsurvey)\n"
"  --output-buffer SIZE    results held for a slow reader of the output (K, M suffixes;\n"
"                          default 16M); when full, no new target starts until it drains\n");
	scan_opts_usage(f);
	fprintf(f, "Exit status: 0 done, 1 failure, 2 usage, 3 stopped early (resume to finish), 4 bad input,\n"
		"5 database unreachable and results could not be spooled, 6 done but some results\n"
		"wait in the spool for the database.\n");
}

static int emit(void *arg, const char *line, size_t len, enum mxs_outcome outcome)
{
	struct scan_run *r = arg;

	if (r->db != NULL) {
		/* One row per address and port: a repeated input line is not a new row. */
		if (outcome == MXS_OUT_DUPLICATE)
			r->duplicates++;
		else if (r->resume != NULL && resume_db_has(r->resume, line, len)) {
			/* the database has its row: made again for the file (a result is counted) */
			if (outcome != MXS_OUT_NONE)
				r->file_only++;
		}
		else if (dbout_put(r->db, line, len) < 0)
			return -1;
	}
	if (!r->to_file)
		return 0;
	return outbuf_put(&r->out, line, len);
}

/* The output failed (logged): stop the scan. */
static void output_failed(void *arg)
{
	struct scan_run *r = arg;

	if (!r->stopped) {
		r->stopped = true;
		mxs_scanner_stop(r->sc);
	}
}

static void on_line(void *arg, const char *line, size_t len, bool truncated)
{
	struct scan_run *r = arg;
	(void)truncated; /* a cut line fails to parse and becomes a bad-target record */
	mxs_scanner_add_line(r->sc, line, len);
}

static void feed(void *arg)
{
	struct scan_run *r = arg;
	size_t room;

	/* mxs_scanner_add_line can call back into want(); one feeding loop at a time. */
	if (r->feeding || r->stopped || r->in == NULL)
		return;
	r->feeding = true;
	while ((room = mxs_scanner_room(r->sc)) > 0) {
		if (mxs_linein_read(r->in, room, on_line, r, feed) < room)
			break;
	}
	r->feeding = false;
	if (mxs_linein_eof(r->in)) {
		if (mxs_linein_error(r->in) != 0)
			mxs_err("scan", "reading input: %s", strerror(mxs_linein_error(r->in)));
		mxs_scanner_input_done(r->sc);
	}
}

static void want(void *arg)
{
	feed(arg);
}

static void done(void *arg)
{
	struct scan_run *r = arg;
	event_base_loopexit(r->base, NULL);
}

static double progress(void *arg)
{
	struct scan_run *r = arg;
	return mxs_linein_progress(r->in);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct scan_run *r = arg;
	(void)what;
	mxs_info("scan", "signal %d: %s", (int)sig,
		 r->stopped ? "interrupting probes in flight" : "finishing probes in flight (signal again to cut short)");
	r->stopped = true;
	mxs_scanner_stop(r->sc);
}

static void print_summary(const struct mxs_scan_stats *st)
{
	fprintf(stderr, "scan: %llu input lines, %llu targets, %llu result records",
		(unsigned long long)st->lines, (unsigned long long)st->targets,
		(unsigned long long)st->records);
	if (st->names)
		fprintf(stderr, ", %llu name lines (%llu SNI probes)", (unsigned long long)st->names,
			(unsigned long long)st->sni_probes);
	if (st->legacy_probes)
		fprintf(stderr, ", %llu legacy probe connections", (unsigned long long)st->legacy_probes);
	if (st->cert_probes)
		fprintf(stderr, ", %llu resumed addresses probed again for their certificate",
			(unsigned long long)st->cert_probes);
	if (st->skipped_shard)
		fprintf(stderr, ", %llu skipped (other shard or already done)", (unsigned long long)st->skipped_shard);
	if (st->unscanned)
		fprintf(stderr, ", %llu left unscanned by the stop", (unsigned long long)st->unscanned);
	fprintf(stderr, "\nscan: outcomes:");
	for (int i = 0; i < MXS_OUT_LAST; i++)
		if (st->by_outcome[i])
			fprintf(stderr, " %s=%llu", mxs_outcome_names[i], (unsigned long long)st->by_outcome[i]);
	fprintf(stderr, "\n");
}

enum { OPT_RESUME = 512, OPT_DB, OPT_SCAN, OPT_LABEL, OPT_DATA_DIR, OPT_OUTPUT_BUFFER };

static const struct option own_opts[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "resume", no_argument, NULL, OPT_RESUME },
	{ "db", required_argument, NULL, OPT_DB },
	{ "scan", required_argument, NULL, OPT_SCAN },
	{ "label", required_argument, NULL, OPT_LABEL },
	{ "data-dir", required_argument, NULL, OPT_DATA_DIR },
	{ "output-buffer", required_argument, NULL, OPT_OUTPUT_BUFFER },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int cmd_scan(int argc, char **argv)
{
	struct mxs_scan_opts o;
	struct scan_run r = { 0 };
	const char *outpath = NULL, *inpath = NULL;
	bool resume = false;
	char err[512];
	struct option *longopts;
	struct dbout_opts dbo = { 0 };
	struct dbout db;
	struct resume rs;
	bool use_db = false;
	int c, rc = MXS_EXIT_OK;
	struct event *sigint, *sigterm;
	const struct mxs_scan_stats *st;

	mxs_scan_opts_defaults(&o);
	if ((longopts = scan_opts_merge(own_opts)) == NULL)
		return MXS_EXIT_FAILURE;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		int applied = scan_opt_apply("scan", c, optarg, &o);
		if (applied < 0) {
			free(longopts);
			return MXS_EXIT_USAGE;
		}
		if (applied > 0)
			continue;
		switch (c) {
		case 'o': outpath = optarg; break;
		case OPT_RESUME: resume = true; break;
		case OPT_DB: use_db = true; dbo.url = dbout_url(optarg); break;
		case OPT_SCAN:
			if (cli_id_arg("scan", "--scan", optarg, &dbo.resume_id) < 0) {
				free(longopts);
				return MXS_EXIT_USAGE;
			}
			break;
		case OPT_LABEL: dbo.label = optarg; break;
		case OPT_DATA_DIR: dbo.data_dir = optarg; break;
		case OPT_OUTPUT_BUFFER:
			if (outbuf_size_arg(optarg, &r.out.high) < 0) {
				fprintf(stderr, "mxsurvey scan: --output-buffer wants a size from 16K to 4096M, not '%s'\n",
					optarg);
				free(longopts);
				return MXS_EXIT_USAGE;
			}
			break;
		case 'h': usage(stdout); free(longopts); return MXS_EXIT_OK;
		default: usage(stderr); free(longopts); return MXS_EXIT_USAGE;
		}
	}
	free(longopts);
	if (optind < argc)
		inpath = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "mxsurvey scan: one input file at most\n");
		return MXS_EXIT_USAGE;
	}
	if (resume && outpath == NULL && !(use_db && (dbo.resume_id > 0 || dbo.label != NULL))) {
		fprintf(stderr, "mxsurvey scan: --resume needs -o FILE, or --db with --scan ID or --label\n");
		return MXS_EXIT_USAGE;
	}
	if (!use_db && (dbo.resume_id > 0 || dbo.label != NULL)) {
		fprintf(stderr, "mxsurvey scan: --scan and --label go with --db\n");
		return MXS_EXIT_USAGE;
	}
	r.to_file = !use_db || outpath != NULL;
	resume_init(&rs);

	signal(SIGPIPE, SIG_IGN);
	r.base = event_base_new();
	if (r.base == NULL)
		return MXS_EXIT_FAILURE;
	r.out.fd = -1;
	if (r.to_file) {
		int fd = outpath != NULL ? outbuf_open_path("scan", outpath, resume) : STDOUT_FILENO;
		if (fd < 0) {
			mxs_event_base_close(r.base);
			return MXS_EXIT_FAILURE;
		}
		if (outbuf_start(&r.out, fd, r.base, "scan", output_failed, &r) < 0) {
			fprintf(stderr, "mxsurvey scan: out of memory\n");
			rc = MXS_EXIT_FAILURE;
			goto out;
		}
	}
	r.in = mxs_linein_open(r.base, inpath, err, sizeof(err));
	if (r.in == NULL) {
		fprintf(stderr, "mxsurvey scan: %s\n", err);
		rc = MXS_EXIT_BAD_INPUT;
		goto out;
	}
	r.sc = mxs_scanner_new(r.base, &o, emit, &r, err, sizeof(err));
	if (r.sc == NULL) {
		fprintf(stderr, "mxsurvey scan: %s\n", err);
		rc = MXS_EXIT_USAGE;
		goto out;
	}
	r.out.sc = r.sc;
	if (resume && outpath != NULL && resume_load_file(&rs, outpath) < 0) {
		fprintf(stderr, "mxsurvey scan: cannot read %s to resume: %s\n", outpath, strerror(errno));
		rc = MXS_EXIT_FAILURE;
		goto out;
	}
	if (use_db) {
		dbo.command_line = cli_command_line(argc, argv);
		dbo.ehlo_name = mxs_scanner_ehlo_name(r.sc);
		dbo.profile = mxs_scanner_profile(r.sc);
		dbo.shard_index = o.shard_index;
		dbo.shard_count = o.shard_count;
		if (dbout_open(&db, &dbo, err, sizeof(err)) < 0 ||
		    (resume && resume_load_db(&rs, &db, err, sizeof(err)) < 0)) {
			fprintf(stderr, "mxsurvey scan: database: %s\n", err);
			dbout_free(&db);
			rc = MXS_EXIT_DB;
			goto out;
		}
		r.db = &db;
	}
	if (resume) {
		if (resume_apply(&rs, r.sc, outpath, r.db) < 0) {
			fprintf(stderr, "mxsurvey scan: resume: cannot copy %s into the database\n", outpath);
			rc = MXS_EXIT_FAILURE;
			goto out;
		}
		r.resume = &rs;
	}
	mxs_scanner_set_callbacks(r.sc, want, done, progress, &r);
	mxs_info("scan", "start ehlo=%s profile=%s concurrency=%d per_ip=%d per_net=%d",
		 mxs_scanner_ehlo_name(r.sc), mxs_scanner_profile(r.sc), mxs_scanner_opts(r.sc)->concurrency,
		 mxs_scanner_opts(r.sc)->per_ip, mxs_scanner_opts(r.sc)->per_net);
	sigint = evsignal_new(r.base, SIGINT, on_signal, &r);
	sigterm = evsignal_new(r.base, SIGTERM, on_signal, &r);
	evsignal_add(sigint, NULL);
	evsignal_add(sigterm, NULL);

	feed(&r);
	if (!mxs_scanner_finished(r.sc))
		event_base_dispatch(r.base);

	event_free(sigint);
	event_free(sigterm);
	if (r.to_file)
		outbuf_finish(&r.out);
	st = mxs_scanner_stats(r.sc);
	if (o.status)
		mxs_scanner_print_status(r.sc, true);
	print_summary(st);
	if (r.out.failed || st->emit_errors)
		rc = MXS_EXIT_FAILURE;
	else if (r.stopped)
		rc = MXS_EXIT_PARTIAL;
	else if (mxs_linein_error(r.in) != 0 || st->targets == 0 ||
		 st->by_outcome[MXS_OUT_BAD_TARGET] == st->targets) {
		/* unreadable, empty, comments only, or nothing but bad lines */
		if (mxs_linein_error(r.in) == 0)
			mxs_err("scan", "no line of the input is a target (%llu lines)",
				(unsigned long long)st->lines);
		rc = MXS_EXIT_BAD_INPUT;
	}
	if (r.db != NULL) {
		enum mxs_scan_state state = rc == MXS_EXIT_FAILURE ? MXS_SCAN_FAILED
					    : rc == MXS_EXIT_PARTIAL ? MXS_SCAN_PARTIAL : MXS_SCAN_DONE;
		int dbrc;
		if (r.duplicates)
			fprintf(stderr, "db: %llu duplicate input lines not stored\n",
				(unsigned long long)r.duplicates);
		dbrc = dbout_finish(&db, state, st->records - r.duplicates - r.file_only);
		dbout_free(&db);
		r.db = NULL;
		/* A clean scan whose results did not all reach the database says so. */
		if (dbrc != MXS_EXIT_OK && rc == MXS_EXIT_OK)
			rc = dbrc;
	}
out:
	if (r.db != NULL)
		dbout_free(r.db);
	resume_free(&rs);
	mxs_scanner_free(r.sc);
	mxs_linein_close(r.in);
	outbuf_close(&r.out);
	mxs_event_base_close(r.base);
	return rc;
}
