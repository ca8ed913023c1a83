#include "answer.h"

#include <ares.h>
#include <stdio.h>
#include <string.h>

static enum mxs_dns_status from_ares(int st)
{
	switch (st) {
	case ARES_ETIMEOUT: return MXS_DNS_TIMEOUT;
	case ARES_ENOTFOUND: return MXS_DNS_NXDOMAIN;
	case ARES_ENODATA: return MXS_DNS_NODATA;
	case ARES_EREFUSED: return MXS_DNS_REFUSED;
	case ARES_EBADRESP:
	case ARES_EFORMERR: return MXS_DNS_MALFORMED;
	case ARES_EDESTRUCTION:
	case ARES_ECANCELLED: return MXS_DNS_STATUS_LAST;
	/* ESERVFAIL, ECONNREFUSED (resolver unreachable), ENOMEM...: no usable answer */
	default: return MXS_DNS_SERVFAIL;
	}
}

static void rewind_msg(struct mxs_answer *a)
{
	a->msg.pos = a->first;
	a->msg.an_left = a->count;
}

enum mxs_dns_status mxs_answer_open(struct mxs_answer *a, int ares_status,
				    const unsigned char *abuf, int alen, const char *qname,
				    uint16_t qtype)
{
	struct mxs_dns_rr rr;
	int r;

	memset(a, 0, sizeof(*a));
	a->qtype = qtype;
	if (ares_status != ARES_SUCCESS)
		return from_ares(ares_status);
	if (!abuf || alen <= 0 || mxs_dns_parse(&a->msg, abuf, (size_t)alen) < 0)
		return MXS_DNS_MALFORMED;
	a->first = a->msg.pos;
	a->count = a->msg.an_left;
	a->ad = a->msg.ad;
	switch (a->msg.rcode) {
	case 0: break;
	case 3: return MXS_DNS_NXDOMAIN;
	case 5: return MXS_DNS_REFUSED;
	default: return MXS_DNS_SERVFAIL; /* SERVFAIL, FORMERR, NOTIMP...: no answer */
	}
	/* Follow the CNAME chain from the name asked; 16 hops is far past any sane chain. */
	snprintf(a->final, sizeof(a->final), "%s", qname);
	for (int hop = 0; hop < 16; hop++) {
		int moved = 0;
		rewind_msg(a);
		while ((r = mxs_dns_next_answer(&a->msg, &rr)) == 1) {
			if (rr.type != MXS_DNS_T_CNAME || !mxs_dns_name_eq(rr.owner, a->final))
				continue;
			char target[MXS_DNS_NAME_MAX];
			if (mxs_dns_read_name(a->msg.buf, a->msg.len, rr.rdata_off, target, NULL) < 0)
				return MXS_DNS_MALFORMED;
			if (mxs_dns_name_eq(target, a->final))
				return MXS_DNS_MALFORMED; /* a CNAME to itself */
			memcpy(a->final, target, sizeof(target));
			moved = 1;
			break;
		}
		if (r < 0)
			return MXS_DNS_MALFORMED;
		if (!moved)
			break;
	}
	a->aliased = !mxs_dns_name_eq(a->final, qname);
	unsigned n = 0;
	rewind_msg(a);
	while ((r = mxs_answer_next(a, &rr)) == 1)
		n++;
	if (r < 0)
		return MXS_DNS_MALFORMED;
	rewind_msg(a);
	return n ? MXS_DNS_OK : MXS_DNS_NODATA;
}

int mxs_answer_next(struct mxs_answer *a, struct mxs_dns_rr *rr)
{
	int r;

	while ((r = mxs_dns_next_answer(&a->msg, rr)) == 1)
		if (rr->type == a->qtype && rr->rclass == MXS_DNS_C_IN &&
		    mxs_dns_name_eq(rr->owner, a->final))
			return 1;
	return r;
}

long mxs_txt_rdata(const struct mxs_dns_rr *rr, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < rr->rdlen;) {
		size_t l = rr->rdata[i++];
		if (i + l > rr->rdlen)
			return -1;
		size_t take = o + l <= cap ? l : cap - o;
		memcpy(out + o, rr->rdata + i, take);
		o += take;
		i += l;
	}
	return (long)o;
}
