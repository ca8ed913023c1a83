/* libFuzzer target: the _smtp._tls TXT record parser (RFC 8460 3). */
#include <stdint.h>
#include <string.h>

#include "policy_txt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mxs_tlsrpt_txt out;
	enum mxs_txt_result r = mxs_tlsrpt_txt_parse((const char *)data, size, &out);

	if (r == MXS_TXT_OK && out.nrua == 0)
		__builtin_trap();
	/* every URI span lies inside the input */
	for (size_t i = 0; i < out.nrua; i++)
		if (out.rua[i].p < (const char *)data ||
		    out.rua[i].p + out.rua[i].len > (const char *)data + size)
			__builtin_trap();
	return 0;
}
