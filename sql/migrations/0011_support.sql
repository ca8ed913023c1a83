-- Legacy TLS support (issue 11): what an address accepts, not only what one modern
-- ClientHello negotiates. The support object of docs/record.md, written only when the
-- legacy probes ran (--probes legacy): every column NULL means "not probed"; inside a
-- probed row NULL means "not answered within the budget".
ALTER TABLE results ADD COLUMN support_sslv3 boolean;            -- version accepted
ALTER TABLE results ADD COLUMN support_tls1_0 boolean;
ALTER TABLE results ADD COLUMN support_tls1_1 boolean;
ALTER TABLE results ADD COLUMN support_tls1_2 boolean;
ALTER TABLE results ADD COLUMN support_tls1_3 boolean;
ALTER TABLE results ADD COLUMN support_rc4 boolean;              -- a suite of the class accepted
ALTER TABLE results ADD COLUMN support_3des boolean;
ALTER TABLE results ADD COLUMN support_export boolean;
ALTER TABLE results ADD COLUMN support_null boolean;
ALTER TABLE results ADD COLUMN support_anon boolean;
ALTER TABLE results ADD COLUMN support_cbc_only boolean;         -- no AEAD suite in any version
ALTER TABLE results ADD COLUMN support_prefer_sslv3 text;        -- IANA name of the suite chosen
ALTER TABLE results ADD COLUMN support_prefer_tls1_0 text;
ALTER TABLE results ADD COLUMN support_prefer_tls1_1 text;
ALTER TABLE results ADD COLUMN support_prefer_tls1_2 text;
ALTER TABLE results ADD COLUMN support_prefer_tls1_3 text;
ALTER TABLE results ADD COLUMN support_server_order boolean;     -- chooses by its own order
ALTER TABLE results ADD COLUMN support_dhe_bits integer;         -- finite-field DHE prime bits
ALTER TABLE results ADD COLUMN support_groups text[];            -- key-exchange groups accepted
ALTER TABLE results ADD COLUMN support_fallback_scsv boolean;    -- refuses a downgrade with the SCSV
ALTER TABLE results ADD COLUMN support_secure_renegotiation boolean;
ALTER TABLE results ADD COLUMN support_starttls_injection boolean; -- NOOP answered inside TLS
ALTER TABLE results ADD COLUMN support_connections smallint;     -- connections the probes made
ALTER TABLE results ADD COLUMN support_budget smallint;
ALTER TABLE results ADD COLUMN support_exhausted boolean;        -- questions left when the budget ran out
