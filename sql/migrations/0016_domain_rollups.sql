-- The domain-side statistics of a finished scan, stored when it finishes (issue 14: every
-- view under 2 s at 1,000,000 domains). v_mail_domains (26 s at 1M), v_tls_versions (8 s),
-- v_downgrade_protection and v_tlsrpt (the report's protection section, 5 s) computed
-- their rows from every domain, MX host and address of the scan on every query. (Not
-- v_provider_concentration: a provider is a host's registered domain under the public
-- suffixes loaded when the view is read, which `mxsurvey db suffixes` changes.) Now mxs_rollup stores them with the rates, and the views read
-- the stored rows for a rolled-up scan and compute them (mxs_*_live, the same queries as
-- before) for the others, as v_rates does. Writing into a scan deletes its rollup (ingest),
-- and with it these rows. Scans rolled up before this version keep computing them until
-- `mxsurvey db rollup N` (nothing is recomputed here: a year of nightly scans would take
-- hours).

-- Mail domains per rank bucket.
CREATE FUNCTION mxs_mail_domains_live(p_scan bigint)
RETURNS TABLE (bucket text, n_domains bigint, n_with_mx bigint, n_reachable bigint)
LANGUAGE plpgsql STABLE COST 1000000 ROWS 6 SET jit = off AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	SELECT b.bucket, count(*), count(*) FILTER (WHERE f.domain_id IS NOT NULL),
		count(*) FILTER (WHERE f.reachable)
	FROM scan_domains d
	LEFT JOIN (SELECT m.domain_id, bool_or(a.ehlo_ok) AS reachable
		FROM scan_mx m
		LEFT JOIN LATERAL unnest(m.addrs) u(ip) ON true
		LEFT JOIN (SELECT DISTINCT ip, true AS ehlo_ok FROM v_addr WHERE scan_id = p_scan AND ehlo_ok) a
		  ON a.ip = u.ip
		WHERE m.scan_id = p_scan
		GROUP BY m.domain_id) f ON f.domain_id = d.domain_id
	JOIN rank_buckets b ON b.max_rank IS NULL OR d.rank <= b.max_rank
	WHERE d.scan_id = p_scan
	GROUP BY b.bucket;
END $$;

-- TLS versions per level (address, mx, domain) and version code.
CREATE FUNCTION mxs_tls_versions_live(p_scan bigint)
RETURNS TABLE (level text, code smallint, n bigint)
LANGUAGE plpgsql STABLE COST 1000000 ROWS 20 SET jit = off AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	WITH a AS MATERIALIZED (
		SELECT ip, tls_version_code AS code FROM v_addr WHERE scan_id = p_scan AND tls_ok
	), best_mx AS (
		SELECT m.host, max(a.code) AS code
		FROM v_mx_addrs m JOIN a ON a.ip = m.ip
		WHERE m.scan_id = p_scan GROUP BY m.host
	), best_dom AS (
		SELECT m.domain_id, max(a.code) AS code
		FROM scan_mx m
		JOIN scan_domains d ON d.scan_id = m.scan_id AND d.domain_id = m.domain_id
		CROSS JOIN LATERAL unnest(m.addrs) u(ip)
		JOIN a ON a.ip = u.ip
		WHERE m.scan_id = p_scan GROUP BY m.domain_id
	), x AS (
		SELECT 'address'::text AS level, a.code FROM a
		UNION ALL SELECT 'mx', code FROM best_mx
		UNION ALL SELECT 'domain', code FROM best_dom
	)
	SELECT x.level, x.code, count(*) FROM x GROUP BY x.level, x.code;
END $$;

-- Downgrade protection and TLSRPT per rank bucket (over v_domain_policy).
CREATE FUNCTION mxs_downgrade_live(p_scan bigint)
RETURNS TABLE (bucket text, protection text, n bigint, n_denom bigint)
LANGUAGE plpgsql STABLE COST 1000000 ROWS 30 SET jit = off AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	SELECT b.bucket, c.protection, count(p.domain) FILTER (WHERE p.protection = c.protection),
		count(p.domain)
	FROM v_domain_policy p
	JOIN rank_buckets b ON b.max_rank IS NULL OR p.rank <= b.max_rank
	CROSS JOIN (VALUES ('dane'), ('mta-sts-enforce'), ('mta-sts-enforce-mismatch'), ('mta-sts-testing'),
	                   ('none')) c(protection)
	WHERE p.scan_id = p_scan
	GROUP BY b.bucket, c.protection;
END $$;

CREATE FUNCTION mxs_tlsrpt_live(p_scan bigint)
RETURNS TABLE (bucket text, n bigint, n_denom bigint)
LANGUAGE plpgsql STABLE COST 1000000 ROWS 6 SET jit = off AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	SELECT b.bucket, count(*) FILTER (WHERE p.tlsrpt), count(*)
	FROM v_domain_policy p
	JOIN rank_buckets b ON b.max_rank IS NULL OR p.rank <= b.max_rank
	WHERE p.scan_id = p_scan
	GROUP BY b.bucket;
END $$;

-- Rollups stored before this version have none of these rows (their views compute them,
-- as before, until `mxsurvey db rollup N`): only rollups with domain_rows have them.
ALTER TABLE scan_rollups ADD COLUMN domain_rows boolean NOT NULL DEFAULT false;

CREATE TABLE scan_mail_domains (
	scan_id     bigint NOT NULL REFERENCES scan_rollups (scan_id) ON DELETE CASCADE,
	bucket      text NOT NULL,
	n_domains   bigint NOT NULL,
	n_with_mx   bigint NOT NULL,
	n_reachable bigint NOT NULL,
	PRIMARY KEY (scan_id, bucket)
);
CREATE TABLE scan_tls_versions (
	scan_id bigint NOT NULL REFERENCES scan_rollups (scan_id) ON DELETE CASCADE,
	level   text NOT NULL,
	code    smallint,
	n       bigint NOT NULL
);
CREATE INDEX ON scan_tls_versions (scan_id);
CREATE TABLE scan_downgrade (
	scan_id    bigint NOT NULL REFERENCES scan_rollups (scan_id) ON DELETE CASCADE,
	bucket     text NOT NULL,
	protection text NOT NULL,
	n          bigint NOT NULL,
	n_denom    bigint NOT NULL,
	PRIMARY KEY (scan_id, bucket, protection)
);
CREATE TABLE scan_tlsrpt (
	scan_id bigint NOT NULL REFERENCES scan_rollups (scan_id) ON DELETE CASCADE,
	bucket  text NOT NULL,
	n       bigint NOT NULL,
	n_denom bigint NOT NULL,
	PRIMARY KEY (scan_id, bucket)
);
-- Each view: the stored rows of rolled-up scans, computed rows for the others (those
-- first, so the function runs only for them), the same columns as before.
CREATE OR REPLACE VIEW v_mail_domains AS
WITH x AS (
	SELECT m.scan_id, m.bucket, m.n_domains, m.n_with_mx, m.n_reachable FROM scan_mail_domains m
	UNION ALL
	SELECT s.id, l.bucket, l.n_domains, l.n_with_mx, l.n_reachable
	FROM (SELECT s.id FROM scans s
	       WHERE NOT EXISTS (SELECT 1 FROM scan_rollups u WHERE u.scan_id = s.id AND u.domain_rows)
	      OFFSET 0) s
	CROSS JOIN LATERAL mxs_mail_domains_live(s.id) l
)
SELECT x.scan_id, x.bucket, x.n_domains, x.n_with_mx, x.n_reachable,
	CASE WHEN x.n_domains > 0 THEN round(100.0 * x.n_reachable / x.n_domains, 2) END AS pct_reachable
FROM x;

CREATE OR REPLACE VIEW v_tls_versions AS
WITH x AS (
	SELECT t.scan_id, t.level, t.code, t.n FROM scan_tls_versions t
	UNION ALL
	SELECT s.id, l.level, l.code, l.n
	FROM (SELECT s.id FROM scans s
	       WHERE NOT EXISTS (SELECT 1 FROM scan_rollups u WHERE u.scan_id = s.id AND u.domain_rows)
	      OFFSET 0) s
	CROSS JOIN LATERAL mxs_tls_versions_live(s.id) l
)
SELECT x.scan_id, x.level, coalesce(t.name, 'unknown') AS version, x.n,
	sum(x.n) OVER (PARTITION BY x.scan_id, x.level) AS n_denom,
	round(100.0 * x.n / sum(x.n) OVER (PARTITION BY x.scan_id, x.level), 2) AS pct
FROM x LEFT JOIN tls_version_names t ON t.code = x.code;

CREATE OR REPLACE VIEW v_downgrade_protection AS
WITH x AS (
	SELECT g.scan_id, g.bucket, g.protection, g.n, g.n_denom FROM scan_downgrade g
	UNION ALL
	SELECT s.id, l.bucket, l.protection, l.n, l.n_denom
	FROM (SELECT s.id FROM scans s
	       WHERE NOT EXISTS (SELECT 1 FROM scan_rollups u WHERE u.scan_id = s.id AND u.domain_rows)
	      OFFSET 0) s
	CROSS JOIN LATERAL mxs_downgrade_live(s.id) l
)
SELECT x.scan_id, x.bucket, x.protection, x.n, x.n_denom,
	CASE WHEN x.n_denom > 0 THEN round(100.0 * x.n / x.n_denom, 2) END AS pct
FROM x;

CREATE OR REPLACE VIEW v_tlsrpt AS
WITH x AS (
	SELECT t.scan_id, t.bucket, t.n, t.n_denom FROM scan_tlsrpt t
	UNION ALL
	SELECT s.id, l.bucket, l.n, l.n_denom
	FROM (SELECT s.id FROM scans s
	       WHERE NOT EXISTS (SELECT 1 FROM scan_rollups u WHERE u.scan_id = s.id AND u.domain_rows)
	      OFFSET 0) s
	CROSS JOIN LATERAL mxs_tlsrpt_live(s.id) l
)
SELECT x.scan_id, x.bucket, x.n, x.n_denom, round(100.0 * x.n / x.n_denom, 2) AS pct
FROM x;

-- The rollup stores these with the rates.
CREATE OR REPLACE FUNCTION mxs_rollup(p_scan bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM scans WHERE id = p_scan) THEN
		RAISE EXCEPTION 'no scan %', p_scan;
	END IF;
	-- 28025: this function's key; every ingest batch of the scan takes it shared, so the
	-- rates are computed from rows that no open batch is still adding to
	PERFORM pg_advisory_xact_lock(28025, p_scan::integer);
	DELETE FROM scan_rollups WHERE scan_id = p_scan;
	CREATE TEMP TABLE mxs_rollup_tls ON COMMIT DROP AS SELECT * FROM mxs_tls_versions_live(p_scan);
	INSERT INTO scan_rollups (scan_id, results, tls13_pct, domain_rows)
	SELECT p_scan, (SELECT count(*) FROM results WHERE scan_id = p_scan),
		(SELECT round(100.0 * sum(t.n) FILTER (WHERE v.name = 'TLSv1.3') / sum(t.n), 2)
		   FROM mxs_rollup_tls t LEFT JOIN tls_version_names v ON v.code = t.code
		  WHERE t.level = 'address'
		 HAVING count(*) FILTER (WHERE v.name = 'TLSv1.3') > 0), true;
	INSERT INTO scan_rates (scan_id, metric, level, rule, bucket, n_denom, n)
	SELECT p_scan, l.metric, l.level, l.rule, l.bucket, l.n_denom, l.n FROM mxs_rates_live(p_scan) l;
	INSERT INTO scan_tls_versions (scan_id, level, code, n)
	SELECT p_scan, t.level, t.code, t.n FROM mxs_rollup_tls t;
	INSERT INTO scan_mail_domains (scan_id, bucket, n_domains, n_with_mx, n_reachable)
	SELECT p_scan, l.bucket, l.n_domains, l.n_with_mx, l.n_reachable FROM mxs_mail_domains_live(p_scan) l;
	INSERT INTO scan_downgrade (scan_id, bucket, protection, n, n_denom)
	SELECT p_scan, l.bucket, l.protection, l.n, l.n_denom FROM mxs_downgrade_live(p_scan) l;
	INSERT INTO scan_tlsrpt (scan_id, bucket, n, n_denom)
	SELECT p_scan, l.bucket, l.n, l.n_denom FROM mxs_tlsrpt_live(p_scan) l;
	DROP TABLE pg_temp.mxs_rollup_tls;
END $$;
