/*
 * mxsurvey db SUBCOMMAND: the database's housekeeping.
 *   migrate            apply pending schema migrations
 *   status             embedded cluster state, schema version, scans
 *   start | stop       the embedded cluster
 *   url                the connection string mxsurvey would use
 *   scans              list scans
 *   done N             the targets of scan N that have a result (what --resume skips)
 *   drop-scan N        drop scan N and its partitions
 *   rollup N           store scan N's rates again (after changing its rows by hand)
 *   suffixes [FILE]    load the Public Suffix List's ICANN section (provider grouping)
 *   retention DAYS     drop scans that started more than DAYS days ago
 *   networks FILE [--scan N]  load customer networks (findings grouping)
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cliutil.h"
#include "commands.h"
#include "exitcode.h"
#include "ingest.h"
#include "log.h"
#include "networks.h"
#include "suffixes.h"

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: mxsurvey db [OPTIONS] SUBCOMMAND [ARG]\n"
	        "Options:\n"
	        "  --db URL         PostgreSQL conninfo or URL (default as for ingest)\n"
	        "  --data-dir DIR   base of the embedded cluster\n"
	        "  --log-level L    error, warn, info, debug\n"
	        "Subcommands:\n"
	        "  migrate          apply pending schema migrations\n"
	        "  status           embedded cluster state, schema version, scans\n"
	        "  start            create and start the embedded cluster\n"
	        "  stop             stop the embedded cluster\n"
	        "  url              print the connection string mxsurvey uses\n"
	        "  scans            list scans\n"
	        "  done N           print 'ip port' of every target of scan N with a result\n"
	        "                   (not counting interrupted probes: what --resume skips)\n"
	        "  drop-scan N      drop scan N and its partitions\n"
	        "  rollup N         store scan N's rates again (done when a scan finishes;\n"
	        "                   needed only after changing its rows by hand)\n"
	        "  suffixes [FILE]  load the ICANN section of the Public Suffix List for\n"
	        "                   provider grouping (default " MXS_PSL_DEFAULT_PATH ")\n"
	        "  retention DAYS   drop scans started more than DAYS days ago\n"
	        "  networks FILE    load customer networks ('cidr,name[,contact]' lines and\n"
	        "                   routing-table 'prefix asn' lines) as a new set, used for the\n"
	        "                   findings of scans created from now on ('--scan N' after\n"
	        "                   FILE: of scan N too)\n");
}

/* The subcommands that talk to the database, and whether they take a scan or day count. */
struct db_subcommand {
	const char *name;
	int needs_number;
};

static const struct db_subcommand db_subcommands[] = {
	{ "migrate", 0 }, { "status", 0 }, { "url", 0 }, { "scans", 0 },
	{ "done", 1 }, { "drop-scan", 1 }, { "rollup", 1 }, { "retention", 1 }, { "suffixes", 0 },
	{ "networks", 0 },
};

static const struct db_subcommand *find_subcommand(const char *name)
{
	for (size_t i = 0; i < sizeof(db_subcommands) / sizeof(db_subcommands[0]); i++)
		if (strcmp(db_subcommands[i].name, name) == 0)
			return &db_subcommands[i];
	return NULL;
}

/* Print a query's result as aligned text. */
static int print_query(PGconn *c, const char *sql, int nparams, const char *const *params)
{
	PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "mxsurvey db: %s", PQresultErrorMessage(r));
		PQclear(r);
		return -1;
	}
	int nf = PQnfields(r), nt = PQntuples(r);
	int *w = calloc((size_t)nf, sizeof(int));
	if (w == NULL) {
		PQclear(r);
		return -1;
	}
	for (int j = 0; j < nf; j++) {
		w[j] = (int)strlen(PQfname(r, j));
		for (int i = 0; i < nt; i++)
			if ((int)strlen(PQgetvalue(r, i, j)) > w[j])
				w[j] = (int)strlen(PQgetvalue(r, i, j));
	}
	for (int j = 0; j < nf; j++)
		printf("%-*s%s", w[j], PQfname(r, j), j + 1 < nf ? "  " : "\n");
	for (int i = 0; i < nt; i++)
		for (int j = 0; j < nf; j++)
			printf("%-*s%s", w[j], PQgetvalue(r, i, j), j + 1 < nf ? "  " : "\n");
	free(w);
	PQclear(r);
	return 0;
}

static int print_done(void *arg, const char *ip, int port)
{
	(void)arg;
	return printf("%s %d\n", ip, port) < 0 ? -1 : 0;
}

