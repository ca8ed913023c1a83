-- mxsurvey statistics views, version 2. docs/views.md states the question each view
-- answers and its denominator. Every view is split by scan_id.
--
-- Layering:
--   v_addr             one row per result (address) with the flags every view uses
--   v_addr_facts       (address, metric) -> in the denominator? a hit?
--   v_mx_addrs         MX host -> address;  v_domain_addrs: domain -> MX host -> address
--   v_rates            every rate metric at every level: address, mx (any/all address),
--                      domain (any_mx/all_mx/primary_mx) in rank buckets, and
--                      domain_w (weighted 1/rank)
--   v_funnel, v_starttls_support, v_cert_outcomes, ...: filters of v_rates, plus the
--   distribution views (versions, ciphers, key exchange, providers, software, policy).

-- Rank buckets are cumulative: top1k holds the top 100 too. 'all' includes unranked.
CREATE TABLE rank_buckets (bucket text PRIMARY KEY, max_rank integer, ord smallint NOT NULL);
INSERT INTO rank_buckets VALUES
	('all', NULL, 0), ('top100', 100, 1), ('top1k', 1000, 2), ('top10k', 10000, 3),
	('top100k', 100000, 4), ('top1m', 1000000, 5);

-- Public suffixes used to find a host's registered domain ("co.uk": the registered
-- domain of mx.example.co.uk is example.co.uk), as Public Suffix List rules: "co.uk",
-- "*.ck" (every label under ck), "!www.ck" (an exception to a wildcard). A short built-in
-- list of multi-label suffixes; `mxsurvey db suffixes` loads the whole ICANN section.
CREATE TABLE public_suffixes (suffix text PRIMARY KEY);
INSERT INTO public_suffixes VALUES
	('co.uk'), ('org.uk'), ('ac.uk'), ('gov.uk'), ('me.uk'), ('net.uk'), ('ltd.uk'), ('plc.uk'),
	('com.au'), ('net.au'), ('org.au'), ('edu.au'), ('gov.au'), ('co.nz'), ('net.nz'), ('org.nz'),
	('co.jp'), ('ne.jp'), ('or.jp'), ('ac.jp'), ('go.jp'), ('co.kr'), ('or.kr'), ('ac.kr'),
	('com.cn'), ('net.cn'), ('org.cn'), ('edu.cn'), ('gov.cn'), ('com.tw'), ('net.tw'), ('org.tw'),
	('com.hk'), ('net.hk'), ('org.hk'), ('com.sg'), ('com.my'), ('co.id'), ('co.in'), ('net.in'),
	('org.in'), ('co.il'), ('org.il'), ('co.za'), ('org.za'), ('com.br'), ('net.br'), ('org.br'),
	('com.ar'), ('com.mx'), ('com.co'), ('com.tr'), ('net.tr'), ('org.tr'), ('com.ua'), ('com.pl'),
	('net.pl'), ('org.pl'), ('com.ru'), ('com.es'), ('com.pt'), ('co.at'), ('or.at'), ('com.vn'),
	('com.ph'), ('co.th'), ('in.th'), ('com.eg'), ('com.sa'), ('com.pk'), ('com.ng');

