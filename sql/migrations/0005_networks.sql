-- Customer networks and findings (docs/views.md, "Findings"): an operator's address
-- ranges with who holds each, and per address the problems a customer can act on.

-- A set of networks as loaded by `mxsurvey db networks FILE`. A scan refers to the set
-- that was current when it was created (or the one attached to it later), so its
-- findings are grouped the same way whenever they are reported again.
CREATE TABLE network_sets (
	id        bigserial PRIMARY KEY,
	loaded_at timestamptz NOT NULL DEFAULT now(),
	source    text,                  -- the file's name
	named     bigint NOT NULL DEFAULT 0,   -- cidr,name[,contact] lines
	routes    bigint NOT NULL DEFAULT 0    -- prefix asn lines
);

-- kind 'named': a customer network (name, contact); kind 'route': a routing-table
-- prefix and its origin AS. An address belongs to its longest named prefix, else to
-- its longest route ("AS64500"); its ASN is that of its longest route.
CREATE TABLE networks (
	set_id  bigint NOT NULL REFERENCES network_sets (id) ON DELETE CASCADE,
	kind    text NOT NULL CHECK (kind IN ('named', 'route')),
	prefix  cidr NOT NULL,
	name    text NOT NULL,
	contact text,
	asn     bigint,
	PRIMARY KEY (set_id, kind, prefix)
);
CREATE INDEX networks_prefix ON networks USING gist (prefix inet_ops);

ALTER TABLE scans ADD COLUMN network_set_id bigint REFERENCES network_sets (id) ON DELETE SET NULL;

-- A new scan takes the latest set.
CREATE FUNCTION mxs_scan_network_set() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.network_set_id IS NULL THEN
		NEW.network_set_id := (SELECT max(id) FROM network_sets);
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER scans_network_set BEFORE INSERT ON scans
	FOR EACH ROW EXECUTE FUNCTION mxs_scan_network_set();

-- The problems, each with a stable code, a severity (1 critical: mail goes in clear, is
-- tampered with, or cannot be delivered to senders that check; 2 high: weak or failing
-- protection; 3 medium: the certificate would fail a sender that verifies it) and the
-- sentence a customer reads.
CREATE TABLE finding_codes (
	code        text PRIMARY KEY,
	severity    smallint NOT NULL,
	ord         smallint NOT NULL UNIQUE,
	explanation text NOT NULL
);
CREATE TABLE severity_names (severity smallint PRIMARY KEY, name text NOT NULL UNIQUE);
INSERT INTO severity_names VALUES (1, 'critical'), (2, 'high'), (3, 'medium');
INSERT INTO finding_codes VALUES
	('no-starttls', 1, 1, 'The server does not offer STARTTLS: mail to it travels unencrypted.'),
	('starttls-refused', 1, 2, 'The server offers STARTTLS but refuses it when asked: mail falls back to unencrypted.'),
	('starttls-broken', 1, 3, 'STARTTLS is offered but the TLS handshake fails: senders fall back to unencrypted or cannot deliver.'),
	('tamper-mangled-starttls', 1, 4, 'The STARTTLS offer arrives mangled: something on the path (often a firewall) strips encryption.'),
	('tamper-starttls-echo', 1, 5, 'The answer to STARTTLS is an echo of the command: something on the path intercepts the session.'),
	('tamper-injection', 1, 6, 'Unencrypted data arrived right after the TLS start: something on the path injects data.'),
	('dane-mismatch', 1, 7, 'The published DANE TLSA records do not match the certificate: senders that check DANE will not deliver.'),
	('mta-sts-mismatch', 2, 8, 'The domain''s MTA-STS policy does not list this MX host: senders that apply the policy will not deliver.'),
	('tls-old-version', 2, 9, 'Only TLS 1.0 or 1.1 is negotiated; both are deprecated: enable TLS 1.2 and 1.3.'),
	('weak-cipher', 2, 10, 'A weak cipher was negotiated (no forward secrecy, RC4, 3DES, or Diffie-Hellman under 2048 bits).'),
	('cert-expired', 3, 11, 'The certificate has expired.'),
	('cert-self-signed', 3, 12, 'The certificate is self-signed: no sender can verify it.'),
	('cert-wrong-name', 3, 13, 'The certificate does not name the MX host it serves.'),
	('cert-untrusted', 3, 14, 'The certificate chain does not lead to a trusted authority (missing intermediate or private CA).');

