#!/usr/bin/env python3
"""Each MX name on a shared address gets its own verdict (issue 9).

One fleet address (certificate for *.fleet.test) is used by several MX names: names the
certificate covers and names it does not, with TLSA records (DANE-EE of the served key,
and of another key) and without. The scan must judge each (name, address) pair for its
own name: the first name in the result record, every further name in a name line, with
a follow-up SNI probe for names with TLSA records (--sni needed), for every name (all) or
for none. Then the same target and domain lines, in two different orders, go through
`scan --db`: every statistics view must read the same, and domain figures must follow
each domain's own MX name.

After --resume (file, database, or both), names that reach an address done in the earlier
run still get their verdicts, once in every sink: judged on a certificate fetched again
(the record keeps none), or on an SNI probe per --sni, or at once without TLS."""
import hashlib
import json
import os
import random
import shutil
import subprocess
import tempfile
import unittest

from fleet import Fleet
from pg import PgCluster, private_env

MXS = os.environ["MXS_BIN"]


def spki_sha256(pem_path):
    der = subprocess.run("openssl x509 -in '%s' -pubkey -noout | openssl pkey -pubin -outform DER"
                         % pem_path, shell=True, check=True, stdout=subprocess.PIPE).stdout
    return hashlib.sha256(der).hexdigest()


def target(fl, addr, mx, domain, tlsa=None):
    t = {"type": "target", "ip": addr, "port": fl.port, "mx": mx, "mx_names": [mx],
         "domains": [domain]}
    if tlsa:
        t["tlsa"] = tlsa
        t["tlsa_dnssec"] = True
    return t


def domain_line(fl, domain, rank, mx, addr, tlsa=None):
    return {"type": "domain", "domain": domain, "rank": rank, "status": "ok", "dnssec": True,
            "mx": [{"host": mx, "pref": 10, "cname": None, "status": "ok", "addrs": [addr],
                    "tlsa": tlsa or [], "tlsa_dnssec": bool(tlsa),
                    "tlsa_status": "ok" if tlsa else "nodata"}],
            "mta_sts": None, "tlsrpt": None}


