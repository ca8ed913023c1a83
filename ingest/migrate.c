/* Applying the embedded migrations (sql/migrations/NNNN_name.sql) in version order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "log.h"
#include "migrations.h"
#include "pgutil.h"

/* Any constant works; it only has to be the same for every mxsurvey process. */
#define MIGRATE_LOCK "7173657278"

int mxs_db_schema_version(PGconn *c, char *err, size_t errlen)
{
	PGresult *r = PQexec(c, "SELECT to_regclass('schema_version') IS NOT NULL");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		pg_errmsg(c, r, err, errlen);
		PQclear(r);
		return -1;
	}
	int exists = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	if (!exists)
		return 0;
	char *v = pg_query_string(c, "SELECT coalesce(max(version), 0) FROM schema_version", err,
	                          errlen);
	if (v == NULL)
		return -1;
	int version = atoi(v);
	free(v);
	return version;
}

static int apply_one(PGconn *c, const struct mxs_migration *m, char *err, size_t errlen)
{
	char ver[16];
	if (pg_exec(c, "BEGIN", err, errlen) != 0)
		return -1;
	if (pg_exec(c, m->sql, err, errlen) != 0) {
		char msg[1024];
		snprintf(msg, sizeof(msg), "%s: %s", m->name, err);
		snprintf(err, errlen, "%s", msg);
		pg_exec(c, "ROLLBACK", NULL, 0);
		return -1;
	}
	snprintf(ver, sizeof(ver), "%d", m->version);
	const char *params[3] = { ver, m->name, m->sha256 };
	PGresult *r = PQexecParams(c,
	                           "INSERT INTO schema_version (version, name, sha256)"
	                           " VALUES ($1, $2, $3)",
	                           3, NULL, params, NULL, NULL, 0);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		pg_errmsg(c, r, err, errlen);
	PQclear(r);
	if (!ok || pg_exec(c, "COMMIT", err, errlen) != 0) {
		pg_exec(c, "ROLLBACK", NULL, 0);
		return -1;
	}
	mxs_info("db", "migrated version=%d name=%s", m->version, m->name);
	return 0;
}

static const struct mxs_migration *find_migration(int version)
{
	for (size_t i = 0; i < mxs_migrations_count; i++)
		if (mxs_migrations[i].name != NULL && mxs_migrations[i].version == version)
			return &mxs_migrations[i];
	return NULL;
}

/*
 * Every migration the database has applied must be the one this binary embeds, byte for
 * byte: a database migrated by a development build with another text of the same version
 * would otherwise fail later, table by table, in the middle of a scan.
 */
static int check_applied(PGconn *c, char *err, size_t errlen)
{
	PGresult *r = PQexec(c, "SELECT version, name, coalesce(sha256, '') FROM schema_version"
	                        " ORDER BY version");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		pg_errmsg(c, r, err, errlen);
		PQclear(r);
		return -1;
	}
	int rc = 0;
	for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
		const struct mxs_migration *m = find_migration(atoi(PQgetvalue(r, i, 0)));
		const char *have = PQgetvalue(r, i, 2);
		if (m != NULL && strcmp(have, m->sha256) != 0) {
			snprintf(err, errlen,
			         "the database applied schema version %s (%s) from another text than this"
			         " mxsurvey's %s (%s): it was migrated by a different build; use a fresh"
			         " database",
			         PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), m->name,
			         have[0] ? "digests differ" : "no digest recorded");
			rc = -1;
		}
	}
	PQclear(r);
	return rc;
}

int mxs_db_migrate(PGconn *c, int *applied, char *err, size_t errlen)
{
	int n = 0, rc = -1;

	/* two mxsurvey processes starting together must not both apply version 1 */
	if (pg_exec(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK ")", err, errlen) != 0)
		return -1;
	if (pg_exec(c,
	            "CREATE TABLE IF NOT EXISTS schema_version ("
	            " version integer PRIMARY KEY, name text NOT NULL,"
	            " applied_at timestamptz NOT NULL DEFAULT now(), sha256 text);"
	            " ALTER TABLE schema_version ADD COLUMN IF NOT EXISTS sha256 text",
	            err, errlen) != 0)
		goto unlock;
	if (check_applied(c, err, errlen) != 0)
		goto unlock;
	int current = mxs_db_schema_version(c, err, errlen);
	if (current < 0)
		goto unlock;
	int latest = 0;
	for (size_t i = 0; i < mxs_migrations_count; i++)
		if (mxs_migrations[i].name != NULL && mxs_migrations[i].version > latest)
			latest = mxs_migrations[i].version;
	if (current > latest) {
		snprintf(err, errlen,
		         "database schema version %d is newer than this mxsurvey knows (%d)", current,
		         latest);
		goto unlock;
	}
	for (size_t i = 0; i < mxs_migrations_count; i++) {
		const struct mxs_migration *m = &mxs_migrations[i];
		if (m->name == NULL || m->version <= current)
			continue;
		if (apply_one(c, m, err, errlen) != 0)
			goto unlock;
		n++;
	}
	rc = 0;
unlock:
	pg_exec(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK ")", NULL, 0);
	if (applied != NULL)
		*applied = n;
	return rc;
}
