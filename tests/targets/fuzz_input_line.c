/* libFuzzer target: classification of one line of resolve input. */
#include <stdint.h>
#include <string.h>

#include "input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mxs_input in;

	mxs_input_parse((const char *)data, size, &in);
	if (in.kind == MXS_IN_NAME && (strlen(in.name) == 0 || strlen(in.name) > 253))
		__builtin_trap();
	(void)mxs_input_error_text(in.error);
	return 0;
}
