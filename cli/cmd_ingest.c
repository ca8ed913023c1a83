/*
 * mxsurvey ingest [FILE...]: load JSONL written by `mxsurvey scan` (result and domain
 * lines) into PostgreSQL through the same sink the scanner streams into. Each file goes
 * to one scan: the one named by --scan or --label, a new one with --new-scan, or by
 * default the scan that earlier ingests of the same file created (found by the digest
 * of the file's first 64 KiB), so ingesting a file again, or again after a kill, adds
 * only what is missing.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cliutil.h"
#include "commands.h"
#include "exitcode.h"
#include "ingest.h"
#include "log.h"

struct ingest_args {
	struct mxs_db_opts db;
	struct mxs_sink_opts sink;
	int64_t scan;          /* --scan, 0 if not given */
	const char *label;
	int new_scan;
	int quiet;
	char *command_line;    /* owned */
};

/* Set by SIGINT/SIGTERM: stop reading, store what was read, exit "partial". */
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: mxsurvey ingest [OPTIONS] [FILE...]\n"
	        "Load JSONL result and domain lines (FILE, or '-' / none for stdin) into PostgreSQL.\n"
	        "\n"
	        "  --db URL          PostgreSQL conninfo or URL (default $DATABASE_URL, then\n"
	        "                    $PGHOST, then mxsurvey's own cluster under the data dir)\n"
	        "  --data-dir DIR    base of the embedded cluster and the spool\n"
	        "  --scan N          add to scan N\n"
	        "  --label NAME      add to the scan labelled NAME (created if missing)\n"
	        "  --new-scan        always create a new scan\n"
	        "  --spool DIR       spool directory (default <data dir>/spool)\n"
	        "  --batch-rows N    lines per transaction (default 10000)\n"
	        "  --flush-ms N      longest a line waits for its batch (default 1000)\n"
	        "  --retry-ms N      between reconnection attempts (default 2000)\n"
	        "  --wait-db SEC     at the end, wait this long for a lost database (default 10)\n"
	        "  --queue-bytes N   memory bound of lines waiting for the database (default 16 MiB)\n"
	        "  --no-block        when the queue is full, spool instead of waiting (as a scan does)\n"
	        "  --log-level L     error, warn, info, debug\n"
	        "  -q, --quiet       no summary\n"
	        "\n"
	        "Exit status: 0 all stored, 4 input unreadable, 5 database unreachable,\n"
	        "6 some lines wait in the spool, 3 interrupted.\n");
}

/* A line reader over a file whose head was read ahead for the source key. */
struct reader {
	FILE *f;
	char *head;      /* owned */
	size_t headlen;
	size_t headpos;
};

static ssize_t read_line(struct reader *r, char **line, size_t *cap)
{
	if (r->headpos >= r->headlen)
		return getline(line, cap, r->f);
	const char *p = r->head + r->headpos;
	size_t avail = r->headlen - r->headpos;
	const char *nl = memchr(p, '\n', avail);
	size_t n = nl ? (size_t)(nl - p) + 1 : avail;
	char *rest = NULL;
	size_t restcap = 0;
	ssize_t m = 0;
	r->headpos += n;
	if (nl == NULL) {
		/* the head ended inside a line: the rest of it is in the stream */
		m = getline(&rest, &restcap, r->f);
		if (m < 0)
			m = 0;
	}
	if (*cap < n + (size_t)m + 1) {
		char *g = realloc(*line, n + (size_t)m + 1);
		if (g == NULL) {
			free(rest);
			return -1;
		}
		*line = g;
		*cap = n + (size_t)m + 1;
	}
	memcpy(*line, p, n);
	if (m > 0)
		memcpy(*line + n, rest, (size_t)m);
	free(rest);
	(*line)[n + (size_t)m] = '\0';
	return (ssize_t)(n + (size_t)m);
}

/* Pick the scan for one input. */
static int choose_scan(struct mxs_db *db, const struct ingest_args *a, const char *key,
                       int64_t *scan, char *err, size_t errlen)
{
	struct mxs_scan_info info = { .command_line = a->command_line, .label = a->label,
		.source_key = NULL };
	int created = 0;
	if (a->scan > 0) {
		*scan = a->scan;
		return mxs_scan_resume(db, a->scan, err, errlen);
	}
	if (a->new_scan)
		return mxs_scan_create(db, &info, scan, err, errlen);
	if (a->label == NULL)
		info.source_key = key;
	if (mxs_scan_find_or_create(db, &info, scan, &created, err, errlen) != 0)
		return -1;
	if (!created)
		mxs_info("ingest", "adding to existing scan id=%" PRId64, *scan);
	return 0;
}

