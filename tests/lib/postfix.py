"""A private Postfix instance on a loopback address, for tests (standard library only).

    with Postfix("127.0.200.1") as pf:
        smtp = smtplib.SMTP(pf.addr, pf.port)        # STARTTLS offered
        ctx.load_verify_locations(pf.ca_file)         # pf.myhostname is in the cert

Everything lives in a temp dir (`postfix -c DIR`): main.cf, master.cf, queue and data
directories, the log (maillog_file). smtpd listens on addr:port (a free port unless
given) with STARTTLS (smtpd_tls_security_level = may); it relays nothing and delivers
nothing. Needs root: master runs as root and drops to the `postfix` user.

The instance is stopped on leaving the `with` block, also when the test fails; a
watchdog process stops it too if the test process dies without cleaning up.
"""

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import certs

POSTFIX = "/usr/sbin/postfix"


class PostfixUnavailable(RuntimeError):
    """Postfix is not installed, or we are not root: tests should skip."""


class PostfixError(RuntimeError):
    pass


def available():
    """None if a private Postfix can be started here, else the reason it cannot."""
    if not os.access(POSTFIX, os.X_OK):
        return "postfix is not installed (Debian package 'postfix')"
    if os.geteuid() != 0:
        return "a Postfix instance needs root"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "no 'postfix' user"
    return None


def default_myhostname(addr):
    """The fleet's naming convention: 127.a.b.c is mx-a-b-c.fleet.test."""
    parts = addr.split(".")
    if len(parts) == 4:
        return f"mx-{parts[1]}-{parts[2]}-{parts[3]}.fleet.test"
    return "mx-v6.fleet.test"


def free_port(addr):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


# Runs detached: stops the instance if the test process disappears without doing so.
_WATCHDOG = r"""
import os, subprocess, sys, time, shutil
parent, confdir = int(sys.argv[1]), sys.argv[2]
while True:
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        break
    time.sleep(0.5)
for how in ("stop", "abort"):
    subprocess.run([sys.argv[3], "-c", confdir, how], capture_output=True, timeout=30)
shutil.rmtree(confdir, ignore_errors=True)
"""

MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command
{listen} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

# Delivery services, for instances that relay (smtp) or deliver to a mailbox file
# (virtual); unused unless main.cf routes mail to them.
MASTER_CF_DELIVERY = """\
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
virtual   unix  -       n       n       -       -       virtual
"""


