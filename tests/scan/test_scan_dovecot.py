"""
The imap, imaps, pop3 and pop3s modules against real Dovecot instances on loopback, each
verdict compared with `openssl s_client` (-starttls imap|pop3, or implicit TLS) run by the
test against the same port: the same success or failure, TLS version, cipher and
certificate verification. Dovecot's log is a second witness: every probe logs out
without an authentication attempt. Exit 77 (skipped) where Dovecot cannot run.
"""
import json
import re
import subprocess
import sys
import tempfile
import unittest

import dovecot
from scanrun import scan

PROTOS = ("imap", "imaps", "pop3", "pop3s")
STARTTLS = {"imap": "imap", "pop3": "pop3"}


def targets(dc, protos=PROTOS):
    return "".join(json.dumps({"type": "target", "ip": dc.addr, "port": dc.ports[p], "proto": p,
                               "mx": dc.hostname}) + "\n" for p in protos)


def scan_dovecot(dc, protos=PROTOS):
    recs, err, rc = scan(["--no-default-blocklist", "--ca-file", dc.ca_file,
                          "--ehlo-name", "scanner.mxsurvey.test", "--quiet"], targets(dc, protos))
    assert rc == 0, err
    by = {r["proto"]: r for r in recs}
    assert sorted(by) == sorted(protos), recs
    return by


def s_client(dc, proto, ca_file=None, name=None):
    """openssl s_client's verdict on the same port, trusting ca_file (the server's CA by
    default) and checking name (its hostname): None when no TLS session came up."""
    cmd = ["openssl", "s_client", "-connect", f"{dc.addr}:{dc.ports[proto]}", "-brief",
           "-CAfile", ca_file or dc.ca_file, "-verify_hostname", name or dc.hostname]
    if proto in STARTTLS:
        cmd += ["-starttls", STARTTLS[proto]]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    out = p.stderr + p.stdout
    if "CONNECTION ESTABLISHED" not in out:
        return None
    err = re.search(r"Verification error: (.+)", out)
    return {"version": re.search(r"Protocol version: (\S+)", out).group(1),
            "cipher": re.search(r"Ciphersuite: (\S+)", out).group(1),
            "verified": "Verification: OK" in out,
            "error": err.group(1).strip() if err else None}


