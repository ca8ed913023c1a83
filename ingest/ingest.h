/*
 * mxsurvey's PostgreSQL side, as the rest of the program uses it: open the database
 * (a given server, or the embedded cluster), keep a scan's lifecycle, and stream JSON
 * lines into it through a sink that never blocks its caller on the database.
 *
 *   struct mxs_db *db;  mxs_db_open(&opts, &db, err, sizeof(err));
 *   int64_t id;         mxs_scan_create(db, &info, &id);        (or mxs_scan_resume)
 *   struct mxs_sink *s = mxs_sink_open(db, id, &sink_opts, err, sizeof(err));
 *   mxs_sink_put(s, line, len);  ...                            (any thread)
 *   mxs_sink_close(s, &counts);                                 (flush, wait, counts)
 *   mxs_scan_finish(db, id, MXS_SCAN_DONE, counts.put_results, &totals, err, sizeof(err));
 *   mxs_db_close(db);
 *
 * Every function returns 0 on success and -1 on failure with a message in err unless
 * its comment says otherwise. The db handle is for one thread; the sink is thread-safe.
 */
#ifndef MXS_INGEST_H
#define MXS_INGEST_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the database ---- */

struct mxs_db;

struct mxs_db_opts {
	/*
	 * Connection string or postgresql:// URL. NULL: $DATABASE_URL, else libpq's own
	 * environment when $PGHOST or $PGDATABASE is set, else the embedded cluster.
	 */
	const char *url;
	/* Base directory of the embedded cluster and the spool; NULL: the user's data dir. */
	const char *data_dir;
	int no_migrate;     /* 1: do not apply pending migrations */
};

int mxs_db_open(const struct mxs_db_opts *opts, struct mxs_db **out, char *err, size_t errlen);
void mxs_db_close(struct mxs_db *db);
/* The connection, for queries of the caller's own (reports). Owned by db. */
PGconn *mxs_db_conn(struct mxs_db *db);
/* The resolved connection string (libpq syntax or URL); "" means libpq's environment. */
const char *mxs_db_conninfo(const struct mxs_db *db);
/* This database's identity (mxs_meta.instance_id), written into spool files. */
const char *mxs_db_instance(const struct mxs_db *db);
/* Where spool files go unless the sink is told otherwise. */
const char *mxs_db_spool_dir(const struct mxs_db *db);

/* Apply pending migrations; *applied receives how many. Done by mxs_db_open too. */
int mxs_db_migrate(PGconn *c, int *applied, char *err, size_t errlen);
/* Current schema version (0: none), or -1 on error. */
int mxs_db_schema_version(PGconn *c, char *err, size_t errlen);

/* ---- scans ---- */

enum mxs_scan_state {
	MXS_SCAN_RUNNING,
	MXS_SCAN_DONE,
	MXS_SCAN_PARTIAL,   /* stopped early: resume to finish */
	MXS_SCAN_FAILED,
	MXS_SCAN_STATE_LAST
};
extern const char *const mxs_scan_state_names[MXS_SCAN_STATE_LAST];

struct mxs_scan_info {
	const char *command_line;     /* as run, for the record */
	const char *scanner_version;  /* the scanning binary's version; NULL: unknown (ingest) */
	const char *ehlo_name;
	const char *profile;
	const char *label;            /* optional unique name; NULL for none */
	const char *source_key;       /* optional unique identity of an ingested file */
};

/* Create a scan (state running) and its partitions. */
int mxs_scan_create(struct mxs_db *db, const struct mxs_scan_info *info, int64_t *id,
                    char *err, size_t errlen);
/*
 * Find a scan by label or source key (whichever is set in info); when there is none,
 * create it. *created tells which. A found scan is set running again.
 */
int mxs_scan_find_or_create(struct mxs_db *db, const struct mxs_scan_info *info, int64_t *id,
                            int *created, char *err, size_t errlen);
