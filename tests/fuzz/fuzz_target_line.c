/* Fuzz the input-line parser (plain, CSV and JSON targets). */
#include <stdint.h>
#include <stdlib.h>

#include "target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mxs_target t;

	if (target_parse_line((const char *)data, size, 25, &t) != TARGET_PASSTHROUGH)
		target_free(&t);
	return 0;
}
