/*
 * Blocklist/allowlist as four binary tries (IPv4/IPv6 x block/allow). A node that ends a
 * prefix carries the rule text; a lookup walks the address bits and keeps the last rule
 * passed, which is the longest matching prefix.
 *
 * An IPv6 address that carries an IPv4 address (mapped, compatible, 6to4, NAT64, Teredo)
 * reaches that IPv4 host or goes through it, so the IPv4 block rules apply to it too:
 * otherwise `::ffff:127.0.0.1` or `2002:7f00:1::1` would dial what `127.0.0.0/8` forbids.
 */
#include "blocklist.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
	struct node *child[2];
	char *rule;     /* owned; non-NULL where a prefix ends */
	char *via_v6;   /* owned; IPv4 rules: the text when it matched an embedded address */
};

struct mxs_blocklist {
	struct node *trie[2][2]; /* [allow][v6] */
	size_t nallow;           /* allowlist entries: when 0, no allowlist is in force */
};

/* RFC 6890 special-purpose registries (and RFC 8190 updates), the ranges never to dial. */
static const char *const default_ranges[] = {
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
	"172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
	"198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
	"::/128", "::1/128", "::ffff:0:0/96", "64:ff9b:1::/48", "100::/64", "2001::/23",
	"2001:db8::/32", "fc00::/7", "fe80::/10", "ff00::/8",
};

struct mxs_blocklist *mxs_blocklist_new(void)
{
	return calloc(1, sizeof(struct mxs_blocklist));
}

static void free_node(struct node *n)
{
	/* iterative on one side keeps the recursion depth at most 128 */
	while (n) {
		struct node *next = n->child[1];
		free_node(n->child[0]);
		free(n->rule);
		free(n->via_v6);
		free(n);
		n = next;
	}
}

void mxs_blocklist_free(struct mxs_blocklist *bl)
{
	if (!bl)
		return;
	for (int a = 0; a < 2; a++)
		for (int v = 0; v < 2; v++)
			free_node(bl->trie[a][v]);
	free(bl);
}

static int bit(const unsigned char *addr, unsigned i)
{
	return (addr[i / 8] >> (7 - i % 8)) & 1;
}

/* Parse "a.b.c.d[/n]" or "x::y[/n]" into bytes, family (0/1 for v4/v6) and prefix. */
static int parse_cidr(const char *s, unsigned char addr[16], int *v6, unsigned *plen)
{
	char buf[INET6_ADDRSTRLEN + 8];
	size_t n = strlen(s);
	char *slash;

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n + 1);
	slash = strchr(buf, '/');
	if (slash)
		*slash++ = '\0';
	if (inet_pton(AF_INET, buf, addr) == 1) {
		*v6 = 0;
		*plen = 32;
	} else if (inet_pton(AF_INET6, buf, addr) == 1) {
		*v6 = 1;
		*plen = 128;
	} else {
		return -1;
	}
	if (slash) {
		char *end;
		if (!isdigit((unsigned char)*slash))
			return -1;
		errno = 0;
		unsigned long p = strtoul(slash, &end, 10);
		if (*end || errno || p > *plen)
			return -1;
		*plen = (unsigned)p;
	}
	return 0;
}

static int insert(struct mxs_blocklist *bl, const char *cidr, int allow, const char *label)
{
	unsigned char addr[16];
	unsigned plen;
	int v6;
	struct node **slot;

	if (parse_cidr(cidr, addr, &v6, &plen) < 0)
		return -1;
	slot = &bl->trie[allow ? 1 : 0][v6];
	for (unsigned i = 0;; i++) {
		if (!*slot && !(*slot = calloc(1, sizeof(struct node))))
			return -1;
		if (i == plen)
			break;
		slot = &(*slot)->child[bit(addr, i)];
	}
	/* The rule names the network as given, host bits cleared, as zmap would use it. */
	for (unsigned i = plen; i < (v6 ? 128u : 32u); i++)
		addr[i / 8] &= (unsigned char)~(1u << (7 - i % 8));
	char text[INET6_ADDRSTRLEN];
	inet_ntop(v6 ? AF_INET6 : AF_INET, addr, text, sizeof(text));
	size_t need = strlen(label) + strlen(text) + 8;
	char *rule = malloc(need);
	if (!rule)
		return -1;
	snprintf(rule, need, "%s %s/%u", label, text, plen);
	char *via = NULL;
	if (!v6 && !allow) {
		need += sizeof(" (embedded in IPv6)");
		if (!(via = malloc(need))) {
			free(rule);
			return -1;
		}
		snprintf(via, need, "%s (embedded in IPv6)", rule);
	}
	free((*slot)->rule);
	free((*slot)->via_v6);
	(*slot)->rule = rule;
	(*slot)->via_v6 = via;
	if (allow)
		bl->nallow++;
	return 0;
}

int mxs_blocklist_add(struct mxs_blocklist *bl, const char *cidr, int allow)
{
	return insert(bl, cidr, allow, allow ? "allowlist" : "blocklist");
}

int mxs_blocklist_add_defaults(struct mxs_blocklist *bl)
{
	for (size_t i = 0; i < sizeof(default_ranges) / sizeof(default_ranges[0]); i++)
		if (insert(bl, default_ranges[i], 0, "reserved") < 0)
			return -1;
	return 0;
}

