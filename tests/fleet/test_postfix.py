#!/usr/bin/env python3
"""Self-test of tests/lib/postfix.py: private Postfix instances on loopback offer STARTTLS,
negotiate the TLS version asked for, relay nothing, and are gone after the `with` block.
Exit 77 (skipped) where Postfix cannot run."""

import os
import socket
import smtplib
import ssl
import subprocess
import sys
import threading
import unittest

import postfix
from fleet import fleet_binary


def starttls(smtp, ctx, server_hostname):
    """smtplib's STARTTLS, but with the MX name for SNI and the certificate check
    (smtplib would use the address it dialled)."""
    code, _ = smtp.docmd("STARTTLS")
    if code != 220:
        raise AssertionError(f"STARTTLS answered {code}")
    smtp.sock = ctx.wrap_socket(smtp.sock, server_hostname=server_hostname)
    smtp.file = None
    smtp.helo_resp = smtp.ehlo_resp = None
    smtp.esmtp_features = {}
    smtp.does_esmtp = False


class PostfixTest(unittest.TestCase):
    def session(self, pf):
        """EHLO, STARTTLS verified against pf's CA, EHLO again; returns the SMTP object."""
        smtp = smtplib.SMTP(timeout=10)
        code, banner = smtp.connect(pf.addr, pf.port)
        self.addCleanup(smtp.close)
        self.assertEqual(code, 220)
        self.assertTrue(banner.startswith(pf.myhostname.encode()), banner)
        self.assertEqual(smtp.ehlo("client.fleet.test")[0], 250)
        self.assertTrue(smtp.has_extn("starttls"))
        ctx = ssl.create_default_context(cafile=pf.ca_file)
        starttls(smtp, ctx, pf.myhostname)
        self.assertEqual(smtp.ehlo("client.fleet.test")[0], 250)
        self.assertFalse(smtp.has_extn("starttls"))
        return smtp

    def test_starttls_tls13_and_no_relay(self):
        with postfix.Postfix("127.0.200.1") as pf:
            smtp = self.session(pf)
            self.assertEqual(smtp.sock.version(), "TLSv1.3")
            self.assertEqual(smtp.mail("probe@client.fleet.test")[0], 250)
            self.assertEqual(smtp.rcpt("someone@example.com")[0], 554)
            self.assertEqual(smtp.quit()[0], 221)
            pf.wait_log(r"TLS connection established from \S+: TLSv1\.3")
            addr, port = pf.addr, pf.port
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection((addr, port), timeout=2).close()

    def test_parallel_instances_tls12_and_fleet_ca(self):
        """Two instances at once: one capped at TLS 1.2, one signed by the fleet's CA."""
        certdir = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"mxs-pf-pki-{os.getpid()}")
        subprocess.run([fleet_binary(), "pki", "--certdir", certdir], check=True,
                       capture_output=True)
        self.addCleanup(subprocess.run, ["rm", "-rf", certdir])
        capped = {"smtpd_tls_protocols": ">=TLSv1.2, <=TLSv1.2",
                  "smtpd_tls_mandatory_protocols": ">=TLSv1.2, <=TLSv1.2"}
        results = {}

        def run(name, **kw):
            try:
                with postfix.Postfix(**kw) as pf:
                    smtp = self.session(pf)
                    results[name] = (smtp.sock.version(), pf.ca_file)
                    smtp.quit()
            except Exception as e:  # reported by the main thread
                results[name] = e

        threads = [threading.Thread(target=run, args=("tls12",),
                                    kwargs={"addr": "127.0.200.2", "main_cf": capped}),
                   threading.Thread(target=run, args=("fleet-ca",),
                                    kwargs={"addr": "127.0.200.3", "ca_dir": certdir,
                                            "key_type": "rsa"})]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for name, r in results.items():
            if isinstance(r, Exception):
                raise AssertionError(f"{name}: {r!r}")
        self.assertEqual(results["tls12"][0], "TLSv1.2")
        self.assertEqual(results["fleet-ca"], ("TLSv1.3", os.path.join(certdir, "ca.pem")))


if __name__ == "__main__":
    reason = postfix.available()
    if reason:
        print(f"SKIP: {reason}")
        sys.exit(77)
    unittest.main(verbosity=2)
