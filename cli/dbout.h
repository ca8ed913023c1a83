/*
 * Results into PostgreSQL for `scan --db` and `survey`: open the database (a URL, the
 * environment, or the embedded cluster), create or resume the scan, stream every output
 * line through the ingest sink (which never blocks the event loop), and at the end
 * account for every line: targets read against result rows stored.
 */
#ifndef MXS_DBOUT_H
#define MXS_DBOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "ingest.h"
#include "scanner.h"

struct dbout {
	struct mxs_db *db;
	struct mxs_sink *sink;
	int64_t scan_id;
	uint64_t resumed_done;   /* targets that already had a result (resume; see resume.h) */
	unsigned shard_index, shard_count;
	bool put_failed;
};

struct dbout_opts {
	const char *url;         /* NULL: $DATABASE_URL, libpq's environment, or embedded */
	const char *data_dir;    /* NULL: the user's data directory */
	int64_t resume_id;       /* 0: a new scan */
	const char *label;       /* optional unique name of the scan */
	const char *command_line;
	const char *ehlo_name, *profile;
	unsigned shard_index, shard_count;  /* --shard I/N; count 0 or 1: not sharded */
};

/* Open the database and the scan. Returns 0 or -1 with a message in err. */
int dbout_open(struct dbout *d, const struct dbout_opts *o, char *err, size_t errlen);
/* One output line to the database; 0, or -1 if it could be neither queued nor spooled. */
int dbout_put(struct dbout *d, const char *line, size_t len);
/*
 * Flush the sink, finish the scan (state, targets read) and print "targets read / rows
 * stored" on stderr. The database stays open (for a report) until dbout_free. Returns an
 * enum mxs_exit value: OK, SPOOLED or DB; FAILURE (the scan left partial, the shortfall
 * logged) when a run that spooled nothing ends with fewer rows than targets read.
 */
int dbout_finish(struct dbout *d, enum mxs_scan_state state, uint64_t targets_scanned);
/* Close the database (and a sink still open, without finishing the scan). */
void dbout_free(struct dbout *d);

/* "--db URL" spelled "auto" means: the environment, else the embedded cluster. */
const char *dbout_url(const char *arg);

#endif
