-- The finish of a scan and the provider views at a million domains (issue 14: every view
-- under 2 s at 1,000,000 domains; docs/performance.md "The finish of a scan").

-- The rates of one scan. 0002's form read v_addr_bits once for the addresses and, through
-- v_pair_bits, once more for the MX level and once more for the domain level; each time
-- v_pair_bits joined v_mx_addrs (a DISTINCT over every name source) to the address masks
-- for all the scan's pairs. Here each part is computed once for the scan: the address
-- masks with the results columns the name verdicts need (ab), the (MX host, address)
-- pairs (ma), the per-pair masks (pb, v_pair_bits' expressions as they are), and the MX
-- and domain masks from pb. Same rows as before (ctest pg_views compares it with the
-- per-metric rows of v_addr_facts, v_mx_facts and v_domain_facts). Its hash tables (a
-- million domains' pairs) get 256 MB: with the default 4 MB they went to disk in batches.
CREATE OR REPLACE FUNCTION mxs_rates_live(p_scan bigint)
RETURNS TABLE (metric text, level text, rule text, bucket text, n_denom numeric, n numeric)
LANGUAGE plpgsql STABLE COST 1000000 ROWS 1000 SET jit = off SET work_mem = '256MB' AS $$
#variable_conflict use_column
BEGIN
	-- PL/pgSQL, not SQL: an SQL function would be inlined into every query of v_rates,
	-- whose plan (and JIT compilation) would then cost seconds even for stored scans
	RETURN QUERY
	WITH ab AS MATERIALIZED (
		-- the address masks, and the results columns v_pair_bits reads
		SELECT b.ip, b.port, b.denom, b.hit, rtrim(lower(r.mx), '.') AS mx, r.tls_name_match,
			r.tls_trusted, r.dane_tlsa, r.dane_dnssec, r.dane_match
		FROM v_addr_bits b
		JOIN results r ON r.scan_id = p_scan AND r.ip = b.ip AND r.port = b.port
		WHERE b.scan_id = p_scan
	), ma AS MATERIALIZED (
		SELECT m.host, m.ip FROM v_mx_addrs m WHERE m.scan_id = p_scan
	), pb AS MATERIALIZED (
		-- v_pair_bits for this scan: the same expressions
		SELECT m.host, m.ip,
			CASE WHEN NOT x.own THEN b.denom
			     ELSE (b.denom & ~x.k) | (x.k & (
			          CASE WHEN x.tls AND x.nm IS NOT NULL THEN (1::bigint << 14) | (1::bigint << 17) ELSE 0 END
			        | CASE WHEN x.tls AND x.dtlsa > 0 AND x.ddnssec THEN 1::bigint << 22 ELSE 0 END))
			END AS denom,
			CASE WHEN NOT x.own THEN b.hit
			     ELSE (b.hit & ~x.k) | (x.k & (
			          CASE WHEN x.tls AND x.trusted AND x.nm THEN 1::bigint << 14 ELSE 0 END
			        | CASE WHEN x.tls AND NOT x.nm THEN 1::bigint << 17 ELSE 0 END
			        | CASE WHEN x.tls AND x.dmatch THEN 1::bigint << 22 ELSE 0 END))
			END AS hit
		FROM ma m
		JOIN ab b ON b.ip = m.ip
		LEFT JOIN result_names n ON n.scan_id = p_scan AND n.ip = m.ip AND n.port = b.port
		                        AND n.name = m.host
		CROSS JOIN LATERAL (SELECT
			(1::bigint << 14) | (1::bigint << 17) | (1::bigint << 22) AS k,
			n.name IS NOT NULL OR m.host = b.mx AS own,
			(b.denom & (1::bigint << 4)) <> 0 AND (b.hit & (1::bigint << 4)) <> 0
			  AND (n.name IS NULL OR n.leaf_sha256 IS NOT NULL) AS tls,
			CASE WHEN n.name IS NOT NULL THEN n.name_match ELSE b.tls_name_match END AS nm,
			CASE WHEN n.name IS NOT NULL THEN n.trusted ELSE b.tls_trusted END AS trusted,
			CASE WHEN n.name IS NOT NULL THEN n.dane_tlsa ELSE b.dane_tlsa END AS dtlsa,
			CASE WHEN n.name IS NOT NULL THEN n.dane_dnssec ELSE b.dane_dnssec END AS ddnssec,
			CASE WHEN n.name IS NOT NULL THEN n.dane_match ELSE b.dane_match END AS dmatch) x
	), a AS (
		SELECT denom, hit, count(*) AS c FROM ab GROUP BY denom, hit
	), x AS (
		-- v_mx_bits: per MX host over its pairs
		SELECT y.denom, y.hit_any, y.hit_all, count(*) AS c
		FROM (SELECT bit_or(p.denom) AS denom, bit_or(p.denom & p.hit) AS hit_any,
		             bit_and(p.hit | ~p.denom) & bit_or(p.denom) AS hit_all
		        FROM pb p GROUP BY p.host) y
		GROUP BY y.denom, y.hit_any, y.hit_all
	), da AS (
		-- v_domain_addrs for this scan (by id: a domain's id stands for its name)
		SELECT m.domain_id, d.rank, rtrim(lower(hn.name), '.') AS host, m.is_primary, u.ip
		FROM (SELECT s.domain_id, s.host_id, s.addrs,
		             coalesce(s.pref, 0) = min(coalesce(s.pref, 0)) OVER (PARTITION BY s.domain_id)
		             AS is_primary
		        FROM scan_mx s WHERE s.scan_id = p_scan) m
		JOIN scan_domains d ON d.scan_id = p_scan AND d.domain_id = m.domain_id
		JOIN dns_names dn ON dn.id = m.domain_id
		JOIN dns_names hn ON hn.id = m.host_id
		CROSS JOIN LATERAL unnest(m.addrs) u(ip)
	), f AS (
		-- v_domain_bits for this scan
		SELECT da.rank,
			bit_or(b.denom) AS denom_any,
			bit_or(b.denom & b.hit) AS hit_any,
			bit_and(b.hit | ~b.denom) & bit_or(b.denom) AS hit_all,
			coalesce(bit_or(b.denom) FILTER (WHERE da.is_primary), 0) AS denom_primary,
			coalesce(bit_or(b.denom & b.hit) FILTER (WHERE da.is_primary), 0) AS hit_primary
		FROM da JOIN pb b ON b.ip = da.ip AND b.host = da.host
		GROUP BY da.domain_id, da.rank
	), caps AS (
		-- the rank buckets' bounds in order: a rank's smallest bucket holding it is the
		-- first bound not below it (width_bucket counts the bounds <= rank - 1)
		SELECT array_agg(b.max_rank::bigint ORDER BY b.max_rank) AS v
		FROM rank_buckets b WHERE b.max_rank IS NOT NULL
	), g AS (
		-- domains by mask pattern and by the smallest rank bucket holding them (cap:
		-- rank <= a bucket's max_rank exactly when cap <= it; NULL: only in 'all')
		SELECT f.denom_any, f.hit_any, f.hit_all, f.denom_primary, f.hit_primary,
			caps.v[width_bucket(f.rank::bigint - 1, caps.v) + 1] AS cap,
			count(*) AS c, sum(1.0 / f.rank) FILTER (WHERE f.rank > 0) AS w
		FROM f CROSS JOIN caps
		GROUP BY f.denom_any, f.hit_any, f.hit_all, f.denom_primary, f.hit_primary, 6
	), d AS (
		SELECT b.bucket, r.rule, r.denom, r.hit, sum(g.c) AS c, sum(g.w) AS w
		FROM g
		CROSS JOIN LATERAL mxs_domain_rules(g.denom_any, g.hit_any, g.hit_all, g.denom_primary,
		                                    g.hit_primary) r
		JOIN rank_buckets b ON b.max_rank IS NULL OR g.cap <= b.max_rank
		GROUP BY b.bucket, r.rule, r.denom, r.hit
	), dm AS (
		SELECT m.metric, d.rule, d.bucket,
			coalesce(sum(d.c) FILTER (WHERE (d.denom & k.k) <> 0), 0) AS c_denom,
			coalesce(sum(d.c) FILTER (WHERE (d.denom & d.hit & k.k) <> 0), 0) AS c_hit,
			coalesce(sum(d.w) FILTER (WHERE (d.denom & k.k) <> 0), 0) AS w_denom,
			coalesce(sum(d.w) FILTER (WHERE (d.denom & d.hit & k.k) <> 0), 0) AS w_hit
		FROM d CROSS JOIN metrics m CROSS JOIN LATERAL (SELECT 1::bigint << m.bit) k(k)
		GROUP BY m.metric, d.rule, d.bucket
	)
	SELECT m.metric, 'address'::text, '-'::text, 'all'::text,
		coalesce(sum(a.c) FILTER (WHERE (a.denom & k.k) <> 0), 0),
		coalesce(sum(a.c) FILTER (WHERE (a.denom & a.hit & k.k) <> 0), 0)
	FROM a CROSS JOIN metrics m CROSS JOIN LATERAL (SELECT 1::bigint << m.bit) k(k)
	GROUP BY m.metric
	UNION ALL
	SELECT m.metric, 'mx', r.rule, 'all',
		coalesce(sum(x.c) FILTER (WHERE (x.denom & k.k) <> 0), 0),
		coalesce(sum(x.c) FILTER (WHERE (r.hit & k.k) <> 0), 0)
	FROM x CROSS JOIN LATERAL (VALUES ('any', x.hit_any), ('all', x.hit_all)) r(rule, hit)
	CROSS JOIN metrics m CROSS JOIN LATERAL (SELECT 1::bigint << m.bit) k(k)
	GROUP BY m.metric, r.rule
	UNION ALL
	SELECT dm.metric, l.level, dm.rule, dm.bucket, l.n_denom, l.n
	FROM dm CROSS JOIN LATERAL (VALUES ('domain', dm.c_denom, dm.c_hit),
	                                   ('domain_w', dm.w_denom, dm.w_hit)) l(level, n_denom, n);
END $$;

-- Providers (v_provider_concentration: 2.9 s at 100,000 domains, ~9 s at 1M). A provider
-- is the registered domain of a domain's primary MX host under the public suffixes loaded
-- when it is read, so it cannot be stored with a scan; two parts of it can:
--   mxs_host_providers  the registered domain of an MX host name (a dns_names row) under
--                       the suffixes as they are now: filled for the primary hosts of a
--                       scan when it is rolled up, and computed again, all of it, in the
--                       transaction that changes public_suffixes (a trigger), so a stored
--                       provider is always the one mxs_registered_domain() gives;
--   scan_provider_hosts the domains of a rolled-up scan per primary MX host (which host is
--                       primary does not depend on the suffixes).
-- v_provider_concentration then adds up a few rows per host instead of choosing the
-- primary host of every domain and computing its registered domain; v_domain_provider
-- reads the stored registered domain where there is one. A host without one (a scan not
-- rolled up yet) is computed as before.
CREATE TABLE mxs_host_providers (
	host_id  integer PRIMARY KEY,   -- dns_names.id
	provider text                   -- mxs_registered_domain(dns_names.name)
);

ALTER TABLE scan_rollups ADD COLUMN provider_rows boolean NOT NULL DEFAULT false;

CREATE TABLE scan_provider_hosts (
	scan_id bigint NOT NULL REFERENCES scan_rollups (scan_id) ON DELETE CASCADE,
	host_id integer NOT NULL,       -- dns_names.id: the primary MX host chosen for n domains
	n       bigint NOT NULL,
	PRIMARY KEY (scan_id, host_id)
);

-- The domains of a scan per primary MX host, as v_domain_provider chooses it (lowest
-- preference, then the first host by name; hosts that tie on the name give the same
-- provider).
CREATE FUNCTION mxs_provider_hosts_live(p_scan bigint)
RETURNS TABLE (host_id integer, n bigint)
LANGUAGE plpgsql STABLE COST 1000000 ROWS 1000 SET jit = off AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	SELECT p.host_id, count(*)
	FROM (SELECT DISTINCT ON (m.domain_id) m.domain_id, m.host_id
	        FROM scan_mx m JOIN dns_names hn ON hn.id = m.host_id
	       WHERE m.scan_id = p_scan
	       ORDER BY m.domain_id, coalesce(m.pref, 0), rtrim(lower(hn.name), '.')) p
	JOIN dns_names dn ON dn.id = p.domain_id
	GROUP BY p.host_id;
END $$;

-- Store the registered domains of these hosts (dns_names ids), as mxs_registered_domain()
-- gives them, for all at once: the longest rule each host's labels match, found by one
-- pass over (host, number of labels) against the suffixes in memory (per host the
-- function takes ~3 index probes, 37 us; this ~16 us at 100,000 domains).
CREATE FUNCTION mxs_store_host_providers(p_hosts integer[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO mxs_host_providers AS c (host_id, provider)
	WITH h AS (
		SELECT n.id, string_to_array(rtrim(lower(n.name), '.'), '.') AS lab
		FROM unnest(p_hosts) u(id) JOIN dns_names n ON n.id = u.id
	), m AS (
		-- the longest suffix rule (k labels) matched: what the function's loop finds first
		SELECT h.id, max(k.k) AS k
		FROM h CROSS JOIN LATERAL generate_series(2, cardinality(h.lab) - 1) k(k)
		CROSS JOIN LATERAL (SELECT
			array_to_string(h.lab[cardinality(h.lab) - k.k + 1 : cardinality(h.lab)], '.') AS cand,
			'*.' || array_to_string(h.lab[cardinality(h.lab) - k.k + 2 : cardinality(h.lab)], '.') AS wild) s
		WHERE s.cand IN (SELECT suffix FROM public_suffixes)
		   OR (s.wild IN (SELECT suffix FROM public_suffixes)
		       AND ('!' || s.cand) NOT IN (SELECT suffix FROM public_suffixes))
		GROUP BY h.id
	)
	SELECT h.id, array_to_string(h.lab[cardinality(h.lab) - coalesce(m.k, 1) : cardinality(h.lab)], '.')
	FROM h LEFT JOIN m ON m.id = h.id
	ON CONFLICT (host_id) DO UPDATE SET provider = EXCLUDED.provider
	WHERE c.provider IS DISTINCT FROM EXCLUDED.provider;
END $$;

-- Every stored registered domain again, under the suffixes as they are at the end of the
-- statement that changed them.
CREATE FUNCTION mxs_suffixes_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM mxs_store_host_providers(array_agg(c.host_id)) FROM mxs_host_providers c;
	RETURN NULL;
END $$;
CREATE TRIGGER public_suffixes_providers AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON public_suffixes FOR EACH STATEMENT EXECUTE FUNCTION mxs_suffixes_changed();

CREATE OR REPLACE VIEW v_domain_provider AS
SELECT p.scan_id, dn.name AS domain, p.host,
	CASE WHEN c.host_id IS NOT NULL THEN c.provider ELSE mxs_registered_domain(p.host) END AS provider
FROM (SELECT DISTINCT ON (m.scan_id, m.domain_id) m.scan_id, m.domain_id, m.host_id,
             rtrim(lower(hn.name), '.') AS host
        FROM scan_mx m JOIN dns_names hn ON hn.id = m.host_id
       ORDER BY m.scan_id, m.domain_id, coalesce(m.pref, 0), rtrim(lower(hn.name), '.')) p
JOIN dns_names dn ON dn.id = p.domain_id
LEFT JOIN mxs_host_providers c ON c.host_id = p.host_id;

CREATE OR REPLACE VIEW v_provider_concentration AS
WITH x AS (
	-- domains per primary MX host: stored for rolled-up scans, computed for the others
	-- (those first, so the function runs only for them)
	SELECT h.scan_id, h.host_id, h.n FROM scan_provider_hosts h
	UNION ALL
	SELECT s.id, l.host_id, l.n
	FROM (SELECT s.id FROM scans s
	       WHERE NOT EXISTS (SELECT 1 FROM scan_rollups u WHERE u.scan_id = s.id AND u.provider_rows)
	      OFFSET 0) s
	CROSS JOIN LATERAL mxs_provider_hosts_live(s.id) l
), y AS (
	-- the host's stored registered domain, or computed when it has none
	SELECT x.scan_id,
		CASE WHEN c.host_id IS NOT NULL THEN c.provider
		     ELSE (SELECT mxs_registered_domain(n.name) FROM dns_names n WHERE n.id = x.host_id) END
		AS provider, x.n
	FROM x LEFT JOIN mxs_host_providers c ON c.host_id = x.host_id
)
SELECT scan_id, provider, n, n_denom, pct,
	rank() OVER (PARTITION BY scan_id ORDER BY n DESC) AS provider_rank,
	round(100.0 * sum(n) OVER (PARTITION BY scan_id ORDER BY n DESC, provider
	                           ROWS UNBOUNDED PRECEDING) / n_denom, 2) AS cumulative_pct
FROM (
	SELECT scan_id, provider, sum(y.n)::bigint AS n,
		sum(sum(y.n)::bigint) OVER (PARTITION BY scan_id) AS n_denom,
		round(100.0 * sum(y.n)::bigint / sum(sum(y.n)::bigint) OVER (PARTITION BY scan_id), 2) AS pct
	FROM y GROUP BY scan_id, provider
) p;

-- Downgrade protection and TLSRPT per rank bucket: the domains counted by (smallest rank
-- bucket holding them, class) first, a few rows, then spread over the buckets (as the
-- rates do), instead of joining every domain to every bucket it falls in: 6.2 -> 2.2 s
-- at 100,000 domains (load 7), the same rows.
CREATE OR REPLACE FUNCTION mxs_downgrade_live(p_scan bigint)
RETURNS TABLE (bucket text, protection text, n bigint, n_denom bigint)
LANGUAGE plpgsql STABLE COST 1000000 ROWS 30 SET jit = off AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	WITH caps AS (
		SELECT array_agg(b.max_rank::bigint ORDER BY b.max_rank) AS v
		FROM rank_buckets b WHERE b.max_rank IS NOT NULL
	), g AS (
		SELECT caps.v[width_bucket(p.rank::bigint - 1, caps.v) + 1] AS cap, p.protection AS prot,
			count(p.domain) AS c
		FROM v_domain_policy p CROSS JOIN caps
		WHERE p.scan_id = p_scan
		GROUP BY 1, 2
	)
	SELECT b.bucket, c.protection, coalesce(sum(g.c) FILTER (WHERE g.prot = c.protection), 0)::bigint,
		sum(g.c)::bigint
	FROM g
	JOIN rank_buckets b ON b.max_rank IS NULL OR g.cap <= b.max_rank
	CROSS JOIN (VALUES ('dane'), ('mta-sts-enforce'), ('mta-sts-enforce-mismatch'), ('mta-sts-testing'),
	                   ('none')) c(protection)
	GROUP BY b.bucket, c.protection;
END $$;

CREATE OR REPLACE FUNCTION mxs_tlsrpt_live(p_scan bigint)
RETURNS TABLE (bucket text, n bigint, n_denom bigint)
LANGUAGE plpgsql STABLE COST 1000000 ROWS 6 SET jit = off AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	WITH caps AS (
		SELECT array_agg(b.max_rank::bigint ORDER BY b.max_rank) AS v
		FROM rank_buckets b WHERE b.max_rank IS NOT NULL
	), g AS (
		SELECT caps.v[width_bucket(p.rank::bigint - 1, caps.v) + 1] AS cap,
			count(*) FILTER (WHERE p.tlsrpt) AS t, count(*) AS c
		FROM v_domain_policy p CROSS JOIN caps
		WHERE p.scan_id = p_scan
		GROUP BY 1
	)
	SELECT b.bucket, sum(g.t)::bigint, sum(g.c)::bigint
	FROM g JOIN rank_buckets b ON b.max_rank IS NULL OR g.cap <= b.max_rank
	GROUP BY b.bucket;
END $$;

-- One step of mxs_rollup done: its time to the server log; returns now.
CREATE FUNCTION mxs_rollup_step(p_scan bigint, p_step text, p_since timestamptz)
RETURNS timestamptz LANGUAGE plpgsql AS $$
DECLARE
	n timestamptz := clock_timestamp();
BEGIN
	RAISE LOG 'mxs_rollup scan=% step=% ms=%', p_scan, p_step,
		round(extract(epoch FROM n - p_since) * 1000);
	RETURN n;
END $$;

-- The rollup stores the primary hosts' domain counts too, and the registered domains of
-- those hosts not stored yet. Each step's time goes to the server log (LOG level, not
-- sent to the client: "mxs_rollup scan=N step=S ms=T").
CREATE OR REPLACE FUNCTION mxs_rollup(p_scan bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	IF NOT EXISTS (SELECT 1 FROM scans WHERE id = p_scan) THEN
		RAISE EXCEPTION 'no scan %', p_scan;
	END IF;
	-- 28025: this function's key; every ingest batch of the scan takes it shared, so the
	-- rates are computed from rows that no open batch is still adding to
	PERFORM pg_advisory_xact_lock(28025, p_scan::integer);
	DELETE FROM scan_rollups WHERE scan_id = p_scan;
	CREATE TEMP TABLE mxs_rollup_tls ON COMMIT DROP AS SELECT * FROM mxs_tls_versions_live(p_scan);
	t0 := mxs_rollup_step(p_scan, 'tls_versions', t0);
	-- (the insert also stores the network figures: trigger scan_rollups_networks, 0014)
	INSERT INTO scan_rollups (scan_id, results, tls13_pct, domain_rows, provider_rows)
	SELECT p_scan, (SELECT count(*) FROM results WHERE scan_id = p_scan),
		(SELECT round(100.0 * sum(t.n) FILTER (WHERE v.name = 'TLSv1.3') / sum(t.n), 2)
		   FROM mxs_rollup_tls t LEFT JOIN tls_version_names v ON v.code = t.code
		  WHERE t.level = 'address'
		 HAVING count(*) FILTER (WHERE v.name = 'TLSv1.3') > 0), true, true;
	t0 := mxs_rollup_step(p_scan, 'rollup_row_and_networks', t0);
	INSERT INTO scan_rates (scan_id, metric, level, rule, bucket, n_denom, n)
	SELECT p_scan, l.metric, l.level, l.rule, l.bucket, l.n_denom, l.n FROM mxs_rates_live(p_scan) l;
	t0 := mxs_rollup_step(p_scan, 'rates', t0);
	INSERT INTO scan_tls_versions (scan_id, level, code, n)
	SELECT p_scan, t.level, t.code, t.n FROM mxs_rollup_tls t;
	INSERT INTO scan_mail_domains (scan_id, bucket, n_domains, n_with_mx, n_reachable)
	SELECT p_scan, l.bucket, l.n_domains, l.n_with_mx, l.n_reachable FROM mxs_mail_domains_live(p_scan) l;
	t0 := mxs_rollup_step(p_scan, 'mail_domains', t0);
	INSERT INTO scan_downgrade (scan_id, bucket, protection, n, n_denom)
	SELECT p_scan, l.bucket, l.protection, l.n, l.n_denom FROM mxs_downgrade_live(p_scan) l;
	t0 := mxs_rollup_step(p_scan, 'downgrade', t0);
	INSERT INTO scan_tlsrpt (scan_id, bucket, n, n_denom)
	SELECT p_scan, l.bucket, l.n, l.n_denom FROM mxs_tlsrpt_live(p_scan) l;
	t0 := mxs_rollup_step(p_scan, 'tlsrpt', t0);
	INSERT INTO scan_provider_hosts (scan_id, host_id, n)
	SELECT p_scan, l.host_id, l.n FROM mxs_provider_hosts_live(p_scan) l;
	-- the suffixes stay as they are until this transaction ends (a change waits, then
	-- its trigger computes these rows again)
	LOCK TABLE public_suffixes IN SHARE MODE;
	PERFORM mxs_store_host_providers(array_agg(h.host_id))
	FROM scan_provider_hosts h
	WHERE h.scan_id = p_scan
	  AND NOT EXISTS (SELECT 1 FROM mxs_host_providers c WHERE c.host_id = h.host_id);
	t0 := mxs_rollup_step(p_scan, 'providers', t0);
	DROP TABLE pg_temp.mxs_rollup_tls;
END $$;
