"""Start and stop mxsurvey-fleet, the simulated internet of SMTP servers (docs/fleet.md).

    with Fleet() as fl:
        addr = fl.address("starttls-ecdsa")       # 127.0.1.0, serves behaviour 0
        ... connect to (addr, fl.port), trust fl.ca_file ...
        truth = fl.truth("127.0.1.0/24")           # list of dicts, one per address

    with Fleet(rtt_ms=100, jitter_ms=10, stall_share=0.01, drop_share=0.01) as fl:
        ...  # every flight held ~100 ms; 1 % of addresses stall, 1 % reset (in the truth)

    with UdpDelay(upstream=("127.0.0.1", nsd.port), delay_ms=50) as ud:
        ... query (ud.addr, ud.port) ...           # answers come back 50 ms later

Standard library only. The binaries are $MXS_BUILD/tests/fleet/mxsurvey-fleet and
mxsurvey-udpdelay.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

EXIT_BIND = 3  # mxsurvey-fleet: the port was taken, try another


def fleet_binary(build_dir=None, name="mxsurvey-fleet"):
    build_dir = build_dir or os.environ.get("MXS_BUILD")
    if not build_dir:
        raise RuntimeError("MXS_BUILD is not set and no build_dir given")
    path = os.path.join(build_dir, "tests", "fleet", name)
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{path} is missing: build the {name} target")
    return path


def share_arg(share):
    """A share (0.0-1.0) in the decimal form the fleet's options take ("0.050000")."""
    if not 0 <= share <= 1:
        raise ValueError(f"share {share} outside [0, 1]")
    return f"{share:.6f}"


