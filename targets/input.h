/*
 * Classify one line of resolve input:
 *   # comment / blank            skipped
 *   example.com                  a mail domain (or an MX host name with --mx-hosts)
 *   12,example.com               Tranco "rank,domain"
 *   192.0.2.7 / 2001:db8::25     an address
 *   192.0.2.0/28                 a CIDR range, expanded to its addresses
 * Pure; the line may hold any bytes.
 */
#ifndef MXS_INPUT_H
#define MXS_INPUT_H

#include <netinet/in.h>
#include <stddef.h>

#include "dnsmsg.h"

enum mxs_input_kind {
	MXS_IN_SKIP,
	MXS_IN_NAME,
	MXS_IN_ADDR,
	MXS_IN_CIDR,
	MXS_IN_ERROR,
};

enum mxs_input_error {
	MXS_INERR_NONE,
	MXS_INERR_TOO_LONG,
	MXS_INERR_BAD_RANK,
	MXS_INERR_BAD_NAME,
	MXS_INERR_NOT_ASCII,
	MXS_INERR_URL,
	MXS_INERR_BAD_CIDR,
	MXS_INERR_RANGE_TOO_BIG,
	MXS_INERR_LAST
};

/* Human-readable text of an input error, for the "bad line" message. */
const char *mxs_input_error_text(enum mxs_input_error e);

/* Largest range expanded: /16 for IPv4, /112 for IPv6 (65,536 addresses). */
#define MXS_CIDR_MAX_V4 16
#define MXS_CIDR_MAX_V6 16

struct mxs_input {
	enum mxs_input_kind kind;
	enum mxs_input_error error;
	long rank;                     /* -1 when the line had none */
	char name[MXS_DNS_NAME_MAX];   /* NAME: normalised */
	int family;                    /* ADDR/CIDR: AF_INET or AF_INET6 */
	unsigned char addr[16];        /* ADDR/CIDR: network byte order; CIDR host bits cleared */
	unsigned prefix;               /* CIDR */
};

void mxs_input_parse(const char *line, size_t len, struct mxs_input *in);

#endif
