/*
 * Name lines (docs/record.md: the verdict of one MX name on an address) to result_names
 * rows, column for column as common/record_fields.h declares them. Keys this version does
 * not know go into the row's extra object; a value that does not fit its column makes the
 * line a reject (kept byte for byte), so nothing read is lost.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codes.h"
#include "record_fields.h"
#include "rowconv_int.h"

enum nkind { NK_TEXT, NK_TEXTS, NK_I16, NK_I32, NK_BOOL, NK_OUTCOME, NK_SHA256 };

#define NOBJ_ID_(id, parent, key, path, present) NOBJ_##id,
enum nobj { MXS_NAME_OBJECTS(NOBJ_ID_) NOBJ_LAST };
#define NOBJ_KEY_(id, parent, key, path, present) [NOBJ_##id] = key,
static const char *const nobj_key[NOBJ_LAST] = { MXS_NAME_OBJECTS(NOBJ_KEY_) };

#define NO_COL_(name, obj, key, json)
#define NCOL_(name, obj, key, kind, json) { NOBJ_##obj, key, NK_##kind },
static const struct { enum nobj obj; const char *key; enum nkind kind; } ncols[] = {
	MXS_NAME_FIELDS(NO_COL_, NCOL_)
};
#define NNCOLS (sizeof(ncols) / sizeof(ncols[0]))

#define NCOL_NAME_(name, obj, key, kind, json) ", " #name
const char rowconv_names_columns[] = "scan_id, ip, port, name" MXS_NAME_FIELDS(NO_COL_, NCOL_NAME_) ", extra";
#define NCOL_SET_(name, obj, key, kind, json) #name " = excluded." #name ", "
const char rowconv_names_update[] = MXS_NAME_FIELDS(NO_COL_, NCOL_SET_) "extra = excluded.extra";

static int known_top_key(const char *k)
{
#define KNOWN_K_(name, obj, key, json) if (strcmp(k, key) == 0) return 1;
#define KNOWN_X_(name, obj, key, kind, json) if (NOBJ_##obj == NOBJ_TOP && strcmp(k, key) == 0) return 1;
	MXS_NAME_FIELDS(KNOWN_K_, KNOWN_X_)
	for (int o = 1; o < NOBJ_LAST; o++)
		if (strcmp(k, nobj_key[o]) == 0)
			return 1;
	return 0;
}

/* One column; 0, or -1 when the value does not fit (the line is then rejected). */
static int put(struct copybuf *b, json_t *v, enum nkind kind)
{
	if (v == NULL || json_is_null(v)) {
		cb_null(b);
		return 0;
	}
	switch (kind) {
	case NK_TEXT:
		if (!json_is_string(v))
			return -1;
		cb_text(b, json_string_value(v), json_string_length(v));
		return 0;
	case NK_TEXTS: {
		size_t i;
		json_t *e;
		if (!json_is_array(v))
			return -1;
		json_array_foreach(v, i, e)
			if (!json_is_string(e))
				return -1;
		cb_array_begin(b);
		json_array_foreach(v, i, e)
			cb_array_text(b, json_string_value(e), json_string_length(e));
		cb_array_end(b);
		return 0;
	}
	case NK_I16:
	case NK_I32: {
		int64_t lim = kind == NK_I16 ? INT16_MAX : INT32_MAX;
		if (!json_is_integer(v) || json_integer_value(v) > lim || json_integer_value(v) < -lim - 1)
			return -1;
		cb_int(b, json_integer_value(v));
		return 0;
	}
	case NK_BOOL:
		if (!json_is_boolean(v))
			return -1;
		cb_bool(b, json_is_true(v));
		return 0;
	case NK_OUTCOME: {
		int code;
		if (!json_is_string(v) || (code = mxs_outcome_db_code(json_string_value(v))) == 0)
			return -1;
		cb_int(b, code);
		return 0;
	}
	case NK_SHA256: {
		unsigned char d[32];
		if (!json_is_string(v) ||
		    !rc_parse_sha256(json_string_value(v), json_string_length(v), d))
			return -1;
		cb_bytea(b, d, sizeof(d));
		return 0;
	}
	}
	return -1;
}

enum rowconv_kind rc_convert_name(int64_t scan_id, const char *line, size_t len,
                                  struct rowbufs *out, const char **why)
{
	struct copybuf *b = &out->names;
	size_t mark = b->len;
	int fields = b->fields;
	json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL), *obj[NOBJ_LAST] = { NULL };
	json_t *ip, *port, *name, *extra = NULL, *v;
	const char *k;
	int bad = 0;

	if (o == NULL) {
		*why = "name line is not valid JSON";
		return ROWCONV_REJECT;
	}
	ip = json_object_get(o, "ip");
	port = json_object_get(o, "port");
	name = json_object_get(o, "name");
	if (!json_is_string(ip) || !rc_valid_ip(json_string_value(ip), json_string_length(ip)) ||
	    !json_is_integer(port) || json_integer_value(port) < 0 || json_integer_value(port) > 65535 ||
	    !json_is_string(name) || json_string_length(name) == 0) {
		json_decref(o);
		*why = "name line without a valid ip, port and name";
		return ROWCONV_REJECT;
	}
	obj[NOBJ_TOP] = o;
	for (int i = 1; i < NOBJ_LAST; i++) {
		obj[i] = json_object_get(o, nobj_key[i]);
		if (obj[i] != NULL && !json_is_object(obj[i]) && !json_is_null(obj[i]))
			bad = 1;
		if (!json_is_object(obj[i]))
			obj[i] = NULL;
	}
	cb_int(b, scan_id);
	cb_text(b, json_string_value(ip), json_string_length(ip));
	cb_int(b, json_integer_value(port));
	cb_text(b, json_string_value(name), json_string_length(name));
	for (size_t i = 0; i < NNCOLS && !bad; i++)
		bad = put(b, obj[ncols[i].obj] ? json_object_get(obj[ncols[i].obj], ncols[i].key) : NULL,
			  ncols[i].kind) < 0;
	json_object_foreach(o, k, v) {
		if (known_top_key(k))
			continue;
		if (extra == NULL)
			extra = json_object();
		json_object_set(extra, k, v);
	}
	if (!bad) {
		char *x = extra ? json_dumps(extra, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		if (x != NULL)
			cb_text(b, x, strlen(x));
		else
			cb_null(b);
		free(x);
		cb_end_row(b);
	}
	json_decref(extra);
	json_decref(o);
	if (bad) {
		b->len = mark;
		b->fields = fields;
		*why = "name line with a value that does not fit its column";
		return ROWCONV_REJECT;
	}
	out->n_names++;
	return ROWCONV_NAME;
}
