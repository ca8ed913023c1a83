-- Mail submission and access (issue 12): the protocol each record speaks, and the
-- authentication offered before and inside TLS (docs/record.md, "auth").
-- Rows stored before this version have proto NULL: they are SMTP on port 25.
ALTER TABLE results ADD COLUMN proto text;                      -- smtp, submission, submissions, imap, imaps, pop3, pop3s
ALTER TABLE results ADD COLUMN auth_mechanisms text[];          -- (esc) SASL mechanisms before TLS
ALTER TABLE results ADD COLUMN auth_login boolean;              -- IMAP LOGIN / POP3 USER allowed before TLS
ALTER TABLE results ADD COLUMN auth_cleartext boolean;          -- PLAIN, LOGIN or the login command before TLS
ALTER TABLE results ADD COLUMN auth_mechanisms_tls text[];      -- (esc) SASL mechanisms inside TLS
ALTER TABLE results ADD COLUMN auth_login_tls boolean;