class ScanDovecot(unittest.TestCase):
    def same_as_s_client(self, dc, rec):
        ref = s_client(dc, rec["proto"])
        if rec["outcome"] != "success":
            self.assertIsNone(ref, rec)
            return
        self.assertIsNotNone(ref, f"s_client found no TLS where we found {rec['tls']}")
        t = rec["tls"]
        self.assertEqual((t["version"], t["cipher_openssl"]), (ref["version"], ref["cipher"]))
        self.assertEqual(t["trusted"] and t["name_match"], ref["verified"])

    def check_clean_logout(self, dc):
        log = dc.log()
        self.assertNotRegex(log, r"auth failed|Authentication failure|Login: user=")
        self.assertNotIn("rip=127.0.0.1, lip=127.0.0.1", log)   # not counted as a secure local client

    def test_default_plaintext_disabled(self):
        """ssl = yes, disable_plaintext_auth = yes: STARTTLS, no login before it."""
        with dovecot.Dovecot("127.0.210.1") as dc:
            by = scan_dovecot(dc)
            for p in PROTOS:
                rec = by[p]
                self.assertEqual(rec["outcome"], "success", rec["detail"])
                self.assertEqual(rec["phase"], "done")
                self.assertTrue(rec["tls"]["trusted"])
                self.assertTrue(rec["tls"]["name_match"])
                self.assertFalse(rec["auth"]["cleartext"], rec["auth"])
                self.assertEqual(rec["auth"]["mechanisms_tls"], ["PLAIN", "LOGIN"])
                self.assertTrue(rec["auth"]["login_tls"])
                self.same_as_s_client(dc, rec)
            imap = by["imap"]
            self.assertIn("STARTTLS", imap["ehlo"]["extensions"])
            self.assertIn("LOGINDISABLED", imap["ehlo"]["extensions"])
            self.assertEqual(imap["ehlo"]["verb"], "CAPABILITY")
            self.assertEqual(imap["auth"]["mechanisms"], [])
            self.assertFalse(imap["auth"]["login"])
            self.assertRegex(imap["greeting"]["lines"][0], r"^\* OK .*Dovecot")
            self.assertEqual(by["pop3"]["ehlo"]["verb"], "CAPA")
            self.assertIn("STLS", by["pop3"]["ehlo"]["extensions"])
            self.assertNotIn("USER", by["pop3"]["ehlo"]["extensions"])
            for p in ("imaps", "pop3s"):
                self.assertIsNone(by[p]["ehlo"])
                self.assertIsNone(by[p]["starttls"])
            self.check_clean_logout(dc)

    def test_plaintext_allowed(self):
        """disable_plaintext_auth = no: LOGIN, USER and PLAIN before TLS, the finding."""
        with dovecot.Dovecot("127.0.210.2", disable_plaintext_auth=False) as dc:
            by = scan_dovecot(dc)
            for p in ("imap", "pop3"):
                a = by[p]["auth"]
                self.assertEqual(by[p]["outcome"], "success", by[p]["detail"])
                self.assertTrue(a["cleartext"], a)
                self.assertTrue(a["login"], a)
                self.assertEqual(a["mechanisms"], ["PLAIN", "LOGIN"])
                self.same_as_s_client(dc, by[p])
            for p in ("imaps", "pop3s"):
                self.assertFalse(by[p]["auth"]["cleartext"])
            self.assertNotIn("LOGINDISABLED", by["imap"]["ehlo"]["extensions"])
            self.assertIn("USER", by["pop3"]["ehlo"]["extensions"])

    def test_ssl_required(self):
        """ssl = required: STARTTLS works, nothing offered for login before it."""
        with dovecot.Dovecot("127.0.210.3", ssl="required") as dc:
            by = scan_dovecot(dc)
            for p in PROTOS:
                self.assertEqual(by[p]["outcome"], "success", by[p]["detail"])
                self.assertFalse(by[p]["auth"]["cleartext"])
                self.same_as_s_client(dc, by[p])

    def test_implicit_tls_only(self):
        """Only 993 and 995 listen: the STARTTLS ports refuse the connection."""
        with dovecot.Dovecot("127.0.210.4", implicit_only=True) as dc:
            by = scan_dovecot(dc)
            for p in ("imap", "pop3"):
                self.assertEqual(by[p]["outcome"], "connection-refused")
                self.same_as_s_client(dc, by[p])
            for p in ("imaps", "pop3s"):
                self.assertEqual(by[p]["outcome"], "success", by[p]["detail"])
                self.same_as_s_client(dc, by[p])

    def test_no_tls(self):
        """ssl = no: no STARTTLS, no STLS; the implicit ports fail the handshake."""
        with dovecot.Dovecot("127.0.210.5", ssl="no", disable_plaintext_auth=False) as dc:
            by = scan_dovecot(dc, ("imap", "pop3"))
            for p in ("imap", "pop3"):
                self.assertEqual(by[p]["outcome"], "no-starttls", by[p]["detail"])
                self.assertEqual(by[p]["phase"], "ehlo")
                self.assertIsNone(by[p]["tls"])
                self.assertTrue(by[p]["auth"]["cleartext"])
                self.same_as_s_client(dc, by[p])

    def test_certificate_verdicts_against_s_client(self):
        """The failing verdicts too: a CA the scanner does not trust (Dovecot sends its CA
        in the chain: s_client's "self-signed certificate in certificate chain", X509_V_ERR
        19), a name the certificate does not
        carry (hostname mismatch: trusted, no name match), an RSA leaf; each side given
        the same CA file and name."""
        with dovecot.Dovecot("127.0.210.10") as dc, \
                dovecot.Dovecot("127.0.210.11", key_type="rsa") as other:
            cases = [(dc, other.ca_file, dc.hostname, "self-signed certificate in certificate chain"),
                     (dc, dc.ca_file, "imap.wrong-name.test", "hostname mismatch"),
                     (other, other.ca_file, other.hostname, None)]
            for server, ca, name, error in cases:
                text = "".join(json.dumps({"type": "target", "ip": server.addr, "port": server.ports[p],
                                           "proto": p, "mx": name}) + "\n" for p in PROTOS)
                recs, err, rc = scan(["--no-default-blocklist", "--ca-file", ca, "--quiet"], text)
                self.assertEqual(rc, 0, err)
                for rec in recs:
                    ref = s_client(server, rec["proto"], ca, name)
                    t = rec["tls"]
                    self.assertEqual(rec["outcome"], "success", rec["detail"])
                    self.assertEqual((t["version"], t["cipher_openssl"]), (ref["version"], ref["cipher"]))
                    self.assertEqual(t["trusted"] and t["name_match"], ref["verified"], (rec, ref))
                    self.assertEqual(ref["error"], error)
                    if error == "hostname mismatch":
                        self.assertEqual((t["trusted"], t["name_match"]), (True, False))
                    elif error:
                        self.assertEqual((t["trusted"], t["verify_code"]), (False, 19))
                    else:
                        self.assertEqual(t["chain"][0]["key_type"], "RSA")

    def test_cli_proto_and_ports(self):
        """--proto for a bare address list (its port unless --port), --ports expands a line."""
        with dovecot.Dovecot("127.0.210.6") as dc:
            common = ["--no-default-blocklist", "--ca-file", dc.ca_file, "--quiet"]
            recs, err, _ = scan(common + ["--proto", "pop3", "--port", str(dc.ports["pop3"])],
                                f"{dc.addr},{dc.hostname}\n")
            self.assertEqual([(r["proto"], r["port"], r["outcome"]) for r in recs],
                             [("pop3", dc.ports["pop3"], "success")])
            recs, err, _ = scan(common + ["--proto", "imaps", "--ports",
                                          f"{dc.ports['imaps']},{dc.ports['imap']}"],
                                f"{dc.addr},{dc.hostname}\n")
            got = sorted((r["port"], r["proto"], r["outcome"]) for r in recs)
            self.assertEqual(got, sorted([(dc.ports["imaps"], "imaps", "success"),
                                          (dc.ports["imap"], "imaps", "handshake-error")]))
            # without --proto each port takes the protocol it is the default port of
            recs, err, _ = scan(common + ["--ports", "993,587"], "127.0.210.7\n")
            self.assertEqual(sorted((r["port"], r["proto"]) for r in recs),
                             [(587, "submission"), (993, "imaps")])
            p = subprocess.run([scan.__globals__["MXS_BIN"], "scan", "--proto", "smtps"],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("unknown --proto 'smtps'", p.stderr)

    def test_sni_probe_keeps_protocol(self):
        """A further name of an imaps or pop3s address gets its follow-up SNI probe
        (--sni all) in the target's protocol, not in the scan's (smtp)."""
        with dovecot.Dovecot("127.0.210.10") as dc:
            lines = ""
            for p in ("imaps", "pop3s", "imap"):
                for name in (dc.hostname, "other.fleet.test"):
                    lines += json.dumps({"type": "target", "ip": dc.addr, "port": dc.ports[p],
                                         "proto": p, "mx": name}) + "\n"
            recs, err, rc = scan(["--no-default-blocklist", "--ca-file", dc.ca_file, "--quiet",
                                  "--sni", "all", "--greeting-timeout", "5"], lines)
            self.assertEqual(rc, 0, err)
            results = {r["port"]: r for r in recs if r["type"] == "result"}
            names = {r["port"]: r for r in recs if r["type"] == "name"}
            for p in ("imaps", "pop3s", "imap"):
                port = dc.ports[p]
                self.assertEqual(results[port]["proto"], p)
                self.assertEqual(results[port]["outcome"], "success", results[port])
                n = names[port]
                self.assertEqual((n["name"], n["probe"], n["sni"], n["outcome"]),
                                 ("other.fleet.test", "sni", "other.fleet.test", "success"), n)
                # Dovecot has one certificate: the same leaf, not valid for the other name
                self.assertEqual(n["leaf_sha256"], results[port]["tls"]["chain"][0]["sha256"])
                self.assertFalse(n["name_match"])

    def test_resumed_name_keeps_protocol(self):
        """--resume: a new name of an imaps or pop3s address done in an earlier run is judged
        on a probe in the target's protocol: the SNI probe (--sni all) and the probe that
        fetches the certificate again (--sni none), not probes in the scan's smtp."""
        with dovecot.Dovecot("127.0.210.21") as dc, tempfile.TemporaryDirectory() as tmp:
            def lines(names):
                return "".join(json.dumps({"type": "target", "ip": dc.addr, "port": dc.ports[p],
                                           "proto": p, "mx": name}) + "\n"
                               for p in ("imaps", "pop3s") for name in names)
            for sni in ("all", "none"):
                out = f"{tmp}/{sni}.jsonl"
                common = ["--no-default-blocklist", "--ca-file", dc.ca_file, "--quiet",
                          "--sni", sni, "--greeting-timeout", "5", "-o", out]
                _, err, rc = scan(common, lines([dc.hostname]))
                self.assertEqual(rc, 0, err)
                _, err, rc = scan(common + ["--resume"], lines([dc.hostname, "other.fleet.test"]))
                self.assertEqual(rc, 0, err)
                with open(out) as f:
                    recs = [json.loads(l) for l in f]
                self.assertEqual(sorted((r["proto"], r["outcome"]) for r in recs
                                        if r["type"] == "result"),
                                 [("imaps", "success"), ("pop3s", "success")], sni)
                results = {r["port"]: r for r in recs if r["type"] == "result"}
                names = {r["port"]: r for r in recs if r["type"] == "name"}
                for p in ("imaps", "pop3s"):
                    port = dc.ports[p]
                    n = names[port]
                    want = ("sni", "other.fleet.test") if sni == "all" else ("address", dc.hostname)
                    self.assertEqual((n["name"], n["outcome"], n["probe"], n["sni"]),
                                     ("other.fleet.test", "success") + want, (sni, n))
                    self.assertEqual(n["leaf_sha256"], results[port]["tls"]["chain"][0]["sha256"])
                    self.assertFalse(n["name_match"])

    def test_service_views(self):
        """--db: the rows carry proto and auth; the v_service_* views count them, and the
        SMTP view v_addr leaves them out."""
        from pg import PgCluster, private_env
        from scanrun import MXS_BIN
        with tempfile.TemporaryDirectory() as tmp, PgCluster() as pg, \
                dovecot.Dovecot("127.0.210.8", disable_plaintext_auth=False) as open_dc, \
                dovecot.Dovecot("127.0.210.9", implicit_only=True) as tls_dc:
            text = targets(open_dc) + targets(tls_dc)
            p = subprocess.run([MXS_BIN, "scan", "--no-default-blocklist", "--ca-file", open_dc.ca_file,
                                "--quiet", "--db", pg.url, "--label", "svc"], input=text.encode(),
                               env=private_env(tmp), capture_output=True, timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr.decode())
            q = lambda sql: pg.query(sql.replace("SCAN", "(SELECT id FROM scans WHERE label = 'svc')"))
            self.assertEqual(q("SELECT proto, count(*) FROM results WHERE scan_id = SCAN "
                               "GROUP BY 1 ORDER BY 1"),
                             [["imap", "2"], ["imaps", "2"], ["pop3", "2"], ["pop3s", "2"]])
            self.assertEqual(q("SELECT count(*) FROM v_addr WHERE scan_id = SCAN"), [["0"]])
            # 127.0.210.8 both ways; 127.0.210.9 implicit only (tls_dc's certificate is
            # signed by another CA: untrusted, counted in v_service_certs)
            self.assertEqual(q("SELECT service, tls_addresses, starttls_only, implicit_only, both_modes, "
                               "implicit_pct FROM v_service_tls_mode WHERE scan_id = SCAN ORDER BY 1"),
                             [["imap", "2", "0", "1", "1", "100.0"], ["pop3", "2", "0", "1", "1", "100.0"]])
            self.assertEqual(q("SELECT proto, with_capabilities, cleartext, login_command, "
                               "plain_or_login_mechanism FROM v_service_cleartext_auth "
                               "WHERE scan_id = SCAN ORDER BY 1"),
                             [["imap", "1", "1", "1", "1"], ["pop3", "1", "1", "1", "1"]])
            self.assertEqual(q("SELECT proto, tls_results, valid, untrusted FROM v_service_certs "
                               "WHERE scan_id = SCAN ORDER BY 1"),
                             [["imap", "1", "1", "0"], ["imaps", "2", "1", "1"],
                              ["pop3", "1", "1", "0"], ["pop3s", "2", "1", "1"]])
            self.assertEqual(q("SELECT proto, tls_version, results FROM v_service_versions "
                               "WHERE scan_id = SCAN ORDER BY 1"),
                             [["imap", "TLSv1.3", "1"], ["imaps", "TLSv1.3", "2"],
                              ["pop3", "TLSv1.3", "1"], ["pop3s", "TLSv1.3", "2"]])
            r = subprocess.run([MXS_BIN, "report", "--db", pg.url, "--format", "json"],
                               env=private_env(tmp), capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            sec = {s["id"]: s for s in json.loads(r.stdout)["sections"]}["services"]
            self.assertEqual(sec["columns"], ["proto", "results", "open", "tls", "tls_pct",
                                              "cleartext_auth", "cert_valid"])
            self.assertEqual(sec["rows"], [["imap", 2, 1, 1, 100.0, 1, 1], ["imaps", 2, 2, 2, 100.0, 0, 1],
                                           ["pop3", 2, 1, 1, 100.0, 1, 1], ["pop3s", 2, 2, 2, 100.0, 0, 1]])


if __name__ == "__main__":
    reason = dovecot.available()
    if reason:
        print(f"SKIP: {reason}")
        sys.exit(77)
    unittest.main(verbosity=2)
