/*
 * Prints the declared tables the record is built from, for tests/unit/test_fields.py:
 *   outcome NAME CODE | phase NAME CODE | object PATH | field PATH COLUMN KIND |
 *   nfield PATH COLUMN KIND (the name line's)
 * (COLUMN "-" for the row's key entries). With --record: one record with every object
 * present and every optional key set, as the scanner's JSON writer writes it; with
 * --name: a name line likewise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outcome.h"
#include "record.h"
#include "record_fields.h"

static void dump_tables(void)
{
	for (int i = 0; i < MXS_OUT_LAST; i++)
		printf("outcome %s %d\n", mxs_outcome_names[i], mxs_outcome_db_codes[i]);
	for (int i = 0; i < MXS_PHASE_LAST; i++)
		printf("phase %s %d\n", mxs_phase_names[i], mxs_phase_db_codes[i]);
#define OBJ_(id, parent, key, path, present) printf("object %s\n", path);
	MXS_RECORD_OBJECTS(OBJ_)
	static const struct { const char *path; } objpath[] = {
#define OBJP_(id, parent, key, path, present) { path },
		MXS_RECORD_OBJECTS(OBJP_)
	};
#define OBJE_(id, parent, key, path, present) O_##id,
	enum { MXS_RECORD_OBJECTS(OBJE_) O_N };
	(void)objpath;
#define KEY_(name, obj, key, json) printf("field %s%s - KEY\n", objpath[O_##obj].path, key);
#define COL_(name, obj, key, kind, json) printf("field %s%s %s %s\n", objpath[O_##obj].path, key, #name, #kind);
	MXS_RECORD_FIELDS(KEY_, COL_)
	static const struct { const char *path; } nobjpath[] = {
#define NOBJP_(id, parent, key, path, present) { path },
		MXS_NAME_OBJECTS(NOBJP_)
	};
#define NOBJE_(id, parent, key, path, present) N_##id,
	enum { MXS_NAME_OBJECTS(NOBJE_) N_N };
#define NKEY_(name, obj, key, json) printf("nfield %s%s - KEY\n", nobjpath[N_##obj].path, key);
#define NCOL_(name, obj, key, kind, json) printf("nfield %s%s %s %s\n", nobjpath[N_##obj].path, key, #name, #kind);
	MXS_NAME_FIELDS(NKEY_, NCOL_)
}

static void full_name_line(void)
{
	struct strv d = { 0 };
	struct mxs_name_verdict v = {
		.ip = "192.0.2.1", .port = 25, .name = "mx.example.net", .domains = &d,
		.guessed = true, .probe = "sni", .sni = "mx.example.net", .outcome = MXS_OUT_SUCCESS,
		.trusted = 1, .expired = 0, .name_match = 1, .dane_present = true, .dane_tlsa = 1,
		.dane_depth = 0,
	};
	char *json;

	strv_push(&d, "example.net");
	memset(v.leaf_sha256, 'a', 64);
	json = mxs_name_verdict_to_json(&v, NULL);
	printf("%s\n", json ? json : "");
	free(json);
	strv_free(&d);
}

static void full_record(void)
{
	struct mxs_record r;
	struct mxs_tls_rec *t = calloc(1, sizeof(*t));
	size_t len;
	char *json;

	mxs_record_init(&r);
	snprintf(r.ip, sizeof(r.ip), "192.0.2.1");
	r.port = 25;
	r.mx = strdup("mx.example.net");
	strv_push(&r.mx_names, "mx.example.net");
	strv_push(&r.domains, "example.net");
	r.guessed = true;
	r.input = strdup("input");
	r.outcome = MXS_OUT_SUCCESS;
	r.phase = MXS_PHASE_DONE;
	r.detail = strdup("");
	r.attempts = 1;
	r.ehlo_name = "scanner.example.org";
	r.profile = "default-v1";
	r.greeting.present = r.ehlo.reply.present = r.starttls.present = r.ehlo_tls.reply.present = true;
	r.greeting.code = 220;
	strv_push(&r.greeting.lines, "220 hi");
	r.tls = t;
	snprintf(t->version, sizeof(t->version), "TLSv1.3");
	t->kex = "TLS1.3";
	t->dane_present = true;
	t->dane_depth = 0;
	t->name_match = 1;
	t->nchain = 1;
	t->chain = calloc(1, sizeof(*t->chain));
	t->chain[0].key_type = "EC";
	r.mangled_starttls = strdup("XXXXXXXA");
	r.proto = "smtp";
	r.auth.checked = true;
	strv_push(&r.auth.mechs, "PLAIN");
	r.support = mxs_support_new();
	r.support->groups_asked = true;
	strv_push(&r.support->groups, "x25519");
	r.support->prefer[MXS_SV_TLS12] = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256";
	mxs_record_transcript(&r, 'S', false, 1, "220 hi", 6);
	json = mxs_record_to_json(&r, &len);
	printf("%s\n", json ? json : "");
	free(json);
	mxs_record_free(&r);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--record") == 0)
		full_record();
	else if (argc > 1 && strcmp(argv[1], "--name") == 0)
		full_name_line();
	else
		dump_tables();
	return 0;
}
