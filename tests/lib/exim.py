"""A private Exim on a loopback address, for tests (standard library only).

    with Exim("127.0.201.1") as ex:                   # STARTTLS offered
        smtp = smtplib.SMTP(ex.addr, ex.port)
        ctx.load_verify_locations(ex.ca_file)         # ex.hostname is in the cert

    # one certificate per SNI name, chosen by ${tls_in_sni}; others get the default
    with Exim("127.0.201.2", sni={"mx1.example.test": (chain_pem, key_pem)}) as ex: ...

Debian installs one MTA at a time (Postfix is the one installed here), so Exim is not
installed: its .deb (exim4-daemon-light) and the shared libraries it needs that are not
installed are unpacked with `dpkg -x` into a cache directory, once ($MXS_BUILD/exim4-root,
or $MXS_EXIM_ROOT). The .debs come from $MXS_EXIM_DEBS or /var/cache/mxsurvey/exim4-debs
(contrib/install-deps.sh fills it with `python3 tests/lib/exim.py fetch DIR`), else from
`apt-get download` (the network apt uses, nothing else).

The binary asks for its compiled-in user "Debian-exim" before it reads any configuration:
libnss-wrapper (NSS_WRAPPER_PASSWD) maps that name to the user the daemon runs as, so
nothing is added to the machine's /etc/passwd. As root the daemon runs as "nobody"
(never root); otherwise as the calling user. It runs `exim4 -C CONF -bdf` in the
foreground with its spool, log and pid file in a temp dir; it relays and delivers nothing
(no routers, every RCPT refused by the default ACL).

The instance is stopped on leaving the `with` block, also when the test fails; a watchdog
process stops it too if the test process dies without cleaning up.
"""

import glob
import os
import pwd
import grp
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import certs

PACKAGE = "exim4-daemon-light"
NSS_WRAPPER = "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so"
DEFAULT_DEBS = "/var/cache/mxsurvey/exim4-debs"


class EximUnavailable(RuntimeError):
    """Exim cannot be unpacked or run here: tests should skip."""


class EximError(RuntimeError):
    pass


def _multiarch():
    try:
        return subprocess.run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "x86_64-linux-gnu"


def _nss_wrapper():
    found = glob.glob(f"/usr/lib/{_multiarch()}/libnss_wrapper.so") or glob.glob(NSS_WRAPPER)
    return found[0] if found else None


def _installed(pkg):
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
    return p.returncode == 0 and "install ok installed" in p.stdout


