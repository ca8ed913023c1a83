/*
 * Sending a run of lines to PostgreSQL in one transaction, idempotently.
 *
 * Results are COPYed straight into the scan's partition while the lines are converted
 * (the server parses one chunk while we build the next). If that COPY hits a row that is
 * already stored (a replayed spool, a re-ingested file, a resumed scan), the transaction
 * is rolled back and the run goes through staging instead: COPY into a temporary table,
 * then INSERT ... ON CONFLICT, where an existing row is replaced only if it recorded an
 * interrupted probe. Certificates, domains and rejects always go through staging. A
 * value the server refuses splits the run in halves until the one line is found, which
 * is then kept in rejects with the server's message: one bad line never costs a batch.
 */
#ifndef MXS_BATCH_H
#define MXS_BATCH_H

#include <libpq-fe.h>
#include <stdint.h>

#include "linevec.h"
#include "pgutil.h"

struct batch_counts {
	uint64_t results;          /* result records sent */
	uint64_t results_new;      /* rows inserted */
	uint64_t results_replaced; /* rows that replaced an interrupted result */
	uint64_t domains;          /* domain lines sent */
	uint64_t domains_new;
	uint64_t certs_new;
	uint64_t rejects;          /* lines kept in rejects */
	uint64_t blank;
};

void batch_counts_add(struct batch_counts *to, const struct batch_counts *from);

struct batcher;

struct batcher *batcher_new(void);
void batcher_free(struct batcher *b);

/* Create the staging tables on a new connection; 0 or -1 with err. */
int batcher_prepare(struct batcher *b, PGconn *c, char *err, size_t errlen);

/*
 * Store lines [from, to) of v into scan scan_id. On PGF_OK the counts are added to *out;
 * on any other class nothing of the run is stored and the caller keeps the lines
 * (PGF_CONN, PGF_OTHER: spool them and retry later).
 */
enum pg_fail batcher_send(struct batcher *b, PGconn *c, int64_t scan_id, const struct linevec *v,
                          size_t from, size_t to, int async, struct batch_counts *out, char *err,
                          size_t errlen);

/*
 * With async, a run that reached its COMMIT returns PGF_OK with the COMMIT sent but not
 * confirmed (batcher_pending() is 1): the caller keeps the lines until
 * batcher_commit_wait() says PGF_OK, and spools them otherwise. The next batcher_send
 * on the same connection waits for it first. Runs that had to be retried (conflict,
 * split) always commit synchronously.
 */
int batcher_pending(const struct batcher *b);
enum pg_fail batcher_commit_wait(struct batcher *b, PGconn *c, struct batch_counts *out,
                                 char *err, size_t errlen);

/*
 * The values stored once and the certificates that from's last transaction carried, if
 * it committed (and only then), need not be sent by to either: two connections of one
 * sink would otherwise each send every value and certificate once. Passes them once.
 */
void batcher_share(struct batcher *from, struct batcher *to);

#endif