CREATE TABLE public_suffix_source (
	singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	source    text NOT NULL,
	rules     integer NOT NULL,
	loaded_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO public_suffix_source (source, rules)
SELECT 'built-in list (sql/migrations/0002_views.sql)', count(*) FROM public_suffixes;

-- The metrics of v_rates: which address is in the denominator, which one is a hit
-- (v_addr_facts), and how people should read them.
CREATE TABLE metrics (
	metric      text PRIMARY KEY,
	grp         text NOT NULL,
	ord         smallint NOT NULL,
	label       text NOT NULL,
	denominator text NOT NULL,     -- the addresses the rate is taken over
	bit         smallint NOT NULL UNIQUE CHECK (bit BETWEEN 0 AND 62)  -- in v_addr_bits' masks
);
INSERT INTO metrics VALUES
	('funnel_open', 'funnel', 1, 'port open', 'addresses dialled (not blocked, not bad-target, no local error)', 0),
	('funnel_greeting', 'funnel', 2, 'SMTP greeting', 'addresses with the port open', 1),
	('funnel_ehlo', 'funnel', 3, 'EHLO accepted', 'addresses that sent a greeting', 2),
	('funnel_starttls', 'funnel', 4, 'STARTTLS offered', 'addresses that accepted EHLO/HELO', 3),
	('funnel_tls', 'funnel', 5, 'TLS completed', 'addresses that offered STARTTLS', 4),
	('starttls_offered', 'support', 1, 'STARTTLS offered', 'addresses that accepted EHLO/HELO (SMTP servers)', 5),
	('starttls_completed', 'support', 2, 'TLS handshake completed', 'addresses that accepted EHLO/HELO (SMTP servers)', 6),
	('forward_secrecy', 'fs', 1, 'forward secrecy', 'TLS sessions', 7),
	('legacy_version', 'legacy', 1, 'TLS 1.1 or older', 'TLS sessions', 8),
	('legacy_rc4', 'legacy', 2, 'RC4 cipher', 'TLS sessions', 9),
	('legacy_3des', 'legacy', 3, '3DES cipher', 'TLS sessions', 10),
	('legacy_dh_small', 'legacy', 4, 'finite-field DH under 2048 bits', 'TLS sessions', 11),
	('legacy_any', 'legacy', 5, 'any of the above', 'TLS sessions', 12),
	('cert_trusted', 'cert', 1, 'chain trusted', 'TLS sessions', 13),
	('cert_valid', 'cert', 2, 'trusted and matches the MX name', 'TLS sessions with a known MX name', 14),
	('cert_self_signed', 'cert', 3, 'self-signed', 'TLS sessions', 15),
	('cert_expired', 'cert', 4, 'expired', 'TLS sessions', 16),
	('cert_name_mismatch', 'cert', 5, 'name does not match the MX', 'TLS sessions with a known MX name', 17),
	('cert_unknown_ca', 'cert', 6, 'unknown issuer', 'TLS sessions', 18),
	('tamper_mangled', 'tamper', 1, 'STARTTLS advertisement mangled (XXXXXXXA)', 'addresses that accepted EHLO/HELO', 19),
	('tamper_echo', 'tamper', 2, 'STARTTLS reply echoes the command', 'addresses sent STARTTLS', 20),
	('tamper_injection', 'tamper', 3, 'plaintext after the 220 to STARTTLS', 'addresses that answered STARTTLS with 220', 21),
	('dane_match', 'dane', 1, 'DANE TLSA records match', 'TLS sessions with DNSSEC-validated TLSA records', 22);

-- A host's registered domain: one label more than its longest public suffix under the
-- rules above (a plain rule, or a wildcard one not excepted); the last two labels when no
-- longer suffix matches. PL/pgSQL: a third of the time of the SQL form per call, and the
-- provider views call it once per MX host row.
CREATE FUNCTION mxs_registered_domain(p_host text) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
	lab text[] := string_to_array(rtrim(lower(p_host), '.'), '.');
	n integer := cardinality(lab);
	cand text;
BEGIN
	FOR k IN REVERSE n - 1 .. 2 LOOP   -- candidate suffixes of k labels, longest first
		cand := array_to_string(lab[n - k + 1 : n], '.');
		IF EXISTS (SELECT 1 FROM public_suffixes WHERE suffix = cand)
		   OR (EXISTS (SELECT 1 FROM public_suffixes
		                WHERE suffix = '*.' || array_to_string(lab[n - k + 2 : n], '.'))
		       AND NOT EXISTS (SELECT 1 FROM public_suffixes WHERE suffix = '!' || cand)) THEN
			RETURN array_to_string(lab[n - k : n], '.');
		END IF;
	END LOOP;
	RETURN array_to_string(lab[greatest(n - 1, 1) : n], '.');
END $$;

-- MTA software from the greeting (and the EHLO reply when the greeting says nothing).
CREATE FUNCTION mxs_mta_software(greeting text[], ehlo text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE
		WHEN g IS NULL THEN NULL
		WHEN g ~* 'postfix' THEN 'Postfix'
		WHEN g ~* 'exim' THEN 'Exim'
		WHEN g ~* 'microsoft esmtp|exchange' THEN 'Exchange'
		WHEN g ~* 'sendmail' THEN 'Sendmail'
		WHEN g ~* 'qmail' THEN 'qmail'
		ELSE 'other' END
	FROM (SELECT array_to_string(greeting, ' ') || coalesce(' ' || array_to_string(ehlo, ' '), '') AS g) x
$$;

-- Cipher class by its IANA (or OpenSSL) name.
CREATE FUNCTION mxs_cipher_class(iana text, ossl text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE
		WHEN n IS NULL OR n = '' THEN NULL
		WHEN n ~ '(NULL|ANON|EXPORT|_ADH_|^ADH|AECDH)' THEN 'NULL/anon/export'
		WHEN n ~ 'RC4' THEN 'RC4'
		WHEN n ~ '(3DES|DES_CBC3|DES-CBC3)' THEN '3DES'
		WHEN n ~ '(GCM|CHACHA20|POLY1305|CCM)' THEN 'AEAD'
		WHEN n ~ 'CBC|SHA' THEN 'CBC'
		ELSE 'other' END
	FROM (SELECT upper(coalesce(iana, ossl)) AS n) x
$$;

-- Per address (one result row): every flag the statistics use. The funnel flags are
-- cumulative, so each stage is a subset of the one before.
CREATE VIEW v_addr AS
SELECT r.scan_id, r.ip, r.port, r.mx, o.name AS outcome, r.start,
	s.dialled, s.open, s.greeting, s.ehlo_ok, s.starttls_offered, s.tls_ok,
	tv.name AS tls_version, r.tls_version AS tls_version_code, r.tls_cipher, r.tls_cipher_openssl,
	s.cipher_class,
	r.tls_forward_secrecy, r.tls_kex, r.tls_kex_group, r.tls_kex_bits,
	r.tls_trusted, r.tls_self_signed, r.tls_expired, r.tls_name_match, r.tls_verify_code,
	r.dane_tlsa, r.dane_dnssec, r.dane_match,
	r.chain_sha256[1] AS leaf_sha256,
	r.tamper_mangled_starttls, r.tamper_starttls_echo, r.tamper_plaintext_after_starttls,
	(r.starttls_code IS NOT NULL OR r.starttls_lines IS NOT NULL OR r.tamper_starttls_echo IS TRUE) AS starttls_sent,
	mxs_mta_software(r.greeting_lines, r.ehlo_lines) AS software,
	CASE WHEN family(r.ip) = 4 THEN set_masklen(r.ip::cidr, 24) ELSE set_masklen(r.ip::cidr, 48) END AS network
FROM results r
JOIN outcome_names o ON o.code = r.outcome
LEFT JOIN tls_version_names tv ON tv.code = r.tls_version
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

-- The certificates of each result with their chain position (0 = leaf).
CREATE VIEW v_result_certs AS
SELECT r.scan_id, r.ip, r.port, (c.ord - 1)::int AS pos, c.sha256
FROM results r CROSS JOIN LATERAL unnest(r.chain_sha256) WITH ORDINALITY c(sha256, ord);

-- One fact of an address: bit k of the low word when it is in metric k's denominator,
-- bit k of the high word when it is a hit (k = metrics.bit, below 32).
CREATE FUNCTION mxs_fact(k integer, in_denom boolean, hit boolean) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE WHEN in_denom THEN 1::bigint << k ELSE 0 END
	     | CASE WHEN hit THEN 1::bigint << (k + 32) ELSE 0 END
$$;

-- Per address: which metrics it is in the denominator of (denom) and a hit of (hit), as
-- bit masks over metrics.bit. The one place each metric's rule is written down, one
-- line per metric: (bit, in the denominator, a hit). Plain expressions, so a million
-- addresses take seconds.
CREATE VIEW v_addr_bits AS
SELECT x.scan_id, x.ip, x.port, x.f & 4294967295 AS denom, x.f >> 32 AS hit
FROM (SELECT a.scan_id, a.ip, a.port,
	  mxs_fact(0, a.dialled, a.open)  -- funnel_open
	| mxs_fact(1, a.open, a.greeting)  -- funnel_greeting
	| mxs_fact(2, a.greeting, a.ehlo_ok)  -- funnel_ehlo
	| mxs_fact(3, a.ehlo_ok, a.starttls_offered)  -- funnel_starttls
	| mxs_fact(4, a.starttls_offered, a.tls_ok)  -- funnel_tls
	| mxs_fact(5, a.ehlo_ok, a.starttls_offered)  -- starttls_offered
	| mxs_fact(6, a.ehlo_ok, a.tls_ok)  -- starttls_completed
	| mxs_fact(7, a.tls_ok, a.tls_forward_secrecy)  -- forward_secrecy
	| mxs_fact(8, a.tls_ok, a.tls_version_code < 771)  -- legacy_version
	| mxs_fact(9, a.tls_ok, a.cipher_class = 'RC4')  -- legacy_rc4
	| mxs_fact(10, a.tls_ok, a.cipher_class = '3DES')  -- legacy_3des
	| mxs_fact(11, a.tls_ok, (a.tls_kex = 'DHE' OR a.tls_kex_group = 'DH' OR a.tls_kex_group LIKE 'ffdhe%')
		                              AND a.tls_kex_bits < 2048)  -- legacy_dh_small
	| mxs_fact(12, a.tls_ok, a.tls_version_code < 771 OR a.cipher_class IN ('RC4', '3DES')
		                         OR ((a.tls_kex = 'DHE' OR a.tls_kex_group = 'DH' OR a.tls_kex_group LIKE 'ffdhe%')
		                             AND a.tls_kex_bits < 2048))  -- legacy_any
	| mxs_fact(13, a.tls_ok, a.tls_trusted)  -- cert_trusted
	| mxs_fact(14, a.tls_ok AND a.tls_name_match IS NOT NULL, a.tls_trusted AND a.tls_name_match)  -- cert_valid
	| mxs_fact(15, a.tls_ok, a.tls_self_signed)  -- cert_self_signed
	| mxs_fact(16, a.tls_ok, a.tls_expired)  -- cert_expired
	| mxs_fact(17, a.tls_ok AND a.tls_name_match IS NOT NULL, NOT a.tls_name_match)  -- cert_name_mismatch
	| mxs_fact(18, a.tls_ok, NOT a.tls_trusted AND NOT coalesce(a.tls_self_signed, false)
		                             AND a.tls_verify_code IN (2, 19, 20, 21))  -- cert_unknown_ca
	| mxs_fact(19, a.ehlo_ok, a.tamper_mangled_starttls IS NOT NULL)  -- tamper_mangled
	| mxs_fact(20, a.starttls_sent, a.tamper_starttls_echo)  -- tamper_echo
	| mxs_fact(21, a.starttls_sent AND a.outcome IN ('success', 'handshake-error', 'handshake-timeout'),
		                     a.tamper_plaintext_after_starttls > 0)  -- tamper_injection
	| mxs_fact(22, a.tls_ok AND a.dane_tlsa > 0 AND a.dane_dnssec, a.dane_match)  -- dane_match
	AS f
	FROM v_addr a) x;

-- (address, metric): in the metric's denominator? a hit? Rows for every metric.
CREATE VIEW v_addr_facts AS
SELECT b.scan_id, b.ip, b.port, m.metric,
	(b.denom & (1::bigint << m.bit)) <> 0 AS in_denom,
	(b.hit & (1::bigint << m.bit)) <> 0 AS hit
FROM v_addr_bits b CROSS JOIN metrics m;

-- MX host -> address, from the domain lines and from the targets' MX names.
CREATE VIEW v_mx_addrs AS
SELECT DISTINCT x.scan_id, rtrim(lower(x.host), '.') AS host, x.ip
FROM (
	SELECT m.scan_id, m.host, a.ip FROM domain_mx m CROSS JOIN LATERAL unnest(m.addrs) a(ip)
	UNION ALL
	SELECT r.scan_id, n.host, r.ip FROM results r CROSS JOIN LATERAL unnest(r.mx_names) n(host)
	UNION ALL
	SELECT r.scan_id, r.mx, r.ip FROM results r WHERE r.mx IS NOT NULL
) x;

-- Domain -> MX host (with preference, primary = lowest preference) -> address, from the
-- domain lines only: they alone hold the complete mapping and the rank.
CREATE VIEW v_domain_addrs AS
SELECT m.scan_id, m.domain, d.rank, rtrim(lower(m.host), '.') AS host, m.pref, m.is_primary, a.ip
FROM (SELECT dm.*, coalesce(dm.pref, 0) = min(coalesce(dm.pref, 0)) OVER (PARTITION BY dm.scan_id, dm.domain)
             AS is_primary
        FROM domain_mx dm) m
JOIN domains d ON d.scan_id = m.scan_id AND d.domain = m.domain
CROSS JOIN LATERAL unnest(m.addrs) a(ip);

-- Per MX host, over its addresses' masks: denom (some address in the denominator),
-- hit_any (some such address is a hit), hit_all (every such address is a hit).
CREATE VIEW v_mx_bits AS
SELECT m.scan_id, m.host, bit_or(b.denom) AS denom, bit_or(b.denom & b.hit) AS hit_any,
	bit_and(b.hit | ~b.denom) & bit_or(b.denom) AS hit_all
FROM v_mx_addrs m JOIN v_addr_bits b ON b.scan_id = m.scan_id AND b.ip = m.ip
GROUP BY m.scan_id, m.host;

-- Per MX host and metric: any address / all addresses (of those in the denominator).
CREATE VIEW v_mx_facts AS
SELECT x.scan_id, x.host, m.metric,
	(x.denom & (1::bigint << m.bit)) <> 0 AS in_denom,
	(x.hit_any & (1::bigint << m.bit)) <> 0 AS hit_any,
	(x.hit_all & (1::bigint << m.bit)) <> 0 AS hit_all
FROM v_mx_bits x CROSS JOIN metrics m;

-- Per domain, over the addresses of its MX hosts (all of them, or the primary ones):
-- the same masks as v_mx_bits.
CREATE VIEW v_domain_bits AS
SELECT d.scan_id, d.domain, d.rank,
	bit_or(b.denom) AS denom_any,
	bit_or(b.denom & b.hit) AS hit_any,
	bit_and(b.hit | ~b.denom) & bit_or(b.denom) AS hit_all,
	coalesce(bit_or(b.denom) FILTER (WHERE d.is_primary), 0) AS denom_primary,
	coalesce(bit_or(b.denom & b.hit) FILTER (WHERE d.is_primary), 0) AS hit_primary
FROM v_domain_addrs d JOIN v_addr_bits b ON b.scan_id = d.scan_id AND b.ip = d.ip
GROUP BY d.scan_id, d.domain, d.rank;

-- The three domain rules over v_domain_bits' masks: (rule, denominator mask, hit mask).
CREATE FUNCTION mxs_domain_rules(denom_any bigint, hit_any bigint, hit_all bigint,
                                 denom_primary bigint, hit_primary bigint)
RETURNS TABLE (rule text, denom bigint, hit bigint)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	VALUES ('any_mx', denom_any, hit_any), ('all_mx', denom_any, hit_all),
	       ('primary_mx', denom_primary, hit_primary)
$$;

-- Per domain and metric under the three rules.
CREATE VIEW v_domain_facts AS
SELECT d.scan_id, d.domain, d.rank, m.metric, r.rule,
	(r.denom & (1::bigint << m.bit)) <> 0 AS in_denom,
	(r.hit & (1::bigint << m.bit)) <> 0 AS hit
FROM v_domain_bits d
CROSS JOIN LATERAL mxs_domain_rules(d.denom_any, d.hit_any, d.hit_all, d.denom_primary, d.hit_primary) r
CROSS JOIN metrics m;

-- Every rate of one scan, computed from the results: the masks are counted by distinct
-- pattern first (a few hundred), so a million domains cost one pass, not one per metric.
-- n and n_denom are counts (level domain_w: sums of 1/rank).
CREATE FUNCTION mxs_rates_live(p_scan bigint)
RETURNS TABLE (metric text, level text, rule text, bucket text, n_denom numeric, n numeric)
LANGUAGE plpgsql STABLE COST 1000000 ROWS 1000 AS $$
#variable_conflict use_column
BEGIN
	-- PL/pgSQL, not SQL: an SQL function would be inlined into every query of v_rates,
	-- whose plan (and JIT compilation) would then cost seconds even for stored scans
	RETURN QUERY
	WITH a AS (
		SELECT denom, hit, count(*) AS c FROM v_addr_bits WHERE scan_id = p_scan GROUP BY denom, hit
	), x AS (
		SELECT denom, hit_any, hit_all, count(*) AS c FROM v_mx_bits WHERE scan_id = p_scan
		GROUP BY denom, hit_any, hit_all
	), g AS (
		-- domains by mask pattern and by the smallest rank bucket holding them (cap:
		-- rank <= a bucket's max_rank exactly when cap <= it; NULL: only in 'all')
		SELECT f.denom_any, f.hit_any, f.hit_all, f.denom_primary, f.hit_primary, c.cap,
			count(*) AS c, sum(1.0 / f.rank) FILTER (WHERE f.rank > 0) AS w
		FROM v_domain_bits f
		LEFT JOIN LATERAL (SELECT min(b.max_rank) AS cap FROM rank_buckets b
		                    WHERE b.max_rank >= f.rank) c ON true
		WHERE f.scan_id = p_scan
		GROUP BY f.denom_any, f.hit_any, f.hit_all, f.denom_primary, f.hit_primary, c.cap
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

-- The rates of finished scans, stored when the scan finishes (mxs_rollup): v_rates reads
-- these instead of recomputing. Writing a scan's rows through mxsurvey deletes its rollup;
-- after changing rows by hand, run SELECT mxs_rollup(scan) again.
CREATE TABLE scan_rollups (
	scan_id     bigint PRIMARY KEY REFERENCES scans (id) ON DELETE CASCADE,
	computed_at timestamptz NOT NULL DEFAULT now(),
	results     bigint NOT NULL,
	tls13_pct   numeric
);
CREATE TABLE scan_rates (
	scan_id bigint NOT NULL REFERENCES scan_rollups (scan_id) ON DELETE CASCADE,
	metric  text NOT NULL,
	level   text NOT NULL,
	rule    text NOT NULL,
	bucket  text NOT NULL,
	n_denom numeric NOT NULL,
	n       numeric NOT NULL,
	PRIMARY KEY (scan_id, metric, level, rule, bucket)
);

-- Every rate, every level, every scan: stored for rolled-up scans, computed for the rest.
CREATE VIEW v_rates AS
WITH x AS (
	SELECT r.scan_id, r.metric, r.level, r.rule, r.bucket, r.n_denom, r.n FROM scan_rates r
	UNION ALL
	SELECT s.id, l.metric, l.level, l.rule, l.bucket, l.n_denom, l.n
	FROM (SELECT s.id FROM scans s
	       WHERE NOT EXISTS (SELECT 1 FROM scan_rollups u WHERE u.scan_id = s.id)
	      OFFSET 0) s   -- the scans without stored rates first: the function never runs for others
	CROSS JOIN LATERAL mxs_rates_live(s.id) l
)
SELECT x.scan_id, x.metric, m.grp, m.ord, m.label, x.level, x.rule, x.bucket,
	CASE x.level
		WHEN 'address' THEN m.denominator
		WHEN 'mx' THEN 'MX hosts with at least one address in: ' || m.denominator
		       || CASE x.rule WHEN 'any' THEN ' (hit: any such address)' ELSE ' (hit: every such address)' END
		ELSE CASE x.level WHEN 'domain_w' THEN 'ranked domains weighted 1/rank' ELSE 'domains' END
		       || CASE x.rule WHEN 'primary_mx' THEN ' whose primary MX has' ELSE ' whose MX hosts have' END
		       || ' at least one address in: ' || m.denominator
		       || CASE x.rule WHEN 'any_mx' THEN ' (hit: any such address of any MX)'
		                      WHEN 'all_mx' THEN ' (hit: every such address of every MX)'
		                      ELSE ' (hit: any such address of a primary MX)' END
	END AS denominator,
	x.n_denom, x.n,
	CASE WHEN x.n_denom > 0 THEN round(100 * x.n / x.n_denom, 2) END AS pct
FROM x JOIN metrics m ON m.metric = x.metric;

-- The funnel: port open -> greeting -> EHLO -> STARTTLS offered -> TLS completed.
CREATE VIEW v_funnel AS
SELECT scan_id, level, rule, bucket, ord AS stage_no, label AS stage, n, n_denom AS n_previous,
	pct AS pct_of_previous,
	CASE WHEN first_value(n_denom) OVER w > 0
	     THEN round(100 * n / first_value(n_denom) OVER w, 2) END AS pct_of_dialled
FROM v_rates WHERE grp = 'funnel'
WINDOW w AS (PARTITION BY scan_id, level, rule, bucket ORDER BY ord);

CREATE VIEW v_starttls_support AS SELECT * FROM v_rates WHERE grp = 'support';
CREATE VIEW v_forward_secrecy AS SELECT * FROM v_rates WHERE grp = 'fs';
CREATE VIEW v_legacy_exposure AS SELECT * FROM v_rates WHERE grp = 'legacy';
CREATE VIEW v_cert_outcomes AS SELECT * FROM v_rates WHERE grp = 'cert';
CREATE VIEW v_tampering AS SELECT * FROM v_rates WHERE grp = 'tamper';
CREATE VIEW v_rank_bucket_summary AS
SELECT * FROM v_rates
WHERE level IN ('domain', 'domain_w')
  AND metric IN ('starttls_offered', 'starttls_completed', 'cert_valid', 'forward_secrecy', 'legacy_any');

-- Outcome classes over all results of a scan.
CREATE VIEW v_outcomes AS
SELECT scan_id, outcome, count(*) AS n, sum(count(*)) OVER (PARTITION BY scan_id) AS n_denom,
	round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY scan_id), 2) AS pct
FROM v_addr GROUP BY scan_id, outcome;

-- Negotiated TLS version: per TLS session, per MX host and per domain (best version
-- over its TLS sessions).
CREATE VIEW v_tls_versions AS
WITH best_mx AS (
	SELECT m.scan_id, m.host, max(a.tls_version_code) AS code
	FROM v_mx_addrs m JOIN v_addr a ON a.scan_id = m.scan_id AND a.ip = m.ip
	WHERE a.tls_ok GROUP BY m.scan_id, m.host
), best_dom AS (
	SELECT d.scan_id, d.domain, max(a.tls_version_code) AS code
	FROM v_domain_addrs d JOIN v_addr a ON a.scan_id = d.scan_id AND a.ip = d.ip
	WHERE a.tls_ok GROUP BY d.scan_id, d.domain
), x AS (
	SELECT scan_id, 'address'::text AS level, tls_version_code AS code FROM v_addr WHERE tls_ok
	UNION ALL SELECT scan_id, 'mx', code FROM best_mx
	UNION ALL SELECT scan_id, 'domain', code FROM best_dom
)
SELECT x.scan_id, x.level, coalesce(t.name, 'unknown') AS version, count(*) AS n,
	sum(count(*)) OVER (PARTITION BY x.scan_id, x.level) AS n_denom,
	round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY x.scan_id, x.level), 2) AS pct
FROM x LEFT JOIN tls_version_names t ON t.code = x.code
GROUP BY x.scan_id, x.level, t.name, x.code;

-- Negotiated cipher suites over TLS sessions.
CREATE VIEW v_ciphers AS
SELECT scan_id, coalesce(tls_cipher, tls_cipher_openssl, 'unknown') AS cipher,
	tls_cipher_openssl AS cipher_openssl, cipher_class, bool_or(tls_forward_secrecy) AS forward_secrecy,
	count(*) AS n, sum(count(*)) OVER (PARTITION BY scan_id) AS n_denom,
	round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY scan_id), 2) AS pct
