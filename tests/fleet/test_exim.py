#!/usr/bin/env python3
"""Self-test of tests/lib/exim.py: a private Exim unpacked from its .deb listens on a
loopback address and a free port as an unprivileged user, offers STARTTLS, serves the
certificate of the name sent in SNI (the default one for any other name or none), relays
nothing, and is gone after the `with` block. Exit 77 (skipped) where Exim cannot run."""

import os
import smtplib
import socket
import ssl
import sys
import tempfile
import shutil
import unittest

import certs
import exim


def starttls(smtp, ctx, sni):
    code, _ = smtp.docmd("STARTTLS")
    if code != 220:
        raise AssertionError(f"STARTTLS answered {code}")
    smtp.sock = ctx.wrap_socket(smtp.sock, server_hostname=sni)
    smtp.file = None
    smtp.helo_resp = smtp.ehlo_resp = None
    smtp.esmtp_features = {}
    smtp.does_esmtp = False


def peer_names(sock):
    cert = sock.getpeercert()
    return sorted(v for k, v in cert.get("subjectAltName", ()) if k == "DNS")


class EximTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mxs-exim-test-")
        cls.ca, cls.ca_key = certs.make_ca(cls.tmp)
        cert, key = certs.make_leaf(cls.tmp, cls.ca, cls.ca_key,
                                    ["mx1.exim.test", "mx2.exim.test"], stem="pair")
        cls.sni = {"mx1.exim.test": (cert.replace(".pem", "-chain.pem"), key),
                   "MX2.exim.test": (cert.replace(".pem", "-chain.pem"), key)}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def session(self, ex, sni, check_hostname=True):
        smtp = smtplib.SMTP(timeout=10)
        code, banner = smtp.connect(ex.addr, ex.port)
        self.addCleanup(smtp.close)
        self.assertEqual(code, 220)
        self.assertTrue(banner.startswith(ex.hostname.encode()), banner)
        self.assertEqual(smtp.ehlo("client.exim.test")[0], 250)
        self.assertTrue(smtp.has_extn("starttls"))
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.check_hostname = check_hostname
        starttls(smtp, ctx, sni)
        self.assertEqual(smtp.ehlo("client.exim.test")[0], 250)
        self.assertFalse(smtp.has_extn("starttls"))
        return smtp

    def test_sni_chooses_the_certificate(self):
        with exim.Exim("127.0.201.1", ca_dir=self.tmp, sni=self.sni) as ex:
            # not root: the daemon's user (nobody when the test runs as root)
            with open(f"/proc/{ex.proc.pid}/status") as f:
                uids = [l.split()[1:] for l in f if l.startswith("Uid:")][0]
            self.assertNotIn("0", uids)
            for sni, names in (("mx1.exim.test", ["mx1.exim.test", "mx2.exim.test"]),
                               ("mx2.exim.test", ["mx1.exim.test", "mx2.exim.test"]),
                               ("other.exim.test", [ex.hostname]),
                               (None, [ex.hostname])):
                smtp = self.session(ex, sni, check_hostname=sni == "mx1.exim.test")
                self.assertEqual(peer_names(smtp.sock), names, sni)
                self.assertEqual(smtp.mail("probe@client.exim.test")[0], 250)
                self.assertEqual(smtp.rcpt("someone@example.com")[0], 550)
                self.assertEqual(smtp.quit()[0], 221)
            ex.wait_log(r"SNI=mx1\.exim\.test")
            addr, port = ex.addr, ex.port
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection((addr, port), timeout=2).close()

    def test_two_instances(self):
        with exim.Exim("127.0.201.2") as a, exim.Exim("127.0.201.2", key_type="rsa") as b:
            self.assertNotEqual(a.port, b.port)
            for ex in (a, b):
                smtp = smtplib.SMTP(timeout=10)
                smtp.connect(ex.addr, ex.port)
                self.addCleanup(smtp.close)
                smtp.ehlo("client.exim.test")
                ctx = ssl.create_default_context(cafile=ex.ca_file)
                starttls(smtp, ctx, ex.hostname)
                self.assertEqual(peer_names(smtp.sock), [ex.hostname])
                smtp.quit()


if __name__ == "__main__":
    reason = exim.available()
    if reason:
        print(f"SKIP: {reason}")
        sys.exit(77)
    unittest.main(verbosity=2)
