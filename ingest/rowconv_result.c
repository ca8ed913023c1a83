/*
 * Result lines (docs/record.md) to a results row and certificates rows, from the tokens
 * of jsontok.h: one pass over each object's keys fills a slot per column, then the row
 * is written in column order. Values that do not fit their column, and keys this
 * version does not know, are copied verbatim (raw JSON) into the extra object.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include "codes.h"
#include "esc.h"
#include "intern.h"
#include "record_fields.h"
#include "rowconv_int.h"

/* The JSON objects of a result record that hold columns (common/record_fields.h). */
#define OBJ_ID_(id, parent, key, path, present) OBJ_##id,
enum obj { MXS_RECORD_OBJECTS(OBJ_ID_) OBJ_LAST };

_Static_assert(OBJ_LAST == RC_OBJS, "RC_OBJS must count the objects");

#define OBJ_WHERE_(id, parent, key, path, present) [OBJ_##id] = { OBJ_##parent, key, path },
static const struct { enum obj parent; const char *key; const char *path; } obj_where[OBJ_LAST] = {
	MXS_RECORD_OBJECTS(OBJ_WHERE_)
};

enum kind {
	K_TEXT,      /* any JSON string */
	K_ESC,       /* string in the escape form */
	K_I16,
	K_I32,
	K_BOOL,
	K_TIME,      /* RFC 3339 */
	K_TEXTS,     /* array of strings */
	K_ESCS,      /* array of escape-form strings */
	K_JSONB,     /* any JSON value, stored as is */
	K_OUTCOME,
	K_PHASE,
	K_TLSVER,
	K_CHAIN,     /* tls.chain: bytea[] of fingerprints, plus certificate rows */
};

/*
 * The results table after scan_id, ip, port (written first: they are the key), in COPY
 * order: the X entries of the field table; its K entries are the key, read on their own.
 */
#define NO_COLUMN_(name, obj, key, json)
#define RESULT_COLUMNS(X) MXS_RECORD_FIELDS(NO_COLUMN_, X)

struct column {
	enum obj obj;
	const char *key;
	enum kind kind;
};

#define X_ID(name, obj, key, kind, json) COL_##name,
enum col_id { RESULT_COLUMNS(X_ID) COL_LAST };

#define X_COL(name, obj, key, kind, json) { OBJ_##obj, key, K_##kind },
static const struct column cols[] = { RESULT_COLUMNS(X_COL) };
#define NCOLS ((int)COL_LAST)

#define X_NAME(name, obj, key, kind, json) #name,
static const char *const col_names[] = { RESULT_COLUMNS(X_NAME) };

/*
 * How a field is stored in result_rows (migration 0017; the view results shows every
 * field again as its own column). Repeated values are stored once (intern.h) and the row
 * holds their id; reply lines keep their first line, which names the host, in the row.
 */
enum store {
	ST_PLAIN,    /* a column of its own, as the field table says */
	ST_LIST,     /* an array of texts as an mxs_lists id: reference <name>_id */
	ST_SPLIT,    /* reply lines: <prefix>_first text (the first line) in the row,
	              * reference <prefix>_rest (the other lines as an mxs_lists id; NULL when
	              * the field is NULL) */
	ST_CHAIN,    /* reference chain_id: the fingerprints as an mxs_chains id, plus
	              * certificates rows */
	ST_GROUP,    /* first field of a group stored as one mxs_lists id (one element each):
	              * a reference */
	ST_MEMBER,   /* a later field of a group: no column */
	ST_MXNAMES,  /* mx_names: NULL and <column> true when it is [mx] (a survey's rows) */
	ST_MATCHED,  /* tls.matched_names: NULL and <column> true when it is mx_names */
};

/*
 * The references (ids of values stored once) of a row are themselves one value stored
 * once, a list of ids in this order (mxs_refs; migration 0018): the row holds its id,
 * reply_id. Most rows of a night, and of the nights after, repeat a few such lists.
 */
enum ref {
	REF_GREETING_REST, REF_EHLO_REST, REF_EHLO_EXTENSIONS, REF_STARTTLS_LINES,
	REF_EHLO_TLS_REST, REF_EHLO_TLS_EXTENSIONS, REF_AUTH_MECHANISMS, REF_AUTH_MECHANISMS_TLS,
	REF_NAMES, REF_TLS_NAMES, REF_CHAIN, REF_LAST
};

