/*
 * Values stored once: a text, a list of texts or a certificate chain that many result rows
 * share (EHLO extension lists, STARTTLS replies, cipher names, chains) is a row of a
 * dictionary table shared by all scans (mxs_texts, mxs_lists, mxs_chains; migration
 * 0017); the list of a row's ids is one such value too (mxs_refs, migration 0018), and the
 * result row holds its 8-byte id.
 *
 * The id is the value's content address: the first 63 bits of the SHA-256 of its key
 * (a kind byte, then the value's bytes as stored; docs/database.md "Values stored once"),
 * so every client and the SQL functions mxs_text_id(), mxs_list_id() and mxs_chain_id()
 * compute the same id without asking the server, and concurrent ingests need no
 * coordination: the dictionary row is inserted with ON CONFLICT DO NOTHING, in id order
 * (no deadlock between two loads), and a stored row whose value differs from the one
 * sent (a collision of 63 bits) fails the batch with a data error, so the line ends in
 * rejects rather than pointing at another value.
 *
 * How to use it from a converter (ingest/rowconv_*.c), with rc->intern and a scratch
 * key rc->ikey:
 *
 *     ikey_begin(&rc->ikey, IK_LIST);
 *     ikey_elem(&rc->ikey, "PIPELINING", 10);      // each element, in order
 *     ikey_null(&rc->ikey);                        // a NULL element
 *     int64_t id = intern_put(rc->intern, &rc->ikey, out);
 *     cb_int(&out->results, id);                   // the row's column
 *
 * intern_put writes the dictionary row (COPY text) into out->dict[kind] the first time the
 * value is seen on this connection; batch.c copies those into the stage_* tables and
 * inserts them with the rows (one transaction). After a rollback call intern_forget():
 * the values it sent were not stored. IK_TEXT takes exactly one ikey_elem (the text).
 */
#ifndef MXS_INTERN_H
#define MXS_INTERN_H

#include <stddef.h>
#include <stdint.h>

#include "copybuf.h"

enum intern_kind {
	IK_TEXT,    /* text: mxs_texts (id bigint, t text) */
	IK_LIST,    /* text[] (NULL elements allowed): mxs_lists (id bigint, l text[]) */
	IK_CHAIN,   /* bytea[]: mxs_chains (id bigint, c bytea[]) */
	IK_REFS,    /* bigint[] of ids of the kinds above (NULL allowed): mxs_refs (id bigint,
	             * refs bigint[]); each element an 8-byte big-endian ikey_elem */
	IK_LAST
};

/* The dictionary tables and their staging tables, by kind. */
extern const char *const intern_tables[IK_LAST];
extern const char *const intern_stage_tables[IK_LAST];
extern const char *const intern_columns[IK_LAST];

/* A value's key being built: kind byte, then per element a 4-byte big-endian length (or
 * 0xffffffff for NULL) and its bytes; a text is the kind byte and its bytes. */
struct ikey {
	unsigned char *p;   /* owned */
	size_t len, cap;
	int oom;
	enum intern_kind kind;
};

void ikey_init(struct ikey *k);
void ikey_free(struct ikey *k);
void ikey_begin(struct ikey *k, enum intern_kind kind);
void ikey_elem(struct ikey *k, const void *p, size_t n);
void ikey_null(struct ikey *k);

/* The id of a key (SHA-256, first 8 bytes big-endian, top bit cleared). */
int64_t ikey_id(const struct ikey *k);

/* The dictionary rows of one batch, per kind, and how many. */
struct intern_rows {
	struct copybuf rows[IK_LAST];
	size_t n[IK_LAST];
};

void intern_rows_init(struct intern_rows *r);
void intern_rows_reset(struct intern_rows *r);
void intern_rows_free(struct intern_rows *r);

/* The values sent on one connection: bounded, it forgets everything when full. */
struct intern;

struct intern *intern_new(void);
void intern_free(struct intern *in);
void intern_forget(struct intern *in);

/*
 * The id of the value in k; the first time on this connection (since the last
 * intern_forget) also appends its dictionary row to out. -1 when out of memory (k->oom
 * or the cache could not grow; out->rows[].oom tells the row buffer's).
 */
int64_t intern_put(struct intern *in, const struct ikey *k, struct intern_rows *out);

/*
 * Sharing between connections: each intern logs the values whose rows it appended since
 * intern_log_clear (call it when a transaction starts; intern_forget clears it too).
 * Once that transaction has COMMITTED, intern_share(from, to) makes to treat them as
 * sent, so another connection does not send them again (ingest's two lanes). Never
 * share a log whose transaction may still roll back: to's rows would name values that
 * are not stored.
 */
void intern_log_clear(struct intern *in);
void intern_share(const struct intern *from, struct intern *to);

#endif
