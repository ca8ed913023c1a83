/* libFuzzer target: the MTA-STS policy file parser and MX pattern matching. */
#include <stdint.h>
#include <string.h>

#include "sts_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mxs_sts_policy p; /* 8 KiB: not on the fuzzer's stack */
	enum mxs_sts_policy_error e = mxs_sts_policy_parse((const char *)data, size, &p);

	if (e == MXS_STSP_OK) {
		if (p.max_age < 0 || p.max_age > 31557600 || !mxs_sts_mode_name(p.mode))
			__builtin_trap();
		for (size_t i = 0; i < p.nmx; i++) {
			(void)mxs_sts_mx_match(p.mx[i], "mx.example.test");
			(void)mxs_sts_mx_match(p.mx[i], p.mx[i]);
		}
	}
	(void)mxs_sts_policy_error_name(e);
	return 0;
}