class Postfix:
    """A running private Postfix; a context manager.

    addr: loopback address smtpd listens on. port: None for a free one.
    myhostname: default from the fleet convention (mx-a-b-c.fleet.test).
    ca_dir: a directory holding ca.pem and ca.key (e.g. a Fleet's certdir) to sign the
        server certificate with; default a private CA. key_type: "ec" or "rsa".
    main_cf: extra main.cf settings {name: value}, applied last.
    delivery: also run the smtp client and the virtual delivery agent (master.cf), for
        instances that relay mail or deliver it into a mailbox file.
    services: further smtpd services of master.cf, {name: {option: value}} (each a
        `-o option=value`), each on its own free port of addr, in self.service_ports
        (e.g. {"submission": {"smtpd_tls_security_level": "encrypt"},
               "smtps": {"smtpd_tls_wrappermode": "yes"}}).
    """

    START_TIMEOUT = 30.0
    STOP_TIMEOUT = 20.0

    def __init__(self, addr="127.0.0.1", port=None, myhostname=None, ca_dir=None,
                 key_type="ec", main_cf=None, delivery=False, services=None):
        reason = available()
        if reason:
            raise PostfixUnavailable(reason)
        if not (addr.startswith("127.") or addr == "::1"):
            raise ValueError("tests only use loopback addresses")
        self.addr = addr
        self.port = port
        self.myhostname = myhostname or default_myhostname(addr)
        self.ca_dir = ca_dir
        self.key_type = key_type
        self.main_cf = dict(main_cf or {})
        self.services = dict(services or {})
        self.service_ports = {}
        self.delivery = delivery
        self.dir = None
        self.proc = None
        self.watchdog = None
        self.ca_file = self.cert_file = self.key_file = None

    # ---- paths

    @property
    def maillog(self):
        return os.path.join(self.dir, "maillog")

    def log(self):
        """The instance's mail log so far."""
        try:
            with open(self.maillog, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=10):
        """Postfix writes its log asynchronously (postlogd): wait until `pattern` (a str or
        compiled regex) matches the log, and return the match."""
        if isinstance(pattern, str):
            pattern = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = pattern.search(self.log())
            if m:
                return m
            time.sleep(0.1)
        raise AssertionError(f"no {pattern.pattern!r} in the Postfix log:\n{self.log()[-3000:]}")

    # ---- lifecycle

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="mxs-postfix-")
        try:
            self._prepare()
            self.watchdog = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, str(os.getpid()), self.dir, POSTFIX],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
            fixed = self.port is not None
            for _ in range(1 if fixed else 5):
                if not fixed:
                    self.port = free_port(self.addr)
                if self._start():
                    return self
            raise PostfixError(f"Postfix could not listen on {self.addr}:{self.port}")
        except BaseException:
            self._teardown(failed=True)
            raise

    def __exit__(self, exc_type, exc, tb):
        self._teardown(failed=exc_type is not None)
        return False

    def _prepare(self):
        # The postfix user must reach the queue inside our temp dir.
        os.chmod(self.dir, 0o755)
        for sub in ("queue", "data"):
            os.mkdir(os.path.join(self.dir, sub), 0o755)
        pw = pwd.getpwnam("postfix")
        os.chown(os.path.join(self.dir, "data"), pw.pw_uid, pw.pw_gid)
        tls = os.path.join(self.dir, "tls")
        os.mkdir(tls, 0o755)
        if self.ca_dir:
            self.ca_file = os.path.join(self.ca_dir, "ca.pem")
            ca_key = os.path.join(self.ca_dir, "ca.key")
        else:
            self.ca_file, ca_key = certs.make_ca(tls)
        self.cert_file, self.key_file = certs.make_leaf(tls, self.ca_file, ca_key,
                                                        [self.myhostname], self.key_type)

    def _write_config(self):
        v6 = ":" in self.addr
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": os.path.join(self.dir, "queue"),
            "data_directory": os.path.join(self.dir, "data"),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "syslog_name": f"postfix-test-{self.port}",
            "maillog_file": self.maillog,
            "maillog_file_prefixes": self.dir,
            "myhostname": self.myhostname,
            "mydomain": "fleet.test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "relay_domains": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "all" if v6 else "ipv4",
            "smtpd_peername_lookup": "no",
            "smtpd_relay_restrictions": "reject",
            "smtpd_recipient_restrictions": "reject",
            "default_transport": "error:delivery disabled in this test instance",
            "local_transport": "error:delivery disabled in this test instance",
            "relay_transport": "error:delivery disabled in this test instance",
            "smtpd_tls_security_level": "may",
            # leaf then CA, like a real server sending its chain
            "smtpd_tls_cert_file": self.cert_file.replace(".pem", "-chain.pem"),
            "smtpd_tls_key_file": self.key_file,
            "smtpd_tls_loglevel": "1",
            "biff": "no",
        }
        settings.update(self.main_cf)
        with open(os.path.join(self.dir, "main.cf"), "w") as f:
            for name, value in settings.items():
                f.write(f"{name} = {value}\n")
        listen = f"[{self.addr}]:{self.port}" if v6 else f"{self.addr}:{self.port}"
        with open(os.path.join(self.dir, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(listen=listen))
            for name, opts in self.services.items():
                port = self.service_ports.setdefault(name, free_port(self.addr))
                where = f"[{self.addr}]:{port}" if v6 else f"{self.addr}:{port}"
                f.write(f"{where} inet n - n - - smtpd -o syslog_name=postfix/{name}\n")
                for k, v in opts.items():
                    f.write(f"  -o {k}={v}\n")
            if self.delivery:
                f.write(MASTER_CF_DELIVERY)

    def _start(self):
        """Start master in the foreground; False if the port was taken, else True."""
        self._write_config()
        out = open(os.path.join(self.dir, "postfix.out"), "ab")
        try:
            self.proc = subprocess.Popen([POSTFIX, "-c", self.dir, "start-fg"],
                                         stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            out.close()
        family = socket.AF_INET6 if ":" in self.addr else socket.AF_INET
        deadline = time.monotonic() + self.START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                in_use = "Address already in use" in self._diagnostics()
                self.proc = None
                if in_use:
                    return False
                raise PostfixError("Postfix exited at start:\n" + self._diagnostics())
            try:
                with socket.socket(family, socket.SOCK_STREAM) as s:
                    s.settimeout(1)
                    s.connect((self.addr, self.port))
                    # master listens before it forks smtpd: wait for a real banner
                    if s.recv(512).startswith(b"220 "):
                        return True
            except OSError:
                time.sleep(0.05)
        raise PostfixError("Postfix did not answer in time:\n" + self._diagnostics())

    def _master_pid(self):
        try:
            with open(os.path.join(self.dir, "queue", "pid", "master.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    @staticmethod
    def _alive(pid):
        """True if pid runs (a zombie does not count)."""
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False

    def stop(self):
        """Stop master and its children; safe to call twice."""
        if self.dir is None:
            return
        master = self._master_pid()
        subprocess.run([POSTFIX, "-c", self.dir, "stop"], capture_output=True,
                       timeout=self.STOP_TIMEOUT)
        if self.proc is not None:
            try:
                self.proc.wait(self.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                subprocess.run([POSTFIX, "-c", self.dir, "abort"], capture_output=True,
                               timeout=self.STOP_TIMEOUT)
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        deadline = time.monotonic() + self.STOP_TIMEOUT
        while master is not None and self._alive(master) and time.monotonic() < deadline:
            time.sleep(0.05)
        if master is not None and self._alive(master):
            os.kill(master, signal.SIGKILL)

    def _diagnostics(self):
        parts = [self.log()[-6000:]]
        try:
            with open(os.path.join(self.dir, "postfix.out"), errors="replace") as f:
                parts.append(f.read()[-2000:])
        except OSError:
            pass
        return "\n".join(p for p in parts if p)

    def _teardown(self, failed):
        try:
            self.stop()
        finally:
            if failed and self.dir is not None:
                print(f"---- Postfix log ({self.dir}):\n{self._diagnostics()}", flush=True)
            if self.watchdog is not None:
                self.watchdog.kill()  # our own child: the instance is down already
                self.watchdog.wait()
                self.watchdog = None
            if self.dir is not None:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None
