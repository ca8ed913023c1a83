"""Real web servers on loopback for MTA-STS policy fetches: nginx and Apache httpd (the
Debian packages), each a standalone instance with its own configuration, pid file and logs
in a temporary directory, one TLS virtual host per `mta-sts.<domain>` name (SNI), with
certificates from the test CA (certs.py).

    port = shared_port(["127.0.0.1", "127.0.0.2"])   # one port free on every address
    n = Nginx("127.0.0.1", port, [Vhost("mta-sts.a.test", cert, key, files={...}, conf="...")])
    a = Apache("127.0.0.2", port, [...])

A Vhost's files are written under its document root (path -> bytes or str; a path ending
in .cgi becomes an executable CGI script on Apache); conf is raw server-specific text put
inside its server block / <VirtualHost>, "{root}" replaced by its document root. When run
as root the workers run as nobody, so every file they read is made world-readable. Both
servers get their own session (Apache's prefork parent signals its whole process group).
Standard library only.
"""
import atexit
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

_live = []


@atexit.register
def _cleanup():
    for s in list(_live):
        try:
            s.stop()
        except Exception:
            pass


def shared_port(addrs):
    """A TCP port free on every address of addrs (checked by binding all of them)."""
    for _ in range(200):
        socks = []
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((addrs[0], 0))
            port = s.getsockname()[1]
            for a in addrs[1:]:
                t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(t)
                t.bind((a, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no port free on every address")


class Vhost:
    def __init__(self, name, cert, key, files=None, conf=""):
        self.name = name
        self.cert = cert
        self.key = key
        self.files = files or {}
        self.conf = conf
        self.root = None  # the document root, once a server has the vhost


def _as_root():
    return os.geteuid() == 0


def _worker_user():
    """(user, group) the workers run as when we are root."""
    for u in ("nobody", "www-data"):
        try:
            pw = pwd.getpwnam(u)
            import grp
            return u, grp.getgrgid(pw.pw_gid).gr_name
        except KeyError:
            continue
    return "nobody", "nogroup"


def write_files(vhost, files):
    """(Re)write files under a running vhost's document root: the servers read them per
    request, so this changes what they serve."""
    _write_tree(vhost.root, files, cgi_ok=True)


def _write_tree(root, files, cgi_ok=False):
    for path, data in files.items():
        full = os.path.join(root, path.lstrip("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(full, 0o755 if (cgi_ok and full.endswith(".cgi")) else 0o644)


def _wait_listen(addr, port, proc, what, logs, deadline=15.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s: %s" % (what, proc.returncode, logs()))
        try:
            with socket.create_connection((addr, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s did not listen on %s:%d: %s" % (what, addr, port, logs()))


class _Server:
    def _prepare(self, prefix):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        # workers (nobody when root) must reach the document roots
        os.chmod(self.dir, 0o755)

    def _tail(self, name):
        try:
            with open(os.path.join(self.dir, name), errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def log(self):
        return self._tail("error.log")

    def stop(self):
        if self in _live:
            _live.remove(self)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Nginx(_Server):
    """nginx in the foreground (daemon off) with one master and one worker."""

    def __init__(self, addr, port, vhosts, http_conf="", ssl=True, protocols="TLSv1.2 TLSv1.3",
                 workers=1, worker_connections=256, listen_opts=""):
        self._prepare("mxs-nginx-")
        self.addr, self.port = addr, port
        user = ""
        if _as_root():
            user = "user %s %s;" % _worker_user()
        servers = []
        for i, v in enumerate(vhosts):
            root = os.path.join(self.dir, "www%d" % i)
            os.makedirs(root)
            os.chmod(root, 0o755)
            _write_tree(root, v.files)
            v.root = root
            listen = "listen %s:%d%s%s;" % (addr, port, " ssl" if ssl else "",
                                           (" default_server " + listen_opts) if i == 0 else "")
            tls = ("ssl_certificate %s; ssl_certificate_key %s;" % (v.cert, v.key)) if ssl else ""
            servers.append("server { %s server_name %s; %s root %s; %s }" %
                           (listen, v.name, tls, root, v.conf.replace("{root}", root)))
        d = self.dir
        conf = """
%(user)s
daemon off;
worker_processes %(workers)d;
worker_rlimit_nofile %(nofile)d;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log info;
events { worker_connections %(wc)d; }
http {
    access_log %(d)s/access.log;
    client_body_temp_path %(d)s/client_body;
    proxy_temp_path %(d)s/proxy;
    fastcgi_temp_path %(d)s/fastcgi;
    uwsgi_temp_path %(d)s/uwsgi;
    scgi_temp_path %(d)s/scgi;
    types { text/plain txt; text/html html; }
    default_type application/octet-stream;
    sendfile on;
    gzip off;
    ssl_protocols %(protocols)s;
    %(http_conf)s
    %(servers)s
}
""" % {"user": user, "d": d, "protocols": protocols, "http_conf": http_conf,
       "workers": workers, "wc": worker_connections, "nofile": 2 * worker_connections + 64,
       "servers": "\n    ".join(servers)}
        self.conf = os.path.join(d, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.proc = subprocess.Popen(["nginx", "-c", self.conf, "-p", d, "-e", d + "/error.log"],
                                     start_new_session=True, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(d, "stderr.log"), "w"))
        _live.append(self)
        _wait_listen(addr, port, self.proc, "nginx",
                     lambda: self._tail("stderr.log") + self.log())

    def access_log(self):
        return self._tail("access.log")


APACHE_MODULES = ("mpm_prefork", "authz_core", "mime", "ssl", "socache_shmcb", "cgi",
                  "setenvif", "env", "alias", "dir", "headers")


class Apache(_Server):
    """Apache httpd (prefork MPM, so mod_cgi serves CGI) in the foreground."""

    def __init__(self, addr, port, vhosts, protocols="-all +TLSv1.2 +TLSv1.3"):
        self._prepare("mxs-apache-")
        self.addr, self.port = addr, port
        d = self.dir
        mods = "\n".join("LoadModule %s_module /usr/lib/apache2/modules/mod_%s.so" % (m, m)
                         for m in APACHE_MODULES)
        user = ""
        if _as_root():
            user = "User %s\nGroup %s" % _worker_user()
        hosts = []
        for i, v in enumerate(vhosts):
            root = os.path.join(d, "www%d" % i)
            os.makedirs(root)
            os.chmod(root, 0o755)
            _write_tree(root, v.files, cgi_ok=True)
            v.root = root
            hosts.append("""<VirtualHost %(addr)s:%(port)d>
    ServerName %(name)s
    SSLEngine on
    SSLCertificateFile %(cert)s
    SSLCertificateKeyFile %(key)s
    DocumentRoot %(root)s
    <Directory %(root)s>
        Require all granted
        Options +ExecCGI
        AddHandler cgi-script .cgi
    </Directory>
    %(conf)s
</VirtualHost>""" % {"addr": addr, "port": port, "name": v.name, "cert": v.cert,
                     "key": v.key, "root": root, "conf": v.conf.replace("{root}", root)})
        conf = """ServerRoot %(d)s
%(mods)s
%(user)s
ServerName localhost
Listen %(addr)s:%(port)d
PidFile %(d)s/httpd.pid
DefaultRuntimeDir %(d)s
Mutex file:%(d)s default
ErrorLog %(d)s/error.log
LogLevel warn
LogFormat "%%h \\"%%r\\" %%>s %%b" short
CustomLog %(d)s/access.log short
StartServers 1
MinSpareServers 1
MaxSpareServers 2
TypesConfig /etc/mime.types
SSLProtocol %(protocols)s
SSLSessionCache none
<Directory />
    Require all denied
</Directory>
%(hosts)s
""" % {"d": d, "mods": mods, "user": user, "addr": addr, "port": port,
       "protocols": protocols, "hosts": "\n".join(hosts)}
        self.conf = os.path.join(d, "httpd.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        # its own session: on shutdown the prefork parent signals its whole process group
        self.proc = subprocess.Popen(["apache2", "-f", self.conf, "-d", d, "-DFOREGROUND"],
                                     start_new_session=True, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(d, "stderr.log"), "w"))
        _live.append(self)
        _wait_listen(addr, port, self.proc, "apache2",
                     lambda: self._tail("stderr.log") + self.log())

    def access_log(self):
        return self._tail("access.log")
