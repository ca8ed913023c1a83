/*
 * The closed sets of the result record stored as smallint codes. The numbers are the
 * ones in sql/migrations/0001_schema.sql (outcome_names, phase_names, tls_version_names)
 * and must never change; tests/ingest checks both tables agree.
 */
#ifndef MXS_CODES_H
#define MXS_CODES_H

#include <stddef.h>

enum db_outcome {
	DB_OUTCOME_UNKNOWN = 0,
	DB_OUTCOME_SUCCESS,
	DB_OUTCOME_NO_STARTTLS,
	DB_OUTCOME_STARTTLS_REFUSED,
	DB_OUTCOME_HANDSHAKE_ERROR,
	DB_OUTCOME_HANDSHAKE_TIMEOUT,
	DB_OUTCOME_CONNECTION_REFUSED,
	DB_OUTCOME_CONNECTION_TIMEOUT,
	DB_OUTCOME_UNREACHABLE,
	DB_OUTCOME_GREETING_TIMEOUT,
	DB_OUTCOME_GREETING_REJECTED,
	DB_OUTCOME_EHLO_REJECTED,
	DB_OUTCOME_EHLO_TIMEOUT,
	DB_OUTCOME_STARTTLS_TIMEOUT,
	DB_OUTCOME_PEER_CLOSED,
	DB_OUTCOME_PROTOCOL_ERROR,
	DB_OUTCOME_DEADLINE,
	DB_OUTCOME_BLOCKED,
	DB_OUTCOME_BAD_TARGET,
	DB_OUTCOME_INTERRUPTED,
	DB_OUTCOME_LOCAL_ERROR,
	DB_OUTCOME_LAST
};

enum db_phase {
	DB_PHASE_UNKNOWN = 0,
	DB_PHASE_CONNECT,
	DB_PHASE_GREETING,
	DB_PHASE_EHLO,
	DB_PHASE_HELO,
	DB_PHASE_STARTTLS,
	DB_PHASE_HANDSHAKE,
	DB_PHASE_EHLO_TLS,
	DB_PHASE_QUIT,
	DB_PHASE_DONE,
	DB_PHASE_NONE,
	DB_PHASE_LAST
};

extern const char *const db_outcome_names[DB_OUTCOME_LAST];
extern const char *const db_phase_names[DB_PHASE_LAST];

/* Code of a name, or 0 (unknown) when the name is not in the table. */
int db_outcome_code(const char *name);
int db_phase_code(const char *name);

/* Wire number of a TLS version name ("TLSv1.2" -> 0x0303), or 0 when unknown. */
int mxs_tls_version_code(const char *name);

#endif
