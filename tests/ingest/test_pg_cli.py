"""The command line meets the database: no password is ever stored in scans.command_line
(URL and key=value forms, for scan, survey and ingest); arguments that name a scan are
whole integers or a usage error (exit 2); survey's numbers are checked like scan's; an
input with no target is bad input (exit 4); a directory is refused before a scan is
created; lines with raw control characters are rejected for that reason; server notices
are log lines; a run that lost lines with the database away never reports 0 rows; a done
scan's primary keys are rebuilt compact (a REINDEX gives no room back)."""
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from pg import PgCluster, free_port, private_env, wait_for

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
        # the schema first: each test may run alone (-k) and count the scans table
        subprocess.run([MXS, "db", "--db", cls.pg.url, "migrate"], env=cls.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)

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

    # -- issue 8, item 8 ---------------------------------------------------------------

    def scans(self):
        return int(self.pg.scalar("SELECT count(*) FROM scans"))

    def test_scan_ids_are_whole_numbers(self):
        before = self.scans()
        for args in (["report", "--db", self.pg.url, "--scan", "1;DROP TABLE results"],
                     ["report", "--db", self.pg.url, "--compare", "1x"],
                     ["db", "--db", self.pg.url, "drop-scan", "1;select"],
                     ["db", "--db", self.pg.url, "done", "+1"],
                     ["ingest", "--db", self.pg.url, "--scan", "1 ", "-"],
                     ["scan", "--db", self.pg.url, "--scan", "0x1"],
                     ["survey", "--db", self.pg.url, "--scan", "1;", "-"],
                     ["findings", "--db", self.pg.url, "--scan", "1;DROP TABLE results"],
                     ["db", "--db", self.pg.url, "networks", "/dev/null", "--scan", "1x"]):
            p = self.run_mxs(*args)
            self.assertEqual(p.returncode, 2, (args, p.stderr.decode()))
            self.assertIn("wants a scan id", p.stderr.decode())
        self.assertEqual(self.scans(), before)
        self.assertEqual(self.pg.scalar("SELECT to_regclass('results') IS NOT NULL"), "t")

    def test_survey_numbers_checked_like_scan(self):
        for opt, v in (("--dns-concurrency", "many"), ("--dns-concurrency", "0"),
                       ("--dns-retries", "-1"), ("--dns-retries", "2x"),
                       ("--mta-sts-port", "70000"), ("--mta-sts-port", "")):
            p = self.run_mxs("survey", "--db", self.pg.url, opt, v, "-")
            self.assertEqual(p.returncode, 2, (opt, v, p.stderr.decode()))
            self.assertIn("wants a whole number", p.stderr.decode())

    def test_ingest_numbers_checked(self):
        """ingest's numeric options are checked as scan's are: atoi read "fast" as 0 (the
        default) and "100ms" as 100."""
        before = self.scans()
        for opt, v in (("--flush-ms", "fast"), ("--flush-ms", "100ms"), ("--flush-ms", "0"),
                       ("--retry-ms", "-5"), ("--retry-ms", ""), ("--retry-ms", "2s"),
                       ("--batch-rows", "many"), ("--batch-rows", "0"),
                       ("--queue-bytes", "16M"), ("--wait-db", "10s"), ("--wait-db", "-1")):
            p = self.run_mxs("ingest", "--db", self.pg.url, opt, v, "-", stdin=b"")
            self.assertEqual(p.returncode, 2, (opt, v, p.stderr.decode()))
            self.assertIn("wants a", p.stderr.decode())
            self.assertIn(opt, p.stderr.decode())
        self.assertEqual(self.scans(), before)
        p = self.run_mxs("ingest", "--db", self.pg.url, "--label", "nums", "--flush-ms", "50",
                         "--retry-ms", "100", "--batch-rows", "10", "--wait-db", "0.5", "-",
                         stdin=b"")
        self.assertNotEqual(p.returncode, 2, p.stderr.decode())

    def test_no_target_is_bad_input(self):
        for text in (b"", b"# comments only\n\n   \n# 192.0.2.1\n"):
            for cmd in ("scan", "resolve"):
                p = self.run_mxs(cmd, "--quiet", stdin=text)
                self.assertEqual(p.returncode, 4, (cmd, text, p.stderr.decode()))

    def test_ingest_directory_refused_before_anything(self):
        before = self.scans()
        d = os.path.join(self.tmp, "adir")
        os.makedirs(d, exist_ok=True)
        for args in ([d], ["--label", "dir", d], ["--new-scan", d]):
            p = self.run_mxs("ingest", "--db", self.pg.url, *args)
            self.assertEqual(p.returncode, 4, p.stderr.decode())
            self.assertIn("is a directory", p.stderr.decode())
            self.assertNotIn("read error", p.stderr.decode())
        self.assertEqual(self.scans(), before)

    def test_control_characters_rejected_for_that_reason(self):
        path = os.path.join(self.tmp, "ctl.jsonl")
        good = {"type": "result", "v": 1, "ip": "192.0.2.7", "port": 25, "outcome": "blocked",
                "phase": "dial", "detail": "x"}
        bad = dict(good, ip="192.0.2.8", detail="tab\there")
        with open(path, "w") as f:
            f.write(json.dumps(good) + "\n")
            f.write(json.dumps(bad).replace("\\t", "\t") + "\n")   # a raw TAB in a string
        p = self.run_mxs("ingest", "--db", self.pg.url, "--label", "ctl", path)
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertIn("1 lines were not records", out)
        self.assertNotIn("records for the same address", out)
        reason = self.pg.scalar("SELECT error FROM rejects j JOIN scans s ON s.id = j.scan_id "
                                "WHERE s.label = 'ctl'")
        self.assertIn("control character", reason)

    def test_done_scan_keys_are_compact(self):
        """Results arrive in random key order, which leaves a B-tree about half empty; the
        finish of a done scan rebuilds its partitions' keys (docs/performance.md)."""
        rnd = random.Random(14)
        # 240/4 is blocked by default: every address gets its row, none is dialled
        addrs = ["240.%d.%d.%d" % (rnd.randrange(256), rnd.randrange(256), rnd.randrange(1, 255))
                 for _ in range(20000)]
        p = self.run_mxs("scan", "--quiet", "--db", self.pg.url, "--label", "compact",
                         stdin="\n".join(addrs).encode() + b"\n")
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        sid = self.pg.scalar("SELECT id FROM scans WHERE label = 'compact'")
        self.assertEqual(self.pg.scalar("SELECT state FROM scans WHERE id = %s" % sid), "done")
        self.assertEqual(int(self.pg.scalar("SELECT count(*) FROM results_s%s" % sid)),
                         len(set(addrs)))
        size = "SELECT pg_indexes_size('results_s%s')" % sid
        after_scan = int(self.pg.scalar(size))
        self.pg.execute("REINDEX TABLE results_s%s" % sid)
        self.assertEqual(after_scan, int(self.pg.scalar(size)))

    def test_server_notices_are_log_lines(self):
        subprocess.run([MXS, "db", "--db", self.pg.url, "migrate"], env=self.env, check=True,
                       capture_output=True)
        self.pg.execute(
            "CREATE OR REPLACE FUNCTION noisy() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE NOTICE 'noisy notice'; RAISE WARNING 'noisy warning'; RETURN NEW; END $$; "
            "CREATE TRIGGER noisy BEFORE INSERT ON scans FOR EACH ROW EXECUTE FUNCTION noisy()")
        try:
            p = self.run_mxs("scan", "--quiet", "--db", self.pg.url, "--label", "noisy",
                             stdin=b"192.0.2.1\n")
        finally:
            self.pg.execute("DROP TRIGGER noisy ON scans")
        err = p.stderr.decode()
        self.assertEqual(p.returncode, 0, err)
        for line in err.splitlines():
            if "noisy" in line:
                self.assertRegex(line, r"^\d{4}-\d\d-\d\dT[\d:]+Z (info|warn) db server-notice ")
        self.assertRegex(err, r"warn db server-notice severity=WARNING message=\"noisy warning\"")
        self.assertNotIn("WARNING:  noisy warning", err)   # libpq's raw form


