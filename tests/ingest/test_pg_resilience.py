"""Nothing is lost and nothing is duplicated: re-ingesting a file, an ingest killed with
SIGKILL and run again, the database stopped in the middle of an ingest and started
again, a spool left at exit and replayed by the next run, and a full queue that
overflows to the spool."""
import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from pg import PgCluster, private_env, wait_for
from pgrecords import domain, line, result, smtp_result, tls

MXS = os.environ["MXS_BIN"]


def records(n, base=0, outcome_every=7):
    """n distinct result lines (every 7th a TLS success with a certificate), as text."""
    out = []
    for i in range(base, base + n):
        ip = "10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255)
        if i % outcome_every == 0:
            rec = smtp_result(ip, "success", "ESMTP Postfix", mx="mx%d.example" % (i % 50),
                              starttls_code=220, tls_info=tls(leaf="c%d" % (i % 300)))
        else:
            rec = result(ip, "connection-refused")
        out.append(line(rec))
    return out


class Resilience(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PgCluster().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.pg.__exit__(None, None, None)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mxs-res-")
        self.env = private_env(self.tmp)
        self.spool = os.path.join(self.tmp, "share", "mxsurvey", "spool")
        if not self.pg.running():
            self.pg.start()

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, name, lines):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def run_ingest(self, *args, check=True):
        r = subprocess.run([MXS, "ingest", "--db", self.pg.url] + list(args), env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
        if check:
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r

    def count(self, scan=None, table="results"):
        where = " WHERE scan_id = %s" % scan if scan else ""
        return int(self.pg.scalar("SELECT count(*) FROM %s%s" % (table, where)))

    def count_label(self, label):
        return int(self.pg.scalar("SELECT count(*) FROM results r JOIN scans s ON s.id = r.scan_id"
                                  " WHERE s.label = '%s'" % label))

    def dangling(self, scan):
        """Ids in the scan's rows whose value is not stored, and certificates of its chains
        without their row: 0 when every row's transaction stored what the row names, or
        came after one that did (ingest's two connections pass on what they committed)."""
        dicts = [t for t in ("mxs_texts", "mxs_lists", "mxs_chains", "mxs_refs")
                 if self.pg.scalar("SELECT to_regclass('%s')" % t)]
        known = " UNION ALL ".join("SELECT id FROM %s" % t for t in dicts)
        n = 0
        for (c,) in self.pg.query("SELECT column_name FROM information_schema.columns WHERE "
                                  "table_name = 'result_rows' AND data_type = 'bigint' AND "
                                  "column_name <> 'scan_id'"):
            n += int(self.pg.scalar(
                "SELECT count(*) FROM result_rows r WHERE scan_id = %s AND r.%s IS NOT NULL AND "
                "NOT EXISTS (SELECT 1 FROM (%s) k WHERE k.id = r.%s)" % (scan, c, known, c)))
        n += int(self.pg.scalar(
            "SELECT count(*) FROM results r CROSS JOIN unnest(r.chain_sha256) f WHERE "
            "r.scan_id = %s AND NOT EXISTS (SELECT 1 FROM certificates c WHERE c.sha256 = f)" % scan))
        return n

    def spool_files(self):
        return glob.glob(os.path.join(self.spool, "*.jsonl"))

    def test_reingest_duplicates_nothing(self):
        lines = records(3000) + [line(domain("d%d.example" % i, i, mx=[("mx.example", 10, ["10.0.0.1"])]))
                                 for i in range(1, 21)] + ["not a record"]
        path = self.write("again.jsonl", lines)
        r1 = self.run_ingest(path)
        scan = self.pg.scalar("SELECT max(id) FROM scans")
        self.assertIn("3000 result records read, 3000 result rows stored (3000 new", r1.stdout)
        r2 = self.run_ingest(path)
        self.assertIn("3000 result records read, 3000 result rows stored (0 new", r2.stdout)
        self.assertEqual(self.pg.scalar("SELECT max(id) FROM scans"), scan)   # the same scan
        self.assertEqual(self.count(scan), 3000)
        self.assertEqual(self.count(scan, "domains"), 20)
        self.assertEqual(self.count(scan, "rejects"), 1)
        self.assertEqual(self.pg.scalar("SELECT count(*) FROM domain_mx WHERE scan_id = %s" % scan), "20")
        self.assertEqual(self.pg.scalar("SELECT count(*) FROM certificates WHERE sha256 IN"
                                        " (SELECT chain_sha256[1] FROM results WHERE scan_id = %s)" % scan),
                         "300")
        # into an explicit scan, twice, with small batches so runs mix new and old rows
        r3 = self.run_ingest("--scan", scan, "--batch-rows", "77", path)
        self.assertIn("(0 new", r3.stdout)
        self.assertEqual(self.count(scan), 3000)
        self.assertEqual(self.pg.scalar("SELECT targets_read || ' ' || results_stored || ' ' || state"
                                        " FROM scans WHERE id = %s" % scan), "3000 3000 done")

    def test_interrupted_result_is_replaced(self):
        scan_path = self.write("first.jsonl", [line(result("192.0.2.50", "interrupted")),
                                               line(result("192.0.2.51", "connection-refused"))])
        self.run_ingest("--label", "resume-me", scan_path)
        scan = self.pg.scalar("SELECT id FROM scans WHERE label = 'resume-me'")
        second = self.write("second.jsonl", [line(smtp_result("192.0.2.50", "no-starttls", offered=False)),
                                             line(result("192.0.2.51", "connection-timeout"))])
        r = self.run_ingest("--label", "resume-me", second)
        self.assertIn("1 replaced an interrupted probe", r.stdout)
        rows = self.pg.query("SELECT host(ip), o.name FROM results r JOIN outcome_names o ON o.code = r.outcome"
                             " WHERE scan_id = %s ORDER BY ip" % scan)
        # the interrupted probe is replaced; a finished result is never overwritten
        self.assertEqual(rows, [["192.0.2.50", "no-starttls"], ["192.0.2.51", "connection-refused"]])

    def test_interrupted_name_verdict_is_replaced(self):
        """A name line judged on a probe cut short is replaced by the resumed run's verdict,
        never a finished one (as results are); a line read twice adds nothing."""
        def name_line(ip, name, outcome):
            return json.dumps({"type": "name", "v": 1, "ip": ip, "port": 25, "name": name,
                               "domains": ["d.example"], "probe": "sni", "sni": name,
                               "outcome": outcome, "leaf_sha256": None, "trusted": None,
                               "verify_code": None, "expired": None, "name_match": None,
                               "dane": None})
        first = self.write("names1.jsonl", [line(result("192.0.2.70", "connection-refused")),
                                            name_line("192.0.2.70", "a.example", "interrupted"),
                                            name_line("192.0.2.70", "b.example", "connection-refused")])
        self.run_ingest("--label", "names-resume", first)
        scan = self.pg.scalar("SELECT id FROM scans WHERE label = 'names-resume'")
        second = self.write("names2.jsonl", [name_line("192.0.2.70", "a.example", "no-starttls"),
                                             name_line("192.0.2.70", "b.example", "no-starttls"),
                                             name_line("192.0.2.70", "b.example", "no-starttls")])
        self.run_ingest("--label", "names-resume", second)
        rows = self.pg.query("SELECT n.name, o.name FROM result_names n JOIN outcome_names o"
                             " ON o.code = n.outcome WHERE scan_id = %s ORDER BY n.name" % scan)
        self.assertEqual(rows, [["a.example", "no-starttls"], ["b.example", "connection-refused"]])

    def test_done_targets_for_resume(self):
        # what a resumed scan skips: every target with a result, except interrupted ones
        path = self.write("done.jsonl", [line(result("192.0.2.60", "interrupted")),
                                         line(result("192.0.2.61", "connection-refused")),
                                         line(result("2001:db8::62", "connection-timeout", port=587))])
        self.run_ingest("--label", "done-targets", path)
        scan = self.pg.scalar("SELECT id FROM scans WHERE label = 'done-targets'")
        r = subprocess.run([MXS, "db", "--db", self.pg.url, "done", scan], env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(r.stdout.splitlines()), ["192.0.2.61 25", "2001:db8::62 587"])

    def test_sigkill_and_rerun(self):
        # the first run reads the file through a pipe that we stop feeding after a part,
        # so it is certainly killed mid-file, with batches committed and one in flight
        n = 30000
        lines = records(n, base=100000)
        path = self.write("big.jsonl", lines)
        before = int(self.pg.scalar("SELECT coalesce(max(id), 0) FROM scans"))
        p = subprocess.Popen([MXS, "ingest", "--db", self.pg.url, "--batch-rows", "1000", "-"],
                             env=self.env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        p.stdin.write(("\n".join(lines[:12345]) + "\n").encode())
        p.stdin.flush()
        scan_rows = lambda: int(self.pg.scalar("SELECT count(*) FROM results WHERE scan_id > %d" % before))
        self.assertTrue(wait_for(lambda: scan_rows() >= 10000, timeout=60))
        p.send_signal(signal.SIGKILL)
        p.wait()
        p.stdin.close()
        scan = self.pg.scalar("SELECT max(id) FROM scans")
        partial = self.count(scan)
        self.assertTrue(10000 <= partial <= 12345, partial)
        self.assertEqual(self.pg.scalar("SELECT state FROM scans WHERE id = %s" % scan), "running")
        # run again on the whole file: the same scan (same head), only the rest is added
        r = self.run_ingest(path)
        self.assertEqual(self.pg.scalar("SELECT max(id) FROM scans"), scan)
        self.assertEqual(self.count(scan), n)
        self.assertIn("%d result records read, %d result rows stored (%d new" % (n, n, n - partial), r.stdout)
        self.assertEqual(self.pg.scalar("SELECT state || ' ' || targets_read FROM scans WHERE id = %s" % scan),
                         "done %d" % n)
        self.assertEqual(self.dangling(scan), 0)

    def test_database_stops_mid_ingest(self):
        parts = [records(3000, base=i * 3000) for i in range(3)]
        p = subprocess.Popen([MXS, "ingest", "--db", self.pg.url, "--label", "outage", "--batch-rows", "500",
                              "--flush-ms", "100", "--retry-ms", "200", "--wait-db", "30", "-"],
                             env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        p.stdin.write("\n".join(parts[0]) + "\n")
        p.stdin.flush()
        self.assertTrue(wait_for(lambda: self.count_label("outage") >= 3000, timeout=60))
        scan = self.pg.scalar("SELECT id FROM scans WHERE label = 'outage'")
        self.pg.stop("fast")
        p.stdin.write("\n".join(parts[1]) + "\n")
        p.stdin.flush()
        self.assertTrue(wait_for(lambda: len(self.spool_files()) > 0, timeout=60), "nothing spooled")
        time.sleep(0.5)
        self.pg.start()
        p.stdin.write("\n".join(parts[2]) + "\n")
        out, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 0, out + err)
        self.assertEqual(self.count(scan), 9000, out + err)
        self.assertEqual(self.pg.scalar("SELECT count(DISTINCT ip) FROM results WHERE scan_id = %s" % scan), "9000")
        self.assertIn("9000 result records read, 9000 result rows stored", out)
        self.assertNotIn(" 0 lines spooled", out)
        self.assertIn(" 0 left in the spool", out)
        self.assertEqual(self.spool_files(), [])
        # every chain and certificate a row names is stored, across the outage
        self.assertGreater(int(self.pg.scalar("SELECT count(*) FROM results WHERE scan_id = %s"
                                              " AND chain_sha256 IS NOT NULL" % scan)), 1000)
        self.assertEqual(self.dangling(scan), 0)

    def test_spool_left_at_exit_is_replayed_next_run(self):
        lines = records(2000, base=50000)
        p = subprocess.Popen([MXS, "ingest", "--db", self.pg.url, "--label", "leftover", "--batch-rows", "400",
                              "--flush-ms", "50", "--retry-ms", "100", "--wait-db", "0.5", "-"],
                             env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        p.stdin.write("\n".join(lines[:1000]) + "\n")
        p.stdin.flush()
        self.assertTrue(wait_for(lambda: self.count_label("leftover") >= 1000, timeout=60))
        scan = self.pg.scalar("SELECT id FROM scans WHERE label = 'leftover'")
        self.pg.stop("fast")
        p.stdin.write("\n".join(lines[1000:]) + "\n")
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 6, out + err)          # MXS_EXIT_SPOOLED
        self.assertIn("1000 left in the spool", out)
        files = self.spool_files()
        self.assertGreaterEqual(len(files), 1)
        # the spool is JSONL behind a header line naming the database and the scan
        lines = 0
        for f in files:
            with open(f) as fh:
                head = json.loads(fh.readline())
                self.assertEqual((head["type"], head["scan"]), ("spool", int(scan)))
                lines += sum(1 for _ in fh)
        self.assertEqual(lines, 1000)
        self.pg.start()
        self.assertEqual(self.count(scan), 1000)
        # any later run against this database replays it first
        empty = self.write("empty.jsonl", [])
        r = self.run_ingest("--new-scan", empty)
        self.assertIn("1000 replayed", r.stdout)
        self.assertEqual(self.count(scan), 2000)
        self.assertEqual(self.spool_files(), [])

    def test_full_queue_overflows_to_spool(self):
        # --no-block: a put that finds the queue full is spooled instead of waiting (the
        # scanner's mode); a tiny queue makes that happen constantly
        n = 20000
        path = self.write("overflow.jsonl", records(n, base=200000))
        r = self.run_ingest("--no-block", "--queue-bytes", "1", "--batch-rows", "300", path)
        scan = self.pg.scalar("SELECT max(id) FROM scans")
        self.assertEqual(self.count(scan), n, r.stdout + r.stderr)
        self.assertNotIn(" 0 lines spooled", r.stdout)
        self.assertEqual(self.spool_files(), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