/* The fields not stored as ST_PLAIN; groups list their fields in element order. */
static const struct {
	const char *field;
	enum store store;
	const char *column;   /* ST_SPLIT: the prefix of the first line's column */
	int group;            /* ST_GROUP/ST_MEMBER: which group */
	int ref;              /* enum ref: the position of its id in reply_id's list; -1 none */
} stores[] = {
	{ "ehlo_name", ST_GROUP, NULL, 0, REF_NAMES },
	{ "profile", ST_MEMBER, NULL, 0, -1 },
	{ "ehlo_verb", ST_MEMBER, NULL, 0, -1 },
	{ "ehlo_tls_verb", ST_MEMBER, NULL, 0, -1 },
	{ "tls_cipher", ST_GROUP, NULL, 1, REF_TLS_NAMES },
	{ "tls_cipher_openssl", ST_MEMBER, NULL, 1, -1 },
	{ "tls_kex", ST_MEMBER, NULL, 1, -1 },
	{ "tls_kex_group", ST_MEMBER, NULL, 1, -1 },
	{ "tls_sig_alg", ST_MEMBER, NULL, 1, -1 },
	{ "tls_verify_reason", ST_MEMBER, NULL, 1, -1 },
	{ "greeting_lines", ST_SPLIT, "greeting", -1, REF_GREETING_REST },
	{ "ehlo_lines", ST_SPLIT, "ehlo", -1, REF_EHLO_REST },
	{ "ehlo_tls_lines", ST_SPLIT, "ehlo_tls", -1, REF_EHLO_TLS_REST },
	{ "ehlo_extensions", ST_LIST, NULL, -1, REF_EHLO_EXTENSIONS },
	{ "ehlo_tls_extensions", ST_LIST, NULL, -1, REF_EHLO_TLS_EXTENSIONS },
	{ "starttls_lines", ST_LIST, NULL, -1, REF_STARTTLS_LINES },
	{ "auth_mechanisms", ST_LIST, NULL, -1, REF_AUTH_MECHANISMS },
	{ "auth_mechanisms_tls", ST_LIST, NULL, -1, REF_AUTH_MECHANISMS_TLS },
	{ "chain_sha256", ST_CHAIN, NULL, -1, REF_CHAIN },
	{ "mx_names", ST_MXNAMES, "mx_names_is_mx", -1, -1 },
	{ "tls_matched_names", ST_MATCHED, "matched_is_mx_names", -1, -1 },
};
#define NSTORES (sizeof(stores) / sizeof(stores[0]))
#define NGROUPS 2

static enum store col_store[COL_LAST];
/* 1: a column of its own whose field, when absent, is simply NULL (put_column would say
 * so after two switches; most of a row's fields are absent) */
static unsigned char col_null_when_absent[COL_LAST];
static int col_group[COL_LAST];
static int col_ref[COL_LAST];
static int group_cols[NGROUPS][8];   /* the fields of each group, in element order */
static int group_n[NGROUPS];
static char results_columns[4096];
static pthread_once_t stores_once = PTHREAD_ONCE_INIT;

static void add_name(size_t *len, const char *a, const char *b)
{
	*len += (size_t)snprintf(results_columns + *len, sizeof(results_columns) - *len, ", %s%s",
	                         a, b);
}

static void init_stores(void)
{
	size_t len = (size_t)snprintf(results_columns, sizeof(results_columns), "scan_id, ip, port");
	for (int i = 0; i < NCOLS; i++) {
		col_store[i] = ST_PLAIN;
		col_group[i] = -1;
		col_ref[i] = -1;
		const char *column = NULL;
		for (size_t j = 0; j < NSTORES; j++)
			if (strcmp(stores[j].field, col_names[i]) == 0) {
				col_store[i] = stores[j].store;
				col_group[i] = stores[j].group;
				col_ref[i] = stores[j].ref;
				column = stores[j].column;
				if (stores[j].group >= 0)
					group_cols[stores[j].group][group_n[stores[j].group]++] = i;
			}
		switch (col_store[i]) {
		case ST_SPLIT:
			add_name(&len, column, "_first");
			break;
		case ST_MEMBER:
		case ST_LIST:
		case ST_CHAIN:
		case ST_GROUP:
			break;
		case ST_MXNAMES:
		case ST_MATCHED:
			add_name(&len, col_names[i], "");
			add_name(&len, column, "");
			break;
		case ST_PLAIN:
			add_name(&len, col_names[i], "");
			break;
		}
	}
	add_name(&len, "reply_id", "");
	add_name(&len, "extra", "");
	for (int i = 0; i < NCOLS; i++) {
		enum kind k = cols[i].kind;
		/* not OUTCOME (code 0), TLSVER (depends on the tls object) or CHAIN */
		col_null_when_absent[i] = col_store[i] == ST_PLAIN &&
		                          (k == K_TEXT || k == K_ESC || k == K_TIME || k == K_I16 ||
		                           k == K_I32 || k == K_BOOL || k == K_TEXTS || k == K_ESCS ||
		                           k == K_JSONB || k == K_PHASE);
	}
}

const char *rowconv_results_columns(void)
{
	pthread_once(&stores_once, init_stores);
	return results_columns;
}

const char rowconv_certs_columns[] =
	"sha256, subject, issuer, sans, not_before, not_after, serial, key_type, key_bits, "
	"sig_alg, first_scan_id";