class LostLines(unittest.TestCase):
    """The database goes away for good and the spool cannot be written: the summary gives
    the rows this run's commits confirmed, never 0."""


    def test_summary_counts_what_was_stored(self):
        with PgCluster() as pg, tempfile.TemporaryDirectory() as tmp:
            env = private_env(tmp)
            os.makedirs(os.path.join(tmp, "share", "mxsurvey"))
            open(os.path.join(tmp, "share", "mxsurvey", "spool"), "w").close()  # not a directory
            p = subprocess.Popen([MXS, "scan", "--quiet", "--db", pg.url, "--label", "lost"],
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, env=env)
            # documentation addresses: blocked by default, so nothing is dialled
            p.stdin.write("".join("192.0.2.%d\n" % i for i in range(1, 201)).encode())
            p.stdin.flush()

            def stored():
                try:
                    return int(pg.scalar("SELECT count(*) FROM results"))
                except RuntimeError:
                    return 0
            self.assertTrue(wait_for(lambda: stored() == 200, timeout=60))
            pg.stop()
            p.stdin.write("".join("198.51.100.%d\n" % i for i in range(1, 51)).encode())
            p.stdin.close()
            err = p.stderr.read().decode()
            p.wait(timeout=120)
        self.assertEqual(p.returncode, 5, err)
        self.assertIn("lines lost", err)
        m = re.search(r"250 targets read, at least (\d+) result rows stored", err)
        self.assertIsNotNone(m, err)
        self.assertEqual(int(m.group(1)), 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
