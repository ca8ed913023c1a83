/* libFuzzer target: the HTTP response parser used for MTA-STS policy fetches. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mxs_http_resp r;

	for (int eof = 0; eof < 2; eof++) {
		if (mxs_http_resp_parse((const char *)data, size, eof, 65536, &r) == MXS_HTTP_DONE) {
			if (r.body_len > 65536 || r.body[r.body_len] != '\0')
				__builtin_trap();
			free(r.body);
		}
	}
	return 0;
}
