/*
 * The probe options, shared by `scan` and `survey`: one long-option table and one
 * parser, so both commands spell and check them the same way.
 */
#ifndef MXS_SCAN_OPTS_H
#define MXS_SCAN_OPTS_H

#include <getopt.h>
#include <stdio.h>

#include "scanner.h"

/* Option values handed to getopt_long; callers number their own options from 512 up. */
enum {
	SCAN_OPT_EHLO = 256, SCAN_OPT_CONC, SCAN_OPT_RATE, SCAN_OPT_PER_IP, SCAN_OPT_PER_NET,
	SCAN_OPT_RETRIES, SCAN_OPT_RETRY_DELAY, SCAN_OPT_BLOCK, SCAN_OPT_ALLOW, SCAN_OPT_NO_DEFBLOCK,
	SCAN_OPT_CT, SCAN_OPT_GT, SCAN_OPT_T, SCAN_OPT_HT, SCAN_OPT_DEADLINE, SCAN_OPT_DRAIN,
	SCAN_OPT_CA, SCAN_OPT_PROFILE, SCAN_OPT_PORT, SCAN_OPT_SHARD, SCAN_OPT_SEED, SCAN_OPT_WINDOW,
	SCAN_OPT_NO_TRANSCRIPT, SCAN_OPT_QUIET, SCAN_OPT_LOG, SCAN_OPT_SNI, SCAN_OPT_PROTO,
	SCAN_OPT_PORTS, SCAN_OPT_PROBES, SCAN_OPT_LEGACY_BUDGET,
	SCAN_OPT_LAST
};

/* The probe options (NULL-terminated), to be copied into a command's own table. */
extern const struct option scan_longopts[];
/* Number of entries in scan_longopts, terminator excluded. */
extern const size_t scan_longopts_count;

/*
 * Apply option c with argument arg. Returns 1 if c is a probe option and was applied,
 * 0 if c is not a probe option, -1 if arg is bad (a message went to stderr, naming cmd).
 */
int scan_opt_apply(const char *cmd, int c, const char *arg, struct mxs_scan_opts *o);

/* The probe options' help text. */
void scan_opts_usage(FILE *f);

/*
 * A command's option table: the probe options followed by extra (NULL-terminated).
 * Returns a malloc'd array owned by the caller, or NULL.
 */
struct option *scan_opts_merge(const struct option *extra);

#endif
