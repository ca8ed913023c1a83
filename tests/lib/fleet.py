"""Start and stop mxsurvey-fleet, the simulated internet of SMTP servers (docs/fleet.md).

    with Fleet() as fl:
        addr = fl.address("starttls-ecdsa")       # 127.0.1.0, serves behaviour 0
        ... connect to (addr, fl.port), trust fl.ca_file ...
        truth = fl.truth("127.0.1.0/24")           # list of dicts, one per address

Standard library only. The binary is $MXS_BUILD/tests/fleet/mxsurvey-fleet.
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


def fleet_binary(build_dir=None):
    build_dir = build_dir or os.environ.get("MXS_BUILD")
    if not build_dir:
        raise RuntimeError("MXS_BUILD is not set and no build_dir given")
    path = os.path.join(build_dir, "tests", "fleet", "mxsurvey-fleet")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{path} is missing: build the mxsurvey-fleet target")
    return path


def free_port():
    """A TCP port free on 0.0.0.0 right now (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def behaviours(build_dir=None):
    """[(index, name, about), ...] in table order."""
    out = subprocess.run([fleet_binary(build_dir), "behaviours"], check=True,
                         capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        index, name, about = line.split("\t", 2)
        rows.append((int(index), name, about))
    return rows


def truth(cidr, seed=0, build_dir=None):
    """Ground truth for every address of cidr: a list of dicts (docs/fleet.md)."""
    out = subprocess.run([fleet_binary(build_dir), "truth", cidr, "--seed", str(seed)],
                         check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines()]


class FleetError(RuntimeError):
    pass


class Fleet:
    """A running mxsurvey-fleet on a free port; a context manager.

    certdir: where the test PKI lives (generated if absent); default a private temp dir.
    idle_ms: the fleet's idle timeout (its default 60000 when None).
    On exit the fleet gets SIGTERM and must stop cleanly with status 0 (under the
    sanitizers a leak or error makes that fail); its log is printed if it did not.
    Should this process die without stopping it, the fleet stops by itself (--watch-stdin).
    """

    START_TIMEOUT = 30.0
    STOP_TIMEOUT = 15.0

    def __init__(self, build_dir=None, seed=0, delay_ms=2000, idle_ms=None, certdir=None,
                 verbose=False):
        self.binary = fleet_binary(build_dir)
        self.build_dir = build_dir
        self.seed = seed
        self.delay_ms = delay_ms
        self.idle_ms = idle_ms
        self.verbose = verbose
        self._own_certdir = certdir is None
        self.certdir = certdir
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
                "--seed", str(self.seed), "--delay-ms", str(self.delay_ms),
                "--ready-file", ready, "--watch-stdin"]
        if self.idle_ms is not None:
            args += ["--idle-ms", str(self.idle_ms)]
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
            self._behaviours = behaviours(self.build_dir)
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
        return truth(cidr, seed=self.seed, build_dir=self.build_dir)