FROM v_addr WHERE tls_ok
GROUP BY scan_id, tls_cipher, tls_cipher_openssl, cipher_class;

CREATE VIEW v_cipher_classes AS
SELECT scan_id, coalesce(cipher_class, 'unknown') AS cipher_class, count(*) AS n,
	sum(count(*)) OVER (PARTITION BY scan_id) AS n_denom,
	round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY scan_id), 2) AS pct
FROM v_addr WHERE tls_ok GROUP BY scan_id, cipher_class;

-- Key exchange: family, group and size, with the DH size class.
CREATE VIEW v_kex AS
SELECT scan_id, coalesce(tls_kex, 'unknown') AS kex, coalesce(tls_kex_group, '-') AS kex_group,
	tls_kex_bits AS kex_bits,
	CASE WHEN tls_kex = 'DHE' OR tls_kex_group = 'DH' OR tls_kex_group LIKE 'ffdhe%' THEN
		CASE WHEN tls_kex_bits < 1024 THEN 'DH <1024' WHEN tls_kex_bits = 1024 THEN 'DH 1024'
		     WHEN tls_kex_bits < 2048 THEN 'DH 1025-2047' WHEN tls_kex_bits = 2048 THEN 'DH 2048'
		     WHEN tls_kex_bits > 2048 THEN 'DH >2048' ELSE 'DH unknown size' END
	     WHEN tls_kex = 'RSA' THEN 'static RSA'
	     ELSE 'EC/other' END AS size_class,
	count(*) AS n, sum(count(*)) OVER (PARTITION BY scan_id) AS n_denom,
	round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY scan_id), 2) AS pct
