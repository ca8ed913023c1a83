"""
A slow reader of the output never changes a result (issue 8, item 3). The same fleet
targets are scanned twice: once into a reader that takes every byte at once, once into
a pipe nobody reads for 20 s (longer than any timeout of the scan). The records, timing
fields aside, must be the same sets, and both must match the fleet's ground truth. With
a small --output-buffer the second scan fills it and must say so on its status line
(back-pressure: no new targets until the reader catches up). Before the fix the scanner
blocked in write() on the full pipe, its event loop stood still, and the probes in
flight ended as timeouts blamed on the servers.

The -o FILE path writes the same records as stdout.
"""
import json
import os
import subprocess
import tempfile
import time
import unittest

from fleet import Fleet
from scanrun import MXS_BIN, compare_truth, targets_for

RANGE = "127.3.0.0/23"  # 512 addresses of the seeded mix
PAUSE_S = 20
SCAN_OPTS = ["--no-default-blocklist", "--ehlo-name", "scanner.mxsurvey.test",
             "--concurrency", "200", "--per-net", "100000",
             "--greeting-timeout", "4s", "--timeout", "6s", "--handshake-timeout", "8s",
             "--deadline", "12s", "--retries", "1", "--retry-delay", "200ms", "--seed", "1"]


def stable(rec):
    """A record without what differs between two runs against the same servers: when it
    started, how long each phase took, and when each transcript line came."""
    r = dict(rec)
    r.pop("start", None)
    r.pop("timing_ms", None)
    if r.get("transcript"):
        r["transcript"] = [{k: v for k, v in e.items() if k != "t"} for e in r["transcript"]]
    return json.dumps(r, sort_keys=True)


class SlowReader(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fleet = Fleet(os.environ["MXS_BUILD"], seed=7, delay_ms=500)
        cls.fleet.__enter__()
        cls.addClassCleanup(cls.fleet.__exit__, None, None, None)
        cls.truth = {t["ip"]: t for t in cls.fleet.truth(RANGE)}
        cls.input = targets_for(sorted(cls.truth))
        cls.tmp = tempfile.TemporaryDirectory(prefix="mxs-slow-reader-")
        cls.addClassCleanup(cls.tmp.cleanup)

    def args(self, *extra):
        return [MXS_BIN, "scan", "--port", str(self.fleet.port),
                "--ca-file", os.path.join(self.fleet.certdir, "ca.pem"), *SCAN_OPTS, *extra]

    def check_truth(self, recs):
        self.assertEqual(sorted(r["ip"] for r in recs), sorted(self.truth))
        diffs = []
        for r in recs:
            diffs += compare_truth(r, self.truth[r["ip"]])
        self.assertEqual(diffs, [], "\n".join(diffs[:40]))

    def run_fast(self, *extra):
        p = subprocess.run(self.args("--quiet", *extra), input=self.input.encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
        return p.stdout.decode()

    def run_paused(self, *extra):
        """The scan's stdout is a pipe nobody reads for PAUSE_S seconds."""
        errpath = os.path.join(self.tmp.name, "paused.err")
        with open(errpath, "wb") as err:
            p = subprocess.Popen(self.args(*extra), stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=err)
            p.stdin.write(self.input.encode())
            p.stdin.close()
            time.sleep(PAUSE_S)
            out = p.stdout.read()
            rc = p.wait(300)
        with open(errpath) as f:
            stderr = f.read()
        self.assertEqual(rc, 0, stderr[-2000:])
        return out.decode(), stderr

    def test_paused_reader_changes_nothing(self):
        fast = self.run_fast()
        paused, stderr = self.run_paused("--output-buffer", "64K")
        fast_recs = [json.loads(l) for l in fast.splitlines()]
        paused_recs = [json.loads(l) for l in paused.splitlines()]
        self.check_truth(fast_recs)
        self.check_truth(paused_recs)
        self.assertEqual(sorted(map(stable, paused_recs)), sorted(map(stable, fast_recs)))
        # The output filled: back-pressure held new targets, and the status line said so.
        self.assertIn("output stalled", stderr)
        self.assertIn("output flowing again", stderr)

    def test_file_output_is_the_same(self):
        path = os.path.join(self.tmp.name, "out.jsonl")
        stdout = self.run_fast("-o", path, "--output-buffer", "64K")
        self.assertEqual(stdout, "")
        with open(path) as f:
            recs = [json.loads(l) for l in f.read().splitlines()]
        self.check_truth(recs)


if __name__ == "__main__":
    unittest.main(verbosity=2)
