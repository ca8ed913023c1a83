-- MTA-STS: why policies fail, and how they change from scan to scan.
--
-- mta_sts_policy_status holds one class per failure since this version (docs/targets.md):
-- ok, dns, blocked, connect, tls, certificate, timeout, http-protocol, too-large,
-- redirect, http-status, content-type, syntax, local-error. Scans stored before it used
-- fewer names (no-address, connect-error, tls-error, cert-error, http-error,
-- bad-content-type, invalid); mxs_sts_class() maps them onto the same classes.

-- The outcome class of a domain's MTA-STS record: NULL without a record; 'record-<status>'
-- when the _mta-sts TXT record is not usable (invalid, multiple, servfail, timeout ...);
-- else the policy fetch's class.
CREATE FUNCTION mxs_sts_class(p_txt_status text, p_policy_status text, p_error text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE
		WHEN p_txt_status IS NULL THEN NULL
		WHEN p_txt_status <> 'ok' THEN 'record-' || p_txt_status
		WHEN p_policy_status IS NULL THEN 'not-fetched'
		WHEN p_policy_status = 'no-address' THEN 'dns'
		WHEN p_policy_status = 'connect-error' THEN 'connect'
		WHEN p_policy_status = 'tls-error' THEN 'tls'
		WHEN p_policy_status = 'cert-error' THEN 'certificate'
		WHEN p_policy_status = 'bad-content-type' THEN 'content-type'
		WHEN p_policy_status = 'invalid' THEN 'syntax'
		WHEN p_policy_status = 'http-error' THEN
			CASE WHEN p_error LIKE 'HTTP status 3%' THEN 'redirect'
			     WHEN p_error LIKE 'HTTP status %' THEN 'http-status'
			     WHEN p_error LIKE '%body-too-large%' THEN 'too-large'
			     ELSE 'http-protocol' END
		ELSE p_policy_status END
$$;

-- Why a certificate failed ('expired', 'not-yet-valid', 'name-mismatch', 'untrusted',
-- 'invalid'): the first word of policy.error; NULL for other classes.
CREATE FUNCTION mxs_sts_cert_reason(p_class text, p_error text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE WHEN p_class = 'certificate' THEN
		CASE WHEN split_part(p_error, ':', 1) IN ('expired', 'not-yet-valid', 'name-mismatch',
		                                          'untrusted', 'invalid')
		     THEN split_part(p_error, ':', 1)
		     WHEN p_error LIKE '%has expired%' THEN 'expired'
		     WHEN p_error LIKE '%hostname mismatch%' THEN 'name-mismatch'
		     ELSE 'invalid' END END
$$;

-- Per scan and rank bucket, domains with an _mta-sts TXT record by outcome class
-- (certificate failures split by reason in `detail`). The denominator is every domain
-- with a record, so the rows of one (scan, bucket) add up to 100 %.
CREATE VIEW v_mta_sts_outcomes AS
SELECT x.scan_id, x.bucket, x.outcome, x.detail, x.n,
	sum(x.n) OVER (PARTITION BY x.scan_id, x.bucket)::bigint AS n_denom,
	round(100.0 * x.n / sum(x.n) OVER (PARTITION BY x.scan_id, x.bucket), 2) AS pct
FROM (
	SELECT d.scan_id, b.bucket, c.outcome, mxs_sts_cert_reason(c.outcome, d.mta_sts_policy_error) AS detail,
		count(*) AS n
	FROM domains d
	CROSS JOIN LATERAL (SELECT mxs_sts_class(d.mta_sts_status, d.mta_sts_policy_status,
	                                         d.mta_sts_policy_error) AS outcome) c
	JOIN rank_buckets b ON b.max_rank IS NULL OR d.rank <= b.max_rank
	WHERE d.mta_sts_status IS NOT NULL
	GROUP BY d.scan_id, b.bucket, c.outcome, 4
) x;

-- What changed in the MTA-STS picture of each domain present in both scans. change:
--   record-added, record-removed      the _mta-sts TXT record appeared / went away
--   id                                the record's id changed (before/after: the ids)
--   outcome                           the outcome class changed (mxs_sts_class)
--   mode, max_age, mx                 a field of the policy changed (both fetched: ok)
--   id-without-policy-change          new id, same policy (mode, max_age, mx as a set)
--   policy-without-id-change          same id, another policy: senders that cached the
--                                     old one keep it until max_age runs out (RFC 8461 3.3)
CREATE FUNCTION mxs_sts_changes(p_from bigint, p_to bigint)
RETURNS TABLE (domain text, change text, before text, after text)
LANGUAGE sql STABLE AS $$
	WITH a AS (
		SELECT d.domain, d.mta_sts_status IS NOT NULL AS has, d.mta_sts_id AS id,
			mxs_sts_class(d.mta_sts_status, d.mta_sts_policy_status, d.mta_sts_policy_error) AS cls,
			d.mta_sts_mode AS mode, d.mta_sts_max_age AS max_age,
			(SELECT string_agg(m, ' ' ORDER BY m) FROM (SELECT DISTINCT m FROM unnest(d.mta_sts_mx) m) u) AS mx
		FROM domains d WHERE d.scan_id = p_from),
	b AS (
		SELECT d.domain, d.mta_sts_status IS NOT NULL AS has, d.mta_sts_id AS id,
			mxs_sts_class(d.mta_sts_status, d.mta_sts_policy_status, d.mta_sts_policy_error) AS cls,
			d.mta_sts_mode AS mode, d.mta_sts_max_age AS max_age,
			(SELECT string_agg(m, ' ' ORDER BY m) FROM (SELECT DISTINCT m FROM unnest(d.mta_sts_mx) m) u) AS mx
		FROM domains d WHERE d.scan_id = p_to)
	SELECT a.domain, c.change, c.before, c.after
	FROM a JOIN b USING (domain)
	CROSS JOIN LATERAL (SELECT a.cls = 'ok' AND b.cls = 'ok' AS both_ok,
	                           (a.mode, a.max_age, a.mx) IS NOT DISTINCT FROM (b.mode, b.max_age, b.mx) AS same) s
	CROSS JOIN LATERAL (VALUES
		('record-added', NULL, b.id, NOT a.has AND b.has),
		('record-removed', a.id, NULL, a.has AND NOT b.has),
		('id', a.id, b.id, a.has AND b.has AND a.id IS DISTINCT FROM b.id),
		('outcome', a.cls, b.cls, a.has AND b.has AND a.cls IS DISTINCT FROM b.cls),
		('mode', a.mode, b.mode, s.both_ok AND a.mode IS DISTINCT FROM b.mode),
		('max_age', a.max_age::text, b.max_age::text, s.both_ok AND a.max_age IS DISTINCT FROM b.max_age),
		('mx', a.mx, b.mx, s.both_ok AND a.mx IS DISTINCT FROM b.mx),
		('id-without-policy-change', a.id, b.id, s.both_ok AND s.same AND a.id IS DISTINCT FROM b.id),
		('policy-without-id-change', a.id, b.id, s.both_ok AND NOT s.same AND a.id IS NOT DISTINCT FROM b.id)
	) c(change, before, after, hit)
	WHERE c.hit
$$;

-- mxs_sts_changes between each scan with domain lines and the one before it that has
-- them (a nightly series). For one pair, call mxs_sts_changes(from, to) directly: this
-- view computes every pair.
CREATE VIEW v_mta_sts_changes AS
SELECT p.prev_scan_id, p.scan_id, c.domain, c.change, c.before, c.after
FROM (SELECT s.id AS scan_id, lag(s.id) OVER (ORDER BY s.id) AS prev_scan_id
        FROM scans s WHERE EXISTS (SELECT 1 FROM domains d WHERE d.scan_id = s.id)) p
CROSS JOIN LATERAL mxs_sts_changes(p.prev_scan_id, p.scan_id) c
WHERE p.prev_scan_id IS NOT NULL;