FROM v_addr WHERE tls_ok
GROUP BY scan_id, tls_kex, tls_kex_group, tls_kex_bits;

-- Mail domains: list entries, those with an MX host, those with a reachable SMTP server.
CREATE VIEW v_mail_domains AS
WITH d AS (
	SELECT dm.scan_id, dm.domain, dm.rank,
		EXISTS (SELECT 1 FROM domain_mx m WHERE m.scan_id = dm.scan_id AND m.domain = dm.domain) AS has_mx,
		EXISTS (SELECT 1 FROM v_domain_addrs x JOIN v_addr a ON a.scan_id = x.scan_id AND a.ip = x.ip
		         WHERE x.scan_id = dm.scan_id AND x.domain = dm.domain AND a.ehlo_ok) AS reachable
	FROM domains dm
)
SELECT d.scan_id, b.bucket, count(*) AS n_domains,
	count(*) FILTER (WHERE d.has_mx) AS n_with_mx,
	count(*) FILTER (WHERE d.reachable) AS n_reachable,
	CASE WHEN count(*) > 0 THEN round(100.0 * count(*) FILTER (WHERE d.reachable) / count(*), 2) END
		AS pct_reachable
FROM d JOIN rank_buckets b ON b.max_rank IS NULL OR d.rank <= b.max_rank
GROUP BY d.scan_id, b.bucket;

