"""A throw-away PostgreSQL cluster for the tests, and small helpers around it.

    with PgCluster() as pg:
        run([MXS_BIN, "ingest", "--db", pg.url, path])
        assert pg.scalar("SELECT count(*) FROM results") == "10"
        pg.stop(); pg.start()          # same port, same data

The cluster is created with initdb in a private temporary directory and listens on a
free loopback TCP port only. PostgreSQL refuses to run as root, so when the tests run
as root every server program runs as the unprivileged 'postgres' user (Debian's
package creates it) and the directory is handed to that user. Standard library only.
"""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

FIELD_SEP = "\x1f"
ROW_SEP = "\x1e"


def pg_bindir():
    """Directory of initdb/pg_ctl: $MXS_PG_BINDIR, the newest Debian one, or PATH."""
    env = os.environ.get("MXS_PG_BINDIR")
    if env:
        return env
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(os.path.realpath(initdb))
    raise RuntimeError("PostgreSQL server programs not found (install postgresql)")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    def __init__(self, user="mxs", dbname="mxs", keep=False, fsync=False, settings=None):
        self.fsync = fsync
        self.settings = settings or {}
        self.user = user
        self.dbname = dbname
        self.keep = keep or os.environ.get("MXS_KEEP_PG") == "1"
        self.bindir = pg_bindir()
        self.port = None
        self.dir = None
        self._owner = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            self._owner = (pw.pw_uid, pw.pw_gid)

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="mxs-pg-")
        try:
            self._init()
            self.start()
            self.psql_admin("CREATE DATABASE %s ENCODING 'UTF8' TEMPLATE template0" % self.dbname)
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    def _demote(self):
        if self._owner is not None:
            uid, gid = self._owner
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)

    def _tool(self, *args, check=True, timeout=120):
        return subprocess.run([os.path.join(self.bindir, args[0])] + list(args[1:]),
                              preexec_fn=self._demote, cwd=self.dir, check=check,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout, env=dict(os.environ, LC_ALL="C"))

    @property
    def data(self):
        return os.path.join(self.dir, "data")

    @property
    def log(self):
        return os.path.join(self.dir, "server.log")

    def _init(self):
        if self._owner is not None:
            os.chown(self.dir, *self._owner)
        self._tool("initdb", "-D", self.data, "-U", self.user, "-A", "trust", "-E", "UTF8",
                   "--no-locale", "--no-sync")
        self.port = free_port()
        with open(os.path.join(self.data, "postgresql.auto.conf"), "a") as f:
            # loopback TCP only; the socket goes into our private directory.
            # fsync off for tests: they stop servers, they do not crash machines.
            f.write("listen_addresses = '127.0.0.1'\nport = %d\n"
                    "unix_socket_directories = '%s'\nmax_connections = 40\n"
                    % (self.port, self.dir))
            if not self.fsync:
                f.write("fsync = off\nfull_page_writes = off\n")
            for k, v in self.settings.items():
                f.write("%s = %s\n" % (k, v))

    def start(self, attempts=3):
        for i in range(attempts):
            r = self._tool("pg_ctl", "start", "-D", self.data, "-l", self.log, "-w", "-t", "60",
                           check=False)
            if r.returncode == 0:
                return
            # another test may have taken the port between free_port() and now
            self.port = free_port()
            with open(os.path.join(self.data, "postgresql.auto.conf"), "a") as f:
                f.write("port = %d\n" % self.port)
        raise RuntimeError("pg_ctl start failed:\n%s\n%s" % (r.stdout.decode(errors="replace"),
                                                             self.server_log()))

    def stop(self, mode="fast"):
        self._tool("pg_ctl", "stop", "-D", self.data, "-m", mode, "-w", "-t", "60", check=False)

    def running(self):
        return self._tool("pg_ctl", "status", "-D", self.data, check=False).returncode == 0

    def cleanup(self):
        if self.dir is None:
            return
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self.stop("immediate")
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def server_log(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    # -- access ----------------------------------------------------------------------

    @property
    def url(self):
        return "postgresql://%s@127.0.0.1:%d/%s" % (self.user, self.port, self.dbname)

    @property
    def conninfo(self):
        return "host=127.0.0.1 port=%d user=%s dbname=%s" % (self.port, self.user, self.dbname)

    def psql_admin(self, sql):
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                        "-p", str(self.port), "-U", self.user, "-d", "postgres", "-c", sql],
                       check=True, stdout=subprocess.DEVNULL)

    def query(self, sql):
        """Rows of a query as lists of strings (SQL NULL is None)."""
        r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-A", "-t",
                            "-F", FIELD_SEP, "-R", ROW_SEP, "-P", "null=\x01",
                            "-d", self.url, "-c", sql],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise RuntimeError("psql failed: %s\n%s" % (sql, r.stderr.decode(errors="replace")))
        out = r.stdout.decode("utf-8")
        if out.endswith("\n"):
            out = out[:-1]
        rows = []
        for line in out.split(ROW_SEP):
            if line == "":
                continue
            rows.append([None if v == "\x01" else v for v in line.split(FIELD_SEP)])
        return rows

    def scalar(self, sql):
        rows = self.query(sql)
        return rows[0][0] if rows else None

    def execute(self, sql):
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.url, "-c", sql],
                       check=True, stdout=subprocess.DEVNULL)


def private_env(tmpdir, **extra):
    """Environment for an mxsurvey run that touches nothing outside tmpdir."""
    env = dict(os.environ)
    for k in ("DATABASE_URL", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE"):
        env.pop(k, None)
    env["HOME"] = tmpdir
    env["XDG_DATA_HOME"] = os.path.join(tmpdir, "share")
    env.update(extra)
    return env


class MigratedClusterCase(unittest.TestCase):
    """A test class's own cluster, migrated by mxsurvey ($MXS_BIN), with a private
    environment and temporary directory (self.pg, self.env, self.tmp)."""
    tmp_prefix = "mxs-pg-"

    @classmethod
    def setUpClass(cls):
        cls.mxs = os.environ["MXS_BIN"]
        cls.pg = PgCluster().__enter__()
        cls.tmp = tempfile.mkdtemp(prefix=cls.tmp_prefix)
        cls.env = private_env(cls.tmp)
        subprocess.run([cls.mxs, "db", "--db", cls.pg.url, "migrate"], env=cls.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)

    @classmethod
    def tearDownClass(cls):
        cls.pg.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def ingest(self, path, *args):
        return subprocess.run([self.mxs, "ingest", "--db", self.pg.url, *args, path], env=self.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)

    def scan(self, label):
        return self.pg.scalar("SELECT id FROM scans WHERE label = '%s'" % label)


def wait_for(pred, timeout=30.0, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return False
