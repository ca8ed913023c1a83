#include "record.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esc.h"
#include "smtp_reply.h"
#include "target.h"

void mxs_record_init(struct mxs_record *r)
{
	memset(r, 0, sizeof(*r));
	r->outcome = MXS_OUT_NONE;
	r->phase = MXS_PHASE_NONE;
	r->ehlo.verb = "EHLO";
	r->ehlo_tls.verb = "EHLO";
	r->keep_transcript = true;
	for (int i = 0; i < MXS_T_LAST; i++)
		r->timing[i] = -1;
}

static void reply_rec_free(struct mxs_reply_rec *rr)
{
	strv_free(&rr->lines);
	rr->present = false;
}

void mxs_tls_rec_free(struct mxs_tls_rec *t)
{
	if (t == NULL)
		return;
	free(t->cipher);
	free(t->cipher_openssl);
	free(t->kex_group);
	free(t->sig_alg);
	strv_free(&t->matched_names);
	for (size_t i = 0; i < t->nchain; i++) {
		struct mxs_cert_rec *c = &t->chain[i];
		free(c->subject);
		free(c->issuer);
		free(c->serial);
		free(c->sig_alg);
		strv_free(&c->sans);
	}
	free(t->chain);
	free(t);
}

struct mxs_support_rec *mxs_support_new(void)
{
	struct mxs_support_rec *u = calloc(1, sizeof(*u));

	if (u == NULL)
		return NULL;
	for (int i = 0; i < MXS_SV_LAST; i++)
		u->version[i] = -1;
	for (int i = 0; i < MXS_SC_LAST; i++)
		u->cls[i] = -1;
	u->cbc_only = u->server_order = u->dhe_bits = -1;
	u->fallback_scsv = u->secure_reneg = u->injection = -1;
	return u;
}

void mxs_support_free(struct mxs_support_rec *u)
{
	if (u == NULL)
		return;
	strv_free(&u->groups);
	free(u);
}

void mxs_record_free(struct mxs_record *r)
{
	free(r->mx);
	strv_free(&r->mx_names);
	strv_free(&r->domains);
	free(r->input);
	free(r->detail);
	strv_free(&r->auth.mechs);
	strv_free(&r->auth.mechs_tls);
	reply_rec_free(&r->greeting);
	reply_rec_free(&r->starttls);
	reply_rec_free(&r->ehlo.reply);
	strv_free(&r->ehlo.extensions);
	reply_rec_free(&r->ehlo_tls.reply);
	strv_free(&r->ehlo_tls.extensions);
	mxs_tls_rec_free(r->tls);
	mxs_support_free(r->support);
	free(r->mangled_starttls);
	for (size_t i = 0; i < r->ntranscript; i++)
		free(r->transcript[i].data);
	free(r->transcript);
	mxs_record_init(r);
}

void mxs_record_detail(struct mxs_record *r, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	free(r->detail);
	r->detail = s;
}

void mxs_record_transcript(struct mxs_record *r, char dir, bool tls, int64_t t_ms,
			   const void *data, size_t len)
{
	struct mxs_transcript_ent *e;

	if (!r->keep_transcript || r->ntranscript >= MXS_TRANSCRIPT_MAX)
		return;
	if (r->ntranscript == r->captranscript) {
		size_t cap = r->captranscript ? r->captranscript * 2 : 8;
		if (cap > MXS_TRANSCRIPT_MAX)
			cap = MXS_TRANSCRIPT_MAX;
		e = realloc(r->transcript, cap * sizeof(*e));
		if (e == NULL)
			return;
		r->transcript = e;
		r->captranscript = cap;
	}
	e = &r->transcript[r->ntranscript];
	e->truncated = len > MXS_TRANSCRIPT_DATA_MAX;
	e->data = mxs_esc_encode(data, e->truncated ? MXS_TRANSCRIPT_DATA_MAX : len, NULL);
	if (e->data == NULL)
		return;
	e->dir = dir;
	e->tls = tls;
	e->t_ms = t_ms;
	r->ntranscript++;
}

void mxs_reply_rec_take(struct mxs_reply_rec *dst, struct smtp_reply *src)
{
	strv_free(&dst->lines);
	dst->present = true;
	dst->code = src->code;
	dst->lines = src->lines;
	memset(&src->lines, 0, sizeof(src->lines));
	src->code = 0;
}

static int strv_copy(struct strv *dst, const struct strv *src)
{
	for (size_t i = 0; i < src->n; i++)
		if (strv_push(dst, src->v[i]) < 0)
			return -1;
	return 0;
}

int mxs_record_set_target(struct mxs_record *r, const struct mxs_target *t)
{
	snprintf(r->ip, sizeof(r->ip), "%s", t->ip);
	r->port = t->port;
	r->guessed = t->guessed;
	if (t->mx != NULL && (r->mx = strdup(t->mx)) == NULL)
		return -1;
	return strv_copy(&r->mx_names, &t->mx_names) < 0 || strv_copy(&r->domains, &t->domains) < 0 ? -1 : 0;
}
