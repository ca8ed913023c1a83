/*
 * Fuzz the IMAP response parser (access_reply.c) as the imap module feeds it: the input
 * is split into lines as the runner splits them; the first response is the greeting (no
 * tag), each later one answers a command tagged A1, A2, ... Every completed response is
 * read for capabilities, SASL mechanisms and a mangled STARTTLS; every stored line and
 * capability must decode from the escape form.
 */
#include <stdint.h>
#include <stdio.h>
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
	int ntag = 0;
	char tag[16];

	access_reply_init(&r);
	while (pos < size) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t len = nl ? (size_t)(nl - (data + pos)) : size - pos;
		size_t l = len;
		enum access_status st;

		if (l > 0 && data[pos + l - 1] == '\r')
			l--;
		snprintf(tag, sizeof(tag), "A%d", ntag);
		st = imap_reply_feed(&r, ntag ? tag : NULL, data + pos, l);
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
				(void)access_has_cap(&r.caps, "STARTTLS");
				(void)access_mangled_cap(&r.caps, "STARTTLS");
			}
			access_reply_reset(&r);
			ntag++;
		}
		pos += len + 1;
	}
	access_reply_reset(&r);
	return 0;
}
