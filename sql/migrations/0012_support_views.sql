-- Legacy TLS support statistics (issue 11): what addresses accept, from the support_*
-- columns of the legacy probes (docs/record.md "support"), next to what
-- they negotiate. docs/views.md, "Legacy TLS accepted", gives every denominator.
--
-- An address is "probed" when its row has a support object (support_connections is set:
-- the scan ran with --probes legacy and the address completed the normal probe far enough
-- to be asked). Inside a probed row NULL means "not answered within the budget": each
-- rate's denominator is the probed addresses that answered its question.

INSERT INTO metrics VALUES
	('accepts_sslv3', 'accepts', 1, 'accepts SSLv3',
	 'addresses the legacy probes asked about SSLv3', 23),
	('accepts_tls1_0', 'accepts', 2, 'accepts TLS 1.0',
	 'addresses the legacy probes asked about TLS 1.0', 24),
	('accepts_tls1_0_only', 'accepts', 3, 'nothing newer than TLS 1.0',
	 'addresses the legacy probes asked about TLS 1.1, 1.2 and 1.3 that accept some version', 25),
	('accepts_rc4', 'accepts', 4, 'accepts RC4',
	 'addresses the legacy probes asked about RC4', 26),
	('accepts_3des', 'accepts', 5, 'accepts 3DES',
	 'addresses the legacy probes asked about 3DES', 27),
	('accepts_weak', 'accepts', 6, 'accepts export, NULL or anonymous suites',
	 'addresses the legacy probes asked about export, NULL and anonymous suites', 28),
	('accepts_dh_small', 'accepts', 7, 'finite-field DHE under 2048 bits',
	 'addresses the legacy probes ran on (no DHE suite chosen: not a hit)', 29),
	('accepts_injection', 'accepts', 8, 'STARTTLS command injection (NOOP answered inside TLS)',
	 'addresses the legacy probes tested for injection', 30);

-- The masks of 0002 with the eight support metrics (bits 23-30) added; the support
-- columns come from the results row itself (v_addr does not carry them).
CREATE OR REPLACE VIEW v_addr_bits AS
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
	| mxs_fact(23, r.support_sslv3 IS NOT NULL, r.support_sslv3)  -- accepts_sslv3
	| mxs_fact(24, r.support_tls1_0 IS NOT NULL, r.support_tls1_0)  -- accepts_tls1_0
	| mxs_fact(25, r.support_tls1_1 IS NOT NULL AND r.support_tls1_2 IS NOT NULL
		       AND r.support_tls1_3 IS NOT NULL
		       AND (r.support_sslv3 OR r.support_tls1_0 OR r.support_tls1_1 OR r.support_tls1_2
		            OR r.support_tls1_3),
		     NOT (r.support_tls1_1 OR r.support_tls1_2 OR r.support_tls1_3))  -- accepts_tls1_0_only
	| mxs_fact(26, r.support_rc4 IS NOT NULL, r.support_rc4)  -- accepts_rc4
	| mxs_fact(27, r.support_3des IS NOT NULL, r.support_3des)  -- accepts_3des
	| mxs_fact(28, r.support_export IS NOT NULL AND r.support_null IS NOT NULL
		       AND r.support_anon IS NOT NULL,
		     r.support_export OR r.support_null OR r.support_anon)  -- accepts_weak
	| mxs_fact(29, r.support_connections IS NOT NULL, r.support_dhe_bits < 2048)  -- accepts_dh_small
	| mxs_fact(30, r.support_starttls_injection IS NOT NULL, r.support_starttls_injection)  -- accepts_injection
	AS f
	FROM v_addr a
	JOIN results r ON r.scan_id = a.scan_id AND r.ip = a.ip AND r.port = a.port) x;

CREATE VIEW v_legacy_support AS SELECT * FROM v_rates WHERE grp = 'accepts';

-- Per probed address: the oldest version and the weakest suite class it accepts.
-- version_rank 1 SSLv3 .. 5 TLSv1.3 (NULL: no version accepted or none answered);
-- class_rank 4 export/NULL/anon, 3 RC4, 2 3DES, 1 CBC only, 0 none of these.
CREATE VIEW v_addr_support AS
SELECT r.scan_id, r.ip, r.port, v.version_rank,
	(ARRAY['SSLv3', 'TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'])[v.version_rank] AS worst_version,
	c.class_rank,
	(ARRAY['none of these', 'CBC only', '3DES', 'RC4', 'export/NULL/anon'])[c.class_rank + 1] AS worst_class,
	r.support_dhe_bits AS dhe_bits, r.support_starttls_injection AS starttls_injection,
	r.support_connections AS connections, r.support_exhausted AS exhausted
