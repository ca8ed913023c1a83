/*
 * mxsurvey scan: read targets (stdin or a file), probe them, write one JSON result line
 * per target (stdout or -o FILE). See docs/record.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "duration.h"
#include "exitcode.h"
#include "linein.h"
#include "log.h"
#include "outcome.h"
#include "scanner.h"

/*
 * Results are written in whole lines only, so a scan killed at any moment leaves a file
 * of complete records (and at most one second of results unwritten).
 */
struct outbuf {
	int fd;
	char *buf;
	size_t len, cap;
};

struct scan_run {
	struct event_base *base;
	struct mxs_scanner *sc;
	struct mxs_linein *in;
	struct outbuf out;
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
"Politeness and scale:\n"
"  --ehlo-name NAME        name sent in EHLO; use a FQDN whose web page explains the scan\n"
"  --concurrency N         connections in flight (default 1000)\n"
"  --rate N                new connections per second, 0 = unlimited (default 0)\n"
"  --per-ip N              connections at once per address (default 1)\n"
"  --per-net N             connections at once per IPv4 /24 or IPv6 /64 (default 8)\n"
"  --retries N             retries after a 421 reply, with doubling back-off (default 2)\n"
"  --retry-delay DUR       first back-off (default 60s)\n"
"  --blocklist FILE        never dial these ranges (CIDR per line, zmap format)\n"
"  --allowlist FILE        dial only these ranges\n"
"  --no-default-blocklist  also dial the reserved ranges of RFC 6890 (loopback tests)\n"
"Timeouts (DUR: 30, 30s, 500ms, 2m):\n"
"  --connect-timeout DUR (10s)  --greeting-timeout DUR (60s)  --timeout DUR (30s, per command)\n"
"  --handshake-timeout DUR (30s)  --deadline DUR (180s, whole attempt)  --drain-timeout DUR (10s)\n"
"TLS:\n"
"  --ca-file FILE          trust store for the verdict (default: the system store)\n"
"  --profile NAME          client-hello profile (default default-v1)\n"
"Input and output:\n"
"  --port N                port when the target names none (default 25)\n"
"  -o, --output FILE       write results to FILE (default stdout)\n"
"  --resume                with -o FILE: skip targets FILE already has a result for\n"
"                          (interrupted ones excepted) and append to it\n"
"  --shard I/N             scan only shard I (0-based) of N, split by address\n"
"  --seed N                scan-order seed (default: from the clock)\n"
"  --window N              targets held for shuffling (default 2 x concurrency, min 1024)\n"
"  --no-transcript         leave the SMTP transcript out of the records\n"
"  --quiet                 no status line\n"
"  --log-level LEVEL       error, warn, info, debug (default info)\n"
"Exit status: 0 done, 2 usage, 3 stopped early (resume to finish), 4 bad input, 1 failure.\n");
}

#define OUTBUF_FLUSH_AT (1 << 16)

