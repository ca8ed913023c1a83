#!/usr/bin/env python3
"""The fleet's simulated network (docs/fleet.md, "Network"): with --rtt-ms every flight
it sends (greeting, each reply, each TLS handshake flight) arrives one RTT after its
cause; with --stall-share/--drop-share the addresses the truth names stall or reset at
the phase it names, from a raw client and through the real scanner. Loopback only."""

import concurrent.futures
import os
import selectors
import socket
import ssl
import time
import unittest

from fleet import Fleet, truth
import scanrun
from test_fleet import NORMAL_GREETING, Smtp, client_context

RTT = 0.100
# Under the sanitizers and a parallel ctest the fleet answers late, never early: the
# upper bounds are generous, the lower bounds exact.
SLACK = 1.0


class Clock:
    """Seconds from one mark to the next."""

    def __init__(self):
        self.t = time.monotonic()

    def lap(self):
        now = time.monotonic()
        took, self.t = now - self.t, now
        return took


class LatencyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fleet = Fleet(delay_ms=300, rtt_ms=int(RTT * 1000))
        cls.fleet.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.fleet.__exit__(None, None, None)

    def connect(self, behaviour, net=1, fleet=None, **kw):
        fleet = fleet or self.fleet
        c = Smtp(fleet.address(behaviour, net), fleet.port, **kw)
        self.addCleanup(c.close)
        return c

    def assertFlights(self, took, flights, what):
        self.assertGreaterEqual(took, flights * RTT, f"{what}: {took * 1000:.1f} ms")
        self.assertLess(took, flights * RTT + SLACK, f"{what}: {took * 1000:.1f} ms")

    def session(self, behaviour, tls_flights):
        """A whole session; every step timed from the client's request to the full answer.
        Marks are taken before the request (the greeting's before connecting): a client
        preempted right after it would otherwise measure less than the fleet waited."""
        clock = Clock()
        c = self.connect(behaviour)
        self.assertEqual(c.reply()[0], 220)
        self.assertFlights(clock.lap(), 1, "greeting from connecting")
        self.assertEqual(c.command(b"EHLO client.example")[0], 250)
        self.assertFlights(clock.lap(), 1, "EHLO reply")
        self.assertEqual(c.command(b"STARTTLS")[0], 220)
        self.assertFlights(clock.lap(), 1, "STARTTLS reply")
        c.starttls(client_context())
        version = c.sock.version()
        self.assertFlights(clock.lap(), tls_flights, f"{version} handshake")
        self.assertEqual(c.command(b"EHLO client.example")[0], 250)
        self.assertFlights(clock.lap(), 1, "EHLO reply over TLS")
        self.assertEqual(c.command(b"QUIT")[0], 221)
        self.assertFlights(clock.lap(), 1, "QUIT reply")
        self.assertTrue(c.eof())
        return version

    def test_tls12_session_flight_by_flight(self):
        """TLS 1.2: ServerHello..Done, then ChangeCipherSpec+Finished: two flights."""
        self.assertEqual(self.session("starttls-rsa", tls_flights=2), "TLSv1.2")

    def test_tls13_session_flight_by_flight(self):
        """TLS 1.3 is a one-round-trip handshake: one server flight; the client's first
        request rides behind its Finished, so handshake + EHLO is two."""
        c = self.connect("starttls-ecdsa", net=2)
        c.reply()
        c.command(b"EHLO client.example")
        c.command(b"STARTTLS")
        clock = Clock()
        c.starttls(client_context())
        self.assertEqual(c.sock.version(), "TLSv1.3")
        handshake = clock.lap()
        self.assertFlights(handshake, 1, "TLS 1.3 handshake")
        c.command(b"EHLO client.example")
        self.assertFlights(handshake + clock.lap(), 2, "TLS 1.3 handshake + EHLO")

    def test_pipelined_commands_answered_in_one_flight(self):
        """PIPELINING: replies written in one round leave together, one RTT later."""
        c = self.connect("no-starttls")
        c.reply()
        clock = Clock()
        c.send(b"EHLO a\r\nNOOP\r\nRSET\r\n")
        codes = [c.reply()[0] for _ in range(3)]
        self.assertEqual(codes, [250, 250, 250])
        self.assertFlights(clock.lap(), 1, "three pipelined replies")

    def test_delays_add_to_the_behaviour_s_own(self):
        """slow-greeting waits --delay-ms, then the greeting travels one RTT."""
        clock = Clock()
        c = self.connect("slow-greeting")
        self.assertEqual(c.line(), NORMAL_GREETING)
        took = clock.lap()
        self.assertGreaterEqual(took, 0.300 + RTT)
        self.assertLess(took, 0.300 + RTT + SLACK)

    def test_reset_travels_one_rtt(self):
        c = self.connect("reset-after-ehlo")
        c.reply()
        clock = Clock()
        c.send(b"EHLO client.example\r\n")
        with self.assertRaises(ConnectionResetError):
            c.line()
        self.assertFlights(clock.lap(), 1, "RST after EHLO")

    def test_long_line_streams_through_the_delay(self):
        """1 MiB of greeting, held and released in bounded pieces."""
        c = self.connect("long-line", timeout=10)
        self.assertEqual(len(c.line()), 4 + 1024 * 1024 + 2)
        clock = Clock()
        self.assertEqual(c.command(b"EHLO client.example")[0], 250)
        self.assertFlights(clock.lap(), 1, "EHLO after the long line")

    def test_delays_run_concurrently(self):
        """500 connections at once: each greeting one RTT after its connect, not queued
        behind the others (a timer per connection, no sleeping)."""
        n = 500
        sel = selectors.DefaultSelector()
        socks, late = [], []
        try:
            start = time.monotonic()
            # starttls-ecdsa everywhere: last octets that are multiples of the behaviour count
            mult = list(range(0, 256, len(self.fleet.behaviours())))
            for i in range(n):
                s = socket.socket()
                s.setblocking(False)
                t0 = time.monotonic()
                s.connect_ex((f"127.0.{20 + i // len(mult)}.{mult[i % len(mult)]}", self.fleet.port))
                socks.append(s)
                sel.register(s, selectors.EVENT_READ, [t0, bytearray()])
            pending = n
            while pending and time.monotonic() < start + 20:
                for key, _ in sel.select(timeout=1):
                    t0, data = key.data
                    chunk = key.fileobj.recv(1024)
                    data.extend(chunk)
                    if not chunk or data.endswith(b"\r\n"):
                        self.assertEqual(bytes(data), NORMAL_GREETING)
                        late.append(time.monotonic() - t0)
                        sel.unregister(key.fileobj)
                        pending -= 1
            self.assertEqual(pending, 0)
        finally:
            sel.close()
            for s in socks:
                s.close()
        self.assertGreaterEqual(min(late), RTT)
        self.assertLess(time.monotonic() - start, RTT + 2 * SLACK + 1.0)

    def test_jitter_spreads_and_bounds_the_delay(self):
        with Fleet(delay_ms=300, rtt_ms=100, jitter_ms=40, certdir=self.fleet.certdir) as fl:
            took = []
            mult = list(range(0, 256, len(fl.behaviours())))
            for i in range(24):
                clock = Clock()
                c = Smtp(f"127.0.{3 + i // len(mult)}.{mult[i % len(mult)]}", fl.port)
                self.addCleanup(c.close)
                self.assertEqual(c.line(), NORMAL_GREETING)
                took.append(clock.lap())
            self.assertGreaterEqual(min(took), 0.060)
            self.assertLess(max(took), 0.140 + SLACK)
            self.assertGreater(max(took) - min(took), 0.020, took)  # not one fixed delay

    def test_zero_rtt_is_the_plain_fleet(self):
        """No --rtt-ms: nothing held (the replies of the plain fleet come at once)."""
        with Fleet(delay_ms=300, certdir=self.fleet.certdir) as fl:
            clock = Clock()
            c = Smtp(fl.address("starttls-ecdsa"), fl.port)
            self.addCleanup(c.close)
            c.reply()
            c.command(b"EHLO client.example")
            self.assertLess(clock.lap(), RTT)


