"""
mxsurvey db networks and mxsurvey findings against the test fleet: a networks file
(customer networks with contacts, routing-table lines for the rest) is loaded, the fleet
is scanned into PostgreSQL twice (seed 0, then seed 7: other behaviours at the same
addresses), and the findings of every address must be exactly those its ground truth
implies (computed here from `mxsurvey-fleet truth`, not from the database), in the right
network. CSV goes through Python's csv module, the HTML through headless Chromium (or,
without it, html.parser), and the report's per-network sections are checked against the
same expectations, night to night included.
"""
import csv
import io
import ipaddress
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
from html.parser import HTMLParser

import fleet as fleetlib
import pgfleet
from pg import PgCluster
from pgrecords import write_jsonl
from scanrun import fleet_args, scan, targets_for

MXS = os.environ["MXS_BIN"]
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
EXIT_FOUND = 7
SCAN_OPTS = ["--concurrency", "200", "--per-net", "1000", "--greeting-timeout", "5s",
             "--timeout", "4s", "--handshake-timeout", "4s", "--deadline", "8s",
             "--retry-delay", "200ms"]
IPS = [f"127.0.0.{i}" for i in range(32)]

NETWORKS = """\
# customers of the test ISP
127.0.0.0/28,Bakery Ltd,noc@bakery.example
127.0.0.16/29 , Clinic, "it@clinic.example, +1 555 0100"
127.0.0.20/32,Clinic reception,
# the routing table: the rest goes by origin AS
127.0.0.0/24 64500
127.0.0.0 16 AS64501
"""
NAMED = [("127.0.0.0/28", "Bakery Ltd", "noc@bakery.example"),
         ("127.0.0.16/29", "Clinic", '"it@clinic.example, +1 555 0100"'),
         ("127.0.0.20/32", "Clinic reception", "")]
ROUTES = [("127.0.0.0/24", 64500), ("127.0.0.0/16", 64501)]


def network_of(ip):
    """(network, contact, asn) by longest prefix: named first, else the route's AS."""
    a = ipaddress.ip_address(ip)
    named = [n for n in NAMED if a in ipaddress.ip_network(n[0])]
    routes = [r for r in ROUTES if a in ipaddress.ip_network(r[0])]
    asn = max(routes, key=lambda r: ipaddress.ip_network(r[0]).prefixlen)[1] if routes else None
    if named:
        n = max(named, key=lambda n: ipaddress.ip_network(n[0]).prefixlen)
        return n[1], n[2], asn
    return (f"AS{asn}" if asn else "(no network)"), "", asn


def expected_codes(t):
    """The findings an address must have, from its ground truth (docs/views.md rules)."""
    codes = set()
    o = t["outcome"]
    # STARTTLS needs EHLO: a server that rejects EHLO and accepts HELO offers none either
    if o == "no-starttls" or (o == "ehlo-rejected" and t.get("ehlo_verb") == "HELO"):
        codes.add("no-starttls")
    if t.get("mangled_starttls"):
        codes.add("tamper-mangled-starttls")
    if o == "starttls-refused":
        codes.add("starttls-refused")
    if o in ("handshake-error", "handshake-timeout", "starttls-timeout") or \
            (o == "protocol-error" and t.get("phase") in ("starttls", "handshake")):
        codes.add("starttls-broken")
    if t.get("starttls_echo"):
        codes.add("tamper-starttls-echo")
    if (t.get("plaintext_after_starttls") or 0) > 0:
        codes.add("tamper-injection")
    if t.get("tls_version"):
        if t["tls_version"] in ("TLSv1", "TLSv1.1"):
            codes.add("tls-old-version")
        if t.get("forward_secrecy") is False or t.get("kex_bits", 4096) < 2048:
            codes.add("weak-cipher")
        if t.get("expired"):
            codes.add("cert-expired")
        if t.get("self_signed"):
            codes.add("cert-self-signed")
        if t.get("name_match") is False:
            codes.add("cert-wrong-name")
        if t.get("trusted") is False and not t.get("expired") and not t.get("self_signed"):
            codes.add("cert-untrusted")
    return codes


SEVERITY = {"no-starttls": 1, "starttls-refused": 1, "starttls-broken": 1,
            "tamper-mangled-starttls": 1, "tamper-starttls-echo": 1, "tamper-injection": 1,
            "dane-mismatch": 1, "mta-sts-mismatch": 2, "tls-old-version": 2, "weak-cipher": 2,
            "cert-expired": 3, "cert-self-signed": 3, "cert-wrong-name": 3, "cert-untrusted": 3}


