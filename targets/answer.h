/*
 * Reading one c-ares answer for one question: classify the outcome (docs/targets.md
 * statuses), follow the CNAME chain from the name asked, and walk the records of the
 * asked type that belong to the end of the chain. Records owned by other names are
 * ignored: a resolver has no business sending them.
 */
#ifndef MXS_ANSWER_H
#define MXS_ANSWER_H

#include "dnsmsg.h"

struct mxs_answer {
	struct mxs_dns_msg msg;
	size_t first;            /* offset of the first answer record, to rewind */
	unsigned count;          /* answer records */
	uint16_t qtype;
	int ad;                  /* AD bit of the header */
	char final[MXS_DNS_NAME_MAX]; /* end of the CNAME chain (qname when none) */
	int aliased;             /* final differs from the name asked */
};

/*
 * Classify c-ares status and the answer. Returns MXS_DNS_OK when at least one record of
 * qtype belongs to the end of the chain, MXS_DNS_NODATA for none, else the failure.
 * A cancelled query (channel destroyed) returns MXS_DNS_STATUS_LAST: drop it.
 */
enum mxs_dns_status mxs_answer_open(struct mxs_answer *a, int ares_status,
				    const unsigned char *abuf, int alen, const char *qname,
				    uint16_t qtype);

/* Next record of the asked type owned by a->final: 1, 0 at the end, -1 malformed. */
int mxs_answer_next(struct mxs_answer *a, struct mxs_dns_rr *rr);

/*
 * Concatenate the character-strings of a TXT RDATA into out (not NUL-terminated, at most
 * cap bytes, the rest cut). Returns the length or -1 if the RDATA is malformed.
 */
long mxs_txt_rdata(const struct mxs_dns_rr *rr, char *out, size_t cap);

#endif
