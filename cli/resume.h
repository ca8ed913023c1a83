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
 * A finished result is any result record but "interrupted" and "local-error". Name lines
 * (docs/record.md) follow their address: a name judged in a sink (a name line of a
 * finished probe in the file, a result_names row) is not judged again; one the database
 * lacks is copied from the file; a name that reaches a done address and was judged in
 * neither sink gets its verdict now (mxs_scanner_mark_resumed), in every sink lacking it.
 */
#ifndef MXS_RESUME_H
#define MXS_RESUME_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "addrmap.h"
#include "dbout.h"
#include "outcome.h"
#include "scanner.h"
#include "strv.h"

/* What a sink holds of one (ip, port). */
struct resume_addr {
	bool done;                /* a finished result */
	bool tls;                 /* ... whose probe had TLS */
	enum mxs_outcome outcome;
	char *mx;                 /* ... the name it sent in SNI (NULL: none) */
	struct strv names;        /* further MX names judged (name lines) */
};

struct resume_side {
	struct addrmap map;       /* (ip, port) -> index + 1 in v */
	struct resume_addr *v;
	size_t n, cap;
};

struct resume {
	struct resume_side file;  /* what the -o file holds */
	struct resume_side db;    /* what the scan holds (and what was copied to it) */
	bool have_file, have_db;
	uint64_t in_file, in_db;  /* distinct targets in each sink when loaded */
	uint64_t copied;          /* file records copied into the database */
	uint64_t copied_names;    /* file name lines copied into the database */
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
 * With both sinks: does the database already hold this line: the result of its target,
 * or for a name line that name's verdict on its address? Such a line (made again for the
 * file) must not be sent to the database (nor a result counted).
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