-- Provider of a domain: the registered domain of its primary MX host (ties: the first
-- host by name). Concentration: share of mail domains (domains with an MX host).
CREATE VIEW v_domain_provider AS
SELECT p.scan_id, p.domain, p.host, mxs_registered_domain(p.host) AS provider
FROM (SELECT DISTINCT ON (scan_id, domain) scan_id, domain, rtrim(lower(host), '.') AS host
        FROM domain_mx
       ORDER BY scan_id, domain, coalesce(pref, 0), rtrim(lower(host), '.')) p;

CREATE VIEW v_provider_concentration AS
SELECT scan_id, provider, n, n_denom, pct,
	rank() OVER (PARTITION BY scan_id ORDER BY n DESC) AS provider_rank,
	round(100.0 * sum(n) OVER (PARTITION BY scan_id ORDER BY n DESC, provider
	                           ROWS UNBOUNDED PRECEDING) / n_denom, 2) AS cumulative_pct
FROM (
	SELECT scan_id, provider, count(*) AS n, sum(count(*)) OVER (PARTITION BY scan_id) AS n_denom,
		round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY scan_id), 2) AS pct
	FROM v_domain_provider GROUP BY scan_id, provider
) p;

-- What each provider negotiates: version and cipher over the TLS sessions of the
-- addresses of its MX hosts; is_top marks the provider's most common pair.
CREATE VIEW v_provider_tls AS
SELECT scan_id, provider, tls_version, cipher_openssl, cipher, n, n_denom, pct,
	rank() OVER (PARTITION BY scan_id, provider ORDER BY n DESC) = 1 AS is_top
