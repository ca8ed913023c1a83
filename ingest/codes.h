/*
 * The closed sets of the result record stored as smallint codes. The numbers are the
 * ones in sql/migrations/0001_schema.sql (outcome_names, phase_names, tls_version_names)
 * and must never change; tests/ingest checks both tables agree.
 */
#ifndef MXS_CODES_H
#define MXS_CODES_H

#include <stddef.h>

enum mxs_outcome {
	MXS_OUTCOME_UNKNOWN = 0,
	MXS_OUTCOME_SUCCESS,
	MXS_OUTCOME_NO_STARTTLS,
	MXS_OUTCOME_STARTTLS_REFUSED,
	MXS_OUTCOME_HANDSHAKE_ERROR,
	MXS_OUTCOME_HANDSHAKE_TIMEOUT,
	MXS_OUTCOME_CONNECTION_REFUSED,
	MXS_OUTCOME_CONNECTION_TIMEOUT,
	MXS_OUTCOME_UNREACHABLE,
	MXS_OUTCOME_GREETING_TIMEOUT,
	MXS_OUTCOME_GREETING_REJECTED,
	MXS_OUTCOME_EHLO_REJECTED,
	MXS_OUTCOME_EHLO_TIMEOUT,
	MXS_OUTCOME_STARTTLS_TIMEOUT,
	MXS_OUTCOME_PEER_CLOSED,
	MXS_OUTCOME_PROTOCOL_ERROR,
	MXS_OUTCOME_DEADLINE,
	MXS_OUTCOME_BLOCKED,
	MXS_OUTCOME_BAD_TARGET,
	MXS_OUTCOME_INTERRUPTED,
	MXS_OUTCOME_LOCAL_ERROR,
	MXS_OUTCOME_LAST
};

enum mxs_phase {
	MXS_PHASE_UNKNOWN = 0,
	MXS_PHASE_CONNECT,
	MXS_PHASE_GREETING,
	MXS_PHASE_EHLO,
	MXS_PHASE_HELO,
	MXS_PHASE_STARTTLS,
	MXS_PHASE_HANDSHAKE,
	MXS_PHASE_EHLO_TLS,
	MXS_PHASE_QUIT,
	MXS_PHASE_DONE,
	MXS_PHASE_NONE,
	MXS_PHASE_LAST
};

extern const char *const mxs_outcome_names[MXS_OUTCOME_LAST];
extern const char *const mxs_phase_names[MXS_PHASE_LAST];

/* Code of a name, or 0 (unknown) when the name is not in the table. */
int mxs_outcome_code(const char *name);
int mxs_phase_code(const char *name);

/* Wire number of a TLS version name ("TLSv1.2" -> 0x0303), or 0 when unknown. */
int mxs_tls_version_code(const char *name);

#endif
