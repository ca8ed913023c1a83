-- Services found through SRV records (resolve --services) and guessed host names
-- (--guess-hosts), issue 12; docs/views.md, "Services".
--
-- guessed: the target's host name was guessed, not published by the domain (NULL: it
-- was published, or the row predates this version). The service views below count the
-- published hosts only; v_service_guessed counts the guesses on their own.
-- Certificates are judged per (name, address, protocol): the results row judges the
-- name the address was dialled with, result_names every further name (an SRV target
-- name, or a guess) on the same address and port.

ALTER TABLE results ADD COLUMN guessed boolean;
ALTER TABLE result_names ADD COLUMN guessed boolean;

CREATE OR REPLACE VIEW v_service_results AS
SELECT r.scan_id, r.ip, r.port, p.proto,
	CASE p.proto WHEN 'submissions' THEN 'submission' WHEN 'imaps' THEN 'imap'
	             WHEN 'pop3s' THEN 'pop3' ELSE p.proto END AS service,
	p.proto IN ('submissions', 'imaps', 'pop3s') AS implicit_tls,
	o.name AS outcome,
	o.name NOT IN ('blocked', 'bad-target', 'local-error', 'connection-refused',
	               'connection-timeout', 'unreachable') AS open,
	r.tls_version IS NOT NULL AS tls_ok,
	tv.name AS tls_version, r.tls_cipher, r.tls_trusted, r.tls_name_match, r.tls_expired,
	r.auth_cleartext, r.auth_login, r.auth_mechanisms,
	rtrim(lower(r.mx), '.') AS name, r.domains, coalesce(r.guessed, false) AS guessed
FROM results r
CROSS JOIN LATERAL (SELECT COALESCE(r.proto, 'smtp') AS proto) p
JOIN outcome_names o ON o.code = r.outcome
LEFT JOIN tls_version_names tv ON tv.code = r.tls_version;

CREATE OR REPLACE VIEW v_service_tls_mode AS
WITH a AS (
	SELECT scan_id, service, ip,
	       bool_or(tls_ok AND NOT implicit_tls) AS starttls,
	       bool_or(tls_ok AND implicit_tls) AS implicit
	FROM v_service_results WHERE NOT guessed GROUP BY scan_id, service, ip)
SELECT scan_id, service,
	count(*) FILTER (WHERE starttls OR implicit) AS tls_addresses,
	count(*) FILTER (WHERE starttls AND NOT implicit) AS starttls_only,
	count(*) FILTER (WHERE implicit AND NOT starttls) AS implicit_only,
	count(*) FILTER (WHERE starttls AND implicit) AS both_modes,
	round(100.0 * count(*) FILTER (WHERE implicit) / NULLIF(count(*) FILTER (WHERE starttls OR implicit), 0), 1) AS implicit_pct,
	round(100.0 * count(*) FILTER (WHERE starttls) / NULLIF(count(*) FILTER (WHERE starttls OR implicit), 0), 1) AS starttls_pct
FROM a GROUP BY scan_id, service;

CREATE OR REPLACE VIEW v_service_versions AS
SELECT scan_id, proto, tls_version, count(*) AS results,
	round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY scan_id, proto), 1) AS pct
FROM v_service_results WHERE tls_ok AND NOT guessed GROUP BY scan_id, proto, tls_version;

CREATE OR REPLACE VIEW v_service_ciphers AS
SELECT scan_id, proto, tls_cipher, count(*) AS results,
	round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY scan_id, proto), 1) AS pct
FROM v_service_results WHERE tls_ok AND NOT guessed GROUP BY scan_id, proto, tls_cipher;

CREATE OR REPLACE VIEW v_service_cleartext_auth AS
SELECT scan_id, proto,
	count(*) AS with_capabilities,
	count(*) FILTER (WHERE auth_cleartext) AS cleartext,
	count(*) FILTER (WHERE auth_login) AS login_command,
	count(*) FILTER (WHERE auth_mechanisms && ARRAY['PLAIN', 'LOGIN']) AS plain_or_login_mechanism,
	round(100.0 * count(*) FILTER (WHERE auth_cleartext) / NULLIF(count(*), 0), 1) AS cleartext_pct
FROM v_service_results
WHERE NOT implicit_tls AND auth_cleartext IS NOT NULL AND NOT guessed
GROUP BY scan_id, proto;

CREATE OR REPLACE VIEW v_service_certs AS
SELECT scan_id, proto,
	count(*) AS tls_results,
	count(*) FILTER (WHERE tls_trusted AND tls_name_match IS TRUE AND NOT tls_expired) AS valid,
	count(*) FILTER (WHERE NOT tls_trusted) AS untrusted,
	count(*) FILTER (WHERE tls_name_match IS FALSE) AS name_mismatch,
	count(*) FILTER (WHERE tls_name_match IS NULL) AS no_name,
	count(*) FILTER (WHERE tls_expired) AS expired,
	round(100.0 * count(*) FILTER (WHERE tls_trusted AND tls_name_match IS TRUE AND NOT tls_expired)
	      / NULLIF(count(*), 0), 1) AS valid_pct
FROM v_service_results WHERE tls_ok AND NOT guessed GROUP BY scan_id, proto;

-- Every (name, address, protocol) verdict of the services (not smtp): the name the address
-- was dialled with from its results row, every further name from result_names, with the
-- protocol of the address's results row. valid: trusted, matching the name, not expired.
CREATE VIEW v_service_name_verdicts AS
SELECT v.scan_id, v.proto, v.service, v.name, v.ip, v.port, v.probe, v.domains, v.guessed,
	v.tls, v.trusted, v.name_match, v.expired,
	v.tls AND v.trusted AND v.name_match IS TRUE AND NOT v.expired AS valid
