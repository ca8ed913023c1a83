/*
 * Customer networks for findings (`mxsurvey db networks FILE`): a file of
 *   cidr,name[,contact]      a customer network and who to tell ("192.0.2.0/26,Bakery,noc@bakery.example")
 *   prefix asn               a routing-table line, for grouping by origin AS ("192.0.2.0/24 64500",
 *   addr len asn             also the three-column form of prefix-to-AS dumps: "192.0.2.0 24 64500")
 * '#' starts a comment line; blank lines are skipped. Loaded as a new network set, which
 * scans created afterwards refer to (docs/database.md).
 */
#ifndef MXS_NETWORKS_H
#define MXS_NETWORKS_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

enum mxs_net_kind {
	MXS_NET_NONE,    /* comment or blank line */
	MXS_NET_NAMED,
	MXS_NET_ROUTE,
	MXS_NET_BAD,     /* not a line of either form: err says why */
};

struct mxs_net_entry {
	char prefix[64];         /* normalised: host bits cleared, "192.0.2.0/24" */
	char name[256];          /* named: the name; route: "AS64500" */
	char contact[512];       /* named only; "" when absent */
	int64_t asn;             /* route only */
};

/* Parse one line (without its newline). */
enum mxs_net_kind mxs_net_parse_line(const char *line, size_t len, struct mxs_net_entry *e,
                                     char *err, size_t errlen);

/*
 * Load the file at path as a new network set, in one transaction: all lines or none.
 * With scan > 0 the set is attached to that scan too. Returns the set's id (> 0) and
 * the counts, or MXS_NET_ERR_FILE (unreadable, or a bad line: err names it) or
 * MXS_NET_ERR_DB.
 */
#define MXS_NET_ERR_FILE (-1)
#define MXS_NET_ERR_DB (-2)
int64_t mxs_db_load_networks(PGconn *c, const char *path, int64_t scan, long *named,
                             long *routes, char *err, size_t errlen);

#endif
