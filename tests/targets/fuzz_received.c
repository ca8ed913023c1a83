/* libFuzzer target: header sections, Received: fields and address domains (received.h). */
#include <stdint.h>
#include <string.h>

#include "received.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_str(const char *s, size_t cap)
{
	if (memchr(s, '\0', cap) == NULL)
		__builtin_trap();
}

static int on_field(void *arg, const char *name, size_t nlen, const char *value, size_t vlen)
{
	struct mxs_rcvd_hop h;
	char dom[256];
	(void)arg;

	if (nlen == 0 || memchr(value, '\n', vlen) != NULL || memchr(value, '\r', vlen) != NULL)
		__builtin_trap();
	(void)name;
	/* every field through both parsers, whatever its name */
	mxs_received_parse(value, vlen, &h);
	check_str(h.from, sizeof(h.from));
	check_str(h.by, sizeof(h.by));
	check_str(h.via, sizeof(h.via));
	check_str(h.with, sizeof(h.with));
	check_str(h.id, sizeof(h.id));
	check_str(h.rcpt, sizeof(h.rcpt));
	check_str(h.date, sizeof(h.date));
	check_str(h.version, sizeof(h.version));
	check_str(h.cipher, sizeof(h.cipher));
	if ((unsigned)h.tls >= MXS_RCVD_TLS_LAST || (unsigned)h.rule >= MXS_RCVD_RULE_LAST ||
	    h.flags >= MXS_RCVD_FLAGS_LAST)
		__builtin_trap();
	/* yes only with evidence; a conflict is never yes */
	if (h.tls == MXS_RCVD_TLS_YES && (h.rule == MXS_RCVD_RULE_NONE || h.rule == MXS_RCVD_RULE_CONFLICT))
		__builtin_trap();
	if (mxs_header_addr_domain(value, vlen, dom, sizeof(dom)) == 0 &&
	    (dom[0] == '\0' || strlen(dom) >= sizeof(dom)))
		__builtin_trap();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = mxs_headers_each((const char *)data, size, on_field, NULL);

	if (n != (size_t)-1 && n > size)
		__builtin_trap();
	return 0;
}
