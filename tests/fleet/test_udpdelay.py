#!/usr/bin/env python3
"""mxsurvey-udpdelay in front of a real nsd: answers come back --delay-ms (+- jitter)
later, each to the client and query id that asked, thousands in flight, none lost at
--loss-share 0 and about the share lost otherwise. DNS over UDP on loopback only; the
queries are built in Python (dig is not needed)."""

import os
import selectors
import shutil
import socket
import struct
import sys
import time
import unittest

import dns
from fleet import UdpDelay

ZONE = "lat.test"
SLACK = 0.400       # late is allowed (sanitizers, parallel tests), early never


def question(name):
    """The question section of an A query for name (what the answer must echo)."""
    labels = b"".join(bytes([len(l)]) + l.encode() for l in name.split("."))
    return labels + b"\0" + struct.pack(">HH", 1, 1)


def query(qid, name):
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question(name)


class Exchange:
    """Queries from several client sockets at a paced rate, answers read as they come:
    per query the time from sending to its (matching) answer."""

    def __init__(self, addr, port, sockets=4):
        self.dest = (addr, port)
        self.socks = []
        for _ in range(sockets):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
            self.socks.append(s)
        self.sent = {}       # (socket index, qid) -> (send time, question bytes)
        self.took = {}       # (socket index, qid) -> seconds
        self.wrong = []      # answers that did not match what was asked

    def close(self):
        for s in self.socks:
            s.close()

    def _read(self, sel, timeout):
        for key, _ in sel.select(timeout):
            i = key.data
            while True:
                try:
                    data = self.socks[i].recv(4096)
                except BlockingIOError:
                    break
                now = time.monotonic()
                qid, flags = struct.unpack(">HH", data[:4])
                sent = self.sent.get((i, qid))
                if sent is None or not flags & 0x8000 or data[12:12 + len(sent[1])] != sent[1]:
                    self.wrong.append((i, qid, data[:64]))
                elif (i, qid) not in self.took:
                    self.took[(i, qid)] = now - sent[0]

    def run(self, per_socket, rate, wait):
        """Send per_socket queries on every socket (the same ids 0.. on each: only the
        source tells them apart), rate queries per second in all, then wait up to wait
        seconds for the rest of the answers."""
        sel = selectors.DefaultSelector()
        for i, s in enumerate(self.socks):
            sel.register(s, selectors.EVENT_READ, i)
        try:
            start = time.monotonic()
            order = [(i, qid) for qid in range(per_socket) for i in range(len(self.socks))]
            for n, (i, qid) in enumerate(order):
                due = start + n / rate
                while time.monotonic() < due:
                    self._read(sel, 0)
                q = question(f"q{qid}-s{i}.{ZONE}")
                self.sent[(i, qid)] = (time.monotonic(), q)
                self.socks[i].sendto(struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q, self.dest)
            end = time.monotonic() + wait
            while len(self.took) < len(self.sent) and time.monotonic() < end:
                self._read(sel, 0.05)
        finally:
            sel.close()


class UdpDelayTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if shutil.which("nsd") is None:
            raise unittest.SkipTest("nsd is not installed")
        zone = dns.Zone(ZONE).add("*", "A", "127.0.0.2")
        cls.nsd = dns.Nsd({ZONE: zone.text()})
        cls.upstream = ("127.0.0.1", cls.nsd.port)

    @classmethod
    def tearDownClass(cls):
        cls.nsd.stop()

    def exchange(self, ud, **kw):
        ex = Exchange(ud.addr, ud.port, kw.pop("sockets", 4))
        self.addCleanup(ex.close)
        ex.run(**kw)
        self.assertEqual(ex.wrong, [])
        return ex

    def test_answers_come_back_one_delay_later(self):
        direct = Exchange(*self.upstream, sockets=1)
        self.addCleanup(direct.close)
        direct.run(per_socket=20, rate=200, wait=2)
        self.assertEqual(len(direct.took), 20)
        with UdpDelay(self.upstream, delay_ms=100) as ud:
            ex = self.exchange(ud, sockets=1, per_socket=20, rate=200, wait=2)
        self.assertEqual(len(ex.took), 20)
        self.assertGreaterEqual(min(ex.took.values()), 0.100)
        self.assertLess(max(ex.took.values()), 0.100 + max(direct.took.values()) + SLACK)

    def test_thousands_in_flight_none_lost(self):
        """4 clients x 1500 queries with the same ids, at 12,000/s: about 3,600 answers
        are held at once during the 300 ms delay; every one reaches its asker."""
        with UdpDelay(self.upstream, delay_ms=300) as ud:
            ex = self.exchange(ud, sockets=4, per_socket=1500, rate=12000, wait=5)
            ud.stop()
            stats = ud.stats()
        self.assertEqual(len(ex.took), 6000)
        self.assertGreaterEqual(min(ex.took.values()), 0.300)
        self.assertEqual(stats["queries"], 6000)
        self.assertEqual((stats["lost"], stats["overflow"], stats["unmatched"], stats["errors"]),
                         (0, 0, 0, 0))
        self.assertEqual(stats["sent"], 6000)

    def test_loss_share(self):
        with UdpDelay(self.upstream, delay_ms=20, loss_share=0.25, seed=3) as ud:
            ex = self.exchange(ud, sockets=2, per_socket=1000, rate=20000, wait=1.5)
            ud.stop()
            stats = ud.stats()
        self.assertEqual(stats["lost"] + stats["forwarded"], 2000)
        self.assertEqual(len(ex.took), stats["forwarded"])
        self.assertGreater(stats["lost"], 2000 * 0.20)
        self.assertLess(stats["lost"], 2000 * 0.30)

    def test_jitter(self):
        with UdpDelay(self.upstream, delay_ms=100, jitter_ms=50) as ud:
            ex = self.exchange(ud, sockets=1, per_socket=200, rate=2000, wait=2)
        took = list(ex.took.values())
        self.assertEqual(len(took), 200)
        self.assertGreaterEqual(min(took), 0.050)
        self.assertLess(max(took), 0.150 + SLACK)
        self.assertGreater(max(took) - min(took), 0.060)

    def test_stops_cleanly_with_answers_held(self):
        """SIGTERM while answers wait: they are dropped and freed (status 0, no leak)."""
        with UdpDelay(self.upstream, delay_ms=10000) as ud:
            ex = Exchange(ud.addr, ud.port, sockets=1)
            self.addCleanup(ex.close)
            ex.run(per_socket=100, rate=10000, wait=0.3)
            self.assertEqual(ex.took, {})
            self.assertEqual(ud.stop(), 0)
            self.assertEqual(ud.stats()["answers"], 100)


if __name__ == "__main__":
    unittest.main(verbosity=2)
