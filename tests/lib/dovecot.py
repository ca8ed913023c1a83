"""A private Dovecot (IMAP and POP3) on a loopback address, for tests (standard library only).

    with Dovecot("127.0.210.1", ssl="required") as dc:
        dc.ports["imap"], dc.ports["imaps"], dc.ports["pop3"], dc.ports["pop3s"]
        dc.ca_file                  # dc.hostname is in the certificate

Everything lives in a temp dir: dovecot.conf, base_dir, the log, the certificate
(`dovecot -c CONF -F`, in the foreground). Dovecot counts a client whose address equals
the address it accepted on as secure (and would then offer plaintext login without TLS):
listen on a 127.x address other than 127.0.0.1, and clients (which bind nothing) come
from 127.0.0.1. Needs root and the dovecot and dovenull users of the Debian packages.

ssl: "yes" (STARTTLS offered, plaintext login refused before it unless
disable_plaintext_auth is False), "required", or "no". implicit_only: listen only on the
imaps and pops ports.
"""

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import certs

DOVECOT = "/usr/sbin/dovecot"


class DovecotUnavailable(RuntimeError):
    pass


def available():
    """None if a private Dovecot can be started here, else the reason it cannot."""
    if not os.access(DOVECOT, os.X_OK):
        return "dovecot is not installed (Debian packages dovecot-imapd, dovecot-pop3d)"
    if os.geteuid() != 0:
        return "a Dovecot instance needs root"
    for user in ("dovecot", "dovenull"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"no '{user}' user"
    return None


def free_port(addr):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


_WATCHDOG = r"""
import os, signal, sys, time, shutil
parent, pid, confdir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
while True:
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        break
    time.sleep(0.5)
try:
    os.killpg(pid, signal.SIGTERM)
except ProcessLookupError:
    pass
time.sleep(1)
shutil.rmtree(confdir, ignore_errors=True)
"""

CONF = """\
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
instance_name = mxs-dovecot-{tag}
protocols = imap pop3
listen = {addr}
ssl = {ssl}
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = {dpa}
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
mail_location = maildir:{dir}/mail/%u
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={dir}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = {pop3s}
    ssl = yes
  }}
}}
service auth {{
  unix_listener {dir}/auth-client {{
    mode = 0666
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


class Dovecot:
    """A running private Dovecot; a context manager."""

    START_TIMEOUT = 30.0

    def __init__(self, addr, ssl="yes", disable_plaintext_auth=True, implicit_only=False,
                 hostname=None, key_type="ec"):
        reason = available()
        if reason:
            raise DovecotUnavailable(reason)
        if not addr.startswith("127.") or addr == "127.0.0.1":
            raise ValueError("listen on a 127.x address other than 127.0.0.1")
        self.addr = addr
        self.ssl = ssl
        self.dpa = disable_plaintext_auth
        self.implicit_only = implicit_only
        parts = addr.split(".")
        self.hostname = hostname or f"mail-{parts[1]}-{parts[2]}-{parts[3]}.fleet.test"
        self.key_type = key_type
        self.dir = self.proc = self.watchdog = None
        self.ports = {}

    @property
    def auth_socket(self):
        """The SASL socket Postfix can use (smtpd_sasl_type = dovecot)."""
        return os.path.join(self.dir, "auth-client")

    def log(self):
        try:
            with open(os.path.join(self.dir, "dovecot.log"), errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="mxs-dovecot-")
        try:
            os.chmod(self.dir, 0o755)
            for sub in ("run", "state", "mail", "home"):
                os.mkdir(os.path.join(self.dir, sub), 0o755)
            pw = pwd.getpwnam("dovecot")
            for sub in ("mail", "home"):
                os.chown(os.path.join(self.dir, sub), pw.pw_uid, pw.pw_gid)
            self.ca_file, ca_key = certs.make_ca(self.dir)
            cert, key = certs.make_leaf(self.dir, self.ca_file, ca_key, [self.hostname],
                                        self.key_type)
            for name in ("imap", "imaps", "pop3", "pop3s"):
                self.ports[name] = free_port(self.addr)
            listen = dict(self.ports)
            if self.implicit_only:
                listen["imap"] = listen["pop3"] = 0   # port 0: the listener is off
            conf = os.path.join(self.dir, "dovecot.conf")
            with open(conf, "w") as f:
                f.write(CONF.format(dir=self.dir, tag=os.path.basename(self.dir), addr=self.addr,
                                    ssl=self.ssl, cert=cert.replace(".pem", "-chain.pem"),
                                    key=key, dpa="yes" if self.dpa else "no", **listen))
            with open(os.path.join(self.dir, "dovecot.err"), "wb") as err:
                self.proc = subprocess.Popen([DOVECOT, "-c", conf, "-F"], stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, stderr=err,
                                             start_new_session=True)
            self.watchdog = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(self.proc.pid), self.dir],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
            self._wait_ready()
            return self
        except BaseException:
            self._teardown(True)
            raise

    def _wait_ready(self):
        port = self.ports["imaps" if self.implicit_only else "imap"]
        deadline = time.monotonic() + self.START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dovecot exited at start:\n" + self._diagnostics())
            try:
                with socket.create_connection((self.addr, port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("dovecot did not listen in time:\n" + self._diagnostics())

    def _diagnostics(self):
        err = ""
        try:
            with open(os.path.join(self.dir, "dovecot.err"), errors="replace") as f:
                err = f.read()
        except OSError:
            pass
        return err[-3000:] + self.log()[-3000:]

    def __exit__(self, exc_type, exc, tb):
        self._teardown(exc_type is not None)
        return False

    def _teardown(self, failed):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if failed and self.dir is not None:
            print(f"---- Dovecot ({self.dir}):\n{self._diagnostics()}", flush=True)
        if self.watchdog is not None:
            self.watchdog.kill()
            self.watchdog.wait()
            self.watchdog = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