FROM (
	SELECT a.scan_id, p.provider, a.tls_version, a.tls_cipher_openssl AS cipher_openssl,
		a.tls_cipher AS cipher, count(*) AS n,
		sum(count(*)) OVER (PARTITION BY a.scan_id, p.provider) AS n_denom,
		round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY a.scan_id, p.provider), 2) AS pct
	FROM (SELECT DISTINCT scan_id, ip, mxs_registered_domain(host) AS provider FROM v_mx_addrs) p
	JOIN v_addr a ON a.scan_id = p.scan_id AND a.ip = p.ip
	WHERE a.tls_ok
	GROUP BY a.scan_id, p.provider, a.tls_version, a.tls_cipher_openssl, a.tls_cipher
) x;

-- MTA software from the greeting: per address that sent one, and per domain (the most
-- common software among its primary MX addresses).
CREATE VIEW v_mta_software AS
WITH dom AS (
	SELECT d.scan_id, d.domain, mode() WITHIN GROUP (ORDER BY a.software) AS software
	FROM v_domain_addrs d JOIN v_addr a ON a.scan_id = d.scan_id AND a.ip = d.ip
	WHERE d.is_primary AND a.greeting GROUP BY d.scan_id, d.domain
), x AS (
	SELECT scan_id, 'address'::text AS level, software FROM v_addr WHERE greeting
	UNION ALL SELECT scan_id, 'domain', software FROM dom
)
SELECT scan_id, level, software, count(*) AS n,
	sum(count(*)) OVER (PARTITION BY scan_id, level) AS n_denom,
	round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY scan_id, level), 2) AS pct
