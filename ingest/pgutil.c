#include "pgutil.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const pg_fail_names[PGF_LAST] = {
	[PGF_OK] = "ok",
	[PGF_CONN] = "connection",
	[PGF_CONFLICT] = "conflict",
	[PGF_DATA] = "data",
	[PGF_OTHER] = "other",
};

void pg_errmsg(PGconn *c, const PGresult *r, char *err, size_t errlen)
{
	const char *m = r ? PQresultErrorMessage(r) : NULL;
	if (m == NULL || *m == '\0')
		m = c ? PQerrorMessage(c) : "no connection";
	if (err == NULL || errlen == 0)
		return;
	snprintf(err, errlen, "%s", m);
	size_t n = strlen(err);
	while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
		err[--n] = '\0';
}

enum pg_fail pg_classify(PGconn *c, const PGresult *r)
{
	if (r != NULL) {
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_IN ||
		    st == PGRES_COPY_OUT || st == PGRES_EMPTY_QUERY)
			return PGF_OK;
	}
	if (c == NULL || PQstatus(c) != CONNECTION_OK)
		return PGF_CONN;
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	if (state == NULL)
		return PGF_CONN;
	if (strcmp(state, "23505") == 0)
		return PGF_CONFLICT;
	/* 08: connection exception; 57P0x: shutdown, crash, cannot connect now */
	if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
		return PGF_CONN;
	/* 22: data exception; 23: integrity constraint; 54: a value too large */
	if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0 ||
	    strncmp(state, "54", 2) == 0)
		return PGF_DATA;
	return PGF_OTHER;
}

/*
 * Server notices (NOTICE, WARNING, INFO, ...) go to the log as log lines: libpq's
 * default receiver prints them raw on stderr, amid the log format.
 */
static void notice_to_log(void *arg, const PGresult *r)
{
	const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	enum mxs_log_level lvl = MXS_LOG_INFO;
	(void)arg;
	if (sev == NULL)
		sev = PQresultErrorField(r, PG_DIAG_SEVERITY);
	if (sev != NULL && strcmp(sev, "WARNING") == 0)
		lvl = MXS_LOG_WARN;
	else if (sev != NULL && strncmp(sev, "DEBUG", 5) == 0)
		lvl = MXS_LOG_DEBUG;
	if (lvl == MXS_LOG_DEBUG && mxs_log_get_level() < MXS_LOG_DEBUG)
		return;
	mxs_log(lvl, "db", "server-notice severity=%s message=\"%s\"", sev ? sev : "?",
	        msg ? msg : "");
}

PGconn *pg_connect(const char *conninfo, const char *appname, char *err, size_t errlen)
{
	/* later keywords win: the caller's conninfo (expanded from dbname) overrides ours */
	const char *keys[] = { "connect_timeout", "application_name", "client_encoding",
		"dbname", NULL };
	const char *vals[] = { "10", appname ? appname : "mxsurvey", "UTF8",
		conninfo && *conninfo ? conninfo : NULL, NULL };
	if (vals[3] == NULL)
		keys[3] = NULL;
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		pg_errmsg(c, NULL, err, errlen);
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeReceiver(c, notice_to_log, NULL);
	/* every text column holds UTF-8; a server that cannot store it would fail batches */
	const char *enc = PQparameterStatus(c, "server_encoding");
	if (enc != NULL && strcmp(enc, "UTF8") != 0 && strcmp(enc, "SQL_ASCII") != 0) {
		snprintf(err, errlen, "database encoding is %s; mxsurvey needs UTF8", enc);
		PQfinish(c);
		return NULL;
	}
	return c;
}

enum pg_fail pg_exec_class(PGconn *c, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(c, sql);
	enum pg_fail f = pg_classify(c, r);
	if (f != PGF_OK)
		pg_errmsg(c, r, err, errlen);
	PQclear(r);
	return f;
}

int pg_exec(PGconn *c, const char *sql, char *err, size_t errlen)
{
	return pg_exec_class(c, sql, err, errlen) == PGF_OK ? 0 : -1;
}

enum pg_fail pg_copy(PGconn *c, const char *sql, const char *data, size_t len, char *err,
                     size_t errlen)
{
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		enum pg_fail f = pg_classify(c, r);
		pg_errmsg(c, r, err, errlen);
		PQclear(r);
		return f == PGF_OK ? PGF_OTHER : f;
	}
	PQclear(r);
	/* libpq takes large buffers in pieces it can send; 1 MiB keeps its buffer small */
	size_t off = 0;
	while (off < len) {
		size_t n = len - off > (1u << 20) ? (1u << 20) : len - off;
		if (PQputCopyData(c, data + off, (int)n) != 1)
			break;
		off += n;
	}
	if (PQputCopyEnd(c, off < len ? "client failed to send data" : NULL) != 1) {
		pg_errmsg(c, NULL, err, errlen);
		return PGF_CONN;
	}
	return pg_drain_results(c, err, errlen);
}

char *pg_query_string(PGconn *c, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(c, sql);
	char *out = NULL;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		pg_errmsg(c, r, err, errlen);
	} else if (PQntuples(r) == 1 && PQnfields(r) >= 1 && !PQgetisnull(r, 0, 0)) {
		out = strdup(PQgetvalue(r, 0, 0));
		if (out == NULL)
			snprintf(err, errlen, "out of memory");
	} else {
		snprintf(err, errlen, "no value");
	}
	PQclear(r);
	return out;
}

enum pg_fail pg_drain_results(PGconn *c, char *err, size_t errlen)
{
	enum pg_fail f = PGF_OK;
	PGresult *r;

	while ((r = PQgetResult(c)) != NULL) {
		enum pg_fail g = pg_classify(c, r);
		if (g != PGF_OK && f == PGF_OK) {
			f = g;
			pg_errmsg(c, r, err, errlen);
		}
		PQclear(r);
	}
	if (f == PGF_OK && PQstatus(c) != CONNECTION_OK) {
		pg_errmsg(c, NULL, err, errlen);
		f = PGF_CONN;
	}
	return f;
}
