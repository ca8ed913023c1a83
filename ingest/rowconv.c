/* Dispatch of one input line: tokenize, then a result, a domain line, or a reject. */
#include "rowconv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rowconv_int.h"

const char *const rowconv_kind_names[ROWCONV_KIND_LAST] = {
	[ROWCONV_RESULT] = "result",
	[ROWCONV_DOMAIN] = "domain",
	[ROWCONV_NAME] = "name",
	[ROWCONV_REJECT] = "reject",
	[ROWCONV_BLANK] = "blank",
	[ROWCONV_SKIPPED] = "skipped",
	[ROWCONV_NOMEM] = "nomem",
};

/* The staging tables' columns (the domains and domain_mx views'); the stored rows hold
 * the names as ids (scan_domains) and each domain's MX rows as a set stored once
 * (mxs_mx_set_rows, migration 0018), the rest as is. */
#define DOMAINS_REST \
	"rank, status, dnssec, mta_sts_txt, mta_sts_id, mta_sts_status, mta_sts_error, " \
	"mta_sts_dnssec, mta_sts_policy_status, mta_sts_mode, mta_sts_max_age, mta_sts_mx, " \
	"mta_sts_mx_match, mta_sts_policy_error, tlsrpt_txt, tlsrpt_rua, tlsrpt_status, " \
	"tlsrpt_error, tlsrpt_dnssec, extra"
#define DOMAIN_MX_REST "pref, cname, status, addrs, tlsa, tlsa_dnssec, tlsa_status"
const char rowconv_domains_columns[] = "scan_id, domain, " DOMAINS_REST;
const char rowconv_domains_rest[] = DOMAINS_REST;
const char rowconv_domain_mx_columns[] = "scan_id, domain, host, " DOMAIN_MX_REST;
const char rowconv_domain_mx_rest[] = DOMAIN_MX_REST;
const char rowconv_rejects_columns[] = "scan_id, raw, error";

struct rowconv *rowconv_new(void)
{
	struct rowconv *rc = calloc(1, sizeof(*rc));
	if (rc == NULL)
		return NULL;
	jtoks_init(&rc->toks);
	copybuf_init(&rc->extra);
	ikey_init(&rc->ikey);
	rc->certs = certset_new(1u << 18);
	rc->intern = intern_new();
	if (rc->certs == NULL || rc->intern == NULL || rc_result_init(rc) != 0) {
		rowconv_free(rc);
		return NULL;
	}
	return rc;
}

void rowconv_free(struct rowconv *rc)
{
	if (rc == NULL)
		return;
	certset_free(rc->certs);
	free(rc->cert_log);
	intern_free(rc->intern);
	ikey_free(&rc->ikey);
	jtoks_free(&rc->toks);
	copybuf_free(&rc->extra);
	for (int i = 0; i < RC_OBJS; i++) {
		free(rc->keys[i]);
		free(rc->after[i]);
	}
	free(rc);
}

void rowconv_forget_sent(struct rowconv *rc)
{
	certset_clear(rc->certs);
	rc->cert_log_n = 0;
	intern_forget(rc->intern);
}

void rowconv_tx_begin(struct rowconv *rc)
{
	rc->cert_log_n = 0;
	intern_log_clear(rc->intern);
}

void rowconv_share(const struct rowconv *from, struct rowconv *to)
{
	intern_share(from->intern, to->intern);
	for (size_t i = 0; i < from->cert_log_n; i++)
		certset_add(to->certs, from->cert_log[i]);
}

void rowbufs_init(struct rowbufs *r)
{
	memset(r, 0, sizeof(*r));
	copybuf_init(&r->results);
	copybuf_init(&r->certs);
	copybuf_init(&r->domains);
	copybuf_init(&r->domain_mx);
	copybuf_init(&r->names);
	copybuf_init(&r->rejects);
	intern_rows_init(&r->dict);
}

void rowbufs_reset(struct rowbufs *r)
{
	copybuf_reset(&r->results);
	copybuf_reset(&r->certs);
	copybuf_reset(&r->domains);
	copybuf_reset(&r->domain_mx);
	copybuf_reset(&r->names);
	copybuf_reset(&r->rejects);
	intern_rows_reset(&r->dict);
	r->n_results = r->n_certs = r->n_domains = r->n_names = r->n_rejects = r->n_blank = 0;
}

void rowbufs_free(struct rowbufs *r)
{
	copybuf_free(&r->results);
	copybuf_free(&r->certs);
	copybuf_free(&r->domains);
	copybuf_free(&r->domain_mx);
	copybuf_free(&r->names);
	copybuf_free(&r->rejects);
	intern_rows_free(&r->dict);
}

static void put_reject(struct rowbufs *out, int64_t scan_id, const char *line, size_t len,
                       const char *why)
{
	struct copybuf *b = &out->rejects;
	cb_int(b, scan_id);
	cb_bytea(b, (const unsigned char *)line, len);
	cb_str(b, why);
	cb_end_row(b);
	out->n_rejects++;
}

enum rowconv_kind rowconv_line(struct rowconv *rc, int64_t scan_id, const char *line,
                               size_t len, struct rowbufs *out)
{
	const char *why = NULL, *err;
	size_t errpos;
	enum rowconv_kind kind;

	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	size_t i = 0;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i == len) {
		out->n_blank++;
		return ROWCONV_BLANK;
	}
	if (jt_parse(&rc->toks, line, len, &err, &errpos) != 0) {
		char msg[160];
		if (strcmp(err, "out of memory") == 0)
			return ROWCONV_NOMEM;
		snprintf(msg, sizeof(msg), "not JSON: %s at byte %zu", err, errpos);
		put_reject(out, scan_id, line, len, msg);
		return rc_any_oom(out) ? ROWCONV_NOMEM : ROWCONV_REJECT;
	}
	size_t type = jt_get(&rc->toks, line, 0, "type");
	size_t tlen = 0;
	const char *t = type && rc->toks.t[type].type == JT_STRING
	                    ? jt_str(&rc->toks, line, type, &tlen) : NULL;
	if (rc->toks.t[0].type != JT_OBJECT) {
		why = "not a JSON object";
		kind = ROWCONV_REJECT;
	} else if (t != NULL && tlen == 6 && memcmp(t, "result", 6) == 0) {
		kind = rc_convert_result(rc, scan_id, line, out, &why);
	} else if (t != NULL && tlen == 6 && memcmp(t, "domain", 6) == 0) {
		kind = rc_convert_domain(scan_id, line, len, out, &why);
	} else if (t != NULL && tlen == 4 && memcmp(t, "name", 4) == 0) {
		kind = rc_convert_name(scan_id, line, len, out, &why);
	} else {
		why = "not a result, domain or name line";
		kind = ROWCONV_REJECT;
	}
	if (kind == ROWCONV_REJECT) {
		put_reject(out, scan_id, line, len, why);
		if (rc_any_oom(out))
			return ROWCONV_NOMEM;
	}
	return kind;
}