FROM (
	SELECT s.scan_id, s.proto, s.service, s.name, s.ip, s.port, 'address'::text AS probe,
		s.domains, s.guessed, s.tls_ok AS tls, s.tls_trusted AS trusted,
		s.tls_name_match AS name_match, s.tls_expired AS expired
	FROM v_service_results s
	WHERE s.proto <> 'smtp' AND s.name IS NOT NULL
	UNION ALL
	SELECT s.scan_id, s.proto, s.service, n.name, n.ip, n.port, n.probe, n.domains,
		coalesce(n.guessed, false), n.leaf_sha256 IS NOT NULL, n.trusted, n.name_match,
		n.expired
	FROM result_names n
	JOIN v_service_results s ON s.scan_id = n.scan_id AND s.ip = n.ip AND s.port = n.port
	WHERE s.proto <> 'smtp'
) v;

-- Certificate validity per protocol over the published (name, address) pairs with TLS.
CREATE VIEW v_service_name_certs AS
SELECT scan_id, proto,
	count(*) AS tls_pairs,
	count(*) FILTER (WHERE valid) AS valid,
	count(*) FILTER (WHERE NOT trusted) AS untrusted,
	count(*) FILTER (WHERE name_match IS FALSE) AS name_mismatch,
	count(*) FILTER (WHERE expired) AS expired,
	round(100.0 * count(*) FILTER (WHERE valid) / NULLIF(count(*), 0), 1) AS valid_pct
FROM v_service_name_verdicts WHERE tls AND NOT guessed GROUP BY scan_id, proto;

-- Domain -> service -> host -> address, from the "services" object of the domain lines
-- (kept in domains.extra): the complete mapping, where a target line names only the
-- first domain that brought its (name, address) pair. One row per address, one row with
-- NULL host for a service without hosts ("not-offered", no SRV record, a failure).
CREATE VIEW v_domain_service_hosts AS
SELECT d.scan_id, d.domain, s.key AS proto, s.value->>'status' AS srv_status,
	rtrim(lower(h.value->>'host'), '.') AS host, (h.value->>'port')::integer AS port,
	(h.value->>'priority')::integer AS priority, (h.value->>'weight')::integer AS weight,
	coalesce((h.value->>'guessed')::boolean, false) AS guessed,
	h.value->>'status' AS host_status, a.addr::inet AS ip
FROM domains d
CROSS JOIN LATERAL jsonb_each(d.extra->'services') s
LEFT JOIN LATERAL jsonb_array_elements(s.value->'hosts') h ON true
LEFT JOIN LATERAL jsonb_array_elements_text(h.value->'addrs') a(addr) ON true
WHERE d.extra ? 'services';

-- Per domain and protocol: the SRV status, the published (name, address) pairs, and
-- their verdicts: some pair had TLS, every pair with TLS is valid for its name.
CREATE VIEW v_service_domains AS
SELECT m.scan_id, m.domain, m.proto, min(m.srv_status) AS srv_status,
	count(*) FILTER (WHERE m.ip IS NOT NULL AND NOT m.guessed) AS pairs,
	count(*) FILTER (WHERE v.tls AND NOT m.guessed) AS tls_pairs,
	coalesce(bool_or(v.tls) FILTER (WHERE NOT m.guessed), false) AS any_tls,
	coalesce(bool_and(v.valid) FILTER (WHERE v.tls AND NOT m.guessed), false) AS all_valid,
	count(*) FILTER (WHERE m.guessed AND m.ip IS NOT NULL) AS guessed_pairs
FROM v_domain_service_hosts m
LEFT JOIN v_service_name_verdicts v ON v.scan_id = m.scan_id AND v.ip = m.ip
	AND v.port = m.port AND v.name = m.host AND v.proto = m.proto
GROUP BY m.scan_id, m.domain, m.proto;

-- Per scan and protocol, over the domains resolved with --services.
CREATE VIEW v_service_domain_summary AS
SELECT scan_id, proto,
	count(*) AS domains,
	count(*) FILTER (WHERE srv_status = 'ok') AS published,
	count(*) FILTER (WHERE srv_status = 'not-offered') AS not_offered,
	count(*) FILTER (WHERE srv_status IN ('nxdomain', 'nodata')) AS no_srv,
	count(*) FILTER (WHERE any_tls) AS with_tls,
	count(*) FILTER (WHERE any_tls AND all_valid) AS all_valid,
	round(100.0 * count(*) FILTER (WHERE any_tls) / NULLIF(count(*) FILTER (WHERE pairs > 0), 0), 1) AS with_tls_pct,
	round(100.0 * count(*) FILTER (WHERE any_tls AND all_valid)
	      / NULLIF(count(*) FILTER (WHERE any_tls), 0), 1) AS all_valid_pct
FROM v_service_domains GROUP BY scan_id, proto;

-- The guessed hosts on their own, per protocol: how many answered, had TLS, a valid
-- certificate for the guessed name, cleartext authentication before TLS.
CREATE VIEW v_service_guessed AS
SELECT scan_id, proto,
	count(*) AS results,
	count(*) FILTER (WHERE open) AS open,
	count(*) FILTER (WHERE tls_ok) AS tls_ok,
	count(*) FILTER (WHERE tls_ok AND tls_trusted AND tls_name_match IS TRUE AND NOT tls_expired) AS valid,
	count(*) FILTER (WHERE auth_cleartext) AS cleartext
FROM v_service_results WHERE guessed GROUP BY scan_id, proto;
