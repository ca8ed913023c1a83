#include "addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
static const unsigned char v6_loopback[16] = { [15] = 1 };

int fleet_addr_from_sockaddr(struct fleet_addr *a, const struct sockaddr *sa)
{
	memset(a, 0, sizeof(*a));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		a->family = AF_INET;
		memcpy(a->b, &sin->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		const unsigned char *p = (const unsigned char *)&sin6->sin6_addr;
		if (memcmp(p, v4_mapped_prefix, 12) == 0) {
			a->family = AF_INET;
			memcpy(a->b, p + 12, 4);
		} else {
			a->family = AF_INET6;
			memcpy(a->b, p, 16);
		}
		return 0;
	}
	return -1;
}

int fleet_addr_is_served(const struct fleet_addr *a)
{
	if (a->family == AF_INET)
		return a->b[0] == 127;
	return a->family == AF_INET6 && memcmp(a->b, v6_loopback, 16) == 0;
}

uint32_t fleet_addr_key(const struct fleet_addr *a)
{
	const unsigned char *p = a->family == AF_INET ? a->b : a->b + 12;

	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void fleet_addr_format(const struct fleet_addr *a, char *buf, size_t len)
{
	if (inet_ntop(a->family, a->b, buf, (socklen_t)len) == NULL && len > 0)
		buf[0] = '\0';
}

void fleet_addr_mx(const struct fleet_addr *a, char *buf, size_t len)
{
	if (a->family == AF_INET)
		snprintf(buf, len, "mx-%u-%u-%u.fleet.test", a->b[1], a->b[2], a->b[3]);
	else
		snprintf(buf, len, "mx-v6-%u.fleet.test", (unsigned)fleet_addr_key(a));
}

int fleet_range_parse(const char *s, struct fleet_range *r, const char **err)
{
	char host[FLEET_ADDR_STRLEN];
	const char *slash = strchr(s, '/');
	size_t hlen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	long bits = -1;

	memset(r, 0, sizeof(*r));
	if (hlen == 0 || hlen >= sizeof(host)) {
		*err = "not an address";
		return -1;
	}
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (slash != NULL) {
		char *end;
		bits = strtol(slash + 1, &end, 10);
		if (slash[1] == '\0' || *end != '\0' || bits < 0 || bits > 128) {
			*err = "bad prefix length";
			return -1;
		}
	}
	if (inet_pton(AF_INET6, host, r->first.b) == 1) {
		r->first.family = AF_INET6;
		if (!fleet_addr_is_served(&r->first) || (bits != -1 && bits != 128)) {
			*err = "the only IPv6 address served is ::1";
			return -1;
		}
		r->count = 1;
		return 0;
	}
	if (inet_pton(AF_INET, host, r->first.b) != 1) {
		*err = "not an address";
		return -1;
	}
	r->first.family = AF_INET;
	if (bits == -1)
		bits = 32;
	if (bits < 8 || bits > 32) {
		*err = "IPv4 prefix length must be 8 to 32";
		return -1;
	}
	if (!fleet_addr_is_served(&r->first)) {
		*err = "outside 127.0.0.0/8";
		return -1;
	}
	r->count = (uint64_t)1 << (32 - bits);
	if ((fleet_addr_key(&r->first) & (uint32_t)(r->count - 1)) != 0) {
		*err = "host bits set after the prefix";
		return -1;
	}
	return 0;
}

void fleet_range_nth(const struct fleet_range *r, uint64_t i, struct fleet_addr *out)
{
	uint32_t v;

	*out = r->first;
	if (out->family != AF_INET)
		return; /* IPv6 ranges hold one address */
	v = fleet_addr_key(&r->first) + (uint32_t)i;
	out->b[0] = (unsigned char)(v >> 24);
	out->b[1] = (unsigned char)(v >> 16);
	out->b[2] = (unsigned char)(v >> 8);
	out->b[3] = (unsigned char)v;
}
