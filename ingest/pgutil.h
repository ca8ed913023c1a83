/* Small libpq helpers shared by the ingest, migration, scan and report code. */
#ifndef MXS_PGUTIL_H
#define MXS_PGUTIL_H

#include <libpq-fe.h>
#include <stddef.h>

/* How a failed statement should be handled by a writer that must not lose rows. */
enum pg_fail {
	PGF_OK,
	PGF_CONN,      /* connection lost or the server is shutting down: spool, retry later */
	PGF_CONFLICT,  /* unique violation: the rows (some of them) are already stored */
	PGF_DATA,      /* the server refused a value or a row: split the batch to find it */
	PGF_OTHER,     /* anything else (disk full, permissions, a bug): spool, retry later */
	PGF_LAST
};
extern const char *const pg_fail_names[PGF_LAST];

/* Classify a result (NULL result: the connection failed). */
enum pg_fail pg_classify(PGconn *c, const PGresult *r);

/*
 * Connect with the project's defaults (connect timeout, application name, UTF-8 client
 * encoding) under the caller's conninfo or URL, which overrides them. Returns an open
 * connection or NULL with the reason in err.
 */
PGconn *pg_connect(const char *conninfo, const char *appname, char *err, size_t errlen);

/* Run a statement that returns no rows; 0 on success, else -1 with the error in err. */
int pg_exec(PGconn *c, const char *sql, char *err, size_t errlen);
/* Same with the failure class returned. */
enum pg_fail pg_exec_class(PGconn *c, const char *sql, char *err, size_t errlen);

/* Send a whole COPY ... FROM STDIN: the statement, the data, the end. */
enum pg_fail pg_copy(PGconn *c, const char *sql, const char *data, size_t len, char *err,
                     size_t errlen);

/* Copy the connection's or result's error message into err, trimmed of its newline. */
void pg_errmsg(PGconn *c, const PGresult *r, char *err, size_t errlen);
/*
 * Read every pending result of the last command; the class of the first failure (its
 * message in err), PGF_CONN if the connection is gone, or PGF_OK.
 */
enum pg_fail pg_drain_results(PGconn *c, char *err, size_t errlen);

/* A string field of a one-value query, malloc'd, or NULL on error or SQL NULL. */
char *pg_query_string(PGconn *c, const char *sql, char *err, size_t errlen);

#endif