FROM x GROUP BY scan_id, level, software;

-- STARTTLS tampering by network (/24 for IPv4, /48 for IPv6): networks with any sign.
CREATE VIEW v_tampering_by_network AS
SELECT scan_id, network, count(*) FILTER (WHERE ehlo_ok) AS n_smtp,
	count(*) FILTER (WHERE tamper_mangled_starttls IS NOT NULL) AS n_mangled,
	count(*) FILTER (WHERE tamper_starttls_echo) AS n_echo,
	count(*) FILTER (WHERE tamper_plaintext_after_starttls > 0) AS n_injection,
	count(*) FILTER (WHERE tamper_mangled_starttls IS NOT NULL OR tamper_starttls_echo
	                 OR tamper_plaintext_after_starttls > 0) AS n_any
FROM v_addr
GROUP BY scan_id, network
HAVING count(*) FILTER (WHERE tamper_mangled_starttls IS NOT NULL OR tamper_starttls_echo
                        OR tamper_plaintext_after_starttls > 0) > 0;

-- Downgrade protection of each mail domain (a domain with at least one MX host):
--   dane: the MX answer and every MX host's TLSA records are DNSSEC-validated, and
--         every TLS session with its MX addresses matched them (at least one session);
--   mta-sts-enforce: policy mode enforce and the policy's mx patterns cover its MX;
--   mta-sts-enforce-mismatch: enforce, but the patterns do not cover its MX;
--   mta-sts-testing; none. A domain is in the first class that applies.
CREATE VIEW v_domain_policy AS
SELECT d.scan_id, d.domain, d.rank, d.dnssec, d.mta_sts_mode, d.mta_sts_mx_match,
	(d.tlsrpt_txt IS NOT NULL OR coalesce(cardinality(d.tlsrpt_rua), 0) > 0) AS tlsrpt,
	p.dane_valid,
	CASE WHEN p.dane_valid THEN 'dane'
	     WHEN d.mta_sts_mode = 'enforce' AND d.mta_sts_mx_match IS TRUE THEN 'mta-sts-enforce'
	     WHEN d.mta_sts_mode = 'enforce' THEN 'mta-sts-enforce-mismatch'
	     WHEN d.mta_sts_mode = 'testing' THEN 'mta-sts-testing'
	     ELSE 'none' END AS protection
FROM domains d
CROSS JOIN LATERAL (SELECT
	coalesce(d.dnssec, false)
	AND coalesce(bool_and(coalesce(jsonb_array_length(CASE WHEN jsonb_typeof(m.tlsa) = 'array' THEN m.tlsa END), 0) > 0
	                      AND coalesce(m.tlsa_dnssec, false)), false)
	AND coalesce((SELECT bool_and(coalesce(a.dane_match, false)) AND count(*) > 0
	                FROM domain_mx m2 CROSS JOIN LATERAL unnest(m2.addrs) x(ip)
	                JOIN v_addr a ON a.scan_id = m2.scan_id AND a.ip = x.ip
	               WHERE m2.scan_id = d.scan_id AND m2.domain = d.domain AND a.tls_ok), false)
	AS dane_valid
	FROM domain_mx m WHERE m.scan_id = d.scan_id AND m.domain = d.domain
	HAVING count(*) > 0) p;

CREATE VIEW v_downgrade_protection AS
SELECT p.scan_id, b.bucket, c.protection, count(p.domain) FILTER (WHERE p.protection = c.protection) AS n,
	count(p.domain) AS n_denom,
	CASE WHEN count(p.domain) > 0
	     THEN round(100.0 * count(p.domain) FILTER (WHERE p.protection = c.protection) / count(p.domain), 2) END AS pct
FROM v_domain_policy p
JOIN rank_buckets b ON b.max_rank IS NULL OR p.rank <= b.max_rank
CROSS JOIN (VALUES ('dane'), ('mta-sts-enforce'), ('mta-sts-enforce-mismatch'), ('mta-sts-testing'),
                   ('none')) c(protection)
GROUP BY p.scan_id, b.bucket, c.protection;

CREATE VIEW v_tlsrpt AS
SELECT p.scan_id, b.bucket, count(*) FILTER (WHERE p.tlsrpt) AS n, count(*) AS n_denom,
	round(100.0 * count(*) FILTER (WHERE p.tlsrpt) / count(*), 2) AS pct
FROM v_domain_policy p
JOIN rank_buckets b ON b.max_rank IS NULL OR p.rank <= b.max_rank
GROUP BY p.scan_id, b.bucket;

