"""
Replies inside TLS longer than one read of the TLS filter. The scanner reads decrypted
data in small pieces (runner.c, TLS_READ_CHUNK: a held connection keeps a 1 KiB input
chain instead of 32 KiB, docs/performance.md "Memory"), so a reply inside TLS arrives
over several reads. Scripted STARTTLS servers on loopback answer the EHLO inside TLS
with:

- long-ehlo: 60 extension lines (about 6 KB) written at once (one TLS record), then QUIT
  is answered: every extension must be in the record, in order;
- split-ehlo: the same lines written one byte per TLS record, slowly: the same record;
- long-line: one line of 6,000 bytes without a line ending (more than SMTP's 4,096):
  the reply-too-long protocol error in phase ehlo_tls, told in the detail of a record
  whose outcome stays success (TLS was reached).

Coverage of what the smaller reads must keep working (the previous build passes too).
"""
import json
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import certs
from scanrun import MXS_BIN

EXTS = ["X-EXT-%02d-%s" % (i, "a" * 80) for i in range(60)]
LONG = b"250 " + b"b" * 6000


def ehlo_reply():
    lines = ["mx.test.example"] + EXTS
    return "".join("250%s%s\r\n" % ("-" if i < len(lines) - 1 else " ", l)
                   for i, l in enumerate(lines)).encode()


class Server:
    """One STARTTLS SMTP server on 127.0.0.1, a free port, one connection at a time."""

    def __init__(self, ctx, mode):
        self.ctx, self.mode = ctx, mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.done = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def stop(self):
        self.done = True
        self.sock.close()

    def serve(self):
        while not self.done:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                self.session(c)
            except (OSError, ssl.SSLError):
                pass
            finally:
                c.close()

    @staticmethod
    def readline(f):
        return f.readline(4096)

    def session(self, c):
        c.settimeout(20)
        f = c.makefile("rb")
        c.sendall(b"220 mx.test.example ESMTP\r\n")
        self.readline(f)                                  # EHLO
        c.sendall(b"250-mx.test.example\r\n250 STARTTLS\r\n")
        self.readline(f)                                  # STARTTLS
        c.sendall(b"220 go ahead\r\n")
        t = self.ctx.wrap_socket(c, server_side=True)
        tf = t.makefile("rb")
        self.readline(tf)                                 # EHLO inside TLS
        if self.mode == "long-ehlo":
            t.sendall(ehlo_reply())
        elif self.mode == "split-ehlo":
            for b in ehlo_reply():
                t.sendall(bytes([b]))
                time.sleep(0.0005)
        else:
            t.sendall(LONG)
            time.sleep(2)
            return
        self.readline(tf)                                 # QUIT
        t.sendall(b"221 bye\r\n")


class TlsReads(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="mxs-tls-reads-")
        cls.addClassCleanup(cls.tmp.cleanup)
        ca, ca_key = certs.make_ca(cls.tmp.name)
        cert, key = certs.make_leaf(cls.tmp.name, ca, ca_key, ["mx.test.example"])
        cls.ca = ca
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        cls.servers = {m: Server(ctx, m) for m in ("long-ehlo", "split-ehlo", "long-line")}
        for s in cls.servers.values():
            cls.addClassCleanup(s.stop)
        targets = "".join(json.dumps({"ip": "127.0.0.1", "port": s.port, "mx": "mx.test.example"})
                          + "\n" for s in cls.servers.values())
        p = subprocess.run([MXS_BIN, "scan", "--no-default-blocklist", "--ca-file", ca,
                            "--ehlo-name", "scanner.mxsurvey.test", "--quiet",
                            "--timeout", "10s", "--handshake-timeout", "10s", "--deadline", "60s"],
                           input=targets.encode(), capture_output=True, timeout=120)
        assert p.returncode == 0, p.stderr.decode()[-2000:]
        recs = [json.loads(l) for l in p.stdout.decode().splitlines()]
        by_port = {r["port"]: r for r in recs if "port" in r and "outcome" in r}
        cls.recs = {m: by_port[s.port] for m, s in cls.servers.items()}

    def check_ehlo(self, rec):
        self.assertEqual(rec["outcome"], "success", rec.get("detail"))
        self.assertTrue(rec["tls"]["trusted"])
        self.assertEqual(rec["ehlo_tls"]["extensions"], EXTS)

    def test_long_ehlo_in_one_record(self):
        self.check_ehlo(self.recs["long-ehlo"])

    def test_ehlo_one_byte_per_record(self):
        self.check_ehlo(self.recs["split-ehlo"])

    def test_long_line_inside_tls(self):
        rec = self.recs["long-line"]
        self.assertEqual(rec["outcome"], "success")   # TLS was reached (docs/record.md)
        self.assertEqual(rec["phase"], "ehlo_tls")
        self.assertEqual(rec["detail"], "after the handshake: protocol-error: reply line too "
                         "long: more than 4096 bytes without a line ending in phase ehlo_tls")
        self.assertIsNone(rec["ehlo_tls"])


if __name__ == "__main__":
    unittest.main()
