-- The network views at a million domains (issue 14, docs/performance.md "Views at
-- 1,000,000 domains"): the network of each address by one sort instead of a probe per
-- address, and the per-network figures of a finished scan stored when it is rolled up.

-- v_addr_network: 0013's lookup probed network_ranges twice per address (the range with
-- the greatest first address not above it). PostgreSQL puts a Memoize node in front of
-- each probe, keyed on the address; every address is distinct, so every row is a miss
-- and an eviction: 81.6 s for 2 x 100,000 addresses (8.0 s with enable_memoize off).
-- Here the addresses of each scan and the ranges of its set are sorted together once
-- (a range before an address equal to its first address); the range of an address is
-- then the latest range start seen (a running max), joined back on the range's key, and
-- kept when the address is not past its end: the same range as the probe's. 1.5 s for
-- the same 200,000 rows, identical rows.
CREATE OR REPLACE VIEW v_addr_network AS
SELECT y.scan_id, y.ip, y.port, y.set_id,
	coalesce(n.name, rt.name) AS network, coalesce(n.prefix, rt.prefix) AS prefix,
	n.contact, rt.asn
FROM (
	SELECT u.scan_id, u.ip, u.port, u.set_id, u.kind,
		max(u.ip) FILTER (WHERE u.kind = 'named') OVER w AS named_lo,
		max(u.ip) FILTER (WHERE u.kind = 'route') OVER w AS route_lo
	FROM (
		SELECT r.scan_id, r.ip, r.port, s.network_set_id AS set_id, NULL::text AS kind
		FROM results r JOIN scans s ON s.id = r.scan_id
		UNION ALL
		SELECT s.id, x.lo, NULL, s.network_set_id, x.kind
		FROM scans s JOIN network_ranges x ON x.set_id = s.network_set_id
	) u
	WINDOW w AS (PARTITION BY u.scan_id ORDER BY u.ip, u.kind IS NULL ROWS UNBOUNDED PRECEDING)
) y
LEFT JOIN network_ranges n ON n.set_id = y.set_id AND n.kind = 'named' AND n.lo = y.named_lo
	AND n.hi >= y.ip
LEFT JOIN network_ranges rt ON rt.set_id = y.set_id AND rt.kind = 'route' AND rt.lo = y.route_lo
	AND rt.hi >= y.ip
WHERE y.kind IS NULL;

-- Per-network figures of a scan, computed (what v_network_findings and
-- v_tampering_by_network were): PL/pgSQL, so that the query is planned for one scan and
-- never inlined into a query that reads the stored rows.
CREATE FUNCTION mxs_network_findings_live(p_scan bigint)
RETURNS TABLE (network text, contact text, addresses bigint, with_problems bigint,
               critical bigint, high bigint, medium bigint, problems bigint)
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN QUERY
	SELECT coalesce(n.network, '(no network)'), min(n.contact), count(*),
		count(*) FILTER (WHERE f.n > 0),
		coalesce(sum(f.n1), 0)::bigint, coalesce(sum(f.n2), 0)::bigint,
		coalesce(sum(f.n3), 0)::bigint, coalesce(sum(f.n), 0)::bigint
	FROM v_addr_network n
	LEFT JOIN (SELECT x.ip, x.port, count(*) AS n,
		count(*) FILTER (WHERE x.severity = 1) AS n1, count(*) FILTER (WHERE x.severity = 2) AS n2,
		count(*) FILTER (WHERE x.severity = 3) AS n3
		FROM v_findings x WHERE x.scan_id = p_scan GROUP BY x.ip, x.port) f
		ON f.ip = n.ip AND f.port = n.port
	WHERE n.scan_id = p_scan
	GROUP BY coalesce(n.network, '(no network)');
END $$;
ALTER FUNCTION mxs_network_findings_live(bigint) SET jit = off;

CREATE FUNCTION mxs_tampering_by_network_live(p_scan bigint)
RETURNS TABLE (network cidr, n_smtp bigint, n_mangled bigint, n_echo bigint,
               n_injection bigint, n_any bigint)
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN QUERY
	SELECT a.network, count(*) FILTER (WHERE a.ehlo_ok),
		count(*) FILTER (WHERE a.tamper_mangled_starttls IS NOT NULL),
		count(*) FILTER (WHERE a.tamper_starttls_echo),
		count(*) FILTER (WHERE a.tamper_plaintext_after_starttls > 0),
		count(*) FILTER (WHERE a.tamper_mangled_starttls IS NOT NULL OR a.tamper_starttls_echo
		                 OR a.tamper_plaintext_after_starttls > 0)
	FROM v_addr a
	WHERE a.scan_id = p_scan
	GROUP BY a.network
	HAVING count(*) FILTER (WHERE a.tamper_mangled_starttls IS NOT NULL OR a.tamper_starttls_echo
	                        OR a.tamper_plaintext_after_starttls > 0) > 0;
