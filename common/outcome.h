/*
 * The closed set of outcomes a probe can end in, and the phases it can end in: the only
 * copy. The scanner writes the names into records (docs/record.md); ingest stores the
 * database codes, which are the rows of sql/migrations/0001_schema.sql's outcome_names
 * and phase_names and must never change (tests/unit/test_fields checks both).
 */
#ifndef MXS_OUTCOME_H
#define MXS_OUTCOME_H

/*
 * X(ENUM, "record name", database code). Code -1: never stored (a record with it is no
 * results row). Database code 0 is "unknown", a name this table does not know.
 */
#define MXS_OUTCOMES(X) \
	X(NONE, "none", -1) \
	X(SUCCESS, "success", 1) \
	X(NO_STARTTLS, "no-starttls", 2) \
	X(STARTTLS_REFUSED, "starttls-refused", 3) \
	X(HANDSHAKE_ERROR, "handshake-error", 4) \
	X(HANDSHAKE_TIMEOUT, "handshake-timeout", 5) \
	X(CONNECTION_REFUSED, "connection-refused", 6) \
	X(CONNECTION_TIMEOUT, "connection-timeout", 7) \
	X(UNREACHABLE, "unreachable", 8) \
	X(GREETING_TIMEOUT, "greeting-timeout", 9) \
	X(GREETING_REJECTED, "greeting-rejected", 10) \
	X(EHLO_REJECTED, "ehlo-rejected", 11) \
	X(EHLO_TIMEOUT, "ehlo-timeout", 12) \
	X(STARTTLS_TIMEOUT, "starttls-timeout", 13) \
	X(PEER_CLOSED, "peer-closed", 14) \
	X(PROTOCOL_ERROR, "protocol-error", 15) \
	X(DEADLINE, "deadline", 16) \
	X(BLOCKED, "blocked", 17) \
	X(BAD_TARGET, "bad-target", 18) \
	X(DUPLICATE, "duplicate", -1) \
	X(INTERRUPTED, "interrupted", 19) \
	X(LOCAL_ERROR, "local-error", 20)

#define MXS_OUT_ENUM_(e, name, code) MXS_OUT_##e,
enum mxs_outcome { MXS_OUTCOMES(MXS_OUT_ENUM_) MXS_OUT_LAST };
#undef MXS_OUT_ENUM_

/* Outcome names as written in the record (docs/record.md). */
extern const char *const mxs_outcome_names[MXS_OUT_LAST];
/* Database code of each outcome (outcome_names.code), -1 when never stored. */
extern const short mxs_outcome_db_codes[MXS_OUT_LAST];
/* Database code of an outcome given by its record name: 0 (unknown) when no outcome has it. */
int mxs_outcome_db_code(const char *name);

/* Session phases, in the order a probe goes through them; X(ENUM, "name", database code). */
#define MXS_PHASES(X) \
	X(NONE, "none", 10) \
	X(CONNECT, "connect", 1) \
	X(GREETING, "greeting", 2) \
	X(EHLO, "ehlo", 3) \
	X(HELO, "helo", 4) \
	X(STARTTLS, "starttls", 5) \
	X(HANDSHAKE, "handshake", 6) \
	X(EHLO_TLS, "ehlo_tls", 7) \
	X(QUIT, "quit", 8) \
	X(DONE, "done", 9)

#define MXS_PHASE_ENUM_(e, name, code) MXS_PHASE_##e,
enum mxs_phase { MXS_PHASES(MXS_PHASE_ENUM_) MXS_PHASE_LAST };
#undef MXS_PHASE_ENUM_

extern const char *const mxs_phase_names[MXS_PHASE_LAST];
extern const short mxs_phase_db_codes[MXS_PHASE_LAST];
/* Database code of a phase name: 0 (unknown) when no phase has it. */
int mxs_phase_db_code(const char *name);

#endif
