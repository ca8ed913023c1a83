"""
The scanner against a real Postfix on loopback. Postfix's own log is the witness: the
version and cipher the scanner records are the ones Postfix says it negotiated, and its
per-connection command tally shows the probe said EHLO, STARTTLS, EHLO and QUIT, and
nothing else (no MAIL, no early talk). Exit 77 (skipped) where Postfix cannot run.
"""
import re
import sys
import unittest

import postfix
from scanrun import scan

ESTABLISHED = re.compile(r"TLS connection established from \S+: (TLSv[\d.]+) with cipher (\S+)")
# The probe's tally (the harness's own readiness check logs "commands=0/0").
DISCONNECT = re.compile(r"disconnect from \S+ (ehlo=.*)$", re.M)


def scan_postfix(pf, domain="example.test"):
    recs, err, rc = scan(["--port", str(pf.port), "--no-default-blocklist", "--ca-file", pf.ca_file,
                          "--ehlo-name", "scanner.mxsurvey.test", "--quiet"],
                         f"{pf.addr},{pf.myhostname},{domain}\n")
    assert rc == 0, err
    assert len(recs) == 1, recs
    return recs[0]


class ScanPostfix(unittest.TestCase):
    def check_session(self, pf, rec):
        self.assertEqual(rec["outcome"], "success", rec["detail"])
        self.assertEqual(rec["greeting"]["code"], 220)
        self.assertRegex(rec["greeting"]["lines"][-1], r"^220 " + re.escape(pf.myhostname) + " ESMTP")
        ext = rec["ehlo"]["extensions"]
        for want in ("PIPELINING", "8BITMIME", "STARTTLS", "ENHANCEDSTATUSCODES"):
            self.assertIn(want, ext)
        self.assertTrue(any(e.startswith("SIZE ") for e in ext), ext)
        self.assertNotIn("STARTTLS", rec["ehlo_tls"]["extensions"])
        self.assertEqual(rec["starttls"]["code"], 220)
        t = rec["tls"]
        self.assertTrue(t["trusted"], t["verify_reason"])
        self.assertTrue(t["name_match"])
        self.assertFalse(t["self_signed"])
        m = pf.wait_log(ESTABLISHED)
        self.assertEqual((t["version"], t["cipher_openssl"]), (m.group(1), m.group(2)))
        tally = pf.wait_log(DISCONNECT).group(1)
        self.assertEqual(tally, "ehlo=2 starttls=1 quit=1 commands=4")
        self.assertNotIn("improper command pipelining", pf.log())
        return t

    def test_default_postfix_tls13(self):
        with postfix.Postfix("127.0.201.1") as pf:
            t = self.check_session(pf, scan_postfix(pf))
        self.assertEqual(t["version"], "TLSv1.3")
        self.assertEqual(t["chain"][0]["key_type"], "EC")
        self.assertTrue(t["forward_secrecy"])

    def test_postfix_tls12_rsa(self):
        capped = {"smtpd_tls_protocols": ">=TLSv1.2, <=TLSv1.2",
                  "smtpd_tls_mandatory_protocols": ">=TLSv1.2, <=TLSv1.2"}
        with postfix.Postfix("127.0.201.2", key_type="rsa", main_cf=capped) as pf:
            t = self.check_session(pf, scan_postfix(pf))
        self.assertEqual(t["version"], "TLSv1.2")
        self.assertEqual(t["kex"], "ECDHE")
        self.assertEqual(t["chain"][0]["key_type"], "RSA")

    def test_postfix_without_tls(self):
        with postfix.Postfix("127.0.201.3", main_cf={"smtpd_tls_security_level": "none"}) as pf:
            rec = scan_postfix(pf)
            self.assertEqual(rec["outcome"], "no-starttls")
            self.assertIsNone(rec["tls"])
            tally = pf.wait_log(DISCONNECT).group(1)
        self.assertEqual(tally, "ehlo=1 quit=1 commands=2")


if __name__ == "__main__":
    reason = postfix.available()
    if reason:
        print(f"SKIP: {reason}")
        sys.exit(77)
    unittest.main(verbosity=2)
