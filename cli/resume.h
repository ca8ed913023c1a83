/*
 * --resume over one or two sinks (-o FILE, the database): what each sink already holds,
 * so that a resumed run ends with every target exactly once in every sink.
 *
 *   file only:  targets with a finished result in the file are skipped.
 *   db only:    targets with a row in the scan are skipped, asked only after the spool
 *               a killed run left is replayed (so spooled results are not probed again).
 *   both:       targets in the file are skipped; those of them the database lacks are
 *               copied from the file into it (not probed again). Targets only the database
 *               has are probed again for the file, and their new record goes to the file
 *               alone (the database keeps its row).
 *
 * A finished result is any result record but "interrupted" and "local-error".
 */
#ifndef MXS_RESUME_H
#define MXS_RESUME_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "addrmap.h"
#include "dbout.h"
#include "scanner.h"

struct resume {
	struct addrmap file;      /* (ip, port) with a finished result in the file */
	struct addrmap db;        /* (ip, port) with a row in the scan (and copied ones) */
	bool have_file, have_db;
	uint64_t in_file, in_db;  /* distinct targets in each sink when loaded */
	uint64_t copied;          /* file records copied into the database */
	uint64_t db_only;         /* targets in the database but not in the file */
	json_t *file_domains;     /* "domain" records in the file: name -> true */
	struct dbout *copy_to;    /* during resume_apply */
	bool copy_failed;
};

void resume_init(struct resume *rs);
void resume_free(struct resume *rs);
/* The finished results of an output file (a missing file holds none). 0, or -1 (errno). */
int resume_load_file(struct resume *rs, const char *path);
/* The scan's stored results, after the sink replayed what earlier runs spooled. 0 or -1. */
int resume_load_db(struct resume *rs, struct dbout *d, char *err, size_t errlen);
/*
 * Mark in sc what is not to be probed again, copy file records the database lacks (path
 * and d as loaded), and set d->resumed_done. 0, or -1 if a copy could not be queued.
 */
int resume_apply(struct resume *rs, struct mxs_scanner *sc, const char *path, struct dbout *d);
/*
 * With both sinks: does the database already hold the target of this record line? Such
 * a record (probed again for the file) must not be counted or sent to the database.
 */
bool resume_db_has(const struct resume *rs, const char *line, size_t len);
/* Does the file already hold the "domain" record of name (survey)? */
bool resume_file_has_domain(const struct resume *rs, const char *name);
/*
 * A file a killed run left may end in a torn line: cut it, so appended records start on
 * a line of their own. fd is left at the end. 0, or -1 (errno).
 */
int resume_trim_torn_tail(int fd);

#endif