/* Reopen an existing scan to add to it (resume); fails if there is no such scan. */
int mxs_scan_resume(struct mxs_db *db, int64_t id, char *err, size_t errlen);
/* Rows stored for a scan. */
struct mxs_scan_totals {
	uint64_t results;
	uint64_t domains;
	uint64_t rejects;    /* lines kept in the rejects table */
};

/*
 * End a run of the scan: set its state and end time, record targets_read (the scan's
 * total: for a resumed scan, the targets skipped as done plus those scanned), and
 * recount the stored rows, which land in *totals when it is not NULL.
 */
int mxs_scan_finish(struct mxs_db *db, int64_t id, enum mxs_scan_state state,
                    uint64_t targets_read, struct mxs_scan_totals *totals, char *err,
                    size_t errlen);
/*
 * Prepare a scan that is no longer running for reading, unless that is done already:
 * ANALYZE its partitions, and for a done scan store its rates (docs/views.md); seconds per
 * million domains. Scans and surveys do it when they finish, reports before reading
 * (so `ingest` loads as fast as COPY). Failures are logged: the views then plan without
 * fresh statistics, or compute the rates live.
 */
void mxs_scan_rollup(struct mxs_db *db, int64_t id);
/* ANALYZE the scan's partitions and the parents (part of mxs_scan_rollup); failures logged. */
void mxs_scan_analyze(struct mxs_db *db, int64_t id);
/* Rows stored for the scan: results, domains and rejected lines. */
int mxs_scan_counts(struct mxs_db *db, int64_t id, uint64_t *results, uint64_t *domains,
                    uint64_t *rejects, char *err, size_t errlen);

/*
 * Shards (--shard I/N): several scanners fill one scan, each with its own progress row.
 * shard_begin registers (or, resumed, reopens) shard index of count; shard_finish records
 * its end and reports the progress of all count shards. The caller finishes the scan
 * (mxs_scan_finish) once all_done.
 */
struct mxs_shard_progress {
	unsigned shards_done;     /* shards of this scan (of the same count) in state done */
	uint64_t targets_read;    /* their targets_read, summed */
	int all_done;
};
int mxs_scan_shard_begin(struct mxs_db *db, int64_t id, unsigned index, unsigned count,
                         char *err, size_t errlen);
int mxs_scan_shard_finish(struct mxs_db *db, int64_t id, unsigned index, unsigned count,
                          enum mxs_scan_state state, uint64_t targets_read,
                          struct mxs_shard_progress *progress, char *err, size_t errlen);

/*
 * For --resume: call cb for every (ip, port) that already has a result in the scan, so
 * the scanner can skip it. Results whose outcome is "interrupted" are not reported (the
 * probe did not finish; a new result replaces them). Stops early, returning cb's value,
 * when cb returns non-zero. ip is the address text ("192.0.2.1", "2001:db8::1").
 */
typedef int (*mxs_done_cb)(void *arg, const char *ip, int port);
int mxs_scan_done_targets(struct mxs_db *db, int64_t id, mxs_done_cb cb, void *arg,
                          char *err, size_t errlen);
/*
 * For --resume, what each done target's record said: rcb for every result as above, with
 * its MX name (NULL: none), outcome (database code, outcome_names) and whether it had TLS;
 * then ncb for every verdict of a further MX name (result_names) of a finished probe.
 * 0, a callback's non-zero value, or -1 with a message in err.
 */
typedef int (*mxs_done_result_cb)(void *arg, const char *ip, int port, const char *mx,
                                  int outcome, int tls);
typedef int (*mxs_done_name_cb)(void *arg, const char *ip, int port, const char *name);
int mxs_scan_done_details(struct mxs_db *db, int64_t id, mxs_done_result_cb rcb,
                          mxs_done_name_cb ncb, void *arg, char *err, size_t errlen);

/*
 * The source key of an ingested file: a digest of its first bytes (up to
 * MXS_SOURCE_HEAD) and their count. A file whose head is unchanged (the same file again,
 * or a longer version of a file still being written) maps to the same scan. out needs
 * at least 96 bytes.
 */
