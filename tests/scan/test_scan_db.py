"""
`mxsurvey scan --db`: results stream into a real PostgreSQL while the scan runs; every
target read has its row (duplicates of an address are not new rows); a scan killed with
SIGKILL is resumed through the database (--label + --resume) to one row per address.
"""
import os
import re
import signal
import subprocess
import tempfile
import time
import unittest

from fleet import Fleet
from pg import PgCluster, private_env
from scanrun import MXS_BIN, fleet_args, targets_for

OPTS = ["--concurrency", "100", "--per-net", "100000", "--greeting-timeout", "4s",
        "--timeout", "4s", "--deadline", "8s", "--retries", "1", "--retry-delay", "300ms"]


class ScanDb(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.pg = PgCluster()
        cls.pg.__enter__()
        cls.fleet = Fleet(os.environ["MXS_BUILD"], seed=21, delay_ms=1000)
        cls.fleet.__enter__()
        cls.env = private_env(cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.fleet.__exit__(None, None, None)
        cls.pg.__exit__(None, None, None)
        cls.tmp.cleanup()

    def run_scan(self, args, text):
        p = subprocess.run([MXS_BIN, "scan", *args], input=text.encode(), env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def rows(self, label, where="true"):
        return int(self.pg.scalar(
            f"SELECT count(*) FROM results r JOIN scans s ON s.id = r.scan_id "
            f"WHERE s.label = '{label}' AND {where}"))

    def test_every_target_has_a_row(self):
        truth = self.fleet.truth("127.4.0.0/25")
        text = targets_for([t["ip"] for t in truth]) + truth[0]["ip"] + "\nnot-an-address\n"
        rc, out, err = self.run_scan(fleet_args(self.fleet, *OPTS, "--db", self.pg.url,
                                                "--label", "every"), text)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "", "JSON goes to stdout only with -o")
        m = re.search(r"(\d+) targets read, (\d+) result rows stored", err)
        self.assertIsNotNone(m, err)
        self.assertEqual(m.group(1), m.group(2))
        self.assertEqual(int(m.group(1)), len(truth) + 1)  # + the bad line; not the duplicate
        self.assertIn("1 duplicate input lines not stored", err)
        self.assertEqual(self.rows("every"), len(truth) + 1)
        self.assertEqual(self.pg.scalar("SELECT state FROM scans WHERE label = 'every'"), "done")

    def test_sigkill_then_resume_through_the_database(self):
        truth = [t["ip"] for t in self.fleet.truth("127.5.0.0/23")]
        with open(os.path.join(self.tmp.name, "t.txt"), "w") as f:
            f.write(targets_for(truth))
        args = fleet_args(self.fleet, *OPTS, "--db", self.pg.url, "--label", "killed",
                          os.path.join(self.tmp.name, "t.txt"))
        p = subprocess.Popen([MXS_BIN, "scan", *args, "--rate", "100"], env=self.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and p.poll() is None:
            try:
                if self.rows("killed") >= 50:
                    break
            except RuntimeError:
                pass  # the scan row may not exist yet
            time.sleep(0.2)
        p.send_signal(signal.SIGKILL)
        p.wait()
        first = self.rows("killed")
        self.assertGreater(first, 0)
        self.assertLess(first, len(truth))
        rc, _, err = self.run_scan([*args, "--resume"], "")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.rows("killed"), len(truth))
        self.assertEqual(int(self.pg.scalar(
            "SELECT count(DISTINCT r.ip) FROM results r JOIN scans s ON s.id = r.scan_id "
            "WHERE s.label = 'killed'")), len(truth))
        m = re.search(r"(\d+) targets read, (\d+) result rows stored", err)
        self.assertEqual((int(m.group(1)), int(m.group(2))), (len(truth), len(truth)), err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