-- Per address: the network it belongs to under its scan's set (NULL network: the scan
-- has no set, or no prefix holds the address).
CREATE VIEW v_addr_network AS
SELECT r.scan_id, r.ip, r.port, s.network_set_id AS set_id,
	coalesce(n.name, rt.name) AS network, coalesce(n.prefix, rt.prefix) AS prefix,
	n.contact, rt.asn
FROM results r
JOIN scans s ON s.id = r.scan_id
LEFT JOIN LATERAL (SELECT x.name, x.prefix, x.contact FROM networks x
	WHERE x.set_id = s.network_set_id AND x.kind = 'named' AND x.prefix >>= r.ip
	ORDER BY masklen(x.prefix) DESC LIMIT 1) n ON true
LEFT JOIN LATERAL (SELECT x.name, x.prefix, x.asn FROM networks x
	WHERE x.set_id = s.network_set_id AND x.kind = 'route' AND x.prefix >>= r.ip
	ORDER BY masklen(x.prefix) DESC LIMIT 1) rt ON true;

-- Per address and problem: the rules, one line each, over v_addr's flags (the same
-- flags the statistics count). detail says what was seen.
CREATE VIEW v_findings AS
SELECT a.scan_id, a.ip, a.port, a.mx, f.code, c.severity, sn.name AS severity_name, c.ord,
	c.explanation, f.detail
FROM v_addr a
LEFT JOIN (SELECT m.scan_id, u.ip, string_agg(DISTINCT m.domain, ' ' ORDER BY m.domain) AS domains
	FROM domain_mx m
	CROSS JOIN unnest(m.addrs) u(ip)
	JOIN domains d ON d.scan_id = m.scan_id AND d.domain = m.domain
	WHERE d.mta_sts_mx_match IS FALSE AND d.mta_sts_mode IN ('enforce', 'testing')
	GROUP BY m.scan_id, u.ip) sts ON sts.scan_id = a.scan_id AND sts.ip = a.ip
CROSS JOIN LATERAL (VALUES
	('no-starttls', a.ehlo_ok AND NOT a.starttls_offered, NULL::text),
	('starttls-refused', a.outcome = 'starttls-refused', NULL),
	('starttls-broken', a.starttls_offered AND NOT a.tls_ok
	   AND (a.starttls_sent OR a.outcome IN ('handshake-error', 'handshake-timeout', 'starttls-timeout'))
	   AND a.outcome NOT IN ('starttls-refused', 'interrupted', 'local-error', 'blocked'), a.outcome),
	('tamper-mangled-starttls', a.tamper_mangled_starttls IS NOT NULL, a.tamper_mangled_starttls),
	('tamper-starttls-echo', a.tamper_starttls_echo IS TRUE, NULL),
	('tamper-injection', a.tamper_plaintext_after_starttls > 0,
	   a.tamper_plaintext_after_starttls || ' bytes'),
	('dane-mismatch', a.tls_ok AND a.dane_tlsa > 0 AND a.dane_match IS FALSE, NULL),
	('mta-sts-mismatch', sts.domains IS NOT NULL, sts.domains),
	('tls-old-version', a.tls_ok AND a.tls_version_code < 771, a.tls_version),
	('weak-cipher', a.tls_ok AND (a.tls_forward_secrecy IS FALSE
	   OR a.cipher_class IN ('RC4', '3DES', 'NULL/anon/export')
	   OR ((a.tls_kex = 'DHE' OR a.tls_kex_group = 'DH' OR a.tls_kex_group LIKE 'ffdhe%')
	       AND a.tls_kex_bits < 2048)),
	   coalesce(a.tls_cipher_openssl, a.tls_cipher)
	   || CASE WHEN a.tls_kex_bits < 2048 AND (a.tls_kex = 'DHE' OR a.tls_kex_group = 'DH'
	                                           OR a.tls_kex_group LIKE 'ffdhe%')
	           THEN ', DH ' || a.tls_kex_bits || ' bits' ELSE '' END),
	('cert-expired', a.tls_ok AND a.tls_expired IS TRUE, NULL),
	('cert-self-signed', a.tls_ok AND a.tls_self_signed IS TRUE, NULL),
	('cert-wrong-name', a.tls_ok AND a.tls_name_match IS FALSE, a.mx),
	('cert-untrusted', a.tls_ok AND a.tls_trusted IS FALSE AND a.tls_expired IS NOT TRUE
	   AND a.tls_self_signed IS NOT TRUE, 'verify code ' || a.tls_verify_code)
) f(code, hit, detail)
JOIN finding_codes c ON c.code = f.code
JOIN severity_names sn ON sn.severity = c.severity
WHERE f.hit;