/* Write everything buffered; 0, or -1 with errno set. */
static int outbuf_flush(struct outbuf *o)
{
	size_t off = 0;

	while (off < o->len) {
		ssize_t n = write(o->fd, o->buf + off, o->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	o->len = 0;
	return 0;
}

static int outbuf_line(struct outbuf *o, const char *line, size_t len)
{
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
	return o->len >= OUTBUF_FLUSH_AT ? outbuf_flush(o) : 0;
}

/*
 * A file a killed run left may end in a torn line: cut it, so appended records start on
 * a line of their own. Returns 0 or -1.
 */
static int trim_torn_tail(int fd)
{
	off_t end = lseek(fd, 0, SEEK_END), pos = end;
	char c;

	while (pos > 0) {
		if (pread(fd, &c, 1, pos - 1) != 1)
			return -1;
		if (c == '\n')
			break;
		pos--;
	}
	if (pos != end) {
		mxs_warn("scan", "resume: cutting a torn last line of %lld bytes", (long long)(end - pos));
		if (ftruncate(fd, pos) != 0)
			return -1;
	}
	return lseek(fd, 0, SEEK_END) < 0 ? -1 : 0;
}

static int emit(void *arg, const char *line, size_t len)
{
	struct scan_run *r = arg;

	if (r->out_failed)
		return -1;
	if (outbuf_line(&r->out, line, len) < 0) {
		r->out_failed = true;
		mxs_err("scan", "cannot write results: %s; stopping", strerror(errno));
		if (!r->stopped) {
			r->stopped = true;
			mxs_scanner_stop(r->sc);
		}
		return -1;
	}
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
	if (!r->out_failed && outbuf_flush(&r->out) < 0) {
		r->out_failed = true;
		mxs_err("scan", "cannot write results: %s; stopping", strerror(errno));
		if (!r->stopped) {
			r->stopped = true;
			mxs_scanner_stop(r->sc);
		}
	}
}

/*
 * --resume: every (ip, port) with a result in the file (other than "interrupted" or
 * "local-error") is marked done. Returns the number marked, or -1 if unreadable.
 */
static long load_resume(struct mxs_scanner *sc, const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	long n = 0;
	ssize_t len;

	if (f == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((len = getline(&line, &cap, f)) > 0) {
		json_t *o = json_loadb(line, (size_t)len, 0, NULL);
		const char *type = json_string_value(json_object_get(o, "type"));
		const char *ip = json_string_value(json_object_get(o, "ip"));
		const char *oc = json_string_value(json_object_get(o, "outcome"));
		json_int_t port = json_integer_value(json_object_get(o, "port"));
		if (type && strcmp(type, "result") == 0 && ip && *ip && oc &&
		    strcmp(oc, "interrupted") != 0 && strcmp(oc, "local-error") != 0) {
			mxs_scanner_mark_done(sc, ip, (int)port);
			n++;
		}
		json_decref(o);
	}
	free(line);
	fclose(f);
	return n;
}

static void print_summary(const struct mxs_scan_stats *st)
{
	fprintf(stderr, "scan: %llu input lines, %llu targets, %llu result records",
		(unsigned long long)st->lines, (unsigned long long)st->targets,
		(unsigned long long)st->records);
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

enum {
	OPT_EHLO = 256, OPT_CONC, OPT_RATE, OPT_PER_IP, OPT_PER_NET, OPT_RETRIES, OPT_RETRY_DELAY,
	OPT_BLOCK, OPT_ALLOW, OPT_NO_DEFBLOCK, OPT_CT, OPT_GT, OPT_T, OPT_HT, OPT_DEADLINE,
	OPT_DRAIN, OPT_CA, OPT_PROFILE, OPT_PORT, OPT_RESUME, OPT_SHARD, OPT_SEED, OPT_WINDOW,
	OPT_NO_TRANSCRIPT, OPT_QUIET, OPT_LOG,
};

static const struct option longopts[] = {
	{ "ehlo-name", required_argument, NULL, OPT_EHLO },
	{ "concurrency", required_argument, NULL, OPT_CONC },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "per-ip", required_argument, NULL, OPT_PER_IP },
	{ "per-net", required_argument, NULL, OPT_PER_NET },
	{ "retries", required_argument, NULL, OPT_RETRIES },
	{ "retry-delay", required_argument, NULL, OPT_RETRY_DELAY },
	{ "blocklist", required_argument, NULL, OPT_BLOCK },
	{ "allowlist", required_argument, NULL, OPT_ALLOW },
	{ "no-default-blocklist", no_argument, NULL, OPT_NO_DEFBLOCK },
	{ "connect-timeout", required_argument, NULL, OPT_CT },
	{ "greeting-timeout", required_argument, NULL, OPT_GT },
	{ "timeout", required_argument, NULL, OPT_T },
	{ "handshake-timeout", required_argument, NULL, OPT_HT },
	{ "deadline", required_argument, NULL, OPT_DEADLINE },
	{ "drain-timeout", required_argument, NULL, OPT_DRAIN },
	{ "ca-file", required_argument, NULL, OPT_CA },
	{ "profile", required_argument, NULL, OPT_PROFILE },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "output", required_argument, NULL, 'o' },
	{ "resume", no_argument, NULL, OPT_RESUME },
	{ "shard", required_argument, NULL, OPT_SHARD },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "window", required_argument, NULL, OPT_WINDOW },
	{ "no-transcript", no_argument, NULL, OPT_NO_TRANSCRIPT },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "log-level", required_argument, NULL, OPT_LOG },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int int_arg(const char *name, const char *v, long min, long max, long *out)
{
	char *end;
	long x = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || x < min || x > max) {
		fprintf(stderr, "mxsurvey scan: --%s wants a whole number from %ld to %ld, not '%s'\n",
			name, min, max, v);
		return -1;
	}
	*out = x;
	return 0;
}

