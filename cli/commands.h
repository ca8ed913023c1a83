/*
 * Subcommands of the mxsurvey binary. Each takes the argv that follows the subcommand
 * name (argv[0] is the subcommand name) and returns an enum mxs_exit value.
 */
#ifndef MXS_COMMANDS_H
#define MXS_COMMANDS_H

int cmd_scan(int argc, char **argv);
int cmd_resolve(int argc, char **argv);
int cmd_survey(int argc, char **argv);
int cmd_ingest(int argc, char **argv);
int cmd_db(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_headers(int argc, char **argv);
int cmd_findings(int argc, char **argv);

#endif