/* Slots below 0: a sub-object (RC_SUB), or a key handled on its own. */
#define RC_SUB(o) (-1 - (int)(o))
#define RC_type (-100)
#define RC_ip (-101)
#define RC_port (-102)

static int add_key(struct rowconv *rc, enum obj o, const char *name, int slot)
{
	struct rc_key *k = realloc(rc->keys[o], (rc->nkeys[o] + 1) * sizeof(*k));
	if (k == NULL)
		return -1;
	rc->keys[o] = k;
	size_t len = strlen(name);
	uint64_t head = 0;
	memcpy(&head, name, len < 8 ? len : 8);
	k[rc->nkeys[o]++] = (struct rc_key){ name, len, head, slot };
	return 0;
}

int rc_result_init(struct rowconv *rc)
{
	int rc_ = 0;
	pthread_once(&stores_once, init_stores);
	for (int i = 0; i < NCOLS; i++)
		rc_ |= add_key(rc, cols[i].obj, cols[i].key, i);
	for (int o = 1; o < OBJ_LAST; o++)
		rc_ |= add_key(rc, obj_where[o].parent, obj_where[o].key, RC_SUB(o));
	/* the key entries of the field table: RC_type, RC_ip, RC_port */
#define KEY_SLOT_(name, obj, key, json) rc_ |= add_key(rc, OBJ_##obj, key, RC_##name);
#define NOT_KEY_(name, obj, key, kind, json)
	MXS_RECORD_FIELDS(KEY_SLOT_, NOT_KEY_)
	if (rc_ != 0)
		return rc_;
	/* the learned key order (scan_object), for objects whose key names are unique */
	for (int o = 0; o < OBJ_LAST; o++) {
		size_t n = rc->nkeys[o];
		int unique = n > 0 && n < USHRT_MAX;
		for (size_t i = 0; unique && i < n; i++)
			for (size_t j = i + 1; unique && j < n; j++)
				unique = strcmp(rc->keys[o][i].name, rc->keys[o][j].name) != 0;
		if (unique && (rc->after[o] = calloc(n + 1, sizeof(*rc->after[o]))) == NULL)
			return -1;
	}
	return 0;
}

/* Is keys[i] the key kp (klen bytes, first 8 in head)? */
static inline int key_eq(const struct rc_key *k, const char *kp, size_t klen, uint64_t head)
{
	return k->len == klen && k->head == head &&
	       (klen <= 8 || memcmp(k->name + 8, kp + 8, klen - 8) == 0);
}

/* The index in rc->keys[o] of the key kp (klen bytes) or nkeys[o]; prev is the index of
 * the key before it in this object (nkeys[o] for the first), and the order is learned. */
static size_t find_key(struct rowconv *rc, enum obj o, size_t prev, const char *kp, size_t klen)
{
	const struct rc_key *keys = rc->keys[o];
	size_t n = rc->nkeys[o], i;
	uint64_t head = 0;
	memcpy(&head, kp, klen < 8 ? klen : 8);
	if (rc->after[o] != NULL) {
		i = rc->after[o][prev];
		if (key_eq(&keys[i], kp, klen, head))
			return i;
	}
	for (i = 0; i < n; i++)
		if (key_eq(&keys[i], kp, klen, head))
			break;
	if (i < n && rc->after[o] != NULL)
		rc->after[o][prev] = (unsigned short)i;
	return i;
}

/* One record being converted. */
struct conv {
	struct rowconv *rc;
	struct jtoks *ts;
	const char *s;
	struct rowbufs *out;
	int64_t scan_id;
	size_t slot[COL_LAST];    /* value token of each column, 0 if absent */
	size_t obj[OBJ_LAST];     /* token of each object, 0 if absent */
	size_t ip, port;
	struct copybuf *x;        /* the extra object */
	int nextra;
	int64_t refs[REF_LAST];   /* the row's references (ids), valid where has_ref */
	unsigned char has_ref[REF_LAST];
};


/* The raw JSON text of token i (strings with their quotes). */
static const char *raw(const struct conv *c, size_t i, size_t *n)
{
	const struct jt *t = &c->ts->t[i];
	if (t->type == JT_STRING) {
		*n = t->end - t->start + 2;
		return c->s + t->start - 1;
	}
	*n = t->end - t->start;
	return c->s + t->start;
}

/* extra["<prefix><key>"] = raw value of token v; key is the raw text of a key token. */
static void extra_raw(struct conv *c, const char *prefix, const char *key, size_t keylen, size_t v)
{
	size_t n;
	const char *p = raw(c, v, &n);
	copybuf_raw(c->x, c->nextra++ ? ",\"" : "{\"", 2);
	copybuf_raw(c->x, prefix, strlen(prefix));
	copybuf_raw(c->x, key, keylen);
	copybuf_raw(c->x, "\":", 2);
	copybuf_raw(c->x, p, n);
}

static void extra_col(struct conv *c, int col)
{
	extra_raw(c, obj_where[cols[col].obj].path, cols[col].key, strlen(cols[col].key), c->slot[col]);
}

