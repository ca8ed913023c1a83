/* libFuzzer target: the _mta-sts TXT record parser (RFC 8461 3.1). */
#include <stdint.h>
#include <string.h>

#include "policy_txt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mxs_sts_txt out;
	enum mxs_txt_result r = mxs_sts_txt_parse((const char *)data, size, &out);

	/* the id is NUL-terminated, at most 32 alphanumerics, and only set on success */
	if (r == MXS_TXT_OK && (strlen(out.id) == 0 || strlen(out.id) > 32))
		__builtin_trap();
	(void)mxs_txt_result_name(r);
	return 0;
}
