/*
 * The Public Suffix List, for mxs_registered_domain() (provider grouping): parse the
 * ICANN section of a list file and load it into the public_suffixes table.
 */
#ifndef MXS_SUFFIXES_H
#define MXS_SUFFIXES_H

#include <libpq-fe.h>
#include <stddef.h>

/* Debian's copy (package publicsuffix). */
#define MXS_PSL_DEFAULT_PATH "/usr/share/publicsuffix/public_suffix_list.dat"

/* Called once per rule, lower-cased, without the comment or anything after whitespace. */
typedef void (*mxs_psl_rule_cb)(const char *rule, size_t len, void *arg);

/*
 * Walk the rules between "===BEGIN ICANN DOMAINS===" and "===END ICANN DOMAINS===" (the
 * private section names hosting companies' customers, not registries: a provider's MX
 * hosts would be split by customer). A rule with a backslash or a control byte is
 * skipped and counted in *skipped. Returns the number of rules, or -1 when the text has no
 * complete ICANN section.
 */
long mxs_psl_icann_rules(const char *text, size_t len, mxs_psl_rule_cb cb, void *arg,
                         size_t *skipped);

/*
 * Replace the public_suffixes table with the ICANN rules of the list file at path, in one
 * transaction, and record the source. Returns the number of rules (and in *skipped those
 * left out), or one of the negative codes below with err.
 */
#define MXS_PSL_BAD_FILE (-1)   /* unreadable, or not a Public Suffix List */
#define MXS_PSL_DB_ERROR (-2)
long mxs_db_load_suffixes(PGconn *c, const char *path, size_t *skipped, char *err,
                          size_t errlen);

#endif
