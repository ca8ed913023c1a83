/* The report's sections: which view answers what, queried for one scan. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "report_model.h"
#include "timeutil.h"

const char *const report_chart_names[CHART_LAST] = {
	[CHART_NONE] = "none",
	[CHART_BARS] = "bars",
	[CHART_GROUPED] = "grouped",
	[CHART_LINES] = "lines",
};

/* What a section needs to be worth computing. */
enum {
	NEEDS_COMPARE = 1,    /* a compared scan (--compare) */
	NEEDS_NETWORKS = 2,   /* a network set attached to the scan (mxsurvey db networks) */
	NEEDS_SUPPORT = 4,    /* addresses probed for legacy TLS support (--probes legacy) */
};

struct section_spec {
	const char *id;
	const char *title;
	const char *denominator;
	enum report_chart chart;
	int label_col;
	int value_cols[4];
	int needs;          /* NEEDS_*: skipped when the scan lacks it */
	const char *sql;    /* $1 scan id, $2 compare scan id (or NULL) */
};

static const struct section_spec specs[] = {
	{ "funnel", "Funnel: port open to TLS completed (per address)",
	  "each stage as a share of the stage before; pct_of_dialled: of addresses dialled",
	  CHART_BARS, 0, { 4, -1 }, 0,
	  "SELECT stage, n, n_previous, pct_of_previous, pct_of_dialled FROM v_funnel"
	  " WHERE scan_id = $1 AND level = 'address' ORDER BY stage_no" },
	{ "support", "STARTTLS support by level and rule",
	  "address: addresses that accepted EHLO; mx: MX hosts with such an address; "
	  "domain: domains whose MX (rule) has such an address",
	  CHART_NONE, 0, { -1 }, 0,
	  "SELECT o.level, o.rule, o.n_denom AS denominator, o.pct AS offered_pct, c.pct AS completed_pct"
	  " FROM v_starttls_support o JOIN v_starttls_support c ON c.scan_id = o.scan_id"
	  "  AND c.level = o.level AND c.rule = o.rule AND c.bucket = o.bucket"
	  "  AND c.metric = 'starttls_completed'"
	  " WHERE o.scan_id = $1 AND o.metric = 'starttls_offered' AND o.bucket = 'all'"
	  "  AND o.level <> 'domain_w'"
	  " ORDER BY array_position(ARRAY['address','mx','domain'], o.level),"
	  "  array_position(ARRAY['-','any','all','any_mx','all_mx','primary_mx'], o.rule)" },
	{ "rank_buckets", "STARTTLS support by rank bucket (domains, any MX)",
	  "domains in the bucket whose MX hosts have an address that accepted EHLO; "
	  "weighted: the same with each domain weighted 1/rank",
	  CHART_GROUPED, 0, { 2, 3, -1 }, 0,
	  "SELECT o.bucket, o.n_denom::bigint AS domains, o.pct AS offered_pct, c.pct AS completed_pct,"
	  " w.pct AS weighted_offered_pct"
	  " FROM v_rank_bucket_summary o"
	  " JOIN v_rank_bucket_summary c ON c.scan_id = o.scan_id AND c.bucket = o.bucket"
	  "  AND c.rule = o.rule AND c.level = o.level AND c.metric = 'starttls_completed'"
	  " JOIN v_rank_bucket_summary w ON w.scan_id = o.scan_id AND w.bucket = o.bucket"
	  "  AND w.rule = o.rule AND w.level = 'domain_w' AND w.metric = 'starttls_offered'"
	  " JOIN rank_buckets b ON b.bucket = o.bucket"
	  " WHERE o.scan_id = $1 AND o.metric = 'starttls_offered' AND o.level = 'domain'"
	  "  AND o.rule = 'any_mx' ORDER BY b.ord" },
	{ "outcomes", "Outcome classes", "all results of the scan",
	  CHART_BARS, 0, { 2, -1 }, 0,
	  "SELECT outcome, n, pct FROM v_outcomes WHERE scan_id = $1 ORDER BY n DESC, outcome" },
	{ "versions", "Negotiated TLS version (per address)", "TLS sessions",
	  CHART_BARS, 0, { 2, -1 }, 0,
	  "SELECT version, n, pct FROM v_tls_versions WHERE scan_id = $1 AND level = 'address'"
	  " ORDER BY version DESC" },
	{ "ciphers", "Negotiated cipher suites (top 10)", "TLS sessions",
	  CHART_BARS, 0, { 4, -1 }, 0,
	  "SELECT coalesce(cipher_openssl, cipher) AS cipher, cipher_class,"
	  " CASE WHEN forward_secrecy THEN 'yes' ELSE 'no' END AS fs, n, pct"
	  " FROM v_ciphers WHERE scan_id = $1 ORDER BY n DESC, cipher LIMIT 10" },
	{ "tls_quality", "Forward secrecy and legacy exposure (per address)", "TLS sessions",
	  CHART_NONE, 0, { -1 }, 0,
	  "SELECT label AS property, n::bigint, n_denom::bigint AS denominator, pct FROM v_rates"
	  " WHERE scan_id = $1 AND level = 'address' AND grp IN ('fs', 'legacy') ORDER BY grp, ord" },
	{ "accepts", "Legacy TLS accepted (legacy probes)",
	  "n and denominator: addresses the legacy probes asked that question (docs/views.md); "
	  "mx: MX hosts with such an address (hit: any); domain: domains whose MX hosts have one "
	  "(hit: any MX)",
	  CHART_GROUPED, 0, { 3, 4, 5, -1 }, NEEDS_SUPPORT,
	  "SELECT a.label AS property, a.n::bigint, a.n_denom::bigint AS denominator,"
	  " a.pct AS address_pct, m.pct AS mx_any_pct, d.pct AS domain_any_mx_pct"
	  " FROM v_legacy_support a"
	  " LEFT JOIN v_legacy_support m ON m.scan_id = a.scan_id AND m.metric = a.metric"
	  "  AND m.level = 'mx' AND m.rule = 'any'"
	  " LEFT JOIN v_legacy_support d ON d.scan_id = a.scan_id AND d.metric = a.metric"
	  "  AND d.level = 'domain' AND d.rule = 'any_mx' AND d.bucket = 'all'"
	  " WHERE a.scan_id = $1 AND a.level = 'address' ORDER BY a.ord" },
	{ "accepts_buckets", "Legacy TLS accepted by rank bucket (domains, any MX)",
	  "domains in the bucket whose MX hosts have a probed address that answered the question",
	  CHART_GROUPED, 0, { 1, 2, 3, -1 }, NEEDS_SUPPORT,
	  "SELECT r.bucket,"
	  " max(r.pct) FILTER (WHERE r.metric = 'accepts_tls1_0') AS tls1_0_pct,"
	  " max(r.pct) FILTER (WHERE r.metric = 'accepts_rc4') AS rc4_pct,"
	  " max(r.pct) FILTER (WHERE r.metric = 'accepts_dh_small') AS dh_small_pct,"
	  " max(r.pct) FILTER (WHERE r.metric = 'accepts_sslv3') AS sslv3_pct,"
	  " max(r.pct) FILTER (WHERE r.metric = 'accepts_injection') AS injection_pct"
	  " FROM v_legacy_support r JOIN rank_buckets b ON b.bucket = r.bucket"
	  " WHERE r.scan_id = $1 AND r.level = 'domain' AND r.rule = 'any_mx'"
	  " GROUP BY r.bucket, b.ord ORDER BY b.ord" },
	{ "accepts_versions", "Oldest TLS version accepted (per probed address)",
	  "addresses the legacy probes ran on",
	  CHART_BARS, 0, { 2, -1 }, NEEDS_SUPPORT,
	  "SELECT worst_version, n, pct FROM v_support_worst_version"
	  " WHERE scan_id = $1 AND level = 'address' ORDER BY worst_version" },
	{ "accepts_providers", "Providers (top 10): the oldest and weakest they accept, next to "
	  "what they negotiate",
	  "probed addresses of the provider's MX hosts; default: its most common negotiated "
	  "version and cipher",
	  CHART_NONE, 0, { -1 }, NEEDS_SUPPORT,
	  "WITH top AS MATERIALIZED (SELECT provider, n FROM v_provider_concentration"
	  "  WHERE scan_id = $1 ORDER BY n DESC, provider LIMIT 10),"
	  " s AS MATERIALIZED (SELECT * FROM v_provider_support WHERE scan_id = $1)"
	  " SELECT s.provider, t.n AS domains, s.n_probed AS probed,"
	  " coalesce(s.worst_version, '-') AS worst_version, s.worst_class, s.n_rc4 AS rc4,"
	  " s.n_tls1_0 AS tls1_0, s.n_dh_small AS dh_small, s.n_injection AS injection,"
	  " coalesce(s.default_version, '-') AS default_version,"
	  " coalesce(s.default_cipher, '-') AS default_cipher"
	  " FROM top t JOIN s ON s.provider = t.provider ORDER BY t.n DESC, s.provider" },
	{ "kex", "Key exchange", "TLS sessions",
	  CHART_NONE, 0, { -1 }, 0,
	  "SELECT size_class, kex, kex_group, sum(n)::bigint AS n,"
	  " round(100.0 * sum(n) / max(n_denom), 2) AS pct FROM v_kex WHERE scan_id = $1"
	  " GROUP BY size_class, kex, kex_group ORDER BY sum(n) DESC" },
	{ "certificates", "Certificate outcomes", "TLS sessions (name checks: those with a known MX name)",
	  CHART_NONE, 0, { -1 }, 0,
	  "SELECT a.label AS outcome, a.pct AS address_pct, m.pct AS mx_any_pct, d.pct AS domain_any_mx_pct"
	  " FROM v_cert_outcomes a"
	  " LEFT JOIN v_cert_outcomes m ON m.scan_id = a.scan_id AND m.metric = a.metric"
	  "  AND m.level = 'mx' AND m.rule = 'any'"
	  " LEFT JOIN v_cert_outcomes d ON d.scan_id = a.scan_id AND d.metric = a.metric"
	  "  AND d.level = 'domain' AND d.rule = 'any_mx' AND d.bucket = 'all'"
	  " WHERE a.scan_id = $1 AND a.level = 'address' ORDER BY a.ord" },
	{ "providers", "Provider concentration (top 10) and what they negotiate",
	  "mail domains (domains with an MX host); provider = registered domain of the primary MX",
	  CHART_BARS, 0, { 3, -1 }, 0,
	  /* v_provider_tls once for the scan, not once per provider: the provider of an
	   * address is computed, so a per-provider filter cannot use an index */
	  "WITH top AS MATERIALIZED (SELECT provider, n, cumulative_pct, pct"
	  "  FROM v_provider_concentration WHERE scan_id = $1 ORDER BY n DESC, provider LIMIT 10),"
	  " tls AS MATERIALIZED (SELECT DISTINCT ON (provider) provider, tls_version, cipher_openssl"
	  "  FROM v_provider_tls WHERE scan_id = $1 AND provider IN (SELECT provider FROM top)"
	  "  ORDER BY provider, n DESC, tls_version DESC, cipher_openssl)"
	  " SELECT p.provider, p.n AS domains, p.cumulative_pct, p.pct,"
	  " coalesce(t.tls_version, '-') AS top_version, coalesce(t.cipher_openssl, '-') AS top_cipher"
	  " FROM top p LEFT JOIN tls t ON t.provider = p.provider"
	  " ORDER BY p.n DESC, p.provider" },
	{ "software", "MTA software from the greeting", "addresses that sent a greeting",
	  CHART_BARS, 0, { 2, -1 }, 0,
	  "SELECT software, n, pct FROM v_mta_software WHERE scan_id = $1 AND level = 'address'"
	  " ORDER BY n DESC, software" },
	{ "tampering", "STARTTLS tampering signs", "per sign, as stated",
	  CHART_NONE, 0, { -1 }, 0,
	  "SELECT label AS sign, n::bigint, n_denom::bigint AS denominator, pct, denominator AS of"
	  " FROM v_tampering WHERE scan_id = $1 AND level = 'address' ORDER BY ord" },
	{ "tampering_networks", "Networks with tampering signs (top 10)", "addresses in the network",
	  CHART_NONE, 0, { -1 }, 0,
	  "SELECT network::text, n_smtp, n_mangled, n_echo, n_injection FROM v_tampering_by_network"
	  " WHERE scan_id = $1 ORDER BY n_any DESC, network LIMIT 10" },
	{ "networks", "Customer networks with the most problems (top 10)",
	  "addresses of the scan in the network (mxsurvey db networks; mxsurvey findings lists them)",
	  CHART_NONE, 0, { -1 }, NEEDS_NETWORKS,
	  "SELECT network, coalesce(contact, '-') AS contact, addresses, with_problems, critical, high,"
	  " medium, problems FROM v_network_findings WHERE scan_id = $1"
	  " ORDER BY problems DESC, critical DESC, network LIMIT 10" },
	{ "services", "Mail submission and access services (per protocol)",
	  "results of the protocol; tls_pct: of those with the port open; cleartext_auth: "
	  "PLAIN/LOGIN or the login command offered before TLS; cert_valid: trusted, matching "
	  "the target's name, not expired, of those with TLS; hosts guessed by "
	  "--guess-hosts are left out",
	  CHART_NONE, 0, { -1 }, 0,
	  "SELECT proto, count(*) AS results, count(*) FILTER (WHERE open) AS open,"
	  " count(*) FILTER (WHERE tls_ok) AS tls,"
	  " round(100.0 * count(*) FILTER (WHERE tls_ok) / NULLIF(count(*) FILTER (WHERE open), 0), 2) AS tls_pct,"
	  " count(*) FILTER (WHERE auth_cleartext) AS cleartext_auth,"
	  " count(*) FILTER (WHERE tls_ok AND tls_trusted AND tls_name_match IS TRUE AND NOT tls_expired) AS cert_valid"
	  " FROM v_service_results WHERE scan_id = $1 AND proto <> 'smtp' AND NOT guessed GROUP BY proto"
	  " ORDER BY array_position(ARRAY['submission','submissions','imap','imaps','pop3','pop3s'], proto)" },
	{ "protection", "Downgrade protection and TLSRPT (domains)",
	  "mail domains (domains with an MX host)",
	  CHART_BARS, 0, { 2, -1 }, 0,
	  /* in the classes' order, TLSRPT last: the view's rows come in no set order */
	  "SELECT protection, n, pct FROM ("
	  " SELECT protection, n, pct, 0 AS k FROM v_downgrade_protection WHERE scan_id = $1 AND bucket = 'all'"
	  " UNION ALL SELECT 'tlsrpt published', n, pct, 1 FROM v_tlsrpt WHERE scan_id = $1 AND bucket = 'all'"
	  ") x ORDER BY k, array_position(ARRAY['dane', 'mta-sts-enforce', 'mta-sts-enforce-mismatch',"
	  " 'mta-sts-testing', 'none'], protection)" },
	{ "change", "Change against the compared scan", "addresses with a result in both scans (n_both)",
	  CHART_NONE, 0, { -1 }, NEEDS_COMPARE,
	  "SELECT change, n, n_both FROM mxs_change_summary($2::bigint, $1::bigint) ORDER BY change" },
	{ "network_change", "Problems new and fixed per customer network since the compared scan",
	  "problems (address, code); fixed: the address was scanned in both",
	  CHART_NONE, 0, { -1 }, NEEDS_COMPARE | NEEDS_NETWORKS,
	  "SELECT network, new_problems, fixed_problems, problems"
	  " FROM mxs_network_change($2::bigint, $1::bigint)"
	  " ORDER BY new_problems DESC, fixed_problems DESC, network LIMIT 20" },
	{ "trend", "Night-to-night trend (every scan)", "per scan, as in the sections above",
	  CHART_LINES, 0, { 2, 3, 4, -1 }, 0,
	  "SELECT scan_id::text AS scan, to_char(started_at, 'YYYY-MM-DD') AS started,"
	  " starttls_offered_pct, tls_completed_pct, trusted_pct, results"
	  " FROM v_trend WHERE results > 0 OR scan_id = $1 ORDER BY scan_id" },
};