class Findings(unittest.TestCase):
    maxDiff = None
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mxs-findings-")
        cls.pg = PgCluster().__enter__()
        cls.netfile = os.path.join(cls.tmp, "networks.txt")
        with open(cls.netfile, "w") as f:
            f.write(NETWORKS)
        cls.load = cls.mxs("db", "--db", cls.pg.url, "networks", cls.netfile)
        cls.truth = {}
        port = None  # night 2 on night 1's port: the same (address, port) pairs
        for night, seed in (("night1", 0), ("night2", 7)):
            with fleetlib.Fleet(seed=seed, delay_ms=300, port=port) as fl:
                port = fl.port
                cls.truth[night] = {t["ip"]: t for t in fl.truth("127.0.0.0/27")}
                _, err, rc = scan(fleet_args(fl, *SCAN_OPTS, "--db", cls.pg.url, "--label", night),
                                  targets_for(IPS))
                assert rc == 0, err
        # a later set must not change how the earlier scans are grouped
        cls.netfile2 = os.path.join(cls.tmp, "networks2.txt")
        with open(cls.netfile2, "w") as f:
            f.write("127.0.0.0/8,Everyone,\n")
        cls.load2 = cls.mxs("db", "--db", cls.pg.url, "networks", cls.netfile2)

    @classmethod
    def tearDownClass(cls):
        cls.pg.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @staticmethod
    def mxs(*args):
        return subprocess.run([MXS, *args], capture_output=True, text=True, timeout=300)

    def findings(self, *args):
        return self.mxs("findings", "--db", self.pg.url, *args)

    def scan_id(self, label):
        return self.pg.scalar(f"SELECT id FROM scans WHERE label = '{label}'")

    def expected(self, night):
        """{(ip, code)} and {ip: network} of a night."""
        want = set()
        for ip in IPS:
            t = self.truth[night].get(ip)
            for code in expected_codes(t):
                want.add((ip, code))
        return want

    # ---- loading

    def test_load_says_what_it_loaded(self):
        self.assertEqual(self.load.returncode, 0, self.load.stderr)
        self.assertIn("network set 1: 3 named networks, 2 routes", self.load.stdout)
        self.assertEqual(self.pg.scalar("SELECT string_agg(DISTINCT network_set_id::text, ',')"
                                        " FROM scans WHERE label LIKE 'night%'"), "1")

    def test_bad_file_loads_nothing(self):
        bad = os.path.join(self.tmp, "bad.txt")
        with open(bad, "w") as f:
            f.write("192.0.2.0/24,Fine\n192.0.2.300/24,Broken\n")
        before = self.pg.scalar("SELECT count(*) FROM network_sets")
        r = self.mxs("db", "--db", self.pg.url, "networks", bad)
        self.assertEqual(r.returncode, 4)
        self.assertIn("line 2", r.stderr)
        self.assertEqual(self.pg.scalar("SELECT count(*) FROM network_sets"), before)

    # ---- findings

    def test_every_address_has_exactly_its_findings(self):
        for night in ("night1", "night2"):
            with self.subTest(night=night):
                r = self.findings("--scan", self.scan_id(night), "--format", "json")
                self.assertEqual(r.returncode, EXIT_FOUND, r.stderr)
                doc = json.loads(r.stdout)
                got = set()
                for g in doc["networks"]:
                    for f in g["findings"]:
                        got.add((f["ip"], f["code"]))
                        # the network the address belongs to, with its contact
                        net, contact, asn = network_of(f["ip"])
                        self.assertEqual((g["network"], g["contact"] or "", f["asn"]),
                                         (net, contact, asn), f)
                        self.assertEqual(f["severity"], ["critical", "high", "medium"][SEVERITY[f["code"]] - 1])
                        self.assertTrue(f["problem"].endswith("."), f)
                self.assertEqual(got, self.expected(night))
                self.assertEqual(doc["problems"], len(got))

    def test_seed0_covers_the_fleet_problems(self):
        codes = {c for _, c in self.expected("night1")}
        self.assertEqual(codes, {"no-starttls", "starttls-refused", "starttls-broken",
                                 "tamper-mangled-starttls", "tamper-starttls-echo",
                                 "tamper-injection", "tls-old-version", "weak-cipher",
                                 "cert-expired", "cert-self-signed", "cert-wrong-name"})

    def test_groups_sorted_by_severity(self):
        r = self.findings("--scan", self.scan_id("night1"), "--format", "json")
        doc = json.loads(r.stdout)
        worst = [min(SEVERITY[f["code"]] for f in g["findings"]) for g in doc["networks"]]
        self.assertEqual(worst, sorted(worst))
        for g in doc["networks"]:
            sev = [SEVERITY[f["code"]] for f in g["findings"]]
            self.assertEqual(sev, sorted(sev))

    def test_network_filter_and_exit_codes(self):
        sid = self.scan_id("night1")
        r = self.findings("--scan", sid, "--network", "Clinic reception", "--format", "json")
        self.assertEqual(r.returncode, EXIT_FOUND, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual([g["network"] for g in doc["networks"]], ["Clinic reception"])
        self.assertEqual({(f["ip"], f["code"]) for f in doc["networks"][0]["findings"]},
                         {("127.0.0.20", c) for c in expected_codes(self.truth["night1"]["127.0.0.20"])})
        self.assertEqual({c for _, c in self.expected("night1") if _ == "127.0.0.20"},
                         {"no-starttls", "tamper-mangled-starttls"})
        # a network without problems: exit 0
        r = self.findings("--scan", sid, "--network", "Nobody")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0 problems", r.stdout)
        r = self.findings("--scan", "999")
        self.assertEqual(r.returncode, 4)

    def test_old_scans_keep_their_networks(self):
        self.assertEqual(self.load2.returncode, 0, self.load2.stderr)
        r = self.findings("--scan", self.scan_id("night1"), "--format", "json")
        nets = {g["network"] for g in json.loads(r.stdout)["networks"]}
        self.assertIn("Bakery Ltd", nets)
        self.assertNotIn("Everyone", nets)

    def test_csv(self):
        r = self.findings("--scan", self.scan_id("night1"), "--format", "csv")
        self.assertEqual(r.returncode, EXIT_FOUND)
        rows = list(csv.DictReader(io.StringIO(r.stdout, newline="")))
        self.assertEqual({(x["ip"], x["code"]) for x in rows}, self.expected("night1"))
        clinic = [x for x in rows if x["network"] == "Clinic"]
        self.assertTrue(clinic)
        self.assertEqual({x["contact"] for x in clinic}, {'"it@clinic.example, +1 555 0100"'})

    def test_text(self):
        r = self.findings("--scan", self.scan_id("night1"))
        self.assertEqual(r.returncode, EXIT_FOUND)
        self.assertIn("== Bakery Ltd (contact: noc@bakery.example):", r.stdout)
        self.assertRegex(r.stdout, r"critical\s+127\.0\.0\.5\s+\d+\s+mx-0-0-5\.fleet\.test\s+no-starttls")

    def html_rows(self, path):
        """{(section network, ip, code)} as the browser (or html.parser) sees the page."""
        if BROWSER is not None:
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
            m = re.search(r'<body[^>]*data-findings="(\d+)"', dom)
            self.assertIsNotNone(m, "the page's script did not run in the browser")
            count = int(m.group(1))
        else:  # no Chromium here: parse the file instead (the script is not run)
            with open(path) as f:
                dom = f.read()
            count = None

        class Rows(HTMLParser):
            def __init__(self):
                super().__init__()
                self.net, self.rows = None, set()

            def handle_starttag(self, tag, attrs):
                a = dict(attrs)
                if tag == "section":
                    self.net = a.get("data-network")
                elif tag == "tr" and "data-code" in a:
                    self.rows.add((self.net, a["data-ip"], a["data-code"]))

        p = Rows()
        p.feed(dom)
        if count is not None:
            self.assertEqual(count, len(p.rows))
        return p.rows

    def test_html(self):
        path = os.path.join(self.tmp, "findings.html")
        r = self.findings("--scan", self.scan_id("night1"), "--format", "html", "-o", path)
        self.assertEqual(r.returncode, EXIT_FOUND, r.stderr)
        with open(path) as f:
            self.assertIsNone(re.search(r"\b(src|href)\s*=|url\(|@import|<link", f.read()))
        rows = self.html_rows(path)
        self.assertEqual({(ip, code) for _, ip, code in rows}, self.expected("night1"))
        for net, ip, _ in rows:
            self.assertEqual(net, network_of(ip)[0])

    # ---- report

    def test_report_network_sections(self):
        s1, s2 = self.scan_id("night1"), self.scan_id("night2")
        r = self.mxs("report", "--db", self.pg.url, "--scan", s2, "--compare", s1, "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        secs = {s["id"]: s for s in json.loads(r.stdout)["sections"]}
        nets = secs["networks"]
        rows = [dict(zip(nets["columns"], row)) for row in nets["rows"]]
        want = {}
        for ip in IPS:
            net = network_of(ip)[0]
            codes = expected_codes(self.truth["night2"][ip])
            w = want.setdefault(net, {"addresses": 0, "with_problems": 0, "problems": 0})
            w["addresses"] += 1
            w["with_problems"] += 1 if codes else 0
            w["problems"] += len(codes)
        self.assertEqual({x["network"]: {"addresses": x["addresses"],
                                         "with_problems": x["with_problems"],
                                         "problems": x["problems"]} for x in rows},
                         {k: v for k, v in want.items() if v["problems"] or True})
        ch = secs["network_change"]
        got = {row[0]: dict(zip(ch["columns"][1:], row[1:])) for row in ch["rows"]}
        exp = {}
        for ip in IPS:
            net = network_of(ip)[0]
            a = expected_codes(self.truth["night1"][ip])
            b = expected_codes(self.truth["night2"][ip])
            e = exp.setdefault(net, {"new_problems": 0, "fixed_problems": 0, "problems": 0})
            e["new_problems"] += len(b - a)
            e["fixed_problems"] += len(a - b)
            e["problems"] += len(b)
        exp = {k: v for k, v in exp.items() if v["problems"] or v["fixed_problems"]}
        self.assertEqual(got, exp)


class HandBuilt(unittest.TestCase):
    """The hand-built fleet of tests/lib/pgfleet.py (also used by the views' tests), which
    has what the test fleet cannot serve: DANE records that do not match and a domain whose
    MTA-STS policy does not cover its MX. The findings are derived by hand below."""

    def test_findings(self):
        A = pgfleet.A
        want = {
            (A[2], "dane-mismatch"), (A[2], "cert-wrong-name"),
            (A[3], "tls-old-version"), (A[3], "weak-cipher"), (A[3], "cert-self-signed"),
            (A[4], "weak-cipher"), (A[4], "cert-expired"),
            (A[5], "tls-old-version"), (A[5], "weak-cipher"), (A[5], "cert-untrusted"),
            (A[6], "no-starttls"),
            (A[7], "no-starttls"), (A[7], "tamper-mangled-starttls"),
            (A[8], "starttls-refused"), (A[8], "mta-sts-mismatch"),
            (A[9], "starttls-broken"), (A[9], "tamper-injection"),
            (A[16], "starttls-broken"), (A[16], "tamper-starttls-echo"),
            (A[17], "mta-sts-mismatch"),
        }
        tmp = tempfile.mkdtemp(prefix="mxs-findings-hb-")
        try:
            with PgCluster() as pg:
                nets = os.path.join(tmp, "nets.csv")
                with open(nets, "w") as f:
                    f.write("192.0.2.0/24,Doc net,doc@example.net\n2001:db8::/32,Doc v6\n")
                path = os.path.join(tmp, "night1.jsonl")
                write_jsonl(path, pgfleet.night1_results() + pgfleet.night1_domains())
                r = subprocess.run([MXS, "ingest", "-q", "--db", pg.url, "--label", "hb", path],
                                   capture_output=True, text=True, timeout=120)
                self.assertEqual(r.returncode, 0, r.stderr)
                # a scan made before the networks were loaded: attach the set to it
                r = subprocess.run([MXS, "db", "--db", pg.url, "networks", nets, "--scan", "1"],
                                   capture_output=True, text=True, timeout=120)
                self.assertEqual(r.returncode, 0, r.stderr)
                r = subprocess.run([MXS, "findings", "--db", pg.url, "--format", "json"],
                                   capture_output=True, text=True, timeout=120)
                self.assertEqual(r.returncode, EXIT_FOUND, r.stderr)
                doc = json.loads(r.stdout)
                got = {(f["ip"], f["code"]) for g in doc["networks"] for f in g["findings"]}
                self.assertEqual(got, want)
                by = {(f["ip"], f["code"]): (g["network"], f["detail"])
                      for g in doc["networks"] for f in g["findings"]}
                self.assertEqual(by[(A[8], "mta-sts-mismatch")], ("Doc net", "gamma.example"))
                self.assertEqual(by[(A[17], "mta-sts-mismatch")], ("Doc v6", "gamma.example"))
                self.assertEqual(by[(A[9], "tamper-injection")], ("(no network)", "5 bytes"))
                self.assertEqual(by[(A[4], "weak-cipher")][1], "DHE-RSA-AES256-SHA, DH 1024 bits")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
