#!/usr/bin/env python3
"""Self-test of mxsurvey-fleet from the client side: exact bytes, EHLO lists, STARTTLS and
the TLS negotiated, the odd behaviours, and that `truth` agrees with what is served.
Only loopback addresses are touched."""

import concurrent.futures
import os
import resource
import selectors
import socket
import ssl
import subprocess
import sys
import time
import unittest
import warnings

from fleet import Fleet, truth

DELAY_MS = 300
NORMAL_GREETING = b"220 mx.fleet.test ESMTP fleet\r\n"
EXTENSIONS = ["PIPELINING", "SIZE 10240000", "8BITMIME", "STARTTLS", "ENHANCEDSTATUSCODES"]
OUTCOMES = {"success", "no-starttls", "starttls-refused", "handshake-error", "greeting-timeout",
            "greeting-rejected", "ehlo-rejected", "peer-closed", "protocol-error", "deadline"}
EARLY_OUTCOMES = OUTCOMES - {"success", "no-starttls", "starttls-refused", "ehlo-rejected"}
ALWAYS_KEYS = {"ip", "mx", "behaviour", "index", "outcome", "greeting_code", "greeting_lines",
               "ehlo_verb", "ehlo_extensions", "starttls_code", "starttls_echo",
               "plaintext_after_starttls", "mangled_starttls", "tls_version", "cipher",
               "cipher_openssl", "trusted", "name_match", "expired", "self_signed",
               "ehlo_tls_extensions"}


def esc_decode(s):
    """The mxs escape form (docs/record.md) back to bytes."""
    raw, out, i = s.encode("utf-8"), bytearray(), 0
    while i < len(raw):
        if raw[i:i + 2] == b"\\x":
            out.append(int(raw[i + 2:i + 4], 16))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)


