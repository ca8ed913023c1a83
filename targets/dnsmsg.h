/*
 * DNS wire format: building the queries mxsurvey sends and walking the answers it gets.
 * c-ares 1.18 sends the bytes (ares_send) but neither sets the AD bit nor parses TLSA,
 * and the classification of a failure needs the raw header, so both directions are ours.
 * Everything here is pure (no I/O, no allocation except where noted) and is fuzzed.
 */
#ifndef MXS_DNSMSG_H
#define MXS_DNSMSG_H

#include <stddef.h>
#include <stdint.h>

enum {
	MXS_DNS_T_A = 1,
	MXS_DNS_T_CNAME = 5,
	MXS_DNS_T_MX = 15,
	MXS_DNS_T_TXT = 16,
	MXS_DNS_T_AAAA = 28,
	MXS_DNS_T_SRV = 33,
	MXS_DNS_T_TLSA = 52,
	MXS_DNS_C_IN = 1,
};

/* Longest presentation name we produce: 255 wire bytes, each escaped as \DDD worst case. */
#define MXS_DNS_NAME_MAX 1024

/*
 * Outcome of one lookup, the classes of docs/targets.md. MXS_DNS_NO_ADDRESS is never the
 * result of one query: it is what a host (both A and AAAA without data) or a domain (no MX
 * host with an address) comes to.
 */
enum mxs_dns_status {
	MXS_DNS_OK,
	MXS_DNS_NXDOMAIN,
	MXS_DNS_NODATA,
	MXS_DNS_SERVFAIL,
	MXS_DNS_REFUSED,
	MXS_DNS_TIMEOUT,
	MXS_DNS_MALFORMED,
	MXS_DNS_NO_ADDRESS,
	MXS_DNS_STATUS_LAST
};

/* "ok", "nxdomain", "nodata", "servfail", "refused", "timeout", "malformed", "no-address" */
const char *mxs_dns_status_name(enum mxs_dns_status s);

/*
 * Build a recursive query for name (presentation form, trailing dot optional) and qtype,
 * with the AD bit set (RFC 6840 5.7: a validating resolver then reports validation in
 * AD without us asking for signatures) and an EDNS0 OPT record advertising a UDP payload
 * of edns_size (0: no OPT). The ID is left 0: ares_send assigns its own.
 * Returns the length written to buf, or -1 if the name is invalid or buf too small.
 */
int mxs_dns_build_query(uint8_t *buf, size_t cap, const char *name, uint16_t qtype,
			uint16_t edns_size);

/* A parsed message header and a cursor over its answer section. */
struct mxs_dns_msg {
	const uint8_t *buf;
	size_t len;
	unsigned rcode;   /* 4-bit RCODE from the header (OPT's extended bits ignored) */
	int ad;           /* the AD (authentic data) flag */
	int tc;           /* truncated */
	unsigned ancount;
	unsigned an_left; /* answer records not yet returned by mxs_dns_next_answer */
	size_t pos;       /* offset of the next answer record */
};

/* One resource record of the answer section; rdata points into the message. */
struct mxs_dns_rr {
	char owner[MXS_DNS_NAME_MAX];
	uint16_t type;
	uint16_t rclass;
	uint32_t ttl;
	const uint8_t *rdata;
	uint16_t rdlen;
	size_t rdata_off; /* offset of rdata in the message, for compressed names in it */
};

/* Parse the header and skip the question section. Returns 0, or -1 if malformed. */
int mxs_dns_parse(struct mxs_dns_msg *m, const uint8_t *buf, size_t len);

/* Next answer record: 1 and *rr filled, 0 at the end, -1 if malformed. */
int mxs_dns_next_answer(struct mxs_dns_msg *m, struct mxs_dns_rr *rr);

/*
 * Read a possibly compressed name at off into presentation form: lower case, no trailing
 * dot ("." for the root), bytes other than [a-z0-9_-] escaped as \DDD (RFC 1035 5.1), so
 * the result is plain ASCII and safe in JSON. *next (optional) gets the offset just past
 * the name where it starts. Returns 0, or -1 on a loop, overrun or bad label.
 */
int mxs_dns_read_name(const uint8_t *buf, size_t len, size_t off, char *out, size_t *next);

/*
 * Normalise a presentation name in place: lower case, trailing dot removed. Returns 0,
 * or -1 if it is not a valid host name for us (empty label, label over 63, over 253
 * characters, or a character other than letters, digits, '-', '_', '.').
 */
int mxs_dns_normalize(char *name);

/*
 * out = prefix + name, cut to cap - 1 bytes as snprintf(out, cap, "%s%s", prefix, name)
 * would (prefix may be ""): owner names of the queries, several per domain, where
 * snprintf's formatting was a visible share of a survey's CPU.
 */
void mxs_dns_join(char *out, size_t cap, const char *prefix, const char *name);

/* Case-insensitive equality of two presentation names produced above. */
int mxs_dns_name_eq(const char *a, const char *b);

#endif
