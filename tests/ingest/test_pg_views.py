"""Every statistics view returns the exact numbers for a fleet whose ground truth is
worked out by hand (tests/lib/pgfleet.py). Two nightly scans are ingested, then each
view is compared with the expected counts, denominators and percentages."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from pg import PgCluster, private_env, wait_for
from pgfleet import night1_domains, night1_results, night2_results
from pgrecords import write_jsonl

MXS = os.environ["MXS_BIN"]


def pct(n, d):
    return "%.2f" % round(100.0 * n / d + 1e-12, 2)


class Views(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PgCluster().__enter__()
        cls.tmp = tempfile.mkdtemp(prefix="mxs-views-")
        env = private_env(cls.tmp)
        n1 = os.path.join(cls.tmp, "night1.jsonl")
        n2 = os.path.join(cls.tmp, "night2.jsonl")
        write_jsonl(n1, night1_results() + night1_domains())
        write_jsonl(n2, night2_results())
        for path, label in ((n1, "night1"), (n2, "night2")):
            r = subprocess.run([MXS, "ingest", "--db", cls.pg.url, "--label", label, path],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert r.returncode == 0, r.stderr
        cls.s1 = cls.pg.scalar("SELECT id FROM scans WHERE label = 'night1'")
        cls.s2 = cls.pg.scalar("SELECT id FROM scans WHERE label = 'night2'")

    @classmethod
    def tearDownClass(cls):
        cls.pg.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def rate(self, metric, level="address", rule="-", bucket="all", scan=None):
        rows = self.pg.query(
            "SELECT n_denom, n, pct FROM v_rates WHERE scan_id = %s AND metric = '%s' AND level = '%s'"
            " AND rule = '%s' AND bucket = '%s'" % (scan or self.s1, metric, level, rule, bucket))
        self.assertEqual(len(rows), 1, (metric, level, rule, bucket))
        d, n, p = rows[0]
        return float(d), float(n), p

    def check(self, metric, n, d, **kw):
        got = self.rate(metric, **kw)
        self.assertEqual((got[0], got[1]), (float(d), float(n)), (metric, kw))
        self.assertEqual(got[2], pct(n, d) if d else None, (metric, kw))

    def test_counts(self):
        # 17 result lines, one of them a bad target without an address; 9 domain lines
        self.assertEqual(self.pg.scalar("SELECT count(*) FROM results WHERE scan_id = %s" % self.s1), "17")
        self.assertEqual(self.pg.scalar("SELECT count(*) FROM domains WHERE scan_id = %s" % self.s1), "9")
        self.assertEqual(self.pg.scalar("SELECT results_stored FROM scans WHERE id = %s" % self.s1), "17")

    def test_funnel_address(self):
        # dialled: all but blocked and bad-target = 15; open: minus refused, timeout = 13;
        # greeting: minus greeting-timeout = 12; EHLO: minus the 554 greeting = 11;
        # STARTTLS offered: minus a6, a7 = 9; TLS: a1-a5, a17 = 6
        rows = self.pg.query("SELECT stage_no, n, n_previous, pct_of_previous, pct_of_dialled FROM v_funnel"
                             " WHERE scan_id = %s AND level = 'address' ORDER BY stage_no" % self.s1)
        expect = [(13, 15), (12, 13), (11, 12), (9, 11), (6, 9)]
        self.assertEqual(len(rows), 5)
        for (stage, n, prev, p, pd), (en, ed) in zip(rows, expect):
            self.assertEqual((float(n), float(prev)), (en, ed), stage)
            self.assertEqual(p, pct(en, ed))
            self.assertEqual(pd, pct(en, 15))

    def test_support_address(self):
        self.check("starttls_offered", 9, 11)
        self.check("starttls_completed", 6, 11)

    def test_support_mx(self):
        # hosts with an address that accepted EHLO: mx1.alpha, mx2.alpha, mx.beta, mx.gamma,
        # mx.backup, mail.provider.net, mx.eta.co.uk, mx.theta = 8 (mx.delta refused)
        self.check("starttls_offered", 6, 8, level="mx", rule="any")
        self.check("starttls_offered", 6, 8, level="mx", rule="all")
        self.check("starttls_completed", 4, 8, level="mx", rule="any")
        self.check("starttls_completed", 4, 8, level="mx", rule="all")

    def test_support_domain_rules(self):
        # domains with a reachable SMTP address: alpha beta gamma eps zeta eta theta = 7
        self.check("starttls_offered", 6, 7, level="domain", rule="any_mx")
        self.check("starttls_offered", 5, 7, level="domain", rule="all_mx")      # not alpha (a6), eta
        self.check("starttls_offered", 6, 7, level="domain", rule="primary_mx")
        self.check("starttls_completed", 5, 7, level="domain", rule="any_mx")    # alpha beta gamma eps zeta
        self.check("starttls_completed", 3, 7, level="domain", rule="all_mx")    # beta eps zeta
        self.check("starttls_completed", 4, 7, level="domain", rule="primary_mx")  # alpha beta eps zeta

    def test_support_rank_buckets(self):
        # ranks: alpha 1, nomx 3, beta 50, gamma 500, delta 5000 (unreachable), eps 50000,
        # zeta 500000, theta 2000000, eta unranked
        for bucket, (n, d) in {"top100": (2, 2), "top1k": (3, 3), "top10k": (3, 3),
                               "top100k": (4, 4), "top1m": (5, 5), "all": (6, 7)}.items():
            self.check("starttls_offered", n, d, level="domain", rule="any_mx", bucket=bucket)
        # top1m, all_mx: alpha fails (a6) -> 4 of 5
        self.check("starttls_offered", 4, 5, level="domain", rule="all_mx", bucket="top1m")

    def test_support_weighted(self):
        w = {"alpha": 1.0, "beta": 1 / 50, "gamma": 1 / 500, "eps": 1 / 50000, "zeta": 1 / 500000,
             "theta": 1 / 2000000}
        total = sum(w.values())
        d, n, p = self.rate("starttls_offered", level="domain_w", rule="any_mx")
        self.assertAlmostEqual(d, total, places=9)
        self.assertEqual(p, "100.00")
        d, n, p = self.rate("starttls_offered", level="domain_w", rule="all_mx")
        self.assertAlmostEqual(n, total - 1.0, places=9)
        self.assertEqual(p, pct(total - 1.0, total))
        d, n, p = self.rate("starttls_offered", level="domain_w", rule="any_mx", bucket="top100")
        self.assertAlmostEqual(d, 1.0 + 1 / 50, places=9)

    def test_tls_properties(self):
        # TLS sessions: a1 a2 a3 a4 a5 a17
        self.check("forward_secrecy", 4, 6)          # a1 a2 a4 a17
        self.check("legacy_version", 2, 6)           # a3 TLSv1, a5 TLSv1.1
        self.check("legacy_rc4", 1, 6)
        self.check("legacy_3des", 1, 6)
        self.check("legacy_dh_small", 1, 6)          # a4 DHE 1024
        self.check("legacy_any", 3, 6)

    def test_cert_outcomes(self):
        self.check("cert_trusted", 3, 6)             # a1 a2 a17
        self.check("cert_valid", 2, 5)               # a5 has no MX name; a2 mismatches
        self.check("cert_self_signed", 1, 6)
        self.check("cert_expired", 1, 6)
        self.check("cert_name_mismatch", 1, 5)
        self.check("cert_unknown_ca", 1, 6)          # a5, verify code 20
        # per domain, any MX: alpha (a1 trusted) beta (no) gamma (a17) eps zeta (no) -> 2 of 5
        self.check("cert_trusted", 2, 5, level="domain", rule="any_mx")

    def test_tampering_and_dane(self):
        self.check("tamper_mangled", 1, 11)
        self.check("tamper_echo", 1, 9)              # STARTTLS sent: a1-5 a8 a9 a16 a17
        self.check("tamper_injection", 1, 7)         # 220 and then TLS tried: a1-5 a9 a17
        self.check("dane_match", 2, 3)               # a1 a3 match, a2 does not
        rows = self.pg.query("SELECT network, n_smtp, n_mangled, n_echo, n_injection, n_any"
                             " FROM v_tampering_by_network WHERE scan_id = %s ORDER BY network" % self.s1)
        self.assertEqual(rows, [["192.0.2.0/24", "9", "1", "1", "0", "2"],
                                ["198.51.100.0/24", "1", "0", "0", "1", "1"]])

    def test_outcomes(self):
        rows = dict((r[0], (r[1], r[2])) for r in self.pg.query(
            "SELECT outcome, n, pct FROM v_outcomes WHERE scan_id = %s" % self.s1))
        self.assertEqual(rows["success"], ("6", pct(6, 17)))
        self.assertEqual(rows["no-starttls"], ("2", pct(2, 17)))
        self.assertEqual(sum(int(v[0]) for v in rows.values()), 17)
        self.assertEqual(len(rows), 11)

    def test_versions_ciphers_kex(self):
        rows = dict((r[0], (r[1], r[2])) for r in self.pg.query(
            "SELECT version, n, pct FROM v_tls_versions WHERE scan_id = %s AND level = 'address'" % self.s1))
        self.assertEqual(rows, {"TLSv1.3": ("2", "33.33"), "TLSv1.2": ("2", "33.33"),
                                "TLSv1": ("1", "16.67"), "TLSv1.1": ("1", "16.67")})
        # per MX host, best version: mx1.alpha 1.3, beta 1, backup 1.3, provider 1.2
        rows = dict((r[0], r[1]) for r in self.pg.query(
            "SELECT version, n FROM v_tls_versions WHERE scan_id = %s AND level = 'mx'" % self.s1))
        self.assertEqual(rows, {"TLSv1.3": "2", "TLSv1": "1", "TLSv1.2": "1"})
        rows = dict((r[0], (r[1], r[2])) for r in self.pg.query(
            "SELECT cipher_class, n, pct FROM v_cipher_classes WHERE scan_id = %s" % self.s1))
        self.assertEqual(rows, {"AEAD": ("3", "50.00"), "RC4": ("1", "16.67"),
                                "3DES": ("1", "16.67"), "CBC": ("1", "16.67")})
        self.assertEqual(self.pg.scalar(
            "SELECT n FROM v_ciphers WHERE scan_id = %s AND cipher = 'TLS_AES_256_GCM_SHA384'" % self.s1), "2")
        rows = self.pg.query("SELECT size_class, sum(n) FROM v_kex WHERE scan_id = %s"
                             " GROUP BY size_class ORDER BY 1" % self.s1)
        self.assertEqual(rows, [["DH 1024", "1"], ["EC/other", "3"], ["static RSA", "2"]])

    def test_mta_software(self):
        rows = dict((r[0], (r[1], r[2])) for r in self.pg.query(
            "SELECT software, n, pct FROM v_mta_software WHERE scan_id = %s AND level = 'address'" % self.s1))
        self.assertEqual(rows, {"Postfix": ("5", pct(5, 12)), "Exim": ("2", pct(2, 12)),
                                "Exchange": ("1", pct(1, 12)), "Sendmail": ("1", pct(1, 12)),
                                "qmail": ("1", pct(1, 12)), "other": ("2", pct(2, 12))})

    def test_providers(self):
        rows = self.pg.query("SELECT provider, n, n_denom, pct, provider_rank, cumulative_pct"
                             " FROM v_provider_concentration WHERE scan_id = %s"
                             " ORDER BY provider_rank, provider" % self.s1)
        self.assertEqual(rows[0], ["provider.net", "2", "8", "25.00", "1", "25.00"])
        self.assertEqual(len(rows), 7)
        self.assertIn(["eta.co.uk", "1", "8", "12.50", "2", None][:4], [r[:4] for r in rows])
        self.assertEqual(rows[-1][5], "100.00")
        rows = self.pg.query("SELECT provider, tls_version, cipher_openssl, n, pct FROM v_provider_tls"
                             " WHERE scan_id = %s AND provider = 'beta.example'" % self.s1)
        self.assertEqual(rows, [["beta.example", "TLSv1", "RC4-SHA", "1", "100.00"]])
        rows = self.pg.query("SELECT tls_version, n, pct FROM v_provider_tls WHERE scan_id = %s"
                             " AND provider = 'provider.net' ORDER BY tls_version" % self.s1)
        self.assertEqual(rows, [["TLSv1.1", "1", "50.00"], ["TLSv1.2", "1", "50.00"]])

    def test_downgrade_protection(self):
        rows = dict((r[0], (r[1], r[2], r[3])) for r in self.pg.query(
            "SELECT protection, n, n_denom, pct FROM v_downgrade_protection"
            " WHERE scan_id = %s AND bucket = 'all'" % self.s1))
        self.assertEqual(rows, {"dane": ("1", "8", "12.50"), "mta-sts-enforce": ("1", "8", "12.50"),
                                "mta-sts-enforce-mismatch": ("1", "8", "12.50"),
                                "mta-sts-testing": ("1", "8", "12.50"), "none": ("4", "8", "50.00")})
        self.assertEqual(self.pg.query("SELECT n, n_denom, pct FROM v_tlsrpt WHERE scan_id = %s"
                                       " AND bucket = 'all'" % self.s1), [["2", "8", "25.00"]])
        self.assertEqual(self.pg.scalar("SELECT domain FROM v_domain_policy WHERE scan_id = %s"
                                        " AND protection = 'dane'" % self.s1), "beta.example")

    def test_mail_domains(self):
        self.assertEqual(self.pg.query("SELECT n_domains, n_with_mx, n_reachable, pct_reachable"
                                       " FROM v_mail_domains WHERE scan_id = %s AND bucket = 'all'" % self.s1),
                         [["9", "8", "7", pct(7, 9)]])

    def test_change(self):
        rows = dict((r[0], int(r[1])) for r in self.pg.query(
            "SELECT change, n FROM v_change_summary WHERE from_scan = %s AND to_scan = %s" % (self.s1, self.s2)))
        self.assertEqual(rows, {"appeared": 1, "disappeared": 13, "outcome_changed": 2,
                                "gained_starttls": 1, "gained_tls": 1, "lost_starttls": 1,
                                "cert_changed": 1, "version_changed": 1, "cipher_changed": 1})
        self.assertEqual(self.pg.query("SELECT DISTINCT n_both FROM mxs_change_summary(%s, %s)"
                                       % (self.s1, self.s2)), [["4"]])
        self.assertEqual(self.pg.query("SELECT host(ip), before, after FROM mxs_changes(%s, %s)"
                                       " WHERE change = 'version_changed'" % (self.s1, self.s2)),
                         [["192.0.2.2", "TLSv1.2", "TLSv1.3"]])

    def test_trend(self):
        rows = self.pg.query("SELECT scan_id, results, starttls_offered_pct, tls_completed_pct"
                             " FROM v_trend ORDER BY scan_id")
        # night 2: 5 SMTP servers; offered a1 a2 a6 -> 3 of 5; TLS the same three
        self.assertEqual(rows, [[self.s1, "17", pct(9, 11), pct(6, 11)],
                                [self.s2, "5", "60.00", "60.00"]])

    def rates(self, sql, scan):
        return sorted(tuple(str(x) for x in r) for r in self.pg.query(sql % {"s": scan}))

    def test_report_stores_rates_equal_live(self):
        """Ingest leaves the rates to be computed live (loading stays as fast as COPY); the
        first report of a done scan stores them (of the compared scan too). v_rates then
        reads those, and they equal what mxs_rates_live computes from the rows."""
        r = subprocess.run([MXS, "report", "--db", self.pg.url, "--scan", str(self.s2),
                            "--compare", str(self.s1)], env=private_env(self.tmp),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.pg.query("SELECT scan_id, results FROM scan_rollups ORDER BY 1"),
                         [[self.s1, "17"], [self.s2, "5"]])
        for scan in (self.s1, self.s2):
            stored = self.rates("SELECT metric, level, rule, bucket, n_denom, n FROM scan_rates"
                                " WHERE scan_id = %(s)s", scan)
            self.assertGreater(len(stored), 60)
            self.assertEqual(stored, self.rates("SELECT * FROM mxs_rates_live(%(s)s)", scan))
            self.assertEqual(stored, self.rates("SELECT metric, level, rule, bucket, n_denom, n"
                                                " FROM v_rates WHERE scan_id = %(s)s", scan))
            # and the domain-side views' rows (migration 0016), equal to what the live
            # functions compute from the rows
            for table, cols, live in (
                    ("scan_mail_domains", "bucket, n_domains, n_with_mx, n_reachable", "mxs_mail_domains_live"),
                    ("scan_tls_versions", "level, code, n", "mxs_tls_versions_live"),
                    ("scan_downgrade", "bucket, protection, n, n_denom", "mxs_downgrade_live"),
                    ("scan_tlsrpt", "bucket, n, n_denom", "mxs_tlsrpt_live"),
                    ("scan_provider_hosts", "host_id, n", "mxs_provider_hosts_live")):
                stored = self.rates("SELECT %s FROM %s WHERE scan_id = %%(s)s" % (cols, table), scan)
                self.assertEqual(stored, self.rates("SELECT * FROM %s(%%(s)s)" % live, scan), table)
        self.assertEqual([len(self.rates("SELECT * FROM scan_mail_domains WHERE scan_id = %(s)s", s))
                          for s in (self.s1, self.s2)], [6, 0])
        self.assertEqual(self.pg.scalar("SELECT count(*) FROM scan_rollups WHERE domain_rows"), "2")
        # the views read the stored rows now: the same numbers as test_mail_domains,
        # test_downgrade_protection and test_versions_ciphers_kex read live
        self.test_mail_domains()
        self.test_downgrade_protection()
        self.test_versions_ciphers_kex()

    def test_rates_equal_plain_aggregation(self):
        """The bit-pattern counting of mxs_rates_live equals counting the per-metric rows
        of v_addr_facts, v_mx_facts and v_domain_facts one by one."""
        plain = """
            SELECT metric, 'address', '-', 'all', count(*) FILTER (WHERE in_denom)::numeric,
                count(*) FILTER (WHERE in_denom AND hit)::numeric
            FROM v_addr_facts WHERE scan_id = %(s)s GROUP BY metric
            UNION ALL
            SELECT f.metric, 'mx', r.rule, 'all', count(*) FILTER (WHERE f.in_denom)::numeric,
                count(*) FILTER (WHERE f.in_denom
                                 AND CASE r.rule WHEN 'any' THEN f.hit_any ELSE f.hit_all END)::numeric
            FROM v_mx_facts f CROSS JOIN (VALUES ('any'), ('all')) r(rule)
            WHERE f.scan_id = %(s)s GROUP BY f.metric, r.rule
            UNION ALL
            SELECT f.metric, l.level, f.rule, b.bucket,
                CASE l.level WHEN 'domain' THEN count(*) FILTER (WHERE f.in_denom)::numeric
                     ELSE coalesce(sum(1.0 / f.rank) FILTER (WHERE f.in_denom AND f.rank > 0), 0) END,
                CASE l.level WHEN 'domain' THEN count(*) FILTER (WHERE f.in_denom AND f.hit)::numeric
                     ELSE coalesce(sum(1.0 / f.rank) FILTER (WHERE f.in_denom AND f.hit AND f.rank > 0), 0) END
            FROM v_domain_facts f
            JOIN rank_buckets b ON b.max_rank IS NULL OR f.rank <= b.max_rank
            CROSS JOIN (VALUES ('domain'), ('domain_w')) l(level)
            WHERE f.scan_id = %(s)s GROUP BY f.metric, l.level, f.rule, b.bucket"""
        for scan in (self.s1, self.s2):
            self.assertEqual(self.rates(plain, scan),
                             self.rates("SELECT * FROM mxs_rates_live(%(s)s)", scan))

    def test_every_view_answers(self):
        views = [r[0] for r in self.pg.query(
            "SELECT viewname FROM pg_views WHERE schemaname = 'public' ORDER BY 1")]
        self.assertGreaterEqual(len(views), 30)
        for v in views:
            self.pg.query("SELECT * FROM %s LIMIT 1" % v)


class OwnCluster(unittest.TestCase):
    """A test with a cluster and a private environment of its own."""

    def setUp(self):
        self.pg = PgCluster().__enter__()
        self.addCleanup(self.pg.__exit__, None, None, None)
        self.tmp = tempfile.mkdtemp(prefix="mxs-views-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.env = private_env(self.tmp)


class Rollups(OwnCluster):
    """The stored rates follow the rows: writing to a finished scan drops them (v_rates
    computes live); a report or `mxsurvey db rollup` stores them again."""

    def mxs(self, *args, rc=0):
        r = subprocess.run([MXS, *args], env=self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        self.assertEqual(r.returncode, rc, r.stderr)
        return r.stdout + r.stderr

    def offered(self, scan):
        return self.pg.query("SELECT n_denom, n FROM v_rates WHERE scan_id = %s"
                             " AND metric = 'starttls_offered' AND level = 'address'" % scan)

    def spoil(self, scan):
        """Damage the stored figure by hand: shows whether v_rates reads it."""
        self.pg.execute("UPDATE scan_rates SET n = 999 WHERE scan_id = %s"
                        " AND metric = 'starttls_offered' AND level = 'address'" % scan)

    def rolled_up(self, scan):
        return self.pg.scalar("SELECT count(*) FROM scan_rollups WHERE scan_id = %s" % scan) == "1"

    def test_write_drops_rollup_and_db_rollup_restores_it(self):
        recs = night2_results()
        path = os.path.join(self.tmp, "a.jsonl")
        write_jsonl(path, recs[:-2])
        self.mxs("ingest", "--db", self.pg.url, "--label", "n", path)
        sid = self.pg.scalar("SELECT id FROM scans WHERE label = 'n'")
        self.assertFalse(self.rolled_up(sid))   # ingest leaves it to the first report
        before = self.offered(sid)
        # ingest leaves the planner statistics to the first report or rollup: a rollup on a
        # scan that was never analyzed planned for minutes at 100k addresses (bench/findings)
        analyzed = ("SELECT analyze_count FROM pg_stat_user_tables"
                    " WHERE relname = 'results_s%s'" % sid)
        self.assertEqual(self.pg.scalar(analyzed), "0")
        self.assertIn("rates stored", self.mxs("db", "--db", self.pg.url, "rollup", str(sid)))
        self.assertGreater(int(self.pg.scalar(analyzed)), 0)
        self.assertEqual(self.pg.scalar("SELECT results FROM scan_rollups WHERE scan_id = %s" % sid),
                         str(len(recs) - 2))
        self.assertEqual(self.offered(sid), before)
        self.spoil(sid)
        self.assertEqual(self.offered(sid)[0][1], "999")
        self.assertIn("rates stored", self.mxs("db", "--db", self.pg.url, "rollup", str(sid)))
        self.assertEqual(self.offered(sid), before)

        # a running writer: each batch drops the rollup in its own transaction
        tail = os.path.join(self.tmp, "b.jsonl")
        write_jsonl(tail, recs[-2:])
        with open(tail) as f:
            lines = f.read().splitlines(keepends=True)
        p = subprocess.Popen([MXS, "ingest", "--db", self.pg.url, "--scan", str(sid),
                              "--flush-ms", "50", "-q", "-"], env=self.env, stdin=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.addCleanup(p.kill)
        for n, line in enumerate(lines, len(recs) - 1):
            self.pg.execute("SELECT mxs_rollup(%s)" % sid)
            self.spoil(sid)
            p.stdin.write(line)
            p.stdin.flush()
            # --flush-ms: a line from a slow pipe is stored within 50 ms, not at EOF
            self.assertTrue(wait_for(lambda: self.pg.scalar(
                "SELECT count(*) FROM results WHERE scan_id = %s" % sid) == str(n), timeout=20))
            self.assertFalse(self.rolled_up(sid))
            self.assertNotEqual(self.offered(sid)[0][1], "999")
        p.stdin.close()
        self.assertEqual(p.wait(30), 0, p.stderr.read())
        # a report stores the rates of the whole scan again
        self.assertFalse(self.rolled_up(sid))
        self.mxs("report", "--db", self.pg.url, "--scan", str(sid))
        self.assertTrue(self.rolled_up(sid))
        whole = self.offered(sid)
        self.assertEqual(whole, self.pg.query(
            "SELECT n_denom, n FROM mxs_rates_live(%s) WHERE metric = 'starttls_offered'"
            " AND level = 'address'" % sid))
        self.assertNotEqual(whole, before)
        self.assertIn("no scan 4242", self.mxs("db", "--db", self.pg.url, "rollup", "4242", rc=5))

    def test_batch_during_rollup_drops_what_it_stores(self):
        """A batch that arrives while the scan's rollup is computing waits for it, then
        drops what it stored: the stored rates never miss rows that were committed."""
        recs = night2_results()
        path = os.path.join(self.tmp, "a.jsonl")
        write_jsonl(path, recs[:-1])
        self.mxs("ingest", "--db", self.pg.url, "--label", "n", path)
        sid = self.pg.scalar("SELECT id FROM scans WHERE label = 'n'")
        p = subprocess.Popen([MXS, "ingest", "--db", self.pg.url, "--scan", str(sid),
                              "--flush-ms", "50", "-q", "-"], env=self.env, stdin=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.addCleanup(p.kill)
        # nothing stored yet (ingest leaves it to the report): roll up in a transaction
        # held open, as a report or a finishing scan would be in the middle of doing
        self.assertFalse(self.rolled_up(sid))
        rollup = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.pg.url],
                                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        self.addCleanup(rollup.kill)
        rollup.stdin.write("BEGIN;\nSELECT mxs_rollup(%s);\n" % sid)
        rollup.stdin.flush()
        self.assertTrue(wait_for(lambda: self.pg.scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND mode = 'ExclusiveLock'") == "1", timeout=20))
        write_jsonl(os.path.join(self.tmp, "b.jsonl"), recs[-1:])
        with open(os.path.join(self.tmp, "b.jsonl")) as f:
            p.stdin.write(f.read())
        p.stdin.flush()
        # the batch waits on the rollup's lock
        self.assertTrue(wait_for(lambda: self.pg.scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") == "1",
            timeout=20))
        rollup.stdin.write("COMMIT;\n")
        rollup.stdin.close()
        self.assertEqual(rollup.wait(30), 0)
        self.assertTrue(wait_for(lambda: self.pg.scalar(
            "SELECT count(*) FROM results WHERE scan_id = %s" % sid) == str(len(recs)), timeout=20))
        self.assertFalse(self.rolled_up(sid))
        p.stdin.close()
        self.assertEqual(p.wait(30), 0, p.stderr.read())
        self.assertFalse(self.rolled_up(sid))


class Suffixes(OwnCluster):
    """`mxsurvey db suffixes` replaces the built-in list with a Public Suffix List's ICANN
    section, and mxs_registered_domain() applies its plain, wildcard and exception rules."""

    def setUp(self):
        super().setUp()
        self.assertEqual(self.db("migrate").returncode, 0)

    def db(self, *args):
        return subprocess.run([MXS, "db", "--db", self.pg.url, *args], env=self.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def registered(self, *hosts):
        return [self.pg.scalar("SELECT mxs_registered_domain('%s')" % h) for h in hosts]

    def test_load_and_rules(self):
        hosts = ("mx.example.co.uk", "MX1.Example.COM.", "a.b.example.ck", "mx.www.ck",
                 "mx.shop.blogspot.com", "localhost")
        # the built-in list knows co.uk, nothing of .ck
        self.assertEqual(self.registered(*hosts),
                         ["example.co.uk", "example.com", "example.ck", "www.ck",
                          "blogspot.com", "localhost"])
        path = os.path.join(self.tmp, "psl.dat")
        with open(path, "w") as f:
            f.write("// ===BEGIN ICANN DOMAINS===\nuk\nco.uk\ncom\n*.ck\n!www.ck\n"
                    "// ===END ICANN DOMAINS===\n// ===BEGIN PRIVATE DOMAINS===\n"
                    "blogspot.com\n// ===END PRIVATE DOMAINS===\n")
        r = self.db("suffixes", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "5 public suffix rules loaded from %s\n" % path)
        # *.ck makes example.ck a suffix; !www.ck excepts www.ck; the private section is
        # left out, so blogspot.com stays one provider
        self.assertEqual(self.registered(*hosts),
                         ["example.co.uk", "example.com", "b.example.ck", "www.ck",
                          "blogspot.com", "localhost"])
        self.assertIn(path, self.db("status").stdout)
        # a file that is not a list: bad input (4), and the loaded rules stay
        bad = os.path.join(self.tmp, "not.dat")
        with open(bad, "w") as f:
            f.write("co.uk\n")
        r = self.db("suffixes", bad)
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("not a Public Suffix List", r.stderr)
        self.assertEqual(self.db("suffixes", os.path.join(self.tmp, "missing")).returncode, 4)
        self.assertEqual(self.pg.scalar("SELECT count(*) FROM public_suffixes"), "5")

    def test_debian_list(self):
        if not os.path.exists("/usr/share/publicsuffix/public_suffix_list.dat"):
            self.skipTest("package publicsuffix not installed")
        r = self.db("suffixes")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreater(int(r.stdout.split()[0]), 5000)
        self.assertEqual(self.registered("mx.example.co.uk", "mail.example.com.au",
                                         "aspmx.l.google.com", "mx.example.kawasaki.jp"),
                         ["example.co.uk", "example.com.au", "google.com",
                          "mx.example.kawasaki.jp"])


class Providers(OwnCluster):
    """v_provider_concentration and v_domain_provider read the registered domains stored
    for the primary MX hosts of rolled-up scans (migration 0019): the same rows as
    computing each one when read, before a rollup, after it, and after every kind of
    change to the public suffixes (`mxsurvey db suffixes` included)."""

    REF_DP = """SELECT p.scan_id, dn.name AS domain, p.host, mxs_registered_domain(p.host) AS provider
        FROM (SELECT DISTINCT ON (m.scan_id, m.domain_id) m.scan_id, m.domain_id,
                     rtrim(lower(hn.name), '.') AS host
                FROM scan_mx m JOIN dns_names hn ON hn.id = m.host_id
               ORDER BY m.scan_id, m.domain_id, coalesce(m.pref, 0), rtrim(lower(hn.name), '.')) p
        JOIN dns_names dn ON dn.id = p.domain_id"""
    REF_PC = """SELECT scan_id, provider, n, n_denom, pct,
        rank() OVER (PARTITION BY scan_id ORDER BY n DESC) AS provider_rank,
        round(100.0 * sum(n) OVER (PARTITION BY scan_id ORDER BY n DESC, provider
                                   ROWS UNBOUNDED PRECEDING) / n_denom, 2) AS cumulative_pct
        FROM (SELECT scan_id, provider, count(*) AS n,
                     sum(count(*)) OVER (PARTITION BY scan_id) AS n_denom,
                     round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY scan_id), 2) AS pct
                FROM (%s) d GROUP BY scan_id, provider) p""" % REF_DP

    def mxs(self, *args):
        r = subprocess.run([MXS, *args], env=self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def rows(self, sql):
        return sorted(self.pg.query(sql), key=lambda r: [str(x) for x in r])

    def same(self, what):
        for view, ref in (("v_domain_provider", self.REF_DP),
                          ("v_provider_concentration", self.REF_PC)):
            self.assertEqual(self.rows("SELECT * FROM " + view), self.rows(ref), (what, view))
        self.assertEqual(self.pg.scalar(
            "SELECT count(*) FROM mxs_host_providers c JOIN dns_names n ON n.id = c.host_id"
            " WHERE c.provider IS DISTINCT FROM mxs_registered_domain(n.name)"), "0", what)

    def test_stored_providers_follow_the_suffixes(self):
        path = os.path.join(self.tmp, "n.jsonl")
        write_jsonl(path, night1_results() + night1_domains())
        for label in ("n1", "n2"):
            self.mxs("ingest", "--db", self.pg.url, "--label", label, path)
        s1, s2 = (self.pg.scalar("SELECT id FROM scans WHERE label = '%s'" % x) for x in ("n1", "n2"))
        self.same("computed")
        self.assertEqual(self.pg.scalar("SELECT count(*) FROM mxs_host_providers"), "0")
        self.mxs("db", "--db", self.pg.url, "rollup", str(s1))
        # the 8 domains with an MX host have 7 primary hosts (two use mail.provider.net)
        self.assertEqual(self.pg.query("SELECT count(*), sum(n) FROM scan_provider_hosts"
                                       " WHERE scan_id = %s" % s1), [["7", "8"]])
        self.assertEqual(self.pg.scalar("SELECT count(*) FROM mxs_host_providers"), "7")
        self.same("one scan stored, one computed")
        # the stored counts are what the view reads
        self.pg.execute("UPDATE scan_provider_hosts SET n = n + 10 WHERE scan_id = %s" % s1)
        self.assertEqual(self.pg.scalar("SELECT max(n_denom) FROM v_provider_concentration"
                                        " WHERE scan_id = %s" % s1), "78")
        self.mxs("db", "--db", self.pg.url, "rollup", str(s1))
        self.mxs("db", "--db", self.pg.url, "rollup", str(s2))
        self.assertEqual(self.pg.scalar("SELECT count(*) FROM mxs_host_providers"), "7")
        self.same("both stored")
        prov = "SELECT n FROM v_provider_concentration WHERE scan_id = %s AND provider = '%%s'" % s1
        self.assertEqual(self.pg.scalar(prov % "provider.net"), "2")
        self.pg.execute("INSERT INTO public_suffixes VALUES ('provider.net')")
        self.same("suffix inserted")
        self.assertEqual(self.pg.scalar(prov % "mail.provider.net"), "2")
        self.pg.execute("UPDATE public_suffixes SET suffix = 'delta.example' WHERE suffix = 'provider.net'")
        self.same("suffix updated")
        self.assertEqual(self.pg.scalar(prov % "mx.delta.example"), "1")
        self.pg.execute("DELETE FROM public_suffixes WHERE suffix = 'delta.example'")
        self.same("suffix deleted")
        psl = os.path.join(self.tmp, "psl.dat")
        with open(psl, "w") as f:
            f.write("// ===BEGIN ICANN DOMAINS===\nuk\nco.uk\n*.example\n!delta.example\n"
                    "// ===END ICANN DOMAINS===\n")
        self.mxs("db", "--db", self.pg.url, "suffixes", psl)
        self.same("db suffixes")
        self.assertEqual(self.pg.scalar(prov % "mx.gamma.example"), "1")
        self.pg.execute("TRUNCATE public_suffixes")
        self.same("suffixes truncated")
        self.assertEqual(self.pg.scalar(prov % "co.uk"), "1")


if __name__ == "__main__":
    unittest.main(verbosity=2)
