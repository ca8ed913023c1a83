#include "input.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const char *const error_text[MXS_INERR_LAST] = {
	[MXS_INERR_NONE] = "no error",
	[MXS_INERR_TOO_LONG] = "line too long",
	[MXS_INERR_BAD_RANK] = "rank is not a positive integer (expected rank,domain)",
	[MXS_INERR_BAD_NAME] = "not a valid domain name",
	[MXS_INERR_NOT_ASCII] = "non-ASCII name: convert it to an A-label (xn--) first",
	[MXS_INERR_URL] = "looks like a URL, not a domain",
	[MXS_INERR_BAD_CIDR] = "not a valid address or CIDR range",
	[MXS_INERR_RANGE_TOO_BIG] = "CIDR range too large (at most /16 for IPv4, /112 for IPv6)",
};

const char *mxs_input_error_text(enum mxs_input_error e)
{
	return (unsigned)e < MXS_INERR_LAST ? error_text[e] : "?";
}

static void fail(struct mxs_input *in, enum mxs_input_error e)
{
	in->kind = MXS_IN_ERROR;
	in->error = e;
}

static void parse_addr(const char *s, struct mxs_input *in)
{
	char buf[INET6_ADDRSTRLEN + 8];
	size_t n = strlen(s);
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : n;

	if (alen >= sizeof(buf))
		return fail(in, MXS_INERR_BAD_CIDR);
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET, buf, in->addr) == 1)
		in->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, in->addr) == 1)
		in->family = AF_INET6;
	else
		return fail(in, MXS_INERR_BAD_CIDR);
	unsigned bits = in->family == AF_INET ? 32 : 128;
	if (!slash) {
		in->kind = MXS_IN_ADDR;
		return;
	}
	const char *p = slash + 1;
	if (*p == '\0' || strlen(p) > 3)
		return fail(in, MXS_INERR_BAD_CIDR);
	unsigned prefix = 0;
	for (; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return fail(in, MXS_INERR_BAD_CIDR);
		prefix = prefix * 10 + (unsigned)(*p - '0');
	}
	if (prefix > bits)
		return fail(in, MXS_INERR_BAD_CIDR);
	if (bits - prefix > (in->family == AF_INET ? 32u - MXS_CIDR_MAX_V4 : MXS_CIDR_MAX_V6))
		return fail(in, MXS_INERR_RANGE_TOO_BIG);
	for (unsigned i = prefix; i < bits; i++)
		in->addr[i / 8] &= (unsigned char)~(1u << (7 - i % 8));
	in->prefix = prefix;
	in->kind = prefix == bits ? MXS_IN_ADDR : MXS_IN_CIDR;
}

void mxs_input_parse(const char *line, size_t len, struct mxs_input *in)
{
	char buf[512];
	size_t a = 0, b = len;

	memset(in, 0, sizeof(*in));
	in->rank = -1;
	while (a < b && isspace((unsigned char)line[a]))
		a++;
	while (b > a && isspace((unsigned char)line[b - 1]))
		b--;
	if (a == b || line[a] == '#') {
		in->kind = MXS_IN_SKIP;
		return;
	}
	if (b - a >= sizeof(buf))
		return fail(in, MXS_INERR_TOO_LONG);
	memcpy(buf, line + a, b - a);
	buf[b - a] = '\0';
	/* A trailing comment after the entry, as in zmap lists. */
	char *hash = strchr(buf, '#');
	if (hash) {
		*hash = '\0';
		for (char *e = hash; e > buf && isspace((unsigned char)e[-1]);)
			*--e = '\0';
	}
	char *s = buf;
	char *comma = strchr(s, ',');
	if (comma) {
		*comma = '\0';
		char *r = s;
		if (*r == '\0' || strlen(r) > 9)
			return fail(in, MXS_INERR_BAD_RANK);
		for (char *q = r; *q; q++)
			if (!isdigit((unsigned char)*q))
				return fail(in, MXS_INERR_BAD_RANK);
		in->rank = strtol(r, NULL, 10);
		if (in->rank <= 0)
			return fail(in, MXS_INERR_BAD_RANK);
		s = comma + 1;
		while (isspace((unsigned char)*s))
			s++;
	}
	for (char *q = s; *q; q++)
		if ((unsigned char)*q >= 0x80)
			return fail(in, MXS_INERR_NOT_ASCII);
	if (strstr(s, "://"))
		return fail(in, MXS_INERR_URL);
	/* Anything with ':' or '/' or only digits and dots is meant as an address. */
	if (in->rank < 0 && (strchr(s, ':') || strchr(s, '/') || strspn(s, "0123456789.") == strlen(s)))
		return parse_addr(s, in);
	if (strlen(s) >= sizeof(in->name))
		return fail(in, MXS_INERR_BAD_NAME);
	strcpy(in->name, s);
	/* A mail domain has at least two labels; "localhost" or "com" are not surveyable. */
	if (mxs_dns_normalize(in->name) < 0 || !strchr(in->name, '.'))
		return fail(in, MXS_INERR_BAD_NAME);
	in->kind = MXS_IN_NAME;
}