/* Fill the slots of object o (token t) and note unknown keys in extra. */
static void scan_object(struct conv *c, enum obj o, size_t t)
{
	struct rowconv *rc = c->rc;
	const struct jt *tk = c->ts->t;
	size_t prev = rc->nkeys[o];
	for (size_t k = t + 1; k < tk[t].skip; k = tk[k + 1].skip) {
		size_t klen = tk[k].end - tk[k].start;
		const char *kp = c->s + tk[k].start;
		size_t v = k + 1;
		int slot = 0, found = 0;
		if (!(tk[k].flags & JT_ESCAPED)) {
			size_t i = find_key(rc, o, prev, kp, klen);
			if (i < rc->nkeys[o]) {
				slot = rc->keys[o][i].slot;
				found = 1;
				prev = i;
			}
		}
		if (!found) {
			extra_raw(c, obj_where[o].path, kp, klen, v);
		} else if (slot >= 0) {
			c->slot[slot] = v;
		} else if (slot == RC_ip) {
			c->ip = v;
		} else if (slot == RC_port) {
			c->port = v;
		} else if (slot != RC_type) {
			enum obj sub = (enum obj)(-1 - slot);
			if (tk[v].type == JT_OBJECT)
				c->obj[sub] = v;
			else if (tk[v].type != JT_NULL)
				extra_raw(c, obj_where[o].path, kp, klen, v);
		}
	}
}

static const char *str(struct conv *c, size_t i, size_t *n)
{
	const char *p = jt_str(c->ts, c->s, i, n);
	if (p == NULL)
		c->out->results.oom = 1;
	return p;
}

static void put_int(struct conv *c, struct copybuf *b, int col, int64_t lo, int64_t hi)
{
	size_t v = c->slot[col];
	int64_t x;
	if (v == 0 || c->ts->t[v].type == JT_NULL) {
		cb_null(b);
	} else if (jt_int(c->ts, c->s, v, &x) && x >= lo && x <= hi) {
		cb_int(b, x);
	} else {
		cb_null(b);
		extra_col(c, col);
	}
}

/* An array of strings; anything else is NULL plus extra. */
static void put_strings(struct conv *c, struct copybuf *b, size_t v, int esc, int *bad)
{
	const struct jt *tk = c->ts->t;
	if (v == 0 || tk[v].type == JT_NULL) {
		cb_null(b);
		return;
	}
	if (tk[v].type != JT_ARRAY) {
		cb_null(b);
		*bad = 1;
		return;
	}
	for (size_t e = v + 1; e < tk[v].skip; e = tk[e].skip)
		if (tk[e].type != JT_STRING) {
			cb_null(b);
			*bad = 1;
			return;
		}
	cb_array_begin(b);
	for (size_t e = v + 1; e < tk[v].skip; e = tk[e].skip) {
		size_t n;
		const char *p = str(c, e, &n);
		if (p == NULL)
			return;
		if (esc)
			rc_put_esc(b, p, n, 1);
		else
			cb_array_text(b, p, n);
	}
	cb_array_end(b);
}

/* A name from a closed set as its code; an unknown name is code 0 plus extra. */
static void put_code(struct conv *c, struct copybuf *b, int col, int (*code)(const char *))
{
	size_t v = c->slot[col], n;
	int k = 0;
	if (v != 0 && c->ts->t[v].type == JT_STRING) {
		const char *p = str(c, v, &n);
		char name[32];
		if (p != NULL && n < sizeof(name) && memchr(p, '\0', n) == NULL) {
			memcpy(name, p, n);
			name[n] = '\0';
			k = code(name);
		}
	}
	if (k == 0 && v != 0)
		extra_col(c, col);
	cb_int(b, k);
}

/* A string-valued field of a certificate; 0 when the value had to be dropped. */
static int cert_string(struct conv *c, size_t entry, const char *key, enum kind kind)
{
	struct copybuf *b = &c->out->certs;
	size_t v = jt_get(c->ts, c->s, entry, key), n;
	const char *p;
	if (v == 0 || c->ts->t[v].type == JT_NULL) {
		cb_null(b);
		return 1;
	}
	if (c->ts->t[v].type != JT_STRING || (p = str(c, v, &n)) == NULL ||
	    (kind == K_TIME && !rc_valid_time(p, n))) {
		cb_null(b);
		return 0;
	}
	if (kind == K_ESC)
		rc_put_esc(b, p, n, 0);
	else
		cb_text(b, p, n);
	return 1;
}

static const char *const chain_keys[] = { "pos", "sha256", "subject", "issuer", "sans",
	"not_before", "not_after", "serial", "key_type", "key_bits", "sig_alg" };

/* An interned value's id as a column (-1: out of memory, noted for the caller's check). */
static void put_id(struct conv *c, struct copybuf *b, int64_t id)
{
	if (id < 0) {
		c->out->results.oom = 1;
		cb_null(b);
	} else {
		cb_int(b, id);
	}
}