static int dur_arg(const char *name, const char *v, int *out)
{
	long long ms = parse_duration_ms(v);
	if (ms < 0 || ms > 86400000LL) {
		fprintf(stderr, "mxsurvey scan: --%s wants a duration (30, 30s, 500ms, 2m), not '%s'\n", name, v);
		return -1;
	}
	*out = (int)ms;
	return 0;
}

int cmd_scan(int argc, char **argv)
{
	struct mxs_scan_opts o;
	struct scan_run r = { 0 };
	const char *outpath = NULL, *inpath = NULL;
	bool resume = false;
	char err[512];
	long v;
	int c, rc = MXS_EXIT_OK;
	struct event *sigint, *sigterm;
	const struct mxs_scan_stats *st;

	mxs_scan_opts_defaults(&o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		int bad = 0;
		switch (c) {
		case OPT_EHLO: o.ehlo_name = optarg; break;
		case OPT_CONC: bad = int_arg("concurrency", optarg, 1, 1000000, &v); o.concurrency = (int)v; break;
		case OPT_RATE: bad = int_arg("rate", optarg, 0, 10000000, &v); o.rate = (double)v; break;
		case OPT_PER_IP: bad = int_arg("per-ip", optarg, 1, 1000, &v); o.per_ip = (int)v; break;
		case OPT_PER_NET: bad = int_arg("per-net", optarg, 1, 1000000, &v); o.per_net = (int)v; break;
		case OPT_RETRIES: bad = int_arg("retries", optarg, 0, 20, &v); o.retries = (int)v; break;
		case OPT_RETRY_DELAY: bad = dur_arg("retry-delay", optarg, &o.retry_delay_ms); break;
		case OPT_BLOCK: o.blocklist = optarg; break;
		case OPT_ALLOW: o.allowlist = optarg; break;
		case OPT_NO_DEFBLOCK: o.default_blocklist = false; break;
		case OPT_CT: bad = dur_arg("connect-timeout", optarg, &o.connect_timeout_ms); break;
		case OPT_GT: bad = dur_arg("greeting-timeout", optarg, &o.greeting_timeout_ms); break;
		case OPT_T: bad = dur_arg("timeout", optarg, &o.command_timeout_ms); break;
		case OPT_HT: bad = dur_arg("handshake-timeout", optarg, &o.handshake_timeout_ms); break;
		case OPT_DEADLINE: bad = dur_arg("deadline", optarg, &o.deadline_ms); break;
		case OPT_DRAIN: bad = dur_arg("drain-timeout", optarg, &o.drain_timeout_ms); break;
		case OPT_CA: o.ca_file = optarg; break;
		case OPT_PROFILE: o.profile = optarg; break;
		case OPT_PORT: bad = int_arg("port", optarg, 1, 65535, &v); o.port = (int)v; break;
		case 'o': outpath = optarg; break;
		case OPT_RESUME: resume = true; break;
		case OPT_SHARD: {
			unsigned i, n;
			char tail;
			if (sscanf(optarg, "%u/%u%c", &i, &n, &tail) != 2 || n == 0 || i >= n) {
				fprintf(stderr, "mxsurvey scan: --shard wants I/N with 0 <= I < N, not '%s'\n", optarg);
				bad = -1;
			}
			o.shard_index = i;
			o.shard_count = n;
			break;
		}
		case OPT_SEED: o.seed = strtoull(optarg, NULL, 0); break;
		case OPT_WINDOW: bad = int_arg("window", optarg, 1, 100000000, &v); o.window = (size_t)v; break;
		case OPT_NO_TRANSCRIPT: o.transcript = false; break;
		case OPT_QUIET: o.status = false; break;
		case OPT_LOG:
			if (mxs_log_level_parse(optarg) < 0) {
				fprintf(stderr, "mxsurvey scan: unknown log level '%s'\n", optarg);
				bad = -1;
			} else {
				mxs_log_set_level((enum mxs_log_level)mxs_log_level_parse(optarg));
			}
			break;
		case 'h': usage(stdout); return MXS_EXIT_OK;
		default: usage(stderr); return MXS_EXIT_USAGE;
		}
		if (bad)
			return MXS_EXIT_USAGE;
	}
	if (optind < argc)
		inpath = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "mxsurvey scan: one input file at most\n");
		return MXS_EXIT_USAGE;
	}
	if (resume && outpath == NULL) {
		fprintf(stderr, "mxsurvey scan: --resume needs -o FILE (the results to continue)\n");
		return MXS_EXIT_USAGE;
	}

	signal(SIGPIPE, SIG_IGN);
	r.base = event_base_new();
	if (r.base == NULL)
		return MXS_EXIT_FAILURE;
	r.out.fd = STDOUT_FILENO;
	if (outpath != NULL) {
		r.out.fd = open(outpath, O_CREAT | O_CLOEXEC | (resume ? O_RDWR | O_APPEND : O_WRONLY | O_TRUNC), 0644);
		if (r.out.fd < 0 || (resume && trim_torn_tail(r.out.fd) < 0)) {
			fprintf(stderr, "mxsurvey scan: cannot open %s: %s\n", outpath, strerror(errno));
			if (r.out.fd >= 0)
				close(r.out.fd);
			event_base_free(r.base);
			return MXS_EXIT_FAILURE;
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
	if (resume) {
		long n = load_resume(r.sc, outpath);
		if (n < 0) {
			fprintf(stderr, "mxsurvey scan: cannot read %s to resume: %s\n", outpath, strerror(errno));
			rc = MXS_EXIT_FAILURE;
			goto out;
		}
		mxs_info("scan", "resume: %ld targets already have results in %s", n, outpath);
	}
	mxs_scanner_set_callbacks(r.sc, want, done, progress, &r);
	mxs_info("scan", "start ehlo=%s profile=%s concurrency=%d per_ip=%d per_net=%d",
		 mxs_scanner_ehlo_name(r.sc), mxs_scanner_profile(r.sc), o.concurrency, o.per_ip, o.per_net);
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
	if (!r.out_failed && outbuf_flush(&r.out) < 0)
		r.out_failed = true;
	st = mxs_scanner_stats(r.sc);
	if (o.status)
		mxs_scanner_print_status(r.sc, true);
	print_summary(st);
	if (r.out_failed || st->emit_errors)
		rc = MXS_EXIT_FAILURE;
	else if (r.stopped)
		rc = MXS_EXIT_PARTIAL;
	else if (mxs_linein_error(r.in) != 0 ||
		 (st->targets > 0 && st->by_outcome[MXS_OUT_BAD_TARGET] == st->targets))
		rc = MXS_EXIT_BAD_INPUT;
out:
	mxs_scanner_free(r.sc);
	mxs_linein_close(r.in);
	if (r.out.fd != STDOUT_FILENO && r.out.fd >= 0)
		close(r.out.fd);
	free(r.out.buf);
	event_base_free(r.base);
	return rc;
}
