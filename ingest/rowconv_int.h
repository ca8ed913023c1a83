/*
 * Internals shared by the converters of rowconv.h: the conversion state, and value
 * checks that decide whether a value fits its column.
 */
#ifndef MXS_ROWCONV_INT_H
#define MXS_ROWCONV_INT_H

#include <stddef.h>
#include <stdint.h>

#include "certset.h"
#include "copybuf.h"
#include "jsontok.h"
#include "rowconv.h"

/* A key of a record object: its column, or a sub-object, or a key read elsewhere. */
struct rc_key {
	const char *name;
	size_t len;
	uint64_t head;       /* its first 8 bytes (fewer: zero-filled), to compare at once */
	int slot;            /* >= 0: column; < 0: RC_SUB(obj) or RC_SPECIAL_* */
};

#define RC_OBJS 11       /* objects of a result record holding columns (rowconv_result.c) */

struct rowconv {
	struct certset *certs;        /* owned: certificates sent on this connection */
	unsigned char (*cert_log)[32];/* owned: those whose rows this transaction carries */
	size_t cert_log_n, cert_log_cap;
	struct intern *intern;        /* owned: values stored once sent on this connection */
	struct ikey ikey;             /* owned: scratch key of the value being interned */
	struct jtoks toks;            /* owned: tokens of the current line */
	struct copybuf extra;         /* owned: the extra object being built */
	struct rc_key *keys[RC_OBJS]; /* owned: the keys of each object */
	size_t nkeys[RC_OBJS];
	/*
	 * owned: per object, nkeys + 1 indexes into keys: [i] the key that followed key i in
	 * the last record, [nkeys] its first key. A producer writes its keys in one order, so
	 * the key tried first is nearly always the one (NULL: names not unique, not used).
	 */
	unsigned short *after[RC_OBJS];
};

/* Build the key tables (rowconv_result.c). 0, or -1 out of memory. */
int rc_result_init(struct rowconv *rc);

enum rowconv_kind rc_convert_result(struct rowconv *rc, int64_t scan_id, const char *line,
                                    struct rowbufs *out, const char **why);
enum rowconv_kind rc_convert_name(int64_t scan_id, const char *line, size_t len,
                                  struct rowbufs *out, const char **why);
enum rowconv_kind rc_convert_domain(int64_t scan_id, const char *line, size_t len,
                                    struct rowbufs *out, const char **why);

int rc_valid_time(const char *s, size_t n);
int rc_valid_ip(const char *s, size_t n);
int rc_valid_esc(const char *s, size_t n);
/* Write an escape-form field (or array element), escaping a string not in the form. */
void rc_put_esc(struct copybuf *b, const char *s, size_t n, int in_array);
int rc_parse_sha256(const char *s, size_t n, unsigned char out[32]);
uint64_t rc_fnv1a(const char *s, size_t n);
int rc_any_oom(const struct rowbufs *r);

#endif
