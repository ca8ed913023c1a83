-- Verdicts per (MX name, address) (issue 9). The scanner probes each address once; the
-- name it dialled first is judged by the results row (tls_name_match, dane_*), every other
-- MX name pointing at the address by a name line (docs/record.md), stored here: judged on
-- the certificate of the address's first probe (probe = 'address'), or on that of a
-- follow-up probe that sent the name in SNI (probe = 'sni'; `--sni needed`: names with
-- TLSA records). Domain and MX statistics now use the verdict of the domain's own MX
-- names; the address level asks that every name of the address match (docs/views.md).

CREATE TABLE result_names (
	scan_id      bigint NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
	ip           inet NOT NULL,
	port         integer NOT NULL,
	name         text NOT NULL,         -- the MX name judged
	v            smallint,
	domains      text[],                -- domains seen using this name on this address
	probe        text,                  -- 'address' or 'sni'
	sni          text,                  -- the name sent in SNI on the connection judged
	outcome      smallint,              -- outcome_names.code of that probe
	leaf_sha256  bytea,                 -- NULL: no certificate (no TLS on that probe)
	trusted      boolean,               -- PKIX verdict of that chain
	verify_code  integer,
	expired      boolean,
	name_match   boolean,               -- X509_check_host(leaf, name)
	dane_tlsa    integer,               -- NULL: the name has no TLSA records
	dane_dnssec  boolean,
	dane_match   boolean,               -- the name's own TLSA records (RFC 7672)
	dane_depth   smallint,
	extra        jsonb,
	PRIMARY KEY (scan_id, ip, port, name)
);

CREATE OR REPLACE VIEW v_addr AS
SELECT r.scan_id, r.ip, r.port, r.mx, o.name AS outcome, r.start,
	s.dialled, s.open, s.greeting, s.ehlo_ok, s.starttls_offered, s.tls_ok,
	tv.name AS tls_version, r.tls_version AS tls_version_code, r.tls_cipher, r.tls_cipher_openssl,
	s.cipher_class,
	r.tls_forward_secrecy, r.tls_kex, r.tls_kex_group, r.tls_kex_bits,
	r.tls_trusted, r.tls_self_signed, r.tls_expired,
	-- every MX name of the address: the first (the result) and the others (result_names)
	CASE WHEN nv.n = 0 THEN r.tls_name_match
	     ELSE r.tls_name_match AND nv.all_match END AS tls_name_match,
	r.tls_verify_code,
	CASE WHEN nv.n_dane = 0 THEN r.dane_tlsa
	     ELSE greatest(coalesce(r.dane_tlsa, 0), nv.dane_tlsa) END AS dane_tlsa,
	-- DANE: in the denominator when some name has DNSSEC-validated TLSA records; a match
	-- when every such name's records match
	CASE WHEN nv.n_dane = 0 THEN r.dane_dnssec
	     ELSE coalesce(r.dane_tlsa > 0 AND r.dane_dnssec, false) OR nv.any_dnssec END AS dane_dnssec,
	CASE WHEN nv.n_dane = 0 THEN r.dane_match
	     ELSE (CASE WHEN r.dane_tlsa > 0 AND r.dane_dnssec THEN r.dane_match ELSE true END)
	          AND nv.dane_match END AS dane_match,
	r.chain_sha256[1] AS leaf_sha256,
	r.tamper_mangled_starttls, r.tamper_starttls_echo, r.tamper_plaintext_after_starttls,
	(r.starttls_code IS NOT NULL OR r.starttls_lines IS NOT NULL OR r.tamper_starttls_echo IS TRUE) AS starttls_sent,
	mxs_mta_software(r.greeting_lines, r.ehlo_lines) AS software,
	CASE WHEN family(r.ip) = 4 THEN set_masklen(r.ip::cidr, 24) ELSE set_masklen(r.ip::cidr, 48) END AS network
