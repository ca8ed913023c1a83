/* Small pieces the subcommands share. */
#ifndef MXS_CLIUTIL_H
#define MXS_CLIUTIL_H

/*
 * The command line as one string ("mxsurvey scan --db ..."), for a scan's metadata.
 * Returns a static buffer, cut at 2 KiB; argv is the subcommand's (argv[0] its name).
 */
const char *cli_command_line(int argc, char **argv);

#endif
