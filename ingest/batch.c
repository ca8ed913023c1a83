#include "batch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "outcome.h"
#include "rowconv.h"
#include "timeutil.h"

/* Results are handed to libpq in pieces of about this size while the batch converts.
 * The server waits for the first piece of each batch: small pieces keep that short. */
#define STREAM_CHUNK (64u * 1024u)

struct batcher {
	struct rowconv *rc;       /* owned */
	struct rowbufs bufs;      /* owned */
	int staging;              /* 1: send results through staging (conflicts expected) */
	int commit_pending;       /* a COMMIT was sent and its result not read yet */
	struct batch_counts pending;  /* counts of that transaction, added once it commits */
	int committed;            /* the last transaction committed: batcher_share may pass on
	                           * the values stored once and certificates it carried */
	char *upsert_set;         /* owned: "(v, mx, ...) = ROW(excluded.v, ...)" */
};

void batch_counts_add(struct batch_counts *to, const struct batch_counts *from)
{
	to->results += from->results;
	to->results_new += from->results_new;
	to->results_replaced += from->results_replaced;
	to->domains += from->domains;
	to->domains_new += from->domains_new;
	to->certs_new += from->certs_new;
	to->rejects += from->rejects;
	to->blank += from->blank;
}

/* "(a, b) = ROW(excluded.a, excluded.b)" for every result column but the key. */
static char *build_upsert_set(void)
{
	const char *cols = rowconv_results_columns();
	size_t n = strlen(cols);
	char *lhs = malloc(n + 3), *rhs = malloc(n * 2 + 400);
	char *out = NULL;
	if (lhs == NULL || rhs == NULL)
		goto done;
	char *l = lhs, *r = rhs;
	*l++ = '(';
	r += sprintf(r, "ROW(");
	int first = 1;
	const char *p = cols;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (!(len == 7 && memcmp(p, "scan_id", 7) == 0) && !(len == 2 && memcmp(p, "ip", 2) == 0) &&
		    !(len == 4 && memcmp(p, "port", 4) == 0)) {
			if (!first) {
				*l++ = ',';
				*r++ = ',';
			}
			first = 0;
			memcpy(l, p, len);
			l += len;
			r += sprintf(r, "excluded.%.*s", (int)len, p);
		}
		if (e == NULL)
			break;
		p = e + 1;
		while (*p == ' ')
			p++;
	}
	*l++ = ')';
	*l = '\0';
	*r++ = ')';
	*r = '\0';
	if (asprintf(&out, "%s = %s", lhs, rhs) < 0)
		out = NULL;
done:
	free(lhs);
	free(rhs);
	return out;
}

struct batcher *batcher_new(void)
{
	struct batcher *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	b->rc = rowconv_new();
	b->upsert_set = build_upsert_set();
	if (b->rc == NULL || b->upsert_set == NULL) {
		batcher_free(b);
		return NULL;
	}
	rowbufs_init(&b->bufs);
	return b;
}

void batcher_free(struct batcher *b)
{
	if (b == NULL)
		return;
	rowconv_free(b->rc);
	rowbufs_free(&b->bufs);
	free(b->upsert_set);
	free(b);
}