FROM results r
JOIN outcome_names o ON o.code = r.outcome
LEFT JOIN tls_version_names tv ON tv.code = r.tls_version
CROSS JOIN LATERAL (SELECT count(*) AS n,
	coalesce(bool_and(n.name_match) FILTER (WHERE n.name_match IS NOT NULL), true) AS all_match,
	count(*) FILTER (WHERE n.dane_tlsa > 0) AS n_dane,
	max(n.dane_tlsa) AS dane_tlsa,
	coalesce(bool_or(n.dane_dnssec) FILTER (WHERE n.dane_tlsa > 0), false) AS any_dnssec,
	coalesce(bool_and(n.dane_match) FILTER (WHERE n.dane_tlsa > 0 AND n.dane_dnssec), true) AS dane_match
	FROM result_names n
	WHERE n.scan_id = r.scan_id AND n.ip = r.ip AND n.port = r.port AND n.leaf_sha256 IS NOT NULL) nv
CROSS JOIN LATERAL (SELECT
	d AS dialled,
	d AND op AS open,
	d AND op AND r.greeting_code IS NOT NULL AS greeting,
	d AND op AND r.greeting_code IS NOT NULL AND r.ehlo_code = 250 AS ehlo_ok,
	d AND op AND r.greeting_code IS NOT NULL AND r.ehlo_code = 250 AND offered AS starttls_offered,
	d AND op AND r.greeting_code IS NOT NULL AND r.ehlo_code = 250 AND offered
	  AND r.tls_version IS NOT NULL AS tls_ok,
	mxs_cipher_class(r.tls_cipher, r.tls_cipher_openssl) AS cipher_class
	FROM (SELECT
		o.name NOT IN ('blocked', 'bad-target', 'local-error') AS d,
		o.name NOT IN ('connection-refused', 'connection-timeout', 'unreachable')
		  AND NOT (o.name IN ('interrupted', 'deadline', 'unknown') AND r.phase IN (0, 1)) AS op,
		(r.tls_version IS NOT NULL
		 OR EXISTS (SELECT 1 FROM unnest(r.ehlo_extensions) e
		             WHERE upper(split_part(e, ' ', 1)) = 'STARTTLS')) AS offered) f
	OFFSET 0  -- evaluated once per row: otherwise every use of a flag repeats its whole chain
) s;

-- MX host -> address, from the domain lines, the targets' MX names and the name lines.
CREATE OR REPLACE VIEW v_mx_addrs AS
SELECT DISTINCT x.scan_id, rtrim(lower(x.host), '.') AS host, x.ip
FROM (
	SELECT m.scan_id, m.host, a.ip FROM domain_mx m CROSS JOIN LATERAL unnest(m.addrs) a(ip)
	UNION ALL
	SELECT r.scan_id, n.host, r.ip FROM results r CROSS JOIN LATERAL unnest(r.mx_names) n(host)
	UNION ALL
	SELECT r.scan_id, r.mx, r.ip FROM results r WHERE r.mx IS NOT NULL
	UNION ALL
	SELECT n.scan_id, n.name, n.ip FROM result_names n
) x;

-- Per (MX name, address): the address's masks (v_addr_bits) with the name-dependent
-- metrics (cert_valid 14, cert_name_mismatch 17, dane_match 22) judged for that name: by
-- its result_names row, or by the results row when it is the name the address was dialled
-- with; a pair with neither (a scan from before name verdicts) keeps the address's.
CREATE VIEW v_pair_bits AS
SELECT m.scan_id, m.host, m.ip, b.port,
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
FROM v_mx_addrs m
JOIN v_addr_bits b ON b.scan_id = m.scan_id AND b.ip = m.ip
JOIN results r ON r.scan_id = b.scan_id AND r.ip = b.ip AND r.port = b.port
LEFT JOIN result_names n ON n.scan_id = m.scan_id AND n.ip = m.ip AND n.port = b.port AND n.name = m.host
CROSS JOIN LATERAL (SELECT
	(1::bigint << 14) | (1::bigint << 17) | (1::bigint << 22) AS k,
	n.name IS NOT NULL OR m.host = rtrim(lower(r.mx), '.') AS own,
	(b.denom & (1::bigint << 4)) <> 0 AND (b.hit & (1::bigint << 4)) <> 0
	  AND (n.name IS NULL OR n.leaf_sha256 IS NOT NULL) AS tls,
	CASE WHEN n.name IS NOT NULL THEN n.name_match ELSE r.tls_name_match END AS nm,
	CASE WHEN n.name IS NOT NULL THEN n.trusted ELSE r.tls_trusted END AS trusted,
	CASE WHEN n.name IS NOT NULL THEN n.dane_tlsa ELSE r.dane_tlsa END AS dtlsa,
	CASE WHEN n.name IS NOT NULL THEN n.dane_dnssec ELSE r.dane_dnssec END AS ddnssec,
	CASE WHEN n.name IS NOT NULL THEN n.dane_match ELSE r.dane_match END AS dmatch) x;

