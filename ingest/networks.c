/* Customer networks: the file format of networks.h and its load into network_sets. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copybuf.h"
#include "networks.h"
#include "pgutil.h"

static void trim(const char **p, size_t *n)
{
	while (*n > 0 && isspace((unsigned char)**p)) {
		(*p)++;
		(*n)--;
	}
	while (*n > 0 && isspace((unsigned char)(*p)[*n - 1]))
		(*n)--;
}

/*
 * An address with an optional "/len" (or a separate length, len_text non-NULL), host bits
 * cleared, into e->prefix. false with err when it is not one.
 */
static bool parse_prefix(const char *p, size_t n, const char *len_text, size_t len_n,
                         struct mxs_net_entry *e, char *err, size_t errlen)
{
	char addr[INET6_ADDRSTRLEN], lenbuf[8];
	unsigned char bytes[16];
	const char *slash = memchr(p, '/', n);
	size_t an = slash ? (size_t)(slash - p) : n;
	int family, bits, maxbits;
	char *end;

	if (an == 0 || an >= sizeof(addr))
		goto bad;
	memcpy(addr, p, an);
	addr[an] = '\0';
	family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	maxbits = family == AF_INET6 ? 128 : 32;
	if (inet_pton(family, addr, bytes) != 1)
		goto bad;
	if (slash != NULL) {
		len_text = slash + 1;
		len_n = n - an - 1;
	}
	bits = maxbits;
	if (len_text != NULL) {
		if (len_n == 0 || len_n >= sizeof(lenbuf))
			goto bad;
		memcpy(lenbuf, len_text, len_n);
		lenbuf[len_n] = '\0';
		errno = 0;
		long v = strtol(lenbuf, &end, 10);
		if (*end != '\0' || errno != 0 || v < 0 || v > maxbits || !isdigit((unsigned char)lenbuf[0]))
			goto bad;
		bits = (int)v;
	}
	for (int i = 0; i < maxbits / 8; i++) {
		int keep = bits - i * 8;
		if (keep <= 0)
			bytes[i] = 0;
		else if (keep < 8)
			bytes[i] &= (unsigned char)(0xff << (8 - keep));
	}
	if (inet_ntop(family, bytes, addr, sizeof(addr)) == NULL)
		goto bad;
	snprintf(e->prefix, sizeof(e->prefix), "%s/%d", addr, bits);
	return true;
bad:
	snprintf(err, errlen, "'%.*s' is not an address or prefix", (int)(n > 60 ? 60 : n), p);
	return false;
}

/* "64500", "AS64500", "{64500}", "64500_64501", "64500,64501": the first origin AS. */
static bool parse_asn(const char *p, size_t n, int64_t *asn)
{
	size_t i = 0;
	int64_t v = 0;

	if (n >= 2 && (p[0] == 'A' || p[0] == 'a') && (p[1] == 'S' || p[1] == 's'))
		i = 2;
	if (i < n && p[i] == '{')
		i++;
	if (i >= n || !isdigit((unsigned char)p[i]))
		return false;
	for (; i < n && isdigit((unsigned char)p[i]); i++) {
		v = v * 10 + (p[i] - '0');
		if (v > 4294967295LL)
			return false;
	}
	if (i < n && p[i] != '_' && p[i] != ',' && p[i] != '}')
		return false;
	*asn = v;
	return true;
}

/* Copy n bytes as a field value: no control bytes (the name is printed to people). */
static bool copy_field(char *dst, size_t cap, const char *p, size_t n)
{
	if (n >= cap)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return false;
	memcpy(dst, p, n);
	dst[n] = '\0';
	return true;
}

enum mxs_net_kind mxs_net_parse_line(const char *line, size_t len, struct mxs_net_entry *e,
                                     char *err, size_t errlen)
{
	const char *p = line;
	size_t n = len;

	memset(e, 0, sizeof(*e));
	trim(&p, &n);
	if (n == 0 || p[0] == '#')
		return MXS_NET_NONE;

	const char *comma = memchr(p, ',', n);
	if (comma != NULL) {
		const char *c1 = p, *c2 = comma + 1, *c3 = NULL;
		size_t n1 = (size_t)(comma - p), n2 = n - n1 - 1, n3 = 0;
		const char *comma2 = memchr(c2, ',', n2);
		if (comma2 != NULL) {
			c3 = comma2 + 1;
			n3 = (size_t)(p + n - c3);
			n2 = (size_t)(comma2 - c2);
		}
		trim(&c1, &n1);
		trim(&c2, &n2);
		if (c3 != NULL)
			trim(&c3, &n3);
		if (!parse_prefix(c1, n1, NULL, 0, e, err, errlen))
			return MXS_NET_BAD;
		if (n2 == 0) {
			snprintf(err, errlen, "a network without a name");
			return MXS_NET_BAD;
		}
		if (!copy_field(e->name, sizeof(e->name), c2, n2) ||
		    (c3 != NULL && !copy_field(e->contact, sizeof(e->contact), c3, n3))) {
			snprintf(err, errlen, "a name or contact too long or with control characters");
			return MXS_NET_BAD;
		}
		return MXS_NET_NAMED;
	}

	/* whitespace-separated: "prefix asn" or "addr len asn" */
	const char *w[4];
	size_t wn[4], k = 0;
	for (size_t i = 0; i < n && k < 4;) {
		while (i < n && isspace((unsigned char)p[i]))
			i++;
		if (i == n)
			break;
		w[k] = p + i;
		while (i < n && !isspace((unsigned char)p[i]))
			i++;
		wn[k] = (size_t)(p + i - w[k]);
		k++;
	}
	if (k == 2 || k == 3) {
		if (!parse_prefix(w[0], wn[0], k == 3 ? w[1] : NULL, k == 3 ? wn[1] : 0, e, err, errlen))
			return MXS_NET_BAD;
		if (!parse_asn(w[k - 1], wn[k - 1], &e->asn)) {
			snprintf(err, errlen, "'%.*s' is not an AS number", (int)(wn[k - 1] > 40 ? 40 : wn[k - 1]),
			         w[k - 1]);
			return MXS_NET_BAD;
		}
		snprintf(e->name, sizeof(e->name), "AS%" PRId64, e->asn);
		return MXS_NET_ROUTE;
	}
	snprintf(err, errlen, "neither 'cidr,name[,contact]' nor 'prefix asn'");
	return MXS_NET_BAD;
}