int batcher_prepare(struct batcher *b, PGconn *c, char *err, size_t errlen)
{
	static const char sql[] =
		"SET synchronous_commit = on;"
		"CREATE TEMP TABLE IF NOT EXISTS stage_results (LIKE result_rows) ON COMMIT DELETE ROWS;"
		"CREATE TEMP TABLE IF NOT EXISTS stage_texts (LIKE mxs_texts) ON COMMIT DELETE ROWS;"
		"CREATE TEMP TABLE IF NOT EXISTS stage_lists (LIKE mxs_lists) ON COMMIT DELETE ROWS;"
		"CREATE TEMP TABLE IF NOT EXISTS stage_chains (LIKE mxs_chains) ON COMMIT DELETE ROWS;"
		"CREATE TEMP TABLE IF NOT EXISTS stage_refs (LIKE mxs_refs) ON COMMIT DELETE ROWS;"
		"CREATE TEMP TABLE IF NOT EXISTS stage_certs (LIKE certificates) ON COMMIT DELETE ROWS;"
		"CREATE TEMP TABLE IF NOT EXISTS stage_domains (LIKE domains) ON COMMIT DELETE ROWS;"
		"CREATE TEMP TABLE IF NOT EXISTS stage_domain_mx (LIKE domain_mx) ON COMMIT DELETE ROWS;"
		"CREATE TEMP TABLE IF NOT EXISTS stage_sets (domain text, key bytea) ON COMMIT DELETE ROWS;"
		"CREATE TEMP TABLE IF NOT EXISTS stage_names (LIKE result_names) ON COMMIT DELETE ROWS;"
		"CREATE TEMP TABLE IF NOT EXISTS stage_rejects (scan_id bigint, raw bytea, error text)"
		" ON COMMIT DELETE ROWS;";
	/* certificates sent on an earlier connection may not have been committed */
	rowconv_forget_sent(b->rc);
	return pg_exec(c, sql, err, errlen);
}

/* Run a query returning one row of counts; fills up to n values. */
static enum pg_fail query_counts(PGconn *c, const char *sql, uint64_t *vals, int n, char *err,
                                 size_t errlen)
{
	PGresult *r = PQexec(c, sql);
	enum pg_fail f = pg_classify(c, r);
	if (f != PGF_OK) {
		pg_errmsg(c, r, err, errlen);
	} else if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		for (int i = 0; i < n && i < PQnfields(r); i++)
			vals[i] = strtoull(PQgetvalue(r, 0, i), NULL, 10);
	}
	PQclear(r);
	return f;
}

static enum pg_fail copy_if(PGconn *c, const char *table, const char *cols,
                            const struct copybuf *buf, size_t rows, char *err, size_t errlen)
{
	char sql[1024];
	if (rows == 0)
		return PGF_OK;
	snprintf(sql, sizeof(sql), "COPY %s (%s) FROM STDIN", table, cols);
	return pg_copy(c, sql, buf->data, buf->len, err, errlen);
}

/*
 * The values stored once (intern.h) first sent in this batch: staged, inserted in id
 * order (two loads inserting the same values wait for each other instead of
 * deadlocking), then checked: a stored value under the same id that differs is a
 * collision of the 63-bit content address, a data error (the line goes to rejects).
 */
static enum pg_fail store_dict(struct batcher *b, PGconn *c, char *err, size_t errlen)
{
	const struct intern_rows *d = &b->bufs.dict;
	static const char *const value[IK_LAST] = { "t", "l", "c", "refs" };
	char sql[2048];
	size_t len = 0;
	int any = 0;
	enum pg_fail f = PGF_OK;

	for (int k = 0; k < IK_LAST && f == PGF_OK; k++)
		f = copy_if(c, intern_stage_tables[k], intern_columns[k], &d->rows[k], d->n[k], err,
		            errlen);
	if (f != PGF_OK)
		return f;
	for (int k = 0; k < IK_LAST; k++)
		if (d->n[k] > 0) {
			len += (size_t)snprintf(sql + len, sizeof(sql) - len,
			                        "INSERT INTO %s (%s) SELECT DISTINCT ON (id) %s FROM %s "
			                        "ORDER BY id ON CONFLICT (id) DO NOTHING;",
			                        intern_tables[k], intern_columns[k], intern_columns[k],
			                        intern_stage_tables[k]);
			any = 1;
		}
	if (!any)
		return PGF_OK;
	/*
	 * One lookup by id per staged value (a correlated subquery, never turned into a join):
	 * a join read the whole dictionary for every batch (a hash join of the few staged
	 * rows against all stored values, 10 ms a batch at 20,000 chains).
	 */
	len += (size_t)snprintf(sql + len, sizeof(sql) - len, "SELECT 0");
	for (int k = 0; k < IK_LAST; k++)
		if (d->n[k] > 0)
			len += (size_t)snprintf(sql + len, sizeof(sql) - len,
			                        " + (SELECT count(*) FROM %s s WHERE coalesce((SELECT d.%s IS"
			                        " DISTINCT FROM s.%s FROM %s d WHERE d.id = s.id), false))",
			                        intern_stage_tables[k], value[k], value[k], intern_tables[k]);
	uint64_t bad = 0;
	f = query_counts(c, sql, &bad, 1, err, errlen);
	if (f == PGF_OK && bad > 0) {
		snprintf(err, errlen, "%" PRIu64 " value(s) stored once collide with a stored value "
		         "of the same id", bad);
		f = PGF_DATA;
	}
	return f;
}