FAULT_SHARES = dict(stall_share=0.2, drop_share=0.2)
STALL_WAIT = 0.6   # silence this long (30 RTTs) is a stall
FAULT_NET = "127.0.9.0/24"


class FaultTest(unittest.TestCase):
    """Seeded fleet, 20 % stalling and 20 % dropping addresses, a short RTT."""

    @classmethod
    def setUpClass(cls):
        cls.fleet = Fleet(seed=7, delay_ms=200, rtt_ms=20, **FAULT_SHARES)
        cls.fleet.__enter__()
        cls.truth = cls.fleet.truth(FAULT_NET)

    @classmethod
    def tearDownClass(cls):
        cls.fleet.__exit__(None, None, None)

    def test_truth_names_faults_at_every_phase(self):
        kinds = {(t["fault"], t["phase"]) for t in self.truth if "fault" in t}
        for fault in ("stall", "drop"):
            for phase in ("greeting", "ehlo", "starttls", "handshake"):
                self.assertIn((fault, phase), kinds)
        faulted = sum("fault" in t for t in self.truth)
        self.assertGreater(faulted, 256 * 0.25)
        self.assertLess(faulted, 256 * 0.55)
        # Without shares the same addresses have no fault, and the unfaulted ones are
        # unchanged: a fault only ever cuts a session short.
        plain = truth(FAULT_NET, seed=7)
        self.assertFalse(any("fault" in t for t in plain))
        for t, p in zip(self.truth, plain):
            self.assertEqual(t["behaviour"], p["behaviour"])
            if "fault" not in t:
                self.assertEqual(t, p)

    def drive_to(self, t, c):
        """Talk to address t until its fault's phase; return the client."""
        phase = t["phase"]
        if phase == "greeting":
            return
        c.reply()
        if phase == "ehlo":
            c.send(b"EHLO client.example\r\n")
            return
        c.command(b"EHLO client.example")
        c.send(b"STARTTLS\r\n")
        if phase == "starttls":
            return
        self.assertEqual(c.reply()[0], 220)
        time.sleep(0.05)  # anything pipelined behind the 220 (pipelined-injection)
        c.sock.setblocking(False)
        try:
            c.sock.recv(65536)
        except BlockingIOError:
            pass
        c.sock.settimeout(STALL_WAIT)
        c.buf = b""

    def check_fault(self, t):
        c = Smtp(t["ip"], self.fleet.port, timeout=STALL_WAIT)
        try:
            self.drive_to(t, c)
            if t["phase"] == "handshake":
                if t["fault"] == "stall":
                    with self.assertRaises(socket.timeout):
                        client_context().wrap_socket(c.sock)
                else:
                    with self.assertRaises((ConnectionResetError, ssl.SSLError)):
                        client_context().wrap_socket(c.sock)
                return
            if t["fault"] == "stall":
                with self.assertRaises(socket.timeout):
                    c.line()
            else:
                with self.assertRaises(ConnectionResetError):
                    c.line()
        finally:
            c.close()

    def test_raw_client_meets_each_fault(self):
        sample, seen = [], set()
        for t in self.truth:
            key = (t.get("fault"), t.get("phase"))
            if key[0] is not None and key not in seen:
                seen.add(key)
                sample.append(t)
        self.assertEqual(len(sample), 8)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for t, err in zip(sample, pool.map(self.try_fault, sample)):
                with self.subTest(ip=t["ip"], fault=t["fault"], phase=t["phase"]):
                    if err is not None:
                        raise err

    def try_fault(self, t):
        try:
            self.check_fault(t)
        except BaseException as e:  # re-raised in the main thread, per address
            return e
        return None

    def test_scanner_records_what_the_truth_states(self):
        """The real scanner over the /24: every record agrees with the faulted truth."""
        if not os.access(scanrun.MXS_BIN, os.X_OK):
            self.skipTest(f"no scanner at {scanrun.MXS_BIN}")
        # Timeouts well above what a loaded machine (sanitizers, parallel tests) needs for
        # a handshake, so that only the stalls time out; all of those overlap.
        args = scanrun.fleet_args(self.fleet, "--per-net", "1000", "--concurrency", "128",
                                  "--greeting-timeout", "3s", "--timeout", "3s",
                                  "--handshake-timeout", "3s", "--deadline", "8s",
                                  "--retry-delay", "100ms", "--no-transcript", "--seed", "1")
        records, _, _ = scanrun.scan(args, scanrun.targets_for(t["ip"] for t in self.truth),
                                     timeout=60)
        by_ip = {r["ip"]: r for r in records}
        diffs = []
        for t in self.truth:
            r = by_ip.get(t["ip"])
            if r is None:
                diffs.append(f"{t['ip']}: no record")
                continue
            diffs += scanrun.compare_truth(r, t)
            if "phase" in t and r["phase"] != t["phase"]:
                diffs.append(f"{t['ip']} ({t['behaviour']}, {t.get('fault')}): phase want "
                             f"{t['phase']} got {r['phase']}")
        self.assertEqual(diffs, [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