#define MXS_SOURCE_HEAD 65536
int mxs_source_key(const void *head, size_t len, char *out, size_t outlen);

/* ---- the streaming sink ---- */

struct mxs_sink;

struct mxs_sink_opts {
	const char *spool_dir;     /* NULL: mxs_db_spool_dir() */
	size_t queue_bytes;        /* bound of lines waiting in memory; 0: 64 MiB */
	size_t batch_rows;         /* lines per transaction; 0: 10000 */
	int flush_ms;              /* longest a line waits before its batch is sent; 0: 1000 */
	int retry_ms;              /* between reconnection attempts; 0: 2000 */
	int close_wait_ms;         /* at close, how long to wait for a lost database; 0: 10000 */
	/*
	 * 1: mxs_sink_put waits while the queue is full (file ingest: back-pressure).
	 * 0: a put that finds the queue full appends the line to an overflow spool file
	 *    instead (a scanner's event loop must not wait for the database).
	 */
	int block_when_full;
};

struct mxs_sink_counts {
	uint64_t put_lines;        /* lines given to mxs_sink_put */
	uint64_t put_results;      /* of which "result" lines (by a quick look at "type") */
	uint64_t results;          /* result records sent to the database */
	uint64_t results_new;      /* rows inserted */
	uint64_t results_replaced; /* rows that replaced an interrupted result */
	uint64_t domains;
	uint64_t domains_new;
	uint64_t certs_new;
	uint64_t rejects;          /* lines kept in the rejects table */
	uint64_t spooled;          /* lines written to the spool (database slow or away) */
	uint64_t replayed;         /* spooled lines later stored */
	uint64_t spool_left;       /* lines still in the spool at close */
	uint64_t reconnects;
};

/*
 * Start the sink's thread for scan scan_id of db. The sink opens its own connection
 * (the database may be down: it then spools until it returns) and replays any spool
 * files of this database left by earlier runs. Returns NULL with err on failure.
 */
struct mxs_sink *mxs_sink_open(struct mxs_db *db, int64_t scan_id,
                               const struct mxs_sink_opts *opts, char *err, size_t errlen);
/*
 * Hand one JSON line (without or with its newline) to the sink; thread-safe. Returns 0,
 * or -1 if the line could be neither queued nor spooled (out of memory, disk failure).
 */
int mxs_sink_put(struct mxs_sink *s, const char *line, size_t len);
/*
 * Wait until the sink's thread has made its first connection attempt and, when that
 * succeeded, replayed the spool files earlier runs left (all of them stored, or the
 * database lost again). A resume asks the database what it holds only after this, so
 * that what a killed run spooled counts as stored and is not probed again.
 */
void mxs_sink_wait_started(struct mxs_sink *s);
/*
 * Flush everything, wait for the thread, free the sink. Returns 0 when every line put
 * is stored, 1 when some still wait in the spool (exit status MXS_EXIT_SPOOLED), -1 when
 * lines were lost (spool write failed).
 */
int mxs_sink_close(struct mxs_sink *s, struct mxs_sink_counts *counts);

/* ---- the embedded cluster ---- */

enum mxs_cluster_state {
	MXS_CLUSTER_ABSENT,     /* never created */
	MXS_CLUSTER_STOPPED,
	MXS_CLUSTER_RUNNING,
	MXS_CLUSTER_STATE_LAST
};
extern const char *const mxs_cluster_state_names[MXS_CLUSTER_STATE_LAST];

/* The default base directory: $XDG_DATA_HOME/mxsurvey or ~/.local/share/mxsurvey. */
int mxs_data_dir(char *out, size_t outlen);
/* Create (initdb) and start the cluster under base if needed; fills a conninfo. */
int mxs_cluster_ensure(const char *base, char *conninfo, size_t conninfo_len, char *err,
                       size_t errlen);
int mxs_cluster_stop(const char *base, char *err, size_t errlen);
enum mxs_cluster_state mxs_cluster_status(const char *base);

#endif
