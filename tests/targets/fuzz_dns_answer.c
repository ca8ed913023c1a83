/*
 * libFuzzer target: a DNS response as the resolver reads it. The first byte picks the
 * question type; the rest is the message: header, CNAME chain following, the records of
 * that type, MX exchange names and TXT strings.
 */
#include <ares.h>
#include <stdint.h>
#include <string.h>

#include "answer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t types[] = { MXS_DNS_T_MX, MXS_DNS_T_A, MXS_DNS_T_AAAA, MXS_DNS_T_TXT,
					  MXS_DNS_T_TLSA };
	struct mxs_answer a;
	struct mxs_dns_rr rr;
	char name[MXS_DNS_NAME_MAX], txt[4096];

	if (size < 1)
		return 0;
	uint16_t qtype = types[data[0] % 5];
	enum mxs_dns_status st =
		mxs_answer_open(&a, ARES_SUCCESS, data + 1, (int)(size - 1), "example.test", qtype);
	if (st != MXS_DNS_OK)
		return 0;
	while (mxs_answer_next(&a, &rr) == 1) {
		if (strlen(rr.owner) >= sizeof(rr.owner))
			__builtin_trap();
		if (qtype == MXS_DNS_T_MX && rr.rdlen >= 3)
			(void)mxs_dns_read_name(a.msg.buf, a.msg.len, rr.rdata_off + 2, name, NULL);
		if (qtype == MXS_DNS_T_TXT)
			(void)mxs_txt_rdata(&rr, txt, sizeof(txt));
	}
	return 0;
}
