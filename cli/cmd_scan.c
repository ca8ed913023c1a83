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
#include "exitcode.h"
#include "linein.h"
#include "log.h"
#include "outcome.h"
#include "resume.h"
#include "scan_opts.h"
#include "scanner.h"
#include "timeutil.h"

/*
 * The results queue. Records wait here until the output takes them, and the event loop
 * never waits for the output: a pipe or socket is written non-blocking, as much as it
 * takes, the rest when it has room again. Past `high` bytes waiting (--output-buffer)
 * the scanner starts no new targets (back-pressure) until half of them are written;
 * probes in flight finish normally and their records join the queue, so a slow reader
 * delays the scan but never changes a result. A regular file or a terminal is written
 * at once, blocking (it never waits for a reader). Results are written in whole lines,
 * so a scan killed at any moment leaves a file of complete records (and at most a second
 * of results unwritten); a pipe may take part of a line when the kill comes.
 */
struct outbuf {
	int fd;
	int fl_saved;             /* with nonblock: the status flags to restore */
	bool nonblock;            /* pipe or socket: written when it has room */
	char *buf;
	size_t off, len, cap;     /* buf[off, len) waits to be written */
	size_t high;              /* back-pressure at this many bytes waiting */
	bool stalled;
	int64_t t_stall;
	struct event *wev;        /* the output has room again */
};

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
	bool stopped, out_failed, feeding;
	struct event *flush_ev;
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

#define OUTBUF_FLUSH_AT (1 << 16)
#define OUTBUF_HIGH_DEFAULT (16u << 20)
#define OUTBUF_HIGH_MIN (16u << 10)

static size_t outbuf_waiting(const struct outbuf *o)
{
	return o->len - o->off;
}

/* Batch small records into writes of this size; flush_tick writes the rest each second. */
static size_t outbuf_flush_at(const struct outbuf *o)
{
	return o->high / 4 < OUTBUF_FLUSH_AT ? o->high / 4 : OUTBUF_FLUSH_AT;
}

/*
 * Write what the output takes now. Returns 0 (for a non-blocking output, bytes may
 * still wait: o->wev is then armed), or -1 with errno set.
 */
static int outbuf_write(struct outbuf *o)
{
	while (o->off < o->len) {
		ssize_t n = write(o->fd, o->buf + o->off, o->len - o->off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && o->nonblock) {
			if (o->wev != NULL && !event_pending(o->wev, EV_WRITE, NULL))
				event_add(o->wev, NULL);
			return 0;
		}
		if (n <= 0)
			return -1;
		o->off += (size_t)n;
	}
	o->off = o->len = 0;
	return 0;
}

/* Write everything, waiting for the output as long as it takes (the scan is over). */
static int outbuf_drain(struct outbuf *o)
{
	struct pollfd p = { .fd = o->fd, .events = POLLOUT };

	while (outbuf_write(o) == 0) {
		if (o->off == o->len)
			return 0;
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			return -1;
	}
	return -1;
}

/* Keep the waiting bytes at the front once most of the buffer has been written. */
static void outbuf_compact(struct outbuf *o)
{
	if (o->off > 0 && o->off >= o->len / 2) {
		memmove(o->buf, o->buf + o->off, o->len - o->off);
		o->len -= o->off;
		o->off = 0;
	}
}

static int outbuf_line(struct outbuf *o, const char *line, size_t len)
{
	outbuf_compact(o);
	if (o->len + len + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : OUTBUF_FLUSH_AT * 2;
		while (cap < o->len + len + 1)
			cap *= 2;
		char *b = realloc(o->buf, cap);
		if (b == NULL)
			return -1;
		o->buf = b;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, line, len);
	o->buf[o->len + len] = '\n';
	o->len += len + 1;
	/* While the output has no room, o->wev writes when it has. */
	if (o->wev != NULL && event_pending(o->wev, EV_WRITE, NULL))
		return 0;
	return outbuf_waiting(o) >= outbuf_flush_at(o) ? outbuf_write(o) : 0;
}

/*
 * Make a pipe or socket output non-blocking (the loop must not wait for its reader);
 * the flags are restored at the end. Files and terminals stay as they are.
 */