-- Night-to-night change between two scans, per address present in either.
CREATE FUNCTION mxs_changes(p_from bigint, p_to bigint)
RETURNS TABLE (ip inet, port integer, change text, before text, after text)
LANGUAGE sql STABLE AS $$
	SELECT y.ip, y.port, y.change, y.before, y.after FROM (
		SELECT coalesce(a.ip, b.ip) AS ip, coalesce(a.port, b.port) AS port, c.*
		FROM (SELECT * FROM v_addr WHERE scan_id = p_from) a
		FULL JOIN (SELECT * FROM v_addr WHERE scan_id = p_to) b ON a.ip = b.ip AND a.port = b.port
		CROSS JOIN LATERAL (VALUES
			('appeared', a.ip IS NULL, NULL, b.outcome),
			('disappeared', b.ip IS NULL, a.outcome, NULL),
			('outcome_changed', a.outcome <> b.outcome, a.outcome, b.outcome),
			('gained_starttls', a.ehlo_ok AND b.ehlo_ok AND NOT a.starttls_offered AND b.starttls_offered, 'no', 'yes'),
			('lost_starttls', a.ehlo_ok AND b.ehlo_ok AND a.starttls_offered AND NOT b.starttls_offered, 'yes', 'no'),
			('gained_tls', a.ehlo_ok AND b.ehlo_ok AND NOT a.tls_ok AND b.tls_ok, 'no', 'yes'),
			('lost_tls', a.ehlo_ok AND b.ehlo_ok AND a.tls_ok AND NOT b.tls_ok, 'yes', 'no'),
			('cert_changed', a.tls_ok AND b.tls_ok AND a.leaf_sha256 IS DISTINCT FROM b.leaf_sha256,
			 encode(a.leaf_sha256, 'hex'), encode(b.leaf_sha256, 'hex')),
			('version_changed', a.tls_ok AND b.tls_ok AND a.tls_version IS DISTINCT FROM b.tls_version,
			 a.tls_version, b.tls_version),
			('cipher_changed', a.tls_ok AND b.tls_ok AND a.tls_cipher IS DISTINCT FROM b.tls_cipher,
			 a.tls_cipher, b.tls_cipher)
		) c(change, cond, before, after)
		WHERE c.cond
	) y
$$;

CREATE FUNCTION mxs_change_summary(p_from bigint, p_to bigint)
RETURNS TABLE (change text, n bigint, n_both bigint)
LANGUAGE sql STABLE AS $$
	SELECT c.change, count(*),
		(SELECT count(*) FROM results a JOIN results b ON a.ip = b.ip AND a.port = b.port
		  WHERE a.scan_id = p_from AND b.scan_id = p_to)
	FROM mxs_changes(p_from, p_to) c GROUP BY c.change
$$;

-- Each scan against the scan before it.
CREATE VIEW v_change AS
SELECT p.prev_id AS from_scan, p.id AS to_scan, c.*
FROM (SELECT id, lag(id) OVER (ORDER BY id) AS prev_id FROM scans) p
CROSS JOIN LATERAL mxs_changes(p.prev_id, p.id) c
WHERE p.prev_id IS NOT NULL;

CREATE VIEW v_change_summary AS
SELECT from_scan, to_scan, change, count(*) AS n FROM v_change GROUP BY from_scan, to_scan, change;

-- Headline numbers of every scan, for trends (stored by mxs_rollup for finished scans).
CREATE VIEW v_trend AS
SELECT s.id AS scan_id, s.started_at, s.label,
	CASE WHEN u.scan_id IS NOT NULL THEN u.results
	     ELSE (SELECT count(*) FROM results r WHERE r.scan_id = s.id) END AS results,
	max(v.pct) FILTER (WHERE v.metric = 'starttls_offered' AND v.level = 'address') AS starttls_offered_pct,
	max(v.pct) FILTER (WHERE v.metric = 'starttls_completed' AND v.level = 'address') AS tls_completed_pct,
	max(v.pct) FILTER (WHERE v.metric = 'cert_trusted' AND v.level = 'address') AS trusted_pct,
	max(v.pct) FILTER (WHERE v.metric = 'forward_secrecy' AND v.level = 'address') AS forward_secrecy_pct,
	max(v.pct) FILTER (WHERE v.metric = 'starttls_offered' AND v.level = 'domain'
	                   AND v.rule = 'any_mx' AND v.bucket = 'all') AS domain_starttls_pct,
	CASE WHEN u.scan_id IS NOT NULL THEN u.tls13_pct
	     ELSE (SELECT t.pct FROM v_tls_versions t WHERE t.scan_id = s.id AND t.level = 'address'
	             AND t.version = 'TLSv1.3') END AS tls13_pct
FROM scans s
LEFT JOIN scan_rollups u ON u.scan_id = s.id
LEFT JOIN v_rates v ON v.scan_id = s.id
GROUP BY s.id, s.started_at, s.label, u.scan_id, u.results, u.tls13_pct;

-- Store the rates and trend figures of a scan (done when a scan finishes; run again
-- after changing its rows by hand).
CREATE FUNCTION mxs_rollup(p_scan bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM scans WHERE id = p_scan) THEN
		RAISE EXCEPTION 'no scan %', p_scan;
	END IF;
	-- 28025: this function's key; every ingest batch of the scan takes it shared, so the
	-- rates are computed from rows that no open batch is still adding to
	PERFORM pg_advisory_xact_lock(28025, p_scan::integer);
	DELETE FROM scan_rollups WHERE scan_id = p_scan;
	INSERT INTO scan_rollups (scan_id, results, tls13_pct)
	SELECT p_scan, (SELECT count(*) FROM results WHERE scan_id = p_scan),
		(SELECT pct FROM v_tls_versions WHERE scan_id = p_scan AND level = 'address'
		   AND version = 'TLSv1.3');
	INSERT INTO scan_rates (scan_id, metric, level, rule, bucket, n_denom, n)
	SELECT p_scan, l.metric, l.level, l.rule, l.bucket, l.n_denom, l.n FROM mxs_rates_live(p_scan) l;
END $$;
