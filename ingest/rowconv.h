/*
 * Turns one JSON line of the scanner's stream (docs/record.md "result" lines and
 * docs/targets.md "domain" lines, and "name" lines) into rows of COPY text for the results,
 * certificates, domains, domain_mx and result_names tables, or into a reject row when the line is not a record.
 *
 * Every field of the record has a typed column; a value this version cannot store in its
 * column (a wrong type, an unknown outcome, a field added in a later record version) is
 * kept in the row's `extra` jsonb under its dotted path, so nothing read is lost.
 */
#ifndef MXS_ROWCONV_H
#define MXS_ROWCONV_H

#include <stddef.h>
#include <stdint.h>

#include "copybuf.h"
#include "intern.h"

/* The rows produced from a run of lines, one COPY buffer per destination table. */
struct rowbufs {
	struct copybuf results;
	struct copybuf certs;
	struct copybuf domains;
	struct copybuf domain_mx;
	struct copybuf names;
	struct copybuf rejects;
	struct intern_rows dict;   /* values stored once (intern.h) first sent in this batch */
	size_t n_results;
	size_t n_certs;
	size_t n_domains;
	size_t n_names;
	size_t n_rejects;
	size_t n_blank;
};

void rowbufs_init(struct rowbufs *r);
void rowbufs_reset(struct rowbufs *r);
void rowbufs_free(struct rowbufs *r);

enum rowconv_kind {
	ROWCONV_RESULT,     /* one results row (and maybe certificate rows) */
	ROWCONV_DOMAIN,     /* one domains row and its domain_mx rows */
	ROWCONV_NAME,       /* one result_names row: the verdict of one MX name on an address */
	ROWCONV_REJECT,     /* one rejects row: the line is not a valid record */
	ROWCONV_BLANK,      /* empty line: nothing */
	ROWCONV_SKIPPED,    /* a record that is no row: "duplicate" (its address has one) */
	ROWCONV_NOMEM,      /* out of memory: the buffers are incomplete */
	ROWCONV_KIND_LAST
};
extern const char *const rowconv_kind_names[ROWCONV_KIND_LAST];

/* Per-connection conversion state: the certificates already sent, so each is sent once. */
struct rowconv;

struct rowconv *rowconv_new(void);
void rowconv_free(struct rowconv *rc);
/* Forget the certificates and the values stored once (intern.h) sent on this connection:
 * call after a transaction that carried some rolled back. */
void rowconv_forget_sent(struct rowconv *rc);

/*
 * A transaction starts on rc's connection: from now on rc notes the values stored once
 * and certificates whose rows it writes. Once that transaction has committed,
 * rowconv_share(rc, other) lets another connection's converter skip them too (they are
 * stored); never before (intern.h).
 */
void rowconv_tx_begin(struct rowconv *rc);
void rowconv_share(const struct rowconv *from, struct rowconv *to);

/* Convert one line (without its newline) for scan scan_id, appending to out. */
enum rowconv_kind rowconv_line(struct rowconv *rc, int64_t scan_id, const char *line,
                               size_t len, struct rowbufs *out);

/* Column lists of the COPY statements, matching the order rowconv writes. */
const char *rowconv_results_columns(void);   /* result_rows's, as written */
extern const char rowconv_certs_columns[];
extern const char rowconv_domains_columns[];   /* the staging tables' (names as text) */
extern const char rowconv_domain_mx_columns[];
/* The columns after the names, the same in staging and in scan_domains / mxs_mx_set_rows. */
extern const char rowconv_domains_rest[];
extern const char rowconv_domain_mx_rest[];
extern const char rowconv_names_columns[];
/* "v = excluded.v, ..." for every result_names column but the key (an upsert's SET). */
extern const char rowconv_names_update[];
extern const char rowconv_rejects_columns[];

#endif
