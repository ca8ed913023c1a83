-- Values stored once (issue 14, storage per result). A result row held its EHLO replies,
-- extension lists, STARTTLS reply, cipher names and chain as text, though most rows repeat
-- a few thousand distinct values: now each distinct value is a row of a dictionary shared
-- by all scans (mxs_texts, mxs_lists, mxs_chains) and the result row holds its id.
--
-- The id is the value's content address: the first 63 bits of the SHA-256 of its key (a
-- kind byte 't', 'l' or 'c'; a text's UTF-8 bytes; for a list, each element as a 4-byte
-- big-endian length and its bytes, 0xffffffff for NULL). ingest computes it without
-- asking (ingest/intern.h); mxs_text_id(), mxs_list_id() and mxs_chain_id() compute the
-- same here.
--
-- The rows move to result_rows (same partitions results_s<N>), and results becomes a view
-- that shows every column as before, in the same order and types: every view, function
-- and query reading results gives the same rows (a join the query does not need is left
-- out by the planner). Reply lines keep their first line, which names the host, in the
-- row (greeting_first, ehlo_first, ehlo_tls_first: a lone backslash, which no escape-form
-- string is, means "the same as ehlo_first") and the other lines as a list id
-- (<x>_rest; NULL when the reply is NULL, the empty list's id when it had no lines).
-- ehlo_name, profile, ehlo_verb and ehlo_tls_verb are one list (names_id; proto, which
-- views filter on, keeps a column and its statistics), the
-- cipher, kex, signature names and verify reason another (tls_names_id); NULL when all
-- of the group are. Columns are ordered for alignment (8, 4, 2, 1 bytes, then
-- variable).

CREATE TABLE mxs_texts (id bigint PRIMARY KEY, t text NOT NULL);
CREATE TABLE mxs_lists (id bigint PRIMARY KEY, l text[] NOT NULL);
CREATE TABLE mxs_chains (id bigint PRIMARY KEY, c bytea[] NOT NULL);

CREATE FUNCTION mxs_id_of(k bytea) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	SELECT ('x' || encode(substr(sha256(k), 1, 8), 'hex'))::bit(64)::bigint & 9223372036854775807
$$;

CREATE FUNCTION mxs_text_id(t text) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	SELECT mxs_id_of('\x74'::bytea || convert_to(t, 'UTF8'))
$$;

CREATE FUNCTION mxs_list_id(l text[]) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	SELECT mxs_id_of('\x6c'::bytea || coalesce((
		SELECT string_agg(CASE WHEN e IS NULL THEN '\xffffffff'::bytea
		                  ELSE int4send(octet_length(convert_to(e, 'UTF8'))) || convert_to(e, 'UTF8') END,
		                  ''::bytea ORDER BY i)
		FROM unnest(l) WITH ORDINALITY u(e, i)), ''::bytea))
$$;

CREATE FUNCTION mxs_chain_id(c bytea[]) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	SELECT mxs_id_of('\x63'::bytea || coalesce((
		SELECT string_agg(CASE WHEN e IS NULL THEN '\xffffffff'::bytea
		                  ELSE int4send(octet_length(e)) || e END, ''::bytea ORDER BY i)
		FROM unnest(c) WITH ORDINALITY u(e, i)), ''::bytea))
$$;

-- Store a value once and return its id (NULL for NULL): for rows written by hand.
CREATE FUNCTION mxs_intern_text(t text) RETURNS bigint
LANGUAGE sql STRICT AS $$
	INSERT INTO mxs_texts VALUES (mxs_text_id(t), t) ON CONFLICT (id) DO NOTHING;
	SELECT mxs_text_id(t);
$$;

CREATE FUNCTION mxs_intern_list(l text[]) RETURNS bigint
LANGUAGE sql STRICT AS $$
	INSERT INTO mxs_lists VALUES (mxs_list_id(l), l) ON CONFLICT (id) DO NOTHING;
	SELECT mxs_list_id(l);
$$;

CREATE FUNCTION mxs_intern_chain(c bytea[]) RETURNS bigint
LANGUAGE sql STRICT AS $$
	INSERT INTO mxs_chains VALUES (mxs_chain_id(c), c) ON CONFLICT (id) DO NOTHING;
	SELECT mxs_chain_id(c);
$$;

-- Reply lines split as result_rows stores them.
CREATE FUNCTION mxs_first_line(l text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE WHEN array_lower(l, 1) = 1 THEN l[1] END
$$;

CREATE FUNCTION mxs_other_lines(l text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE WHEN l IS NULL THEN NULL WHEN mxs_first_line(l) IS NULL THEN l ELSE l[2:] END
$$;

-- The rows so far, under another name while they are converted.
ALTER TABLE results RENAME TO results_old;
ALTER INDEX results_pkey RENAME TO results_old_pkey;
DO $$
DECLARE p regclass;
BEGIN
	FOR p IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'results_old'::regclass LOOP
		EXECUTE format('ALTER TABLE %s RENAME TO %I', p, replace(p::text, 'results_s', 'results_old_s'));
	END LOOP;
END $$;

CREATE TABLE result_rows (
	scan_id                         bigint NOT NULL,
	start                           timestamptz,
	greeting_rest                   bigint,
	ehlo_rest                       bigint,
	ehlo_extensions_id              bigint,
	starttls_lines_id               bigint,
	ehlo_tls_rest                   bigint,
	ehlo_tls_extensions_id          bigint,
	auth_mechanisms_id              bigint,
	auth_mechanisms_tls_id          bigint,
	names_id                        bigint,
	tls_names_id                    bigint,
	chain_id                        bigint,
	port                            integer NOT NULL,
	tls_kex_bits                    integer,
	tls_verify_code                 integer,
	dane_tlsa                       integer,
	tamper_plaintext_after_starttls integer,
	t_connect                       integer,
	t_greeting                      integer,
	t_ehlo                          integer,
	t_starttls                      integer,
	t_handshake                     integer,
	t_ehlo_tls                      integer,
	t_total                         integer,
	support_dhe_bits                integer,
	v                               smallint,
	outcome                         smallint NOT NULL,
	phase                           smallint,
	attempts                        smallint,
	greeting_code                   smallint,
	ehlo_code                       smallint,
	starttls_code                   smallint,
	tls_version                     smallint,
	tls_cipher_bits                 smallint,
	dane_depth                      smallint,
	ehlo_tls_code                   smallint,
	support_connections             smallint,
	support_budget                  smallint,
	tls_forward_secrecy             boolean,
	tls_trusted                     boolean,
	tls_name_match                  boolean,
	tls_expired                     boolean,
	tls_not_yet_valid               boolean,
	tls_self_signed                 boolean,
	dane_dnssec                     boolean,
	dane_match                      boolean,
	tamper_starttls_echo            boolean,
	auth_login                      boolean,
	auth_cleartext                  boolean,
	auth_login_tls                  boolean,
	guessed                         boolean,
	support_sslv3                   boolean,
	support_tls1_0                  boolean,
	support_tls1_1                  boolean,
	support_tls1_2                  boolean,
	support_tls1_3                  boolean,
	support_rc4                     boolean,
	support_3des                    boolean,
	support_export                  boolean,
	support_null                    boolean,
	support_anon                    boolean,
	support_cbc_only                boolean,
	support_server_order            boolean,
	support_fallback_scsv           boolean,
	support_secure_renegotiation    boolean,
	support_starttls_injection      boolean,
	support_exhausted               boolean,
	ip                              inet NOT NULL,
	proto                           text,
	mx                              text,
	mx_names                        text[],
	domains                         text[],
	input                           text,
	detail                          text,
	greeting_first                  text,
	ehlo_first                      text,
	tls_matched_names               text[],
	ehlo_tls_first                  text,
	tamper_mangled_starttls         text,
	transcript                      jsonb,
	extra                           jsonb,
	support_prefer_sslv3            text,
	support_prefer_tls1_0           text,
	support_prefer_tls1_1           text,
	support_prefer_tls1_2           text,
	support_prefer_tls1_3           text,
	support_groups                  text[],
	PRIMARY KEY (scan_id, ip, port)
) PARTITION BY LIST (scan_id);

CREATE VIEW results AS
SELECT r.scan_id,
	r.ip,
	r.port,
	r.v,
	r.mx,
	r.mx_names,
	r.domains,
	r.input,
	r.start,
	r.outcome,
	r.phase,
	r.detail,
	r.attempts,
	nm.l[1] AS ehlo_name,
	nm.l[2] AS profile,
	r.greeting_code,
	CASE WHEN r.greeting_rest IS NULL THEN NULL WHEN r.greeting_first IS NULL THEN gr.l
	            ELSE r.greeting_first || gr.l END AS greeting_lines,
	nm.l[3] AS ehlo_verb,
	r.ehlo_code,
	CASE WHEN r.ehlo_rest IS NULL THEN NULL WHEN r.ehlo_first IS NULL THEN er.l
	            ELSE r.ehlo_first || er.l END AS ehlo_lines,
	ee.l AS ehlo_extensions,
	r.starttls_code,
	sl.l AS starttls_lines,
	r.tls_version,
	tn.l[1] AS tls_cipher,
	tn.l[2] AS tls_cipher_openssl,
	r.tls_cipher_bits,
	r.tls_forward_secrecy,
	tn.l[3] AS tls_kex,
	tn.l[4] AS tls_kex_group,
	r.tls_kex_bits,
	tn.l[5] AS tls_sig_alg,
	r.tls_verify_code,
	tn.l[6] AS tls_verify_reason,
	r.tls_trusted,
	r.tls_name_match,
	r.tls_matched_names,
	r.tls_expired,
	r.tls_not_yet_valid,
	r.tls_self_signed,
	r.dane_tlsa,
	r.dane_dnssec,
	r.dane_match,
	r.dane_depth,
	ch.c AS chain_sha256,
	nm.l[4] AS ehlo_tls_verb,
	r.ehlo_tls_code,
	CASE WHEN r.ehlo_tls_rest IS NULL THEN NULL WHEN r.ehlo_tls_first IS NULL THEN tr.l
	            WHEN r.ehlo_tls_first = E'\\' THEN r.ehlo_first || tr.l ELSE r.ehlo_tls_first || tr.l END AS ehlo_tls_lines,
	te.l AS ehlo_tls_extensions,
	r.tamper_mangled_starttls,
	r.tamper_starttls_echo,
	r.tamper_plaintext_after_starttls,
	r.t_connect,
	r.t_greeting,
	r.t_ehlo,
	r.t_starttls,
	r.t_handshake,
	r.t_ehlo_tls,
	r.t_total,
	r.transcript,
	r.extra,
	r.proto,
	am.l AS auth_mechanisms,
	r.auth_login,
	r.auth_cleartext,
	amt.l AS auth_mechanisms_tls,
	r.auth_login_tls,
	r.guessed,
	r.support_sslv3,
	r.support_tls1_0,
	r.support_tls1_1,
	r.support_tls1_2,
	r.support_tls1_3,
	r.support_rc4,
	r.support_3des,
	r.support_export,
	r.support_null,
	r.support_anon,
	r.support_cbc_only,
	r.support_prefer_sslv3,
	r.support_prefer_tls1_0,
	r.support_prefer_tls1_1,
	r.support_prefer_tls1_2,
	r.support_prefer_tls1_3,
	r.support_server_order,
	r.support_dhe_bits,
	r.support_groups,
	r.support_fallback_scsv,
	r.support_secure_renegotiation,
	r.support_starttls_injection,
	r.support_connections,
	r.support_budget,
	r.support_exhausted
FROM result_rows r
LEFT JOIN mxs_lists nm ON nm.id = r.names_id
LEFT JOIN mxs_lists gr ON gr.id = r.greeting_rest
LEFT JOIN mxs_lists er ON er.id = r.ehlo_rest
LEFT JOIN mxs_lists ee ON ee.id = r.ehlo_extensions_id
LEFT JOIN mxs_lists sl ON sl.id = r.starttls_lines_id
LEFT JOIN mxs_lists tn ON tn.id = r.tls_names_id
LEFT JOIN mxs_chains ch ON ch.id = r.chain_id
LEFT JOIN mxs_lists tr ON tr.id = r.ehlo_tls_rest
LEFT JOIN mxs_lists te ON te.id = r.ehlo_tls_extensions_id
LEFT JOIN mxs_lists am ON am.id = r.auth_mechanisms_id
LEFT JOIN mxs_lists amt ON amt.id = r.auth_mechanisms_tls_id;

-- A row deleted through the view (by hand, or a test) is deleted from result_rows.
CREATE FUNCTION mxs_results_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM result_rows WHERE scan_id = OLD.scan_id AND ip = OLD.ip AND port = OLD.port;
	RETURN OLD;
END $$;
CREATE TRIGGER results_delete INSTEAD OF DELETE ON results
	FOR EACH ROW EXECUTE FUNCTION mxs_results_delete();

-- A new scan's results partition is one of result_rows: the function as it stands, with
-- that parent changed (whatever else it creates stays as it is).
DO $$
DECLARE d text := pg_get_functiondef('mxs_scan_partitions(bigint)'::regprocedure);
BEGIN
	IF position('PARTITION OF results FOR' IN d) = 0 THEN
		RAISE EXCEPTION 'mxs_scan_partitions does not create a results partition: %', d;
	END IF;
	EXECUTE replace(d, 'PARTITION OF results FOR', 'PARTITION OF result_rows FOR');
END $$;

-- Every scan's rows, converted; its old partition dropped right after (peak space: one
-- scan's partition twice). Each distinct value's id is computed once (m_lists, m_chains).
DO $$
DECLARE s bigint;
BEGIN
	FOR s IN SELECT substr(inhrelid::regclass::text, 14)::bigint FROM pg_inherits
	         WHERE inhparent = 'results_old'::regclass ORDER BY 1 LOOP
		EXECUTE format($i$
			CREATE TEMP TABLE m_lists AS
			SELECT v, mxs_list_id(v) AS id FROM (
				SELECT mxs_other_lines(o.greeting_lines) FROM %1$I o
				UNION SELECT mxs_other_lines(o.ehlo_lines) FROM %1$I o
				UNION SELECT o.ehlo_extensions FROM %1$I o
				UNION SELECT o.starttls_lines FROM %1$I o
				UNION SELECT mxs_other_lines(o.ehlo_tls_lines) FROM %1$I o
				UNION SELECT o.ehlo_tls_extensions FROM %1$I o
				UNION SELECT o.auth_mechanisms FROM %1$I o
				UNION SELECT o.auth_mechanisms_tls FROM %1$I o
				UNION SELECT NULLIF(ARRAY[o.ehlo_name, o.profile, o.ehlo_verb, o.ehlo_tls_verb], '{NULL,NULL,NULL,NULL}'::text[]) FROM %1$I o
				UNION SELECT NULLIF(ARRAY[o.tls_cipher, o.tls_cipher_openssl, o.tls_kex, o.tls_kex_group, o.tls_sig_alg, o.tls_verify_reason], '{NULL,NULL,NULL,NULL,NULL,NULL}'::text[]) FROM %1$I o
			) d (v) WHERE v IS NOT NULL;
			CREATE TEMP TABLE m_chains AS
			SELECT c, mxs_chain_id(c) AS id FROM (SELECT DISTINCT chain_sha256 FROM %1$I) d (c)
			WHERE c IS NOT NULL;
			INSERT INTO mxs_lists SELECT id, v FROM m_lists ORDER BY id ON CONFLICT (id) DO NOTHING;
			INSERT INTO mxs_chains SELECT id, c FROM m_chains ORDER BY id ON CONFLICT (id) DO NOTHING;
			ANALYZE m_lists;
			ANALYZE m_chains;
			$i$, 'results_old_s' || s);
		EXECUTE format('CREATE TABLE %I PARTITION OF result_rows FOR VALUES IN (%s)', 'results_s' || s, s);
		EXECUTE format($i$
		INSERT INTO result_rows (proto, scan_id, start, greeting_rest, ehlo_rest, ehlo_extensions_id, starttls_lines_id, ehlo_tls_rest, ehlo_tls_extensions_id, auth_mechanisms_id, auth_mechanisms_tls_id, names_id, tls_names_id, chain_id, port, tls_kex_bits, tls_verify_code, dane_tlsa, tamper_plaintext_after_starttls, t_connect, t_greeting, t_ehlo, t_starttls, t_handshake, t_ehlo_tls, t_total, support_dhe_bits, v, outcome, phase, attempts, greeting_code, ehlo_code, starttls_code, tls_version, tls_cipher_bits, dane_depth, ehlo_tls_code, support_connections, support_budget, tls_forward_secrecy, tls_trusted, tls_name_match, tls_expired, tls_not_yet_valid, tls_self_signed, dane_dnssec, dane_match, tamper_starttls_echo, auth_login, auth_cleartext, auth_login_tls, guessed, support_sslv3, support_tls1_0, support_tls1_1, support_tls1_2, support_tls1_3, support_rc4, support_3des, support_export, support_null, support_anon, support_cbc_only, support_server_order, support_fallback_scsv, support_secure_renegotiation, support_starttls_injection, support_exhausted, ip, mx, mx_names, domains, input, detail, greeting_first, ehlo_first, tls_matched_names, ehlo_tls_first, tamper_mangled_starttls, transcript, extra, support_prefer_sslv3, support_prefer_tls1_0, support_prefer_tls1_1, support_prefer_tls1_2, support_prefer_tls1_3, support_groups)
		SELECT o.proto, o.scan_id,
			o.start,
			m1.id,
			m2.id,
			m3.id,
			m4.id,
			m5.id,
			m6.id,
			m7.id,
			m8.id,
			m9.id,
			m10.id,
			mc.id,
			o.port,
			o.tls_kex_bits,
			o.tls_verify_code,
			o.dane_tlsa,
			o.tamper_plaintext_after_starttls,
			o.t_connect,
			o.t_greeting,
			o.t_ehlo,
			o.t_starttls,
			o.t_handshake,
			o.t_ehlo_tls,
			o.t_total,
			o.support_dhe_bits,
			o.v,
			o.outcome,
			o.phase,
			o.attempts,
			o.greeting_code,
			o.ehlo_code,
			o.starttls_code,
			o.tls_version,
			o.tls_cipher_bits,
			o.dane_depth,
			o.ehlo_tls_code,
			o.support_connections,
			o.support_budget,
			o.tls_forward_secrecy,
			o.tls_trusted,
			o.tls_name_match,
			o.tls_expired,
			o.tls_not_yet_valid,
			o.tls_self_signed,
			o.dane_dnssec,
			o.dane_match,
			o.tamper_starttls_echo,
			o.auth_login,
			o.auth_cleartext,
			o.auth_login_tls,
			o.guessed,
			o.support_sslv3,
			o.support_tls1_0,
			o.support_tls1_1,
			o.support_tls1_2,
			o.support_tls1_3,
			o.support_rc4,
			o.support_3des,
			o.support_export,
			o.support_null,
			o.support_anon,
			o.support_cbc_only,
			o.support_server_order,
			o.support_fallback_scsv,
			o.support_secure_renegotiation,
			o.support_starttls_injection,
			o.support_exhausted,
			o.ip,
			o.mx,
			o.mx_names,
			o.domains,
			o.input,
			o.detail,
			mxs_first_line(o.greeting_lines),
			mxs_first_line(o.ehlo_lines),
			o.tls_matched_names,
			CASE WHEN mxs_first_line(o.ehlo_tls_lines) = mxs_first_line(o.ehlo_lines) THEN E'\\'
			            ELSE mxs_first_line(o.ehlo_tls_lines) END,
			o.tamper_mangled_starttls,
			o.transcript,
			o.extra,
			o.support_prefer_sslv3,
			o.support_prefer_tls1_0,
			o.support_prefer_tls1_1,
			o.support_prefer_tls1_2,
			o.support_prefer_tls1_3,
			o.support_groups
		FROM %I o
		LEFT JOIN m_lists m1 ON m1.v = mxs_other_lines(o.greeting_lines)
		LEFT JOIN m_lists m2 ON m2.v = mxs_other_lines(o.ehlo_lines)
		LEFT JOIN m_lists m3 ON m3.v = o.ehlo_extensions
		LEFT JOIN m_lists m4 ON m4.v = o.starttls_lines
		LEFT JOIN m_lists m5 ON m5.v = mxs_other_lines(o.ehlo_tls_lines)
		LEFT JOIN m_lists m6 ON m6.v = o.ehlo_tls_extensions
		LEFT JOIN m_lists m7 ON m7.v = o.auth_mechanisms
		LEFT JOIN m_lists m8 ON m8.v = o.auth_mechanisms_tls
		LEFT JOIN m_lists m9 ON m9.v = NULLIF(ARRAY[o.ehlo_name, o.profile, o.ehlo_verb, o.ehlo_tls_verb], '{NULL,NULL,NULL,NULL}'::text[])
		LEFT JOIN m_lists m10 ON m10.v = NULLIF(ARRAY[o.tls_cipher, o.tls_cipher_openssl, o.tls_kex, o.tls_kex_group, o.tls_sig_alg, o.tls_verify_reason], '{NULL,NULL,NULL,NULL,NULL,NULL}'::text[])
		LEFT JOIN m_chains mc ON mc.c = o.chain_sha256
		ORDER BY o.ip, o.port$i$, 'results_old_s' || s);
		EXECUTE format('DROP TABLE %I', 'results_old_s' || s);
		DROP TABLE m_lists;
		DROP TABLE m_chains;
	END LOOP;
END $$;

-- The views read results_old: the same definitions, reading the view results.
DO $$
DECLARE v regclass;
BEGIN
	FOR v IN SELECT DISTINCT c.oid::regclass FROM pg_depend d JOIN pg_rewrite rw ON rw.oid = d.objid
	         JOIN pg_class c ON c.oid = rw.ev_class
	         WHERE d.refobjid = 'results_old'::regclass AND c.relname <> 'results' LOOP
		EXECUTE format('CREATE OR REPLACE VIEW %s AS %s', v,
		               regexp_replace(pg_get_viewdef(v), '\mresults_old\M', 'results', 'g'));
	END LOOP;
END $$;

DROP TABLE results_old;
