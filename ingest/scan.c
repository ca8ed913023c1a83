/* The scans table: a scan's lifecycle, its counts, and what --resume may skip. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "log.h"
#include "pgutil.h"
#include "timeutil.h"

const char *const mxs_scan_state_names[MXS_SCAN_STATE_LAST] = {
	[MXS_SCAN_RUNNING] = "running",
	[MXS_SCAN_DONE] = "done",
	[MXS_SCAN_PARTIAL] = "partial",
	[MXS_SCAN_FAILED] = "failed",
};

/*
 * Run a parameterised statement; if id is non-NULL, read one bigint from row 0 (1 when
 * there is no row). A connection lost since the last statement (the server restarted
 * while the sink kept working on its own) is reset and the statement tried once more.
 */
static int exec_params(PGconn *c, const char *sql, int n, const char *const *params, int64_t *id,
                       char *err, size_t errlen)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && pg_classify(c, r) == PGF_CONN) {
		PQclear(r);
		PQreset(c);
		r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
		st = PQresultStatus(r);
	}
	int rc = -1;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		pg_errmsg(c, r, err, errlen);
	} else if (id != NULL) {
		if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
			*id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
			rc = 0;
		} else {
			snprintf(err, errlen, "no such scan");
			rc = 1;
		}
	} else {
		rc = 0;
	}
	PQclear(r);
	return rc;
}

static int make_partitions(PGconn *c, int64_t id, char *err, size_t errlen)
{
	char sid[32];
	snprintf(sid, sizeof(sid), "%" PRId64, id);
	const char *p[1] = { sid };
	return exec_params(c, "SELECT mxs_scan_partitions($1)", 1, p, NULL, err, errlen);
}

int mxs_scan_create(struct mxs_db *db, const struct mxs_scan_info *info, int64_t *id, char *err,
                    size_t errlen)
{
	PGconn *c = mxs_db_conn(db);
	const char *p[6] = { info->command_line, info->scanner_version, info->ehlo_name,
		info->profile, info->label, info->source_key };
	if (exec_params(c,
	                "INSERT INTO scans (command_line, scanner_version, ehlo_name, profile, label,"
	                " source_key) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
	                6, p, id, err, errlen) != 0)
		return -1;
	if (make_partitions(c, *id, err, errlen) != 0)
		return -1;
	mxs_info("db", "scan create id=%" PRId64, *id);
	return 0;
}

int mxs_scan_find_or_create(struct mxs_db *db, const struct mxs_scan_info *info, int64_t *id,
                            int *created, char *err, size_t errlen)
{
	PGconn *c = mxs_db_conn(db);
	const char *p[2] = { info->label, info->source_key };
	*created = 0;
	int rc = exec_params(c,
	                     "SELECT id FROM scans WHERE ($1::text IS NOT NULL AND label = $1)"
	                     " OR ($1::text IS NULL AND source_key = $2) ORDER BY id LIMIT 1",
	                     2, p, id, err, errlen);
	if (rc < 0)
		return -1;
	if (rc == 0)
		return mxs_scan_resume(db, *id, err, errlen);
	*created = 1;
	/* a concurrent creator may win the unique key: then take its scan */
	if (mxs_scan_create(db, info, id, err, errlen) == 0)
		return 0;
	*created = 0;
	if (exec_params(c,
	                "SELECT id FROM scans WHERE ($1::text IS NOT NULL AND label = $1)"
	                " OR ($1::text IS NULL AND source_key = $2) ORDER BY id LIMIT 1",
	                2, p, id, err, errlen) != 0)
		return -1;
	return mxs_scan_resume(db, *id, err, errlen);
}

int mxs_scan_resume(struct mxs_db *db, int64_t id, char *err, size_t errlen)
{
	PGconn *c = mxs_db_conn(db);
	char sid[32];
	int64_t got;
	snprintf(sid, sizeof(sid), "%" PRId64, id);
	const char *p[1] = { sid };
	int rc = exec_params(c, "WITH u AS (DELETE FROM scan_rollups WHERE scan_id = $1)"
	                        " UPDATE scans SET state = 'running', ended_at = NULL WHERE id = $1"
	                        " RETURNING id", 1, p, &got, err, errlen);
	if (rc != 0) {
		if (rc > 0)
			snprintf(err, errlen, "no scan %" PRId64, id);
		return -1;
	}
	if (make_partitions(c, id, err, errlen) != 0)
		return -1;
	mxs_info("db", "scan resume id=%" PRId64, id);
	return 0;
}

