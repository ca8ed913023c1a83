/* Small pieces the subcommands share. */
#ifndef MXS_CLIUTIL_H
#define MXS_CLIUTIL_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

/*
 * The command line as one string ("mxsurvey scan --db ..."), for a scan's metadata, with
 * every database password masked (cli_mask_conninfo on the value of --db). Returns a
 * static buffer, cut at 2 KiB; argv is the subcommand's (argv[0] its name).
 */
const char *cli_command_line(int argc, char **argv);

/*
 * A libpq connection string with its password replaced by "***": in a URL the secret of
 * "user:secret@" and a "password=" query parameter; in key=value form the value of
 * "password" (quoted or not). Everything else is kept. out is cut at cap bytes.
 */
void cli_mask_conninfo(const char *conninfo, char *out, size_t cap);

/*
 * A whole number option value from min to max (all of v, in decimal). 0, or -1 after a
 * message on stderr naming cmd and --name.
 */
int cli_int_arg(const char *cmd, const char *name, const char *v, long min, long max, long *out);
/*
 * A scan id: digits only, at least 1 ("1;DROP TABLE" is not 1). 0, or -1 after a message
 * on stderr naming cmd and name (an option such as "--scan", or "drop-scan").
 */
int cli_id_arg(const char *cmd, const char *name, const char *v, int64_t *out);

/* s as HTML text or attribute value (& < > " ' as entities), written to out. */
void cli_html_esc(const char *s, FILE *out);

#endif