/* The results COPY, fed while the lines are converted. */
static enum pg_fail stream_results(struct batcher *b, PGconn *c, const char *table,
                                   int64_t scan_id, const struct linevec *v, size_t from,
                                   size_t to, uint64_t *copied, char *err, size_t errlen)
{
	char *sql = NULL;
	PGresult *r;
	enum pg_fail f = PGF_OK;

	if (asprintf(&sql, "COPY %s (%s) FROM STDIN", table, rowconv_results_columns()) < 0) {
		snprintf(err, errlen, "out of memory");
		return PGF_OTHER;
	}
	r = PQexec(c, sql);
	free(sql);
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		f = pg_classify(c, r);
		pg_errmsg(c, r, err, errlen);
		PQclear(r);
		return f == PGF_OK ? PGF_OTHER : f;
	}
	PQclear(r);

	int sent_ok = 1;
	for (size_t i = from; i < to && sent_ok; i++) {
		size_t len;
		const char *line = linevec_line(v, i, &len);
		if (rowconv_line(b->rc, scan_id, line, len, &b->bufs) == ROWCONV_NOMEM) {
			snprintf(err, errlen, "out of memory converting a line");
			PQputCopyEnd(c, "out of memory");
			while ((r = PQgetResult(c)) != NULL)
				PQclear(r);
			return PGF_OTHER;
		}
		if (b->bufs.results.len >= STREAM_CHUNK) {
			sent_ok = PQputCopyData(c, b->bufs.results.data, (int)b->bufs.results.len) == 1;
			copybuf_reset(&b->bufs.results);
		}
	}
	if (sent_ok && b->bufs.results.len > 0)
		sent_ok = PQputCopyData(c, b->bufs.results.data, (int)b->bufs.results.len) == 1;
	copybuf_reset(&b->bufs.results);
	if (PQputCopyEnd(c, sent_ok ? NULL : "send failed") != 1) {
		pg_errmsg(c, NULL, err, errlen);
		return PGF_CONN;
	}
	while ((r = PQgetResult(c)) != NULL) {
		enum pg_fail g = pg_classify(c, r);
		if (g != PGF_OK && f == PGF_OK) {
			f = g;
			pg_errmsg(c, r, err, errlen);
		} else if (g == PGF_OK) {
			*copied += strtoull(PQcmdTuples(r), NULL, 10);
		}
		PQclear(r);
	}
	if (f == PGF_OK && !sent_ok) {
		pg_errmsg(c, NULL, err, errlen);
		f = PGF_CONN;
	}
	return f;
}

/* One attempt at the run in one transaction. */
static enum pg_fail try_send(struct batcher *b, PGconn *c, int64_t scan_id,
                             const struct linevec *v, size_t from, size_t to, int async,
                             struct batch_counts *out, char *err, size_t errlen)
{
	struct batch_counts k = { 0 };
	char part[64], *sql = NULL;
	uint64_t copied = 0, vals[2] = { 0, 0 };
	enum pg_fail f;

