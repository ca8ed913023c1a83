/*
 * mxsurvey-fleet: a simulated internet of SMTP servers on 127.0.0.0/8 for testing
 * `mxsurvey scan`, and the ground truth of what the scanner should record. docs/fleet.md.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "behaviour.h"
#include "fault.h"
#include "fproto.h"
#include "log.h"
#include "pki.h"
#include "server.h"
#include "truth.h"

#define EXIT_USAGE 2

static void usage(FILE *out)
{
	fprintf(out,
		"usage: mxsurvey-fleet serve --port P --certdir DIR [--proto NAME] [--seed S] [--delay-ms N]\n"
		"                            [--idle-ms N] [--ready-file F] [--watch-stdin] [--verbose]\n"
		"                            [--rtt-ms N] [--jitter-ms J] [--stall-share P] [--drop-share Q]\n"
		"       mxsurvey-fleet truth CIDR|ADDR [--proto NAME] [--seed S] [--stall-share P] [--drop-share Q]\n"
		"       mxsurvey-fleet behaviours [--proto NAME]\n"
		"       mxsurvey-fleet pki --certdir DIR\n"
		"\n"
		"--proto: smtp (default), submission, submissions, imap, imaps, pop3, pop3s.\n"
		"127.a.b.c serves mx-a-b-c.fleet.test; with seed 0 its behaviour is c %% %d\n"
		"(SMTP family; c %% %d for IMAP and POP3).\n"
		"--rtt-ms: every flight the fleet sends is held N ms (+- J); shares P, Q are\n"
		"fractions (0.01) of addresses that stall or reset at one phase (docs/fleet.md;\n"
		"smtp and submission only).\n",
		FB_SMTP_LAST, FB_LAST);
}

/* Parse a decimal number in [0, max]; -1 if s is not one. */
static int parse_num(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno != 0 || *end != '\0' || *out > max ? -1 : 0;
}

static int bad_value(const char *opt, const char *value)
{
	fprintf(stderr, "mxsurvey-fleet: bad value for --%s: '%s'\n", opt, value);
	return EXIT_USAGE;
}

/* The two shares together may not exceed every address. 0, or EXIT_USAGE (said why). */
static int check_shares(const struct fb_fault_shares *f)
{
	if ((uint64_t)f->stall_ppm + f->drop_ppm <= FB_PPM)
		return 0;
	fprintf(stderr, "mxsurvey-fleet: --stall-share plus --drop-share exceeds 1\n");
	return EXIT_USAGE;
}

/* --proto NAME into *p; 0, or EXIT_USAGE (said why). */
static int parse_proto(const char *name, const struct fp_proto **p)
{
	*p = fp_find(name);
	if (*p != NULL)
		return 0;
	fprintf(stderr, "mxsurvey-fleet: unknown --proto '%s'\n", name);
	return EXIT_USAGE;
}

/* Network faults are drawn from the SMTP dialogue's phases: only there. */
static int check_fault_proto(const struct fp_proto *p, const struct fb_fault_shares *f)
{
	if ((f->stall_ppm == 0 && f->drop_ppm == 0) || p == &fp_protos[FP_SMTP] ||
	    p == &fp_protos[FP_SUBMISSION])
		return 0;
	fprintf(stderr, "mxsurvey-fleet: --stall-share and --drop-share need --proto smtp or submission\n");
	return EXIT_USAGE;
}

