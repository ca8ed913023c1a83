"""The legacy TLS support views (docs/views.md "Legacy TLS accepted") and their report
sections over a hand-built scan whose numbers are derived in the comments below.

Addresses (support objects as docs/record.md writes them with --probes legacy):
  S1 .101 modern: TLS 1.2 + 1.3 only, nothing weak, DHE 2048        mx1.big.example (pref 10)
  S2 .102 legacy: TLS 1.0-1.3, RC4, 3DES, DHE 1024                  mx2.big.example (pref 20)
  S3 .103 ancient: SSLv3 + TLS 1.0 only, export, CBC only, no DHE,
          answers an injected NOOP inside TLS                        mx.old.example
  S4 .104 probed, budget exhausted: TLS 1.2 + 1.3 accepted, the rest
          unanswered (null)                                          mx.small.example
  S5 .105 TLS, not probed (no support object)                        mx.small.example
  S6 .106 no STARTTLS, not probed                                    mx.none.example
Domains: big.example (rank 10: mx1 primary, mx2 backup), old.example (rank 2000),
small.example (rank 50), none.example (unranked).
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from pg import PgCluster, private_env
from pgrecords import domain, smtp_result, tls, write_jsonl

MXS = os.environ["MXS_BIN"]
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
IP = {i: "192.0.2.%d" % (100 + i) for i in range(1, 7)}

FALSE = dict.fromkeys(("sslv3", "tls1_0", "tls1_1", "tls1_2", "tls1_3", "rc4", "3des",
                       "export", "null", "anon", "cbc_only", "server_order",
                       "fallback_scsv", "secure_renegotiation", "starttls_injection"), False)


def support(**kw):
    s = dict(FALSE)
    s.update({"prefer_sslv3": None, "prefer_tls1_0": None, "prefer_tls1_1": None,
              "prefer_tls1_2": None, "prefer_tls1_3": None, "dhe_bits": None,
              "groups": ["x25519", "secp256r1"], "connections": 6, "budget": 8,
              "exhausted": False})
    s.update(kw)
    return s


def records():
    return [
        smtp_result(IP[1], "success", "ESMTP Postfix", mx="mx1.big.example", starttls_code=220,
                    tls_info=tls("TLSv1.3", leaf="s1"),
                    support=support(tls1_2=True, tls1_3=True, dhe_bits=2048,
                                    prefer_tls1_2="TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                                    prefer_tls1_3="TLS_AES_256_GCM_SHA384")),
        smtp_result(IP[2], "success", "ESMTP Exim", mx="mx2.big.example", starttls_code=220,
                    tls_info=tls("TLSv1.2", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                                 "ECDHE-RSA-AES128-GCM-SHA256", 128, True, "ECDHE", "secp256r1",
                                 256, leaf="s2"),
                    support=support(tls1_0=True, tls1_1=True, tls1_2=True, tls1_3=True,
                                    rc4=True, **{"3des": True}, dhe_bits=1024)),
        smtp_result(IP[3], "success", "ESMTP Sendmail", mx="mx.old.example", starttls_code=220,
                    tls_info=tls("TLSv1", "TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA", 128,
                                 False, "RSA", None, None, leaf="s3"),
                    support=support(sslv3=True, tls1_0=True, export=True, cbc_only=True,
                                    starttls_injection=True, groups=[])),
        smtp_result(IP[4], "success", "ESMTP Postfix", mx="mx.small.example", starttls_code=220,
                    tls_info=tls("TLSv1.3", leaf="s4"),
                    support=support(sslv3=None, tls1_0=None, tls1_1=None, tls1_2=True,
                                    tls1_3=True, rc4=None, **{"3des": None}, export=None,
                                    null=None, anon=None, cbc_only=None, server_order=None,
                                    fallback_scsv=None, secure_renegotiation=None,
                                    starttls_injection=None, groups=None, exhausted=True)),
        smtp_result(IP[5], "success", "ESMTP Postfix", mx="mx.small.example", starttls_code=220,
                    tls_info=tls("TLSv1.3", leaf="s5")),
        smtp_result(IP[6], "no-starttls", "ESMTP Postfix", mx="mx.none.example", offered=False),
        domain("big.example", 10, mx=[("mx1.big.example", 10, [IP[1]]),
                                      ("mx2.big.example", 20, [IP[2]])]),
        domain("old.example", 2000, mx=[("mx.old.example", 10, [IP[3]])]),
        domain("small.example", 50, mx=[("mx.small.example", 10, [IP[4], IP[5]])]),
        domain("none.example", None, mx=[("mx.none.example", 10, [IP[6]])]),
    ]


def pct(n, d):
    return "%.2f" % round(100.0 * n / d + 1e-12, 2)


class SupportViews(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PgCluster().__enter__()
        cls.tmp = tempfile.mkdtemp(prefix="mxs-support-")
        cls.env = private_env(cls.tmp)
        path = os.path.join(cls.tmp, "legacy.jsonl")
        write_jsonl(path, records())
        r = subprocess.run([MXS, "ingest", "--db", cls.pg.url, "--label", "legacy", path],
                           env=cls.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert r.returncode == 0, r.stderr
        cls.scan = cls.pg.scalar("SELECT id FROM scans WHERE label = 'legacy'")

    @classmethod
    def tearDownClass(cls):
        cls.pg.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def check(self, metric, n, d, level="address", rule="-", bucket="all"):
        rows = self.pg.query(
            "SELECT n_denom, n, pct FROM v_legacy_support WHERE scan_id = %s AND metric = '%s'"
            " AND level = '%s' AND rule = '%s' AND bucket = '%s'"
            % (self.scan, metric, level, rule, bucket))
        self.assertEqual(len(rows), 1, (metric, level, rule, bucket))
        got_d, got_n, got_p = rows[0]
        self.assertEqual((float(got_d), float(got_n)), (float(d), float(n)),
                         (metric, level, rule, bucket))
        self.assertEqual(got_p, pct(n, d) if d else None, (metric, level, rule, bucket))

    def test_address_level(self):
        # S4 left the old versions and every suite class unanswered: denominators of 3
        self.check("accepts_sslv3", 1, 3)          # S3
        self.check("accepts_tls1_0", 2, 3)         # S2, S3
        self.check("accepts_tls1_0_only", 1, 3)    # S3 (S4: TLS 1.1 unanswered)
        self.check("accepts_rc4", 1, 3)            # S2
        self.check("accepts_3des", 1, 3)           # S2
        self.check("accepts_weak", 1, 3)           # S3 (export)
        self.check("accepts_dh_small", 1, 4)       # S2; every probed address is in
        self.check("accepts_injection", 1, 3)     # S3

    def test_mx_and_domain_levels(self):
        # MX hosts with an address that answered: mx1.big, mx2.big, mx.old
        self.check("accepts_rc4", 1, 3, level="mx", rule="any")
        self.check("accepts_rc4", 1, 3, level="mx", rule="all")
        # ... and mx.small for the DH question (S4 is probed)
        self.check("accepts_dh_small", 1, 4, level="mx", rule="any")
        # domains: big (S1, S2) and old (S3); small's only probed address did not answer
        self.check("accepts_rc4", 1, 2, level="domain", rule="any_mx")
        self.check("accepts_rc4", 0, 2, level="domain", rule="all_mx")
        self.check("accepts_rc4", 0, 2, level="domain", rule="primary_mx")  # big's primary: S1
        self.check("accepts_tls1_0", 2, 2, level="domain", rule="any_mx")
        self.check("accepts_dh_small", 1, 3, level="domain", rule="any_mx")

    def test_rank_buckets(self):
        # top100: big (10) and small (50); small answered nothing about RC4
        self.check("accepts_rc4", 1, 1, level="domain", rule="any_mx", bucket="top100")
        self.check("accepts_dh_small", 1, 2, level="domain", rule="any_mx", bucket="top100")
        # top10k: old (2000) joins
        self.check("accepts_sslv3", 1, 2, level="domain", rule="any_mx", bucket="top10k")
        # weighted: big 1/10 of (1/10 + 1/2000) accepts RC4
        rows = self.pg.query("SELECT n, n_denom FROM v_legacy_support WHERE scan_id = %s"
                             " AND metric = 'accepts_rc4' AND level = 'domain_w'"
                             " AND rule = 'any_mx' AND bucket = 'all'" % self.scan)
        n, d = map(float, rows[0])
        self.assertAlmostEqual(n, 0.1)
        self.assertAlmostEqual(d, 0.1 + 1 / 2000)

    def test_worst_version(self):
        rows = self.pg.query("SELECT level, worst_version, n, n_denom, pct"
                             " FROM v_support_worst_version WHERE scan_id = %s"
                             " ORDER BY level, worst_version" % self.scan)
        self.assertEqual(rows, [
            # address: S3 SSLv3, S2 TLS 1.0, S1 and S4 TLS 1.2 (S5, S6 not probed)
            ["address", "SSLv3", "1", "4", "25.00"],
            ["address", "TLSv1.0", "1", "4", "25.00"],
            ["address", "TLSv1.2", "2", "4", "50.00"],
            # domain: big the oldest of S1, S2; old; small (S4)
            ["domain", "SSLv3", "1", "3", "33.33"],
            ["domain", "TLSv1.0", "1", "3", "33.33"],
            ["domain", "TLSv1.2", "1", "3", "33.33"],
            ["mx", "SSLv3", "1", "4", "25.00"],
            ["mx", "TLSv1.0", "1", "4", "25.00"],
            ["mx", "TLSv1.2", "2", "4", "50.00"],
        ])

    def test_provider_table(self):
        rows = self.pg.query("SELECT provider, n_probed, worst_version, worst_class, n_sslv3,"
                             " n_tls1_0, n_rc4, n_dh_small, n_injection, default_version,"
                             " default_cipher FROM v_provider_support WHERE scan_id = %s"
                             " ORDER BY provider" % self.scan)
        self.assertEqual(rows, [
            # S1 negotiates TLS 1.3, S2 TLS 1.2: one each, the newer is the default shown
            ["big.example", "2", "TLSv1.0", "RC4", "0", "1", "1", "1", "0", "TLSv1.3",
             "TLS_AES_256_GCM_SHA384"],
            ["old.example", "1", "SSLv3", "export/NULL/anon", "1", "1", "0", "0", "1", "TLSv1",
             "TLS_RSA_WITH_AES_128_CBC_SHA"],
            # S4 only (S5 was not probed); S4 and S5 both negotiate TLS 1.3
            ["small.example", "1", "TLSv1.2", "none of these", "0", "0", "0", "0", "0",
             "TLSv1.3", "TLS_AES_256_GCM_SHA384"],
        ])

    def report(self, *args):
        r = subprocess.run([MXS, "report", "--db", self.pg.url, "--scan", str(self.scan)]
                           + list(args), env=self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_report_sections(self):
        doc = json.loads(self.report("--format", "json"))
        secs = {s["id"]: s for s in doc["sections"]}
        acc = secs["accepts"]
        self.assertEqual(acc["chart"]["kind"], "grouped")
        rc4 = [r for r in acc["rows"] if r[0] == "accepts RC4"][0]
        # property, n, denominator, address %, MX (any) %, domain (any MX) %
        self.assertEqual(rc4, ["accepts RC4", 1, 3, 33.33, 33.33, 50.0])
        self.assertIn(["SSLv3", 1, 25.0], secs["accepts_versions"]["rows"])
        prov = {r[0]: r for r in secs["accepts_providers"]["rows"]}
        self.assertEqual(prov["old.example"][3:5], ["SSLv3", "export/NULL/anon"])
        buckets = {r[0]: r for r in secs["accepts_buckets"]["rows"]}
        self.assertEqual(buckets["top100"][1:4], [100.0, 100.0, 50.0])  # TLS 1.0, RC4, DH
        text = self.report()
        self.assertRegex(text, r"accepts RC4\s+1\s+3\s+33\.33")

    @unittest.skipIf(BROWSER is None, "chromium not installed (Debian package chromium)")
    def test_html_charts(self):
        path = os.path.join(self.tmp, "report.html")
        self.report("--format", "html", "-o", path)
        profile = tempfile.mkdtemp(prefix="mxs-chromium-")
        try:
            r = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu",
                                "--disable-background-networking", "--disable-component-update",
                                "--disable-sync", "--no-first-run", "--user-data-dir=" + profile,
                                "--dump-dom", "file://" + path],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               timeout=120)
        finally:
            shutil.rmtree(profile, ignore_errors=True)
        self.assertEqual(r.returncode, 0)
        dom = r.stdout
        for chart in ("accepts", "accepts_buckets", "accepts_versions"):
            self.assertIn('id="chart-%s"' % chart, dom)
        section = dom[dom.index('id="chart-accepts"'):]
        section = section[:section.index("</svg>")]
        bars = re.findall(r'class="bar"[^>]*data-label="([^"]*)" data-value="([^"]*)"', section)
        self.assertIn(("accepts RC4", "33.33"), bars)


if __name__ == "__main__":
    unittest.main(verbosity=2)
