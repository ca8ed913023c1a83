"""
The submission (587-style, STARTTLS) and submissions (465-style, implicit TLS) modules
against Postfix's submission and smtps services from master.cf, authenticating through
a private Dovecot's SASL socket so that AUTH is really advertised. Each verdict is
compared with `openssl s_client` (-starttls smtp, or implicit TLS) on the same port;
Postfix's per-connection tally shows the probe said EHLO, STARTTLS, EHLO, QUIT and never
AUTH. Exit 77 (skipped) where Postfix or Dovecot cannot run.
"""
import json
import re
import subprocess
import sys
import time
import unittest

import dovecot
import postfix
from scanrun import scan

DISCONNECT = re.compile(r"postfix/(submission|smtps)/smtpd\[\d+\]: disconnect from \S+ (ehlo=.*)$", re.M)


def s_client(pf, port, starttls, host):
    cmd = ["openssl", "s_client", "-connect", f"{pf.addr}:{port}", "-brief",
           "-CAfile", pf.ca_file, "-verify_hostname", host]
    if starttls:
        cmd += ["-starttls", "smtp"]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    out = p.stderr + p.stdout
    if "CONNECTION ESTABLISHED" not in out:
        return None
    return (re.search(r"Protocol version: (\S+)", out).group(1),
            re.search(r"Ciphersuite: (\S+)", out).group(1), "Verification: OK" in out)


class ScanSubmission(unittest.TestCase):
    def run_services(self, addr, submission_opts):
        with dovecot.Dovecot(addr.replace("127.0.211.", "127.0.212.")) as dc:
            sasl = {"smtpd_sasl_auth_enable": "yes", "smtpd_sasl_type": "dovecot",
                    "smtpd_sasl_path": dc.auth_socket}
            services = {"submission": {**sasl, **submission_opts},
                        "smtps": {**sasl, "smtpd_tls_wrappermode": "yes"}}
            with postfix.Postfix(addr, services=services) as pf:
                ports = pf.service_ports
                text = "".join(json.dumps({"type": "target", "ip": pf.addr, "port": ports[n],
                                           "proto": p, "mx": pf.myhostname}) + "\n"
                               for n, p in (("submission", "submission"), ("smtps", "submissions")))
                recs, err, rc = scan(["--no-default-blocklist", "--ca-file", pf.ca_file,
                                      "--ehlo-name", "scanner.mxsurvey.test", "--quiet"], text)
                by = {r["proto"]: r for r in recs}
                for proto, name in (("submission", "submission"), ("submissions", "smtps")):
                    rec = by[proto]
                    ref = s_client(pf, ports[name], proto == "submission", pf.myhostname)
                    self.assertEqual(rec["outcome"], "success", rec["detail"])
                    self.assertIsNotNone(ref)
                    t = rec["tls"]
                    self.assertEqual((t["version"], t["cipher_openssl"], t["trusted"] and t["name_match"]), ref)
                # the probe's tally is the first of each service (s_client's came after)
                tallies = {}
                for _ in range(100):
                    tallies = {}
                    for name, tally in DISCONNECT.findall(pf.log()):
                        tallies.setdefault(name, tally)
                    if len(tallies) == 2:
                        break
                    time.sleep(0.1)
                return by, tallies

    def test_auth_only_after_tls(self):
        """smtpd_tls_auth_only = yes (Postfix's submission default): AUTH only inside TLS."""
        by, tallies = self.run_services("127.0.211.1", {"smtpd_tls_security_level": "encrypt",
                                                        "smtpd_tls_auth_only": "yes"})
        sub = by["submission"]
        self.assertFalse(sub["auth"]["cleartext"])
        self.assertEqual(sub["auth"]["mechanisms"], [])
        self.assertEqual(sub["auth"]["mechanisms_tls"], ["PLAIN", "LOGIN"])
        self.assertIn("STARTTLS", sub["ehlo"]["extensions"])
        subs = by["submissions"]
        self.assertIsNone(subs["ehlo"])
        self.assertEqual(subs["greeting"]["code"], 220)
        self.assertEqual(subs["auth"]["mechanisms_tls"], ["PLAIN", "LOGIN"])
        self.assertFalse(subs["auth"]["cleartext"])
        self.assertEqual(tallies, {"submission": "ehlo=2 starttls=1 quit=1 commands=4",
                                   "smtps": "ehlo=1 quit=1 commands=2"})

    def test_auth_in_cleartext(self):
        """smtpd_tls_auth_only = no: AUTH PLAIN LOGIN before STARTTLS, the finding."""
        by, tallies = self.run_services("127.0.211.2", {"smtpd_tls_security_level": "may",
                                                        "smtpd_tls_auth_only": "no"})
        sub = by["submission"]
        self.assertTrue(sub["auth"]["cleartext"])
        self.assertEqual(sub["auth"]["mechanisms"], ["PLAIN", "LOGIN"])
        self.assertFalse(sub["auth"]["login"])
        self.assertEqual(tallies["submission"], "ehlo=2 starttls=1 quit=1 commands=4")


if __name__ == "__main__":
    for reason in (postfix.available(), dovecot.available()):
        if reason:
            print(f"SKIP: {reason}")
            sys.exit(77)
    unittest.main(verbosity=2)
