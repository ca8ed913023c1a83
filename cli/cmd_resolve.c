/*
 * mxsurvey resolve [options] [FILE]: domains (or MX names, addresses, ranges) in, target
 * and domain JSON lines out. The input is read as the resolver asks for more (streaming,
 * bounded memory); status goes to stderr once a second; a summary ends the run.
 */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "blocklist.h"
#include "commands.h"
#include "evbase.h"
#include "exitcode.h"
#include "jsonout.h"
#include "log.h"
#include "resolve.h"
#include "timeutil.h"

#define MAX_SERVERS 16

struct resolve_run {
	struct event_base *base;
	struct mxs_resolver *res;
	FILE *in, *out;
	const char *in_name;
	char *line;            /* getline buffer, owned */
	struct mxs_jbuf obuf;  /* serialised record, owned; reused for every record */
	size_t cap;
	unsigned long lineno;
	unsigned long bad, fed;
	int eof, input_error, output_error, interrupted, quiet, services;
	int64_t start_ms;
	struct mxs_resolve_stats last;  /* counters at the previous status line */
	struct event *status_ev, *sigint_ev, *sigterm_ev;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mxsurvey resolve [options] [FILE]\n"
		"Reads domains (or 'rank,domain', addresses, CIDR ranges; '#' comments) from FILE\n"
		"or stdin and writes target and domain JSON lines (docs/targets.md).\n\n"
		"  -o, --output FILE          write records to FILE instead of stdout\n"
		"      --dns-server IP[:PORT] resolver to ask (repeatable; default: resolv.conf)\n"
		"      --ipv4-only            look up A records only\n"
		"      --ipv6-only            look up AAAA records only\n"
		"      --blocklist FILE       more ranges never to dial (zmap format; repeatable)\n"
		"      --allowlist FILE       only these ranges may be dialled (repeatable)\n"
		"      --no-default-blocklist do not block the RFC 6890 reserved ranges\n"
		"      --concurrency N        most domains in flight (default 1000); DNS queries\n"
		"                             in flight adapt to the resolver below that\n"
		"      --timeout SECONDS      first DNS try, e.g. 3 or 0.5 (default 3; doubled\n"
		"                             for each retry)\n"
		"      --retries N            DNS re-sends after a timeout (default 2)\n"
		"      --no-policy            skip MTA-STS, TLSRPT and TLSA lookups\n"
		"      --mx-hosts             bare names are MX host names, not mail domains\n"
		"      --services             also the SRV records of submission, IMAP and POP3\n"
		"                             (RFC 6186, RFC 8314): one target per service host\n"
		"      --guess-hosts          with --services: where a domain has no SRV record\n"
		"                             for a service, try smtp., imap., pop., mail. names\n"
		"      --port PORT            port written into target records (default 25)\n"
		"      --cache-size N         MX hosts kept in the cache (default 20000)\n"
		"      --mta-sts-ca-file FILE trust store for MTA-STS policy fetches (default system)\n"
		"      --mta-sts-port PORT    port of MTA-STS policy servers (default 443)\n"
		"      --mta-sts-timeout SEC  whole policy fetch (default 10)\n"
		"  -q, --quiet                no status line once a second\n"
		"      --log-level LEVEL      error, warn, info, debug\n"
		"  -h, --help                 this text\n");
}

/* Parse seconds with an optional fraction ("2", "0.25") into milliseconds. */
static int parse_seconds(const char *s, int *ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || end == s || v <= 0 || v > 3600)
		return -1;
	*ms = (int)(v * 1000 + 0.5);
	return *ms > 0 ? 0 : -1;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || end == s || s[0] == '-' || v > max)
		return -1;
	*out = v;
	return 0;
}

/* One record, one line. Serialised into a reused buffer (jsonout.h: jansson's compact
 * text without json_dumpb's per-object cost) and written with one fwrite: json_dumpf
 * issues an fwrite per token, which was 7% of a benchmark run. */
static void write_record(struct resolve_run *run, json_t *j)
{
	run->obuf.len = 0;
	int rc = mxs_json_compact(&run->obuf, j);
	json_decref(j);
	if (rc < 0 || mxs_jbuf_putc(&run->obuf, '\n') < 0) {
		run->output_error = 1;
		return;
	}
	if (fwrite(run->obuf.p, 1, run->obuf.len, run->out) != run->obuf.len)
		run->output_error = 1;
}

static void on_target(json_t *t, void *arg)
{
	write_record(arg, t);
}

static void on_domain(json_t *d, void *arg)
{
	write_record(arg, d);
}