def client_context(verify=False):
    """A client like the scanner's default profile: TLS 1.0-1.3, every cipher, level 0."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with warnings.catch_warnings():  # TLS 1.0 is deprecated: offering it is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Smtp:
    """A raw SMTP client that keeps every byte it was sent."""

    def __init__(self, addr, port, timeout=5.0):
        self.sock = socket.create_connection((addr, port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("peer closed")
        self.buf += data

    def line(self):
        while b"\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def reply(self):
        """(code, [raw lines with CRLF]) of one complete reply."""
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if len(line) < 6 or line[3:4] != b"-":
                return int(line[:3]), lines

    def send(self, data):
        self.sock.sendall(data)

    def command(self, cmd):
        self.send(cmd + b"\r\n")
        return self.reply()

    def eof(self):
        """True if the peer closes without sending more."""
        try:
            while True:
                self._fill()
        except EOFError:
            return True

    def starttls(self, ctx, server_hostname=None):
        assert self.buf == b"", f"plaintext left before TLS: {self.buf!r}"
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)


def extensions(lines):
    return [l[4:].rstrip(b"\r\n").decode() for l in lines[1:]]


def probe(addr, port):
    """Talk to addr like a patient scanner; return what a record would show."""
    seen = {}
    c = Smtp(addr, port)
    try:
        code, lines = c.reply()
        if code == 421:  # try again later: the scanner retries once
            c.close()
            c = Smtp(addr, port)
            code, lines = c.reply()
        seen["greeting_code"], seen["greeting_lines"] = code, lines
        code, lines = c.command(b"EHLO probe.fleet.test")
        seen["ehlo_verb"] = "EHLO"
        if code != 250:
            code, lines = c.command(b"HELO probe.fleet.test")
            seen["ehlo_verb"] = "HELO"
        seen["ehlo_extensions"] = extensions(lines)
        if seen["ehlo_verb"] == "EHLO" and "STARTTLS" in seen["ehlo_extensions"]:
            code, lines = c.command(b"STARTTLS")
            seen["starttls_code"] = code
            time.sleep(0.05)  # let anything pipelined behind the 220 arrive
            c.sock.setblocking(False)
            try:
                c.buf += c.sock.recv(65536)
            except BlockingIOError:
                pass
            c.sock.settimeout(5.0)
            seen["plaintext_after_starttls"] = len(c.buf)
            if code == 220:
                c.buf = b""
                c.starttls(client_context())
                seen["tls_version"] = c.sock.version()
                seen["cipher_openssl"] = c.sock.cipher()[0]
                code, lines = c.command(b"EHLO probe.fleet.test")
                seen["ehlo_tls_extensions"] = extensions(lines)
        code, _ = c.command(b"QUIT")
        seen["quit"] = code
    finally:
        c.close()
    return seen


class FleetTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fleet = Fleet(delay_ms=DELAY_MS)
        cls.fleet.__enter__()
        cls.port = cls.fleet.port

    @classmethod
    def tearDownClass(cls):
        cls.fleet.__exit__(None, None, None)

    def connect(self, behaviour, net=1, **kw):
        c = Smtp(self.fleet.address(behaviour, net), self.port, **kw)
        self.addCleanup(c.close)
        return c

    # ---- listing and truth

    def test_behaviours_listing(self):
        rows = self.fleet.behaviours()
        self.assertEqual(len(rows), 37)
        self.assertEqual([r[0] for r in rows], list(range(37)))
        self.assertEqual(rows[0][1], "starttls-ecdsa")
        self.assertEqual(rows[21][1], "pipelined-injection")
        self.assertEqual(rows[29][1], "static-rsa")
        self.assertEqual(rows[36][1], "starttls-injection")

    def test_truth_slash24_well_formed(self):
        rows = self.fleet.truth("127.0.1.0/24")
        names = [r[1] for r in self.fleet.behaviours()]
        self.assertEqual(len(rows), 256)
        for i, t in enumerate(rows):
            self.assertEqual(t["ip"], f"127.0.1.{i}")
            self.assertEqual(t["mx"], f"mx-0-1-{i}.fleet.test")
            self.assertEqual(t["index"], i % 37)
            self.assertEqual(t["behaviour"], names[i % 37])
            self.assertLessEqual(ALWAYS_KEYS, set(t), t["ip"])
            self.assertIn(t["outcome"], OUTCOMES)
            self.assertEqual("phase" in t, t["outcome"] in EARLY_OUTCOMES, t["behaviour"])
            self.assertEqual(t["tls_version"] is not None, t["outcome"] == "success")
            if t["greeting_lines"] is not None:
                self.assertEqual(int(esc_decode(t["greeting_lines"][-1])[:3]), t["greeting_code"])

    def test_truth_matches_served(self):
        """Probe one address per well-behaved behaviour; the truth must describe it."""
        rows = [t for t in self.fleet.truth("127.0.1.0/27")
                if t["outcome"] in ("success", "no-starttls", "starttls-refused", "ehlo-rejected")]
        self.assertGreaterEqual(len(rows), 18)
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            seen = list(pool.map(lambda t: probe(t["ip"], self.port), rows))
        for t, s in zip(rows, seen):
            with self.subTest(behaviour=t["behaviour"]):
                self.assert_probe_matches(t, s)

    def assert_probe_matches(self, t, s):
        self.assertEqual(s["greeting_code"], t["greeting_code"])
        self.assertEqual(s["greeting_lines"],
                         [esc_decode(l) + b"\r\n" for l in t["greeting_lines"]])
        self.assertEqual(s["ehlo_verb"], t["ehlo_verb"])
        self.assertEqual(s["ehlo_extensions"], t["ehlo_extensions"])
        self.assertEqual(s.get("starttls_code"), t["starttls_code"])
        self.assertEqual(s.get("plaintext_after_starttls", 0), t["plaintext_after_starttls"])
        self.assertEqual(s.get("tls_version"), t["tls_version"])
        self.assertEqual(s.get("cipher_openssl"), t["cipher_openssl"])
        self.assertEqual(s.get("ehlo_tls_extensions"), t["ehlo_tls_extensions"])
        self.assertEqual(s["quit"], 221)

    def test_seeded_fleet_is_realistic_and_matches_truth(self):
        with Fleet(seed=7, delay_ms=DELAY_MS, certdir=self.fleet.certdir) as fl:
            rows = fl.truth("127.0.9.0/24")
            self.assertEqual(rows, truth("127.0.9.0/24", seed=7))  # deterministic
            kinds = {t["behaviour"] for t in rows}
            self.assertGreaterEqual(len(kinds), 6)
            normal = sum(t["behaviour"] in ("starttls-ecdsa", "starttls-rsa") for t in rows)
            self.assertGreater(normal, 256 * 0.4)
            sample = [t for t in rows if t["outcome"] in ("success", "no-starttls",
                                                          "starttls-refused", "ehlo-rejected")]
            sample = sample[:40]
            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                seen = list(pool.map(lambda t: probe(t["ip"], fl.port), sample))
            for t, s in zip(sample, seen):
                with self.subTest(ip=t["ip"], behaviour=t["behaviour"]):
                    self.assert_probe_matches(t, s)

    # ---- normal STARTTLS, certificates, versions

    def test_starttls_ecdsa_exact_exchange(self):
        addr = self.fleet.address("starttls-ecdsa")
        c = self.connect("starttls-ecdsa")
        self.assertEqual(c.line(), NORMAL_GREETING)
        code, lines = c.command(b"EHLO client.example")
        self.assertEqual(b"".join(lines),
                         b"250-mx.fleet.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
                         b"250-8BITMIME\r\n250-STARTTLS\r\n250 ENHANCEDSTATUSCODES\r\n")
        self.assertEqual(c.command(b"STARTTLS"), (220, [b"220 2.0.0 Ready to start TLS\r\n"]))
        ctx = client_context(verify=True)
        ctx.load_verify_locations(self.fleet.ca_file)
        c.starttls(ctx, server_hostname=Fleet.mx(addr))
        self.assertEqual(c.sock.version(), "TLSv1.3")
        self.assertEqual(len(c.sock.getpeercert(binary_form=True)) > 0, True)
        code, lines = c.command(b"EHLO client.example")
        self.assertEqual(extensions(lines), [e for e in EXTENSIONS if e != "STARTTLS"])
        self.assertEqual(c.command(b"STARTTLS")[0], 554)
        self.assertEqual(c.command(b"QUIT"), (221, [b"221 2.0.0 Bye\r\n"]))
        self.assertTrue(c.eof())

    def tls_after_starttls(self, behaviour, ctx):
        c = self.connect(behaviour)
        c.reply()
        c.command(b"EHLO client.example")
        self.assertEqual(c.command(b"STARTTLS")[0], 220)
        c.starttls(ctx, server_hostname=Fleet.mx(self.fleet.address(behaviour)))
        return c

    def test_tls_versions_and_ciphers(self):
        expect = {
            "starttls-rsa": ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"),
            "tls10-only": ("TLSv1.1", "ECDHE-ECDSA-AES128-SHA"),
            "tls12-only": ("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256"),
            "dhe-1024": ("TLSv1.2", "DHE-RSA-AES128-GCM-SHA256"),
            "static-rsa": ("TLSv1.2", "AES128-GCM-SHA256"),
        }
        for name, (version, cipher) in expect.items():
            with self.subTest(behaviour=name):
                c = self.tls_after_starttls(name, client_context())
                self.assertEqual((c.sock.version(), c.sock.cipher()[0]), (version, cipher))

    def test_certificate_verification(self):
        expect = {"cert-expired": 10, "cert-self-signed": 18, "cert-wrong-name": 62,
                  "starttls-rsa": None}
        for name, code in expect.items():
            with self.subTest(behaviour=name):
                ctx = client_context(verify=True)
                ctx.load_verify_locations(self.fleet.ca_file)
                if code is None:
                    self.tls_after_starttls(name, ctx)
                    continue
                with self.assertRaises(ssl.SSLCertVerificationError) as cm:
                    self.tls_after_starttls(name, ctx)
                self.assertEqual(cm.exception.verify_code, code)

    # ---- STARTTLS misbehaviour

    def test_starttls_454(self):
        c = self.connect("starttls-454")
        c.reply()
        c.command(b"EHLO client.example")
        self.assertEqual(c.command(b"STARTTLS"),
                         (454, [b"454 4.7.0 TLS not available due to local problem\r\n"]))
        self.assertEqual(c.command(b"QUIT")[0], 221)

    def test_starttls_echo(self):
        c = self.connect("starttls-echo")
        c.reply()
        c.command(b"EHLO client.example")
        c.send(b"STARTTLS\r\n")
        self.assertEqual(c.line(), b"STARTTLS\r\n")

    def test_mangled_starttls(self):
        c = self.connect("mangled-starttls")
        c.reply()
        code, lines = c.command(b"EHLO client.example")
        self.assertIn("XXXXXXXA", extensions(lines))
        self.assertNotIn("STARTTLS", extensions(lines))
        self.assertEqual(c.command(b"STARTTLS")[0], 502)

    def test_pipelined_injection(self):
        c = self.connect("pipelined-injection")
        c.reply()
        c.command(b"EHLO client.example")
        c.send(b"STARTTLS\r\n")
        want = b"220 2.0.0 Ready to start TLS\r\n250 injected\r\n"
        deadline = time.monotonic() + 5
        while len(c.buf) < len(want) and time.monotonic() < deadline:
            c._fill()
        self.assertEqual(c.buf, want)
        c.buf = b""
        c.starttls(client_context())
        self.assertEqual(c.sock.version(), "TLSv1.3")

    def test_handshake_garbage(self):
        c = self.connect("handshake-garbage")
        c.reply()
        c.command(b"EHLO client.example")
        self.assertEqual(c.command(b"STARTTLS")[0], 220)
        with self.assertRaises(ssl.SSLError):
            c.starttls(client_context())

    # ---- greetings

    def test_hostile_greeting_bytes(self):
        c = self.connect("hostile-greeting")
        self.assertEqual(c.line(), b"220 mx\0nul\ttab \\back \xff\xfe bad-utf8 ESMTP\r\n")

    def test_garbage_greeting(self):
        c = self.connect("garbage")
        self.assertEqual(c.line(), b"\x00\x01\x02garbage\xfe\xff\x1b[2J\x7f\r\n")

    def test_multiline_patient_client(self):
        c = self.connect("multiline-greeting")
        start = time.monotonic()
        code, lines = c.reply()
        self.assertGreaterEqual(time.monotonic() - start, DELAY_MS / 1000 * 0.9)
        self.assertEqual(lines, [b"220-mx.fleet.test ESMTP fleet\r\n",
                                 b"220-early talkers are rejected\r\n",
                                 b"220 mx.fleet.test ready\r\n"])
        self.assertEqual(c.command(b"EHLO client.example")[0], 250)

    def test_multiline_early_talker_rejected(self):
        c = self.connect("multiline-greeting", net=2)
        self.assertEqual(c.line(), b"220-mx.fleet.test ESMTP fleet\r\n")
        c.send(b"EHLO too.early\r\n")
        self.assertEqual(c.line(), b"520 5.5.1 Protocol error: talked too early\r\n")
        self.assertTrue(c.eof())

    def test_slow_greeting(self):
        c = self.connect("slow-greeting")
        start = time.monotonic()
        self.assertEqual(c.line(), NORMAL_GREETING)
        self.assertGreaterEqual(time.monotonic() - start, DELAY_MS / 1000 * 0.9)

    def test_tarpit_sends_nothing(self):
        c = self.connect("tarpit", timeout=0.5)
        with self.assertRaises(socket.timeout):
            c.line()

    def test_trickle(self):
        c = self.connect("trickle", timeout=3)
        start, got = time.monotonic(), b""
        while time.monotonic() - start < 1.2:
            got += c.sock.recv(100)
        self.assertIn(len(got), (3, 4))  # one byte every 500 ms, the first at once
        self.assertTrue(b"220 mx.fleet.test ESMTP trickle".startswith(got))

    def test_long_line(self):
        c = self.connect("long-line", timeout=10)
        line = c.line()
        self.assertEqual(len(line), 4 + 1024 * 1024 + 2)
        self.assertEqual(line, b"220 " + b"A" * (1024 * 1024) + b"\r\n")
        self.assertEqual(c.command(b"EHLO client.example")[0], 250)

    def test_endless_multiline(self):
        c = self.connect("endless-multiline")
        for _ in range(1000):
            self.assertEqual(c.line(), b"220-endless continuation line\r\n")

    def test_greeting_421_every_time(self):
        for _ in range(2):
            c = self.connect("greeting-421")
            self.assertEqual(c.line(), b"421 4.7.0 Too many connections, try again later\r\n")
            self.assertTrue(c.eof())

    def test_421_then_ok_per_address(self):
        for net in (3, 4):
            first = self.connect("421-then-ok", net=net)
            self.assertEqual(first.line()[:4], b"421 ")
            self.assertTrue(first.eof())
            again = self.connect("421-then-ok", net=net)
            self.assertEqual(again.line(), NORMAL_GREETING)
            self.assertEqual(again.command(b"EHLO client.example")[0], 250)

    def test_greeting_554(self):
        c = self.connect("greeting-554")
        self.assertEqual(c.line(), b"554 5.7.1 No SMTP service here\r\n")
        self.assertEqual(c.command(b"EHLO client.example")[0], 503)
        self.assertEqual(c.command(b"QUIT")[0], 221)

    def test_unsolicited_data(self):
        c = self.connect("unsolicited-data")
        deadline = time.monotonic() + 5
        want = NORMAL_GREETING + b"250 unsolicited\r\n"
        while len(c.buf) < len(want) and time.monotonic() < deadline:
            c._fill()
        self.assertEqual(c.buf, want)

    def test_close_after_greeting(self):
        c = self.connect("close-after-greeting")
        self.assertEqual(c.line(), NORMAL_GREETING)
        self.assertTrue(c.eof())

    # ---- EHLO misbehaviour

    def test_reset_after_ehlo(self):
        c = self.connect("reset-after-ehlo")
        c.reply()
        c.send(b"EHLO client.example\r\n")
        with self.assertRaises(ConnectionResetError):
            c.line()

    def test_ehlo_reject_helo_ok(self):
        c = self.connect("ehlo-reject")
        c.reply()
        self.assertEqual(c.command(b"EHLO client.example"),
                         (502, [b"502 5.5.2 Error: command not recognized\r\n"]))
        self.assertEqual(c.command(b"HELO client.example"), (250, [b"250 mx.fleet.test\r\n"]))

    # ---- the server itself

    def test_ipv6_loopback(self):
        try:
            c = Smtp("::1", self.port)
        except OSError as e:
            self.skipTest(f"no IPv6 loopback: {e}")
        self.addCleanup(c.close)
        self.assertEqual(c.line(), NORMAL_GREETING)
        [t] = self.fleet.truth("::1")
        self.assertEqual(t["mx"], "mx-v6-1.fleet.test")
        c.command(b"EHLO client.example")
        c.command(b"STARTTLS")
        c.starttls(client_context())
        self.assertEqual(c.sock.version(), t["tls_version"])

    def test_idle_timeout(self):
        with Fleet(delay_ms=DELAY_MS, idle_ms=400, certdir=self.fleet.certdir) as fl:
            c = Smtp(fl.address("starttls-ecdsa"), fl.port)
            self.addCleanup(c.close)
            self.assertEqual(c.line(), NORMAL_GREETING)
            self.assertEqual(c.line()[:10], b"421 4.4.2 ")
            self.assertTrue(c.eof())
            t = Smtp(fl.address("tarpit"), fl.port)
            self.addCleanup(t.close)
            self.assertTrue(t.eof())

    def test_fleet_stops_when_its_harness_dies(self):
        """A test killed outright (ctest timeout) must not leave a fleet behind."""
        child = subprocess.Popen(
            [sys.executable, "-c",
             "import sys, time\nfrom fleet import Fleet\n"
             f"fl = Fleet(certdir={self.fleet.certdir!r}).__enter__()\n"
             "print(fl.proc.pid, flush=True)\ntime.sleep(60)\n"],
            stdout=subprocess.PIPE, text=True)
        self.addCleanup(child.wait)
        fleet_pid = int(child.stdout.readline())
        child.kill()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{fleet_pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        break  # exited; its reaper is init now
            except FileNotFoundError:
                break
            time.sleep(0.05)
        else:
            os.kill(fleet_pid, 9)
            self.fail("the fleet outlived its harness")

    def test_client_misbehaviour_never_hurts_the_fleet(self):
        """Every behaviour, abused: the fleet stays up (under ASan: without a memory error)."""
        junk = os.urandom(200000)

        def rst(s):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()

        def abuse(index):
            addr = f"127.0.5.{index}"
            for how in ("close", "rst", "junk", "long-line", "tls-junk", "tls-abort"):
                try:
                    s = socket.create_connection((addr, self.port), timeout=2)
                    if how == "close":
                        s.close()
                        continue
                    if how == "rst":
                        rst(s)
                        continue
                    if how == "junk":
                        s.sendall(junk)
                    elif how == "long-line":
                        s.sendall(b"EHLO " + b"x" * 10000)
                    else:  # STARTTLS blind, then garbage or half a handshake
                        s.sendall(b"EHLO x\r\nSTARTTLS\r\n")
                        time.sleep(0.05)
                        s.sendall(junk[:3000] if how == "tls-junk" else
                                  b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
                    time.sleep(0.02)
                    rst(s)
                except OSError:
                    pass  # the server hung up first: also fine

        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            list(pool.map(abuse, range(30)))
        c = self.connect("starttls-ecdsa", net=6)
        self.assertEqual(c.line(), NORMAL_GREETING)

    def test_thousands_of_concurrent_connections(self):
        """2000 sessions at once, all greeted, on one event loop."""
        n = 2000
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < n + 100:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 500), hard))
        sel = selectors.DefaultSelector()
        socks = []
        try:
            # all starttls-ecdsa (seed 0: a last octet that is a multiple of the number of
            # behaviours), spread over addresses
            mult = list(range(0, 256, len(self.fleet.behaviours())))
            for i in range(n):
                k = i // len(mult)
                addr = f"127.{k // 200}.{10 + k % 200}.{mult[i % len(mult)]}"
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex((addr, self.port))
                socks.append(s)
                sel.register(s, selectors.EVENT_READ, bytearray())
            pending, deadline = n, time.monotonic() + 20
            while pending and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=1):
                    data = key.fileobj.recv(1024)
                    key.data.extend(data)
                    if not data or key.data.endswith(b"\r\n"):
                        self.assertEqual(bytes(key.data), NORMAL_GREETING)
                        sel.unregister(key.fileobj)
                        pending -= 1
            self.assertEqual(pending, 0)
        finally:
            sel.close()
            for s in socks:
                s.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