/* An interned value's id as column col's reference (-1: out of memory, as put_id). */
static void put_ref(struct conv *c, int col, int64_t id)
{
	if (id < 0) {
		c->out->results.oom = 1;
		return;
	}
	c->refs[col_ref[col]] = id;
	c->has_ref[col_ref[col]] = 1;
}

/* Element of an interned list in its stored form (the escape form for ESC kinds). */
static void key_esc(struct conv *c, struct ikey *k, const char *p, size_t n)
{
	if (rc_valid_esc(p, n)) {
		ikey_elem(k, p, n);
		return;
	}
	size_t elen;
	char *e = mxs_esc_encode(p, n, &elen);
	if (e == NULL) {
		c->out->results.oom = 1;
		return;
	}
	ikey_elem(k, e, elen);
	free(e);
}

/*
 * An array of escape-form strings into k starting at element `from`; 0 when v is not an
 * array of strings (the caller stores NULL and keeps the value in extra).
 */
static int key_strings(struct conv *c, struct ikey *k, size_t v, size_t from)
{
	const struct jt *tk = c->ts->t;
	if (tk[v].type != JT_ARRAY)
		return 0;
	for (size_t e = v + 1; e < tk[v].skip; e = tk[e].skip)
		if (tk[e].type != JT_STRING)
			return 0;
	size_t i = 0;
	for (size_t e = v + 1; e < tk[v].skip; e = tk[e].skip, i++) {
		size_t n;
		const char *p;
		if (i < from)
			continue;
		if ((p = str(c, e, &n)) == NULL)
			return 1;
		key_esc(c, k, p, n);
	}
	return 1;
}

/* ST_LIST: the array as an mxs_lists id. */
static void put_list(struct conv *c, int col)
{
	struct ikey *k = &c->rc->ikey;
	size_t v = c->slot[col];
	if (v == 0 || c->ts->t[v].type == JT_NULL)
		return;
	ikey_begin(k, IK_LIST);
	if (!key_strings(c, k, v, 0)) {
		extra_col(c, col);
		return;
	}
	put_ref(c, col, intern_put(c->rc->intern, k, &c->out->dict));
}

/* The stored form of the first line of reply lines v into buf (NUL-terminated); its
 * length, or -1 when there is none or it does not fit. */
static long first_line(struct conv *c, size_t v, char *buf, size_t cap)
{
	const struct jt *tk = c->ts->t;
	size_t n;
	const char *p;
	if (v == 0 || tk[v].type != JT_ARRAY || tk[v].skip == v + 1 || tk[v + 1].type != JT_STRING ||
	    (p = str(c, v + 1, &n)) == NULL || !rc_valid_esc(p, n) || n >= cap)
		return -1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return (long)n;
}

/*
 * ST_SPLIT: reply lines as the first line (in the row: it names the host) and the other
 * lines (an mxs_lists id). NULL lines: both NULL; no lines: first NULL, rest the empty
 * list. After TLS, a first line equal to the one before TLS is stored as a lone
 * backslash, which no escape-form string is.
 */
static void put_split(struct conv *c, int col)
{
	struct copybuf *b = &c->out->results;
	struct ikey *k = &c->rc->ikey;
	const struct jt *tk = c->ts->t;
	size_t v = c->slot[col];
	if (v == 0 || tk[v].type == JT_NULL) {
		cb_null(b);
		return;
	}
	ikey_begin(k, IK_LIST);
	if (!key_strings(c, k, v, 1)) {
		cb_null(b);
		extra_col(c, col);
		return;
	}
	if (tk[v].skip == v + 1) {
		cb_null(b);
	} else {
		/* the line before TLS first: str() may reuse the scratch p points into */
		char before[512];
		long bn = col == COL_ehlo_tls_lines
		              ? first_line(c, c->slot[COL_ehlo_lines], before, sizeof(before)) : -1;
		size_t n;
		const char *p = str(c, v + 1, &n);
		if (p == NULL)
			cb_null(b);
		else if (bn >= 0 && (size_t)bn == n && memcmp(before, p, n) == 0)
			cb_text(b, "\\", 1);
		else
			rc_put_esc(b, p, n, 0);
	}
	put_ref(c, col, intern_put(c->rc->intern, k, &c->out->dict));
}

/* ST_GROUP: the group's fields (texts) as one mxs_lists id; NULL when all are absent. */
static void put_group(struct conv *c, int first, int g)
{
	struct ikey *k = &c->rc->ikey;
	const struct jt *tk = c->ts->t;
	int any = 0;
	ikey_begin(k, IK_LIST);
	for (int i = 0; i < group_n[g]; i++) {
		int col = group_cols[g][i];
		size_t v = c->slot[col], n;
		const char *p;
		if (v == 0 || tk[v].type == JT_NULL) {
			ikey_null(k);
		} else if (tk[v].type != JT_STRING || (p = str(c, v, &n)) == NULL) {
			ikey_null(k);
			if (tk[v].type != JT_STRING)
				extra_col(c, col);
		} else {
			ikey_elem(k, p, n);
			any = 1;
		}
	}
	if (any)
		put_ref(c, first, intern_put(c->rc->intern, k, &c->out->dict));
}