class NameVerdicts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fleet = Fleet().__enter__()
        fl = cls.fleet
        cls.addr = fl.address("starttls-ecdsa")
        good = [{"usage": 3, "selector": 1, "mtype": 1,
                 "data": spki_sha256(os.path.join(fl.certdir, "ecdsa.pem"))}]
        bad = [{"usage": 3, "selector": 1, "mtype": 1, "data": "00" * 32}]
        # (MX name, domain, TLSA): what each name's verdict must be is in EXPECT
        cls.names = [
            ("mx1.fleet.test", "a.example", None),
            ("mx.other.example", "b.example", None),
            ("mx2.fleet.test", "c.example", good),
            ("mx3.other.example", "d.example", good),    # DANE-EE: names do not matter
            ("mx4.fleet.test", "e.example", bad),
        ]
        cls.expect = {  # name -> (name_match, dane match or None)
            "mx1.fleet.test": (True, None), "mx.other.example": (False, None),
            "mx2.fleet.test": (True, True), "mx3.other.example": (False, True),
            "mx4.fleet.test": (True, False),
        }
        cls.targets = [target(fl, cls.addr, mx, d, tl) for mx, d, tl in cls.names]
        cls.domains = [domain_line(fl, d, i + 1, mx, cls.addr, tl)
                       for i, (mx, d, tl) in enumerate(cls.names)]
        cls.tmp = tempfile.mkdtemp(prefix="mxs-names-")

    @classmethod
    def tearDownClass(cls):
        cls.fleet.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def scan(self, lines, *args, env=None):
        text = "".join(json.dumps(x) + "\n" for x in lines)
        p = subprocess.run([MXS, "scan", "--no-default-blocklist", "--ca-file", self.fleet.ca_file,
                            "--ehlo-name", "scanner.fleet.test", "--quiet", "--no-transcript", *args],
                           input=text, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        return [json.loads(x) for x in p.stdout.splitlines()]

    def verdicts(self, out):
        """name -> (name_match, dane match or None, probe) for every pair of the address."""
        v = {}
        for r in out:
            if r["type"] == "result" and r["mx"]:
                d = r["tls"]["dane"]
                v[r["mx"]] = (r["tls"]["name_match"], d["match"] if d else None, "address")
            elif r["type"] == "name":
                d = r["dane"]
                v[r["name"]] = (r["name_match"], d["match"] if d else None, r["probe"])
        return v

    def test_every_name_its_own_verdict(self):
        for mode, sni_probed in (("needed", {"mx2.fleet.test", "mx3.other.example", "mx4.fleet.test"}),
                                 ("all", {n for n, _, _ in self.names[1:]}),
                                 ("none", set())):
            out = self.scan(self.targets, "--sni", mode)
            self.assertEqual([r["type"] for r in out].count("result"), 1, mode)
            self.assertEqual([r["type"] for r in out].count("name"), len(self.names) - 1, mode)
            v = self.verdicts(out)
            self.assertEqual({n: x[:2] for n, x in v.items()}, self.expect, mode)
            self.assertEqual({n for n, x in v.items() if x[2] == "sni"}, sni_probed, mode)
            for r in out:
                if r["type"] == "name":
                    self.assertEqual(r["sni"], r["name"] if r["probe"] == "sni" else "mx1.fleet.test")
                    self.assertEqual((r["outcome"], r["trusted"]), ("success", True))

    def names_of(self, out):
        return sorted(r["name"] for r in out if r["type"] == "name")

    def test_resume_judges_new_names(self):
        """A first run saw mx1 and mx.other.example only; a resumed run with every name
        judges mx2..mx4 (file, database, both), never the first two again, and dials the
        address again only for what needs a certificate."""
        env = private_env(self.tmp)
        with PgCluster() as pg:
            for mode, sinks in (("needed", ("file",)), ("needed", ("db",)), ("none", ("file", "db")),
                                ("all", ("file", "db"))):
                label = "resume-%s-%s" % (mode, "-".join(sinks))
                out = os.path.join(self.tmp, label + ".jsonl")
                args = ["--sni", mode]
                if "file" in sinks:
                    args += ["-o", out]
                if "db" in sinks:
                    args += ["--db", pg.url, "--label", label]
                self.scan(self.targets[:2], *args, env=env)
                p = subprocess.run([MXS, "scan", "--no-default-blocklist", "--ca-file",
                                    self.fleet.ca_file, "--ehlo-name", "scanner.fleet.test",
                                    "--no-transcript", "--resume", *args],
                                   input="".join(json.dumps(x) + "\n" for x in self.targets),
                                   capture_output=True, text=True, env=env)
                self.assertEqual(p.returncode, 0, p.stderr)
                want_names = sorted(n for n, _, _ in self.names[1:])
                if "file" in sinks:
                    with open(out) as f:
                        recs = [json.loads(l) for l in f]
                    self.assertEqual([r["type"] for r in recs].count("result"), 1, label)
                    self.assertEqual(self.names_of(recs), want_names, label)
                    v = self.verdicts(recs)
                    self.assertEqual({n: x[:2] for n, x in v.items()}, self.expect, label)
                    for r in recs:
                        if r["type"] == "name":
                            self.assertEqual(r["sni"], r["name"] if r["probe"] == "sni" else "mx1.fleet.test")
                            self.assertEqual((r["outcome"], r["trusted"]), ("success", True))
                if "db" in sinks:
                    sid = pg.scalar("SELECT id FROM scans WHERE label = '%s'" % label)
                    rows = pg.query("SELECT name, name_match, dane_match FROM result_names"
                                    " WHERE scan_id = %s ORDER BY name" % sid)
                    self.assertEqual([r[0] for r in rows], want_names, label)
                    got = {r[0]: (r[1] == "t", None if r[2] is None else r[2] == "t") for r in rows}
                    self.assertEqual(got, {n: x for n, x in self.expect.items() if n != "mx1.fleet.test"},
                                     label)
                    self.assertEqual(pg.scalar("SELECT count(*) FROM results WHERE scan_id = %s" % sid), "1")
                # what dials the address again: an SNI probe per name --sni asks one for,
                # else one probe for the certificate (the record keeps none)
                sni = {"needed": 3, "all": 3, "none": 0}[mode]
                cert = {"needed": 0, "all": 0, "none": 1}[mode]
                self.assertIn("3 name lines (%d SNI probes)" % sni, p.stderr, label)
                if cert:
                    self.assertIn("%d resumed addresses probed again for their certificate" % cert,
                                  p.stderr, label)
                else:
                    self.assertNotIn("probed again for their certificate", p.stderr, label)

    def test_resume_names_without_tls(self):
        """An address whose probe had no TLS: a name after --resume is judged at once, as
        having no certificate, without dialling it again."""
        addr = self.fleet.address("no-starttls")
        lines = [target(self.fleet, addr, "mxa.fleet.test", "a.example"),
                 target(self.fleet, addr, "mxb.fleet.test", "b.example")]
        out = os.path.join(self.tmp, "notls.jsonl")
        self.scan(lines[:1], "-o", out)
        p = subprocess.run([MXS, "scan", "--no-default-blocklist", "--ehlo-name", "scanner.fleet.test",
                            "--resume", "-o", out],
                           input="".join(json.dumps(x) + "\n" for x in lines),
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out) as f:
            recs = [json.loads(l) for l in f]
        names = [r for r in recs if r["type"] == "name"]
        self.assertEqual(len(names), 1)
        self.assertEqual((names[0]["name"], names[0]["outcome"], names[0]["leaf_sha256"],
                          names[0]["sni"]), ("mxb.fleet.test", "no-starttls", None, "mxa.fleet.test"))
        self.assertIn("0 result records", p.stderr)
        self.assertNotIn("probed again", p.stderr)

    def test_shuffled_input_same_views(self):
        """The same lines in another order: every view reads the same; a domain's
        certificate verdict is its own MX name's, whichever name reached the address first."""
        with PgCluster() as pg:
            env = private_env(self.tmp)
            lines = self.targets + self.domains
            orders = [lines, list(reversed(self.targets)) + self.domains]
            shuffled = lines[:]
            random.Random(9).shuffle(shuffled)
            orders.append(shuffled)
            for i, order in enumerate(orders):
                self.scan(order, "--db", pg.url, "--label", "order%d" % i, env=env)
            ids = [pg.scalar("SELECT id FROM scans WHERE label = 'order%d'" % i)
                   for i in range(len(orders))]
            views = ("v_rates", "v_funnel", "v_cert_outcomes", "v_starttls_support")
            first = None
            for sid in ids:
                got = {v: pg.query("SELECT * FROM %s WHERE scan_id = %s" % (v, sid)) for v in views}
                got = {v: sorted(tuple(c for c in row[1:]) for row in rows) for v, rows in got.items()}
                if first is None:
                    first = got
                else:
                    for v in views:
                        self.assertEqual(got[v], first[v], "%s differs with the input order" % v)
            # cert_valid per domain: a, c, e (names under *.fleet.test) of 5
            self.assertEqual(pg.query(
                "SELECT n_denom, n FROM v_rates WHERE scan_id = %s AND metric = 'cert_valid'"
                " AND level = 'domain' AND rule = 'any_mx' AND bucket = 'all'" % ids[0]),
                [["5", "3"]])
            # DANE per name: c and d match, e does not; a and b have no TLSA records
            self.assertEqual(pg.query(
                "SELECT n_denom, n FROM v_rates WHERE scan_id = %s AND metric = 'dane_match'"
                " AND level = 'domain' AND rule = 'any_mx' AND bucket = 'all'" % ids[0]),
                [["3", "2"]])
            # MX level per name; address level: every name of the address must match
            self.assertEqual(pg.query(
                "SELECT n_denom, n FROM v_rates WHERE scan_id = %s AND metric = 'cert_valid'"
                " AND level = 'mx' AND rule = 'any' AND bucket = 'all'" % ids[0]), [["5", "3"]])
            self.assertEqual(pg.query(
                "SELECT n_denom, n FROM v_rates WHERE scan_id = %s AND metric = 'cert_valid'"
                " AND level = 'address' AND bucket = 'all'" % ids[0]), [["1", "0"]])
            self.assertEqual(pg.scalar("SELECT count(*) FROM result_names WHERE scan_id = %s"
                                       % ids[0]), str(len(self.names) - 1))


if __name__ == "__main__":
    unittest.main(verbosity=2)
