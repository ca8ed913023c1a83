/*
 * Process exit codes, the same for every subcommand, so a scheduler can tell a finished
 * run from a partial one or a broken set-up (documented in README.md).
 */
#ifndef MXS_EXITCODE_H
#define MXS_EXITCODE_H

enum mxs_exit {
	MXS_EXIT_OK = 0,          /* done: every target has a result */
	MXS_EXIT_FAILURE = 1,     /* internal failure (out of memory, a bug) */
	MXS_EXIT_USAGE = 2,       /* bad command line */
	MXS_EXIT_PARTIAL = 3,     /* stopped early (signal, time limit): resume to finish */
	MXS_EXIT_BAD_INPUT = 4,   /* input unreadable, or every line of it bad */
	MXS_EXIT_DB = 5,          /* database unreachable and results could not be spooled */
	MXS_EXIT_SPOOLED = 6,     /* done, but some results wait in the spool for the database */
	MXS_EXIT_FOUND = 7,       /* mxsurvey findings: problems were found (0: none) */
};

#endif