	int64_t t0 = mxs_mono_ms(), t1, t2;
	rowbufs_reset(&b->bufs);
	rowconv_tx_begin(b->rc);
	b->committed = 0;
	snprintf(part, sizeof(part), "results_s%" PRId64, scan_id);
	/* New rows make the scan's stored rates (scan_rollups) stale: drop them in the same
	 * transaction, in the same round trip as BEGIN. The shared lock waits out a rollup
	 * of this scan in progress (mxs_rollup holds it exclusively), so the DELETE sees and
	 * drops what that rollup stores, and a later rollup sees these rows. */
	char begin[192];
	snprintf(begin, sizeof(begin),
	         "BEGIN; SELECT pg_advisory_xact_lock_shared(28025, %" PRId64 "::integer);"
	         " DELETE FROM scan_rollups WHERE scan_id = %" PRId64, scan_id, scan_id);
	f = pg_exec_class(c, begin, err, errlen);
	if (f != PGF_OK)
		return f;
	f = stream_results(b, c, b->staging ? "stage_results" : part, scan_id, v, from, to, &copied,
	                   err, errlen);
	t1 = mxs_mono_ms();
	if (f == PGF_OK && b->staging && b->bufs.n_results > 0) {
		/* a resumed run replaces what the stop left "interrupted", never a real answer */
		int interrupted = mxs_outcome_db_codes[MXS_OUT_INTERRUPTED];
		if (asprintf(&sql,
		             "WITH ins AS (INSERT INTO %s AS r (%s) SELECT DISTINCT ON (ip, port) %s "
		             "FROM stage_results ORDER BY ip, port, outcome = %d "
		             "ON CONFLICT (scan_id, ip, port) DO UPDATE SET %s "
		             "WHERE r.outcome = %d AND excluded.outcome <> %d "
		             "RETURNING (xmax = 0) AS fresh) "
		             "SELECT count(*) FILTER (WHERE fresh), count(*) FILTER (WHERE NOT fresh) "
		             "FROM ins",
		             part, rowconv_results_columns(), rowconv_results_columns(), interrupted,
		             b->upsert_set, interrupted, interrupted) < 0) {
			snprintf(err, errlen, "out of memory");
			f = PGF_OTHER;
		} else {
			f = query_counts(c, sql, vals, 2, err, errlen);
			free(sql);
		}
		k.results_new = vals[0];
		k.results_replaced = vals[1];
	} else if (f == PGF_OK) {
		k.results_new = copied;
	}
	if (f == PGF_OK)
		f = copy_if(c, "stage_certs", rowconv_certs_columns, &b->bufs.certs, b->bufs.n_certs,
		            err, errlen);
	if (f == PGF_OK && b->bufs.n_certs > 0) {
		if (asprintf(&sql,
		             "WITH ins AS (INSERT INTO certificates (%s) SELECT DISTINCT ON (sha256) %s "
		             "FROM stage_certs ON CONFLICT (sha256) DO NOTHING RETURNING 1) "
		             "SELECT count(*) FROM ins",
		             rowconv_certs_columns, rowconv_certs_columns) < 0) {
			f = PGF_OTHER;
		} else {
			vals[0] = 0;
			f = query_counts(c, sql, vals, 1, err, errlen);
			free(sql);
			k.certs_new = vals[0];
		}
	}
	if (f == PGF_OK)
		f = store_dict(b, c, err, errlen);
	if (f == PGF_OK)
		f = copy_if(c, "stage_domains", rowconv_domains_columns, &b->bufs.domains,
		            b->bufs.n_domains, err, errlen);
	if (f == PGF_OK)
		f = copy_if(c, "stage_domain_mx", rowconv_domain_mx_columns, &b->bufs.domain_mx,
		            b->bufs.domain_mx.len ? 1 : 0, err, errlen);
	if (f == PGF_OK && b->bufs.n_domains > 0) {
		/*
		 * Names are stored once for all scans (dns_names), the rows hold their ids. Only
		 * names not stored yet are inserted (an insert that meets the name anyway, from
		 * a batch in flight on another connection, waits for it and adds nothing), in
		 * name order, so two batches adding the same names never wait on each other in
		 * a cycle. The rows are inserted by the next statements, which see those names.
		 */
		f = pg_exec_class(c,
		                  "INSERT INTO dns_names (name) SELECT x.name FROM ("
		                  "SELECT domain AS name FROM stage_domains"
		                  " UNION SELECT domain FROM stage_domain_mx"
		                  " UNION SELECT host FROM stage_domain_mx) x"
		                  " WHERE NOT EXISTS (SELECT 1 FROM dns_names n WHERE n.name = x.name)"
		                  " ORDER BY x.name ON CONFLICT (name) DO NOTHING",
		                  err, errlen);
		/*
		 * Each domain's MX list is a set stored once for all scans (mxs_mx_sets, migration
		 * 0018), found by its key: the SHA-256 of its hosts' rows as text in host id
		 * order (the migration's expression). Sets not stored yet are inserted in key
		 * order (two batches adding the same sets wait for each other, never in a cycle),
		 * with their rows; the domain rows, by the next statement, take the ids of every
		 * set, including those another batch committed meanwhile.
		 */
		if (f == PGF_OK)
			f = pg_exec_class(c,
			                  "WITH m AS MATERIALIZED ("
			                  "SELECT DISTINCT ON (s.domain, hn.id) s.domain, hn.id AS host_id,"
			                  " s.pref, s.cname, s.status, s.addrs, s.tlsa, s.tlsa_dnssec,"
			                  " s.tlsa_status"
			                  " FROM stage_domain_mx s JOIN dns_names hn ON hn.name = s.host"
			                  " ORDER BY s.domain, hn.id),"
			                  " k AS MATERIALIZED (SELECT m.domain, sha256(convert_to(string_agg("
			                  "ROW(m.host_id, m.pref, m.cname, m.status, m.addrs, m.tlsa,"
			                  " m.tlsa_dnssec, m.tlsa_status)::text, E'\\n' ORDER BY m.host_id),"
			                  " 'UTF8')) AS key FROM m GROUP BY m.domain),"
			                  " n AS (INSERT INTO mxs_mx_sets (key) SELECT DISTINCT k.key FROM k"
			                  " WHERE NOT EXISTS (SELECT 1 FROM mxs_mx_sets x WHERE x.key = k.key)"
			                  " ORDER BY k.key ON CONFLICT (key) DO NOTHING RETURNING id, key),"
			                  " r AS (INSERT INTO mxs_mx_set_rows (set_id, host_id, pref, cname,"
			                  " status, addrs, tlsa, tlsa_dnssec, tlsa_status)"
			                  " SELECT DISTINCT ON (n.id, m.host_id) n.id, m.host_id, m.pref,"
			                  " m.cname, m.status, m.addrs, m.tlsa, m.tlsa_dnssec, m.tlsa_status"
			                  " FROM n JOIN k ON k.key = n.key JOIN m ON m.domain = k.domain"
			                  " ORDER BY n.id, m.host_id)"
			                  " INSERT INTO stage_sets (domain, key) SELECT domain, key FROM k",
			                  err, errlen);
		if (f == PGF_OK &&
		    asprintf(&sql,
		             "WITH ins AS (INSERT INTO scan_domains (scan_id, domain_id, mx_set_id, %s)"
		             " SELECT DISTINCT ON (s.domain) s.scan_id, n.id, x.id, %s"
		             " FROM stage_domains s JOIN dns_names n ON n.name = s.domain"
		             " LEFT JOIN stage_sets k ON k.domain = s.domain"
		             " LEFT JOIN mxs_mx_sets x ON x.key = k.key"
		             " ORDER BY s.domain ON CONFLICT DO NOTHING RETURNING 1) "
		             "SELECT count(*) FROM ins",
		             rowconv_domains_rest, rowconv_domains_rest) < 0) {
			f = PGF_OTHER;
		} else if (f == PGF_OK) {
			vals[0] = 0;
			f = query_counts(c, sql, vals, 1, err, errlen);
			free(sql);
			k.domains_new = vals[0];
		}
	}
	if (f == PGF_OK)
		f = copy_if(c, "stage_names", rowconv_names_columns, &b->bufs.names, b->bufs.n_names,
		            err, errlen);
	if (f == PGF_OK && b->bufs.n_names > 0) {
		/*
		 * One verdict per name and address: a line read twice (resume, replay) adds
		 * nothing, but a verdict judged on a probe cut short ("interrupted") is replaced
		 * by the resumed run's, as a result row is.
		 */
		int interrupted = mxs_outcome_db_codes[MXS_OUT_INTERRUPTED];
		if (asprintf(&sql,
		             "INSERT INTO result_names AS n (%s) SELECT DISTINCT ON (scan_id, ip, port, name) %s "
		             "FROM stage_names ORDER BY scan_id, ip, port, name, outcome = %d "
		             "ON CONFLICT (scan_id, ip, port, name) DO UPDATE SET %s "
		             "WHERE n.outcome = %d AND excluded.outcome <> %d",
		             rowconv_names_columns, rowconv_names_columns, interrupted,
		             rowconv_names_update, interrupted, interrupted) < 0) {
			f = PGF_OTHER;
		} else {
			f = pg_exec_class(c, sql, err, errlen);
			free(sql);
		}
	}
	if (f == PGF_OK)
		f = copy_if(c, "stage_rejects", rowconv_rejects_columns, &b->bufs.rejects,
		            b->bufs.n_rejects, err, errlen);
	if (f == PGF_OK && b->bufs.n_rejects > 0)
		f = pg_exec_class(c,
		                  "INSERT INTO rejects (scan_id, sha256, raw, error) "
		                  "SELECT DISTINCT ON (sha256(raw)) scan_id, sha256(raw), raw, error "
		                  "FROM stage_rejects ON CONFLICT DO NOTHING",
		                  err, errlen);
	t2 = mxs_mono_ms();
	k.results = b->bufs.n_results;
	k.domains = b->bufs.n_domains;
	k.rejects = b->bufs.n_rejects;
	k.blank = b->bufs.n_blank;
	if (f == PGF_OK && async) {
		/* the caller overlaps the commit's WAL flush with its next batch */
		if (!PQsendQuery(c, "COMMIT")) {
			pg_errmsg(c, NULL, err, errlen);
			f = PGF_CONN;
		} else {
			b->commit_pending = 1;
			b->pending = k;
			mxs_debug("ingest", "batch scan=%" PRId64 " lines=%zu staging=%d results_ms=%" PRId64
			          " other_ms=%" PRId64 " commit=async", scan_id, to - from, b->staging,
			          t1 - t0, t2 - t1);
			return PGF_OK;
		}
	}
	if (f == PGF_OK)
		f = pg_exec_class(c, "COMMIT", err, errlen);
	mxs_debug("ingest", "batch scan=%" PRId64 " lines=%zu staging=%d class=%s results_ms=%" PRId64
	          " other_ms=%" PRId64 " commit_ms=%" PRId64, scan_id, to - from, b->staging,
	          pg_fail_names[f], t1 - t0, t2 - t1, mxs_mono_ms() - t2);
	if (f != PGF_OK) {
		char ignore[256];
		if (PQstatus(c) == CONNECTION_OK)
			pg_exec(c, "ROLLBACK", ignore, sizeof(ignore));
		/* certificates marked as sent in this transaction were not stored */
		rowconv_forget_sent(b->rc);
		return f;
	}
	batch_counts_add(out, &k);
	b->committed = 1;
	/* back to the fast path once a staged run found nothing already stored */
	if (b->staging && k.results_new == k.results)
		b->staging = 0;
	return PGF_OK;
}

