/*
 * Fuzz the answer reader of the legacy probes (scanner/tls_answer.c): the first byte
 * chooses want_kx and the size of the pieces the rest is fed in (as a socket would split
 * it), then the close. Checks the answer's invariants; ASan/UBSan check the memory.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls_answer.h"
#include "tls_hello.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tls_reader r;
	size_t piece, pos = 1;
	bool done = false;

	if (size < 1)
		return 0;
	tls_reader_init(&r, data[0] & 1);
	piece = (size_t)(data[0] >> 1) + 1;
	while (pos < size && !done) {
		size_t n = size - pos < piece ? size - pos : piece;
		done = tls_reader_feed(&r, data + pos, n);
		pos += n;
	}
	if (!done)
		tls_reader_eof(&r);
	if (!r.done || r.ans.kind == TLS_ANS_NONE)
		abort();
	if (r.ans.kind == TLS_ANS_BAD && r.ans.why == NULL)
		abort();
	/* a hello's legacy version is SSL 3.x; supported_versions may name any value */
	if (r.ans.kind == TLS_ANS_ALERT && r.have_hello)
		abort();
	if (r.ans.dh_bits < 0 || r.ans.dh_bits > 8 * TLS_MSG_KEEP_MAX)
		abort();
	if (r.total > TLS_FLIGHT_MAX + 5)
		abort();
	return 0;
}
