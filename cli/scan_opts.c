#include "scan_opts.h"

#include <stdlib.h>
#include <string.h>

#include "cliutil.h"
#include "duration.h"
#include "log.h"
#include "proto.h"

const struct option scan_longopts[] = {
	{ "ehlo-name", required_argument, NULL, SCAN_OPT_EHLO },
	{ "concurrency", required_argument, NULL, SCAN_OPT_CONC },
	{ "rate", required_argument, NULL, SCAN_OPT_RATE },
	{ "per-ip", required_argument, NULL, SCAN_OPT_PER_IP },
	{ "per-net", required_argument, NULL, SCAN_OPT_PER_NET },
	{ "retries", required_argument, NULL, SCAN_OPT_RETRIES },
	{ "retry-delay", required_argument, NULL, SCAN_OPT_RETRY_DELAY },
	{ "blocklist", required_argument, NULL, SCAN_OPT_BLOCK },
	{ "allowlist", required_argument, NULL, SCAN_OPT_ALLOW },
	{ "no-default-blocklist", no_argument, NULL, SCAN_OPT_NO_DEFBLOCK },
	{ "connect-timeout", required_argument, NULL, SCAN_OPT_CT },
	{ "greeting-timeout", required_argument, NULL, SCAN_OPT_GT },
	{ "timeout", required_argument, NULL, SCAN_OPT_T },
	{ "handshake-timeout", required_argument, NULL, SCAN_OPT_HT },
	{ "deadline", required_argument, NULL, SCAN_OPT_DEADLINE },
	{ "drain-timeout", required_argument, NULL, SCAN_OPT_DRAIN },
	{ "ca-file", required_argument, NULL, SCAN_OPT_CA },
	{ "profile", required_argument, NULL, SCAN_OPT_PROFILE },
	{ "port", required_argument, NULL, SCAN_OPT_PORT },
	{ "proto", required_argument, NULL, SCAN_OPT_PROTO },
	{ "ports", required_argument, NULL, SCAN_OPT_PORTS },
	{ "shard", required_argument, NULL, SCAN_OPT_SHARD },
	{ "seed", required_argument, NULL, SCAN_OPT_SEED },
	{ "window", required_argument, NULL, SCAN_OPT_WINDOW },
	{ "no-transcript", no_argument, NULL, SCAN_OPT_NO_TRANSCRIPT },
	{ "sni", required_argument, NULL, SCAN_OPT_SNI },
	{ "probes", required_argument, NULL, SCAN_OPT_PROBES },
	{ "legacy-budget", required_argument, NULL, SCAN_OPT_LEGACY_BUDGET },
	{ "quiet", no_argument, NULL, SCAN_OPT_QUIET },
	{ "log-level", required_argument, NULL, SCAN_OPT_LOG },
	{ NULL, 0, NULL, 0 },
};

const size_t scan_longopts_count = sizeof(scan_longopts) / sizeof(scan_longopts[0]) - 1;

void scan_opts_usage(FILE *f)
{
	fprintf(f,
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
"Timeouts measure silence (DUR: 30, 30s, 500ms, 2m):\n"
"  --connect-timeout DUR (10s)  --greeting-timeout DUR (60s)  --timeout DUR (30s, per command)\n"
"  --handshake-timeout DUR (30s)  --deadline DUR (180s, whole attempt)  --drain-timeout DUR (10s)\n"
"TLS:\n"
"  --ca-file FILE          trust store for the verdict (default: the system store)\n"
"  --profile NAME          client-hello profile (default default-v1)\n"
"Targets and order:\n"
"  --port N                port when the target names none (default 25, or the protocol's)\n"
"  --proto NAME            protocol of every probe: smtp (25), submission (587),\n"
"                          submissions (465), imap (143), imaps (993), pop3 (110),\n"
"                          pop3s (995); a JSON target's \"proto\" overrides it\n"
"  --ports LIST            probe each address line on each port (25,587,465,143,993,\n"
"                          110,995), each with its protocol (smtp for other ports)\n"
"  --shard I/N             scan only shard I (0-based) of N, split by address\n"
"  --seed N                scan-order seed (default: from the clock)\n"
"  --window N              targets held for shuffling (default 2 x concurrency, min 1024)\n"
"  --no-transcript         leave the SMTP transcript out of the records\n"
"  --sni all|needed|none   follow-up probe per further MX name of an address, sending it in\n"
"                          SNI: for every name, for names with TLSA records (default), never\n"
"  --probes default|legacy  legacy: after the normal probe, crafted ClientHellos ask what each\n"
"                          TLS address still accepts (SSLv3, RC4, export, DH size, ...) and\n"
"                          whether STARTTLS injection works; the record's support object\n"
"  --legacy-budget N       connections the legacy probes may make per address (default 6)\n"
"  --quiet                 no status line\n"
"  --log-level LEVEL       error, warn, info, debug (default info)\n");
}

