/*
 * Addresses of the simulated internet: 127.0.0.0/8 and ::1.
 * 127.a.b.c is the mail server mx-a-b-c.fleet.test; ::1 is mx-v6-1.fleet.test.
 */
#ifndef FLEET_ADDR_H
#define FLEET_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define FLEET_ADDR_STRLEN 46   /* INET6_ADDRSTRLEN */
#define FLEET_MX_STRLEN 64

struct fleet_addr {
	int family;              /* AF_INET or AF_INET6 */
	unsigned char b[16];     /* network order; AF_INET uses b[0..3] */
};

/* An inclusive range of consecutive addresses. */
struct fleet_range {
	struct fleet_addr first;
	uint64_t count;
};

/* Fill a from an AF_INET/AF_INET6 sockaddr (v4-mapped IPv6 becomes AF_INET). 0 or -1. */
int fleet_addr_from_sockaddr(struct fleet_addr *a, const struct sockaddr *sa);

/* 1 if the fleet answers on a: inside 127.0.0.0/8, or ::1. */
int fleet_addr_is_served(const struct fleet_addr *a);

/* The 32-bit key behaviours are picked from: the IPv4 address, or IPv6's low 32 bits. */
uint32_t fleet_addr_key(const struct fleet_addr *a);

/* Text form ("127.0.0.5", "::1") into buf of at least FLEET_ADDR_STRLEN bytes. */
void fleet_addr_format(const struct fleet_addr *a, char *buf, size_t len);

/* MX name of the server at a ("mx-0-0-5.fleet.test") into buf of FLEET_MX_STRLEN bytes. */
void fleet_addr_mx(const struct fleet_addr *a, char *buf, size_t len);

/*
 * Parse "127.a.b.c", "127.a.b.c/N" (8 <= N <= 32, host bits zero), "::1" or "::1/128".
 * Returns 0, or -1 with a static explanation in *err.
 */
int fleet_range_parse(const char *s, struct fleet_range *r, const char **err);

/* The i-th address of r (i < r->count). */
void fleet_range_nth(const struct fleet_range *r, uint64_t i, struct fleet_addr *out);

#endif
