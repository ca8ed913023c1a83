"""
A scan stopped by SIGTERM drains, marks what was cut short as "interrupted", exits 3;
`--resume` then scans only what has no result, and the union covers every target once.
"""
import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

from fleet import Fleet
from scanrun import MXS_BIN, fleet_args, targets_for

RANGE = "127.2.0.0/22"  # 1,024 addresses


def read(path):
    """Complete records (a line still being written has no newline yet)."""
    with open(path) as f:
        return [json.loads(l) for l in f if l.endswith("\n")]


class ScanStopResume(unittest.TestCase):
    def test_sigterm_then_resume(self):
        with Fleet(os.environ["MXS_BUILD"], seed=11, delay_ms=1500) as fleet, \
             tempfile.TemporaryDirectory() as tmp:
            truth = {t["ip"] for t in fleet.truth(RANGE)}
            out = os.path.join(tmp, "results.jsonl")
            inp = os.path.join(tmp, "targets.txt")
            with open(inp, "w") as f:
                f.write(targets_for(sorted(truth)))
            opts = fleet_args(fleet, "--concurrency", "40", "--per-net", "100000",
                              "--greeting-timeout", "4s", "--timeout", "3s", "--deadline", "6s",
                              "--retries", "0", "--drain-timeout", "500ms", "-o", out)
            # --rate paces the first run (about 10 s for all) so the signal lands mid-scan.
            p = subprocess.Popen([MXS_BIN, "scan", *opts, "--rate", "100", inp],
                                 stderr=subprocess.PIPE)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and p.poll() is None:
                if os.path.exists(out) and len(read(out)) >= 100:
                    break
                time.sleep(0.1)
            p.send_signal(signal.SIGTERM)
            _, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 3, err.decode())
            first = read(out)
            self.assertGreater(len(first), 0)
            self.assertLess(len(first), len(truth))
            self.assertIn("left unscanned by the stop", err.decode())

            p = subprocess.run([MXS_BIN, "scan", *opts, "--resume", inp],
                               stderr=subprocess.PIPE, timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr.decode())
            final = read(out)

        done = {}
        for r in final:
            if r["outcome"] == "interrupted":
                continue
            self.assertNotIn(r["ip"], done, "a target was scanned twice")
            done[r["ip"]] = r
        self.assertEqual(set(done), truth)
        # the resumed run scanned exactly what the first one left
        first_done = {r["ip"] for r in first if r["outcome"] != "interrupted"}
        self.assertEqual(len(final) - len(first), len(truth) - len(first_done))


    def test_sigkill_then_resume(self):
        """No drain, no "interrupted" records: the file holds whole lines only, and
        --resume scans exactly what has no record."""
        with Fleet(os.environ["MXS_BUILD"], seed=12, delay_ms=1500) as fleet, \
             tempfile.TemporaryDirectory() as tmp:
            truth = {t["ip"] for t in fleet.truth(RANGE)}
            out = os.path.join(tmp, "results.jsonl")
            inp = os.path.join(tmp, "targets.txt")
            with open(inp, "w") as f:
                f.write(targets_for(sorted(truth)))
            opts = fleet_args(fleet, "--concurrency", "40", "--per-net", "100000",
                              "--greeting-timeout", "4s", "--timeout", "3s", "--deadline", "6s",
                              "--retries", "0", "-o", out)
            p = subprocess.Popen([MXS_BIN, "scan", *opts, "--rate", "100", inp],
                                 stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and p.poll() is None:
                if os.path.exists(out) and len(read(out)) >= 100:
                    break
                time.sleep(0.1)
            p.kill()
            p.wait()
            with open(out) as f:
                raw = f.read()
            self.assertTrue(raw.endswith("\n"), "a torn line after SIGKILL")
            first = [json.loads(l) for l in raw.splitlines()]
            self.assertLess(len(first), len(truth))
            p = subprocess.run([MXS_BIN, "scan", *opts, "--resume", inp],
                               stderr=subprocess.PIPE, timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr.decode())
            final = read(out)
        ips = [r["ip"] for r in final]
        self.assertEqual(sorted(ips), sorted(truth))


if __name__ == "__main__":
    unittest.main(verbosity=2)
