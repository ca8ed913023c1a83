-- Mail submission and access services (issue 12; docs/views.md, "Services").
--
-- The SMTP views (v_addr and everything built on it) are about port-25 SMTP: from this
-- version v_addr (as 0007 made it: every MX name judged) keeps only rows whose proto is
-- smtp (NULL: stored before 0008, smtp).
-- The other protocols are counted by the v_service_* views below, per scan and protocol.

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
) s
WHERE r.proto IS NULL OR r.proto = 'smtp';

-- One row per result of every protocol, with the service it belongs to (submission
-- for 587 and 465, imap for 143 and 993, pop3 for 110 and 995, smtp) and whether TLS
-- came first (implicit) or after STARTTLS/STLS; tls_ok: a TLS session was established.
CREATE VIEW v_service_results AS
SELECT r.scan_id, r.ip, r.port, p.proto,
	CASE p.proto WHEN 'submissions' THEN 'submission' WHEN 'imaps' THEN 'imap'
	             WHEN 'pop3s' THEN 'pop3' ELSE p.proto END AS service,
	p.proto IN ('submissions', 'imaps', 'pop3s') AS implicit_tls,
	o.name AS outcome,
	o.name NOT IN ('blocked', 'bad-target', 'local-error', 'connection-refused',
	               'connection-timeout', 'unreachable') AS open,
	r.tls_version IS NOT NULL AS tls_ok,
	tv.name AS tls_version, r.tls_cipher, r.tls_trusted, r.tls_name_match, r.tls_expired,
	r.auth_cleartext, r.auth_login, r.auth_mechanisms
FROM results r
CROSS JOIN LATERAL (SELECT COALESCE(r.proto, 'smtp') AS proto) p
JOIN outcome_names o ON o.code = r.outcome
LEFT JOIN tls_version_names tv ON tv.code = r.tls_version;

-- Per scan and service: of the addresses where the service has TLS either way, how many
-- offer it by STARTTLS only, by implicit TLS only, or both (the share of each).
CREATE VIEW v_service_tls_mode AS
WITH a AS (
	SELECT scan_id, service, ip,
	       bool_or(tls_ok AND NOT implicit_tls) AS starttls,
	       bool_or(tls_ok AND implicit_tls) AS implicit
	FROM v_service_results GROUP BY scan_id, service, ip)
SELECT scan_id, service,
	count(*) FILTER (WHERE starttls OR implicit) AS tls_addresses,
	count(*) FILTER (WHERE starttls AND NOT implicit) AS starttls_only,
	count(*) FILTER (WHERE implicit AND NOT starttls) AS implicit_only,
	count(*) FILTER (WHERE starttls AND implicit) AS both_modes,
	round(100.0 * count(*) FILTER (WHERE implicit) / NULLIF(count(*) FILTER (WHERE starttls OR implicit), 0), 1) AS implicit_pct,
	round(100.0 * count(*) FILTER (WHERE starttls) / NULLIF(count(*) FILTER (WHERE starttls OR implicit), 0), 1) AS starttls_pct
FROM a GROUP BY scan_id, service;

-- TLS versions and ciphers per protocol, over the results with TLS.
CREATE VIEW v_service_versions AS
SELECT scan_id, proto, tls_version, count(*) AS results,
	round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY scan_id, proto), 1) AS pct
FROM v_service_results WHERE tls_ok GROUP BY scan_id, proto, tls_version;

CREATE VIEW v_service_ciphers AS
SELECT scan_id, proto, tls_cipher, count(*) AS results,
	round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY scan_id, proto), 1) AS pct
FROM v_service_results WHERE tls_ok GROUP BY scan_id, proto, tls_cipher;

-- Cleartext authentication exposure per protocol, over the results whose capabilities
-- before TLS were read (auth_cleartext not NULL; implicit TLS has no "before").
CREATE VIEW v_service_cleartext_auth AS
SELECT scan_id, proto,
	count(*) AS with_capabilities,
	count(*) FILTER (WHERE auth_cleartext) AS cleartext,
	count(*) FILTER (WHERE auth_login) AS login_command,
	count(*) FILTER (WHERE auth_mechanisms && ARRAY['PLAIN', 'LOGIN']) AS plain_or_login_mechanism,
	round(100.0 * count(*) FILTER (WHERE auth_cleartext) / NULLIF(count(*), 0), 1) AS cleartext_pct
FROM v_service_results
WHERE NOT implicit_tls AND auth_cleartext IS NOT NULL
GROUP BY scan_id, proto;

-- Certificate validity per protocol for the target's name (the MX, or the host name the
-- target named), over the results with TLS: valid = trusted, matching and not expired.
CREATE VIEW v_service_certs AS
SELECT scan_id, proto,
	count(*) AS tls_results,
	count(*) FILTER (WHERE tls_trusted AND tls_name_match IS TRUE AND NOT tls_expired) AS valid,
	count(*) FILTER (WHERE NOT tls_trusted) AS untrusted,
	count(*) FILTER (WHERE tls_name_match IS FALSE) AS name_mismatch,
	count(*) FILTER (WHERE tls_name_match IS NULL) AS no_name,
	count(*) FILTER (WHERE tls_expired) AS expired,
	round(100.0 * count(*) FILTER (WHERE tls_trusted AND tls_name_match IS TRUE AND NOT tls_expired)
	      / NULLIF(count(*), 0), 1) AS valid_pct
FROM v_service_results WHERE tls_ok GROUP BY scan_id, proto;