/* Note a certificate whose row this transaction carries (rowconv_share); a log that
 * cannot grow stops, which only means another connection sends the row too. */
static void log_cert(struct rowconv *rc, const unsigned char fp[32])
{
	if (rc->cert_log_n == rc->cert_log_cap) {
		size_t cap = rc->cert_log_cap ? rc->cert_log_cap * 2 : 1024;
		unsigned char(*l)[32] = realloc(rc->cert_log, cap * sizeof(*l));
		if (l == NULL)
			return;
		rc->cert_log = l;
		rc->cert_log_cap = cap;
	}
	memcpy(rc->cert_log[rc->cert_log_n++], fp, 32);
}

/*
 * The chain: its fingerprints in chain order, stored once in mxs_chains (the row holds
 * the id), and a certificates row for each certificate not sent before on this
 * connection. A chain we cannot store exactly is also kept whole in extra.
 */
static void put_chain(struct conv *c, int col)
{
	const struct jt *tk = c->ts->t;
	size_t v = c->slot[col];
	unsigned char fp[32];
	size_t n;
	const char *p;

	if (v == 0 || tk[v].type == JT_NULL)
		return;
	/* one pass; a malformed entry rolls the certificate rows back */
	size_t certmark = c->out->certs.len, ncerts = c->out->n_certs, logmark = c->rc->cert_log_n;
	int added = 0, ok = tk[v].type == JT_ARRAY;
	int lossy = 0;
	struct ikey *key = &c->rc->ikey;
	ikey_begin(key, IK_CHAIN);
	for (size_t e = v + 1; ok && e < tk[v].skip; e = tk[e].skip) {
		size_t h = tk[e].type == JT_OBJECT ? jt_get(c->ts, c->s, e, "sha256") : 0;
		ok = h != 0 && tk[h].type == JT_STRING && (p = str(c, h, &n)) != NULL &&
		     rc_parse_sha256(p, n, fp);
		if (!ok)
			break;
		ikey_elem(key, fp, sizeof(fp));
		if (!certset_add(c->rc->certs, fp))
			continue;
		added = 1;
		log_cert(c->rc, fp);
		struct copybuf *cb = &c->out->certs;
		cb_bytea(cb, fp, sizeof(fp));
		lossy |= !cert_string(c, e, "subject", K_ESC);
		lossy |= !cert_string(c, e, "issuer", K_ESC);
		int bad = 0;
		put_strings(c, cb, jt_get(c->ts, c->s, e, "sans"), 1, &bad);
		lossy |= bad;
		lossy |= !cert_string(c, e, "not_before", K_TIME);
		lossy |= !cert_string(c, e, "not_after", K_TIME);
		lossy |= !cert_string(c, e, "serial", K_TEXT);
		lossy |= !cert_string(c, e, "key_type", K_TEXT);
		size_t kb = jt_get(c->ts, c->s, e, "key_bits");
		int64_t bits;
		if (kb != 0 && jt_int(c->ts, c->s, kb, &bits) && bits >= INT32_MIN && bits <= INT32_MAX) {
			cb_int(cb, bits);
		} else {
			cb_null(cb);
			lossy |= kb != 0 && tk[kb].type != JT_NULL;
		}
		lossy |= !cert_string(c, e, "sig_alg", K_TEXT);
		cb_int(cb, c->scan_id);
		cb_end_row(cb);
		c->out->n_certs++;
		/* a key we have no column for */
		size_t known = 0, all = 0;
		for (size_t k = e + 1; k < tk[e].skip; k = tk[k + 1].skip, all++)
			for (size_t j = 0; j < sizeof(chain_keys) / sizeof(chain_keys[0]); j++)
				if (jt_key_is(c->ts, c->s, k, chain_keys[j])) {
					known++;
					break;
				}
		lossy |= known != all;
	}
	if (!ok) {
		c->out->certs.len = certmark;
		c->out->n_certs = ncerts;
		c->rc->cert_log_n = logmark;
		/* the set now holds fingerprints whose rows were dropped: forget them all */
		if (added)
			certset_clear(c->rc->certs);
		extra_col(c, col);
		return;
	}
	put_ref(c, col, intern_put(c->rc->intern, key, &c->out->dict));
	if (lossy)
		extra_col(c, col);
}

/* Are tokens a and b strings of the same bytes without escapes (so the same text)? */
static int same_plain_string(const struct conv *c, size_t a, size_t b)
{
	const struct jt *tk = c->ts->t;
	return a != 0 && b != 0 && tk[a].type == JT_STRING && tk[b].type == JT_STRING &&
	       !(tk[a].flags & JT_ESCAPED) && !(tk[b].flags & JT_ESCAPED) &&
	       tk[a].end - tk[a].start == tk[b].end - tk[b].start &&
	       memcmp(c->s + tk[a].start, c->s + tk[b].start, tk[a].end - tk[a].start) == 0;
}