int mxs_blocklist_load_file(struct mxs_blocklist *bl, const char *path, int allow,
			    char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t n;
	int rc = 0;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *s = line;
		while (isspace((unsigned char)*s))
			s++;
		char *e = s + strlen(s);
		while (e > s && isspace((unsigned char)e[-1]))
			*--e = '\0';
		if (*s == '\0')
			continue;
		if (mxs_blocklist_add(bl, s, allow) < 0) {
			snprintf(err, errlen, "%s:%zu: not an address or CIDR range: %.64s", path,
				 lineno, s);
			rc = -1;
			break;
		}
	}
	if (rc == 0 && ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		rc = -1;
	}
	free(line);
	fclose(f);
	return rc;
}

/* The node of the longest prefix of addr that carries a rule; NULL when none does. */
static const struct node *lookup(const struct node *n, const unsigned char *addr, unsigned bits)
{
	const struct node *best = NULL;

	for (unsigned i = 0; n; i++) {
		if (n->rule)
			best = n;
		if (i == bits)
			break;
		n = n->child[bit(addr, i)];
	}
	return best;
}

static int has_prefix(const unsigned char *a, const unsigned char *p, size_t n)
{
	return memcmp(a, p, n) == 0;
}

/*
 * The IPv4 addresses an IPv6 address carries, at most MAX_EMBEDDED of them, copied to
 * out; *mapped is set for ::ffff:0:0/96, which is an IPv4 address and nothing else.
 *
 * - ::ffff:a.b.c.d (RFC 4291 2.5.5.2, mapped): a socket connects to a.b.c.d over IPv4;
 * - ::a.b.c.d (RFC 4291 2.5.5.1, compatible; deprecated) except :: and ::1;
 * - 2002:AABB:CCDD::/48 (RFC 3056, 6to4): the relay forwards to a.b.c.d;
 * - 64:ff9b::a.b.c.d (RFC 6052, NAT64 well-known prefix, /96 format);
 * - 64:ff9b:1::/48 (RFC 8215, local-use NAT64): the operator picks the prefix length, so
 *   every RFC 6052 position inside the /48 is taken (/48, /56, /64, /96);
 * - 2001:0::/32 (RFC 4380, Teredo): the server's address, and the client's (inverted).
 */
#define MAX_EMBEDDED 4

static size_t embedded_v4(const unsigned char *a, unsigned char out[MAX_EMBEDDED][4], int *mapped)
{
	static const unsigned char zero[12] = { 0 };
	static const unsigned char ffff[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const unsigned char wkp[12] = { 0, 0x64, 0xff, 0x9b };
	static const unsigned char lup[6] = { 0, 0x64, 0xff, 0x9b, 0, 1 };
	static const unsigned char sixtofour[2] = { 0x20, 0x02 };
	static const unsigned char teredo[4] = { 0x20, 0x01, 0, 0 };
	/* byte positions of the IPv4 address for the RFC 6052 prefix lengths 48, 56, 64, 96
	 * (bits 64-71, byte 8, are never used) */
	static const unsigned char rfc6052[4][4] = {
		{ 6, 7, 9, 10 }, { 7, 9, 10, 11 }, { 9, 10, 11, 12 }, { 12, 13, 14, 15 },
	};

	*mapped = 0;
	if (has_prefix(a, ffff, 12)) {
		*mapped = 1;
		memcpy(out[0], a + 12, 4);
		return 1;
	}
	if (has_prefix(a, zero, 12)) {
		static const unsigned char v6only[2][4] = { { 0, 0, 0, 0 }, { 0, 0, 0, 1 } };
		if (memcmp(a + 12, v6only[0], 4) == 0 || memcmp(a + 12, v6only[1], 4) == 0)
			return 0; /* :: and ::1 are IPv6's own */
		memcpy(out[0], a + 12, 4);
		return 1;
	}
	if (has_prefix(a, wkp, 12)) {
		memcpy(out[0], a + 12, 4);
		return 1;
	}
	if (has_prefix(a, lup, 6)) {
		for (size_t k = 0; k < 4; k++)
			for (size_t i = 0; i < 4; i++)
				out[k][i] = a[rfc6052[k][i]];
		return 4;
	}
	if (has_prefix(a, sixtofour, 2)) {
		memcpy(out[0], a + 2, 4);
		return 1;
	}
	if (has_prefix(a, teredo, 4)) {
		memcpy(out[0], a + 4, 4);
		for (size_t i = 0; i < 4; i++)
			out[1][i] = (unsigned char)~a[12 + i];
		return 2;
	}
	return 0;
}

const char *mxs_blocklist_check(const struct mxs_blocklist *bl, const struct sockaddr *sa)
{
	const unsigned char *addr;
	unsigned bits;
	int v6;

	if (sa->sa_family == AF_INET) {
		addr = (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
		bits = 32;
		v6 = 0;
	} else if (sa->sa_family == AF_INET6) {
		addr = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
		bits = 128;
		v6 = 1;
	} else {
		return "unsupported address family";
	}
	/* A blocklist match wins over the allowlist: opt-out requests must always hold. */
	const struct node *rule = lookup(bl->trie[0][v6], addr, bits);
	if (rule)
		return rule->rule;
	unsigned char v4[MAX_EMBEDDED][4];
	int mapped = 0;
	size_t nv4 = v6 ? embedded_v4(addr, v4, &mapped) : 0;
	for (size_t i = 0; i < nv4; i++)
		if ((rule = lookup(bl->trie[0][0], v4[i], 32)))
			return rule->via_v6;
	if (!bl->nallow || lookup(bl->trie[1][v6], addr, bits))
		return NULL;
	/* a mapped address is its IPv4 address: an IPv4 allowlist entry allows it */
	if (mapped && lookup(bl->trie[1][0], v4[0], 32))
		return NULL;
	return "not in allowlist";
}