int batcher_pending(const struct batcher *b)
{
	return b->commit_pending;
}

enum pg_fail batcher_commit_wait(struct batcher *b, PGconn *c, struct batch_counts *out,
                                 char *err, size_t errlen)
{
	enum pg_fail f;
	if (!b->commit_pending)
		return PGF_OK;
	b->commit_pending = 0;
	f = pg_drain_results(c, err, errlen);
	if (f != PGF_OK) {
		rowconv_forget_sent(b->rc);
		return f;
	}
	batch_counts_add(out, &b->pending);
	b->committed = 1;
	if (b->staging && b->pending.results_new == b->pending.results)
		b->staging = 0;
	return PGF_OK;
}

void batcher_share(struct batcher *from, struct batcher *to)
{
	if (from->committed && !from->commit_pending)
		rowconv_share(from->rc, to->rc);
	from->committed = 0;
}

/* Keep one line the server refused, with its message, in rejects. */
static enum pg_fail reject_line(PGconn *c, int64_t scan_id, const char *line, size_t len,
                                const char *why, struct batch_counts *out, char *err,
                                size_t errlen)
{
	char scan[32];
	char *hex = malloc(len * 2 + 3);
	if (hex == NULL) {
		snprintf(err, errlen, "out of memory");
		return PGF_OTHER;
	}
	static const char digits[] = "0123456789abcdef";
	hex[0] = '\\';
	hex[1] = 'x';
	for (size_t i = 0; i < len; i++) {
		hex[2 + 2 * i] = digits[(unsigned char)line[i] >> 4];
		hex[3 + 2 * i] = digits[(unsigned char)line[i] & 15];
	}
	hex[2 + 2 * len] = '\0';
	snprintf(scan, sizeof(scan), "%" PRId64, scan_id);
	const char *params[3] = { scan, hex, why };
	PGresult *r = PQexecParams(c,
	                           "INSERT INTO rejects (scan_id, sha256, raw, error) "
	                           "VALUES ($1, sha256($2::bytea), $2::bytea, $3) "
	                           "ON CONFLICT DO NOTHING",
	                           3, NULL, params, NULL, NULL, 0);
	free(hex);
	enum pg_fail f = pg_classify(c, r);
	if (f != PGF_OK)
		pg_errmsg(c, r, err, errlen);
	else
		out->rejects++;
	PQclear(r);
	return f;
}