FROM results r
CROSS JOIN LATERAL (SELECT CASE WHEN r.support_sslv3 THEN 1 WHEN r.support_tls1_0 THEN 2
	WHEN r.support_tls1_1 THEN 3 WHEN r.support_tls1_2 THEN 4 WHEN r.support_tls1_3 THEN 5 END
	AS version_rank) v
CROSS JOIN LATERAL (SELECT CASE WHEN r.support_export OR r.support_null OR r.support_anon THEN 4
	WHEN r.support_rc4 THEN 3 WHEN r.support_3des THEN 2 WHEN r.support_cbc_only THEN 1
	ELSE 0 END AS class_rank) c
WHERE r.support_connections IS NOT NULL;

-- The oldest version accepted: per probed address, per MX host (the oldest over its
-- probed addresses) and per domain (over the probed addresses of all its MX hosts).
CREATE VIEW v_support_worst_version AS
WITH mx AS (
	SELECT m.scan_id, m.host, min(s.version_rank) AS version_rank
	FROM v_mx_addrs m JOIN v_addr_support s ON s.scan_id = m.scan_id AND s.ip = m.ip
	GROUP BY m.scan_id, m.host
), dom AS (
	SELECT d.scan_id, d.domain, min(s.version_rank) AS version_rank
	FROM v_domain_addrs d JOIN v_addr_support s ON s.scan_id = d.scan_id AND s.ip = d.ip
	GROUP BY d.scan_id, d.domain
), x AS (
	SELECT scan_id, 'address'::text AS level, version_rank FROM v_addr_support
	UNION ALL SELECT scan_id, 'mx', version_rank FROM mx
	UNION ALL SELECT scan_id, 'domain', version_rank FROM dom
)
SELECT scan_id, level,
	coalesce((ARRAY['SSLv3', 'TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'])[version_rank],
	         'none answered') AS worst_version,
	count(*) AS n, sum(count(*)) OVER (PARTITION BY scan_id, level) AS n_denom,
	round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY scan_id, level), 2) AS pct
FROM x GROUP BY scan_id, level, version_rank;

-- Per provider (registered domain of an MX host, as v_provider_tls): over the probed
-- addresses of its MX hosts, the oldest version and weakest class any of them accepts,
-- how many accept RC4, SSLv3, TLS 1.0, small DH or answer an injected command, next to
-- the provider's most common negotiated version and cipher (what it does by default).
CREATE VIEW v_provider_support AS
WITH p AS (
	SELECT DISTINCT scan_id, ip, mxs_registered_domain(host) AS provider FROM v_mx_addrs
), s AS (
	SELECT p.scan_id, p.provider, count(*) AS n_probed,
		min(a.version_rank) AS version_rank, max(a.class_rank) AS class_rank,
		count(*) FILTER (WHERE a.version_rank = 1) AS n_sslv3,
		count(*) FILTER (WHERE a.version_rank <= 2) AS n_tls1_0,
		count(*) FILTER (WHERE r.support_rc4) AS n_rc4,
		count(*) FILTER (WHERE a.dhe_bits < 2048) AS n_dh_small,
		count(*) FILTER (WHERE a.starttls_injection) AS n_injection
	FROM p
	JOIN v_addr_support a ON a.scan_id = p.scan_id AND a.ip = p.ip
	JOIN results r ON r.scan_id = a.scan_id AND r.ip = a.ip AND r.port = a.port
	GROUP BY p.scan_id, p.provider
), d AS (
	SELECT DISTINCT ON (scan_id, provider) scan_id, provider, tls_version, cipher_openssl, cipher
	FROM v_provider_tls
	ORDER BY scan_id, provider, n DESC, tls_version DESC, cipher_openssl
)
SELECT s.scan_id, s.provider, s.n_probed,
	(ARRAY['SSLv3', 'TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'])[s.version_rank] AS worst_version,
	(ARRAY['none of these', 'CBC only', '3DES', 'RC4', 'export/NULL/anon'])[s.class_rank + 1] AS worst_class,
	s.n_sslv3, s.n_tls1_0, s.n_rc4, s.n_dh_small, s.n_injection,
	d.tls_version AS default_version, coalesce(d.cipher, d.cipher_openssl) AS default_cipher
FROM s LEFT JOIN d ON d.scan_id = s.scan_id AND d.provider = s.provider;
