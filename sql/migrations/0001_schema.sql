-- mxsurvey schema, version 1: scans, the DNS picture of each domain, one result row per
-- scanned address per scan, and certificates deduplicated by fingerprint.
--
-- Remote-controlled strings (greeting and reply lines, transcript data, certificate text)
-- are stored in the mxs escape form of docs/record.md: valid UTF-8 without NUL that
-- decodes to the exact bytes (mxs_unesc() below), so no byte a server sends can make a
-- row, or a COPY batch, fail. Columns holding that form end in the comment "(esc)".
--
-- results, domains and domain_mx are LIST-partitioned by scan_id: a scan's rows live in
-- their own tables (results_s<N> ...), created with the scan by mxs_scan_partitions(),
-- so a query of one scan touches only its partitions and dropping a night is a DROP TABLE.

-- Identity of this database, written into spool files so a spool is replayed only into
-- the database it was meant for.
CREATE TABLE mxs_meta (
	singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	instance_id uuid NOT NULL DEFAULT gen_random_uuid(),
	created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO mxs_meta DEFAULT VALUES;

-- Closed sets of the record, stored as smallint codes. The numbering is fixed and
-- mirrored in ingest/codes.c; code 0 is "a value this version does not know", whose
-- original text is kept in results.extra.
CREATE TABLE outcome_names (code smallint PRIMARY KEY, name text NOT NULL UNIQUE);
INSERT INTO outcome_names VALUES
	(0, 'unknown'), (1, 'success'), (2, 'no-starttls'), (3, 'starttls-refused'),
	(4, 'handshake-error'), (5, 'handshake-timeout'), (6, 'connection-refused'),
	(7, 'connection-timeout'), (8, 'unreachable'), (9, 'greeting-timeout'),
	(10, 'greeting-rejected'), (11, 'ehlo-rejected'), (12, 'ehlo-timeout'),
	(13, 'starttls-timeout'), (14, 'peer-closed'), (15, 'protocol-error'),
	(16, 'deadline'), (17, 'blocked'), (18, 'bad-target'), (19, 'interrupted'),
	(20, 'local-error');

CREATE TABLE phase_names (code smallint PRIMARY KEY, name text NOT NULL UNIQUE);
INSERT INTO phase_names VALUES
	(0, 'unknown'), (1, 'connect'), (2, 'greeting'), (3, 'ehlo'), (4, 'helo'),
	(5, 'starttls'), (6, 'handshake'), (7, 'ehlo_tls'), (8, 'quit'), (9, 'done'),
	(10, 'none');

-- TLS versions by their wire number, so "newer than" is a comparison.
CREATE TABLE tls_version_names (code smallint PRIMARY KEY, name text NOT NULL UNIQUE);
INSERT INTO tls_version_names VALUES
	(0, 'unknown'), (768, 'SSLv3'), (769, 'TLSv1'), (770, 'TLSv1.1'), (771, 'TLSv1.2'),
	(772, 'TLSv1.3');

CREATE TABLE scans (
	id              bigserial PRIMARY KEY,
	started_at      timestamptz NOT NULL DEFAULT now(),
	ended_at        timestamptz,
	command_line    text,
	scanner_version text,
	ehlo_name       text,
	profile         text,
	state           text NOT NULL DEFAULT 'running'
	                CHECK (state IN ('running', 'done', 'partial', 'failed')),
	label           text UNIQUE,          -- optional human name ("nightly-2026-11-23")
	source_key      text UNIQUE,          -- identity of an ingested file (its first 64 KiB)
	targets_read    bigint NOT NULL DEFAULT 0,  -- result records read or put, all runs
	results_stored  bigint NOT NULL DEFAULT 0,  -- result rows in the scan at the end
	domains_stored  bigint NOT NULL DEFAULT 0,
	rejected        bigint NOT NULL DEFAULT 0   -- lines that were not a valid record
);

-- One row per domain line: the DNS picture of a domain at the time of the scan.
CREATE TABLE domains (
	scan_id               bigint NOT NULL REFERENCES scans (id),
	domain                text NOT NULL,
	rank                  integer,
	status                text NOT NULL,
	dnssec                boolean,
	mta_sts_txt           text,           -- (esc)
	mta_sts_id            text,
	mta_sts_status        text,
	mta_sts_error         text,
	mta_sts_dnssec        boolean,
	mta_sts_policy_status text,
	mta_sts_mode          text,
	mta_sts_max_age       bigint,
	mta_sts_mx            text[],
	mta_sts_mx_match      boolean,
	mta_sts_policy_error  text,
	tlsrpt_txt            text,           -- (esc)
	tlsrpt_rua            text[],         -- (esc)
	tlsrpt_status         text,
	tlsrpt_error          text,
	tlsrpt_dnssec         boolean,
	extra                 jsonb,          -- fields this version does not know
	PRIMARY KEY (scan_id, domain)
) PARTITION BY LIST (scan_id);

-- domain -> MX host with its preference, addresses and TLSA records.
CREATE TABLE domain_mx (
	scan_id     bigint NOT NULL,
	domain      text NOT NULL,
	host        text NOT NULL,
	pref        integer,
	cname       text,
	status      text,
	addrs       inet[] NOT NULL DEFAULT '{}',
	tlsa        jsonb,                    -- [{"usage","selector","mtype","data"}]
	tlsa_dnssec boolean,
	tlsa_status text,
	PRIMARY KEY (scan_id, domain, host)
) PARTITION BY LIST (scan_id);

CREATE TABLE certificates (
	sha256        bytea PRIMARY KEY,
	subject       text,                   -- (esc)
	issuer        text,                   -- (esc)
	sans          text[],                 -- (esc)
	not_before    timestamptz,
	not_after     timestamptz,
	serial        text,
	key_type      text,
	key_bits      integer,
	sig_alg       text,
	first_scan_id bigint
);

-- One row per scanned address (ip, port) per scan: every field of the result record.
CREATE TABLE results (
	scan_id                bigint NOT NULL,
	ip                     inet NOT NULL,
	port                   integer NOT NULL,
	v                      smallint,
	mx                     text,
	mx_names               text[],
	domains                text[],
	input                  text,          -- (esc) only on bad-target
	start                  timestamptz,
	outcome                smallint NOT NULL,   -- outcome_names.code
	phase                  smallint,            -- phase_names.code
	detail                 text,
	attempts               smallint,
	ehlo_name              text,
	profile                text,
	greeting_code          smallint,
	greeting_lines         text[],        -- (esc)
	ehlo_verb              text,
	ehlo_code              smallint,
	ehlo_lines             text[],        -- (esc)
	ehlo_extensions        text[],        -- (esc)
	starttls_code          smallint,
	starttls_lines         text[],        -- (esc)
	tls_version            smallint,      -- tls_version_names.code; NULL: no TLS
	tls_cipher             text,
	tls_cipher_openssl     text,
	tls_cipher_bits        smallint,
	tls_forward_secrecy    boolean,
	tls_kex                text,
	tls_kex_group          text,
	tls_kex_bits           integer,
	tls_sig_alg            text,
	tls_verify_code        integer,
	tls_verify_reason      text,
	tls_trusted            boolean,
	tls_name_match         boolean,
	tls_matched_names      text[],
	tls_expired            boolean,
	tls_not_yet_valid      boolean,
	tls_self_signed        boolean,
	dane_tlsa              integer,       -- NULL: the target had no TLSA records
	dane_dnssec            boolean,
	dane_match             boolean,
	dane_depth             smallint,
	chain_sha256           bytea[],       -- certificates as sent, leaf first (position = index - 1)
	ehlo_tls_verb          text,
	ehlo_tls_code          smallint,
	ehlo_tls_lines         text[],        -- (esc)
	ehlo_tls_extensions    text[],        -- (esc)
	tamper_mangled_starttls text,         -- (esc)
	tamper_starttls_echo   boolean,
	tamper_plaintext_after_starttls integer,
	t_connect              integer,       -- timing_ms.*
	t_greeting             integer,
	t_ehlo                 integer,
	t_starttls             integer,
	t_handshake            integer,
	t_ehlo_tls             integer,
	t_total                integer,
	transcript             jsonb,         -- the record's array as is; data strings (esc)
	extra                  jsonb,         -- fields and values this version does not know
	PRIMARY KEY (scan_id, ip, port)
) PARTITION BY LIST (scan_id);

-- Lines that were not a valid record (not JSON, not UTF-8, no ip): kept byte for byte so
-- nothing read is ever silently dropped.
CREATE TABLE rejects (
	scan_id  bigint NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
	sha256   bytea NOT NULL,
	raw      bytea NOT NULL,
	error    text NOT NULL,
	seen_at  timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (scan_id, sha256)
);

-- Create the partitions of one scan; idempotent.
CREATE FUNCTION mxs_scan_partitions(p_scan bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF results FOR VALUES IN (%s)',
	               'results_s' || p_scan, p_scan);
	EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF domains FOR VALUES IN (%s)',
	               'domains_s' || p_scan, p_scan);
	EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF domain_mx FOR VALUES IN (%s)',
	               'domain_mx_s' || p_scan, p_scan);
END $$;

-- Drop a scan and its partitions (certificates stay: they are shared between scans).
CREATE FUNCTION mxs_drop_scan(p_scan bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('DROP TABLE IF EXISTS %I, %I, %I',
	               'results_s' || p_scan, 'domains_s' || p_scan, 'domain_mx_s' || p_scan);
	DELETE FROM rejects WHERE scan_id = p_scan;
	DELETE FROM scans WHERE id = p_scan;
END $$;

-- Decode the mxs escape form back to the exact bytes the server sent.
CREATE FUNCTION mxs_unesc(s text) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
	out bytea := '';
	i int := 1;
	j int;
	n int := length(s);
BEGIN
	IF strpos(s, E'\\') = 0 THEN
		RETURN convert_to(s, 'UTF8');
	END IF;
	WHILE i <= n LOOP
		j := strpos(substr(s, i), E'\\');
		IF j = 0 THEN
			RETURN out || convert_to(substr(s, i), 'UTF8');
		END IF;
		out := out || convert_to(substr(s, i, j - 1), 'UTF8')
		           || decode(substr(s, i + j + 1, 2), 'hex');
		i := i + j + 3;
	END LOOP;
	RETURN out;
END $$;
