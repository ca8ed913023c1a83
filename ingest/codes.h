/*
 * The closed sets of the result record stored as smallint codes. The numbers are the
 * ones in sql/migrations/0001_schema.sql (outcome_names, phase_names, tls_version_names)
 * and must never change; tests/unit/test_fields checks both tables agree.
 */
#ifndef MXS_CODES_H
#define MXS_CODES_H

#include <stddef.h>

/*
 * Outcome and phase codes come from common/outcome.h (mxs_outcome_db_code,
 * mxs_phase_db_code), the one table the scanner writes its names from.
 */
#include "outcome.h"

/* Wire number of a TLS version name ("TLSv1.2" -> 0x0303), or 0 when unknown. */
int mxs_tls_version_code(const char *name);

#endif
