/*
 * Blocklist and allowlist of address ranges, in zmap's format: one CIDR or address per
 * line, '#' starts a comment. An address is blocked when it matches a blocklist entry,
 * or when an allowlist is loaded and it matches no allowlist entry. Lookups are by
 * longest-prefix match, O(prefix bits); the list owns its memory.
 */
#ifndef MXS_BLOCKLIST_H
#define MXS_BLOCKLIST_H

#include <stddef.h>
#include <sys/socket.h>

struct mxs_blocklist;

struct mxs_blocklist *mxs_blocklist_new(void);
void mxs_blocklist_free(struct mxs_blocklist *bl);

/*
 * Add the reserved and special-purpose ranges of RFC 6890 (and its updates) that a survey
 * must never dial: 0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.0.0/24,
 * 192.0.2/24, 192.168/16, 198.18/15, 198.51.100/24, 203.0.113/24, 224/4, 240/4, ::/128,
 * ::1/128, fc00::/7, fe80::/10, 2001:db8::/32, ff00::/8 and the rest of that table.
 */
int mxs_blocklist_add_defaults(struct mxs_blocklist *bl);

/*
 * Load a file; allow=0 adds blocklist entries, allow=1 allowlist entries. Returns 0, or
 * -1 with a message naming the file and line number in err.
 */
int mxs_blocklist_load_file(struct mxs_blocklist *bl, const char *path, int allow,
			    char *err, size_t errlen);

/* Add one entry ("192.0.2.0/24", "2001:db8::1"); returns 0 or -1 if it does not parse. */
int mxs_blocklist_add(struct mxs_blocklist *bl, const char *cidr, int allow);

/*
 * Check an address (AF_INET or AF_INET6 sockaddr). Returns NULL when it may be dialled,
 * or a static-lifetime description of the rule that blocks it ("blocklist 10.0.0.0/8",
 * "not in allowlist"), valid until the list is freed.
 *
 * An IPv6 address that embeds an IPv4 address (IPv4-mapped ::ffff:0:0/96, IPv4-compatible
 * ::/96 but :: and ::1, 6to4 2002::/16, NAT64 64:ff9b::/96 and 64:ff9b:1::/48, Teredo
 * 2001::/32) is also checked against the IPv4 block rules ("reserved 127.0.0.0/8
 * (embedded in IPv6)"). The allowlist is matched against the address as written, except
 * that an IPv4-mapped address is also allowed by an IPv4 entry for its IPv4 address.
 */
const char *mxs_blocklist_check(const struct mxs_blocklist *bl, const struct sockaddr *sa);

#endif