-- Findings with the network of each address.
CREATE VIEW v_findings_net AS
SELECT f.*, coalesce(n.network, '(no network)') AS network, n.prefix, n.contact, n.asn
FROM v_findings f
JOIN v_addr_network n ON n.scan_id = f.scan_id AND n.ip = f.ip AND n.port = f.port;

-- Per network: addresses scanned, addresses with a problem, problems by severity.
CREATE VIEW v_network_findings AS
SELECT n.scan_id, coalesce(n.network, '(no network)') AS network,
	min(n.contact) AS contact, count(*) AS addresses,
	count(*) FILTER (WHERE f.n > 0) AS with_problems,
	coalesce(sum(f.n1), 0)::bigint AS critical, coalesce(sum(f.n2), 0)::bigint AS high,
	coalesce(sum(f.n3), 0)::bigint AS medium, coalesce(sum(f.n), 0)::bigint AS problems
FROM v_addr_network n
LEFT JOIN (SELECT scan_id, ip, port, count(*) AS n,
	count(*) FILTER (WHERE severity = 1) AS n1, count(*) FILTER (WHERE severity = 2) AS n2,
	count(*) FILTER (WHERE severity = 3) AS n3
	FROM v_findings GROUP BY scan_id, ip, port) f
	ON f.scan_id = n.scan_id AND f.ip = n.ip AND f.port = n.port
GROUP BY n.scan_id, coalesce(n.network, '(no network)');

-- Night to night per network: problems (address, port, code) new in p_to, and fixed
-- (in p_from, gone in p_to, the address scanned in both). Networks as p_to's set has them.
CREATE FUNCTION mxs_network_change(p_from bigint, p_to bigint)
RETURNS TABLE (network text, new_problems bigint, fixed_problems bigint, problems bigint)
LANGUAGE sql STABLE AS $$
	WITH cur AS (SELECT ip, port, code FROM v_findings WHERE scan_id = p_to),
	prev AS (SELECT ip, port, code FROM v_findings WHERE scan_id = p_from),
	both_addr AS (SELECT a.ip, a.port FROM results a JOIN results b
		ON b.scan_id = p_from AND b.ip = a.ip AND b.port = a.port WHERE a.scan_id = p_to),
	nets AS (SELECT ip, port, coalesce(network, '(no network)') AS network
		FROM v_addr_network WHERE scan_id = p_to),
	ch AS (SELECT c.ip, c.port, 1 AS new, 0 AS fixed FROM cur c
		WHERE NOT EXISTS (SELECT 1 FROM prev p WHERE p.ip = c.ip AND p.port = c.port AND p.code = c.code)
		UNION ALL
		SELECT p.ip, p.port, 0, 1 FROM prev p JOIN both_addr b ON b.ip = p.ip AND b.port = p.port
		WHERE NOT EXISTS (SELECT 1 FROM cur c WHERE c.ip = p.ip AND c.port = p.port AND c.code = p.code)
		UNION ALL
		SELECT c.ip, c.port, 0, 0 FROM cur c)
	SELECT n.network, sum(ch.new)::bigint, sum(ch.fixed)::bigint,
		count(*) FILTER (WHERE ch.new = 0 AND ch.fixed = 0)::bigint
	FROM ch JOIN nets n ON n.ip = ch.ip AND n.port = ch.port
	GROUP BY n.network
$$;
