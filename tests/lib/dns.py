"""Real DNS servers on loopback for the targets tests and the resolve benchmark.

- Zone: a zone file built in Python (records as presentation text).
- sign_zone(): DNSSEC-sign a zone with ldns-keygen/ldns-signzone; returns the DS for a
  trust anchor.
- Nsd: the authoritative server, serving zones on 127.0.0.1 and a free port.
- Unbound: a validating recursive resolver in front of it, with stub zones and trust
  anchors, so answers for signed data carry the AD bit genuinely.
- SilentUdp: a bound UDP port that never answers (a "server that drops").

Everything lives in a temporary directory and is stopped by stop() (also at exit).
Standard library only; the Debian packages nsd, unbound and ldnsutils provide the rest.
"""
import atexit
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

_live = []


def _cleanup():
    for s in list(_live):
        try:
            s.stop()
        except Exception:
            pass


atexit.register(_cleanup)


def free_port(addr="127.0.0.1"):
    """A port free for both UDP and TCP on addr (checked by binding both)."""
    for _ in range(200):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((addr, 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind((addr, port))
        except OSError:
            t.close()
            continue
        u.close()
        t.close()
        return port
    raise RuntimeError("no free port")


def build_query(name, qtype=1, qid=0x1234, rd=True):
    hdr = struct.pack(">HHHHHH", qid, 0x0100 if rd else 0, 1, 0, 0, 0)
    q = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".") if l)
    return hdr + q + b"\0" + struct.pack(">HH", qtype, 1)


