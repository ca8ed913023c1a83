"""The embedded default: with no --db and no PGHOST/DATABASE_URL, mxsurvey creates its
own cluster under the user's data directory (initdb), starts it on a private socket,
reuses it on later runs, and `mxsurvey db stop` stops it."""
import os
import shutil
import subprocess
import tempfile
import unittest

from pg import pg_bindir, private_env
from pgfleet import night1_domains, night1_results
from pgrecords import write_jsonl

MXS = os.environ["MXS_BIN"]


# The newest migration: every file in sql/migrations is applied on first use.
LATEST = len([f for f in os.listdir(os.path.join(os.environ["MXS_SRC"], "sql", "migrations")) if f.endswith(".sql")])


class Embedded(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mxs-emb-")
        # when the tests run as root the server runs as 'postgres', which must be able to
        # pass through our private directory to reach its own
        os.chmod(self.tmp, 0o711)
        self.env = private_env(self.tmp)
        self.pgdir = os.path.join(self.tmp, "share", "mxsurvey", "pg")

    def tearDown(self):
        self.mxs("db", "stop", check=False)
        pid = os.path.join(self.pgdir, "data", "postmaster.pid")
        if os.path.exists(pid):   # last resort: the test must never leave a server behind
            subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(pg_bindir(), "pg_ctl"),
                            "stop", "-D", os.path.join(self.pgdir, "data"), "-m", "immediate"]
                           if os.geteuid() == 0 else
                           [os.path.join(pg_bindir(), "pg_ctl"), "stop", "-D",
                            os.path.join(self.pgdir, "data"), "-m", "immediate"], check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def mxs(self, *args, check=True):
        r = subprocess.run([MXS] + list(args), env=self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=180)
        if check:
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r

    def test_first_run_needs_no_setup(self):
        self.assertIn("embedded cluster: absent", self.mxs("db", "status").stdout)
        path = os.path.join(self.tmp, "fleet.jsonl")
        write_jsonl(path, night1_results() + night1_domains())
        out = self.mxs("ingest", path).stdout
        self.assertIn("17 result records read, 17 result rows stored", out)
        self.assertTrue(os.path.exists(os.path.join(self.pgdir, "data", "PG_VERSION")))
        status = self.mxs("db", "status").stdout
        self.assertIn("embedded cluster: running", status)
        self.assertIn("schema version: %d" % LATEST, status)
        url = self.mxs("db", "url").stdout
        self.assertIn("host=%s" % os.path.join(self.pgdir, "run"), url)
        # no TCP listener: the socket is in the private run directory
        self.assertTrue(any(n.startswith(".s.PGSQL.") for n in os.listdir(os.path.join(self.pgdir, "run"))))
        # who may connect: peer authentication on the socket only, no trust, no host line
        with open(os.path.join(self.pgdir, "data", "pg_hba.conf")) as f:
            hba = [l.split() for l in f if l.strip() and not l.startswith("#")]
        self.assertEqual([l[0] for l in hba], ["local"])
        self.assertNotIn("trust", sum(hba, []))
        self.assertIn("peer", hba[0])
        self.assertIn("STARTTLS offered", self.mxs("report").stdout)
        self.assertIn("stopped", self.mxs("db", "stop").stdout)
        self.assertIn("embedded cluster: stopped", self.mxs("db", "status").stdout)
        # the next run starts the same cluster again and finds the earlier scan
        out = self.mxs("ingest", path).stdout
        self.assertIn("(0 new", out)
        self.assertIn("17 result rows stored", out)
        scans = self.mxs("db", "scans").stdout
        self.assertEqual(len(scans.strip().splitlines()), 2)      # header + one scan

    def test_server_programs_need_not_be_on_path(self):
        # systemd units and 'env -i' give a PATH without PostgreSQL's bindir (Debian keeps
        # it in /usr/lib/postgresql/N/bin); initdb must still find its sibling 'postgres'
        path = self.env.get("PATH", os.defpath).split(":")
        self.env["PATH"] = ":".join(d for d in path if not os.path.exists(os.path.join(d, "initdb")))
        self.assertIn("embedded cluster: running", self.mxs("db", "start").stdout)
        self.assertIn("embedded cluster: running", self.mxs("db", "status").stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
