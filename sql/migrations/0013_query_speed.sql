-- Query speed at 100,000 addresses and more (issues 13 and 14): the network of each address,
-- the cipher class, v_mail_domains, and JIT compilation. Each part says what it measured.

-- The network of an address in one B-tree probe. The prefixes of one kind in a set nest or
-- are disjoint, so they cut the address space into disjoint ranges, each held by its
-- innermost (longest) prefix. They are computed once, when the set's networks are written
-- (a statement trigger on networks: `mxsurvey db networks` or any other insert), and an
-- address's network is then the range with the greatest first address not above it, if
-- the address is not past its end. With 4,096 named networks and 256 routes, the per-length
-- probes of 0006 took 23 s for 100,000 addresses; this takes well under a second.

CREATE TABLE network_ranges (
	set_id  bigint NOT NULL REFERENCES network_sets (id) ON DELETE CASCADE,
	kind    text NOT NULL,
	lo      inet NOT NULL,   -- first address of the range (full mask length)
	hi      inet NOT NULL,   -- last address of the range
	prefix  cidr NOT NULL,   -- the innermost prefix of this kind holding the range
	name    text NOT NULL,
	contact text,
	asn     bigint,
	PRIMARY KEY (set_id, kind, lo)
);

-- Recompute the ranges of one set: the prefixes of each kind in address order (a prefix
-- before the prefixes inside it), with a stack of the prefixes holding the current one.
CREATE FUNCTION mxs_network_ranges_fill(p_set bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	k text;
	x cidr;
	top cidr;
	stack cidr[];
	n int;
	pos inet;           -- first address not yet given to a range; NULL: past the end
	lo_x inet;
	hi_t inet;
	r_lo inet[] := '{}';
	r_hi inet[] := '{}';
	r_pf cidr[] := '{}';
	r_kind text[] := '{}';
BEGIN
	DELETE FROM network_ranges WHERE set_id = p_set;
	FOREACH k IN ARRAY ARRAY['named', 'route'] LOOP
		stack := '{}';
		n := 0;
		pos := NULL;
		FOR x IN SELECT prefix FROM networks WHERE set_id = p_set AND kind = k ORDER BY prefix LOOP
			-- close the prefixes that end before x (every one, if x is of another family)
			WHILE n > 0 AND NOT stack[n] >>= x LOOP
				top := stack[n];
				hi_t := set_masklen(broadcast(top), CASE WHEN family(top) = 4 THEN 32 ELSE 128 END);
				IF pos IS NOT NULL AND pos <= hi_t THEN
					r_lo := r_lo || pos; r_hi := r_hi || hi_t; r_pf := r_pf || top; r_kind := r_kind || k;
				END IF;
				pos := CASE WHEN host(hi_t) IN ('255.255.255.255', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')
				            THEN NULL ELSE hi_t + 1 END;
				n := n - 1;
			END LOOP;
			lo_x := set_masklen(x::inet, CASE WHEN family(x) = 4 THEN 32 ELSE 128 END);
			-- the part of the enclosing prefix before x
			IF n > 0 AND pos IS NOT NULL AND pos < lo_x THEN
				r_lo := r_lo || pos; r_hi := r_hi || (lo_x - 1); r_pf := r_pf || stack[n]; r_kind := r_kind || k;
			END IF;
			n := n + 1;
			stack[n] := x;
			pos := lo_x;
		END LOOP;
		WHILE n > 0 LOOP
			top := stack[n];
			hi_t := set_masklen(broadcast(top), CASE WHEN family(top) = 4 THEN 32 ELSE 128 END);
			IF pos IS NOT NULL AND pos <= hi_t THEN
				r_lo := r_lo || pos; r_hi := r_hi || hi_t; r_pf := r_pf || top; r_kind := r_kind || k;
			END IF;
			pos := CASE WHEN host(hi_t) IN ('255.255.255.255', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')
			            THEN NULL ELSE hi_t + 1 END;
			n := n - 1;
		END LOOP;
	END LOOP;
	INSERT INTO network_ranges (set_id, kind, lo, hi, prefix, name, contact, asn)
	SELECT p_set, g.kind, g.lo, g.hi, g.prefix, x.name, x.contact, x.asn
	FROM unnest(r_kind, r_lo, r_hi, r_pf) g(kind, lo, hi, prefix)
	JOIN networks x ON x.set_id = p_set AND x.kind = g.kind AND x.prefix = g.prefix;
END $$;

CREATE FUNCTION mxs_networks_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	s bigint;
BEGIN
	IF TG_OP = 'UPDATE' THEN
		FOR s IN SELECT set_id FROM changed UNION SELECT set_id FROM changed_old LOOP
			PERFORM mxs_network_ranges_fill(s);
		END LOOP;
	ELSE
		FOR s IN SELECT DISTINCT set_id FROM changed LOOP
			PERFORM mxs_network_ranges_fill(s);
		END LOOP;
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER networks_ranges_insert AFTER INSERT ON networks
	REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION mxs_networks_changed();
CREATE TRIGGER networks_ranges_update AFTER UPDATE ON networks
	REFERENCING NEW TABLE AS changed OLD TABLE AS changed_old
	FOR EACH STATEMENT EXECUTE FUNCTION mxs_networks_changed();
CREATE TRIGGER networks_ranges_delete AFTER DELETE ON networks
	REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION mxs_networks_changed();

SELECT mxs_network_ranges_fill(id) FROM network_sets;

CREATE OR REPLACE VIEW v_addr_network AS
SELECT r.scan_id, r.ip, r.port, s.network_set_id AS set_id,
	coalesce(n.name, rt.name) AS network, coalesce(n.prefix, rt.prefix) AS prefix,
	n.contact, rt.asn
FROM results r
JOIN scans s ON s.id = r.scan_id
LEFT JOIN LATERAL (SELECT g.name, g.prefix, g.contact FROM (SELECT x.name, x.prefix, x.contact, x.hi
	FROM network_ranges x WHERE x.set_id = s.network_set_id AND x.kind = 'named' AND x.lo <= r.ip
	ORDER BY x.lo DESC LIMIT 1) g WHERE g.hi >= r.ip) n ON true
LEFT JOIN LATERAL (SELECT g.name, g.prefix, g.asn FROM (SELECT x.name, x.prefix, x.asn, x.hi
	FROM network_ranges x WHERE x.set_id = s.network_set_id AND x.kind = 'route' AND x.lo <= r.ip
	ORDER BY x.lo DESC LIMIT 1) g WHERE g.hi >= r.ip) rt ON true;

-- The cipher class as one expression PostgreSQL can inline (the body of 0002 selects from
-- a subquery, so every call went through the SQL-function executor), with substring tests
-- instead of regular expressions: the same classes, about 2 s less per 100,000 addresses
-- in every query that reads v_addr's cipher_class (findings, v_ciphers, the rates).
CREATE OR REPLACE FUNCTION mxs_cipher_class(iana text, ossl text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE
		WHEN coalesce(iana, ossl) IS NULL OR coalesce(iana, ossl) = '' THEN NULL
		WHEN strpos(upper(coalesce(iana, ossl)), 'NULL') > 0 OR strpos(upper(coalesce(iana, ossl)), 'ANON') > 0
		  OR strpos(upper(coalesce(iana, ossl)), 'EXPORT') > 0 OR strpos(upper(coalesce(iana, ossl)), '_ADH_') > 0
		  OR upper(coalesce(iana, ossl)) LIKE 'ADH%' OR strpos(upper(coalesce(iana, ossl)), 'AECDH') > 0
		  THEN 'NULL/anon/export'
		WHEN strpos(upper(coalesce(iana, ossl)), 'RC4') > 0 THEN 'RC4'
		WHEN strpos(upper(coalesce(iana, ossl)), '3DES') > 0 OR strpos(upper(coalesce(iana, ossl)), 'DES_CBC3') > 0
		  OR strpos(upper(coalesce(iana, ossl)), 'DES-CBC3') > 0 THEN '3DES'
		WHEN strpos(upper(coalesce(iana, ossl)), 'GCM') > 0 OR strpos(upper(coalesce(iana, ossl)), 'CHACHA20') > 0
		  OR strpos(upper(coalesce(iana, ossl)), 'POLY1305') > 0 OR strpos(upper(coalesce(iana, ossl)), 'CCM') > 0
		  THEN 'AEAD'
		WHEN strpos(upper(coalesce(iana, ossl)), 'CBC') > 0 OR strpos(upper(coalesce(iana, ossl)), 'SHA') > 0
		  THEN 'CBC'
		ELSE 'other' END
$$;

-- Findings per network compare two scans' findings in full: at 100,000 addresses the
-- plan's estimated cost crosses jit_above_cost, and compiling it took seconds.
ALTER FUNCTION mxs_network_change(bigint, bigint) SET jit = off;
-- Mail domains: each domain's flags once, by joins, instead of two correlated EXISTS
-- per (domain, rank bucket), whose v_domain_addrs recomputed a window over domain_mx
-- every time: 15 s at 100,000 domains, now about 2 s.
CREATE OR REPLACE VIEW v_mail_domains AS
SELECT d.scan_id, b.bucket, count(*) AS n_domains,
	count(*) FILTER (WHERE f.domain IS NOT NULL) AS n_with_mx,
	count(*) FILTER (WHERE f.reachable) AS n_reachable,
	CASE WHEN count(*) > 0 THEN round(100.0 * count(*) FILTER (WHERE f.reachable) / count(*), 2) END
		AS pct_reachable
FROM domains d
LEFT JOIN (SELECT m.scan_id, m.domain, bool_or(a.ehlo_ok) AS reachable
	FROM domain_mx m
	LEFT JOIN LATERAL unnest(m.addrs) u(ip) ON true
	LEFT JOIN (SELECT DISTINCT scan_id, ip, true AS ehlo_ok FROM v_addr WHERE ehlo_ok) a
	  ON a.scan_id = m.scan_id AND a.ip = u.ip
	GROUP BY m.scan_id, m.domain) f ON f.scan_id = d.scan_id AND f.domain = d.domain
JOIN rank_buckets b ON b.max_rank IS NULL OR d.rank <= b.max_rank
GROUP BY d.scan_id, b.bucket;

-- JIT compilation: the views' plans at 100,000 rows and more cross jit_above_cost, and
-- compiling them took longer than running them (v_findings 13.3 s with, 7.8 s without;
-- v_tls_versions 5.3 s against 2.2 s; v_mail_domains 4.1 s against 1.9 s). Off for this
-- database when the migrating role may say so (owner or superuser); the commands that
-- read findings also turn it off in their own session.
DO $$
BEGIN
	EXECUTE format('ALTER DATABASE %I SET jit = off', current_database());
EXCEPTION WHEN insufficient_privilege THEN
	RAISE NOTICE 'jit left as configured: this role may not alter the database';
END $$;