enum pg_fail batcher_send(struct batcher *b, PGconn *c, int64_t scan_id, const struct linevec *v,
                          size_t from, size_t to, int async, struct batch_counts *out, char *err,
                          size_t errlen)
{
	if (from >= to)
		return PGF_OK;
	enum pg_fail f = batcher_commit_wait(b, c, out, err, errlen);
	if (f != PGF_OK)
		return f;
	f = try_send(b, c, scan_id, v, from, to, async, out, err, errlen);
	if (f == PGF_CONFLICT && !b->staging) {
		mxs_debug("ingest", "batch conflict scan=%" PRId64 " lines=%zu: staging", scan_id,
		          to - from);
		b->staging = 1;
		f = try_send(b, c, scan_id, v, from, to, async, out, err, errlen);
	}
	if (f != PGF_DATA)
		return f;
	if (to - from == 1) {
		size_t len;
		const char *line = linevec_line(v, from, &len);
		mxs_warn("ingest", "line refused scan=%" PRId64 " error=\"%s\"", scan_id, err);
		char why[512];
		snprintf(why, sizeof(why), "refused by the server: %s", err);
		return reject_line(c, scan_id, line, len, why, out, err, errlen);
	}
	size_t mid = from + (to - from) / 2;
	f = batcher_send(b, c, scan_id, v, from, mid, 0, out, err, errlen);
	if (f != PGF_OK)
		return f;
	return batcher_send(b, c, scan_id, v, mid, to, 0, out, err, errlen);
}