def packages():
    """The .debs to unpack: exim4-daemon-light and each library it depends on that is not
    installed (libidn12 on a stock bookworm). exim4-base (the cron jobs and tools) and
    exim4-config (Debian's configuration) are not needed: the test writes the config."""
    p = subprocess.run(["apt-cache", "depends", "--no-recommends", "--no-suggests",
                        "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", PACKAGE],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise EximUnavailable(f"apt-cache depends {PACKAGE}: {p.stderr.strip()}")
    libs = []
    for line in p.stdout.splitlines():
        m = re.match(r"\s*\|?Depends:\s*(\S+)", line)
        if m and m.group(1).startswith("lib") and not m.group(1).startswith("<"):
            name = m.group(1).split(":")[0]
            if name not in libs and not _installed(name):
                libs.append(name)
    return [PACKAGE] + libs


def fetch(directory):
    """`apt-get download` the .debs into directory (created). Returns their paths."""
    os.makedirs(directory, exist_ok=True)
    pkgs = packages()
    p = subprocess.run(["apt-get", "download", *pkgs], cwd=directory, capture_output=True,
                       text=True)
    if p.returncode != 0:
        raise EximUnavailable(f"apt-get download {' '.join(pkgs)}: {p.stderr.strip()[-500:]}")
    return _debs_in(directory, pkgs)


def _debs_in(directory, pkgs):
    found = []
    for pkg in pkgs:
        hits = sorted(glob.glob(os.path.join(directory, f"{pkg}_*.deb")))
        if not hits:
            return None
        found.append(hits[-1])
    return found


def _cache_root():
    if os.environ.get("MXS_EXIM_ROOT"):
        return os.environ["MXS_EXIM_ROOT"]
    build = os.environ.get("MXS_BUILD")
    if build:
        return os.path.join(build, "exim4-root")
    return os.path.join(tempfile.gettempdir(), f"mxs-exim4-root-{os.getuid()}")


def unpacked():
    """The directory Exim is unpacked into (done once; concurrent callers are safe:
    each unpacks into its own temp dir and renames it into place)."""
    root = _cache_root()
    if os.access(os.path.join(root, "usr", "sbin", "exim4"), os.X_OK):
        return root
    if not shutil.which("dpkg"):
        raise EximUnavailable("no dpkg to unpack Exim")
    pkgs = packages()
    debs = None
    for d in (os.environ.get("MXS_EXIM_DEBS"), DEFAULT_DEBS):
        if d and os.path.isdir(d):
            debs = _debs_in(d, pkgs)
            if debs:
                break
    os.makedirs(os.path.dirname(root) or ".", exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".exim4-unpack-", dir=os.path.dirname(root) or ".")
    try:
        if not debs:
            debs = fetch(os.path.join(tmp, "debs"))
        tree = os.path.join(tmp, "root")
        for deb in debs:
            subprocess.run(["dpkg", "-x", deb, tree], check=True, capture_output=True)
        exim = os.path.join(tree, "usr", "sbin", "exim4")
        os.chmod(exim, 0o755)  # the package's setuid root bit: not in a build tree
        os.chmod(tree, 0o755)
        try:
            os.rename(tree, root)
        except OSError:
            if not os.access(os.path.join(root, "usr", "sbin", "exim4"), os.X_OK):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def available():
    """None if a private Exim can be started here, else the reason it cannot."""
    if not _nss_wrapper():
        return "libnss-wrapper is not installed (Debian package 'libnss-wrapper')"
    try:
        unpacked()
    except (EximUnavailable, subprocess.CalledProcessError, OSError) as e:
        return f"Exim cannot be unpacked: {e}"
    return None


def free_port(addr):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


# Runs detached: kills the daemon if the test process disappears without doing so.
_WATCHDOG = r"""
import os, signal, sys, time, shutil
parent, pid, tmp = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
while True:
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        break
    time.sleep(0.5)
try:
    os.killpg(pid, signal.SIGKILL)
except ProcessLookupError:
    pass
shutil.rmtree(tmp, ignore_errors=True)
"""


class Exim:
    """A running private Exim daemon; a context manager.

    addr: loopback address it listens on. port: None for a free one.
    hostname: primary_hostname (the banner, EHLO) and the name of the default certificate.
    ca_dir: a directory holding ca.pem and ca.key to sign the default certificate with;
        default a private CA (ca_file). key_type: "ec" or "rsa".
    sni: {name: (certificate chain file, key file)}: the certificate served when a client
        sends that name in SNI; any other name, or none, gets the default certificate.
        Exim (GnuTLS) re-expands tls_certificate once the ClientHello's name is known
        because the option refers to $tls_in_sni.
    config: extra main-section lines (a str), appended last: later settings win.
    deliver_to: a directory: every recipient is accepted and each message is appended to
        DIR/inbox.mbox (mbox, "From " lines) by the daemon's user; None (default):
        every RCPT is refused.
    """

    START_TIMEOUT = 30.0
    STOP_TIMEOUT = 10.0

    def __init__(self, addr="127.0.0.1", port=None, hostname=None, ca_dir=None,
                 key_type="ec", sni=None, config="", deliver_to=None):
        if not (addr.startswith("127.") or addr == "::1"):
            raise ValueError("tests only use loopback addresses")
        reason = available()
        if reason:
            raise EximUnavailable(reason)
        self.root = unpacked()
        self.addr = addr
        self.port = port
        self.hostname = hostname or "mx.exim.test"
        self.ca_dir = ca_dir
        self.key_type = key_type
        self.sni = dict(sni or {})
        self.config = config
        self.deliver_to = deliver_to
        self.dir = None
        self.proc = None
        self.watchdog = None
        self.ca_file = self.cert_file = self.key_file = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam("nobody")
            self.uid, self.gid = pw.pw_uid, pw.pw_gid
        else:
            self.uid, self.gid = os.getuid(), os.getgid()

    # ---- paths and logs

    @property
    def exim(self):
        return os.path.join(self.root, "usr", "sbin", "exim4")

    @property
    def mainlog(self):
        return os.path.join(self.dir, "log", "mainlog")

    def log(self):
        """mainlog and paniclog so far."""
        out = []
        for name in ("mainlog", "paniclog", "rejectlog"):
            try:
                with open(os.path.join(self.dir, "log", name), errors="replace") as f:
                    out.append(f.read())
            except (FileNotFoundError, TypeError):
                pass
        return "".join(out)

    def wait_log(self, pattern, timeout=10):
        """Wait until pattern (str or compiled regex) matches the log; return the match."""
        if isinstance(pattern, str):
            pattern = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = pattern.search(self.log())
            if m:
                return m
            time.sleep(0.1)
        raise AssertionError(f"no {pattern.pattern!r} in the Exim log:\n{self.log()[-3000:]}")

    # ---- lifecycle

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="mxs-exim-")
        try:
            self._prepare()
            fixed = self.port is not None
            for _ in range(1 if fixed else 5):
                if not fixed:
                    self.port = free_port(self.addr)
                if self._start():
                    return self
            raise EximError(f"Exim could not listen on {self.addr}:{self.port}")
        except BaseException:
            self._teardown(failed=True)
            raise

    def __exit__(self, exc_type, exc, tb):
        self._teardown(failed=exc_type is not None)
        return False

    def _own(self, path):
        if os.geteuid() == 0:
            os.chown(path, self.uid, self.gid)

    def _prepare(self):
        os.chmod(self.dir, 0o755)
        for sub in ("spool", "log", "tls"):
            os.mkdir(os.path.join(self.dir, sub), 0o755)
            self._own(os.path.join(self.dir, sub))
        tls = os.path.join(self.dir, "tls")
        if self.ca_dir:
            self.ca_file = os.path.join(self.ca_dir, "ca.pem")
            ca_key = os.path.join(self.ca_dir, "ca.key")
        else:
            self.ca_file, ca_key = certs.make_ca(tls)
        self.cert_file, self.key_file = certs.make_leaf(tls, self.ca_file, ca_key,
                                                        [self.hostname], self.key_type)
        # the daemon reads the keys as its own user
        self._own(self.key_file)
        # SNI certificates: copied in, since the daemon's user may not reach the caller's
        for i, (name, (chain, key)) in enumerate(sorted(self.sni.items())):
            dst = (os.path.join(tls, f"sni{i}-chain.pem"), os.path.join(tls, f"sni{i}.key"))
            shutil.copyfile(chain, dst[0])
            shutil.copyfile(key, dst[1])
            os.chmod(dst[1], 0o600)
            self._own(dst[1])
            self.sni[name] = dst
        # nss_wrapper's view of the user database: the compiled-in exim user is us
        me = pwd.getpwuid(self.uid).pw_name
        group = grp.getgrgid(self.gid).gr_name
        with open(os.path.join(self.dir, "passwd"), "w") as f:
            f.write(f"Debian-exim:x:{self.uid}:{self.gid}::/nonexistent:/usr/sbin/nologin\n")
            if me != "Debian-exim":
                f.write(f"{me}:x:{self.uid}:{self.gid}::/nonexistent:/usr/sbin/nologin\n")
            if self.uid != 0:
                f.write("root:x:0:0::/root:/bin/sh\n")
        with open(os.path.join(self.dir, "group"), "w") as f:
            f.write(f"Debian-exim:x:{self.gid}:\n")
            if group != "Debian-exim":
                f.write(f"{group}:x:{self.gid}:\n")
            if self.gid != 0:
                f.write("root:x:0:\n")
        # SNI name -> certificate chain and key
        with open(os.path.join(tls, "sni-cert"), "w") as fc, \
                open(os.path.join(tls, "sni-key"), "w") as fk:
            for name, (chain, key) in self.sni.items():
                fc.write(f"{name.lower()}: {chain}\n")
                fk.write(f"{name.lower()}: {key}\n")

    def _write_config(self):
        tls = os.path.join(self.dir, "tls")
        default_chain = self.cert_file.replace(".pem", "-chain.pem")
        listen = f"<; {self.addr}" if ":" in self.addr else self.addr
        lines = [
            f"primary_hostname = {self.hostname}",
            f"spool_directory = {self.dir}/spool",
            f"log_file_path = {self.dir}/log/%slog",
            f"pid_file_path = {self.dir}/exim.pid",
            f"local_interfaces = {listen}",
            f"daemon_smtp_ports = {self.port}",
            # a re-exec (delivery after a message is received) runs this unpacked binary
            # with the libraries and user mapping the daemon was started with
            f"exim_path = {self.exim}",
            "keep_environment = PATH : LD_PRELOAD : LD_LIBRARY_PATH : NSS_WRAPPER_PASSWD :"
            " NSS_WRAPPER_GROUP",
            "host_lookup =",
            "rfc1413_hosts =",
            "smtp_banner = $smtp_active_hostname ESMTP Exim $version_number",
            "log_selector = +tls_sni +tls_certificate_verified +tls_peerdn",
            "tls_advertise_hosts = *",
            # the certificate for the name the client sent in SNI, else the default
            "tls_certificate = ${if def:tls_in_sni"
            f" {{${{lookup{{${{lc:$tls_in_sni}}}}lsearch{{{tls}/sni-cert}}{{$value}}{{{default_chain}}}}}}}"
            f" {{{default_chain}}}}}",
            "tls_privatekey = ${if def:tls_in_sni"
            f" {{${{lookup{{${{lc:$tls_in_sni}}}}lsearch{{{tls}/sni-key}}{{$value}}{{{self.key_file}}}}}}}"
            f" {{{self.key_file}}}}}",
            "acl_smtp_rcpt = acl_rcpt",
            self.config,
            "",
            "begin acl",
            "acl_rcpt:",
            "  accept" if self.deliver_to else
            "  deny message = relaying and delivery disabled in this test instance",
            "",
        ]
        if self.deliver_to:
            lines += [
                "begin routers",
                "tobox:",
                "  driver = accept",
                "  transport = tobox",
                "",
                "begin transports",
                "tobox:",
                "  driver = appendfile",
                f"  file = {self.deliver_to}/inbox.mbox",  # one file: a local part is tainted
                "  user = Debian-exim",
                "",
            ]
        self.conf = os.path.join(self.dir, "exim.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines))

    def _env(self):
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "LD_PRELOAD": _nss_wrapper(),
            "NSS_WRAPPER_PASSWD": os.path.join(self.dir, "passwd"),
            "NSS_WRAPPER_GROUP": os.path.join(self.dir, "group"),
        }
        libdirs = [d for d in (os.path.join(self.root, "usr", "lib", _multiarch()),
                               os.path.join(self.root, "lib", _multiarch())) if os.path.isdir(d)]
        if libdirs:
            env["LD_LIBRARY_PATH"] = ":".join(libdirs)
        return env

    def run(self, *args, **kw):
        """Run the unpacked exim4 with this instance's config (e.g. "-bV", "-bP", name),
        as the daemon's user; returns the CompletedProcess."""
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        extra = {}
        if os.geteuid() == 0:
            extra = {"user": self.uid, "group": self.gid, "extra_groups": []}
        return subprocess.run([self.exim, "-C", self.conf, *args], env=self._env(), **extra, **kw)

    def _start(self):
        """Start the daemon in the foreground; False if the port was taken, else True."""
        self._write_config()
        check = self.run("-bV")
        if check.returncode != 0:
            raise EximError("exim4 -bV refused the configuration:\n" + check.stdout + check.stderr)
        out = open(os.path.join(self.dir, "exim.out"), "ab")
        extra = {}
        if os.geteuid() == 0:
            extra = {"user": self.uid, "group": self.gid, "extra_groups": []}
        try:
            self.proc = subprocess.Popen([self.exim, "-C", self.conf, "-bdf"], env=self._env(),
                                         stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         **extra)
        finally:
            out.close()
        if self.watchdog is not None:
            self.watchdog.kill()
            self.watchdog.wait()
        self.watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(self.proc.pid), self.dir],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        family = socket.AF_INET6 if ":" in self.addr else socket.AF_INET
        deadline = time.monotonic() + self.START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                in_use = "Address already in use" in self._diagnostics()
                self.proc = None
                if in_use:
                    return False
                raise EximError("Exim exited at start:\n" + self._diagnostics())
            try:
                with socket.socket(family, socket.SOCK_STREAM) as s:
                    s.settimeout(2)
                    s.connect((self.addr, self.port))
                    if s.recv(512).startswith(b"220 "):
                        return True
            except OSError:
                time.sleep(0.05)
        raise EximError("Exim did not answer in time:\n" + self._diagnostics())

    def stop(self):
        """Stop the daemon and its children (it runs in its own process group)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(self.STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        try:  # connection children linger after the daemon: the whole group goes
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None

    def _diagnostics(self):
        parts = [self.log()[-6000:]]
        try:
            with open(os.path.join(self.dir, "exim.out"), errors="replace") as f:
                parts.append(f.read()[-2000:])
        except OSError:
            pass
        return "\n".join(p for p in parts if p)

    def _teardown(self, failed):
        try:
            self.stop()
        finally:
            if failed and self.dir is not None:
                print(f"---- Exim log ({self.dir}):\n{self._diagnostics()}", flush=True)
            if self.watchdog is not None:
                self.watchdog.kill()  # our own child: the instance is down already
                self.watchdog.wait()
                self.watchdog = None
            if self.dir is not None:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None


if __name__ == "__main__":
    # python3 tests/lib/exim.py fetch DIR: download the .debs (for contrib/install-deps.sh)
    if len(sys.argv) == 3 and sys.argv[1] == "fetch":
        for deb in fetch(sys.argv[2]):
            print(deb)
    else:
        sys.exit("usage: exim.py fetch DIR")
