/*
 * Fuzz the POP3 response parser (access_reply.c) as the pop3 module feeds it: lines as
 * the runner splits them; responses alternate between single-line (greeting, STLS) and
 * multi-line (CAPA), starting with a single-line greeting. Every completed response is
 * read for capabilities, SASL mechanisms and a mangled STLS; every stored line and
 * capability must decode from the escape form.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "access_reply.h"
#include "esc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_esc(const struct strv *sv)
{
	for (size_t i = 0; i < sv->n; i++) {
		size_t dl;
		unsigned char *dec = mxs_esc_decode(sv->v[i], strlen(sv->v[i]), &dl);
		if (dec == NULL)
			abort();
		free(dec);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct access_reply r;
	size_t pos = 0;
	bool multi = false;

	access_reply_init(&r);
	while (pos < size) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t len = nl ? (size_t)(nl - (data + pos)) : size - pos;
		size_t l = len;
		enum access_status st;

		if (l > 0 && data[pos + l - 1] == '\r')
			l--;
		st = pop3_reply_feed(&r, multi, data + pos, l);
		if (st != ACCESS_MORE) {
			if (st == ACCESS_DONE) {
				struct strv mechs = { 0 };
				if (r.lines.n > ACCESS_LINES_MAX || r.caps.n > ACCESS_CAPS_MAX)
					abort();
				check_esc(&r.lines);
				check_esc(&r.caps);
				access_sasl_mechs(&r.caps, &mechs);
				check_esc(&mechs);
				strv_free(&mechs);
				(void)access_has_cap(&r.caps, "USER");
				(void)access_mangled_cap(&r.caps, "STLS");
			}
			access_reply_reset(&r);
			multi = !multi;
		}
		pos += len + 1;
	}
	access_reply_reset(&r);
	return 0;
}
