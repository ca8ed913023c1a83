#!/usr/bin/env python3
"""Self-test of mxsurvey-fleet's IMAP, POP3 and implicit-TLS protocols (serve --proto)
from the client side: exact bytes of each dialogue, the tag echoed, STARTTLS/STLS and
implicit TLS, and the behaviours only IMAP and POP3 have (capability floods, a 10 MiB
line, a stalled STARTTLS). Only loopback addresses are touched."""

import os
import socket
import ssl
import subprocess
import sys
import unittest
import warnings

from fleet import Fleet, fleet_binary
from test_fleet import Smtp, client_context

IMAP_CAPS = b"* CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE LITERAL+ STARTTLS LOGINDISABLED\r\n"
IMAP_CAPS_TLS = b"* CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE LITERAL+ AUTH=PLAIN\r\n"
POP3_CAPA = b"+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\n"


class Client(Smtp):
    """Smtp's raw line client, for IMAP and POP3: read(n) takes exactly n bytes."""

    def read(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def lines(self, n):
        return b"".join(self.line() for _ in range(n))

    def implicit_tls(self):
        self.starttls(client_context())


def tls11_context():
    """A client offering TLS 1.0-1.1 only."""
    ctx = client_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    return ctx


class FleetAccess(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fleets = {}
        for p in ("imap", "pop3", "imaps", "pop3s", "submissions"):
            cls.fleets[p] = Fleet(delay_ms=300, proto=p)
            cls.fleets[p].__enter__()

    @classmethod
    def tearDownClass(cls):
        for fl in cls.fleets.values():
            fl.__exit__(None, None, None)

    def connect(self, proto, behaviour, timeout=5.0):
        fl = self.fleets[proto]
        c = Client(fl.address(behaviour), fl.port, timeout=timeout)
        self.addCleanup(c.close)
        return c

    def test_imap_exact_exchange(self):
        c = self.connect("imap", "starttls-ecdsa")
        self.assertEqual(c.line(), b"* OK mx.fleet.test IMAP4rev1 fleet ready\r\n")
        c.send(b"t1 CAPABILITY\r\n")
        self.assertEqual(c.lines(2), IMAP_CAPS + b"t1 OK CAPABILITY completed\r\n")
        c.send(b"t2 NOOP\r\n")
        self.assertEqual(c.line(), b"t2 OK NOOP completed\r\n")
        c.send(b"t2 BOGUS\r\n")
        self.assertEqual(c.line(), b"t2 BAD Unknown command\r\n")
        c.send(b"zz STARTTLS\r\n")
        self.assertEqual(c.line(), b"zz OK Begin TLS negotiation now\r\n")
        c.starttls(client_context())
        self.assertEqual(c.sock.version(), "TLSv1.3")
        c.send(b"t3 CAPABILITY\r\n")
        self.assertEqual(c.lines(2), IMAP_CAPS_TLS + b"t3 OK CAPABILITY completed\r\n")
        c.send(b"t4 STARTTLS\r\n")
        self.assertEqual(c.line(), b"t4 BAD TLS is already active\r\n")
        c.send(b"t5 LOGOUT\r\n")
        self.assertEqual(c.lines(2), b"* BYE Logging out\r\nt5 OK LOGOUT completed\r\n")
        self.assertTrue(c.eof())

    def test_pop3_exact_exchange(self):
        c = self.connect("pop3", "starttls-rsa")
        self.assertEqual(c.line(), b"+OK mx.fleet.test POP3 fleet ready\r\n")
        c.send(b"CAPA\r\n")
        self.assertEqual(c.lines(7), POP3_CAPA + b"STLS\r\n.\r\n")
        c.send(b"STLS\r\n")
        self.assertEqual(c.line(), b"+OK Begin TLS negotiation\r\n")
        c.starttls(client_context())
        self.assertEqual(c.sock.cipher()[0], "ECDHE-RSA-AES128-GCM-SHA256")
        c.send(b"CAPA\r\n")
        self.assertEqual(c.lines(8), POP3_CAPA + b"USER\r\nSASL PLAIN\r\n.\r\n")
        c.send(b"QUIT\r\n")
        self.assertEqual(c.line(), b"+OK Bye\r\n")
        self.assertTrue(c.eof())

    def test_refusal_echo_and_injection(self):
        c = self.connect("imap", "starttls-454")
        c.line()
        c.send(b"a STARTTLS\r\n")
        self.assertEqual(c.line(), b"a NO TLS not available due to local problem\r\n")
        c = self.connect("pop3", "starttls-echo")
        c.line()
        c.send(b"STLS\r\n")
        self.assertEqual(c.line(), b"STLS\r\n")
        c = self.connect("imap", "pipelined-injection")
        c.line()
        c.send(b"x STARTTLS\r\n")
        self.assertEqual(c.lines(2), b"x OK Begin TLS negotiation now\r\n"
                                     b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n")
        c.starttls(client_context())   # TLS follows the planted line
        c.send(b"y CAPABILITY\r\n")
        self.assertEqual(c.line(), IMAP_CAPS_TLS)

    def test_starttls_injection(self):
        """starttls-injection keeps what was pipelined behind STARTTLS/STLS and answers it
        inside TLS; a normal server drops it (the next thing it reads is the handshake)."""
        for proto, cmds, answer in (("imap", b"a STARTTLS\r\nb NOOP\r\n", b"b OK NOOP completed\r\n"),
                                    ("pop3", b"STLS\r\nNOOP\r\n", b"+OK\r\n")):
            c = self.connect(proto, "starttls-injection")
            c.line()
            c.send(cmds)
            c.line()
            c.starttls(client_context())
            self.assertEqual(c.line(), answer, proto)

    def test_no_and_mangled_stls(self):
        c = self.connect("pop3", "no-starttls")
        c.line()
        c.send(b"CAPA\r\n")
        self.assertEqual(c.lines(8), POP3_CAPA + b"USER\r\nSASL PLAIN\r\n.\r\n")
        c.send(b"STLS\r\n")
        self.assertEqual(c.line(), b"-ERR Unknown command\r\n")
        c = self.connect("imap", "mangled-starttls")
        c.line()
        c.send(b"1 CAPABILITY\r\n")
        self.assertEqual(c.line(), IMAP_CAPS.replace(b"STARTTLS", b"XXXXXXXA"))

    def test_capability_flood(self):
        c = self.connect("imap", "capability-flood")
        c.line()
        c.send(b"A1 CAPABILITY\r\n")
        for _ in range(2000):
            self.assertEqual(c.line(), b"* CAPABILITY IMAP4rev1 LITERAL+ flood\r\n")
        c = self.connect("pop3", "capability-flood")
        c.line()
        c.send(b"CAPA\r\n")
        self.assertEqual(c.line(), b"+OK Capability list follows\r\n")
        for _ in range(2000):
            self.assertEqual(c.line(), b"X-FLOOD capability line\r\n")

    def test_huge_line(self):
        c = self.connect("imap", "huge-line", timeout=20)
        c.line()
        c.send(b"A1 CAPABILITY\r\n")
        head = b"* CAPABILITY IMAP4rev1 X-"
        self.assertEqual(c.read(len(head)), head)
        self.assertEqual(c.read(10 * 1024 * 1024), b"A" * (10 * 1024 * 1024))
        self.assertEqual(c.lines(2), b"\r\nA1 OK CAPABILITY completed\r\n")
        c.send(b"A2 LOGOUT\r\n")
        self.assertEqual(c.line(), b"* BYE Logging out\r\n")

    def test_starttls_stall(self):
        c = self.connect("pop3", "starttls-stall", timeout=0.5)
        c.line()
        c.send(b"STLS\r\n")
        with self.assertRaises(socket.timeout):
            c.line()

    def test_early_talker_and_garbage(self):
        c = self.connect("imap", "multiline-greeting")
        self.assertEqual(c.read(len(b"* OK mx.fleet.test")), b"* OK mx.fleet.test")
        c.send(b"A1 CAPABILITY\r\n")   # before the line ended: dropped, as postscreen would
        self.assertTrue(c.eof())
        self.assertTrue(c.buf.endswith(b"* BYE Protocol error: talked too early\r\n"), c.buf)
        c = self.connect("pop3", "garbage")
        self.assertEqual(c.line(), b"\x00\x01\x02garbage\xfe\xff\x1b[2J\x7f\r\n")
        c = self.connect("pop3", "hostile-greeting")
        self.assertEqual(c.line(), b"+OK mx\x00nul\ttab \\back \xff\xfe bad-utf8 POP3\r\n")

    def test_implicit_tls(self):
        c = self.connect("imaps", "starttls-ecdsa")
        c.implicit_tls()
        self.assertEqual(c.line(), b"* OK mx.fleet.test IMAP4rev1 fleet ready\r\n")
        c.send(b"A1 CAPABILITY\r\n")
        self.assertEqual(c.lines(2), IMAP_CAPS_TLS + b"A1 OK CAPABILITY completed\r\n")
        c = self.connect("pop3s", "tls12-only")
        c.implicit_tls()
        self.assertEqual(c.sock.version(), "TLSv1.2")
        self.assertEqual(c.line(), b"+OK mx.fleet.test POP3 fleet ready\r\n")
        c = self.connect("submissions", "no-starttls")   # no STARTTLS needed: TLS came first
        c.implicit_tls()
        self.assertEqual(c.line(), b"220 mx.fleet.test ESMTP fleet\r\n")
        self.assertEqual(c.command(b"EHLO probe.fleet.test")[0], 250)
        c = self.connect("imaps", "capability-flood")   # inside TLS this time
        c.implicit_tls()
        c.line()
        c.send(b"A1 CAPABILITY\r\n")
        for _ in range(500):
            self.assertEqual(c.line(), b"* CAPABILITY IMAP4rev1 LITERAL+ flood\r\n")
        c = self.connect("pop3s", "handshake-garbage")
        with self.assertRaises(Exception):
            c.implicit_tls()

    def test_refused_handshake_alert(self):
        # A version the server refuses gets OpenSSL's protocol_version alert before the
        # close, as from real servers (the legacy probes read it), with implicit TLS too.
        for _ in range(5):
            c = self.connect("pop3s", "starttls-ecdsa")
            with self.assertRaises(ssl.SSLError) as e:
                c.starttls(tls11_context())
            self.assertEqual(e.exception.reason, "TLSV1_ALERT_PROTOCOL_VERSION")
            c = self.connect("imap", "starttls-ecdsa")
            c.line()
            c.send(b"a STARTTLS\r\n")
            self.assertEqual(c.line(), b"a OK Begin TLS negotiation now\r\n")
            with self.assertRaises(ssl.SSLError) as e:
                c.starttls(tls11_context())
            self.assertEqual(e.exception.reason, "TLSV1_ALERT_PROTOCOL_VERSION")

    def test_421_then_ok_after_tls(self):
        fl = self.fleets["imaps"]
        addr = fl.address("421-then-ok", net=7)
        for want in (b"* BYE Too many connections, try again later\r\n",
                     b"* OK mx.fleet.test IMAP4rev1 fleet ready\r\n"):
            c = Client(addr, fl.port)
            self.addCleanup(c.close)
            c.implicit_tls()
            self.assertEqual(c.line(), want)

    def test_usage(self):
        fleet = fleet_binary()
        p = subprocess.run([fleet, "serve", "--port", "0", "--certdir", "/nonexistent", "--proto", "smtps"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown --proto 'smtps'", p.stderr)
        p = subprocess.run([fleet, "truth", "127.0.0.1", "--proto", "imap", "--stall-share", "0.1"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("need --proto smtp or submission", p.stderr)
        p = subprocess.run([fleet, "behaviours", "--proto", "pop3"], capture_output=True, text=True)
        self.assertEqual(len(p.stdout.splitlines()), 40)


if __name__ == "__main__":
    unittest.main(verbosity=2)
