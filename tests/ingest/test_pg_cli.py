"""The command line meets the database: no password is ever stored in scans.command_line
(URL and key=value forms, for scan, survey and ingest), and arguments that name a scan are
whole integers or a usage error (exit 2), before anything touches the database."""
import os
import shutil
import subprocess
import tempfile
import unittest

from pg import PgCluster, free_port, private_env

MXS = os.environ["MXS_BIN"]
SECRET = "s3cr3t-Pa55"


class CliDb(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PgCluster().__enter__()
        cls.tmp = tempfile.mkdtemp(prefix="mxs-cli-")
        cls.env = private_env(cls.tmp)
        cls.urls = {
            # trust authentication: the password is sent (or not) and ignored
            "url": "postgresql://%s:%s@127.0.0.1:%d/%s?connect_timeout=5&password=%s" % (
                cls.pg.user, SECRET, cls.pg.port, cls.pg.dbname, SECRET),
            "kv": "host=127.0.0.1 port=%d user=%s password='%s x' dbname=%s password = %s" % (
                cls.pg.port, cls.pg.user, SECRET, cls.pg.dbname, SECRET),
        }

    @classmethod
    def tearDownClass(cls):
        cls.pg.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_mxs(self, *args, stdin=b""):
        return subprocess.run([MXS, *args], input=stdin, env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=120)

    def command_line(self, label):
        return self.pg.scalar("SELECT command_line FROM scans WHERE label = '%s'" % label)

    def check_masked(self, label, form):
        cl = self.command_line(label)
        self.assertNotIn(SECRET, cl)
        self.assertIn("***", cl)
        # what is not secret stays, so the record still says which database
        self.assertIn("127.0.0.1", cl)
        self.assertIn(str(self.pg.port), cl)

    def test_scan_masks_password(self):
        for form, url in self.urls.items():
            for spelled in (["--db", url], ["--db=" + url]):
                label = "scan-%s-%d" % (form, len(spelled))
                # 192.0.2.1 is documentation space: blocked by default, nothing is dialled
                p = self.run_mxs("scan", "--quiet", *spelled, "--label", label, stdin=b"192.0.2.1\n")
                self.assertEqual(p.returncode, 0, p.stderr.decode())
                self.check_masked(label, form)

    def test_survey_masks_password(self):
        dns = "127.0.0.1:%d" % free_port()   # nobody answers: the domain times out
        domains = os.path.join(self.tmp, "domains.txt")
        with open(domains, "w") as f:
            f.write("example.invalid\n")
        for form, url in self.urls.items():
            label = "survey-" + form
            p = self.run_mxs("survey", "--quiet", "--db", url, "--label", label, "--report", "none",
                             "--dns-server", dns, "--dns-timeout", "200ms", "--dns-retries", "0",
                             domains)
            self.assertEqual(p.returncode, 0, p.stderr.decode())
            self.check_masked(label, form)

    def test_ingest_masks_password(self):
        path = os.path.join(self.tmp, "one.jsonl")
        with open(path, "w") as f:
            f.write('{"type":"result","v":1,"ip":"192.0.2.1","port":25,"outcome":"blocked",'
                    '"phase":"dial","detail":"192.0.2.0/24"}\n')
        for form, url in self.urls.items():
            label = "ingest-" + form
            p = self.run_mxs("ingest", "-q", "--db", url, "--label", label, path)
            self.assertEqual(p.returncode, 0, p.stderr.decode())
            self.check_masked(label, form)


if __name__ == "__main__":
    unittest.main(verbosity=2)