/* The whole file, NUL-terminated, or NULL with err. */
static char *slurp(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 1 << 16, n = 0;
	char *buf;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(cap);
	while (buf != NULL) {
		size_t r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
		if (r == 0)
			break;
		if (n + 1 == cap) {
			char *b = realloc(buf, cap * 2);
			if (b == NULL) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = b;
			cap *= 2;
		}
	}
	if (buf == NULL || ferror(f)) {
		snprintf(err, errlen, "%s: %s", path, buf ? strerror(errno) : "out of memory");
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

int64_t mxs_db_load_networks(PGconn *c, const char *path, int64_t scan, long *named,
                             long *routes, char *err, size_t errlen)
{
	size_t len, pos = 0, lineno = 0;
	char *text = slurp(path, &len, err, errlen);
	struct copybuf rows;
	struct mxs_net_entry e;
	char why[256];

	*named = *routes = 0;
	if (text == NULL)
		return MXS_NET_ERR_FILE;
	copybuf_init(&rows);
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len;
		enum mxs_net_kind k = mxs_net_parse_line(text + pos, end - pos, &e, why, sizeof(why));

		lineno++;
		pos = end + 1;
		if (k == MXS_NET_NONE)
			continue;
		if (k == MXS_NET_BAD) {
			snprintf(err, errlen, "%s line %zu: %s", path, lineno, why);
			copybuf_free(&rows);
			free(text);
			return MXS_NET_ERR_FILE;
		}
		cb_int(&rows, (int64_t)lineno);
		cb_str(&rows, k == MXS_NET_NAMED ? "named" : "route");
		cb_str(&rows, e.prefix);
		cb_str(&rows, e.name);
		cb_str(&rows, k == MXS_NET_NAMED && e.contact[0] ? e.contact : NULL);
		if (k == MXS_NET_ROUTE)
			cb_int(&rows, e.asn);
		else
			cb_null(&rows);
		cb_end_row(&rows);
		if (k == MXS_NET_NAMED)
			(*named)++;
		else
			(*routes)++;
	}
	free(text);
	if (rows.oom) {
		snprintf(err, errlen, "out of memory");
		copybuf_free(&rows);
		return MXS_NET_ERR_DB;
	}
	if (*named + *routes == 0) {
		snprintf(err, errlen, "%s: no network in the file", path);
		copybuf_free(&rows);
		return MXS_NET_ERR_FILE;
	}

	char sn[32], rn[32], scn[32], *id = NULL;
	snprintf(sn, sizeof(sn), "%ld", *named);
	snprintf(rn, sizeof(rn), "%ld", *routes);
	snprintf(scn, sizeof(scn), "%" PRId64, scan);
	const char *params[4] = { path, sn, rn, scn };
	int ok = pg_exec(c, "BEGIN; CREATE TEMP TABLE net_load (line bigint, kind text, prefix cidr,"
	                    " name text, contact text, asn bigint) ON COMMIT DROP", err, errlen) == 0 &&
	         pg_copy(c, "COPY net_load FROM STDIN", rows.data, rows.len, err, errlen) == PGF_OK;
	copybuf_free(&rows);
	if (ok) {
		/* the same prefix twice: the later line wins */
		PGresult *r = PQexecParams(c,
		        "WITH s AS (INSERT INTO network_sets (source, named, routes)"
		        "  VALUES ($1, $2::bigint, $3::bigint) RETURNING id),"
		        " n AS (INSERT INTO networks (set_id, kind, prefix, name, contact, asn)"
		        "  SELECT DISTINCT ON (kind, prefix) s.id, kind, prefix, name, contact, asn"
		        "  FROM net_load, s ORDER BY kind, prefix, line DESC),"
		        " a AS (UPDATE scans SET network_set_id = (SELECT id FROM s) WHERE id = $4::bigint)"
		        " SELECT id FROM s",
		        4, NULL, params, NULL, NULL, 0);
		ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
		if (ok)
			id = strdup(PQgetvalue(r, 0, 0));
		else
			pg_errmsg(c, r, err, errlen);
		PQclear(r);
	}
	if (ok && id != NULL && pg_exec(c, "COMMIT", err, errlen) == 0) {
		int64_t v = strtoll(id, NULL, 10);
		free(id);
		return v;
	}
	free(id);
	char ignore[64];
	pg_exec(c, "ROLLBACK", ignore, sizeof(ignore));
	return MXS_NET_ERR_DB;
}