def free_port():
    """A TCP port free on 0.0.0.0 right now (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def behaviours(build_dir=None, proto="smtp"):
    """[(index, name, about), ...] in table order (the protocol's: IMAP and POP3 have more)."""
    out = subprocess.run([fleet_binary(build_dir), "behaviours", "--proto", proto], check=True,
                         capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        index, name, about = line.split("\t", 2)
        rows.append((int(index), name, about))
    return rows


def truth(cidr, seed=0, build_dir=None, stall_share=0, drop_share=0, proto="smtp"):
    """Ground truth for every address of cidr: a list of dicts (docs/fleet.md). The
    protocol and the shares of stalling and dropping addresses must be those the fleet
    serves with."""
    args = [fleet_binary(build_dir), "truth", cidr, "--seed", str(seed), "--proto", proto]
    if stall_share or drop_share:
        args += ["--stall-share", share_arg(stall_share), "--drop-share", share_arg(drop_share)]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines()]


class FleetError(RuntimeError):
    pass


class Fleet:
    """A running mxsurvey-fleet on a free port; a context manager.

    certdir: where the test PKI lives (generated if absent); default a private temp dir.
    idle_ms: the fleet's idle timeout (its default 60000 when None).
    rtt_ms, jitter_ms: the simulated round trip (each flight the fleet sends is held that
    long, +- jitter); stall_share, drop_share: fractions of addresses that stop answering
    or reset at one phase (truth() states which). All 0: the fleet as without them.
    port: serve on this port (say, an earlier fleet's, so that two scans hold the same
    (address, port) pairs); default a free one.
    proto: what the fleet speaks: smtp, submission, submissions, imap, imaps, pop3, pop3s.
    On exit the fleet gets SIGTERM and must stop cleanly with status 0 (under the
    sanitizers a leak or error makes that fail); its log is printed if it did not.
    Should this process die without stopping it, the fleet stops by itself (--watch-stdin).
    """

    START_TIMEOUT = 30.0
    STOP_TIMEOUT = 15.0

    def __init__(self, build_dir=None, seed=0, delay_ms=2000, idle_ms=None, certdir=None,
                 verbose=False, rtt_ms=0, jitter_ms=0, stall_share=0, drop_share=0, port=None,
                 proto="smtp"):
        self.binary = fleet_binary(build_dir)
        self.build_dir = build_dir
        self.seed = seed
        self.proto = proto
        self.delay_ms = delay_ms
        self.idle_ms = idle_ms
        self.rtt_ms = rtt_ms
        self.jitter_ms = jitter_ms
        self.stall_share = stall_share
        self.drop_share = drop_share
        self.verbose = verbose
        self._own_certdir = certdir is None
        self.certdir = certdir
        self.want_port = port
        self.port = None
        self.proc = None
        self.tmp = None
        self.log_path = None
        self._log = None
        self._behaviours = None

    # ---- lifecycle

    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix="mxs-fleet-")
        if self._own_certdir:
            self.certdir = os.path.join(self.tmp, "pki")
        self.log_path = os.path.join(self.tmp, "fleet.log")
        try:
            if self.want_port is not None:
                if self._start(self.want_port):
                    return self
                raise FleetError(f"port {self.want_port} is taken")
            for _ in range(5):
                if self._start(free_port()):
                    return self
            raise FleetError("no free port after 5 attempts")
        except BaseException:
            self._cleanup(print_log=True)
            raise

    def __exit__(self, exc_type, exc, tb):
        status = self.stop()
        self._cleanup(print_log=status != 0)
        if status != 0 and exc_type is None:
            raise FleetError(f"mxsurvey-fleet exited with status {status}")
        return False

    def _start(self, port):
        """Start on port; False if the port was taken meanwhile, else raise or True."""
        ready = os.path.join(self.tmp, f"ready.{port}")
        args = [self.binary, "serve", "--port", str(port), "--certdir", self.certdir,
                "--seed", str(self.seed), "--delay-ms", str(self.delay_ms), "--proto", self.proto,
                "--ready-file", ready, "--watch-stdin"]
        if self.idle_ms is not None:
            args += ["--idle-ms", str(self.idle_ms)]
        if self.rtt_ms or self.jitter_ms:
            args += ["--rtt-ms", str(self.rtt_ms), "--jitter-ms", str(self.jitter_ms)]
        if self.stall_share or self.drop_share:
            args += ["--stall-share", share_arg(self.stall_share),
                     "--drop-share", share_arg(self.drop_share)]
        if self.verbose:
            args.append("--verbose")
        self._log = open(self.log_path, "ab")
        # stdin is a pipe we never write: if this process dies, the fleet sees EOF and stops.
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.START_TIMEOUT
        while time.monotonic() < deadline:
            if os.path.exists(ready):
                with open(ready) as f:
                    self.port = int(f.read().strip())
                return True
            status = self.proc.poll()
            if status == EXIT_BIND:
                self.proc.stdin.close()
                self.proc = None
                return False
            if status is not None:
                self.proc.stdin.close()
                self.proc = None
                raise FleetError(f"mxsurvey-fleet exited with status {status} at start")
            time.sleep(0.02)
        raise FleetError(f"mxsurvey-fleet not ready after {self.START_TIMEOUT} s")

    def stop(self):
        """SIGTERM and wait; SIGKILL if it hangs. Returns the exit status (0 when clean)."""
        if self.proc is None:
            return 0
        proc, self.proc = self.proc, None
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    return proc.wait(self.STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    return -signal.SIGKILL
            return proc.returncode
        finally:
            proc.stdin.close()

    def _cleanup(self, print_log):
        if self.proc is not None:
            self.stop()
        if self._log is not None:
            self._log.close()
            self._log = None
        if print_log and self.log_path and os.path.exists(self.log_path):
            with open(self.log_path, errors="replace") as f:
                tail = f.read()[-8000:]
            print(f"---- mxsurvey-fleet log ({self.log_path}):\n{tail}", flush=True)
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def log(self):
        """The fleet's log so far (stderr)."""
        with open(self.log_path, errors="replace") as f:
            return f.read()

    # ---- the simulated internet

    @property
    def ca_file(self):
        return os.path.join(self.certdir, "ca.pem")

    def address(self, behaviour, net=1):
        """An IPv4 address serving behaviour (name or index) with seed 0: 127.0.<net>.<index>.

        Different nets give different addresses with the same behaviour, which matters
        for the per-address 421-then-ok."""
        if self.seed != 0:
            raise FleetError("address() needs seed 0; use truth() to find addresses")
        index = behaviour if isinstance(behaviour, int) else self.index(behaviour)
        return f"127.0.{net}.{index}"

    def behaviours(self):
        """[(index, name, about), ...] in table order (cached)."""
        if self._behaviours is None:
            self._behaviours = behaviours(self.build_dir, self.proto)
        return self._behaviours

    def index(self, name):
        for index, n, _ in self.behaviours():
            if n == name:
                return index
        raise KeyError(name)

    @staticmethod
    def mx(addr):
        """The MX name convention: 127.a.b.c -> mx-a-b-c.fleet.test."""
        a = addr.split(".")
        return f"mx-{a[1]}-{a[2]}-{a[3]}.fleet.test"

    def target(self, addr):
        """A `mxsurvey scan` input line for addr: "ip,mx"."""
        return f"{addr},{self.mx(addr)}"

    def truth(self, cidr):
        return truth(cidr, seed=self.seed, build_dir=self.build_dir,
                     stall_share=self.stall_share, drop_share=self.drop_share, proto=self.proto)


class UdpDelay:
    """A running mxsurvey-udpdelay on addr and a free port, in front of upstream (addr, port);
    a context manager. Answers come back delay_ms +- jitter_ms after the upstream's;
    loss_share of the queries are dropped. On exit: SIGTERM, status 0 checked (leaks
    under the sanitizers fail it); stats() reads the counters of its last log line."""

    START_TIMEOUT = 10.0

    def __init__(self, upstream, addr="127.0.0.1", delay_ms=0, jitter_ms=0, loss_share=0,
                 seed=0, build_dir=None):
        self.binary = fleet_binary(build_dir, "mxsurvey-udpdelay")
        self.upstream = upstream
        self.addr = addr
        self.args = ["--delay-ms", str(delay_ms), "--jitter-ms", str(jitter_ms),
                     "--loss-share", share_arg(loss_share), "--seed", str(seed)]
        self.port = None
        self.proc = None
        self.tmp = None
        self.status = None

    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix="mxs-udpdelay-")
        ready = os.path.join(self.tmp, "ready")
        host, port = self.upstream
        up = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        me = f"[{self.addr}]:0" if ":" in self.addr else f"{self.addr}:0"
        self._log = open(os.path.join(self.tmp, "udpdelay.log"), "ab")
        self.proc = subprocess.Popen([self.binary, "--listen", me, "--upstream", up, *self.args,
                                      "--ready-file", ready, "--watch-stdin"],
                                     stdin=subprocess.PIPE, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.START_TIMEOUT
        while not os.path.exists(ready):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = self.log()
                self._log.close()
                shutil.rmtree(self.tmp, ignore_errors=True)
                raise FleetError(f"mxsurvey-udpdelay did not start:\n{log[-4000:]}")
            time.sleep(0.02)
        with open(ready) as f:
            self.port = int(f.read())
        return self

    def stop(self):
        """SIGTERM and wait; returns the exit status (0 when clean)."""
        if self.proc is not None and self.status is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.status = self.proc.wait(Fleet.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.status = self.proc.wait()
            self.proc.stdin.close()
        return self.status

    def __exit__(self, exc_type, exc, tb):
        status = self.stop()
        log = self.log()
        self._log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        if status not in (0, None) and exc_type is None:
            raise FleetError(f"mxsurvey-udpdelay exited with status {status}:\n{log[-4000:]}")
        return False

    def log(self):
        try:
            with open(os.path.join(self.tmp, "udpdelay.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stats(self):
        """The counters of the "stop" line (after stop()): {"queries": N, ...}."""
        for line in reversed(self.log().splitlines()):
            if " stop " in line:
                return {k: int(v) for k, v in
                        (kv.split("=", 1) for kv in line.split() if "=" in kv)}
        return {}
