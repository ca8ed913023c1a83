/*
 * Fuzz the SMTP reply parser and the EHLO analysis: the input is split into lines as the
 * session splits them, each reply is fed until done or an error, and every completed
 * reply is read as an EHLO reply. Checks the escape form of every stored line decodes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ehlo.h"
#include "esc.h"
#include "smtp_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_reply r;
	size_t pos = 0;

	smtp_reply_init(&r);
	while (pos < size) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t len = nl ? (size_t)(nl - (data + pos)) : size - pos;
		size_t l = len;
		enum smtp_reply_status st;

		if (l > 0 && data[pos + l - 1] == '\r')
			l--;
		(void)smtp_is_starttls_echo(data + pos, l);
		st = smtp_reply_feed(&r, data + pos, l);
		if (st == SMTP_REPLY_DONE) {
			struct strv ext = { 0 };
			for (size_t i = 0; i < r.lines.n; i++) {
				size_t dl;
				unsigned char *dec = mxs_esc_decode(r.lines.v[i], strlen(r.lines.v[i]), &dl);
				if (dec == NULL)
					abort();
				free(dec);
			}
			ehlo_extensions(&r.lines, &ext);
			(void)ehlo_has_starttls(&ext);
			(void)ehlo_mangled_starttls(&ext);
			strv_free(&ext);
			smtp_reply_reset(&r);
		} else if (st != SMTP_REPLY_MORE) {
			smtp_reply_reset(&r);
		}
		pos += len + 1;
	}
	smtp_reply_reset(&r);
	return 0;
}
