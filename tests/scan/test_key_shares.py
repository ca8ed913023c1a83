"""
The ClientHello the scanner sends after STARTTLS offers the scanner's groups and one key
share, X25519 (issue 14: never pay for a share the server will not use). OpenSSL 3.5's
default client sends two (X25519MLKEM768 and X25519: ~1.2 KB and a lattice key generation
per handshake that servers without ML-KEM never use); the scanner's explicit group list
keeps one share on 3.0 and 3.5 alike, so records stay the same between the builds.

A scripted SMTP server on loopback answers the greeting, EHLO and STARTTLS, then reads the
ClientHello and closes; the test reads the supported_groups and key_share extensions from
the bytes it received. Runs on every build, including CI's OpenSSL 3.5 one
(-DMXS_OPENSSL=3.5).
"""
import os
import socket
import struct
import threading
import unittest

from scanrun import MXS_BIN, scan

X25519, P256, P384, P521, X448, FFDHE2048, FFDHE3072 = 0x1D, 0x17, 0x18, 0x19, 0x1E, 0x100, 0x101
SCANNER_GROUPS = [X25519, P256, P384, P521, X448, FFDHE2048, FFDHE3072]


def read_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def read_line(conn):
    line = b""
    while not line.endswith(b"\r\n"):
        c = conn.recv(1)
        if not c:
            raise EOFError("closed in a command line")
        line += c
    return line


def client_hello_extensions(conn):
    """{type: body} of the ClientHello's extensions (one handshake message, possibly
    spread over several records)."""
    body = b""
    while len(body) < 4 or len(body) < 4 + int.from_bytes(body[1:4], "big"):
        ctype, _, length = struct.unpack("!BHH", read_exact(conn, 5))
        if ctype != 22:
            raise ValueError(f"record type {ctype}, not a handshake")
        body += read_exact(conn, length)
    if body[0] != 1:
        raise ValueError(f"handshake type {body[0]}, not a ClientHello")
    p = 4 + 2 + 32                      # header, legacy_version, random
    p += 1 + body[p]                    # session id
    p += 2 + int.from_bytes(body[p:p + 2], "big")   # cipher suites
    p += 1 + body[p]                    # compression methods
    end = p + 2 + int.from_bytes(body[p:p + 2], "big")
    p += 2
    exts = {}
    while p < end:
        etype, elen = struct.unpack("!HH", body[p:p + 4])
        exts[etype] = body[p + 4:p + 4 + elen]
        p += 4 + elen
    return exts


def u16s(b):
    return [int.from_bytes(b[i:i + 2], "big") for i in range(0, len(b), 2)]


class HelloCatcher:
    """SMTP up to STARTTLS, then the ClientHello's extensions, for each connection."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.hellos, self.errors = [], []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(20)
                try:
                    conn.sendall(b"220 keyshare.test ESMTP\r\n")
                    while True:
                        cmd = read_line(conn).upper()
                        if cmd.startswith(b"EHLO"):
                            conn.sendall(b"250-keyshare.test\r\n250 STARTTLS\r\n")
                        elif cmd.startswith(b"STARTTLS"):
                            conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
                            self.hellos.append(client_hello_extensions(conn))
                            break
                        elif cmd.startswith(b"QUIT"):
                            conn.sendall(b"221 bye\r\n")
                            break
                        else:
                            conn.sendall(b"502 no\r\n")
                except (OSError, EOFError, ValueError) as e:
                    self.errors.append(repr(e))

    def close(self):
        self.sock.close()


class KeyShares(unittest.TestCase):
    def test_one_x25519_share_all_groups_listed(self):
        srv = HelloCatcher()
        self.addCleanup(srv.close)
        recs, err, _ = scan(["--port", str(srv.port), "--no-default-blocklist", "--quiet",
                             "--ehlo-name", "scanner.mxsurvey.test", "--retries", "0",
                             "--timeout", "5s", "--deadline", "15s"],
                            "127.0.0.1,mx.keyshare.test\n", check=False)
        self.assertEqual(len(recs), 1, err[-2000:])
        self.assertEqual(srv.errors, [])
        self.assertGreaterEqual(len(srv.hellos), 1, recs)
        for exts in srv.hellos:
            self.assertIn(0x000A, exts, "no supported_groups extension")
            self.assertIn(0x0033, exts, "no key_share extension")
            groups = u16s(exts[0x000A][2:])
            self.assertEqual(groups, SCANNER_GROUPS)
            ks, shares, p = exts[0x0033], [], 2
            while p < len(ks):
                group, length = struct.unpack("!HH", ks[p:p + 4])
                shares.append((group, length))
                p += 4 + length
            # one share: X25519's 32-byte public key (3.5's default would add 0x11EC,
            # X25519MLKEM768, 1,216 bytes)
            self.assertEqual(shares, [(X25519, 32)])


if __name__ == "__main__":
    assert os.path.exists(MXS_BIN), MXS_BIN
    unittest.main()