static int ingest_one(struct mxs_db *db, const struct ingest_args *a, const char *path)
{
	char err[1024], key[128];
	struct reader r = { 0 };
	int is_stdin = strcmp(path, "-") == 0;
	int rc = MXS_EXIT_OK;

	r.f = is_stdin ? stdin : fopen(path, "r");
	if (r.f == NULL) {
		fprintf(stderr, "mxsurvey ingest: %s: %s\n", path, strerror(errno));
		return MXS_EXIT_BAD_INPUT;
	}
	/* large reads: a 4 KiB stdio buffer costs a system call every three records */
	setvbuf(r.f, NULL, _IOFBF, 1u << 20);
	r.head = malloc(MXS_SOURCE_HEAD);
	if (r.head == NULL) {
		if (!is_stdin)
			fclose(r.f);
		return MXS_EXIT_FAILURE;
	}
	/* The head names the input when no scan is given (re-ingesting a file finds its scan).
	 * With --scan, --label or --new-scan it is not read ahead, so that a slow pipe's lines
	 * are stored as they come rather than once a whole head has arrived. */
	int need_key = a->scan <= 0 && !a->new_scan && a->label == NULL;
	r.headlen = need_key ? fread(r.head, 1, MXS_SOURCE_HEAD, r.f) : 0;
	if (ferror(r.f)) {
		fprintf(stderr, "mxsurvey ingest: %s: %s\n", path, strerror(errno));
		rc = MXS_EXIT_BAD_INPUT;
		goto out;
	}
	mxs_source_key(r.head, r.headlen, key, sizeof(key));

	int64_t scan;
	if (choose_scan(db, a, key, &scan, err, sizeof(err)) != 0) {
		fprintf(stderr, "mxsurvey ingest: %s\n", err);
		rc = MXS_EXIT_DB;
		goto out;
	}
	struct mxs_sink *sink = mxs_sink_open(db, scan, &a->sink, err, sizeof(err));
	if (sink == NULL) {
		fprintf(stderr, "mxsurvey ingest: %s\n", err);
		rc = MXS_EXIT_FAILURE;
		goto out;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int put_failed = 0;
	while (!stop_requested && (n = read_line(&r, &line, &cap)) >= 0)
		if (mxs_sink_put(sink, line, (size_t)n) != 0)
			put_failed = 1;
	free(line);
	int read_error = ferror(r.f) && !stop_requested;

	struct mxs_sink_counts k;
	int sc = mxs_sink_close(sink, &k);
	struct mxs_scan_totals t = { 0 };
	enum mxs_scan_state state = sc != 0 || stop_requested || read_error ? MXS_SCAN_PARTIAL
	                                                                   : MXS_SCAN_DONE;
	/* a scan that could not be finished is counted apart, or this run's commits are a floor */
	int counted = 1;
	if (mxs_scan_finish(db, scan, state, k.put_results, &t, err, sizeof(err)) != 0) {
		mxs_warn("ingest", "cannot update scan id=%" PRId64 " error=\"%s\"", scan, err);
		if (mxs_scan_counts(db, scan, &t.results, &t.domains, &t.rejects, err, sizeof(err)) != 0) {
			counted = 0;
			t.results = k.results_new + k.results_replaced;
			t.domains = k.domains_new;
			t.rejects = k.rejects;
		}
	}
	if (!a->quiet) {
		printf("scan %" PRId64 ": %" PRIu64 " result records read, %s%" PRIu64
		       " result rows stored (%" PRIu64 " new, %" PRIu64 " replaced an interrupted probe)%s\n",
		       scan, k.put_results, counted ? "" : "at least ", t.results, k.results_new,
		       k.results_replaced, counted ? "" : "; the database cannot count them now");
		printf("scan %" PRId64 ": %" PRIu64 " lines read, %" PRIu64 " domain rows stored, %" PRIu64
		       " rejected lines stored, %" PRIu64 " lines spooled, %" PRIu64 " replayed, %" PRIu64
		       " left in the spool\n",
		       scan, k.put_lines, t.domains, t.rejects, k.spooled, k.replayed, k.spool_left);
		/* why rows stored differ from records read: rejected lines first, then the rest */
		if (k.rejects > 0)
			printf("scan %" PRId64 ": note: %" PRIu64 " lines were not records (invalid JSON, no"
			       " address, ...): kept in the rejects table with the reason\n", scan, k.rejects);
		if (counted && sc == 0 && t.results + k.rejects != k.put_results && t.results != k.put_results)
			printf("scan %" PRId64 ": note: rows stored differ from records read "
			       "(records for the same address, or rows from earlier runs)\n", scan);
		fflush(stdout);
	}
	if (read_error) {
		fprintf(stderr, "mxsurvey ingest: %s: read error\n", path);
		rc = MXS_EXIT_BAD_INPUT;
	} else if (sc < 0 || put_failed) {
		rc = MXS_EXIT_FAILURE;
	} else if (sc > 0) {
		rc = MXS_EXIT_SPOOLED;
	} else if (stop_requested) {
		rc = MXS_EXIT_PARTIAL;
	}
out:
	free(r.head);
	if (!is_stdin)
		fclose(r.f);
	return rc;
}

/* --wait-db: seconds from 0 to a day, fractions allowed ("0.5"), as ms. 0, or -1 after a message. */
static int seconds_arg(const char *v, int *ms)
{
	char *end;
	double x;

	errno = 0;
	x = strtod(v, &end);
	if (*v == '\0' || *end != '\0' || errno != 0 || !(x >= 0 && x <= 86400)) {
		fprintf(stderr, "mxsurvey ingest: --wait-db wants a number of seconds from 0 to 86400, not '%s'\n", v);
		return -1;
	}
	*ms = (int)(x * 1000);
	return 0;
}

int cmd_ingest(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "data-dir", required_argument, NULL, 'D' },
		{ "scan", required_argument, NULL, 's' },
		{ "label", required_argument, NULL, 'l' },
		{ "new-scan", no_argument, NULL, 'n' },
		{ "spool", required_argument, NULL, 'S' },
		{ "batch-rows", required_argument, NULL, 'b' },
		{ "flush-ms", required_argument, NULL, 'f' },
		{ "retry-ms", required_argument, NULL, 'r' },
		{ "wait-db", required_argument, NULL, 'w' },
		{ "queue-bytes", required_argument, NULL, 'Q' },
		{ "no-block", no_argument, NULL, 'N' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	/* a file can wait for the database: a smaller queue than a scan's keeps memory low */
	struct ingest_args a = { .sink = { .block_when_full = 1, .close_wait_ms = 10000,
	                                   .queue_bytes = 16u << 20 } };
	int c, lvl;
	long num;

	while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': a.db.url = optarg; break;
		case 'D': a.db.data_dir = optarg; break;
		case 's':
			if (cli_id_arg("ingest", "--scan", optarg, &a.scan) < 0)
				return MXS_EXIT_USAGE;
			break;
		case 'l': a.label = optarg; break;
		case 'n': a.new_scan = 1; break;
		case 'S': a.sink.spool_dir = optarg; break;
		case 'b':
			if (cli_int_arg("ingest", "batch-rows", optarg, 1, 10000000, &num) < 0)
				return MXS_EXIT_USAGE;
			a.sink.batch_rows = (size_t)num;
			break;
		case 'f':
			if (cli_int_arg("ingest", "flush-ms", optarg, 1, 3600000, &num) < 0)
				return MXS_EXIT_USAGE;
			a.sink.flush_ms = (int)num;
			break;
		case 'r':
			if (cli_int_arg("ingest", "retry-ms", optarg, 1, 3600000, &num) < 0)
				return MXS_EXIT_USAGE;
			a.sink.retry_ms = (int)num;
			break;
		case 'w':
			if (seconds_arg(optarg, &a.sink.close_wait_ms) < 0)
				return MXS_EXIT_USAGE;
			break;
		case 'Q':
			if (cli_int_arg("ingest", "queue-bytes", optarg, 1, LONG_MAX, &num) < 0)
				return MXS_EXIT_USAGE;
			a.sink.queue_bytes = (size_t)num;
			break;
		case 'N': a.sink.block_when_full = 0; break;
		case 'q': a.quiet = 1; break;
		case 'L':
			if ((lvl = mxs_log_level_parse(optarg)) < 0) {
				fprintf(stderr, "mxsurvey ingest: bad log level '%s'\n", optarg);
				return MXS_EXIT_USAGE;
			}
			mxs_log_set_level((enum mxs_log_level)lvl);
			break;
		case 'h': usage(stdout); return MXS_EXIT_OK;
		default: usage(stderr); return MXS_EXIT_USAGE;
		}
	}
	if ((a.scan > 0) + (a.label != NULL) + a.new_scan > 1) {
		fprintf(stderr, "mxsurvey ingest: --scan, --label and --new-scan exclude each other\n");
		return MXS_EXIT_USAGE;
	}
	if (a.sink.close_wait_ms <= 0)
		a.sink.close_wait_ms = 1;   /* the sink reads 0 as "its default" */

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	/* every input must be a readable file before anything (a scan) is created */
	for (int i = optind; i < argc; i++) {
		struct stat sb;
		if (strcmp(argv[i], "-") == 0)
			continue;
		if (stat(argv[i], &sb) != 0 || access(argv[i], R_OK) != 0) {
			fprintf(stderr, "mxsurvey ingest: %s: %s\n", argv[i], strerror(errno));
			return MXS_EXIT_BAD_INPUT;
		}
		if (S_ISDIR(sb.st_mode)) {
			fprintf(stderr, "mxsurvey ingest: %s is a directory; name the files to load"
				" (e.g. %s/*.jsonl)\n", argv[i], argv[i]);
			return MXS_EXIT_BAD_INPUT;
		}
	}

	char err[1024];
	struct mxs_db *db;
	if (mxs_db_open(&a.db, &db, err, sizeof(err)) != 0) {
		fprintf(stderr, "mxsurvey ingest: database: %s\n", err);
		return MXS_EXIT_DB;
	}
	a.command_line = strdup(cli_command_line(argc, argv));
	int rc = MXS_EXIT_OK;
	if (optind >= argc) {
		rc = ingest_one(db, &a, "-");
	} else {
		for (int i = optind; i < argc && !stop_requested; i++) {
			int r = ingest_one(db, &a, argv[i]);
			if (r != MXS_EXIT_OK && (rc == MXS_EXIT_OK || r == MXS_EXIT_FAILURE))
				rc = r;
		}
	}
	free(a.command_line);
	mxs_db_close(db);
	return rc;
}
