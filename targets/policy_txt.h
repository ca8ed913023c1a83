/*
 * Parsers of the two TXT records that announce downgrade protection:
 *   _mta-sts.<domain>   "v=STSv1; id=20240101T000000;"          (RFC 8461 3.1)
 *   _smtp._tls.<domain> "v=TLSRPTv1; rua=mailto:tlsrpt@example" (RFC 8460 3)
 * Input is the TXT RDATA's character-strings already concatenated (RFC 8461 3.1 says to
 * concatenate them); bytes are remote-controlled and may hold anything. Pure functions,
 * fuzzed by tests/targets/fuzz_*.c.
 */
#ifndef MXS_POLICY_TXT_H
#define MXS_POLICY_TXT_H

#include <stddef.h>

enum mxs_txt_result {
	MXS_TXT_OK,
	MXS_TXT_OTHER,       /* not a record of this kind (other version tag): ignore it */
	MXS_TXT_BAD_SYNTAX,  /* tagged as ours but a field does not parse */
	MXS_TXT_MISSING_ID,  /* MTA-STS record without id= */
	MXS_TXT_BAD_ID,      /* id not 1-32 letters and digits */
	MXS_TXT_MISSING_RUA, /* TLSRPT record without rua= */
	MXS_TXT_BAD_RUA,     /* a rua URI that is empty or not mailto:/https: */
	MXS_TXT_DUPLICATE,   /* a field given twice */
	MXS_TXT_RESULT_LAST
};

/* "ok", "other", "bad-syntax", "missing-id", "bad-id", "missing-rua", "bad-rua", "duplicate-field" */
const char *mxs_txt_result_name(enum mxs_txt_result r);

/* 1 if the bytes start with the MTA-STS version tag "v=STSv1" (then they are ours). */
int mxs_sts_txt_is_sts(const char *txt, size_t len);
int mxs_tlsrpt_txt_is_tlsrpt(const char *txt, size_t len);

struct mxs_sts_txt {
	char id[33];
};

enum mxs_txt_result mxs_sts_txt_parse(const char *txt, size_t len, struct mxs_sts_txt *out);

#define MXS_TLSRPT_RUA_MAX 16

struct mxs_tlsrpt_txt {
	size_t nrua;
	/* Each URI is a span of the input (not NUL-terminated), valid while the input is. */
	struct {
		const char *p;
		size_t len;
	} rua[MXS_TLSRPT_RUA_MAX];
};

enum mxs_txt_result mxs_tlsrpt_txt_parse(const char *txt, size_t len, struct mxs_tlsrpt_txt *out);

#endif