/*
 * Fresh statistics for the planner once a scan's rows are in: autovacuum analyzes the
 * partitions in its own time but never a partitioned parent, and without statistics the
 * views' plans take minutes where they need seconds. A failure here costs speed, never
 * data: it is logged, not returned.
 */
void mxs_scan_analyze(struct mxs_db *db, int64_t id)
{
	PGconn *c = mxs_db_conn(db);
	char sql[256], err[256];
	int64_t t0 = mxs_mono_ms();

	/* result_rows: the table behind the view results (migration 0017), and the values
	 * stored once that the views join (scan_mx is a view of scan_domains and the MX sets,
	 * migration 0018) */
	snprintf(sql, sizeof(sql), "ANALYZE results_s%" PRId64 ", scan_domains_s%" PRId64
	         ", result_rows, scan_domains, dns_names, mxs_lists, mxs_chains, mxs_refs,"
	         " mxs_mx_sets, mxs_mx_set_rows", id, id);
	if (pg_exec(c, sql, err, sizeof(err)) != 0)
		mxs_warn("db", "analyze after scan %" PRId64 ": %s", id, err);
	else
		mxs_info("db", "analyze scan=%" PRId64 " ms=%lld", id, (long long)(mxs_mono_ms() - t0));
}

/*
 * The primary keys of a scan's partitions are filled in the order results and domains
 * arrive, which is random in their keys: the B-trees end up about half empty. Rebuilt
 * once, when the scan is done, they take ~40 % less room (docs/performance.md, "Storage
 * per result"). A rebuild blocks writes to the partition (a done scan has none) and, while
 * it runs, queries that read through that key. A failure costs room, never data: it is
 * logged, not returned.
 */
static void reindex_scan(PGconn *c, int64_t id)
{
	static const char *const parts[] = { "results_s", "scan_domains_s" };
	char sql[128], err[256];
	int64_t t0 = mxs_mono_ms();

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		snprintf(sql, sizeof(sql), "REINDEX TABLE %s%" PRId64, parts[i], id);
		if (pg_exec(c, sql, err, sizeof(err)) != 0) {
			mxs_warn("db", "reindex after scan %" PRId64 ": %s", id, err);
			return;
		}
	}
	mxs_info("db", "reindex scan=%" PRId64 " ms=%lld", id, (long long)(mxs_mono_ms() - t0));
}