static void outbuf_open(struct outbuf *o, struct event_base *base, event_callback_fn cb, void *arg)
{
	struct stat st;
	int fl;

	if (fstat(o->fd, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
		return;
	if ((fl = fcntl(o->fd, F_GETFL)) < 0)
		return;
	if (!(fl & O_NONBLOCK) && fcntl(o->fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return;
	o->wev = event_new(base, o->fd, EV_WRITE, cb, arg);
	if (o->wev == NULL) {
		fcntl(o->fd, F_SETFL, fl);
		return;
	}
	o->fl_saved = fl;
	o->nonblock = true;
}

static void outbuf_close(struct outbuf *o)
{
	if (o->wev != NULL)
		event_free(o->wev);
	o->wev = NULL;
	if (o->nonblock)
		fcntl(o->fd, F_SETFL, o->fl_saved);
	if (o->fd != STDOUT_FILENO && o->fd >= 0)
		close(o->fd);
	free(o->buf);
}

/* The output failed (the reader went away, the disk is full): stop the scan. */
static void output_failed(struct scan_run *r)
{
	r->out_failed = true;
	mxs_err("scan", "cannot write results: %s; stopping", strerror(errno));
	mxs_scanner_output_stalled(r->sc, false);
	if (!r->stopped) {
		r->stopped = true;
		mxs_scanner_stop(r->sc);
	}
}

/* Back-pressure: start nothing new while the queue is over its bound, until it is half. */
static void check_stall(struct scan_run *r)
{
	struct outbuf *o = &r->out;
	size_t waiting = outbuf_waiting(o);

	if (!o->stalled && waiting >= o->high) {
		o->stalled = true;
		o->t_stall = mxs_mono_ms();
		mxs_warn("scan", "output stalled: %zu KiB of results wait for the reader; "
			 "no new targets start until it reads", waiting >> 10);
		mxs_scanner_output_stalled(r->sc, true);
	} else if (o->stalled && waiting <= o->high / 2) {
		o->stalled = false;
		mxs_info("scan", "output flowing again after %.1f s",
			 (double)(mxs_mono_ms() - o->t_stall) / 1000.0);
		mxs_scanner_output_stalled(r->sc, false);
	}
}

static int emit(void *arg, const char *line, size_t len, enum mxs_outcome outcome)
{
	struct scan_run *r = arg;

	if (r->db != NULL) {
		/* One row per address and port: a repeated input line is not a new row. */
		if (outcome == MXS_OUT_DUPLICATE)
			r->duplicates++;
		else if (r->resume != NULL && resume_db_has(r->resume, line, len))
			r->file_only++;   /* the database has its row: probed again for the file */
		else if (dbout_put(r->db, line, len) < 0)
			return -1;
	}
	if (!r->to_file)
		return 0;
	if (r->out_failed)
		return -1;
	if (outbuf_line(&r->out, line, len) < 0) {
		output_failed(r);
		return -1;
	}
	check_stall(r);
	return 0;
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

static void flush_tick(evutil_socket_t fd, short what, void *arg)
{
	struct scan_run *r = arg;
	(void)fd;
	(void)what;
	/* At most a second of results sits in the buffer if the process is killed. */
	if (r->out_failed || (r->out.wev != NULL && event_pending(r->out.wev, EV_WRITE, NULL)))
		return;
	if (outbuf_write(&r->out) < 0)
		output_failed(r);
	else
		check_stall(r);
}

/* A pipe or socket output has room again. */
static void out_writable(evutil_socket_t fd, short what, void *arg)
{
	struct scan_run *r = arg;
	(void)fd;
	(void)what;
	if (r->out_failed)
		return;
	if (outbuf_write(&r->out) < 0)
		output_failed(r);
	else
		check_stall(r);
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

/* --output-buffer: bytes, with an optional K or M (binary) suffix. 0, or -1 if bad. */
static int size_arg(const char *v, size_t *out)
{
	char *end;
	unsigned long long x = strtoull(v, &end, 10);
	unsigned shift = 0;

	if (*end == 'K' || *end == 'k')
		shift = 10, end++;
	else if (*end == 'M' || *end == 'm')
		shift = 20, end++;
	if (*v < '0' || *v > '9' || *end != '\0' || x > (1ULL << 32) >> shift ||
	    (x << shift) < OUTBUF_HIGH_MIN)
		return -1;
	*out = (size_t)(x << shift);
	return 0;
}

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
			if (size_arg(optarg, &r.out.high) < 0) {
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
	r.out.fd = STDOUT_FILENO;
	if (outpath != NULL) {
		r.out.fd = open(outpath, O_CREAT | O_CLOEXEC | (resume ? O_RDWR | O_APPEND : O_WRONLY | O_TRUNC), 0644);
		if (r.out.fd < 0 || (resume && resume_trim_torn_tail(r.out.fd) < 0)) {
			fprintf(stderr, "mxsurvey scan: cannot open %s: %s\n", outpath, strerror(errno));
			if (r.out.fd >= 0)
				close(r.out.fd);
			event_base_free(r.base);
			return MXS_EXIT_FAILURE;
		}
	}
	if (r.out.high == 0)
		r.out.high = OUTBUF_HIGH_DEFAULT;
	if (r.to_file)
		outbuf_open(&r.out, r.base, out_writable, &r);
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
	r.flush_ev = event_new(r.base, -1, EV_PERSIST, flush_tick, &r);
	struct timeval sec = { 1, 0 };
	evtimer_add(r.flush_ev, &sec);

	feed(&r);
	if (!mxs_scanner_finished(r.sc))
		event_base_dispatch(r.base);

	event_free(sigint);
	event_free(sigterm);
	event_free(r.flush_ev);
	if (!r.out_failed && outbuf_drain(&r.out) < 0) {
		mxs_err("scan", "cannot write results: %s", strerror(errno));
		r.out_failed = true;
	}
	st = mxs_scanner_stats(r.sc);
	if (o.status)
		mxs_scanner_print_status(r.sc, true);
	print_summary(st);
	if (r.out_failed || st->emit_errors)
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
	event_base_free(r.base);
	return rc;
}
