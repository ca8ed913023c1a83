/* mxsurvey: the one binary; dispatches to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "exitcode.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "survey", cmd_survey, "resolve, scan and store a domain list in one run, then report" },
	{ "resolve", cmd_resolve, "turn domains, MX names, addresses and ranges into scan targets" },
	{ "scan", cmd_scan, "probe targets over SMTP STARTTLS and write JSON result records" },
	{ "ingest", cmd_ingest, "load JSON result files into PostgreSQL" },
	{ "db", cmd_db, "manage the database: migrate, start, stop, status, retention" },
	{ "report", cmd_report, "print statistics of a scan (text, csv, json, html)" },
	{ "findings", cmd_findings, "per address the problems found, by customer network (exit 7: some)" },
	{ "headers", cmd_headers, "show a message's Received: hops and whether each used TLS" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: mxsurvey COMMAND [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n'mxsurvey COMMAND --help' describes a command's options.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return MXS_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return MXS_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("mxsurvey %s\n", MXS_VERSION);
		return MXS_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "mxsurvey: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return MXS_EXIT_USAGE;
}
