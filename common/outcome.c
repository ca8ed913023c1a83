#include "outcome.h"

#include <string.h>

#define NAME_(e, name, code) name,
#define CODE_(e, name, code) code,

const char *const mxs_outcome_names[MXS_OUT_LAST] = { MXS_OUTCOMES(NAME_) };
const short mxs_outcome_db_codes[MXS_OUT_LAST] = { MXS_OUTCOMES(CODE_) };
const char *const mxs_phase_names[MXS_PHASE_LAST] = { MXS_PHASES(NAME_) };
const short mxs_phase_db_codes[MXS_PHASE_LAST] = { MXS_PHASES(CODE_) };

static int lookup(const char *const *names, const short *codes, int count, const char *name)
{
	for (int i = 0; i < count; i++)
		if (strcmp(names[i], name) == 0)
			return codes[i] > 0 ? codes[i] : 0;
	return 0;
}

int mxs_outcome_db_code(const char *name)
{
	return lookup(mxs_outcome_names, mxs_outcome_db_codes, MXS_OUT_LAST, name);
}

int mxs_phase_db_code(const char *name)
{
	return lookup(mxs_phase_names, mxs_phase_db_codes, MXS_PHASE_LAST, name);
}