static int cmd_serve(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "certdir", required_argument, NULL, 'c' },
		{ "proto", required_argument, NULL, 'P' },
		{ "seed", required_argument, NULL, 's' },
		{ "delay-ms", required_argument, NULL, 'd' },
		{ "idle-ms", required_argument, NULL, 'i' },
		{ "ready-file", required_argument, NULL, 'r' },
		{ "rtt-ms", required_argument, NULL, 'R' },
		{ "jitter-ms", required_argument, NULL, 'J' },
		{ "stall-share", required_argument, NULL, 'S' },
		{ "drop-share", required_argument, NULL, 'D' },
		{ "watch-stdin", no_argument, NULL, 'w' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct fleet_opts opt = { .port = -1, .delay_ms = 2000, .idle_ms = 60000,
				  .proto = &fp_protos[FP_SMTP] };
	unsigned long long v;
	int c;

	while ((c = getopt_long(argc, argv, "p:c:P:s:d:i:r:R:J:S:D:wvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_num(optarg, 65535, &v) < 0)
				return bad_value("port", optarg);
			opt.port = (int)v;
			break;
		case 'c':
			opt.certdir = optarg;
			break;
		case 'P':
			if (parse_proto(optarg, &opt.proto) != 0)
				return EXIT_USAGE;
			break;
		case 's':
			if (parse_num(optarg, UINT64_MAX, &v) < 0)
				return bad_value("seed", optarg);
			opt.seed = v;
			break;
		case 'd':
			if (parse_num(optarg, 3600000, &v) < 0)
				return bad_value("delay-ms", optarg);
			opt.delay_ms = (unsigned)v;
			break;
		case 'i':
			if (parse_num(optarg, 86400000, &v) < 0 || v == 0)
				return bad_value("idle-ms", optarg);
			opt.idle_ms = (unsigned)v;
			break;
		case 'r':
			opt.ready_file = optarg;
			break;
		case 'R':
			if (parse_num(optarg, 600000, &v) < 0)
				return bad_value("rtt-ms", optarg);
			opt.rtt_ms = (unsigned)v;
			break;
		case 'J':
			if (parse_num(optarg, 600000, &v) < 0)
				return bad_value("jitter-ms", optarg);
			opt.jitter_ms = (unsigned)v;
			break;
		case 'S':
			if (fb_share_parse(optarg, &opt.faults.stall_ppm) < 0)
				return bad_value("stall-share", optarg);
			break;
		case 'D':
			if (fb_share_parse(optarg, &opt.faults.drop_ppm) < 0)
				return bad_value("drop-share", optarg);
			break;
		case 'w':
			opt.watch_stdin = 1;
			break;
		case 'v':
			mxs_log_set_level(MXS_LOG_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || opt.port < 0 || opt.certdir == NULL) {
		fprintf(stderr, "mxsurvey-fleet serve: --port and --certdir are required\n");
		return EXIT_USAGE;
	}
	if (check_shares(&opt.faults) != 0 || check_fault_proto(opt.proto, &opt.faults) != 0)
		return EXIT_USAGE;
	return fleet_serve(&opt);
}

static int cmd_truth(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "proto", required_argument, NULL, 'P' },
		{ "stall-share", required_argument, NULL, 'S' },
		{ "drop-share", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct fp_proto *proto = &fp_protos[FP_SMTP];
	struct fleet_range r;
	struct fb_fault_shares faults = { 0, 0 };
	const char *err;
	unsigned long long seed = 0;
	int c;

	while ((c = getopt_long(argc, argv, "s:P:S:D:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'P':
			if (parse_proto(optarg, &proto) != 0)
				return EXIT_USAGE;
			break;
		case 's':
			if (parse_num(optarg, UINT64_MAX, &seed) < 0)
				return bad_value("seed", optarg);
			break;
		case 'S':
			if (fb_share_parse(optarg, &faults.stall_ppm) < 0)
				return bad_value("stall-share", optarg);
			break;
		case 'D':
			if (fb_share_parse(optarg, &faults.drop_ppm) < 0)
				return bad_value("drop-share", optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "mxsurvey-fleet truth: one CIDR or address expected\n");
		return EXIT_USAGE;
	}
	if (check_shares(&faults) != 0 || check_fault_proto(proto, &faults) != 0)
		return EXIT_USAGE;
	if (fleet_range_parse(argv[optind], &r, &err) < 0) {
		fprintf(stderr, "mxsurvey-fleet truth: '%s': %s\n", argv[optind], err);
		return EXIT_USAGE;
	}
	if (fleet_truth_print(&r, proto, seed, &faults, stdout) < 0) {
		fprintf(stderr, "mxsurvey-fleet truth: write error\n");
		return 1;
	}
	return 0;
}

static int cmd_behaviours(int argc, char **argv)
{
	const struct fp_proto *proto = &fp_protos[FP_SMTP];

	if (argc == 3 && strcmp(argv[1], "--proto") == 0) {
		if (parse_proto(argv[2], &proto) != 0)
			return EXIT_USAGE;
	} else if (argc != 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (int i = 0; i < proto->nbehaviours; i++)
		printf("%d\t%s\t%s\n", i, fb_behaviours[i].name, fb_behaviours[i].about);
	return fflush(stdout) == 0 ? 0 : 1;
}

static int cmd_pki(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "certdir", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
		if (c != 'c') {
			usage(stderr);
			return EXIT_USAGE;
		}
		dir = optarg;
	}
	if (dir == NULL || optind != argc) {
		fprintf(stderr, "mxsurvey-fleet pki: --certdir is required\n");
		return EXIT_USAGE;
	}
	return fleet_pki_ensure(dir) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int argc, char **argv);
	} cmds[] = {
		{ "serve", cmd_serve },
		{ "truth", cmd_truth },
		{ "behaviours", cmd_behaviours },
		{ "pki", cmd_pki },
	};

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].run(argc - 1, argv + 1);
	fprintf(stderr, "mxsurvey-fleet: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
