"""
`resolve --services` against a real test zone (nsd behind unbound) holding the RFC 6186 /
RFC 8314 SRV records of a few domains: priorities and weights, the "." target that means
"not offered", a "." among real targets, a host shared by two domains, two names on one
address; then `scan` of the target lines it wrote against Dovecot (IMAP, POP3) and
Postfix's submission and smtps services on loopback, each line probed with its own
protocol. `--guess-hosts` adds the usual host names where a domain has no SRV record,
marked as guesses. Exit 77 (skipped) where Dovecot, Postfix, nsd or unbound cannot run.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import dns
import dovecot
import postfix
from scanrun import MXS_BIN, scan

SERVICES = ("submission", "submissions", "imap", "imaps", "pop3", "pop3s")
A_MAIL, A_NONE_B, A_POSTFIX, A_NONE_C, A_GUESS = (
    "127.0.213.1", "127.0.213.3", "127.0.213.4", "127.0.213.5", "127.0.213.6")


def zone(dc, pf):
    p, s = dc.ports, pf.service_ports
    z = dns.Zone("svc.test")
    z.add("mail.d1", "A", A_MAIL).add("imap-b.d1", "A", A_NONE_B)
    z.add("imap-c.d1", "A", A_NONE_C).add("smtp.d1", "A", A_POSTFIX)
    z.add("_submission._tcp.d1", "SRV", "0 1 %d smtp.d1.svc.test." % s["submission"])
    z.add("_submissions._tcp.d1", "SRV", "0 1 %d smtp.d1.svc.test." % s["smtps"])
    # written out of order: priority first, then the heavier weight
    z.add("_imap._tcp.d1", "SRV", "10 0 %d imap-c.d1.svc.test." % p["imap"])
    z.add("_imap._tcp.d1", "SRV", "0 10 %d imap-b.d1.svc.test." % p["imap"])
    z.add("_imap._tcp.d1", "SRV", "0 60 %d mail.d1.svc.test." % p["imap"])
    z.add("_imaps._tcp.d1", "SRV", "0 1 %d mail.d1.svc.test." % p["imaps"])
    z.add("_pop3._tcp.d1", "SRV", "0 0 0 .")                      # decidedly not offered
    z.add("_pop3s._tcp.d1", "SRV", "0 1 %d mail.d1.svc.test." % p["pop3s"])
    # no SRV at all; the usual names exist for --guess-hosts
    z.txt("d2", "no SRV records").add("mail.d2", "A", A_GUESS).add("imap.d2", "A", A_GUESS)
    # a "." among real targets is ignored; the host is d1's: no second target line
    z.add("_imaps._tcp.d3", "SRV", "0 0 0 .")
    z.add("_imaps._tcp.d3", "SRV", "5 1 %d mail.d1.svc.test." % p["imaps"])
    # another name on d1's IMAPS address and port: a name line, judged for its own name
    z.add("_imaps._tcp.d5", "SRV", "0 1 %d imap.d5.svc.test." % p["imaps"])
    z.add("imap.d5", "A", A_MAIL)
    return z


def resolve(world, *extra):
    p = subprocess.run([MXS_BIN, "resolve", "--dns-server", world, "--no-policy", "--quiet",
                        "--no-default-blocklist", "--concurrency", "1", "--timeout", "1",
                        *extra], input="d1.svc.test\nd2.svc.test\nd3.svc.test\nd5.svc.test\n",
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return [json.loads(l) for l in p.stdout.splitlines()], p.stderr


class ScanServices(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for mod in (dovecot, postfix):
            reason = mod.available()
            if reason:
                print("skipped:", reason)
                sys.exit(77)
        cls.tmp = tempfile.mkdtemp(prefix="mxs-services-")
        cls.dc = dovecot.Dovecot(A_MAIL, hostname="mail.d1.svc.test").__enter__()
        try:
            cls.pf = postfix.Postfix(A_POSTFIX, myhostname="smtp.d1.svc.test", services={
                "submission": {}, "smtps": {"smtpd_tls_wrappermode": "yes"}}).__enter__()
        except BaseException:
            cls.dc.__exit__(None, None, None)
            raise
        try:
            cls.nsd = dns.Nsd({"svc.test": zone(cls.dc, cls.pf).text()})
            cls.unbound = dns.Unbound({"svc.test.": "127.0.0.1@%d" % cls.nsd.port})
        except BaseException:
            cls.tearDownClass()
            raise
        cls.world = "127.0.0.1:%d" % cls.unbound.port
        cls.ca = os.path.join(cls.tmp, "cas.pem")
        with open(cls.ca, "w") as out:
            for f in (cls.dc.ca_file, cls.pf.ca_file):
                with open(f) as fh:
                    out.write(fh.read())

    @classmethod
    def tearDownClass(cls):
        for what in ("unbound", "nsd"):
            if getattr(cls, what, None) is not None:
                getattr(cls, what).stop()
        cls.pf.__exit__(None, None, None)
        cls.dc.__exit__(None, None, None)

    def test_resolve_services(self):
        recs, err = resolve(self.world, "--services")
        p, s = self.dc.ports, self.pf.service_ports
        targets = [(t["ip"], t["port"], t.get("proto"), t["mx"], t["domains"], t.get("srv"))
                   for t in recs if t["type"] == "target"]
        d1 = ["d1.svc.test"]
        self.assertEqual(targets, [
            (A_POSTFIX, s["submission"], "submission", "smtp.d1.svc.test", d1, {"priority": 0, "weight": 1}),
            (A_POSTFIX, s["smtps"], "submissions", "smtp.d1.svc.test", d1, {"priority": 0, "weight": 1}),
            (A_MAIL, p["imap"], "imap", "mail.d1.svc.test", d1, {"priority": 0, "weight": 60}),
            (A_NONE_B, p["imap"], "imap", "imap-b.d1.svc.test", d1, {"priority": 0, "weight": 10}),
            (A_NONE_C, p["imap"], "imap", "imap-c.d1.svc.test", d1, {"priority": 10, "weight": 0}),
            (A_MAIL, p["imaps"], "imaps", "mail.d1.svc.test", d1, {"priority": 0, "weight": 1}),
            (A_MAIL, p["pop3s"], "pop3s", "mail.d1.svc.test", d1, {"priority": 0, "weight": 1}),
            (A_MAIL, p["imaps"], "imaps", "imap.d5.svc.test", ["d5.svc.test"], {"priority": 0, "weight": 1}),
        ])
        self.assertFalse(any(t.get("guessed") for t in recs if t["type"] == "target"))
        doms = {d["domain"]: d for d in recs if d["type"] == "domain"}
        sv = doms["d1.svc.test"]["services"]
        self.assertEqual(list(sv), list(SERVICES))
        self.assertEqual(sv["pop3"], {"status": "not-offered", "dnssec": False, "hosts": []})
        self.assertEqual([(h["host"], h["priority"], h["weight"], h["status"], h["addrs"], h["guessed"])
                          for h in sv["imap"]["hosts"]],
                         [("mail.d1.svc.test", 0, 60, "ok", [A_MAIL], False),
                          ("imap-b.d1.svc.test", 0, 10, "ok", [A_NONE_B], False),
                          ("imap-c.d1.svc.test", 10, 0, "ok", [A_NONE_C], False)])
        self.assertEqual({k: v["status"] for k, v in doms["d2.svc.test"]["services"].items()},
                         {k: "nxdomain" for k in SERVICES})
        d3 = doms["d3.svc.test"]["services"]["imaps"]
        self.assertEqual((d3["status"], [h["host"] for h in d3["hosts"]]), ("ok", ["mail.d1.svc.test"]))
        self.assertIn("service_targets=8", err)
        # without --services: no SRV lookups, no services key, the lines of before
        plain, _ = resolve(self.world)
        self.assertFalse(any("services" in r or "proto" in r for r in plain))

    def test_scan_services(self):
        """Each target line probed with its own protocol; "." dials nothing."""
        recs, _ = resolve(self.world, "--services")
        text = "".join(json.dumps(r) + "\n" for r in recs if r["type"] == "target")
        out, err, rc = scan(["--no-default-blocklist", "--ca-file", self.ca, "--quiet",
                             "--ehlo-name", "scanner.mxsurvey.test", "--no-transcript"], text)
        self.assertEqual(rc, 0, err)
        res = {(r["ip"], r["port"]): r for r in out if r["type"] == "result"}
        p, s = self.dc.ports, self.pf.service_ports
        got = sorted((ip, port, r["proto"], r["outcome"], r["mx"]) for (ip, port), r in res.items())
        self.assertEqual(got, sorted([
            (A_POSTFIX, s["submission"], "submission", "success", "smtp.d1.svc.test"),
            (A_POSTFIX, s["smtps"], "submissions", "success", "smtp.d1.svc.test"),
            (A_MAIL, p["imap"], "imap", "success", "mail.d1.svc.test"),
            (A_NONE_B, p["imap"], "imap", "connection-refused", "imap-b.d1.svc.test"),
            (A_NONE_C, p["imap"], "imap", "connection-refused", "imap-c.d1.svc.test"),
            (A_MAIL, p["imaps"], "imaps", "success", "mail.d1.svc.test"),
            (A_MAIL, p["pop3s"], "pop3s", "success", "mail.d1.svc.test"),
        ]))
        for r in res.values():
            if r["outcome"] == "success":
                self.assertTrue(r["tls"]["trusted"] and r["tls"]["name_match"], r)
                self.assertIsNotNone(r["auth"], r)
        self.assertNotIn(p["pop3"], [port for _, port in res])
        # the second name on the IMAPS address: its own verdict, not valid for it
        names = [r for r in out if r["type"] == "name"]
        self.assertEqual([(n["ip"], n["port"], n["name"], n["domains"], n["outcome"], n["name_match"])
                          for n in names],
                         [(A_MAIL, p["imaps"], "imap.d5.svc.test", ["d5.svc.test"], "success", False)])

    def test_guess_hosts(self):
        """--guess-hosts: mail./imap./smtp./pop. names where a service has no SRV record,
        marked guessed; never where SRV records exist or say "not offered"."""
        recs, _ = resolve(self.world, "--services", "--guess-hosts")
        guessed = [(t["ip"], t["port"], t["proto"], t["mx"], t["domains"])
                   for t in recs if t["type"] == "target" and t.get("guessed")]
        d2 = ["d2.svc.test"]
        self.assertEqual(guessed, [
            (A_GUESS, 587, "submission", "mail.d2.svc.test", d2),
            (A_GUESS, 465, "submissions", "mail.d2.svc.test", d2),
            (A_GUESS, 143, "imap", "imap.d2.svc.test", d2),
            (A_GUESS, 143, "imap", "mail.d2.svc.test", d2),
            (A_GUESS, 993, "imaps", "imap.d2.svc.test", d2),
            (A_GUESS, 993, "imaps", "mail.d2.svc.test", d2),
            (A_GUESS, 110, "pop3", "mail.d2.svc.test", d2),
            (A_GUESS, 995, "pop3s", "mail.d2.svc.test", d2),
            # d5 publishes IMAPS only: its IMAP is guessed, and imap.d5 exists
            (A_MAIL, 143, "imap", "imap.d5.svc.test", ["d5.svc.test"]),
        ])
        self.assertFalse(any("srv" in t for t in recs if t.get("guessed")))
        doms = {d["domain"]: d for d in recs if d["type"] == "domain"}
        imap = doms["d2.svc.test"]["services"]["imap"]
        self.assertEqual([(h["host"], h["port"], h["priority"], h["guessed"], h["status"])
                          for h in imap["hosts"]],
                         [("imap.d2.svc.test", 143, None, True, "ok"),
                          ("mail.d2.svc.test", 143, None, True, "ok")])
        self.assertEqual(doms["d1.svc.test"]["services"]["pop3"]["hosts"], [])
        self.assertFalse(any(h["guessed"] for h in doms["d1.svc.test"]["services"]["imap"]["hosts"]))
        p = subprocess.run([MXS_BIN, "resolve", "--guess-hosts"], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 2, p.stderr)

    def test_service_db(self):
        """--db: results and name lines carry guessed; per (name, address, protocol)
        certificate verdicts; per-domain service views from the domain lines' mapping."""
        from pg import PgCluster, private_env
        recs, _ = resolve(self.world, "--services", "--guess-hosts")
        text = "".join(json.dumps(r) + "\n" for r in recs)
        with tempfile.TemporaryDirectory() as tmp, PgCluster() as pg:
            p = subprocess.run([MXS_BIN, "scan", "--no-default-blocklist", "--ca-file", self.ca,
                                "--quiet", "--no-transcript", "--db", pg.url, "--label", "svc"],
                               input=text.encode(), env=private_env(tmp), capture_output=True,
                               timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr.decode())
            q = lambda sql: pg.query(sql.replace("SCAN", "(SELECT id FROM scans WHERE label = 'svc')"))
            self.assertEqual(q("SELECT count(*) FILTER (WHERE guessed), count(*) FILTER (WHERE guessed IS NULL) "
                               "FROM results WHERE scan_id = SCAN"), [["7", "7"]])
            self.assertEqual(q("SELECT name, port, guessed FROM result_names WHERE scan_id = SCAN "
                               "ORDER BY port, name"),
                             [["mail.d2.svc.test", "143", "t"], ["mail.d2.svc.test", "993", "t"],
                              ["imap.d5.svc.test", str(self.dc.ports["imaps"]), None]])
            # each SRV target name judged for itself: imap.d5 shares mail.d1's address
            self.assertEqual(q("SELECT proto, tls_pairs, valid, untrusted, name_mismatch, valid_pct "
                               "FROM v_service_name_certs WHERE scan_id = SCAN ORDER BY 1"),
                             [["imap", "1", "1", "0", "0", "100.0"],
                              ["imaps", "2", "1", "0", "1", "50.0"],
                              ["pop3s", "1", "1", "0", "0", "100.0"],
                              ["submission", "1", "1", "0", "0", "100.0"],
                              ["submissions", "1", "1", "0", "0", "100.0"]])
            self.assertEqual(q("SELECT proto, tls_results, valid FROM v_service_certs "
                               "WHERE scan_id = SCAN AND proto = 'imaps'"), [["imaps", "1", "1"]])
            # d1, d3 (mail.d1 too), d5 publish IMAPS; d2 has no SRV (its guesses left out)
            self.assertEqual(q("SELECT domain, srv_status, pairs, tls_pairs, any_tls, all_valid, guessed_pairs "
                               "FROM v_service_domains WHERE scan_id = SCAN AND proto = 'imaps' ORDER BY 1"),
                             [["d1.svc.test", "ok", "1", "1", "t", "t", "0"],
                              ["d2.svc.test", "nxdomain", "0", "0", "f", "f", "2"],
                              ["d3.svc.test", "ok", "1", "1", "t", "t", "0"],
                              ["d5.svc.test", "ok", "1", "1", "t", "f", "0"]])
            self.assertEqual(q("SELECT proto, domains, published, not_offered, no_srv, with_tls, all_valid, "
                               "with_tls_pct, all_valid_pct FROM v_service_domain_summary "
                               "WHERE scan_id = SCAN AND proto IN ('imaps', 'pop3') ORDER BY 1"),
                             [["imaps", "4", "3", "0", "1", "3", "2", "100.0", "66.7"],
                              ["pop3", "4", "0", "1", "3", "0", "0", None, None]])
            self.assertEqual(q("SELECT proto, results, open, tls_ok FROM v_service_guessed "
                               "WHERE scan_id = SCAN ORDER BY 1"),
                             [["imap", "2", "0", "0"], ["imaps", "1", "0", "0"], ["pop3", "1", "0", "0"],
                              ["pop3s", "1", "0", "0"], ["submission", "1", "0", "0"],
                              ["submissions", "1", "0", "0"]])


if __name__ == "__main__":
    unittest.main()
