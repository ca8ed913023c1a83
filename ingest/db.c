/* Opening the database: which server (flag, environment, embedded), connect, migrate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "log.h"
#include "pgutil.h"

struct mxs_db {
	PGconn *conn;          /* owned */
	char *conninfo;        /* owned */
	char instance[64];
	char spool_dir[1100];
};

PGconn *mxs_db_conn(struct mxs_db *db)
{
	return db->conn;
}

const char *mxs_db_conninfo(const struct mxs_db *db)
{
	return db->conninfo;
}

const char *mxs_db_instance(const struct mxs_db *db)
{
	return db->instance;
}

const char *mxs_db_spool_dir(const struct mxs_db *db)
{
	return db->spool_dir;
}

void mxs_db_close(struct mxs_db *db)
{
	if (db == NULL)
		return;
	if (db->conn != NULL)
		PQfinish(db->conn);
	free(db->conninfo);
	free(db);
}

int mxs_db_open(const struct mxs_db_opts *opts, struct mxs_db **out, char *err, size_t errlen)
{
	char base[1024], ci[1500];
	const char *url = opts ? opts->url : NULL;
	struct mxs_db *db;

	*out = NULL;
	if (opts != NULL && opts->data_dir != NULL)
		snprintf(base, sizeof(base), "%s", opts->data_dir);
	else if (mxs_data_dir(base, sizeof(base)) != 0) {
		snprintf(err, errlen, "no data directory: set XDG_DATA_HOME or HOME");
		return -1;
	}
	if (url == NULL || *url == '\0')
		url = getenv("DATABASE_URL");
	if (url == NULL || *url == '\0') {
		const char *h = getenv("PGHOST");
		if (h != NULL && *h) {
			url = "";   /* libpq reads PGHOST, PGPORT, PGUSER, PGDATABASE itself */
		} else {
			if (mxs_cluster_ensure(base, ci, sizeof(ci), err, errlen) != 0)
				return -1;
			url = ci;
		}
	}
	db = calloc(1, sizeof(*db));
	if (db == NULL || (db->conninfo = strdup(url)) == NULL) {
		free(db);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(db->spool_dir, sizeof(db->spool_dir), "%s/spool", base);
	db->conn = pg_connect(db->conninfo, "mxsurvey", err, errlen);
	if (db->conn == NULL)
		goto fail;
	pg_exec(db->conn, "SET client_min_messages = warning", NULL, 0);
	if (opts == NULL || !opts->no_migrate) {
		int applied = 0;
		if (mxs_db_migrate(db->conn, &applied, err, errlen) != 0)
			goto fail;
	}
	char *inst = pg_query_string(db->conn, "SELECT instance_id FROM mxs_meta", err, errlen);
	if (inst == NULL && opts != NULL && opts->no_migrate) {
		/* not migrated yet, and told not to: fine for `db migrate` and `db status` */
		*out = db;
		return 0;
	}
	if (inst == NULL) {
		char msg[512];
		snprintf(msg, sizeof(msg), "database not initialised (run 'mxsurvey db migrate'): %s", err);
		snprintf(err, errlen, "%s", msg);
		goto fail;
	}
	snprintf(db->instance, sizeof(db->instance), "%s", inst);
	free(inst);
	*out = db;
	return 0;
fail:
	mxs_db_close(db);
	return -1;
}
