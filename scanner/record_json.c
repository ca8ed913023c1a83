/* The record as one JSON line, field for field as docs/record.md lists them. */
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "esc.h"
#include "record.h"
#include "record_fields.h"
#include "timeutil.h"

/*
 * A JSON string, or null for NULL. Strings that are not valid UTF-8 (only possible if a
 * caller forgot to escape remote bytes) are escaped rather than dropped.
 */
static json_t *jstr(const char *s)
{
	json_t *j;
	char *e;

	if (s == NULL)
		return json_null();
	if ((j = json_string(s)) != NULL)
		return j;
	e = mxs_esc_encode(s, strlen(s), NULL);
	j = json_string(e ? e : "");
	free(e);
	return j;
}

static json_t *jstrv(const struct strv *sv)
{
	json_t *a = json_array();
	for (size_t i = 0; i < sv->n; i++)
		json_array_append_new(a, jstr(sv->v[i]));
	return a;
}

static json_t *jint_or_null(int64_t v)
{
	return v < 0 ? json_null() : json_integer(v);
}

/* A tri-state answer: -1 unknown (null), 0, 1. */
static json_t *jbool3(int v)
{
	return v < 0 ? json_null() : json_boolean(v);
}

static json_t *jtime(int64_t ms)
{
	char start[40];
	mxs_fmt_rfc3339_ms(ms, start, sizeof(start));
	return json_string(start);
}

static json_t *cert_json(const struct mxs_cert_rec *c, size_t pos)
{
	return json_pack("{s:I, s:s, s:o, s:o, s:o, s:s, s:s, s:o, s:o, s:i, s:o}",
			 "pos", (json_int_t)pos, "sha256", c->sha256, "subject", jstr(c->subject),
			 "issuer", jstr(c->issuer), "sans", jstrv(&c->sans),
			 "not_before", c->not_before, "not_after", c->not_after,
			 "serial", jstr(c->serial), "key_type", jstr(c->key_type),
			 "key_bits", c->key_bits, "sig_alg", jstr(c->sig_alg));
}

static json_t *chain_json(const struct mxs_tls_rec *t)
{
	json_t *chain = json_array();
	for (size_t i = 0; i < t->nchain; i++)
		json_array_append_new(chain, cert_json(&t->chain[i], i));
	return chain;
}

static json_t *transcript_json(const struct mxs_record *r)
{
	json_t *a = json_array();
	for (size_t i = 0; i < r->ntranscript; i++) {
		const struct mxs_transcript_ent *e = &r->transcript[i];
		char dir[2] = { e->dir, '\0' };
		json_t *o = json_pack("{s:s, s:I, s:o}", "dir", dir, "t", (json_int_t)e->t_ms,
				      "data", jstr(e->data));
		if (e->tls)
			json_object_set_new(o, "tls", json_true());
		if (e->truncated)
			json_object_set_new(o, "truncated", json_true());
		json_array_append_new(a, o);
	}
	return a;
}

#define OBJ_ID_(id, parent, key, path, present) OBJ_##id,
enum obj { MXS_RECORD_OBJECTS(OBJ_ID_) OBJ_LAST };
#define FIELD_ID_(name, obj, key, ...) F_##name,
enum field { MXS_RECORD_FIELDS(FIELD_ID_, FIELD_ID_) F_LAST };

#define OBJ_DEF_(id, parent, key, path, present) { OBJ_##parent, key },
static const struct { enum obj parent; const char *key; } objs[OBJ_LAST] = {
	MXS_RECORD_OBJECTS(OBJ_DEF_)
};
#define FIELD_DEF_(name, obj, key, ...) { OBJ_##obj, key },
static const struct { enum obj obj; const char *key; } fields[F_LAST] = {
	MXS_RECORD_FIELDS(FIELD_DEF_, FIELD_DEF_)
};

/* Whether object o is written as an object (> 0), as null (0) or left out (< 0); t is r->tls. */
static int obj_present(const struct mxs_record *r, const struct mxs_tls_rec *t, enum obj o)
{
	switch (o) {
#define OBJ_PRESENT_(id, parent, key, path, present) \
	case OBJ_##id: { int v_ = (present); return v_ > 0 ? 1 : v_ < 0 ? -1 : 0; }
	MXS_RECORD_OBJECTS(OBJ_PRESENT_)
	case OBJ_LAST: break;
	}
	return 0;
}

/* The value of field f (a new reference), or NULL to leave the key out. */
static json_t *field_value(const struct mxs_record *r, const struct mxs_tls_rec *t, enum field f)
{
	switch (f) {
#define FIELD_K_(name, obj, key, json) case F_##name: return (json);
#define FIELD_X_(name, obj, key, kind, json) case F_##name: return (json);
	MXS_RECORD_FIELDS(FIELD_K_, FIELD_X_)
	case F_LAST: break;
	}
	return NULL;
}

