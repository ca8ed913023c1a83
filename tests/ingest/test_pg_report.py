"""mxsurvey report in its four formats, over the hand-built fleet of tests/lib/pgfleet.py
(numbers derived in test_pg_views.py). The HTML report is opened in a real headless
browser (Chromium) and the charts its script draws are read back from the DOM."""
import csv
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from pg import PgCluster, private_env
from pgfleet import night1_domains, night1_results, night2_results
from pgrecords import write_jsonl

MXS = os.environ["MXS_BIN"]
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


class Report(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PgCluster().__enter__()
        cls.tmp = tempfile.mkdtemp(prefix="mxs-report-")
        cls.env = private_env(cls.tmp)
        for name, recs in (("night1", night1_results() + night1_domains()), ("night2", night2_results())):
            path = os.path.join(cls.tmp, name + ".jsonl")
            write_jsonl(path, recs)
            subprocess.run([MXS, "ingest", "-q", "--db", cls.pg.url, "--label", name, path],
                           env=cls.env, check=True, stderr=subprocess.DEVNULL)

    @classmethod
    def tearDownClass(cls):
        cls.pg.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def report(self, *args):
        r = subprocess.run([MXS, "report", "--db", self.pg.url] + list(args), env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_text(self):
        out = self.report("--scan", "1")
        self.assertIn("mxsurvey report: scan 1 (night1)", out)
        self.assertRegex(out, r"STARTTLS offered\s+9\s+11\s+81\.82\s+60\.00")
        self.assertRegex(out, r"domain\s+primary_mx\s+7\s+85\.71\s+57\.14")
        self.assertRegex(out, r"provider\.net\s+2\s+25\.00\s+25\.00\s+TLSv1\.2\s+DHE-RSA-AES256-SHA")
        self.assertNotIn("Change against", out)   # no --compare

    def test_latest_scan_and_compare(self):
        out = self.report("--compare", "1")       # the latest scan is night 2
        self.assertIn("scan 2 (night2)", out)
        self.assertRegex(out, r"disappeared\s+13\s+4")
        self.assertRegex(out, r"version_changed\s+1\s+4")

    def test_csv(self):
        rows = list(csv.reader(io.StringIO(self.report("--scan", "1", "--format", "csv"))))
        funnel = [r for r in rows if r and r[0] == "funnel"]
        self.assertEqual(funnel[0], ["funnel", "port open", "13", "15", "86.67", "86.67"])
        self.assertEqual(len(funnel), 5)
        headers = [r for r in rows if r and r[0] == "section"]
        self.assertGreaterEqual(len(headers), 14)

    def test_json(self):
        doc = json.loads(self.report("--scan", "1", "--compare", "2", "--format", "json"))
        self.assertEqual(doc["scan"]["id"], 1)
        secs = {s["id"]: s for s in doc["sections"]}
        self.assertEqual(secs["funnel"]["rows"][4], ["TLS completed", 6, 9, 66.67, 40.0])
        self.assertEqual(secs["versions"]["columns"], ["version", "n", "pct"])
        self.assertIn(["TLSv1.3", 2, 33.33], secs["versions"]["rows"])
        self.assertEqual(secs["trend"]["chart"]["kind"], "lines")
        self.assertIn("change", secs)
        # no network set loaded (mxsurvey db networks): no per-network sections, which
        # would only repeat the totals under "(no network)" and judge every address
        self.assertNotIn("networks", secs)
        self.assertNotIn("network_change", secs)
        # no address probed with --probes legacy: no legacy support sections (they would
        # be empty tables); tests/ingest/test_pg_support.py covers them
        for sec in ("accepts", "accepts_buckets", "accepts_versions", "accepts_providers"):
            self.assertNotIn(sec, secs)

    def html(self):
        path = os.path.join(self.tmp, "report.html")
        self.report("--scan", "1", "--compare", "2", "--format", "html", "-o", path)
        return path

    def test_html_self_contained(self):
        with open(self.html(), encoding="utf-8") as f:
            text = f.read()
        self.assertTrue(text.startswith("<!DOCTYPE html>"))
        # nothing is fetched: no src/href attributes, no CSS url(), no @import
        self.assertIsNone(re.search(r"\b(src|href)\s*=|url\(|@import|<link", text))
        # the only URL is the SVG namespace identifier, which is never fetched
        self.assertEqual(set(re.findall(r"https?://[^'\"\s)]+", text)), {"http://www.w3.org/2000/svg"})

    @unittest.skipIf(BROWSER is None, "chromium not installed (Debian package chromium)")
    def test_html_charts_render_in_browser(self):
        path = self.html()
        profile = tempfile.mkdtemp(prefix="mxs-chromium-")
        try:
            r = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu",
                                "--disable-background-networking", "--disable-component-update",
                                "--disable-sync", "--no-first-run", "--user-data-dir=" + profile,
                                "--dump-dom", "file://" + path],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=120)
        finally:
            shutil.rmtree(profile, ignore_errors=True)
        dom = r.stdout
        self.assertEqual(r.returncode, 0)
        # the script ran and drew a chart for each section with data to chart:
        # funnel, rank buckets, outcomes, versions, ciphers, providers, software,
        # protection, trend
        m = re.search(r'<body[^>]*data-charts="(\d+)"', dom)
        self.assertIsNotNone(m, "the chart script did not run")
        self.assertEqual(int(m.group(1)), 9)
        self.assertEqual(dom.count("<svg"), 9)
        bars = re.findall(r'<rect[^>]*class="bar"[^>]*data-label="([^"]*)" data-value="([^"]*)"', dom)
        self.assertIn(("TLSv1.3", "33.33"), bars)
        self.assertIn(("TLS completed", "40"), bars)
        self.assertIn(("provider.net", "25"), bars)
        # rank buckets: two bars per bucket (offered, completed), six buckets
        section = dom[dom.index('id="chart-rank_buckets"'):]
        section = section[:section.index("</svg>")]
        self.assertEqual(section.count('class="bar"'), 12)
        # trend: two scans, three series, a point for each
        trend = dom[dom.index('id="chart-trend"'):]
        trend = trend[:trend.index("</svg>")]
        self.assertEqual(len(re.findall(r'class="point"', trend)), 6)
        self.assertEqual(trend.count('class="series"'), 3)