/* Feed lines while the resolver has room; at the end of the input, tell it so. */
static void feed(struct resolve_run *run)
{
	char err[256];
	ssize_t n;

	while (!run->eof && !run->interrupted && mxs_resolver_ready(run->res)) {
		n = getline(&run->line, &run->cap, run->in);
		if (n < 0) {
			if (ferror(run->in)) {
				mxs_err("resolve", "read-error input=%s error=\"%s\"", run->in_name,
					strerror(errno));
				run->input_error = 1;
			}
			run->eof = 1;
			mxs_resolver_finish(run->res);
			break;
		}
		run->lineno++;
		switch (mxs_resolver_feed(run->res, run->line, (size_t)n, run->lineno, err, sizeof(err))) {
		case MXS_FEED_BAD:
			run->bad++;
			mxs_warn("resolve", "bad-line input=%s line=%lu error=\"%s\"", run->in_name,
				 run->lineno, err);
			break;
		case MXS_FEED_OK:
			run->fed++;
			break;
		case MXS_FEED_SKIPPED:
			break;
		}
	}
}

static void on_ready(void *arg)
{
	feed(arg);
}

static void on_done(void *arg)
{
	struct resolve_run *run = arg;

	event_base_loopexit(run->base, NULL);
}

static void on_status(evutil_socket_t fd, short what, void *arg)
{
	struct resolve_run *run = arg;
	struct mxs_resolve_stats st;
	double secs = (double)(mxs_mono_ms() - run->start_ms) / 1000.0;

	mxs_resolver_stats(run->res, &st);
	/* deltas over the last second, like zmap's monitor */
	fprintf(stderr,
		"resolve %.0fs domains=%lu (+%lu/s) in_flight=%lu queries=%lu (+%lu/s) "
		"dns_window=%lu dns_waiting=%lu timeouts=%lu (+%lu/s) "
		"targets=%lu blocked=%lu cache_hits=%lu bad_lines=%lu\n",
		secs, st.domains_done, st.domains_done - run->last.domains_done, st.in_flight,
		st.queries, st.queries - run->last.queries, st.dns_window, st.dns_waiting,
		st.timeouts, st.timeouts - run->last.timeouts, st.targets, st.blocked,
		st.cache_hits, st.bad_lines);
	run->last = st;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct resolve_run *run = arg;

	mxs_warn("resolve", "interrupted signal=%d", (int)sig);
	run->interrupted = 1;
	event_base_loopexit(run->base, NULL);
}

static void summary(struct resolve_run *run)
{
	struct mxs_resolve_stats st;
	double secs = (double)(mxs_mono_ms() - run->start_ms) / 1000.0;
	char bystatus[512];
	size_t n = 0;

	mxs_resolver_stats(run->res, &st);
	bystatus[0] = '\0';
	for (int i = 0; i < MXS_DOM_STATUS_LAST; i++)
		if (st.by_status[i])
			n += (size_t)snprintf(bystatus + n, sizeof(bystatus) - n, " %s=%lu",
					      mxs_domain_status_name(i), st.by_status[i]);
	fprintf(stderr,
		"resolve done lines=%lu bad_lines=%lu domains=%lu hosts=%lu targets=%lu "
		"blocked=%lu queries=%lu retries=%lu timeouts=%lu dns_window=%lu dns_cuts=%lu "
		"cache_hits=%lu cache_misses=%lu policy_fetches=%lu "
		"seconds=%.2f domains_per_s=%.0f queries_per_s=%.0f%s\n",
		st.lines, st.bad_lines, st.domains_done - st.hosts_in, st.hosts_in, st.targets,
		st.blocked, st.queries, st.retries, st.timeouts, st.dns_window, st.dns_cuts,
		st.cache_hits, st.cache_misses, st.policy_fetches, secs,
		secs > 0 ? (double)st.domains_done / secs : 0.0,
		secs > 0 ? (double)st.queries / secs : 0.0, bystatus);
	if (run->services)
		fprintf(stderr, "resolve services service_targets=%lu\n", st.service_targets);
}

enum {
	OPT_DNS = 256, OPT_V4, OPT_V6, OPT_BLOCK, OPT_ALLOW, OPT_NODEF, OPT_CONC, OPT_TIMEOUT,
	OPT_RETRIES, OPT_NOPOL, OPT_MXHOSTS, OPT_PORT, OPT_CACHE, OPT_CA, OPT_STSPORT,
	OPT_STSTIMEOUT, OPT_LOGLEVEL, OPT_SERVICES, OPT_GUESS,
};