/* Is mx_names exactly [mx]? */
static int mx_names_is_mx(const struct conv *c)
{
	const struct jt *tk = c->ts->t;
	size_t v = c->slot[COL_mx_names];
	return v != 0 && tk[v].type == JT_ARRAY && tk[v].skip > v + 1 && tk[v + 1].skip == tk[v].skip &&
	       same_plain_string(c, c->slot[COL_mx], v + 1);
}

/* Is tls.matched_names an array of strings equal to mx_names, element for element? */
static int matched_is_mx_names(const struct conv *c)
{
	const struct jt *tk = c->ts->t;
	size_t a = c->slot[COL_tls_matched_names], b = c->slot[COL_mx_names];
	if (a == 0 || b == 0 || tk[a].type != JT_ARRAY || tk[b].type != JT_ARRAY)
		return 0;
	size_t x = a + 1, y = b + 1;
	for (; x < tk[a].skip && y < tk[b].skip; x = tk[x].skip, y = tk[y].skip)
		if (!same_plain_string(c, x, y))
			return 0;
	return x >= tk[a].skip && y >= tk[b].skip;
}

/*
 * ST_MXNAMES, ST_MATCHED: in a survey mx_names is [mx], and matched_names is mx_names
 * when the certificate names the host: then the row stores NULL and the flag true (the
 * view results shows the array again); otherwise the array and a NULL flag.
 */
static void put_same_names(struct conv *c, int col)
{
	struct copybuf *b = &c->out->results;
	int same = col == COL_mx_names ? mx_names_is_mx(c) : matched_is_mx_names(c);
	int bad = 0;
	if (same) {
		cb_null(b);
		cb_bool(b, 1);
		return;
	}
	put_strings(c, b, c->slot[col], 0, &bad);
	if (bad)
		extra_col(c, col);
	cb_null(b);
}

/* reply_id: the row's references as one list stored once; NULL when it has none. */
static void put_reply(struct conv *c)
{
	struct ikey *k = &c->rc->ikey;
	int any = 0;
	ikey_begin(k, IK_REFS);
	for (int r = 0; r < REF_LAST; r++) {
		if (!c->has_ref[r]) {
			ikey_null(k);
			continue;
		}
		unsigned char be[8];
		uint64_t v = (uint64_t)c->refs[r];
		for (int i = 7; i >= 0; i--, v >>= 8)
			be[i] = (unsigned char)v;
		ikey_elem(k, be, sizeof(be));
		any = 1;
	}
	if (any)
		put_id(c, &c->out->results, intern_put(c->rc->intern, k, &c->out->dict));
	else
		cb_null(&c->out->results);
}

static void put_column(struct conv *c, int col)
{
	struct copybuf *b = &c->out->results;
	const struct column *k = &cols[col];
	size_t v = c->slot[col], n;
	const char *p;
	int bad = 0;

	switch (col_store[col]) {
	case ST_PLAIN:
	case ST_CHAIN:
		break;
	case ST_LIST:
		put_list(c, col);
		return;
	case ST_SPLIT:
		put_split(c, col);
		return;
	case ST_GROUP:
		put_group(c, col, col_group[col]);
		return;
	case ST_MEMBER:
		return;
	case ST_MXNAMES:
	case ST_MATCHED:
		put_same_names(c, col);
		return;
	}
	switch (k->kind) {
	case K_TEXT:
	case K_ESC:
	case K_TIME:
		if (v == 0 || c->ts->t[v].type == JT_NULL) {
			cb_null(b);
		} else if (c->ts->t[v].type != JT_STRING || (p = str(c, v, &n)) == NULL ||
		           (k->kind == K_TIME && !rc_valid_time(p, n))) {
			cb_null(b);
			extra_col(c, col);
		} else if (k->kind == K_ESC) {
			rc_put_esc(b, p, n, 0);
		} else {
			cb_text(b, p, n);
		}
		break;
	case K_I16:
		put_int(c, b, col, INT16_MIN, INT16_MAX);
		break;
	case K_I32:
		put_int(c, b, col, INT32_MIN, INT32_MAX);
		break;
	case K_BOOL:
		if (v == 0 || c->ts->t[v].type == JT_NULL) {
			cb_null(b);
		} else if (c->ts->t[v].type == JT_TRUE || c->ts->t[v].type == JT_FALSE) {
			cb_bool(b, c->ts->t[v].type == JT_TRUE);
		} else {
			cb_null(b);
			extra_col(c, col);
		}
		break;
	case K_TEXTS:
	case K_ESCS:
		put_strings(c, b, v, k->kind == K_ESCS, &bad);
		if (bad)
			extra_col(c, col);
		break;
	case K_JSONB:
		if (v == 0 || c->ts->t[v].type == JT_NULL) {
			cb_null(b);
		} else {
			p = raw(c, v, &n);
			cb_text(b, p, n);
		}
		break;
	case K_OUTCOME:
		put_code(c, b, col, mxs_outcome_db_code);
		break;
	case K_PHASE:
		if (v == 0 || c->ts->t[v].type == JT_NULL)
			cb_null(b);
		else
			put_code(c, b, col, mxs_phase_db_code);
		break;
	case K_TLSVER:
		/* a TLS object always has a version; an unknown one is code 0 */
		if (c->obj[OBJ_TLS] == 0)
			cb_null(b);
		else
			put_code(c, b, col, mxs_tls_version_code);
		break;
	case K_CHAIN:
		put_chain(c, col);
		break;
	}
}