HOSTILE = "<!--<script>"
PWN = "</script><script>document.body.setAttribute('data-pwned','1')</script>"
LABEL = HOSTILE + PWN + "\u2028\u2029&amp;"


def hostile(rec):
    """The record with hostile text in every string a server controls."""
    rec = json.loads(json.dumps(rec))
    for k in ("greeting", "starttls"):
        if rec.get(k):
            rec[k]["lines"] = [l + " " + HOSTILE + PWN + "\u2028\u2029&amp;" for l in rec[k]["lines"]]
    if rec.get("tls"):
        for c in rec["tls"].get("chain") or []:
            c["subject"] = "CN=" + HOSTILE + PWN
            c["issuer"] = "CN=" + PWN
    return rec


def browse(path):
    """The DOM of the page after its scripts ran, from headless Chromium."""
    profile = tempfile.mkdtemp(prefix="mxs-chromium-")
    try:
        r = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu",
                            "--disable-background-networking", "--disable-component-update",
                            "--disable-sync", "--no-first-run", "--user-data-dir=" + profile,
                            "--dump-dom", "file://" + path],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return r.returncode, r.stdout


class HostileReport(unittest.TestCase):
    """Stored strings are data: a label or a server string that looks like HTML neither
    ends the embedded JSON block nor runs as a script, and every chart is still drawn."""

    @classmethod
    def setUpClass(cls):
        cls.pg = PgCluster().__enter__()
        cls.tmp = tempfile.mkdtemp(prefix="mxs-report-")
        cls.env = private_env(cls.tmp)
        for label, recs in ((LABEL, [hostile(r) for r in night1_results()] + night1_domains()),
                            ("night2", night2_results())):
            path = os.path.join(cls.tmp, "in.jsonl")
            write_jsonl(path, recs)
            subprocess.run([MXS, "ingest", "-q", "--db", cls.pg.url, "--label", label, path],
                           env=cls.env, check=True, stderr=subprocess.DEVNULL)
        cls.path = os.path.join(cls.tmp, "report.html")
        subprocess.run([MXS, "report", "--db", cls.pg.url, "--scan", "1", "--compare", "2",
                        "--format", "html", "-o", cls.path], env=cls.env, check=True)

    @classmethod
    def tearDownClass(cls):
        cls.pg.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_data_block_holds_no_markup(self):
        with open(self.path, encoding="utf-8") as f:
            text = f.read()
        m = re.search(r'<script type="application/json" id="mxs-data">(.*?)</script>', text, re.S)
        self.assertIsNotNone(m)
        block = m.group(1)
        for ch in "<>&\u2028\u2029":
            self.assertNotIn(ch, block)
        doc = json.loads(block)
        self.assertEqual(doc["scan"]["label"], LABEL)
        # one data block and the chart script, nothing more
        self.assertEqual(text.count("<script"), 2)

    @unittest.skipIf(BROWSER is None, "chromium not installed (Debian package chromium)")
    def test_every_chart_drawn_no_script_run(self):
        rc, dom = browse(self.path)
        self.assertEqual(rc, 0)
        m = re.search(r'<body[^>]*data-charts="(\d+)"', dom)
        self.assertIsNotNone(m, "the chart script did not run")
        self.assertEqual(int(m.group(1)), 9)
        self.assertEqual(dom.count("<svg"), 9)
        # the hostile text shows as text, never as an attribute an injected script set
        self.assertIsNone(re.search(r'\sdata-pwned="', dom), "an injected script ran")


if __name__ == "__main__":
    unittest.main(verbosity=2)