END $$;
ALTER FUNCTION mxs_tampering_by_network_live(bigint) SET jit = off;

-- Stored when a scan is rolled up (a row in scan_rollups: mxs_rollup, at the end of a
-- scan), gone with the rollup (writing the scan's rows through mxsurvey deletes it).
-- set_id: the network set the figures were grouped by; they are used while the scan
-- still has that set and its networks have not changed since (loading or editing a
-- set's networks deletes the stored figures of the scans using it). Scans without
-- stored figures (running, rolled up before this version, set changed) are computed.
CREATE TABLE scan_network_rollups (
	scan_id bigint PRIMARY KEY REFERENCES scan_rollups (scan_id) ON DELETE CASCADE,
	set_id  bigint
);
CREATE TABLE scan_network_findings (
	scan_id       bigint NOT NULL REFERENCES scan_network_rollups (scan_id) ON DELETE CASCADE,
	network       text NOT NULL,
	contact       text,
	addresses     bigint NOT NULL,
	with_problems bigint NOT NULL,
	critical      bigint NOT NULL,
	high          bigint NOT NULL,
	medium        bigint NOT NULL,
	problems      bigint NOT NULL,
	PRIMARY KEY (scan_id, network)
);
CREATE TABLE scan_tampering_networks (
	scan_id     bigint NOT NULL REFERENCES scan_network_rollups (scan_id) ON DELETE CASCADE,
	network     cidr NOT NULL,
	n_smtp      bigint NOT NULL,
	n_mangled   bigint NOT NULL,
	n_echo      bigint NOT NULL,
	n_injection bigint NOT NULL,
	n_any       bigint NOT NULL,
	PRIMARY KEY (scan_id, network)
);

CREATE FUNCTION mxs_network_rollup() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO scan_network_rollups (scan_id, set_id)
	SELECT NEW.scan_id, s.network_set_id FROM scans s WHERE s.id = NEW.scan_id;
	INSERT INTO scan_network_findings
	SELECT NEW.scan_id, l.* FROM mxs_network_findings_live(NEW.scan_id) l;
	INSERT INTO scan_tampering_networks
	SELECT NEW.scan_id, l.* FROM mxs_tampering_by_network_live(NEW.scan_id) l;
	RETURN NULL;
END $$;
ALTER FUNCTION mxs_network_rollup() SET jit = off;
CREATE TRIGGER scan_rollups_networks AFTER INSERT ON scan_rollups
	FOR EACH ROW EXECUTE FUNCTION mxs_network_rollup();

-- A set's ranges are rewritten whenever its networks change (0013): the figures grouped
-- by the old ones go.
CREATE FUNCTION mxs_network_ranges_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM scan_network_rollups u
	WHERE u.set_id IN (SELECT c.set_id FROM changed c);
	RETURN NULL;
END $$;
CREATE TRIGGER network_ranges_insert AFTER INSERT ON network_ranges
	REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION mxs_network_ranges_changed();
CREATE TRIGGER network_ranges_delete AFTER DELETE ON network_ranges
	REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION mxs_network_ranges_changed();

CREATE OR REPLACE VIEW v_network_findings AS
SELECT f.scan_id, f.network, f.contact, f.addresses, f.with_problems, f.critical, f.high,
	f.medium, f.problems
FROM scan_network_findings f
JOIN scan_network_rollups u ON u.scan_id = f.scan_id
JOIN scans s ON s.id = u.scan_id AND s.network_set_id IS NOT DISTINCT FROM u.set_id
UNION ALL
SELECT s.id, l.network, l.contact, l.addresses, l.with_problems, l.critical, l.high, l.medium,
	l.problems
FROM (SELECT s.id FROM scans s
       WHERE NOT EXISTS (SELECT 1 FROM scan_network_rollups u
                          WHERE u.scan_id = s.id AND u.set_id IS NOT DISTINCT FROM s.network_set_id)
      OFFSET 0) s   -- the scans without stored figures first: the function never runs for others
CROSS JOIN LATERAL mxs_network_findings_live(s.id) l;

CREATE OR REPLACE VIEW v_tampering_by_network AS
SELECT t.scan_id, t.network, t.n_smtp, t.n_mangled, t.n_echo, t.n_injection, t.n_any
FROM scan_tampering_networks t
UNION ALL
SELECT s.id, l.network, l.n_smtp, l.n_mangled, l.n_echo, l.n_injection, l.n_any
FROM (SELECT s.id FROM scans s
       WHERE NOT EXISTS (SELECT 1 FROM scan_network_rollups u WHERE u.scan_id = s.id)
      OFFSET 0) s
CROSS JOIN LATERAL mxs_tampering_by_network_live(s.id) l;