int mxs_scan_finish(struct mxs_db *db, int64_t id, enum mxs_scan_state state,
                    uint64_t targets_read, struct mxs_scan_totals *totals, char *err,
                    size_t errlen)
{
	char sid[32], nread[32], nstored[32];
	snprintf(sid, sizeof(sid), "%" PRId64, id);
	snprintf(nread, sizeof(nread), "%" PRIu64, targets_read);
	/*
	 * One pass over the scan's results: the count is the truth, not what we sent. It reads
	 * the scan's partition whole, in a statement of its own: PostgreSQL may then scan it
	 * in parallel (a statement that writes, like the UPDATE, never is), where "WHERE
	 * scan_id =" on a partition without statistics went through its whole key (1,000 ms
	 * at a million rows, 300 ms so). Without the partition, the view.
	 */
	char count_sql[64];
	snprintf(count_sql, sizeof(count_sql), "SELECT count(*) FROM results_s%" PRId64, id);
	static const char count_view[] = "SELECT count(*) FROM results WHERE scan_id = $1";
	static const char sql[] =
		"UPDATE scans s SET state = $2, ended_at = now(), targets_read = $3,"
		" results_stored = $4,"
		" domains_stored = (SELECT count(*) FROM domains WHERE scan_id = $1),"
		" rejected = (SELECT count(*) FROM rejects WHERE scan_id = $1),"
		" ehlo_name = coalesce(s.ehlo_name, (SELECT ehlo_name FROM results"
		"   WHERE scan_id = $1 AND ehlo_name IS NOT NULL LIMIT 1)),"
		" profile = coalesce(s.profile, (SELECT profile FROM results"
		"   WHERE scan_id = $1 AND profile IS NOT NULL LIMIT 1))"
		" WHERE s.id = $1 RETURNING s.results_stored, s.domains_stored, s.rejected";
	PGconn *c = mxs_db_conn(db);
	const char *p[4] = { sid, mxs_scan_state_names[state], nread, nstored };
	PGresult *r = PQexec(c, count_sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK && pg_classify(c, r) == PGF_CONN) {
		PQclear(r);
		PQreset(c);
		r = PQexec(c, count_sql);
	}
	if (PQresultStatus(r) != PGRES_TUPLES_OK && pg_classify(c, r) != PGF_CONN) {
		PQclear(r);
		r = PQexecParams(c, count_view, 1, NULL, p, NULL, NULL, 0);
	}
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		snprintf(nstored, sizeof(nstored), "%s", PQgetvalue(r, 0, 0));
		PQclear(r);
		r = PQexecParams(c, sql, 4, NULL, p, NULL, NULL, 0);
	}
	int rc = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		if (totals != NULL) {
			totals->results = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
			totals->domains = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
			totals->rejects = strtoull(PQgetvalue(r, 0, 2), NULL, 10);
		}
		rc = 0;
	} else if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		snprintf(err, errlen, "no scan %" PRId64, id);
	} else {
		pg_errmsg(c, r, err, errlen);
	}
	PQclear(r);
	return rc;
}

/*
 * Make a scan that is no longer running fast to read, unless that is done already: fresh
 * planner statistics (ANALYZE), and for a done scan compact keys (REINDEX, once) and its
 * stored rates (mxs_rollup), so that
 * reports and trends read them instead of recomputing them from every result. A failure
 * costs speed (v_rates computes the scan's rates live), never data: it is logged.
 */
void mxs_scan_rollup(struct mxs_db *db, int64_t id)
{
	char sid[32];
	snprintf(sid, sizeof(sid), "%" PRId64, id);
	const char *p[1] = { sid };
	PGconn *c = mxs_db_conn(db);
	PGresult *r = PQexecParams(c,
	                           "SELECT s.state FROM scans s WHERE s.id = $1 AND s.state <> 'running'"
	                           " AND NOT EXISTS (SELECT 1 FROM scan_rollups u WHERE u.scan_id = s.id)",
	                           1, NULL, p, NULL, NULL, 0);
	int todo = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
	int done = todo && strcmp(PQgetvalue(r, 0, 0), "done") == 0;
	PQclear(r);
	if (!todo)
		return;
	if (done)
		reindex_scan(c, id);
	mxs_scan_analyze(db, id);
	if (!done)
		return;
	int64_t t0 = mxs_mono_ms();
	r = PQexecParams(c, "SELECT mxs_rollup($1::bigint)", 1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		char err[256];
		pg_errmsg(c, r, err, sizeof(err));
		mxs_warn("db", "rollup of scan %" PRId64 ": %s", id, err);
	} else {
		mxs_info("db", "rollup scan=%" PRId64 " ms=%lld", id, (long long)(mxs_mono_ms() - t0));
	}
	PQclear(r);
}

int mxs_scan_counts(struct mxs_db *db, int64_t id, uint64_t *results, uint64_t *domains,
                    uint64_t *rejects, char *err, size_t errlen)
{
	char sid[32];
	snprintf(sid, sizeof(sid), "%" PRId64, id);
	const char *p[1] = { sid };
	PGconn *c = mxs_db_conn(db);
	static const char sql[] = "SELECT (SELECT count(*) FROM results WHERE scan_id = $1),"
	                          " (SELECT count(*) FROM domains WHERE scan_id = $1),"
	                          " (SELECT count(*) FROM rejects WHERE scan_id = $1)";
	PGresult *r = PQexecParams(c, sql, 1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK && pg_classify(c, r) == PGF_CONN) {
		PQclear(r);
		PQreset(c);
		r = PQexecParams(c, sql, 1, NULL, p, NULL, NULL, 0);
	}
	int rc = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		*results = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
		*domains = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
		*rejects = strtoull(PQgetvalue(r, 0, 2), NULL, 10);
		rc = 0;
	} else {
		pg_errmsg(c, r, err, errlen);
	}
	PQclear(r);
	return rc;
}