def query(addr, port, name, qtype=1, timeout=0.5):
    """Send one UDP query; return (rcode, flags) or None on timeout."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(build_query(name, qtype), (addr, port))
        data, _ = s.recvfrom(4096)
        flags = struct.unpack(">H", data[2:4])[0]
        return flags & 0xF, flags
    except (socket.timeout, ConnectionRefusedError):
        return None
    finally:
        s.close()


def _wait_ready(addr, port, name, proc, what, deadline=10.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (what, proc.returncode))
        if query(addr, port, name, 6, 0.2) is not None:
            return
        time.sleep(0.05)
    raise RuntimeError("%s did not answer on %s:%d" % (what, addr, port))


class Zone:
    """A zone file: origin, SOA and NS are written for you; add() takes relative or
    absolute owner names and presentation-format data."""

    def __init__(self, origin, ttl=300):
        self.origin = origin.rstrip(".") + "."
        self.ttl = ttl
        self.records = []
        self.add("@", "SOA", "ns1.%s hostmaster.%s 1 3600 600 86400 300" % (self.origin, self.origin))
        self.add("@", "NS", "ns1.%s" % self.origin)
        self.add("ns1", "A", "127.0.0.1")

    def add(self, owner, rtype, data):
        self.records.append((owner, rtype, data))
        return self

    def txt(self, owner, text):
        """TXT with the text split into 255-byte character-strings."""
        raw = text.encode() if isinstance(text, str) else text
        parts = [raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""]
        data = " ".join('"%s"' % "".join(
            chr(c) if 0x20 <= c < 0x7F and c not in (0x22, 0x5C) else "\\%03d" % c for c in p)
            for p in parts)
        return self.add(owner, "TXT", data)

    def text(self):
        lines = ["$ORIGIN %s" % self.origin, "$TTL %d" % self.ttl]
        for owner, rtype, data in self.records:
            lines.append("%s IN %s %s" % (owner, rtype, data))
        return "\n".join(lines) + "\n"


def sign_zone(zone, workdir):
    """Sign zone (a Zone) with a fresh ECDSA P-256 KSK+ZSK. Returns (signed zone text,
    DS record text for the KSK) for an Unbound trust anchor."""
    origin = zone.origin.rstrip(".")
    src = os.path.join(workdir, origin + ".unsigned")
    with open(src, "w") as f:
        f.write(zone.text())

    def keygen(*extra):
        out = subprocess.run(["ldns-keygen", "-a", "ECDSAP256SHA256", *extra, origin],
                             cwd=workdir, check=True, capture_output=True, text=True)
        return out.stdout.strip()

    ksk = keygen("-k")
    zsk = keygen()
    subprocess.run(["ldns-signzone", "-n", "-f", src + ".signed", src, ksk, zsk],
                   cwd=workdir, check=True, capture_output=True, text=True)
    with open(src + ".signed") as f:
        signed = f.read()
    with open(os.path.join(workdir, ksk + ".ds")) as f:
        ds = f.read().strip()
    return signed, ds


class Nsd:
    """nsd serving {origin: zone text} on addr:port (port chosen if None)."""

    def __init__(self, zones, addr="127.0.0.1", port=None, workdir=None, threads=1):
        self.addr = addr
        self.port = port or free_port(addr)
        self.dir = workdir or tempfile.mkdtemp(prefix="mxs-nsd-")
        self._owndir = workdir is None
        conf = [
            "server:",
            "  ip-address: %s@%d" % (addr, self.port),
            "  port: %d" % self.port,
            '  username: ""',
            '  chroot: ""',
            "  zonesdir: %s" % self.dir,
            '  database: ""',
            "  zonelistfile: %s/zone.list" % self.dir,
            "  pidfile: %s/nsd.pid" % self.dir,
            "  xfrdfile: %s/xfrd.state" % self.dir,
            "  xfrdir: %s" % self.dir,
            "  logfile: %s/nsd.log" % self.dir,
            "  server-count: %d" % threads,
            "  verbosity: 0",
            "  hide-version: yes",
            "  do-ip6: no",
            "  tcp-count: 200",
            # response rate limiting (on in Debian's build, 200/s) would throttle the
            # negative answers a survey gets most of: off for tests and benchmarks
            "  rrl-ratelimit: 0",
            "  rrl-whitelist-ratelimit: 0",
            # bursts of thousands of queries overflow the default receive buffer
            "  receive-buffer-size: 4194304",
            "  send-buffer-size: 4194304",
            "remote-control:",
            "  control-enable: no",
        ]
        first = None
        for origin, text in zones.items():
            fn = origin.rstrip(".") + ".zone"
            with open(os.path.join(self.dir, fn), "w") as f:
                f.write(text)
            conf += ["zone:", "  name: %s" % origin.rstrip("."), "  zonefile: %s" % fn]
            first = first or origin
        self.conf = os.path.join(self.dir, "nsd.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(conf) + "\n")
        self.proc = subprocess.Popen(["nsd", "-d", "-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "nsd.stderr"), "w"))
        _live.append(self)
        _wait_ready(addr, self.port, first, self.proc, "nsd")

    def stop(self):
        if self in _live:
            _live.remove(self)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._owndir:
            shutil.rmtree(self.dir, ignore_errors=True)


class Unbound:
    """A validating unbound on addr:port. stubs: {zone: "ip@port"}; anchors: DS texts.

    debian_default=True: as Debian ships it (/etc/unbound/unbound.conf: every server
    setting at its compiled-in default, so 1 thread, num-queries-per-thread 1024,
    outgoing-range 4096, jostle-timeout 200 ms, kernel-default socket buffers,
    qname-minimisation, module-config "subnetcache validator iterator", remote control
    on a local socket) but for what a loopback test cannot do otherwise: its own
    address, port and directory, no daemon, user or chroot, nsd on loopback allowed
    (do-not-query-localhost: no), test. not served as an RFC 6761 empty zone, the
    stubs, and no root trust anchor (the root cannot be reached from a test)."""

    def __init__(self, stubs, anchors=(), addr="127.0.0.1", port=None, workdir=None,
                 debian_default=False):
        self.addr = addr
        self.port = port or free_port(addr)
        self.dir = workdir or tempfile.mkdtemp(prefix="mxs-unbound-")
        self._owndir = workdir is None
        self.ctl = None
        if debian_default:
            self.ctl = os.path.join(self.dir, "unbound.ctl")
            conf = [
                "server:",
                "  interface: %s@%d" % (addr, self.port),
                "  port: %d" % self.port,
                "  do-daemonize: no",
                '  username: ""',
                '  chroot: ""',
                "  directory: %s" % self.dir,
                '  pidfile: ""',
                "  use-syslog: no",
                "  logfile: %s/unbound.log" % self.dir,
                "  do-not-query-localhost: no",
                '  local-zone: "test." nodefault',
            ]
            for ds in anchors:
                conf.append('  trust-anchor: "%s"' % " ".join(ds.split()))
            conf += ["remote-control:", "  control-enable: yes",
                     "  control-interface: %s" % self.ctl]
            self._start(conf, stubs)
            return
        conf = [
            "server:",
            "  interface: %s@%d" % (addr, self.port),
            "  port: %d" % self.port,
            "  do-ip6: no",
            "  do-daemonize: no",
            '  username: ""',
            '  chroot: ""',
            "  directory: %s" % self.dir,
            '  pidfile: ""',
            "  use-syslog: no",
            "  logfile: %s/unbound.log" % self.dir,
            "  verbosity: 1",
            "  num-threads: 1",
            "  so-reuseport: no",
            "  access-control: 127.0.0.0/8 allow",
            # the upstream nsd is on loopback, which unbound refuses by default
            "  do-not-query-localhost: no",
            # RFC 6761 makes test. a locally served empty zone by default
            '  local-zone: "test." nodefault',
            '  module-config: "validator iterator"',
            "  qname-minimisation: no",
            "  val-log-level: 2",
            "  minimal-responses: yes",
        ]
        for ds in anchors:
            conf.append('  trust-anchor: "%s"' % " ".join(ds.split()))
        conf += ["remote-control:", "  control-enable: no"]
        self._start(conf, stubs)

    def _start(self, conf, stubs):
        addr = self.addr
        for zone, target in stubs.items():
            conf += ["stub-zone:", '  name: "%s"' % zone, "  stub-addr: %s" % target]
        self.conf = os.path.join(self.dir, "unbound.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(conf) + "\n")
        subprocess.run(["unbound-checkconf", self.conf], check=True, capture_output=True)
        self.proc = subprocess.Popen(["unbound", "-d", "-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "unbound.stderr"), "w"))
        _live.append(self)
        # readiness: any answer (the probe name is not looked up under a stub)
        _wait_ready(addr, self.port, "localhost", self.proc, "unbound")

    def stats(self):
        """unbound-control stats_noreset as a dict (debian_default only; {} otherwise)."""
        if not self.ctl:
            return {}
        out = subprocess.run(["unbound-control", "-c", self.conf, "stats_noreset"],
                             capture_output=True, text=True)
        return dict(l.split("=", 1) for l in out.stdout.splitlines() if "=" in l)

    def log(self):
        try:
            with open(os.path.join(self.dir, "unbound.log")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self in _live:
            _live.remove(self)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._owndir:
            shutil.rmtree(self.dir, ignore_errors=True)


class SilentUdp:
    """A UDP (and TCP) port that accepts packets and never answers: a dropping server."""

    def __init__(self, addr="127.0.0.1"):
        self.addr = addr
        self.port = free_port(addr)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((addr, self.port))
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((addr, self.port))
        self.tcp.listen(16)
        _live.append(self)

    def stop(self):
        if self in _live:
            _live.remove(self)
        self.udp.close()
        self.tcp.close()