static int exec_one(PGconn *c, const char *sql, const char *param, char *out, size_t outlen)
{
	const char *p[1] = { param };
	PGresult *r = PQexecParams(c, sql, param ? 1 : 0, NULL, p, NULL, NULL, 0);
	int ok = PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "mxsurvey db: %s", PQresultErrorMessage(r));
	else if (out != NULL && PQntuples(r) > 0)
		snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return ok ? 0 : -1;
}

int cmd_db(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "data-dir", required_argument, NULL, 'D' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct mxs_db_opts o = { 0 };
	char err[1024], base[1024];
	int c, lvl;

	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': o.url = optarg; break;
		case 'D': o.data_dir = optarg; break;
		case 'L':
			if ((lvl = mxs_log_level_parse(optarg)) < 0)
				return MXS_EXIT_USAGE;
			mxs_log_set_level((enum mxs_log_level)lvl);
			break;
		case 'h': usage(stdout); return MXS_EXIT_OK;
		default: usage(stderr); return MXS_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return MXS_EXIT_USAGE;
	}
	const char *sub = argv[optind];
	const char *arg = optind + 1 < argc ? argv[optind + 1] : NULL;
	if (o.data_dir != NULL)
		snprintf(base, sizeof(base), "%s", o.data_dir);
	else if (mxs_data_dir(base, sizeof(base)) != 0) {
		fprintf(stderr, "mxsurvey db: no data directory (set HOME or XDG_DATA_HOME)\n");
		return MXS_EXIT_FAILURE;
	}

	if (strcmp(sub, "stop") == 0) {
		if (mxs_cluster_stop(base, err, sizeof(err)) != 0) {
			fprintf(stderr, "mxsurvey db stop: %s\n", err);
			return MXS_EXIT_DB;
		}
		printf("embedded cluster: stopped\n");
		return MXS_EXIT_OK;
	}
	if (strcmp(sub, "start") == 0) {
		char ci[1500];
		if (mxs_cluster_ensure(base, ci, sizeof(ci), err, sizeof(err)) != 0) {
			fprintf(stderr, "mxsurvey db start: %s\n", err);
			return MXS_EXIT_DB;
		}
		printf("embedded cluster: running\n%s\n", ci);
		return MXS_EXIT_OK;
	}
	if (strcmp(sub, "status") == 0 && o.url == NULL && getenv("DATABASE_URL") == NULL &&
	    getenv("PGHOST") == NULL) {
		enum mxs_cluster_state st = mxs_cluster_status(base);
		printf("embedded cluster: %s\n", mxs_cluster_state_names[st]);
		if (st != MXS_CLUSTER_RUNNING)
			return MXS_EXIT_OK;
	}
	const struct db_subcommand *sc = find_subcommand(sub);
	if (sc == NULL) {
		fprintf(stderr, "mxsurvey db: unknown subcommand '%s'\n", sub);
		usage(stderr);
		return MXS_EXIT_USAGE;
	}
	int64_t number = 0;
	if (sc->needs_number && (arg == NULL || cli_id_arg("db", sub, arg, &number) < 0)) {
		if (arg == NULL)
			fprintf(stderr, "mxsurvey db %s: needs a positive number\n", sub);
		return MXS_EXIT_USAGE;
	}

	int64_t net_scan = 0;
	if (strcmp(sub, "networks") == 0) {
		int rest = argc - optind - 2;
		if (arg == NULL || (rest != 0 && (rest != 2 || strcmp(argv[optind + 2], "--scan") != 0 ||
		                                  cli_id_arg("db networks", "--scan", argv[optind + 3],
		                                             &net_scan) < 0))) {
			fprintf(stderr, "mxsurvey db networks: FILE [--scan N]\n");
			return MXS_EXIT_USAGE;
		}
	}
	/* migrate and status look at the schema before (or without) migrating it */
	o.no_migrate = strcmp(sub, "migrate") == 0 || strcmp(sub, "status") == 0;
	struct mxs_db *db;
	if (mxs_db_open(&o, &db, err, sizeof(err)) != 0) {
		fprintf(stderr, "mxsurvey db %s: %s\n", sub, err);
		return MXS_EXIT_DB;
	}
	PGconn *pg = mxs_db_conn(db);
	int rc = MXS_EXIT_OK;
	if (strcmp(sub, "migrate") == 0) {
		int applied = 0;
		if (mxs_db_migrate(pg, &applied, err, sizeof(err)) != 0) {
			fprintf(stderr, "mxsurvey db migrate: %s\n", err);
			rc = MXS_EXIT_DB;
		} else {
			printf("schema version %d (%d migration%s applied)\n",
			       mxs_db_schema_version(pg, err, sizeof(err)), applied, applied == 1 ? "" : "s");
		}
	} else if (strcmp(sub, "status") == 0) {
		int v = mxs_db_schema_version(pg, err, sizeof(err));
		printf("database: %s\nschema version: %d\n", PQdb(pg), v);
		if (v > 0 && (print_query(pg, "SELECT count(*) AS scans, coalesce(sum(results_stored), 0)"
		                              " AS results FROM scans", 0, NULL) != 0 ||
		              print_query(pg, "SELECT rules AS public_suffix_rules, source,"
		                              " to_char(loaded_at, 'YYYY-MM-DD HH24:MI') AS loaded"
		                              " FROM public_suffix_source", 0, NULL) != 0))
			rc = MXS_EXIT_DB;
	} else if (strcmp(sub, "url") == 0) {
		printf("%s\n", mxs_db_conninfo(db));
	} else if (strcmp(sub, "scans") == 0) {
		if (print_query(pg,
		                "SELECT id, state, to_char(started_at, 'YYYY-MM-DD HH24:MI:SS') AS started,"
		                " targets_read AS read, results_stored AS results, domains_stored AS domains,"
		                " rejected, coalesce(label, '') AS label, coalesce(command_line, '') AS command"
		                " FROM scans ORDER BY id",
		                0, NULL) != 0)
			rc = MXS_EXIT_DB;
	} else if (strcmp(sub, "done") == 0) {
		if (mxs_scan_done_targets(db, number, print_done, NULL, err,
		                          sizeof(err)) != 0) {
			fprintf(stderr, "mxsurvey db done: %s\n", err);
			rc = MXS_EXIT_DB;
		}
	} else if (strcmp(sub, "drop-scan") == 0) {
		if (exec_one(pg, "SELECT mxs_drop_scan($1::bigint)", arg, NULL, 0) != 0)
			rc = MXS_EXIT_DB;
		else
			printf("scan %s dropped\n", arg);
	} else if (strcmp(sub, "rollup") == 0) {
		/* the rollup's queries plan on the scan's statistics: a scan filled by ingest
		 * has none yet (minutes instead of seconds at 100k addresses) */
		char known[8] = "";
		if (exec_one(pg, "SELECT count(*) FROM scans WHERE id = $1", arg, known,
		             sizeof(known)) == 0 && strcmp(known, "1") == 0)
			mxs_scan_analyze(db, number);
		if (exec_one(pg, "SELECT mxs_rollup($1::bigint)", arg, NULL, 0) != 0)
			rc = MXS_EXIT_DB;
		else
			printf("scan %s: rates stored\n", arg);
	} else if (strcmp(sub, "suffixes") == 0) {
		size_t skipped = 0;
		const char *path = arg != NULL ? arg : MXS_PSL_DEFAULT_PATH;
		long n = mxs_db_load_suffixes(pg, path, &skipped, err, sizeof(err));
		if (n < 0) {
			fprintf(stderr, "mxsurvey db suffixes: %s\n", err);
			rc = n == MXS_PSL_BAD_FILE ? MXS_EXIT_BAD_INPUT : MXS_EXIT_DB;
		} else {
			printf("%ld public suffix rules loaded from %s", n, path);
			if (skipped > 0)
				printf(" (%zu malformed rules left out)", skipped);
			printf("\n");
		}
	} else if (strcmp(sub, "networks") == 0) {
		long named, routes;
		char sid[32], found[8] = "";
		snprintf(sid, sizeof(sid), "%lld", (long long)net_scan);
		if (net_scan > 0 &&
		    (exec_one(pg, "SELECT 1 FROM scans WHERE id = $1::bigint", sid, found, sizeof(found)) != 0 ||
		     found[0] == '\0')) {
			fprintf(stderr, "mxsurvey db networks: no scan %s\n", sid);
			rc = MXS_EXIT_USAGE;
		} else {
			int64_t id = mxs_db_load_networks(pg, arg, net_scan, &named, &routes, err, sizeof(err));
			if (id < 0) {
				fprintf(stderr, "mxsurvey db networks: %s\n", err);
				rc = id == MXS_NET_ERR_FILE ? MXS_EXIT_BAD_INPUT : MXS_EXIT_DB;
			} else {
				printf("network set %lld: %ld named networks, %ld routes from %s%s%s\n",
				       (long long)id, named, routes, arg, net_scan > 0 ? "; attached to scan " : "",
				       net_scan > 0 ? sid : "");
			}
		}
	} else if (strcmp(sub, "retention") == 0) {
		char n[32] = "0";
		if (exec_one(pg,
		             "SELECT count(mxs_drop_scan(id)) FROM scans"
		             " WHERE started_at < now() - make_interval(days => $1::int)",
		             arg, n, sizeof(n)) != 0)
			rc = MXS_EXIT_DB;
		else
			printf("%s scan%s dropped\n", n, strcmp(n, "1") == 0 ? "" : "s");
	}
	mxs_db_close(db);
	return rc;
}