/* Run a one-parameter (scan id) query row by row, calling fn for each row until it returns non-zero. */
static int each_row(struct mxs_db *db, int64_t id, const char *sql, int (*fn)(void *, PGresult *),
                    void *arg, char *err, size_t errlen)
{
	PGconn *c = mxs_db_conn(db);
	char sid[32];
	snprintf(sid, sizeof(sid), "%" PRId64, id);
	const char *p[1] = { sid };
	/* row by row, so millions of done targets never sit in memory at once */
	if (!PQsendQueryParams(c, sql, 1, NULL, p, NULL, NULL, 0) || !PQsetSingleRowMode(c)) {
		pg_errmsg(c, NULL, err, errlen);
		return -1;
	}
	int rc = 0, stop = 0;
	PGresult *r;
	while ((r = PQgetResult(c)) != NULL) {
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_SINGLE_TUPLE && !stop) {
			int v = fn(arg, r);
			if (v != 0) {
				rc = v;
				stop = 1;   /* keep reading: the connection must see the end */
			}
		} else if (st != PGRES_TUPLES_OK && st != PGRES_SINGLE_TUPLE) {
			pg_errmsg(c, r, err, errlen);
			rc = -1;
		}
		PQclear(r);
	}
	return rc;
}

struct done_args {
	mxs_done_cb cb;
	mxs_done_result_cb rcb;
	mxs_done_name_cb ncb;
	void *arg;
};

static int done_row(void *arg, PGresult *r)
{
	struct done_args *a = arg;
	return a->cb(a->arg, PQgetvalue(r, 0, 0), atoi(PQgetvalue(r, 0, 1)));
}

int mxs_scan_done_targets(struct mxs_db *db, int64_t id, mxs_done_cb cb, void *arg, char *err,
                          size_t errlen)
{
	struct done_args a = { .cb = cb, .arg = arg };
	return each_row(db, id, "SELECT host(ip), port FROM results WHERE scan_id = $1"
	                " AND outcome <> 19", done_row, &a, err, errlen);
}

static int done_result_row(void *arg, PGresult *r)
{
	struct done_args *a = arg;
	return a->rcb(a->arg, PQgetvalue(r, 0, 0), atoi(PQgetvalue(r, 0, 1)),
	              PQgetisnull(r, 0, 2) ? NULL : PQgetvalue(r, 0, 2), atoi(PQgetvalue(r, 0, 3)),
	              strcmp(PQgetvalue(r, 0, 4), "t") == 0);
}

static int done_name_row(void *arg, PGresult *r)
{
	struct done_args *a = arg;
	return a->ncb(a->arg, PQgetvalue(r, 0, 0), atoi(PQgetvalue(r, 0, 1)), PQgetvalue(r, 0, 2));
}

int mxs_scan_done_details(struct mxs_db *db, int64_t id, mxs_done_result_cb rcb,
                          mxs_done_name_cb ncb, void *arg, char *err, size_t errlen)
{
	struct done_args a = { .rcb = rcb, .ncb = ncb, .arg = arg };
	int rc = each_row(db, id, "SELECT host(ip), port, mx, outcome, tls_version IS NOT NULL"
	                  " FROM results WHERE scan_id = $1 AND outcome <> 19",
	                  done_result_row, &a, err, errlen);
	if (rc != 0)
		return rc;
	/* verdicts judged on a probe that finished (an interrupted one is replaced) */
	return each_row(db, id, "SELECT host(ip), port, name FROM result_names WHERE scan_id = $1"
	                " AND outcome IS DISTINCT FROM 19",
	                done_name_row, &a, err, errlen);
}