static const struct option long_opts[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "dns-server", required_argument, NULL, OPT_DNS },
	{ "ipv4-only", no_argument, NULL, OPT_V4 },
	{ "ipv6-only", no_argument, NULL, OPT_V6 },
	{ "blocklist", required_argument, NULL, OPT_BLOCK },
	{ "allowlist", required_argument, NULL, OPT_ALLOW },
	{ "no-default-blocklist", no_argument, NULL, OPT_NODEF },
	{ "concurrency", required_argument, NULL, OPT_CONC },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "retries", required_argument, NULL, OPT_RETRIES },
	{ "no-policy", no_argument, NULL, OPT_NOPOL },
	{ "mx-hosts", no_argument, NULL, OPT_MXHOSTS },
	{ "services", no_argument, NULL, OPT_SERVICES },
	{ "guess-hosts", no_argument, NULL, OPT_GUESS },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "cache-size", required_argument, NULL, OPT_CACHE },
	{ "mta-sts-ca-file", required_argument, NULL, OPT_CA },
	{ "mta-sts-port", required_argument, NULL, OPT_STSPORT },
	{ "mta-sts-timeout", required_argument, NULL, OPT_STSTIMEOUT },
	{ "quiet", no_argument, NULL, 'q' },
	{ "log-level", required_argument, NULL, OPT_LOGLEVEL },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int cmd_resolve(int argc, char **argv)
{
	struct mxs_resolve_opts o;
	struct resolve_run run;
	const char *servers[MAX_SERVERS];
	const char *blockfiles[64], *allowfiles[64], *outpath = NULL;
	size_t nblock = 0, nallow = 0;
	int no_default = 0, c, rc = MXS_EXIT_FAILURE;
	unsigned long v;
	char err[512];
	struct mxs_blocklist *bl = NULL;

	memset(&o, 0, sizeof(o));
	memset(&run, 0, sizeof(run));
	o.dns_servers = servers;
	o.retries = 2;
	optind = 1;
	int li = -1;
	while ((li = -1, c = getopt_long(argc, argv, "o:qh", long_opts, &li)) != -1) {
		switch (c) {
		case 'o': outpath = optarg; break;
		case 'q': run.quiet = 1; break;
		case 'h': usage(stdout); return MXS_EXIT_OK;
		case OPT_DNS:
			if (o.ndns_servers >= MAX_SERVERS) {
				fprintf(stderr, "mxsurvey resolve: at most %d --dns-server\n", MAX_SERVERS);
				return MXS_EXIT_USAGE;
			}
			servers[o.ndns_servers++] = optarg;
			break;
		case OPT_V4: o.family = MXS_FAMILY_V4; break;
		case OPT_V6: o.family = MXS_FAMILY_V6; break;
		case OPT_BLOCK:
		case OPT_ALLOW:
			if ((c == OPT_BLOCK ? nblock : nallow) >= 64) {
				fprintf(stderr, "mxsurvey resolve: too many list files\n");
				return MXS_EXIT_USAGE;
			}
			if (c == OPT_BLOCK)
				blockfiles[nblock++] = optarg;
			else
				allowfiles[nallow++] = optarg;
			break;
		case OPT_NODEF: no_default = 1; break;
		case OPT_CONC:
			if (parse_uint(optarg, 1000000, &v) < 0 || v == 0)
				goto bad_value;
			o.concurrency = (unsigned)v;
			break;
		case OPT_TIMEOUT:
			if (parse_seconds(optarg, &o.timeout_ms) < 0)
				goto bad_value;
			break;
		case OPT_RETRIES:
			if (parse_uint(optarg, 20, &v) < 0)
				goto bad_value;
			o.retries = (int)v;
			break;
		case OPT_NOPOL: o.no_policy = 1; break;
		case OPT_MXHOSTS: o.mx_hosts = 1; break;
		case OPT_SERVICES: o.services = 1; break;
		case OPT_GUESS: o.guess_hosts = 1; break;
		case OPT_PORT:
			if (parse_uint(optarg, 65535, &v) < 0 || v == 0)
				goto bad_value;
			o.target_port = (unsigned short)v;
			break;
		case OPT_CACHE:
			if (parse_uint(optarg, 100000000, &v) < 0 || v == 0)
				goto bad_value;
			o.host_cache = v;
			break;
		case OPT_CA: o.mta_sts_ca_file = optarg; break;
		case OPT_STSPORT:
			if (parse_uint(optarg, 65535, &v) < 0 || v == 0)
				goto bad_value;
			o.mta_sts_port = (unsigned short)v;
			break;
		case OPT_STSTIMEOUT:
			if (parse_seconds(optarg, &o.mta_sts_timeout_ms) < 0)
				goto bad_value;
			break;
		case OPT_LOGLEVEL: {
			int l = mxs_log_level_parse(optarg);
			if (l < 0)
				goto bad_value;
			mxs_log_set_level((enum mxs_log_level)l);
			break;
		}
		default:
			usage(stderr);
			return MXS_EXIT_USAGE;
		}
	}
	if (argc - optind > 1) {
		fprintf(stderr, "mxsurvey resolve: one input file at most\n");
		return MXS_EXIT_USAGE;
	}
	if (o.guess_hosts && !o.services) {
		fprintf(stderr, "mxsurvey resolve: --guess-hosts needs --services\n");
		return MXS_EXIT_USAGE;
	}
	run.services = o.services;

	/* The blocklist: reserved ranges unless disabled, then the user's files. */
	bl = mxs_blocklist_new();
	if (!bl || (!no_default && mxs_blocklist_add_defaults(bl) < 0))
		goto out;
	for (size_t i = 0; i < nblock; i++)
		if (mxs_blocklist_load_file(bl, blockfiles[i], 0, err, sizeof(err)) < 0) {
			fprintf(stderr, "mxsurvey resolve: blocklist %s\n", err);
			rc = MXS_EXIT_USAGE;
			goto out;
		}
	for (size_t i = 0; i < nallow; i++)
		if (mxs_blocklist_load_file(bl, allowfiles[i], 1, err, sizeof(err)) < 0) {
			fprintf(stderr, "mxsurvey resolve: allowlist %s\n", err);
			rc = MXS_EXIT_USAGE;
			goto out;
		}
	o.blocklist = bl;

	run.in_name = argc > optind ? argv[optind] : "-";
	run.in = argc > optind && strcmp(argv[optind], "-") != 0 ? fopen(argv[optind], "r") : stdin;
	if (!run.in) {
		fprintf(stderr, "mxsurvey resolve: %s: %s\n", argv[optind], strerror(errno));
		rc = MXS_EXIT_BAD_INPUT;
		goto out;
	}
	run.out = outpath ? fopen(outpath, "w") : stdout;
	if (!run.out) {
		fprintf(stderr, "mxsurvey resolve: %s: %s\n", outpath, strerror(errno));
		rc = MXS_EXIT_USAGE;
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	/* each MTA-STS policy fetch holds a socket: allow as many as the hard limit does */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	run.base = event_base_new();
	if (!run.base)
		goto out;
	struct mxs_resolve_cbs cbs = {
		.on_target = on_target, .on_domain = on_domain, .on_ready = on_ready,
		.on_done = on_done, .arg = &run,
	};
	run.res = mxs_resolver_new(run.base, &o, &cbs, err, sizeof(err));
	if (!run.res) {
		fprintf(stderr, "mxsurvey resolve: %s\n", err);
		rc = MXS_EXIT_USAGE;
		goto out;
	}
	run.start_ms = mxs_mono_ms();
	if (!run.quiet) {
		struct timeval sec = { 1, 0 };
		run.status_ev = event_new(run.base, -1, EV_PERSIST, on_status, &run);
		if (run.status_ev)
			event_add(run.status_ev, &sec);
	}
	run.sigint_ev = evsignal_new(run.base, SIGINT, on_signal, &run);
	run.sigterm_ev = evsignal_new(run.base, SIGTERM, on_signal, &run);
	if (run.sigint_ev)
		event_add(run.sigint_ev, NULL);
	if (run.sigterm_ev)
		event_add(run.sigterm_ev, NULL);

	feed(&run);
	event_base_dispatch(run.base);
	summary(&run);

	if (fflush(run.out) != 0 || ferror(run.out))
		run.output_error = 1;
	if (run.output_error) {
		mxs_err("resolve", "write-error error=\"%s\"", strerror(errno));
		rc = MXS_EXIT_FAILURE;
	} else if (run.interrupted) {
		rc = MXS_EXIT_PARTIAL;
	} else if (run.input_error || run.fed == 0) {
		/* empty, comments only, or nothing but bad lines: no line was a target */
		if (!run.input_error)
			mxs_err("resolve", "no-targets input=%s lines=%lu bad=%lu", run.in_name,
				run.lineno, run.bad);
		rc = MXS_EXIT_BAD_INPUT;
	} else {
		rc = MXS_EXIT_OK;
	}
	goto out;

bad_value:
	fprintf(stderr, "mxsurvey resolve: bad value '%s' for --%s\n", optarg,
		li >= 0 ? long_opts[li].name : "?");
	return MXS_EXIT_USAGE;
out:
	if (run.status_ev)
		event_free(run.status_ev);
	if (run.sigint_ev)
		event_free(run.sigint_ev);
	if (run.sigterm_ev)
		event_free(run.sigterm_ev);
	mxs_resolver_free(run.res);
	if (run.base)
		mxs_event_base_close(run.base);
	if (run.in && run.in != stdin)
		fclose(run.in);
	if (run.out && run.out != stdout)
		fclose(run.out);
	free(run.line);
	free(run.obuf.p);
	mxs_blocklist_free(bl);
	return rc;
}
