/*
 * Blocklist/allowlist as four binary tries (IPv4/IPv6 x block/allow). A node that ends a
 * prefix carries the rule text; a lookup walks the address bits and keeps the last rule
 * passed, which is the longest matching prefix.
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
	char *rule; /* owned; non-NULL where a prefix ends */
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
	free((*slot)->rule);
	(*slot)->rule = rule;
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

static const char *lookup(const struct node *n, const unsigned char *addr, unsigned bits)
{
	const char *best = NULL;

	for (unsigned i = 0; n; i++) {
		if (n->rule)
			best = n->rule;
		if (i == bits)
			break;
		n = n->child[bit(addr, i)];
	}
	return best;
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
	const char *rule = lookup(bl->trie[0][v6], addr, bits);
	if (rule)
		return rule;
	if (bl->nallow && !lookup(bl->trie[1][v6], addr, bits))
		return "not in allowlist";
	return NULL;
}