-- MX level: per MX host over its addresses, each judged for this host's name.
CREATE OR REPLACE VIEW v_mx_bits AS
SELECT p.scan_id, p.host, bit_or(p.denom) AS denom, bit_or(p.denom & p.hit) AS hit_any,
	bit_and(p.hit | ~p.denom) & bit_or(p.denom) AS hit_all
FROM v_pair_bits p
GROUP BY p.scan_id, p.host;

-- Domain level: over the addresses of the domain's MX hosts, each judged for the MX name
-- that brought the domain there.
CREATE OR REPLACE VIEW v_domain_bits AS
SELECT d.scan_id, d.domain, d.rank,
	bit_or(b.denom) AS denom_any,
	bit_or(b.denom & b.hit) AS hit_any,
	bit_and(b.hit | ~b.denom) & bit_or(b.denom) AS hit_all,
	coalesce(bit_or(b.denom) FILTER (WHERE d.is_primary), 0) AS denom_primary,
	coalesce(bit_or(b.denom & b.hit) FILTER (WHERE d.is_primary), 0) AS hit_primary
FROM v_domain_addrs d
JOIN v_pair_bits b ON b.scan_id = d.scan_id AND b.ip = d.ip AND b.host = d.host
GROUP BY d.scan_id, d.domain, d.rank;

-- Every (MX name, address) verdict of a scan, the first name's from its result row.
CREATE VIEW v_name_verdicts AS
SELECT r.scan_id, r.ip, r.port, rtrim(lower(r.mx), '.') AS name, 'address'::text AS probe,
	r.mx AS sni, o.name AS outcome, r.chain_sha256[1] AS leaf_sha256, r.tls_trusted AS trusted,
	r.tls_expired AS expired, r.tls_name_match AS name_match, r.dane_tlsa, r.dane_dnssec,
	r.dane_match
FROM results r JOIN outcome_names o ON o.code = r.outcome
WHERE r.mx IS NOT NULL
UNION ALL
SELECT n.scan_id, n.ip, n.port, n.name, n.probe, n.sni, o.name, n.leaf_sha256, n.trusted,
	n.expired, n.name_match, n.dane_tlsa, n.dane_dnssec, n.dane_match
FROM result_names n LEFT JOIN outcome_names o ON o.code = n.outcome;

-- SNI probes per scan: what `--sni` cost (follow-up connections per address dialled).
CREATE VIEW v_sni_probes AS
SELECT s.id AS scan_id,
	(SELECT count(*) FROM result_names n WHERE n.scan_id = s.id AND n.probe = 'sni') AS sni_probes,
	(SELECT count(*) FROM results r WHERE r.scan_id = s.id) AS addresses,
	(SELECT count(*) FROM result_names n WHERE n.scan_id = s.id) AS further_names
FROM scans s;

-- The rates over the per-name masks: the planner's estimate of the joined views crosses
-- jit_above_cost, and compiling the plan took seconds where running it takes milliseconds.
ALTER FUNCTION mxs_rates_live(bigint) SET jit = off;