char *mxs_record_to_json(const struct mxs_record *r, size_t *len)
{
	const struct mxs_tls_rec *t = r->tls;
	json_t *obj[OBJ_LAST] = { NULL };
	bool placed[OBJ_LAST] = { false };
	char *s;

	obj[OBJ_TOP] = json_object();
	if (obj[OBJ_TOP] == NULL)
		return NULL;
	placed[OBJ_TOP] = true;
	/*
	 * Fields in table order; an object takes its place in its parent at its first field,
	 * as null when it is absent (its parent is then present, the table nests them), or
	 * not at all when its presence is negative.
	 */
	for (int f = 0; f < F_LAST; f++) {
		enum obj o = fields[f].obj;
		json_t *v;

		if (!placed[o]) {
			enum obj p = objs[o].parent;
			placed[o] = true;
			if (obj[p] == NULL)
				continue;
			int pr = obj_present(r, t, o);
			if (pr > 0) {
				obj[o] = json_object();
				json_object_set(obj[p], objs[o].key, obj[o]);
			} else if (pr == 0) {
				json_object_set_new(obj[p], objs[o].key, json_null());
			}
		}
		if (obj[o] == NULL)
			continue;
		v = field_value(r, t, (enum field)f);
		if (v != NULL)
			json_object_set_new(obj[o], fields[f].key, v);
	}
	s = json_dumps(obj[OBJ_TOP], JSON_COMPACT | JSON_PRESERVE_ORDER);
	for (int o = 0; o < OBJ_LAST; o++)
		json_decref(obj[o]);
	if (s != NULL && len != NULL)
		*len = strlen(s);
	return s;
}

#define NOBJ_ID_(id, parent, key, path, present) NOBJ_##id,
enum nobj { MXS_NAME_OBJECTS(NOBJ_ID_) NOBJ_LAST };
#define NFIELD_ID_(name, obj, key, ...) NF_##name,
enum nfield { MXS_NAME_FIELDS(NFIELD_ID_, NFIELD_ID_) NF_LAST };
#define NOBJ_DEF_(id, parent, key, path, present) { NOBJ_##parent, key },
static const struct { enum nobj parent; const char *key; } nobjs[NOBJ_LAST] = {
	MXS_NAME_OBJECTS(NOBJ_DEF_)
};
#define NFIELD_DEF_(name, obj, key, ...) { NOBJ_##obj, key },
static const struct { enum nobj obj; const char *key; } nfields[NF_LAST] = {
	MXS_NAME_FIELDS(NFIELD_DEF_, NFIELD_DEF_)
};

static bool nobj_present(const struct mxs_name_verdict *n, enum nobj o)
{
	switch (o) {
#define NOBJ_PRESENT_(id, parent, key, path, present) case NOBJ_##id: return (present);
	MXS_NAME_OBJECTS(NOBJ_PRESENT_)
	case NOBJ_LAST: break;
	}
	return false;
}

static json_t *nfield_value(const struct mxs_name_verdict *n, enum nfield f)
{
	switch (f) {
#define NFIELD_K_(name, obj, key, json) case NF_##name: return (json);
#define NFIELD_X_(name, obj, key, kind, json) case NF_##name: return (json);
	MXS_NAME_FIELDS(NFIELD_K_, NFIELD_X_)
	case NF_LAST: break;
	}
	return NULL;
}

char *mxs_name_verdict_to_json(const struct mxs_name_verdict *n, size_t *len)
{
	json_t *obj[NOBJ_LAST] = { NULL };
	bool placed[NOBJ_LAST] = { false };
	char *s;

	obj[NOBJ_TOP] = json_object();
	if (obj[NOBJ_TOP] == NULL)
		return NULL;
	placed[NOBJ_TOP] = true;
	for (int f = 0; f < NF_LAST; f++) {
		enum nobj o = nfields[f].obj;
		json_t *v;

		if (!placed[o]) {
			placed[o] = true;
			if (nobj_present(n, o)) {
				obj[o] = json_object();
				json_object_set(obj[nobjs[o].parent], nobjs[o].key, obj[o]);
			} else {
				json_object_set_new(obj[nobjs[o].parent], nobjs[o].key, json_null());
			}
		}
		if (obj[o] == NULL)
			continue;
		v = nfield_value(n, (enum nfield)f);
		if (v != NULL)
			json_object_set_new(obj[o], nfields[f].key, v);
	}
	s = json_dumps(obj[NOBJ_TOP], JSON_COMPACT | JSON_PRESERVE_ORDER);
	for (int o = 0; o < NOBJ_LAST; o++)
		json_decref(obj[o]);
	if (s != NULL && len != NULL)
		*len = strlen(s);
	return s;
}
