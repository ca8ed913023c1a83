/*
 * Shards of one scan (several scanners, --shard I/N, one database): each shard keeps its
 * own progress row in scan_shards; the scan itself is finished when its last shard is.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "ingest.h"
#include "pgutil.h"

static int exec3(PGconn *c, const char *sql, int n, const char *const *p, PGresult **out,
                 char *err, size_t errlen)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		pg_errmsg(c, r, err, errlen);
		PQclear(r);
		return -1;
	}
	if (out != NULL)
		*out = r;
	else
		PQclear(r);
	return 0;
}

int mxs_scan_shard_begin(struct mxs_db *db, int64_t id, unsigned index, unsigned count,
                         char *err, size_t errlen)
{
	char sid[32], si[16], sc[16];
	const char *p[3] = { sid, si, sc };

	snprintf(sid, sizeof(sid), "%" PRId64, id);
	snprintf(si, sizeof(si), "%u", index);
	snprintf(sc, sizeof(sc), "%u", count);
	return exec3(mxs_db_conn(db),
	             "INSERT INTO scan_shards (scan_id, shard_index, shard_count) VALUES ($1, $2, $3)"
	             " ON CONFLICT (scan_id, shard_count, shard_index) DO UPDATE"
	             " SET state = 'running', ended_at = NULL, runs = scan_shards.runs + 1",
	             3, p, NULL, err, errlen);
}

int mxs_scan_shard_finish(struct mxs_db *db, int64_t id, unsigned index, unsigned count,
                          enum mxs_scan_state state, uint64_t targets_read,
                          struct mxs_shard_progress *progress, char *err, size_t errlen)
{
	char sid[32], si[16], sc[16], nread[32];
	const char *p[5] = { sid, si, sc, mxs_scan_state_names[state], nread };
	PGresult *r;

	snprintf(sid, sizeof(sid), "%" PRId64, id);
	snprintf(si, sizeof(si), "%u", index);
	snprintf(sc, sizeof(sc), "%u", count);
	snprintf(nread, sizeof(nread), "%" PRIu64, targets_read);
	if (exec3(mxs_db_conn(db),
	          "UPDATE scan_shards SET state = $4, ended_at = now(), targets_read = $5"
	          " WHERE scan_id = $1 AND shard_index = $2 AND shard_count = $3",
	          5, p, NULL, err, errlen) < 0)
		return -1;
	const char *q[2] = { sid, sc };
	if (exec3(mxs_db_conn(db),
	          "SELECT count(*) FILTER (WHERE state = 'done'), coalesce(sum(targets_read), 0)"
	          " FROM scan_shards WHERE scan_id = $1 AND shard_count = $2",
	          2, q, &r, err, errlen) < 0)
		return -1;
	progress->shards_done = (unsigned)strtoul(PQgetvalue(r, 0, 0), NULL, 10);
	progress->targets_read = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
	progress->all_done = progress->shards_done == count;
	PQclear(r);
	return 0;
}