#define NSPECS (sizeof(specs) / sizeof(specs[0]))

int report_numeric(const struct report_section *s, int col)
{
	switch (PQftype(s->res, col)) {
	case 20:    /* int8 */
	case 21:    /* int2 */
	case 23:    /* int4 */
	case 700:   /* float4 */
	case 701:   /* float8 */
	case 1700:  /* numeric */
		return 1;
	default:
		return 0;
	}
}

void report_free(struct report *r)
{
	for (int i = 0; i < r->nsections; i++)
		PQclear(r->sections[i].res);
	free(r->sections);
	r->sections = NULL;
	r->nsections = 0;
}

int report_build(PGconn *c, int64_t scan, int64_t compare, struct report *r, char *err,
                 size_t errlen)
{
	char s1[32], s2[32];
	memset(r, 0, sizeof(*r));
	r->scan = scan;
	r->compare = compare;
	snprintf(s1, sizeof(s1), "%" PRId64, scan);
	snprintf(s2, sizeof(s2), "%" PRId64, compare);
	const char *params[2] = { s1, compare ? s2 : NULL };

	PGresult *h = PQexecParams(c,
	                           "SELECT coalesce(label, ''), to_char(started_at, 'YYYY-MM-DD HH24:MI:SS TZ'),"
	                           " network_set_id IS NOT NULL,"
	                           " EXISTS (SELECT 1 FROM results r WHERE r.scan_id = scans.id"
	                           "  AND r.support_connections IS NOT NULL)"
	                           " FROM scans WHERE id = $1",
	                           1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(h) != PGRES_TUPLES_OK || PQntuples(h) != 1) {
		snprintf(err, errlen, "no scan %" PRId64 "%s%s", scan,
		         PQresultStatus(h) == PGRES_TUPLES_OK ? "" : ": ", PQresultErrorMessage(h));
		PQclear(h);
		return -1;
	}
	snprintf(r->scan_label, sizeof(r->scan_label), "%s", PQgetvalue(h, 0, 0));
	snprintf(r->scan_started, sizeof(r->scan_started), "%s", PQgetvalue(h, 0, 1));
	/* without a network set every address is "(no network)": the per-network sections
	 * would only repeat the totals, at the cost of judging every address's findings;
	 * without legacy probes the support sections would be empty */
	int have = (compare ? NEEDS_COMPARE : 0) |
	           (strcmp(PQgetvalue(h, 0, 2), "t") == 0 ? NEEDS_NETWORKS : 0) |
	           (strcmp(PQgetvalue(h, 0, 3), "t") == 0 ? NEEDS_SUPPORT : 0);
	PQclear(h);

	r->sections = calloc(NSPECS, sizeof(*r->sections));
	if (r->sections == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < NSPECS; i++) {
		const struct section_spec *sp = &specs[i];
		if ((sp->needs & have) != sp->needs)
			continue;
		/* each query names the parameters it uses; pass only those */
		int np = strstr(sp->sql, "$2") ? 2 : 1;
		/* the per-network sections judge every address of the scan: their plans cross
		 * jit_above_cost, and compiling took seconds more than running them */
		int nojit = (sp->needs & NEEDS_NETWORKS) != 0;
		if (nojit)
			PQclear(PQexec(c, "SET jit = off"));
		int64_t t0 = mxs_mono_ms();
		PGresult *res = PQexecParams(c, sp->sql, np, NULL, params, NULL, NULL, 0);
		if (nojit)
			PQclear(PQexec(c, "RESET jit"));
		mxs_debug("report", "section=%s ms=%lld", sp->id, (long long)(mxs_mono_ms() - t0));
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			snprintf(err, errlen, "section %s: %s", sp->id, PQresultErrorMessage(res));
			PQclear(res);
			report_free(r);
			return -1;
		}
		struct report_section *s = &r->sections[r->nsections++];
		s->id = sp->id;
		s->title = sp->title;
		s->denominator = sp->denominator;
		s->chart = sp->chart;
		s->label_col = sp->label_col;
		memcpy(s->value_cols, sp->value_cols, sizeof(s->value_cols));
		s->res = res;
	}
	return 0;
}