static int int_arg(const char *cmd, const char *name, const char *v, long min, long max, long *out)
{
	return cli_int_arg(cmd, name, v, min, max, out);
}

static int dur_arg(const char *cmd, const char *name, const char *v, int *out)
{
	long long ms = parse_duration_ms(v);

	if (ms < 0 || ms > 86400000LL) {
		fprintf(stderr, "mxsurvey %s: --%s wants a duration (30, 30s, 500ms, 2m), not '%s'\n",
			cmd, name, v);
		return -1;
	}
	*out = (int)ms;
	return 0;
}

int scan_opt_apply(const char *cmd, int c, const char *arg, struct mxs_scan_opts *o)
{
	long v = 0;
	int bad = 0;

	switch (c) {
	case SCAN_OPT_EHLO: o->ehlo_name = arg; break;
	case SCAN_OPT_CONC: bad = int_arg(cmd, "concurrency", arg, 1, 1000000, &v); o->concurrency = (int)v; break;
	case SCAN_OPT_RATE: bad = int_arg(cmd, "rate", arg, 0, 10000000, &v); o->rate = (double)v; break;
	case SCAN_OPT_PER_IP: bad = int_arg(cmd, "per-ip", arg, 1, 1000, &v); o->per_ip = (int)v; break;
	case SCAN_OPT_PER_NET: bad = int_arg(cmd, "per-net", arg, 1, 1000000, &v); o->per_net = (int)v; break;
	case SCAN_OPT_RETRIES: bad = int_arg(cmd, "retries", arg, 0, 20, &v); o->retries = (int)v; break;
	case SCAN_OPT_RETRY_DELAY: bad = dur_arg(cmd, "retry-delay", arg, &o->retry_delay_ms); break;
	case SCAN_OPT_BLOCK: o->blocklist = arg; break;
	case SCAN_OPT_ALLOW: o->allowlist = arg; break;
	case SCAN_OPT_NO_DEFBLOCK: o->default_blocklist = false; break;
	case SCAN_OPT_CT: bad = dur_arg(cmd, "connect-timeout", arg, &o->connect_timeout_ms); break;
	case SCAN_OPT_GT: bad = dur_arg(cmd, "greeting-timeout", arg, &o->greeting_timeout_ms); break;
	case SCAN_OPT_T: bad = dur_arg(cmd, "timeout", arg, &o->command_timeout_ms); break;
	case SCAN_OPT_HT: bad = dur_arg(cmd, "handshake-timeout", arg, &o->handshake_timeout_ms); break;
	case SCAN_OPT_DEADLINE: bad = dur_arg(cmd, "deadline", arg, &o->deadline_ms); break;
	case SCAN_OPT_DRAIN: bad = dur_arg(cmd, "drain-timeout", arg, &o->drain_timeout_ms); break;
	case SCAN_OPT_CA: o->ca_file = arg; break;
	case SCAN_OPT_PROFILE: o->profile = arg; break;
	case SCAN_OPT_PORT:
		bad = int_arg(cmd, "port", arg, 1, 65535, &v);
		o->port = (int)v;
		o->port_given = true;
		break;
	case SCAN_OPT_PROTO: {
		const struct mxs_proto *p = mxs_proto_find(arg);
		if (p == NULL) {
			fprintf(stderr, "mxsurvey %s: unknown --proto '%s' (smtp, submission, submissions, "
				"imap, imaps, pop3, pop3s)\n", cmd, arg);
			return -1;
		}
		o->proto = p->name;
		if (!o->port_given)
			o->port = p->default_port;
		break;
	}
	case SCAN_OPT_PORTS: {
		char *copy = strdup(arg), *save = NULL;
		o->nports = 0;
		for (char *tok = copy ? strtok_r(copy, ",", &save) : NULL; tok != NULL && !bad;
		     tok = strtok_r(NULL, ",", &save)) {
			if (o->nports == MXS_PORTS_MAX) {
				fprintf(stderr, "mxsurvey %s: --ports takes at most %d ports\n", cmd, MXS_PORTS_MAX);
				bad = -1;
			} else if ((bad = int_arg(cmd, "ports", tok, 1, 65535, &v)) == 0) {
				o->ports[o->nports++] = (int)v;
			}
		}
		free(copy);
		if (!bad && o->nports == 0) {
			fprintf(stderr, "mxsurvey %s: --ports wants a list such as 587,465\n", cmd);
			bad = -1;
		}
		break;
	}
	case SCAN_OPT_SHARD: {
		unsigned i, n;
		char tail;
		if (sscanf(arg, "%u/%u%c", &i, &n, &tail) != 2 || n == 0 || i >= n) {
			fprintf(stderr, "mxsurvey %s: --shard wants I/N with 0 <= I < N, not '%s'\n", cmd, arg);
			return -1;
		}
		o->shard_index = i;
		o->shard_count = n;
		break;
	}
	case SCAN_OPT_SEED: o->seed = strtoull(arg, NULL, 0); break;
	case SCAN_OPT_WINDOW: bad = int_arg(cmd, "window", arg, 1, 100000000, &v); o->window = (size_t)v; break;
	case SCAN_OPT_NO_TRANSCRIPT: o->transcript = false; break;
	case SCAN_OPT_SNI:
		if (strcmp(arg, "all") == 0)
			o->sni = MXS_SNI_ALL;
		else if (strcmp(arg, "needed") == 0)
			o->sni = MXS_SNI_NEEDED;
		else if (strcmp(arg, "none") == 0)
			o->sni = MXS_SNI_NONE;
		else {
			fprintf(stderr, "mxsurvey %s: --sni wants all, needed or none, not '%s'\n", cmd, arg);
			bad = 1;
		}
		break;
	case SCAN_OPT_PROBES:
		if (strcmp(arg, "legacy") == 0 || strcmp(arg, "default,legacy") == 0)
			o->legacy = true;
		else if (strcmp(arg, "default") == 0)
			o->legacy = false;
		else {
			fprintf(stderr, "mxsurvey %s: --probes wants default or legacy, not '%s'\n", cmd, arg);
			bad = 1;
		}
		break;
	case SCAN_OPT_LEGACY_BUDGET:
		bad = int_arg(cmd, "legacy-budget", arg, 1, 64, &v);
		o->legacy_budget = (int)v;
		break;
	case SCAN_OPT_QUIET: o->status = false; break;
	case SCAN_OPT_LOG:
		if (mxs_log_level_parse(arg) < 0) {
			fprintf(stderr, "mxsurvey %s: unknown log level '%s'\n", cmd, arg);
			return -1;
		}
		mxs_log_set_level((enum mxs_log_level)mxs_log_level_parse(arg));
		break;
	default:
		return 0;
	}
	return bad ? -1 : 1;
}

struct option *scan_opts_merge(const struct option *extra)
{
	size_t n = 0;
	struct option *all;

	while (extra[n].name != NULL)
		n++;
	all = calloc(scan_longopts_count + n + 1, sizeof(*all));
	if (all == NULL)
		return NULL;
	memcpy(all, scan_longopts, scan_longopts_count * sizeof(*all));
	memcpy(all + scan_longopts_count, extra, (n + 1) * sizeof(*all));
	return all;
}