enum rowconv_kind rc_convert_result(struct rowconv *rc, int64_t scan_id, const char *line,
                                    struct rowbufs *out, const char **why)
{
	struct conv c = { .rc = rc, .ts = &rc->toks, .s = line, .out = out, .scan_id = scan_id,
		.x = &rc->extra };
	struct copybuf *b = &out->results;
	size_t mark = b->len, certmark = out->certs.len, ncerts = out->n_certs;
	char synth[64];
	const char *ip = NULL;
	size_t iplen = 0;

	copybuf_reset(c.x);
	c.obj[OBJ_TOP] = 0;
	scan_object(&c, OBJ_TOP, 0);
	/* sub-objects in parent order: tls before tls.dane */
	for (int o = 1; o < OBJ_LAST; o++)
		if (c.obj[o] != 0)
			scan_object(&c, (enum obj)o, c.obj[o]);

	/* the key: ip and port; a bad-target record without an address gets a stable one */
	int bad_target = 0;
	size_t out_tok = c.slot[COL_outcome];
	if (out_tok != 0 && c.ts->t[out_tok].type == JT_STRING) {
		size_t n;
		const char *p = str(&c, out_tok, &n);
		bad_target = p != NULL && n == 10 && memcmp(p, "bad-target", 10) == 0;
		/*
		 * A repeated input line: the scanner probed the address once, and that
		 * result is its row. Storing this one could displace it.
		 */
		if (p != NULL && n == 9 && memcmp(p, "duplicate", 9) == 0)
			return ROWCONV_SKIPPED;
	}
	if (c.ip != 0 && c.ts->t[c.ip].type == JT_STRING)
		ip = str(&c, c.ip, &iplen);
	if (ip != NULL && rc_valid_ip(ip, iplen)) {
		/* kept: jt_str's scratch is reused by later strings */
		memcpy(synth, ip, iplen);
		synth[iplen] = '\0';
		ip = synth;
	} else if (bad_target) {
		/* RFC 6666 discard prefix 100::/64 plus a hash of the input line */
		size_t in = c.slot[COL_input], n = 0;
		const char *p = in != 0 && c.ts->t[in].type == JT_STRING ? str(&c, in, &n) : "";
		uint64_t h = rc_fnv1a(p ? p : "", p ? n : 0);
		snprintf(synth, sizeof(synth), "100::%x:%x:%x:%x", (unsigned)(h >> 48) & 0xffff,
		         (unsigned)(h >> 32) & 0xffff, (unsigned)(h >> 16) & 0xffff, (unsigned)h & 0xffff);
		ip = synth;
		iplen = strlen(synth);
		if (c.ip != 0 && c.ts->t[c.ip].type != JT_NULL)
			extra_raw(&c, "", "ip", 2, c.ip);
	} else {
		*why = "result without a valid ip";
		return ROWCONV_REJECT;
	}
	int64_t port = bad_target && c.port == 0 ? 0 : 25;
	if (c.port != 0 && c.ts->t[c.port].type != JT_NULL &&
	    !(jt_int(c.ts, line, c.port, &port) && port >= 0 && port <= 65535)) {
		*why = "result with a port outside 0-65535";
		return ROWCONV_REJECT;
	}

	cb_int(b, scan_id);
	cb_text(b, ip, iplen);
	cb_int(b, port);
	for (int i = 0; i < NCOLS; i++) {
		if (c.slot[i] == 0 && col_null_when_absent[i])
			cb_null(b);
		else
			put_column(&c, i);
	}
	put_reply(&c);
	if (c.nextra) {
		copybuf_raw(c.x, "}", 1);
		cb_text(b, c.x->data, c.x->len);
	} else {
		cb_null(b);
	}
	cb_end_row(b);
	if (c.x->oom || rc_any_oom(out)) {
		b->len = mark;
		out->certs.len = certmark;
		out->n_certs = ncerts;
		b->oom = out->certs.oom = 0;
		/* values interned for this row stay in dict: the batch fails as a whole */
		return ROWCONV_NOMEM;
	}
	out->n_results++;
	return ROWCONV_RESULT;
}
